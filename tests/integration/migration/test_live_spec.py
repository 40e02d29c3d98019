"""The live method on the lab: its vMotion spec is built and validated against the real target in the
prechecks and journaled without secrets; the simulator cannot relocate between vCenters, so the VM
fails at `relocate` and stays where it was.

The simulator answers the relocate by dropping the connection, a transient fault: the run goes through the API
with one immediate retry (the default policy, all the CLI has, spends ~80 s on 8 tries of it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from migrate.engine.journal import Journal
from migrate.engine.run_state import RunSettings
from migrate.engine.timing import RetryPolicy
from migrate.lab.manager import LabInfo
from migrate.run import load_run_plan, start_run
from tests.helpers import run_cli
from tests.integration.migration.conftest import estate, migrate_cli, plan_lab, sessions, start_lab, vms_by_uuid


@pytest.fixture(scope="module")
def llab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "live", 10, 9)


def test_live_wave_builds_a_valid_spec_then_fails_cleanly_on_the_simulator(llab: LabInfo, tmp_path: Path) -> None:
    plan = plan_lab(llab, tmp_path, max_vms=6)
    doc = yaml.safe_load(plan.read_text())
    doc["waves"] = doc["waves"][:1]
    doc["waves"][0]["method"] = "live"
    doc["waves"][0]["vms"] = doc["waves"][0]["vms"][:1]
    doc["waves"][0].pop("vm_names", None)
    plan.write_text(yaml.safe_dump(doc))
    vm_id = doc["waves"][0]["vms"][0]

    dry = migrate_cli(llab, "run", plan, "--dry-run", "--json")
    assert dry.code == 0, dry
    phases = [a["phase"] for a in dry.json() if a["action"] == "phase"]
    assert phases == ["precheck", "build_relocate_spec", "relocate", "verify"]
    assert not any(a.get("error") for a in dry.json())

    journal = tmp_path / "live.db"
    run_plan, site = load_run_plan(plan, llab.site_config)
    settings = RunSettings(retry=RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0))
    result = start_run(run_plan, site, journal, settings=settings)
    assert result.status == "failed" and list(result.failed) == [vm_id], result   # `migrate run` exits 1
    with Journal(journal, create=False) as jr:
        run_id = jr.runs()[-1].run_id
        steps = {s.step: s for s in jr.steps(run_id, "vm", vm_id)}
        relocate_tries = [e for e in jr.history(run_id, "vm", steps_only=True)
                          if e.entity_id == vm_id and e.step == "relocate" and e.event == "step_failed"]
    assert len(relocate_tries) == 2, relocate_tries   # retried (a transient fault), then failed
    spec = steps["build_relocate_spec"].outputs
    assert spec["problems"] == []
    service = spec["spec"]["service"]
    assert service["url"].startswith("https://127.0.0.1:") and len(service["ssl_thumbprint"].split(":")) == 20
    assert spec["spec"]["datastore"] and spec["spec"]["pool"] and spec["spec"]["folder"]
    assert steps["relocate"].status == "failed"
    password = (llab.directory / "secrets" / "cloud.password").read_text().strip()
    assert password not in journal.read_bytes().decode("latin-1")
    status = run_cli("status", "--journal", journal, "--json").json()
    assert status["vms"][0]["state"] == "failed" and status["vms"][0]["phase"] == "relocate"

    name = next(v["name"] for v in estate(llab)["vms"] if v["instance_uuid"] == vm_id)
    source, target = sessions(llab)
    try:
        assert vms_by_uuid(source)[vm_id][0]["name"] == name  # untouched on the source
        assert vm_id not in vms_by_uuid(target)
    finally:
        source.close()
        target.close()
