"""`migrate reconcile`: a lost journal rebuilt from what exists, then resumed; drift found and reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from migrate.config import load_site_config
from migrate.engine.journal import Journal
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.migration.conftest import (
    assert_migrated_once,
    disk_files,
    file_sha256,
    plan_lab,
    sessions,
    start_lab,
    vms_by_uuid,
)


@dataclass
class Repaired:
    """The state after crash -> journal deleted -> reconcile --repair -> resume."""

    plan: Path
    journal: Path
    inventory: dict[str, Any]
    repair: Any
    resume: Any
    before: dict[str, list[str]]  # source id -> target morefs that existed when the journal was lost


@pytest.fixture(scope="module")
def rlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "reconcile", 10, 5)


def _progress(journal: Path) -> tuple[dict[str, str], set[str]]:
    """VM states, and the VMs caught mid-cutover that were on and that the run has powered off."""
    if not journal.exists():
        return {}, set()
    try:
        with Journal(journal, create=False) as jr:
            runs = jr.runs()
            if not runs:
                return {}, set()
            run = runs[-1].run_id
            states = {k: e.state for k, e in jr.vm_states(run).items()}
            done = {(s.entity_id, s.step): s.outputs for s in jr.steps(run, "vm") if s.status == "finished"}
    except Exception:  # mid-write by the run: try again
        return {}, set()
    caught = {vm for vm, state in states.items() if state == "cutting_over" and (vm, "power_off_source") in done
              and (done.get((vm, "precheck")) or {}).get("power_state") == "poweredOn"}
    return states, caught


def _kill_mid_wave(plan: Path, site: Path, journal: Path, log: Path) -> dict[str, str]:
    """Run the plan and kill -9 it once two VMs completed and a VM that was on is powered off mid-cutover."""
    with log.open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(site),
                                 "--journal", str(journal), "--concurrency", "2"], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "MIGRATE_LOG_LEVEL": "info"})
        deadline = time.monotonic() + 120
        states: dict[str, str] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            states, caught = _progress(journal)
            if sum(1 for s in states.values() if s == "completed") >= 2 and caught:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it could be killed: {log.read_text()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return states


@pytest.fixture(scope="module")
def repaired(rlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Repaired:
    work = tmp_path_factory.mktemp("reconcile-work")
    plan = plan_lab(rlab, work, max_vms=5)
    journal = work / "run.db"
    states = _kill_mid_wave(plan, rlab.site_config, journal, work / "run.log")
    assert "pending" in states.values() or len(states) < 10, states
    source, target = sessions(rlab)
    try:
        before = {uuid: [vm["moref"] for vm in vms] for uuid, vms in vms_by_uuid(target).items()}
    finally:
        source.close()
        target.close()
    for extra in ("", "-wal", "-shm"):
        Path(f"{journal}{extra}").unlink(missing_ok=True)
    repair = run_cli("reconcile", "--config", rlab.site_config, "--journal", journal, "--plan", plan, "--repair",
                     "--json")
    resume = run_cli("resume", "--config", rlab.site_config, "--journal", journal, "--json")
    inventory = json.loads((work / "inventory.json").read_text())
    return Repaired(plan=plan, journal=journal, inventory=inventory, repair=repair, resume=resume, before=before)


def test_lost_journal_repaired_then_resumed(rlab: LabInfo, repaired: Repaired) -> None:
    """kill -9 mid-wave, journal deleted, reconcile --repair --plan, resume: complete, once each, disks equal."""
    assert repaired.repair.code == 0, repaired.repair
    report = repaired.repair.json()
    assert report["journal_state"] == "missing" and report["repair"]["written"]
    assert {d["kind"] for d in report["drift"]} >= {"journal_missing"}
    states = report["repair"]["vms"]
    assert states.get("completed", 0) >= 2 and states.get("pending", 0) >= 1, report
    assert repaired.resume.code == 0, repaired.resume
    assert repaired.resume.json()["status"] == "completed"
    vms = {vm["id"]: vm for vm in repaired.inventory["vms"]}
    assert_migrated_once(rlab, set(vms))
    # nothing twice: the targets that existed are the ones now (not re-created), and no phase ran twice
    source, target = sessions(rlab)
    site = load_site_config(rlab.site_config)
    assert site.target is not None and site.source is not None
    try:
        on_target, on_source = vms_by_uuid(target), vms_by_uuid(source)
        for uuid, morefs in repaired.before.items():
            if uuid in vms:
                assert [vm["moref"] for vm in on_target[uuid]] == morefs, uuid
        for uuid, facts in vms.items():
            tgt, src = on_target[uuid][0], on_source[uuid][0]
            # the target is powered as the ORIGINAL source was, even where the first attempt had powered it off
            want = facts["power_state"] == "poweredOn"
            assert (tgt["runtime.powerState"] == "poweredOn") == want, facts["name"]
            src_sums = sorted(file_sha256(source, site.source.datacenter or "", p) for p in disk_files(src))
            tgt_sums = sorted(file_sha256(target, site.target.datacenter or "", p) for p in disk_files(tgt))
            assert src_sums == tgt_sums, facts["name"]
    finally:
        source.close()
        target.close()
    with Journal(repaired.journal, create=False) as jr:
        run = jr.runs()[-1].run_id
        twice = [(s.entity_id, s.step, s.attempt) for s in jr.steps(run, "vm") if s.attempt != 1]
    assert not twice, twice


def test_finished_run_has_no_drift(rlab: LabInfo, repaired: Repaired) -> None:
    """reconcile (no --repair) on the finished run: no drift, exit 0; --repair then leaves the journal alone."""
    result = run_cli("reconcile", "--config", rlab.site_config, "--journal", repaired.journal, "--json")
    assert result.code == 0, result
    assert result.json()["drift"] == []
    before = repaired.journal.read_bytes()
    again = run_cli("reconcile", "--config", rlab.site_config, "--journal", repaired.journal, "--repair", "--json")
    assert again.code == 0, again
    assert again.json()["repair"]["written"] is False
    assert repaired.journal.read_bytes() == before


def test_damaged_journal_of_finished_run_rebuilt_completed(rlab: LabInfo, repaired: Repaired, tmp_path: Path) -> None:
    """A damaged journal is moved aside; the finished run is rebuilt as completed from what exists alone."""
    journal = tmp_path / "damaged.db"
    journal.write_bytes(b"not a journal at all" * 64)
    bad = run_cli("reconcile", "--config", rlab.site_config, "--journal", journal, "--repair")
    assert bad.code == 2 and "--plan" in bad.stderr and "damaged" in bad.stderr, bad
    result = run_cli("reconcile", "--config", rlab.site_config, "--journal", journal, "--plan", repaired.plan,
                     "--repair", "--json")
    assert result.code == 0, result
    report = result.json()
    assert report["journal_state"] == "damaged"
    assert report["repair"]["vms"] == {"completed": len(repaired.inventory["vms"])}
    assert Path(report["repair"]["moved_aside"]).read_bytes() == b"not a journal at all" * 64
    status = run_cli("status", "--journal", journal, "--json").json()
    assert status["status"] == "completed" and {vm["state"] for vm in status["vms"]} == {"completed"}


def test_deleted_target_is_drift(rlab: LabInfo, repaired: Repaired) -> None:
    """A target VM deleted by hand: reconcile reports that VM's drift, exit 1 (human output names it)."""
    source, target = sessions(rlab)
    try:
        uuid, vms = sorted((u, v) for u, v in vms_by_uuid(target).items()
                           if u in {vm["id"] for vm in repaired.inventory["vms"]})[0]
        vm = vim.VirtualMachine(vms[0]["moref"], stub=target.si._stub)
        if vms[0]["runtime.powerState"] == "poweredOn":
            _wait(target, vm.PowerOffVM_Task())
        _wait(target, vm.Destroy_Task())
    finally:
        source.close()
        target.close()
    result = run_cli("reconcile", "--config", rlab.site_config, "--journal", repaired.journal, "--json")
    assert result.code == 1, result
    drift = result.json()["drift"]
    assert [(d["vm"], d["kind"]) for d in drift] == [(uuid, "completed_without_target")], drift
    human = run_cli("reconcile", "--config", rlab.site_config, "--journal", repaired.journal)
    assert human.code == 1 and "completed_without_target" in human.stdout and uuid in human.stdout


def test_lost_journal_without_plan_is_bad_input(rlab: LabInfo, tmp_path: Path) -> None:
    """No journal and no --plan: exit 2 naming --plan and the journal; nothing written."""
    journal = tmp_path / "gone.db"
    result = run_cli("reconcile", "--config", rlab.site_config, "--journal", journal, "--repair")
    assert result.code == 2, result
    assert "--plan" in result.stderr and str(journal) in result.stderr
    assert not journal.exists()


def _wait(vc: Any, task: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = task.info.state
        if state in ("success", "error"):
            assert state == "success", task.info.error
            return
        time.sleep(0.1)
    raise AssertionError("task did not finish")
