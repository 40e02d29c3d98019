"""Warm migration on the lab: a wave replicates while `lab churn` writes to its running VMs, then cuts over.

After the cutover every target disk equals its source disk at power-off (sha256), every VM is on the
target once, no snapshot of ours is left, and status shows the cycles and the measured downtime.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

import migrate.playbooks
from adapters.lab.estate import CLOUD, ONPREM
from adapters.vcenter.collector import read_view
from adapters.vcenter.datastore_http import DatastoreFiles, split_datastore_path
from migrate.engine.journal import Journal
from migrate.lab.churn import churn
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.migration.conftest import (
    assert_migrated_once,
    disk_files,
    estate,
    file_sha256,
    migrate_cli,
    plan_lab,
    sessions,
    vms_by_uuid,
)

CYCLES_BEFORE_CUTOVER = 3


@pytest.fixture(scope="module")
def wlab(warm_lab: LabInfo) -> LabInfo:
    return warm_lab


def warm_plan(lab: LabInfo, work: Path, *, interval: float = 1.0, max_vms: int = 4) -> tuple[Path, dict[str, Any]]:
    """The lab's plan with its first wave made warm (precopy every `interval` s); (path, that wave)."""
    plan = plan_lab(lab, work, max_vms=max_vms)
    doc = yaml.safe_load(plan.read_text())
    wave = doc["waves"][0]
    wave.update(method="warm", precopy_interval=interval)
    plan.write_text(yaml.safe_dump(doc, sort_keys=False))
    return plan, wave


def status(journal: Path) -> dict[str, Any]:
    result = run_cli("status", "--journal", journal, "--json")
    assert result.code == 0, result
    data: dict[str, Any] = result.json()
    return data


def wait_for_cycles(journal: Path, proc: subprocess.Popen[str], cycles: int, timeout: float = 180) -> dict[str, Any]:
    """Wait until every VM of the run has done `cycles` replication cycles; the status then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        found = run_cli("status", "--journal", journal, "--json") if journal.exists() else None
        if found is not None and found.code == 0:   # (exit 2 while the run is creating its journal)
            data: dict[str, Any] = found.json()
            reps = [vm.get("replication") or {} for vm in data["vms"]]
            if data["vms"] and all(rep.get("cycles", 0) >= cycles for rep in reps):
                return data
        time.sleep(0.5)
    raise AssertionError(f"no {cycles} cycles in {timeout} s: {status(journal)}")


def snapshots_of(lab: LabInfo) -> dict[str, list[str]]:
    """Snapshot names per source VM name."""
    source, target = sessions(lab)
    target.close()
    try:
        found: dict[str, list[str]] = {}
        for _, props in read_view(source.si, vim.VirtualMachine, ["name", "snapshot"]):
            names, stack = [], list(props["snapshot"].rootSnapshotList) if props.get("snapshot") else []
            while stack:
                node = stack.pop()
                names.append(node.name)
                stack.extend(node.childSnapshotList or [])
            found[props["name"]] = names
        return found
    finally:
        source.close()


def disks_equal(lab: LabInfo, uuids: set[str]) -> dict[str, tuple[str, str]]:
    """Per source disk file: (source sha256, target sha256) of each migrated VM."""
    source, target = sessions(lab)
    try:
        on_source, on_target = vms_by_uuid(source), vms_by_uuid(target)
        pairs = {}
        for uuid in uuids:
            src_files = disk_files(on_source[uuid][0])
            tgt_files = disk_files(on_target[uuid][0])
            assert len(src_files) == len(tgt_files)
            for src, tgt in zip(sorted(src_files, key=lambda p: p.rsplit("/", 1)[-1]),
                                sorted(tgt_files, key=lambda p: p.rsplit("/", 1)[-1]), strict=True):
                pairs[src] = (file_sha256(source, ONPREM.datacenter, src), file_sha256(target, CLOUD.datacenter, tgt))
        return pairs
    finally:
        source.close()
        target.close()


@pytest.fixture(scope="module")
def warm_run(wlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("warm-run")
    plan, wave = warm_plan(wlab, work)
    journal = work / "run.db"
    names = set(wave.get("vm_names") or [])
    running = [vm["name"] for vm in estate(wlab)["vms"] if vm["name"] in names and vm["powered_on"]]
    assert running, "the first wave has no running VM to replicate"
    book = work / "warm.yaml"   # the built-in playbook plus a VM post hook: test copies run it too
    book.write_text(Path(migrate.playbooks.__file__).with_name("warm.yaml").read_text().replace(
        "vm: {pre: [], post: []}", "vm: {pre: [], post: [{name: settle, wait: {seconds: 0}}]}"))
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(wlab.site_config),
                             "--playbook", str(book),
                             "--waves", str(wave["id"]), "--journal", str(journal), "--json",
                             "--concurrency", "2"],   # 2 slots, 4 VMs: a VM waiting between cycles holds none
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    written: dict[str, Any] = {}

    def write() -> None:
        written["result"] = churn(wlab.directory, vms=running, mib_per_s=2.0, seconds=600, seed=5, stop=stop)

    churner = threading.Thread(target=write, daemon=True)
    churner.start()
    try:   # the guests write until they are shut down: the final cycle must catch their last writes
        replicating = wait_for_cycles(journal, proc, CYCLES_BEFORE_CUTOVER)
        tested = run_cli("test", "--journal", journal, "--vm", running[0], "--wait", "120", "--json")
        test_vms = target_vm_names(wlab)
        cleaned = run_cli("test", "--journal", journal, "--vm", running[0], "--cleanup", "--wait", "120", "--json")
        after_cleanup = target_vm_names(wlab)
        asked = run_cli("cutover", "--journal", journal, "--wave", str(wave["id"]), "--json")
        out, err = proc.communicate(timeout=300)
    finally:
        stop.set()
        churner.join(timeout=60)
    return {"plan": plan, "wave": wave, "journal": journal, "running": running, "replicating": replicating,
            "asked": asked, "code": proc.returncode, "out": out, "err": err, "written": written.get("result"),
            "tested": tested, "test_vms": test_vms, "cleaned": cleaned, "after_cleanup": after_cleanup,
            "names": names, "uuids": {vm["instance_uuid"] for vm in estate(wlab)["vms"]
                                                     if vm["name"] in names}}


def test_replicates_while_running_then_cuts_over_on_request(warm_run: dict[str, Any]) -> None:
    assert warm_run["asked"].code == 0, warm_run["asked"]
    assert warm_run["code"] == 0, (warm_run["out"], warm_run["err"][-3000:])
    assert json.loads(warm_run["out"])["status"] == "completed"
    churned = warm_run["written"]
    assert churned is not None and churned.bytes > 0
    assert set(churned.stopped) == set(warm_run["running"])   # every guest wrote until its shutdown
    states = {vm["state"] for vm in warm_run["replicating"]["vms"]}
    assert states == {"replicating"}, states


def test_every_target_disk_equals_the_source_at_power_off(warm_run: dict[str, Any], wlab: LabInfo) -> None:
    assert_migrated_once(wlab, warm_run["uuids"])
    pairs = disks_equal(wlab, warm_run["uuids"])
    assert pairs and all(src == tgt for src, tgt in pairs.values()), pairs
    seeded = {d["sha256"] for vm in estate(wlab)["vms"] if vm["name"] in warm_run["running"] for d in vm["disks"]}
    assert seeded - {src for src, _ in pairs.values()}, "churn changed no disk: the test proves nothing"


def test_no_snapshot_of_ours_is_left_and_status_shows_cycles_and_downtime(warm_run: dict[str, Any],
                                                                          wlab: LabInfo) -> None:
    left = {vm: names for vm, names in snapshots_of(wlab).items() if any(n.startswith("migrate-warm") for n in names)}
    assert not left, left
    data = status(warm_run["journal"])
    for vm in data["vms"]:
        rep = vm["replication"]
        assert rep["cycles"] >= CYCLES_BEFORE_CUTOVER + 1, rep     # + the final cycle
        assert rep["downtime_s"] is not None and rep["downtime_s"] >= 0, rep
        assert rep["bytes_per_cycle"][0] > 0                       # the full copy
    text = run_cli("status", "--journal", warm_run["journal"])
    assert "cycle(s)" in text.stdout and "downtime" in text.stdout, text.stdout


def target_vm_names(lab: LabInfo) -> dict[str, dict[str, Any]]:
    """Every target VM by name: power state, instanceUuid, network names of its NICs."""
    source, target = sessions(lab)
    source.close()
    try:
        networks = {obj._moId: props["name"] for obj, props in read_view(target.si, vim.Network, ["name"])}
        found = {}
        for _, props in read_view(target.si, vim.VirtualMachine, ["name", "runtime.powerState", "config.instanceUuid",
                                                                    "network"]):
            found[props["name"]] = {"power": props["runtime.powerState"], "uuid": props["config.instanceUuid"],
                                    "networks": sorted(networks[n._moId] for n in props.get("network") or [])}
        return found
    finally:
        target.close()


def test_a_test_copy_runs_on_the_test_network_and_cleanup_removes_it(warm_run: dict[str, Any]) -> None:
    tested, cleaned = warm_run["tested"], warm_run["cleaned"]
    assert tested.code == 0, tested
    name = warm_run["running"][0]
    (outcome,) = tested.json()["outcomes"].values()
    assert outcome["ok"] and outcome["cycle"] >= CYCLES_BEFORE_CUTOVER - 1, outcome
    assert [c["kind"] for c in outcome["checks"]] == ["wait"] and outcome["checks"][0]["ok"]
    copy = warm_run["test_vms"][f"{name}-test"]
    assert copy["power"] == "poweredOn" and copy["networks"] == ["seg-test"], copy
    assert copy["uuid"] not in warm_run["uuids"]          # never taken for the migrated VM
    assert cleaned.code == 0, cleaned
    assert f"{name}-test" not in warm_run["after_cleanup"]


def test_cutover_of_a_finished_vm_is_bad_input(warm_run: dict[str, Any]) -> None:
    name = warm_run["replicating"]["vms"][0]["name"]
    again = run_cli("cutover", "--journal", warm_run["journal"], "--vm", name)
    assert again.code == 2 and "not replicating" in again.stderr, again
    unknown = run_cli("cutover", "--journal", warm_run["journal"], "--vm", "no-such-vm", "--wave", "99")
    assert unknown.code == 2 and "no-such-vm" in unknown.stderr and "99" in unknown.stderr, unknown


def test_rollback_removes_targets_replicas_and_restores_the_sources(warm_run: dict[str, Any], wlab: LabInfo) -> None:
    back = migrate_cli(wlab, "rollback", "--journal", warm_run["journal"], "--json")
    assert back.code == 0, back
    assert sorted(back.json()["rolled_back"]) == sorted(warm_run["uuids"])
    source, target = sessions(wlab)
    try:
        assert not set(vms_by_uuid(target)) & warm_run["uuids"]
        on_source = vms_by_uuid(source)
        for uuid in warm_run["uuids"]:
            props = on_source[uuid][0]
            assert not props["name"].endswith("(migrated)")
        running = {vm["instance_uuid"] for vm in estate(wlab)["vms"] if vm["name"] in warm_run["running"]}
        assert {u for u in running if on_source[u][0]["runtime.powerState"] == "poweredOn"} == running
        tracking = {props["name"]: props.get("config.changeTrackingEnabled")
                    for _, props in read_view(source.si, vim.VirtualMachine, ["name", "config.changeTrackingEnabled"])}
        assert not any(tracking[name] for name in warm_run["names"]), tracking   # turned off again
        with Journal(warm_run["journal"], create=False, read_only=True) as jr:   # Destroy_Task or remove_replicas
            replicas = [f["target"] for step in jr.steps(jr.runs()[-1].run_id, "vm") if step.step == "final_sync"
                        for disk in step.outputs["disks"] for f in disk["files"]]
        assert len(replicas) >= len(warm_run["uuids"]), replicas
        files = DatastoreFiles(target)
        try:
            assert all(files.size(CLOUD.datacenter, *split_datastore_path(path)) is None for path in replicas)
        finally:
            files.close()
    finally:
        source.close()
        target.close()


def test_a_vm_whose_tracking_cannot_be_turned_on_is_refused_before_the_run(warm_run: dict[str, Any], wlab: LabInfo,
                                                                            tmp_path: Path) -> None:
    """Someone's snapshot on a VM with tracking off (it can only be turned on without snapshots): exit 2 naming
    the VM, before anything runs (after the rollback above, the wave's VMs are back as they were)."""
    name = warm_run["running"][0]
    source, target = sessions(wlab)
    target.close()
    try:
        vm = next(obj for obj, props in read_view(source.si, vim.VirtualMachine, ["name"]) if props["name"] == name)
        task = vm.CreateSnapshot_Task(name="nightly backup", memory=False, quiesce=False)
        while task.info.state in ("queued", "running"):
            time.sleep(0.05)
        journal = tmp_path / "refused.db"
        refused = migrate_cli(wlab, "run", warm_run["plan"], "--waves", str(warm_run["wave"]["id"]),
                              "--journal", journal)
        assert refused.code == 2, refused
        assert name in refused.stderr and "without snapshots" in refused.stderr, refused.stderr
        assert snapshots_of(wlab)[name] == ["nightly backup"]   # nothing of ours was taken
        assert "holds no run" in run_cli("status", "--journal", journal).stderr
    finally:
        for _, props in read_view(source.si, vim.VirtualMachine, ["name", "snapshot"]):
            if props["name"] == name and props.get("snapshot"):
                props["snapshot"].rootSnapshotList[0].snapshot.RemoveSnapshot_Task(removeChildren=True)
        source.close()
