"""The lab's vcsim has CBT, freezing snapshots, consolidation, guest writes and ranged datastore writes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from pyVmomi import vim, vmodl

from adapters.lab.estate import ONPREM
from adapters.vcenter.collector import read_properties, wait_for_task
from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.datastore_http import DatastoreFiles, split_datastore_path
from adapters.vcenter.settings import VCenterEndpoint, resolve_password, vcenter_settings
from adapters.vcenter.tls import requests_session
from migrate.cli.main import cli
from migrate.core.config import SiteConfig
from migrate.lab.churn import churn, merge_extents
from migrate.lab.manager import LabInfo

pytestmark = pytest.mark.lab

PAGE = 64 * 1024 * 1024            # the lab's default -cbt-page-bytes (a span with changes is at most this long)
CHANGE_ID = re.compile(r"^52( [0-9a-f]{2}){7}-[0-9a-f]{2}( [0-9a-f]{2}){7}/\d+$")
# VMs other integration tests name: left alone here
OTHERS_USE = {"shop-db-02", "shop-db-01", "reporting-web-01", "reporting-db-01", "crm-app-01", "placed-db-01",
              "crm-db-01", "ci-app-01", "shop-web-01", "shop-app-01"}


@dataclass
class Subject:
    """The VM these tests write to, and how to reach its first disk."""

    name: str
    ref: Any
    key: int
    capacity: int
    datastore: str
    path: str
    seeded_sha256: str
    original: bytes


def _disks(si: Any, obj: Any) -> list[Any]:
    devices = read_properties(si, obj, ["config.hardware.device"])["config.hardware.device"]
    return [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]


def _task(vc: VCenterSession, task: Any, what: str) -> Any:
    return wait_for_task(vc.si, task, what, endpoint=vc.endpoint.host)


def _snapshot(vc: VCenterSession, vm: Any, name: str) -> Any:
    return _task(vc, vm.CreateSnapshot_Task(name=name, memory=False, quiesce=False), f"snapshot {name}")


def _set_cbt(vc: VCenterSession, vm: Any, on: bool) -> None:
    _task(vc, vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(changeTrackingEnabled=on)), "set CBT")


def _areas(vm: Any, snapshot: Any, key: int, change_id: str, capacity: int) -> tuple[list[tuple[int, int]], int]:
    """Every changed area of the disk, page after page as a backup tool reads them, merged; and the call count."""
    offset, calls, areas = 0, 0, []
    while offset < capacity:
        info = vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=key, startOffset=offset, changeId=change_id)
        assert isinstance(info, vim.VirtualMachine.DiskChangeInfo)
        assert info.startOffset == offset and info.length > 0
        assert info.length <= PAGE or not info.changedArea   # an empty span reaches on to the next change
        for area in info.changedArea:
            assert offset <= area.start and area.start + area.length <= offset + info.length
        areas += [(a.start, a.length) for a in info.changedArea]
        offset += info.length
        calls += 1
    assert offset == capacity
    return merge_extents(areas), calls


def _overlay(content: bytes, writes: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(content)
    for offset, data in writes:
        if len(out) < offset + len(data):
            out.extend(b"\0" * (offset + len(data) - len(out)))
        out[offset:offset + len(data)] = data
    return bytes(out)


@pytest.fixture(scope="module")
def files(onprem: VCenterSession) -> Iterator[DatastoreFiles]:
    handle = DatastoreFiles(onprem)
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def subject(onprem: VCenterSession, manifest: dict[str, Any], files: DatastoreFiles) -> Iterator[Subject]:
    """A powered-on one-disk VM with the smallest disk; put back as seeded (no snapshot, CBT off) afterwards."""
    candidates = [vm for vm in manifest["vms"] if vm["powered_on"] and len(vm["disks"]) == 1
                  and vm["name"] not in OTHERS_USE and not vm["vapp"]]
    item = min(candidates, key=lambda vm: (vm["disks"][0]["size_gb"], vm["name"]))
    ref = vim.VirtualMachine(item["moref"], onprem.si._stub)
    disk = _disks(onprem.si, ref)[0]
    datastore, path = split_datastore_path(disk.backing.fileName)
    original = b"".join(files.download(ONPREM.datacenter, datastore, path))
    assert hashlib.sha256(original).hexdigest() == item["disks"][0]["sha256"]
    yield Subject(item["name"], ref, disk.key, disk.capacityInBytes or disk.capacityInKB * 1024, datastore, path,
                  item["disks"][0]["sha256"], original)
    _task(onprem, ref.RemoveAllSnapshots_Task(), "remove snapshots")
    _set_cbt(onprem, ref, False)
    files.upload(ONPREM.datacenter, datastore, path, iter([original]))


@pytest.fixture(scope="module")
def guest(site: SiteConfig, lab: LabInfo) -> Iterator[tuple[requests.Session, str]]:
    """An HTTP session for the guest endpoints (basic auth with the lab's user), and the base URL."""
    source = vcenter_settings(site.source, "source")
    session = requests_session(source.tls)
    session.auth = (source.username, resolve_password(source))
    yield session, lab.endpoints["onprem"].rsplit("/sdk", 1)[0]
    session.close()


def _write(guest: tuple[requests.Session, str], subject: Subject, offset: int, data: bytes) -> dict[str, Any]:
    session, base = guest
    response = session.post(f"{base}/lab/guest/write", params={"vm": subject.ref._moId, "key": subject.key,
                                                             "offset": offset}, data=data)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_snapshots_freeze_cbt_tracks_and_removal_consolidates(
        onprem: VCenterSession, lab: LabInfo, subject: Subject, files: DatastoreFiles,
        guest: tuple[requests.Session, str]) -> None:
    """S1 freezes the base; guest writes land in the delta; S2's changes since S1 are exactly those writes,
    paged over the capacity; removing S1 then S2 consolidates everything into the base and leaves no delta."""
    vc, vm, dc = onprem, subject.ref, ONPREM.datacenter
    base_name = f"[{subject.datastore}] {subject.path}"
    delta1, delta2 = base_name.replace(".vmdk", "-000001.vmdk"), base_name.replace(".vmdk", "-000002.vmdk")

    _set_cbt(vc, vm, True)
    disk = _disks(vc.si, vm)[0]
    assert CHANGE_ID.match(disk.backing.changeId), disk.backing.changeId

    s1 = _snapshot(vc, vm, "warm-s1")
    snap_disk, vm_disk = _disks(vc.si, s1)[0], _disks(vc.si, vm)[0]
    assert snap_disk.backing.fileName == base_name and CHANGE_ID.match(snap_disk.backing.changeId)
    assert vm_disk.backing.fileName == delta1 and vm_disk.backing.parent.fileName == base_name
    s1_change = snap_disk.backing.changeId

    allocated, calls = _areas(vm, s1, subject.key, "*", subject.capacity)
    assert allocated == [(0, len(subject.original))]
    assert calls == 2                            # the page with the data, then one empty span to the end

    result = churn(lab.directory, vms=[subject.name], mib_per_s=16, seconds=0.5, seed=5)
    churned = result.disk(subject.name, subject.key)
    assert churned.writes > 0 and churned.files == {delta1}
    boundary = (PAGE - 1000, b"B" * 3000)        # straddles the first page boundary
    small = (1000, b"s" * 5000)                  # not block aligned
    for offset, data in (boundary, small):
        assert _write(guest, subject, offset, data)["file"] == delta1
    written = merge_extents([*churned.written, (boundary[0], len(boundary[1])), (small[0], len(small[1]))])

    sha, _ = files.sha256(dc, subject.datastore, subject.path)
    assert sha == subject.seeded_sha256          # the base is frozen at S1

    s2 = _snapshot(vc, vm, "warm-s2")
    s2_disk, vm_disk = _disks(vc.si, s2)[0], _disks(vc.si, vm)[0]
    assert s2_disk.backing.fileName == delta1 and s2_disk.backing.parent.fileName == base_name
    assert vm_disk.backing.fileName == delta2 and vm_disk.backing.parent.fileName == delta1
    late = (4096, b"L" * 4096)                   # after S2: not part of S2
    _write(guest, subject, *late)

    changed, calls = _areas(vm, s2, subject.key, s1_change, subject.capacity)
    assert changed == written and calls > 1
    assert _areas(vm, s2, subject.key, "*", subject.capacity)[0] == \
        merge_extents([(0, len(subject.original)), *written])
    with pytest.raises(vim.fault.FileFault):     # S2's point is after S1's: the reverse has no meaning
        vm.QueryChangedDiskAreas(snapshot=s1, deviceKey=subject.key, startOffset=0,
                                 changeId=s2_disk.backing.changeId)

    # the disk as of S2: the base plus what the delta holds at the written extents
    delta_path = split_datastore_path(delta1)[1]
    at_s2 = _overlay(subject.original, [(o, files.read_range(dc, subject.datastore, delta_path, o, n))
                                        for o, n in written])

    _task(vc, s1.RemoveSnapshot_Task(removeChildren=False), "remove S1")
    assert files.size(dc, subject.datastore, delta_path) is None
    assert b"".join(files.download(dc, subject.datastore, subject.path)) == at_s2
    assert _disks(vc.si, s2)[0].backing.fileName == base_name
    assert _disks(vc.si, vm)[0].backing.parent.fileName == base_name
    assert _areas(vm, s2, subject.key, s1_change, subject.capacity)[0] == written   # same identity: still valid

    _task(vc, s2.RemoveSnapshot_Task(removeChildren=False), "remove S2")
    vm_disk = _disks(vc.si, vm)[0]
    assert vm_disk.backing.fileName == base_name and vm_disk.backing.parent is None
    assert files.size(dc, subject.datastore, split_datastore_path(delta2)[1]) is None
    assert b"".join(files.download(dc, subject.datastore, subject.path)) == _overlay(at_s2, [late])


def test_query_faults(onprem: VCenterSession, subject: Subject, manifest: dict[str, Any]) -> None:
    """CBT off, a snapshot without epoch, a stale or future changeId, a bad changeId, device key or offset,
    no snapshot on a running VM and another VM's snapshot each fail as vCenter fails them."""
    vc, vm, key = onprem, subject.ref, subject.key

    def query(snapshot: Any, change_id: str, device: int = key, offset: int = 0) -> Any:
        return vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=device, startOffset=offset, changeId=change_id)

    def message_key(fault: Any) -> str:
        return str(fault.faultMessage[0].key)

    _set_cbt(vc, vm, False)
    s0 = _snapshot(vc, vm, "no-cbt")
    with pytest.raises(vim.fault.FileFault) as off:
        query(s0, "*")
    assert message_key(off.value) == "vim.hostd.vmsvc.cbt.noTrack" and off.value.file.endswith(".vmdk")
    _set_cbt(vc, vm, True)
    with pytest.raises(vim.fault.FileFault) as no_epoch:
        query(s0, "*")
    assert message_key(no_epoch.value) == "vim.hostd.vmsvc.cbt.noEpoch"
    _task(vc, vm.RemoveAllSnapshots_Task(), "remove snapshots")

    old = _disks(vc.si, _snapshot(vc, vm, "before-reset"))[0].backing.changeId
    _set_cbt(vc, vm, False)
    _set_cbt(vc, vm, True)                       # a new identity: old changeIds are stale
    snap = _snapshot(vc, vm, "after-reset")
    current = _disks(vc.si, snap)[0].backing.changeId
    assert current.split("/")[0] != old.split("/")[0]
    for stale in (old, current.split("/")[0] + "/999"):
        with pytest.raises(vim.fault.FileFault) as exc:
            query(snap, stale)
        assert message_key(exc.value) == "vim.hostd.vmsvc.cbt.cannotGetChanges"
    assert query(snap, current).changedArea == []

    with pytest.raises(vmodl.fault.InvalidArgument) as bad_id:
        query(snap, "not-a-change-id")
    assert bad_id.value.invalidProperty == "changeId"
    for device in (1000, 4242):                  # the SCSI controller; no such device
        with pytest.raises(vmodl.fault.InvalidArgument) as bad_key:
            query(snap, "*", device=device)
        assert bad_key.value.invalidProperty == "deviceKey"
    with pytest.raises(vmodl.fault.InvalidArgument) as bad_offset:
        query(snap, "*", offset=subject.capacity)
    assert bad_offset.value.invalidProperty == "startOffset"
    with pytest.raises(vim.fault.InvalidPowerState):
        query(None, "*")

    other = next(v for v in manifest["vms"] if v["powered_on"] and v["name"] != subject.name
                 and v["name"] not in OTHERS_USE)
    other_ref = vim.VirtualMachine(other["moref"], vc.si._stub)
    foreign = _snapshot(vc, other_ref, "foreign")
    try:
        with pytest.raises(vim.fault.NotFound):
            query(foreign, "*")
    finally:
        _task(vc, other_ref.RemoveAllSnapshots_Task(), "remove foreign snapshot")
    assert _disks(vc.si, other_ref)[0].backing.fileName.endswith(f"{other['name']}.vmdk")
    _task(vc, vm.RemoveAllSnapshots_Task(), "remove snapshots")


def test_guest_write_endpoint(onprem: VCenterSession, subject: Subject, manifest: dict[str, Any],
                              guest: tuple[requests.Session, str], site: SiteConfig, files: DatastoreFiles) -> None:
    """Guest writes need a login (basic or a vim session), a running VM, a disk of it and a range inside it."""
    session, base = guest
    url = f"{base}/lab/guest/write"
    params = {"vm": subject.ref._moId, "key": subject.key, "offset": 0}
    source: VCenterEndpoint = vcenter_settings(site.source, "source")
    anonymous = requests_session(source.tls)
    try:
        assert anonymous.post(url, params=params, data=b"x").status_code == 401
        anonymous.auth = (source.username, "wrong")
        assert anonymous.post(url, params=params, data=b"x").status_code == 401
        anonymous.auth = None
        anonymous.cookies.set("vmware_soap_session", onprem.session_cookie)
        answer = anonymous.post(url, params=params, data=subject.original[:512])   # same bytes: content unchanged
        assert answer.status_code == 200 and answer.json()["length"] == 512
    finally:
        anonymous.close()
    stopped = next(v for v in manifest["vms"] if not v["powered_on"])
    assert session.post(url, params={**params, "vm": stopped["moref"], "key": 2000}, data=b"x").status_code in (
        404, 409)
    stopped_disk = _disks(onprem.si, vim.VirtualMachine(stopped["moref"], onprem.si._stub))[0].key
    assert session.post(url, params={**params, "vm": stopped["moref"], "key": stopped_disk},
                        data=b"x").status_code == 409
    assert session.post(url, params={**params, "vm": "vm-999999"}, data=b"x").status_code == 404
    assert session.post(url, params={**params, "key": 1000}, data=b"x").status_code == 404
    assert session.post(url, params={**params, "offset": subject.capacity - 1}, data=b"xy").status_code == 400
    listing = session.get(f"{base}/lab/guest/vms").json()["vms"]
    mine = next(v for v in listing if v["name"] == subject.name)
    assert mine["powerState"] == "poweredOn"
    assert mine["disks"][0]["file"] == f"[{subject.datastore}] {subject.path}"   # no snapshot: the base file
    assert mine["disks"][0]["size"] == files.size(ONPREM.datacenter, subject.datastore, subject.path)
    assert mine["disks"][0]["capacity"] == subject.capacity


def test_ranged_put_writes_in_place(onprem: VCenterSession, files: DatastoreFiles,
                                    guest: tuple[requests.Session, str]) -> None:
    """PUT with Content-Range writes at the offset without truncating and extends to TOTAL; bad lengths are 400;
    GET with Range, HEAD and the plain PUT keep their behaviour."""
    dc, ds, path = ONPREM.datacenter, "ds-prod-01", "lab-cbt-scratch/ranged.bin"
    try:
        files.write_range(dc, ds, path, 10, b"abc", 100)                    # creates the file
        assert files.size(dc, ds, path) == 100
        assert files.read_range(dc, ds, path, 8, 6) == b"\0\0abc\0"
        files.write_range(dc, ds, path, 0, b"XY", 5)                        # TOTAL smaller: no truncation
        assert files.size(dc, ds, path) == 100
        assert files.read_range(dc, ds, path, 0, 13) == b"XY" + b"\0" * 8 + b"abc"
        session, base = guest
        url = f"{base}/folder/{path}?dcPath={dc}&dsName={ds}"
        for header, body in (("bytes 0-9/10", b"short"), ("bytes 0-1/10", b"toolong"), ("bytes 5-1/10", b"x"),
                             ("bytes=0-1/10", b"xy")):
            assert session.put(url, data=body, headers={"Content-Range": header}).status_code == 400, header
        assert files.size(dc, ds, path) == 100
        files.upload(dc, ds, path, iter([b"whole"]))                         # no Content-Range: replaces
        assert b"".join(files.download(dc, ds, path)) == b"whole"
    finally:
        datacenter = next(d for d in onprem.si.content.rootFolder.childEntity if d.name == dc)
        # the lab names no entity for FileManager tasks (vcsim's FileManager entity made the TaskInfo unreadable)
        _task(onprem, onprem.si.content.fileManager.DeleteDatastoreFile_Task(
            name=f"[{ds}] lab-cbt-scratch", datacenter=datacenter), "delete scratch")


def test_churn_cli(lab: LabInfo, subject: Subject, manifest: dict[str, Any], files: DatastoreFiles) -> None:
    """`migrate lab churn --json` reports bytes and extents per VM and disk; unknown or stopped VMs exit 2."""
    runner = CliRunner()
    ok = runner.invoke(cli, ["lab", "churn", "--dir", str(lab.directory), "--vm", subject.name, "--mib-per-s", "8",
                             "--seconds", "0.3", "--seed", "9", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    vm = data["vms"][subject.name]
    assert data["bytes"] == vm["bytes"] > 0 and data["writes"] == vm["writes"]
    disk = vm["disks"][0]
    assert disk["key"] == subject.key and disk["extents"] and disk["files"] == [f"[{subject.datastore}] {subject.path}"]
    size = files.size(ONPREM.datacenter, subject.datastore, subject.path)
    assert size is not None
    assert all(start % 65536 == 0 and length % 65536 == 0 and start + length <= size
               for start, length in disk["extents"])

    unknown = runner.invoke(cli, ["lab", "churn", "--dir", str(lab.directory), "--vm", "no-such-vm",
                                  "--mib-per-s", "1", "--seconds", "0.1"])
    assert unknown.exit_code == 2 and "no-such-vm" in unknown.stderr
    stopped = next(v["name"] for v in manifest["vms"] if not v["powered_on"])
    off = runner.invoke(cli, ["lab", "churn", "--dir", str(lab.directory), "--vm", stopped, "--mib-per-s", "1"])
    assert off.exit_code == 2 and stopped in off.stderr and "poweredOff" in off.stderr
    nolab = runner.invoke(cli, ["lab", "churn", "--dir", str(lab.directory / "nope"), "--mib-per-s", "1"])
    assert nolab.exit_code == 1
