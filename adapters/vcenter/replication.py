"""Changed block tracking and snapshots of running source VMs (migrate.core.ports.ReplicationSource's verbs).

vSphere API: `VirtualMachineConfigSpec.changeTrackingEnabled` turns tracking on (it takes effect at the
next stun, which the first snapshot is); each disk backing of a snapshot carries the `changeId` of the
disk's state it froze; `VirtualMachine.QueryChangedDiskAreas(snapshot, deviceKey, startOffset, changeId)`
answers a `DiskChangeInfo` for a span of the disk from `startOffset` (the caller goes on from
`startOffset + length` until the disk's capacity), with "*" for every allocated area. The snapshot's
base files stay as they were while guest writes go to a delta; `RemoveSnapshot_Task` consolidates it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyVmomi import vim

from adapters.vcenter.collector import read_properties
from adapters.vcenter.vm_ops import DoneOperation, VmOps
from migrate.core.errors import AdapterError
from migrate.core.ports import Operation, SnapshotDisk

__all__ = ["VmReplication"]

MIN_HARDWARE_VERSION = 7   # changed block tracking needs virtual hardware 7 or later
_INDEPENDENT = ("independent_persistent", "independent_nonpersistent")


class VmReplication:
    """Tracking, snapshots and changed areas of VMs on one vCenter, by moref."""

    def __init__(self, ops: VmOps) -> None:
        self.ops = ops
        self.client = ops.client

    def _snapshot(self, snapshot_id: str) -> Any:
        return vim.vm.Snapshot(snapshot_id, stub=self.client.si._stub)

    def problems(self, moref: str) -> list[str]:
        """Why tracking cannot be used or turned on for this VM (empty: it can)."""
        props = self.ops.read(moref, ["config.changeTrackingEnabled", "config.version", "config.hardware.device",
                                      "snapshot"], "read change tracking")
        problems = []
        version = str(props["config.version"] or "")
        if version.startswith("vmx-") and version[4:].isdigit() and int(version[4:]) < MIN_HARDWARE_VERSION:
            problems.append(f"virtual hardware {version} has no changed block tracking (needs vmx-07 or later)")
        for dev in props["config.hardware.device"] or []:
            if not isinstance(dev, vim.vm.device.VirtualDisk):
                continue
            mode = getattr(dev.backing, "diskMode", None)
            if mode in _INDEPENDENT:
                problems.append(f"disk {dev.key} is {mode}: snapshots and tracking skip independent disks")
            if getattr(dev.backing, "compatibilityMode", None) == "physicalMode":
                problems.append(f"disk {dev.key} is a physical-mode RDM: no changed block tracking")
        if not props["config.changeTrackingEnabled"] and props["snapshot"] is not None:
            problems.append("tracking is off and the VM has snapshots: it can only be turned on without snapshots")
        return problems

    def set_tracking(self, moref: str, enabled: bool) -> bool:
        """Turn tracking on or off; True if it changed."""
        props = self.ops.read(moref, ["config.changeTrackingEnabled"], "read change tracking")
        if bool(props["config.changeTrackingEnabled"]) == enabled:
            return False
        spec = vim.vm.ConfigSpec(changeTrackingEnabled=enabled)
        self.ops.wait(self.client.task("set change tracking", lambda si: self.ops.vm(moref).ReconfigVM_Task(spec)),
                      "set change tracking")
        return True

    def snapshots(self, moref: str) -> list[dict[str, Any]]:
        """Every snapshot of the VM: id and name."""
        info = self.ops.read(moref, ["snapshot"], "read snapshots")["snapshot"]
        found, stack = [], list(info.rootSnapshotList or []) if info is not None else []
        while stack:
            node = stack.pop()
            found.append({"id": str(node.snapshot._moId), "name": str(node.name)})
            stack.extend(node.childSnapshotList or [])
        return found

    def create_snapshot(self, moref: str, name: str) -> Operation:
        """A snapshot without memory or quiescing (crash-consistent, as the lab's guests need)."""
        return self.client.task("create snapshot", lambda si: self.ops.vm(moref).CreateSnapshot_Task(
            name=name, description="migrate: warm replication cycle", memory=False, quiesce=False))

    def remove_snapshot(self, snapshot_id: str) -> Operation:
        """Remove one snapshot and consolidate its delta; nothing if it is gone."""
        try:
            return self.client.task("remove snapshot", lambda si: self._snapshot(snapshot_id).RemoveSnapshot_Task(
                removeChildren=False, consolidate=True))
        except AdapterError as exc:
            if exc.code == "ManagedObjectNotFound":
                return DoneOperation(f"remove-snapshot:{snapshot_id}")
            raise

    def snapshot_disks(self, snapshot_id: str) -> list[SnapshotDisk]:
        """The disks as the snapshot froze them, with their change ids and file sizes."""
        devices = self.client.call("read snapshot", lambda si: read_properties(
            si, self._snapshot(snapshot_id), ["config.hardware.device"]))["config.hardware.device"] or []
        disks = []
        for dev in devices:
            if isinstance(dev, vim.vm.device.VirtualDisk):
                files, data, size = self._frozen_files(dev.key, str(getattr(dev.backing, "fileName", "")))
                disks.append(SnapshotDisk(key=int(dev.key), file=data, size=size, files=files,
                                          change_id=getattr(dev.backing, "changeId", None) or None,
                                          capacity_bytes=int(dev.capacityInBytes or dev.capacityInKB * 1024)))
        return disks

    def _frozen_files(self, key: int, descriptor: str) -> tuple[tuple[str, ...], str, int]:
        """(every file of the disk, the one holding its data, that one's size): a flat disk's data is in its
        `-flat.vmdk` extent next to the descriptor; without a non-empty one (the lab's disks) in the file itself."""
        size = self.ops.file_size(descriptor)
        if size is None:
            raise AdapterError("vcenter", "read snapshot", f"disk {key}: {descriptor} does not exist",
                               endpoint=self.client.where, code="FileNotFound")
        if not descriptor.endswith(".vmdk"):
            return (descriptor,), descriptor, size
        flat = descriptor.removesuffix(".vmdk") + "-flat.vmdk"
        flat_size = self.ops.file_size(flat)
        if flat_size is None:
            return (descriptor,), descriptor, size
        if flat_size:
            return (descriptor, flat), flat, flat_size
        return (descriptor, flat), descriptor, size

    def changed_extents(self, moref: str, snapshot_id: str, disk: SnapshotDisk,
                        since: str) -> Iterator[tuple[int, int]]:
        """(offset, length) of the areas written after `since` held in the snapshot, page by page."""
        start = 0
        while start < disk.capacity_bytes:
            def query(si: Any, start: int = start) -> Any:
                return self.ops.vm(moref).QueryChangedDiskAreas(snapshot=self._snapshot(snapshot_id),
                                                                deviceKey=disk.key, startOffset=start, changeId=since)
            info = self.client.call("query changed disk areas", query)
            for extent in info.changedArea or []:
                yield int(extent.start), int(extent.length)
            end = int(info.startOffset) + int(info.length)
            if end <= start:
                raise AdapterError("vcenter", "query changed disk areas",
                                   f"disk {disk.key}: no progress past offset {start}", endpoint=self.client.where)
            start = end
