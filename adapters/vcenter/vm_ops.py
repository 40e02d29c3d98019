"""VM verbs both vCenters share: find, read facts, power, custom fields, datastore files."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from pyVmomi import vim

from adapters.vcenter.client import VCenterClient
from adapters.vcenter.collector import read_properties
from adapters.vcenter.datastore_http import split_datastore_path
from adapters.vcenter.lookup import find_datacenter
from migrate.core.errors import AdapterError
from migrate.core.faults import call_with_retry
from migrate.core.ports import Operation, OperationState, OperationStatus, PowerState

__all__ = ["DoneOperation", "ShutdownOperation", "VmOps"]

_FACT_PATHS = ["name", "runtime.powerState", "guest.toolsRunningStatus", "snapshot", "config.hardware.device",
               "layoutEx", "config.instanceUuid", "config.extraConfig", "config.hardware.numCPU",
               "config.hardware.memoryMB", "customValue", "parent"]
_NOTABLE = {vim.vm.device.VirtualUSB: "usb", vim.vm.device.VirtualSerialPort: "serial",
            vim.vm.device.VirtualParallelPort: "parallel", vim.vm.device.VirtualPCIPassthrough: "pci-passthrough"}


@dataclass(frozen=True)
class DoneOperation:
    """An operation that had nothing to do."""

    id: str
    result: Any = None

    def poll(self) -> OperationStatus:
        """Already done."""
        return OperationStatus(OperationState.SUCCESS, 100, self.result)


@dataclass
class ShutdownOperation:
    """A guest shutdown, followed by a hard power-off if the guest is still on after `grace` seconds."""

    ops: VmOps
    vm_id: str
    grace: float
    started: float = field(default_factory=time.monotonic)
    hard: Operation | None = None

    @property
    def id(self) -> str:
        """What this operation is (no task behind a guest shutdown)."""
        return f"shutdown-guest:{self.vm_id}"

    def poll(self) -> OperationStatus:
        """Off yet? After the grace period, power off."""
        if self.hard is not None:
            return self.hard.poll()
        if self.ops.power_state(self.vm_id) == "poweredOff":
            return OperationStatus(OperationState.SUCCESS, 100)
        if time.monotonic() - self.started > self.grace:
            self.hard = self.ops.power_off(self.vm_id, guest_first=False)
            return self.hard.poll()
        return OperationStatus(OperationState.RUNNING)


class VmOps:
    """VM verbs on one vCenter, by instanceUuid (source) or moref (target)."""

    def __init__(self, client: VCenterClient, datacenter: str | None, *, shutdown_grace: float = 120.0) -> None:
        self.client = client
        self.datacenter_name = datacenter
        self.shutdown_grace = shutdown_grace
        self._datacenter: tuple[str, str] | None = None  # name, moref
        self._folders: set[str] = set()  # datastore folders made for ranged writes

    # -- objects -----------------------------------------------------------------------------------
    def vm(self, moref: str) -> Any:
        """A VM managed object bound to the current session."""
        return vim.VirtualMachine(moref, stub=self.client.si._stub)

    def datacenter(self) -> str:
        """The datacenter's name (for datastore HTTP), looked up once."""
        return self._find_datacenter()[0]

    def datacenter_object(self, si: Any) -> Any:
        """The datacenter as a managed object of the session `si` belongs to (for FileManager calls)."""
        return vim.Datacenter(self._find_datacenter()[1], stub=si._stub)

    def _find_datacenter(self) -> tuple[str, str]:
        if self._datacenter is None:
            found = self.client.call("find datacenter", lambda si: find_datacenter(si, self.datacenter_name))
            if found is None:
                what = repr(self.datacenter_name) if self.datacenter_name else "(set `datacenter` in site.yaml)"
                raise AdapterError("vcenter", "find datacenter", f"no single datacenter {what}",
                                   endpoint=self.client.where)
            self._datacenter = (self.client.call("read datacenter", lambda si: found.name), str(found._moId))
        return self._datacenter

    def read(self, moref: str, paths: list[str], op: str) -> dict[str, Any]:
        """Properties of one VM in one call (ManagedObjectNotFound when it is gone)."""
        return self.client.call(op, lambda si: read_properties(si, self.vm(moref), paths))

    # -- facts -------------------------------------------------------------------------------------
    def facts(self, moref: str) -> dict[str, Any]:
        """Plain facts of a VM: identity, power, tools, snapshots, hardware, disks with every file, NICs."""
        props = self.read(moref, _FACT_PATHS, "describe vm")
        devices = props["config.hardware.device"] or []
        layout = props["layoutEx"]
        files = {f.key: (f.name, int(f.size or 0)) for f in (layout.file if layout else [])}
        chains = {d.key: [files[k] for unit in d.chain for k in unit.fileKey if k in files]
                  for d in (layout.disk if layout else [])}
        disks, nics, notable = [], [], set()
        for dev in devices:
            if isinstance(dev, vim.vm.device.VirtualDisk):
                backing = dev.backing
                chain = chains.get(dev.key) or [(getattr(backing, "fileName", None), 0)]
                disks.append({"key": dev.key, "file": getattr(backing, "fileName", None),
                              "files": [name for name, _ in chain], "bytes": sum(size for _, size in chain),
                              "file_bytes": dict(chain),
                              "capacity_bytes": int(dev.capacityInBytes or dev.capacityInKB * 1024),
                              "rdm": getattr(backing, "compatibilityMode", None)})
            elif isinstance(dev, vim.vm.device.VirtualEthernetCard):
                backing = dev.backing
                network = (getattr(getattr(backing, "port", None), "portgroupKey", None)
                           or getattr(backing, "deviceName", None) or getattr(backing, "opaqueNetworkId", None))
                nics.append({"key": dev.key, "mac": dev.macAddress, "network": network})
            for kind, label in _NOTABLE.items():
                if isinstance(dev, kind):
                    notable.add(label)
        extra = {o.key: o.value for o in props["config.extraConfig"] or []}
        return {"id": moref, "name": props["name"], "power_state": str(props["runtime.powerState"]),
                "tools_running": props["guest.toolsRunningStatus"] == "guestToolsRunning",
                "snapshots": _count_snapshots(props["snapshot"]), "devices": sorted(notable),
                "instance_uuid": props["config.instanceUuid"], "extra_config": extra,
                "cpus": props["config.hardware.numCPU"], "memory_mb": props["config.hardware.memoryMB"],
                "disks": disks, "nics": nics,
                "custom": {v.key: v.value for v in props["customValue"] or []},
                "folder": props["parent"]._moId if props["parent"] is not None else None}

    # -- power -------------------------------------------------------------------------------------
    def power_state(self, moref: str) -> PowerState:
        """Current power state."""
        state = str(self.read(moref, ["runtime.powerState"], "read power state")["runtime.powerState"])
        return cast(PowerState, state)

    def power_off(self, moref: str, *, guest_first: bool = True) -> Operation:
        """Shut the guest down when its tools run (else, or after the grace period, power off); nothing if off."""
        props = self.read(moref, ["runtime.powerState", "guest.toolsRunningStatus"], "read power state")
        if props["runtime.powerState"] == "poweredOff":
            return DoneOperation(f"power-off:{moref}")
        if guest_first and props["runtime.powerState"] == "poweredOn" \
                and props["guest.toolsRunningStatus"] == "guestToolsRunning":
            try:
                self.client.call("shutdown guest", lambda si: self.vm(moref).ShutdownGuest(), idempotent=False)
                return ShutdownOperation(self, moref, self.shutdown_grace)
            except AdapterError as exc:
                if exc.retryable:
                    # the request may have reached the guest (a lost reply): wait for it like for any shutdown,
                    # which powers off only after the grace period, never in the middle of an orderly shutdown
                    return ShutdownOperation(self, moref, self.shutdown_grace)
                # tools not usable after all (the vCenter said so): power off
        return self.client.task("power off", lambda si: self.vm(moref).PowerOffVM_Task())

    def power_on(self, moref: str) -> Operation:
        """Power on; nothing if on."""
        if self.power_state(moref) == "poweredOn":
            return DoneOperation(f"power-on:{moref}")
        return self.client.task("power on", lambda si: self.vm(moref).PowerOnVM_Task())

    def rename(self, moref: str, name: str) -> Operation:
        """Rename the VM."""
        return self.client.task("rename vm", lambda si: self.vm(moref).Rename_Task(newName=name))

    def wait(self, op: Operation, what: str, timeout: float = 300.0) -> Any:
        """Poll a short operation to its end here (renames, deletes); its result or its AdapterError."""
        deadline, delay = time.monotonic() + timeout, 0.02
        while True:
            status = op.poll()
            if status.state is OperationState.SUCCESS:
                return status.result
            if status.state is OperationState.ERROR:
                raise status.error or AdapterError("vcenter", what, f"operation {op.id} failed")
            if time.monotonic() > deadline:
                raise AdapterError("vcenter", what, f"operation {op.id} still running after {timeout:.0f} s",
                                   retryable=True, endpoint=self.client.where)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # -- custom fields -----------------------------------------------------------------------------
    def field_key(self, name: str) -> int:
        """The key of the VM custom field `name`, created if missing (or found, if another step or run
        created it meanwhile: AddCustomFieldDef then answers DuplicateName)."""
        def find(manager: Any) -> int | None:
            for definition in manager.field or []:
                if definition.name == name and definition.managedObjectType in (None, vim.VirtualMachine):
                    return int(definition.key)
            return None

        def find_or_add(si: Any) -> int:
            manager = si.content.customFieldsManager
            key = find(manager)
            if key is not None:
                return key
            try:
                return int(manager.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key)
            except vim.fault.DuplicateName:
                key = find(manager)
                if key is None:
                    raise
                return key
        return self.client.call("custom field", find_or_add)

    def set_field(self, moref: str, key: int, value: str) -> None:
        """Set (or with "" clear) a custom field on the VM."""
        self.client.call("set custom field",
                         lambda si: si.content.customFieldsManager.SetField(entity=self.vm(moref), key=key,
                                                                            value=value))

    # -- datastore files ---------------------------------------------------------------------------
    def read_file(self, path: str) -> Iterator[bytes]:
        """Stream a datastore file ('[ds] dir/file')."""
        datastore, rel = split_datastore_path(path)
        yield from self.client.files().download(self.datacenter(), datastore, rel)

    def write_file(self, path: str, chunks: Iterable[bytes]) -> str:
        """Stream `chunks` into a datastore file (creating its folder); the sha256 of what was sent."""
        datastore, rel = split_datastore_path(path)
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if folder:
            self.make_directory(f"[{datastore}] {folder}")
        return self.client.files().upload(self.datacenter(), datastore, rel, chunks)

    def file_checksum(self, path: str) -> tuple[str, int] | None:
        """sha256 and size of a datastore file, or None if it does not exist."""
        datastore, rel = split_datastore_path(path)
        try:
            return call_with_retry(lambda: self.client.files().sha256(self.datacenter(), datastore, rel),
                                   backoff=self.client.backoff)
        except AdapterError as exc:
            if exc.code == "HTTP 404":
                return None
            raise

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """`length` bytes of a datastore file from `offset` (retried like every read)."""
        datastore, rel = split_datastore_path(path)
        return call_with_retry(lambda: self.client.files().read_range(self.datacenter(), datastore, rel, offset,
                                                                      length), backoff=self.client.backoff)

    def write_range(self, path: str, offset: int, data: bytes, total: int) -> None:
        """Write `data` at `offset` of a datastore file in place (the same bytes again are harmless: retried)."""
        datastore, rel = split_datastore_path(path)
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if folder and f"[{datastore}] {folder}" not in self._folders:
            self.make_directory(f"[{datastore}] {folder}")
            self._folders.add(f"[{datastore}] {folder}")
        call_with_retry(lambda: self.client.files().write_range(self.datacenter(), datastore, rel, offset, data,
                                                                total), backoff=self.client.backoff)

    def file_size(self, path: str) -> int | None:
        """Size of a datastore file, None if it does not exist."""
        datastore, rel = split_datastore_path(path)
        return call_with_retry(lambda: self.client.files().size(self.datacenter(), datastore, rel),
                               backoff=self.client.backoff)

    def make_directory(self, path: str) -> None:
        """Create a datastore folder (and its parents); nothing if it exists."""
        def make(si: Any) -> None:
            dc = self.datacenter_object(si)
            with contextlib.suppress(vim.fault.FileAlreadyExists):
                si.content.fileManager.MakeDirectory(name=path, datacenter=dc, createParentDirectories=True)
        self.client.call("make directory", make)

    def delete_file(self, path: str) -> Operation:
        """Delete a datastore file or folder; nothing if it is gone."""
        def start(si: Any) -> Any:
            dc = self.datacenter_object(si)
            return si.content.fileManager.DeleteDatastoreFile_Task(name=path, datacenter=dc)
        try:
            return self.client.task("delete file", start)
        except AdapterError as exc:
            if exc.code == "FileNotFound":
                return DoneOperation(f"delete:{path}")
            raise


def _count_snapshots(info: Any) -> int:
    if info is None:
        return 0
    count, stack = 0, list(info.rootSnapshotList or [])
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.childSnapshotList or [])
    return count

