"""The optional per-VM sheets of an RVTools export (vCPU, vMemory, vSnapshot, vTools) and a VM's last touches.

vCPU gives cores per socket and CPU hot add/remove; vMemory memory hot add; vSnapshot each snapshot
(count, oldest); vTools the tools status and version. A VM whose vInfo "Folder" is empty (RVTools 4.x
can leave it empty while "Folder ID" is set) takes the folder its rows in the other VM sheets carry.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from migrate.core.models.inventory import MAX_SNAPSHOTS, MAX_VCPUS, Guest, Vm
from migrate.importers.rvtools_columns import VCPU, VMEMORY, VSNAPSHOT, VTOOLS
from migrate.importers.rvtools_table import Table
from migrate.importers.rvtools_vms import VmDraft, VmIndex, is_snapshot_delta

__all__ = ["finish_vm", "read_vm_facts"]

_NUMBER = re.compile(r"^\d{1,3}(,\d{3})+$")


def read_vm_facts(tables: dict[str, Table | None], index: VmIndex) -> None:
    """Read vCPU, vMemory, vSnapshot and vTools (those present) into the drafts."""
    if (vcpu := tables.get(VCPU.name)) is not None:
        for row in vcpu.rows():
            owner = index.owner(row)
            sockets = row.integer("sockets", maximum=MAX_VCPUS)
            per_socket = row.integer("cores_per_socket", maximum=MAX_VCPUS)
            hot_add, hot_remove = row.flag("hot_add"), row.flag("hot_remove")
            if owner is not None:
                owner.fields.update(cores_per_socket=per_socket, cpu_hot_add=hot_add, cpu_hot_remove=hot_remove)
                if sockets is not None and per_socket is None and sockets:  # cores p/s missing: CPUs / sockets
                    owner.fields["cores_per_socket"] = owner.fields["cpus"] // sockets or None
    if (vmemory := tables.get(VMEMORY.name)) is not None:
        for row in vmemory.rows():
            owner = index.owner(row)
            hot_add = row.flag("hot_add")
            if owner is not None:
                owner.fields["memory_hot_add"] = hot_add
    if (vsnapshot := tables.get(VSNAPSHOT.name)) is not None:
        taken_by: dict[int, list[datetime]] = {}
        for row in vsnapshot.rows():
            owner = index.owner(row)
            taken = row.date("taken")
            if owner is not None:
                owner.fields["snapshots"] = min(owner.fields.get("snapshots", 0) + 1, MAX_SNAPSHOTS)
                if taken is not None:
                    taken_by.setdefault(id(owner), []).append(taken)
                    owner.fields["oldest_snapshot"] = min(taken_by[id(owner)])
    if (vtools := tables.get(VTOOLS.name)) is not None:
        for row in vtools.rows():
            owner = index.owner(row)
            if owner is not None:
                owner.fields["_tools_status"] = row.text("tools")
                version = row.text("tools_version")  # a number: CSV exports write "12,352"
                owner.fields["_tools_version"] = version.replace(",", "") if version and _NUMBER.match(version) \
                    else version


def finish_vm(draft: VmDraft, vm_id: str) -> Vm:
    """The inventory VM of a draft, under the id the merge gave it."""
    fields: dict[str, Any] = dict(draft.fields)
    guest = Guest(hostname=fields.pop("_hostname"), full_name=fields.pop("_os"),
                  ip_addresses=list(dict.fromkeys(draft.ips)), tools_status=fields.pop("_tools_status", None),
                  tools_version=fields.pop("_tools_version", None))
    if not fields["folder"] and draft.folders:
        fields["folder"] = draft.folders[0]
    bare = vm_id == draft.uuid or draft.uuid == fields["moref"]  # no instanceUuid to keep beside the id
    return Vm(**fields, id=vm_id, instance_uuid=None if bare else draft.uuid, guest=guest,
              disks=draft.disks, nics=draft.nics,
              running_on_snapshot=any(is_snapshot_delta(d.path) for d in draft.disks))
