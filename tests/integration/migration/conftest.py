"""Labs of their own for migration tests (they change both vCenters), and readers of what a run left."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from adapters.lab.estate import DATASTORE_MAP, NETWORK_MAP
from adapters.vcenter.collector import read_view
from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.datastore_http import DatastoreFiles, split_datastore_path
from adapters.vcenter.lookup import find_vm_by_instance_uuid
from migrate.config import load_site_config
from migrate.lab.manager import LabInfo, lab_down, lab_up
from tests.helpers import CliResult, run_cli

VM_PATHS = ["name", "config.instanceUuid", "config.extraConfig", "runtime.powerState", "config.hardware.numCPU",
            "config.hardware.memoryMB", "config.hardware.device", "customValue", "resourcePool", "parent"]


def start_lab(tmp_path_factory: pytest.TempPathFactory, name: str, vms: int, seed: int) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp(name)
    info = lab_up(directory, vms=vms, seed=seed)
    try:
        yield info
    finally:
        lab_down(directory)


@pytest.fixture(scope="package")
def warm_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    """One lab for the warm end-to-end modules (warm, then warm_replatform: each rolls its wave back at the end)."""
    yield from start_lab(tmp_path_factory, "warm", 10, 11)


@pytest.fixture(scope="package")
def warm_fault_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    """One lab for the warm crash and network-fault modules (each test rolls its wave back at the end)."""
    yield from start_lab(tmp_path_factory, "warm-faults", 10, 13)


def plan_lab(lab: LabInfo, work: Path, *, max_vms: int = 15) -> Path:
    """discover -> plan on the lab, through the CLI; the plan's path."""
    site = lab.site_config
    assert run_cli("discover", "--config", site, "--out", work / "inventory.json").code == 0
    result = run_cli("plan", "--inventory", work / "inventory.json", "--flows", lab.directory / "flows.csv",
                     "--max-vms", str(max_vms), "--out", work / "plan.yaml")
    assert result.code == 0, result
    return work / "plan.yaml"


def migrate_cli(lab: LabInfo, *args: str | Path, timeout: float = 300) -> CliResult:
    return run_cli(*args, "--config", lab.site_config, timeout=timeout)


def sessions(lab: LabInfo) -> tuple[VCenterSession, VCenterSession]:
    site = load_site_config(lab.site_config)
    assert site.target is not None
    return connect(site.source), connect(site.target)


def vms_by_uuid(vc: VCenterSession) -> dict[str, list[dict[str, Any]]]:
    """Every VM of a vCenter by instanceUuid (a list: duplicates would show)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for obj, props in read_view(vc.si, vim.VirtualMachine, VM_PATHS):
        props["moref"] = obj._moId
        found.setdefault(props["config.instanceUuid"], []).append(props)
    return found


def nics(props: dict[str, Any]) -> list[tuple[str, Any]]:
    devices: list[Any] = props["config.hardware.device"]
    return sorted((str(d.macAddress), d.backing) for d in devices
                  if isinstance(d, vim.vm.device.VirtualEthernetCard))


def disk_files(props: dict[str, Any]) -> list[str]:
    devices: list[Any] = props["config.hardware.device"]
    return sorted(str(getattr(d.backing, "fileName", "")) for d in devices
                  if isinstance(d, vim.vm.device.VirtualDisk))


def file_sha256(vc: VCenterSession, datacenter: str, path: str) -> str:
    datastore, rel = split_datastore_path(path)
    files = DatastoreFiles(vc)
    try:
        return files.sha256(datacenter, datastore, rel)[0]
    finally:
        files.close()


def estate(lab: LabInfo) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((lab.directory / "estate.json").read_text())
    return data


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_migrated_once(lab: LabInfo, expected: set[str]) -> None:
    """Every expected source is on the target exactly once, marked and off on the source."""
    source, target = sessions(lab)
    try:
        on_target = vms_by_uuid(target)
        on_source = vms_by_uuid(source)
    finally:
        source.close()
        target.close()
    duplicates = {uuid: len(vms) for uuid, vms in on_target.items() if len(vms) > 1}
    assert not duplicates, f"duplicated on the target: {duplicates}"
    missing = expected - set(on_target)
    assert not missing, f"missing on the target: {missing}"
    for uuid in expected:
        src = on_source[uuid][0]
        assert src["name"].endswith(" (migrated)"), src["name"]
        assert src["runtime.powerState"] == "poweredOff"


def block_the_mark(lab: LabInfo, victim_name: str, victim_uuid: str, datastore: str = "ds-dev-01") -> None:
    """A VM called '<victim> (migrated)' next to the victim (once): vCenter refuses the rename that marks it."""
    source, target = sessions(lab)
    target.close()
    try:
        if any(vms[0]["name"] == f"{victim_name} (migrated)" for vms in vms_by_uuid(source).values()):
            return
        vm = find_vm_by_instance_uuid(source.si, victim_uuid)
        spec = vim.vm.ConfigSpec(name=f"{victim_name} (migrated)", guestId="otherGuest64", numCPUs=1, memoryMB=64,
                                 files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"))
        task = vm.parent.CreateVM_Task(config=spec, pool=vm.resourcePool)
        while task.info.state in ("queued", "running"):
            time.sleep(0.05)
        assert task.info.state == "success", task.info.error
    finally:
        source.close()


def _portgroup_names(vc: Any) -> dict[str, str]:
    return {props["key"]: props["name"]
            for _, props in read_view(vc.si, vim.dvs.DistributedVirtualPortgroup, ["name", "key"])}


def assert_targets_match_sources(mlab: LabInfo, before: dict[str, list[dict[str, Any]]]) -> None:
    """The target check of a run that moved the whole seeded estate (any engine): every VM exactly once, in the
    target's pool and folder, with its name, hardware, MACs, mapped networks, power state and every disk's
    sha256; `before` is the source's VMs by instanceUuid as they were before the run."""
    source, target = sessions(mlab)
    try:
        on_target = vms_by_uuid(target)
        portgroups = _portgroup_names(target)
        seeded = estate(mlab)["vms"]
        for vm in seeded:
            uuid = vm["instance_uuid"]
            assert len(on_target.get(uuid, [])) == 1, vm["name"]
            tgt = on_target[uuid][0]
            src = before[uuid][0]
            assert tgt["name"] == vm["name"]
            assert (tgt["resourcePool"].name, tgt["parent"].name) == ("Compute-ResourcePool", "Workloads")
            assert (tgt["config.hardware.numCPU"], tgt["config.hardware.memoryMB"]) == (vm["cpus"], vm["memory_mb"])
            assert {o.key: o.value for o in tgt["config.extraConfig"]}["migrate.sourceInstanceUuid"] == uuid
            assert [mac for mac, _ in nics(tgt)] == [mac for mac, _ in nics(src)]
            assert {portgroups[b.port.portgroupKey] for _, b in nics(tgt)} == {NETWORK_MAP[vm["portgroup"]]}
            assert tgt["runtime.powerState"] == ("poweredOn" if vm["powered_on"] else "poweredOff")
            expected = {f"[{DATASTORE_MAP[d['datastore']]}] {d['path']}": d["sha256"] for d in vm["disks"]}
            assert disk_files(tgt) == sorted(expected)
            for path, sha in expected.items():
                assert file_sha256(target, "SDDC-Datacenter", path) == sha, path
    finally:
        source.close()
        target.close()
