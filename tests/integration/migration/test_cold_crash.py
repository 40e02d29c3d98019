"""kill -9 of `migrate run` (and of `migrate resume`) at random points, then resume: no VM lost or duplicated.

CI size: 2 trials (a crash, a resume, a whole-run rollback, and a run again on the rolled-back lab). A campaign
by hand: `MIGRATE_CRASH_TRIALS=10` (each trial kills at new random points; 3 was the CI size before).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.core.errors import InputError
from migrate.engine.journal import Journal
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.migration.conftest import (
    assert_migrated_once,
    estate,
    migrate_cli,
    plan_lab,
    sessions,
    start_lab,
    vms_by_uuid,
)

TRIALS = int(os.environ.get("MIGRATE_CRASH_TRIALS", "2"))   # kill -9 trials (a campaign: more)


@pytest.fixture(scope="module")
def clab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "cold-crash", 10, 3)


def _killed(args: list[str | Path], delay: float, log: Path) -> bool:
    """Start the CLI, kill -9 it after `delay` seconds; True if it was still running (a real crash)."""
    with log.open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "migrate", *map(str, args)], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "MIGRATE_LOG_LEVEL": "info"})
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        alive = proc.poll() is None
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return alive


def _has_run(journal: Path) -> bool:
    """Whether the journal holds a run (not while, or after a kill in the moment, the run creates it)."""
    if not journal.exists():
        return False
    try:
        with Journal(journal, create=False, read_only=True) as jr:
            return bool(jr.runs())
    except InputError:   # its tables are being created, or a kill cut that short (`migrate run` finishes it)
        return False


def test_kill9_at_random_points_then_resume(clab: LabInfo, tmp_path: Path) -> None:
    plan = plan_lab(clab, tmp_path, max_vms=4)
    expected = {vm["instance_uuid"] for vm in estate(clab)["vms"]}
    site = clab.site_config
    rng = random.Random(20261122)
    crashes = 0
    for trial in range(TRIALS):
        journal = tmp_path / f"trial-{trial}.db"
        log = tmp_path / f"trial-{trial}.log"
        crashes += _killed(["run", plan, "--config", site, "--journal", journal, "--concurrency", "2"],
                           rng.uniform(0.3, 4.0), log)
        if _has_run(journal):  # a second crash, this time of the resume
            crashes += _killed(["resume", "--config", site, "--journal", journal], rng.uniform(0.3, 2.0), log)
            final = run_cli("resume", "--config", site, "--journal", journal, "--json")
        else:  # killed before the run was recorded (`resume` would say so): nothing happened, start again
            final = run_cli("run", plan, "--config", site, "--journal", journal, "--json")
        assert final.code == 0, (final, log.read_text()[-3000:])
        assert final.json()["status"] == "completed"
        assert_migrated_once(clab, expected)
        status = run_cli("status", "--journal", journal, "--json").json()
        assert {vm["state"] for vm in status["vms"]} == {"completed"}
        # put the lab back for the next trial (this exercises rollback of a whole run too)
        back = migrate_cli(clab, "rollback", "--journal", journal, "--json")
        assert back.code == 0, back
        assert sorted(back.json()["rolled_back"]) == sorted(expected)
        source, target = sessions(clab)
        try:
            assert not set(vms_by_uuid(target)) & expected
            names = {uuid: vms[0]["name"] for uuid, vms in vms_by_uuid(source).items()}
            assert all(not names[uuid].endswith("(migrated)") for uuid in expected)
        finally:
            source.close()
            target.close()
    assert crashes >= TRIALS, f"only {crashes} of the kills hit a running process"


def _completed(journal: Path) -> int:
    if not _has_run(journal):
        return 0
    with Journal(journal, create=False, read_only=True) as jr:
        runs = jr.runs()
        return sum(1 for e in jr.vm_states(runs[-1].run_id).values() if e.state == "completed") if runs else 0


def test_ctrl_c_drains_and_resume_finishes(clab: LabInfo, tmp_path: Path) -> None:
    plan = plan_lab(clab, tmp_path, max_vms=10)
    journal = tmp_path / "ctrl-c.db"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(clab.site_config),
                             "--journal", str(journal), "--concurrency", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _completed(journal):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # once: in-flight VMs finish, no new VM starts
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    data = json.loads(out)
    assert data["status"] == "canceled"
    assert 0 < data["vms"].get("completed", 0) < len(estate(clab)["vms"])
    assert not {"cutting_over", "verifying", "failed"} & set(data["vms"])  # drained: nothing left half-done
    final = run_cli("resume", "--config", clab.site_config, "--journal", journal, "--json")
    assert final.code == 0, final
    assert final.json()["status"] == "completed"
    assert_migrated_once(clab, {vm["instance_uuid"] for vm in estate(clab)["vms"]})
    back = migrate_cli(clab, "rollback", "--journal", journal, "--json")
    assert back.code == 0, back
