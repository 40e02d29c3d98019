"""Liveness under network faults, on the lab: a run whose vCenter connections are reset at random completes
every VM once with equal disks; a capacity step cut off from the target vCenter fails its wave, and a plain
`migrate resume` completes the run.

CI size: one seed at a 25% reset rate, on a lab of 20 VMs. By hand: `FAULT_SEED` picks the seed (1) and
`FAULT_VMS` the lab's size (20; 40 is the size the campaign's numbers were taken at). The campaign over every
rate and ten seeds is tests/bench/bench_faults.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.config import load_site_config
from migrate.engine.run_state import RunSettings
from migrate.engine.timing import RetryPolicy
from migrate.lab.manager import LabInfo
from migrate.run import load_run_plan, start_run
from tests.helpers import run_cli
from tests.integration.chaos import ChaosProxy
from tests.integration.conftest import site_copy
from tests.integration.fault_campaign import chaos_site, run_trial
from tests.integration.migration.conftest import assert_migrated_once, estate, plan_lab, start_lab

SEED = int(os.environ.get("FAULT_SEED", "1"))
VMS = int(os.environ.get("FAULT_VMS", "20"))     # the lab's size (a campaign by hand: 40 or more)


def test_a_run_with_a_quarter_of_connections_reset_moves_every_vm_once(tmp_path: Path) -> None:
    """FAULT_VMS VMs, 25% of vCenter connections reset at random for the whole run, capacity on: every VM completes
    (retries, at most one `resume --retry-failed`), none twice, every disk equal to its source."""
    trial = run_trial(tmp_path / "chaos", rate=0.25, seed=SEED, vms=VMS, retry_rounds=1)
    print(f"fault trial: {trial.to_dict()}")
    assert trial.resets > 0
    assert len(trial.waves_first) >= 2, trial.waves_first   # more than one wave, each with its capacity step
    assert trial.completed_final == VMS, trial.failures
    assert trial.duplicates == [] and trial.bad_disks == []


@pytest.fixture(scope="module")
def outage_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "capacity-outage", 10, 21)


def test_a_capacity_step_cut_off_fails_its_wave_and_a_plain_resume_completes(outage_lab: LabInfo,
                                                                              tmp_path: Path) -> None:
    """Every connection to the cloud vCenter reset during the capacity step: the wave fails before any VM, the
    run stops; with the network back, `migrate resume` (no flags) runs the step again and every VM."""
    plan_file = plan_lab(outage_lab, tmp_path, max_vms=6)
    clean = site_copy(outage_lab, tmp_path)
    site_doc = load_site_config(clean)
    assert site_doc.target is not None and site_doc.target.host
    host, port = site_doc.target.host.rsplit(":", 1)
    proxy = ChaosProxy((host, int(port)), reset_rate=1.0, max_bytes=0)
    try:
        site_file = chaos_site(clean, tmp_path / "chaos-site.yaml", {"target": proxy})
        plan, site = load_run_plan(plan_file, site_file)
        journal = tmp_path / "run.db"
        settings = RunSettings(retry=RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0))
        first = start_run(plan, site, journal, settings=settings)
        assert first.status == "failed" and first.waves[1] == "failed"
        assert set(first.vms) == {"skipped", "pending"}
        status = run_cli("status", "--journal", journal, "--json").json()
        assert all(vm["target_id"] is None for vm in status["vms"])
        proxy.reset_rate = 0.0
        resumed = run_cli("resume", "--config", site_file, "--journal", journal, "--json", timeout=600)
        assert resumed.code == 0, resumed
        assert resumed.json()["status"] == "completed"
    finally:
        proxy.close()
    assert_migrated_once(outage_lab, {vm["instance_uuid"] for vm in estate(outage_lab)["vms"]})
