"""Warm migration on the Temporal engine: a wave replicates (cycles as activities, the waits as durable timers)
while `lab churn` writes to its running VMs, then cuts over when `migrate cutover --engine temporal` asks.
Afterwards every target disk equals its source disk at power-off, every VM is on the target once, no snapshot
of ours is left, and `status --engine temporal` shows the cycles and the measured downtime."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.lab.churn import churn
from migrate.lab.manager import LabInfo, lab_down, lab_up
from tests.integration.migration.conftest import assert_migrated_once, estate
from tests.integration.migration.test_warm_e2e import disks_equal, snapshots_of, warm_plan
from tests.integration.temporal.conftest import Workers, migrate

pytestmark = pytest.mark.lab
CYCLES_BEFORE_CUTOVER = 2


@pytest.fixture(scope="module")
def wlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("temporal-warm-lab")
    info = lab_up(directory, vms=10, seed=23, temporal=True)
    try:
        yield info
    finally:
        lab_down(directory)


def _status(lab: LabInfo, run_id: str, work: Path) -> dict[str, Any]:
    shown = migrate("status", "--engine", "temporal", "--config", lab.site_config, "--run-id", run_id, "--json",
                    cwd=work)
    assert shown.returncode == 0, shown.stderr[-3000:]
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


@pytest.fixture(scope="module")
def warm_run(wlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("temporal-warm")
    plan, wave = warm_plan(wlab, work, interval=1.0, max_vms=4)
    names = set(wave.get("vm_names") or [])
    running = [vm["name"] for vm in estate(wlab)["vms"] if vm["name"] in names and vm["powered_on"]]
    assert running, "the first wave has no running VM to replicate"
    assert len(wave["vms"]) > 2, "the wave must hold more VMs than its 2 slots: they replicate all at once"
    run_id = "twarm"
    workers = Workers()
    stop = threading.Event()
    written: dict[str, Any] = {}
    churner = threading.Thread(target=lambda: written.update(result=churn(
        wlab.directory, vms=running, mib_per_s=2.0, seconds=600, seed=5, stop=stop)), daemon=True)
    try:
        for index in range(2):
            workers.start(wlab.site_config, log=work / f"worker-{index}.log")
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(wlab.site_config),
                                 "--engine", "temporal", "--run-id", run_id, "--waves", str(wave["id"]), "--json",
                                 "--concurrency", "2"],   # 2 slots, up to 4 VMs: one waiting between cycles holds none
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work)
        churner.start()
        deadline, replicating = time.monotonic() + 240, None
        while replicating is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            shown = migrate("status", "--engine", "temporal", "--config", wlab.site_config, "--run-id", run_id,
                            "--json", cwd=work)
            if shown.returncode == 0:
                data = json.loads(shown.stdout)
                if all((vm.get("replication") or {}).get("cycles", 0) >= CYCLES_BEFORE_CUTOVER for vm in data["vms"]):
                    replicating = data
            time.sleep(1.0)
        assert replicating is not None, "no VM replicated in time"
        asked = migrate("cutover", "--engine", "temporal", "--config", wlab.site_config, "--run-id", run_id,
                        "--wave", str(wave["id"]), "--json", cwd=work)
        out, err = proc.communicate(timeout=300)
        yield {"work": work, "run_id": run_id, "wave": wave, "running": running, "replicating": replicating,
               "asked": asked, "code": proc.returncode, "out": out, "err": err,
               "uuids": {vm["instance_uuid"] for vm in estate(wlab)["vms"] if vm["name"] in names}}
    finally:
        stop.set()
        churner.join(timeout=60)
        workers.stop_all()


def test_replicates_while_running_then_cuts_over_on_request(warm_run: dict[str, Any]) -> None:
    """Every VM replicates (state replicating) until the cutover request; then the run completes."""
    assert warm_run["asked"].returncode == 0, warm_run["asked"].stderr[-3000:]
    assert warm_run["code"] == 0, (warm_run["out"], warm_run["err"][-3000:])
    assert json.loads(warm_run["out"])["status"] == "completed"
    assert {vm["state"] for vm in warm_run["replicating"]["vms"]} == {"replicating"}


def test_every_target_disk_equals_the_source_at_power_off(warm_run: dict[str, Any], wlab: LabInfo) -> None:
    """The final cycle caught the guests' last writes: each target disk's sha256 is its source's, changed by churn."""
    assert_migrated_once(wlab, warm_run["uuids"])
    pairs = disks_equal(wlab, warm_run["uuids"])
    assert pairs and all(src == tgt for src, tgt in pairs.values()), pairs
    seeded = {d["sha256"] for vm in estate(wlab)["vms"] if vm["name"] in warm_run["running"] for d in vm["disks"]}
    assert seeded - {src for src, _ in pairs.values()}, "churn changed no disk: the test proves nothing"


def test_no_snapshot_left_and_status_shows_cycles_and_downtime(warm_run: dict[str, Any], wlab: LabInfo) -> None:
    """No snapshot of ours on the sources; status shows each VM's cycles (the final one too) and its downtime."""
    left = {vm: names for vm, names in snapshots_of(wlab).items() if any(n.startswith("migrate-warm") for n in names)}
    assert not left, left
    data = _status(wlab, warm_run["run_id"], warm_run["work"])
    for vm in data["vms"]:
        rep = vm["replication"]
        assert rep["cycles"] >= CYCLES_BEFORE_CUTOVER + 1, rep
        assert rep["downtime_s"] is not None and rep["downtime_s"] >= 0, rep
        assert rep["bytes_per_cycle"][0] > 0 and rep["cutover_requested"], rep
