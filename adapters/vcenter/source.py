"""The on-prem vCenter as the source of a migration (migrate.core.ports.SourceInventory and the cold method's verbs).

VMs are addressed by instanceUuid. The migrated mark is a custom field `migrate.migrated` holding the
original name and a note, plus a rename to "<name> (migrated)"; the field is written first, so a crash
between the two is finished by calling `mark_migrated` again, and `unmark_migrated` undoes both.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from pyVmomi import vim

from adapters.vcenter.client import VCenterClient
from adapters.vcenter.collector import read_view
from adapters.vcenter.lookup import find_vm_by_instance_uuid
from adapters.vcenter.replication import VmReplication
from adapters.vcenter.settings import VCenterEndpoint
from adapters.vcenter.vm_ops import VmOps
from migrate.core.errors import AdapterError
from migrate.core.ports import Operation, PowerState, SnapshotDisk

__all__ = ["MARK_FIELD", "MARK_SUFFIX", "VCenterSource", "migrated_name"]

MARK_FIELD = "migrate.migrated"
MARK_SUFFIX = " (migrated)"
_MAX_NAME = 80


def migrated_name(name: str) -> str:
    """The name a migrated source VM gets (vCenter names are at most 80 characters)."""
    return name[: _MAX_NAME - len(MARK_SUFFIX)] + MARK_SUFFIX


class VCenterSource:
    """The VMs a run moves, on the on-prem vCenter."""

    def __init__(self, endpoint: VCenterEndpoint, *, client: VCenterClient | None = None,
                 shutdown_grace: float = 120.0) -> None:
        self.client = client or VCenterClient(endpoint)
        self.ops = VmOps(self.client, endpoint.datacenter, shutdown_grace=shutdown_grace)
        self.replication = VmReplication(self.ops)
        self._morefs: dict[str, str] = {}
        self._lock = threading.Lock()
        self._field_lock = threading.Lock()
        self._mark_key: int | None = None

    @property
    def name(self) -> str:
        """The endpoint's label (e.g. `onprem`)."""
        return self.client.endpoint.name

    def moref(self, vm_id: str) -> str:
        """The VM's moref, found by instanceUuid (AdapterError VmNotFound if there is none)."""
        with self._lock:
            cached = self._morefs.get(vm_id)
        if cached is not None:
            return cached
        vm = self.client.call("find vm", lambda si: find_vm_by_instance_uuid(si, vm_id))
        if vm is None:
            raise AdapterError("vcenter", "find vm", f"no VM with instanceUuid {vm_id}",
                               endpoint=self.client.where, code="VmNotFound")
        with self._lock:
            self._morefs[vm_id] = vm._moId
        return str(vm._moId)

    def describe_vm(self, vm_id: str) -> dict[str, Any]:
        """Live facts of a source VM (power, tools, snapshots, devices, disks with their files, NICs)."""
        return self.ops.facts(self.moref(vm_id))

    def vm_power_state(self, vm_id: str) -> PowerState:
        """Current power state."""
        return self.ops.power_state(self.moref(vm_id))

    def power_off_vm(self, vm_id: str) -> Operation:
        """Guest shutdown (hard power-off after the grace period); nothing if off."""
        return self.ops.power_off(self.moref(vm_id))

    def power_on_vm(self, vm_id: str) -> Operation:
        """Power on (rollback); nothing if on."""
        return self.ops.power_on(self.moref(vm_id))

    def read_file(self, path: str) -> Iterator[bytes]:
        """Stream one of the VM's datastore files."""
        return self.ops.read_file(path)

    def file_checksum(self, path: str) -> tuple[str, int] | None:
        """sha256 and size of one of the VM's datastore files, or None if it does not exist."""
        return self.ops.file_checksum(path)

    # -- replication of running VMs (migrate.core.ports.ReplicationSource) ---------------------------
    def change_tracking_problems(self, vm_id: str) -> list[str]:
        """Why changed block tracking cannot be used or turned on (empty: it can)."""
        return self.replication.problems(self.moref(vm_id))

    def enable_change_tracking(self, vm_id: str) -> bool:
        """Turn changed block tracking on; True if it was off."""
        return self.replication.set_tracking(self.moref(vm_id), True)

    def disable_change_tracking(self, vm_id: str) -> None:
        """Turn changed block tracking off."""
        self.replication.set_tracking(self.moref(vm_id), False)

    def snapshots(self, vm_id: str) -> list[dict[str, Any]]:
        """Every snapshot of the VM (id, name)."""
        return self.replication.snapshots(self.moref(vm_id))

    def create_snapshot(self, vm_id: str, name: str) -> Operation:
        """Take a crash-consistent snapshot called `name`; the result is its id."""
        return self.replication.create_snapshot(self.moref(vm_id), name)

    def remove_snapshot(self, snapshot_id: str) -> Operation:
        """Remove a snapshot, consolidating its delta; nothing if gone."""
        return self.replication.remove_snapshot(snapshot_id)

    def snapshot_disks(self, vm_id: str, snapshot_id: str) -> list[SnapshotDisk]:
        """The VM's disks as the snapshot froze them."""
        return self.replication.snapshot_disks(snapshot_id)

    def changed_extents(self, vm_id: str, snapshot_id: str, disk: SnapshotDisk,
                        since: str) -> Iterator[tuple[int, int]]:
        """Areas of `disk` written after change id `since` ("*": every allocated area), held in the snapshot."""
        return self.replication.changed_extents(self.moref(vm_id), snapshot_id, disk, since)

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """Bytes of a datastore file (a snapshot's frozen disk)."""
        return self.ops.read_range(path, offset, length)

    def _mark(self, vm_id: str) -> tuple[str, int, dict[str, Any]]:
        with self._field_lock:        # VMs of a wave are marked in parallel: one looks the field up (or adds it)
            if self._mark_key is None:
                self._mark_key = self.ops.field_key(MARK_FIELD)
        moref = self.moref(vm_id)
        facts = self.ops.read(moref, ["name", "customValue"], "read mark")
        value = next((v.value for v in facts["customValue"] or [] if v.key == self._mark_key), "")
        mark = json.loads(value) if value else {}
        return moref, self._mark_key, {"name": facts["name"], **({"mark": mark} if mark else {})}

    def is_marked_migrated(self, vm_id: str) -> bool:
        """True if the VM carries the migrated mark and name."""
        _, _, state = self._mark(vm_id)
        return "mark" in state and state["name"] == migrated_name(state["mark"]["name"])

    def mark_migrated(self, vm_id: str, note: str) -> None:
        """Record the original name and `note`, then rename; finishes a half-done mark; nothing if marked."""
        moref, key, state = self._mark(vm_id)
        if "mark" not in state:
            state["mark"] = {"name": state["name"], "note": note}
            self.ops.set_field(moref, key, json.dumps(state["mark"], sort_keys=True))
        new_name = migrated_name(state["mark"]["name"])
        if state["name"] != new_name:
            self.ops.wait(self.ops.rename(moref, new_name), "rename vm")

    def unmark_migrated(self, vm_id: str) -> None:
        """Restore the original name, then clear the mark; nothing if not marked."""
        moref, key, state = self._mark(vm_id)
        if "mark" not in state:
            return
        if state["name"] != state["mark"]["name"]:
            self.ops.wait(self.ops.rename(moref, state["mark"]["name"]), "rename vm")
        self.ops.set_field(moref, key, "")

    def migration_marks(self, vm_ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """Read-only, in one pass: per source VM {name, power_state, mark (original name and note) or None,
        marked (mark and renamed)}, or None when the source has no such VM. Adds no custom field."""
        wanted = set(vm_ids)

        def scan(si: Any) -> dict[str, dict[str, Any] | None]:
            manager = si.content.customFieldsManager
            key = next((int(d.key) for d in (manager.field or []) if d.name == MARK_FIELD
                        and d.managedObjectType in (None, vim.VirtualMachine)), None) if manager else None
            found: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
            paths = ["config.instanceUuid", "name", "runtime.powerState", "customValue"]
            for _, props in read_view(si, vim.VirtualMachine, paths):
                uuid = props.get("config.instanceUuid")
                if uuid not in wanted:
                    continue
                value = next((v.value for v in props.get("customValue") or [] if v.key == key), "") if key else ""
                try:
                    mark = json.loads(value) if value else None
                except ValueError:
                    mark = {"name": None, "note": value}
                name = str(props.get("name"))
                found[uuid] = {"name": name, "power_state": str(props.get("runtime.powerState")), "mark": mark,
                               "marked": mark is not None and name == migrated_name(str(mark.get("name")))}
            return found
        return self.client.call("read migration marks", scan)

    def close(self) -> None:
        """Log out."""
        self.client.close()
