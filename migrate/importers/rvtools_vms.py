"""VMs of one RVTools export: drafts from vInfo, then their disks (vDisk) and NICs (vNetwork).

A VM belongs to the vCenter of its row ("VI SDK UUID", else "VI SDK Server", else the export itself): a
workbook merged from several vCenters holds several. Rows of the other VM sheets join their VM by
"VM UUID" when they have it, else by name, within the row's vCenter when the row names one; a join that
is ambiguous is a problem.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from migrate.core.models.inventory import MAX_COUNT, MAX_DISK_BYTES, MAX_MEMORY_MB, MAX_VCPUS, Disk, Nic
from migrate.importers.rvtools_columns import (
    CUSTOM_ATTRIBUTES_AFTER,
    CUSTOM_ATTRIBUTES_UNTIL,
    MIB,
    VINFO,
    normalise_header,
)
from migrate.importers.rvtools_table import Row, Table, cell_text

__all__ = ["VmDraft", "VmIndex", "custom_attribute_headers", "is_snapshot_delta", "read_disks", "read_nics",
           "read_vms", "vcenter_of"]

_POWER_STATES = {s.casefold(): s for s in ("poweredOn", "poweredOff", "suspended")}
_DATASTORE_PATH = re.compile(r"^\[(?P<ds>[^\]]*)\]\s*(?P<path>.*)$")
_SNAPSHOT_DELTA = re.compile(r"-\d{6}\.vmdk$", re.IGNORECASE)  # vm-000003.vmdk: a snapshot's delta disk
_CONTROLLER = re.compile(r"^(?P<kind>scsi|ide|sata|nvme)\s*(?:controller)?\s*(?P<bus>\d+)$", re.IGNORECASE)
_RDM_MODES: dict[str, Literal["physical", "virtual"]] = {
    "physicalmode": "physical", "physical": "physical", "virtualmode": "virtual", "virtual": "virtual"}


@dataclass
class VmDraft:
    """A VM being assembled from its vInfo row, then the rows of the other sheets."""

    file: str
    row: int
    vcenter: str  # the key of its vCenter: VI SDK UUID, else VI SDK Server, else the export's name
    uuid: str  # its id within that vCenter: VM UUID, else VM ID
    id_field: str  # where that id is: 'vInfo row 2, column "VM UUID"'
    fields: dict[str, Any]
    disks: list[Disk] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)  # "Folder" of its rows in the other sheets


def vcenter_of(row: Row) -> str | None:
    """The vCenter a row names, if it does."""
    return row.text("sdk_uuid") or row.text("sdk_server")


def custom_attribute_headers(vinfo: Table) -> list[str]:
    return [vinfo.headers[i] for i in _custom_attribute_indexes(vinfo)]


def _custom_attribute_indexes(vinfo: Table) -> list[int]:
    start = vinfo.index_of(CUSTOM_ATTRIBUTES_AFTER)
    if start is None:
        return []
    indexes = []
    for index in range(start + 1, len(vinfo.headers)):
        header = vinfo.headers[index]
        if normalise_header(header) in CUSTOM_ATTRIBUTES_UNTIL:
            break
        if header:
            indexes.append(index)
    return indexes


def read_vms(vinfo: Table, export: str) -> list[VmDraft]:
    """One draft per good vInfo row; bad cells are problems. `export` names the vCenter of rows naming none."""
    custom = _custom_attribute_indexes(vinfo)
    drafts: list[VmDraft] = []
    if not vinfo.has("uuid") and not vinfo.has("moref"):
        vinfo.problems.add(f'{VINFO.name}, column "VM UUID"', 'required column is missing (nor "VM ID")')
    seen: dict[tuple[str, str], int] = {}
    for row in vinfo.rows():
        draft = _read_vm(row, custom, export)
        if draft is None:
            continue
        if (first := seen.get((draft.vcenter, draft.uuid))) is not None:
            vinfo.problems.add(draft.id_field, f"duplicate VM id {draft.uuid!r} (also in row {first})")
            continue
        seen[(draft.vcenter, draft.uuid)] = row.number
        drafts.append(draft)
    return drafts


def _read_vm(row: Row, custom: list[int], export: str) -> VmDraft | None:
    name = row.text("name")
    if name is None:
        row.bad("name", "VM name is empty")
    vm_id = row.text("uuid") or row.text("moref")
    if vm_id is None and (row.table.has("uuid") or row.table.has("moref")):
        row.bad("uuid" if row.table.has("uuid") else "moref", "empty: the VM needs a UUID (or VM ID) as its id")
    power = row.text("power")
    power_state = _POWER_STATES.get(power.casefold()) if power else None
    if power is not None and power_state is None:
        row.bad("power", f"must be poweredOn, poweredOff or suspended, got {power!r}")
    cpus, memory = row.integer("cpus", maximum=MAX_VCPUS), row.integer("memory", maximum=MAX_MEMORY_MB)
    row.integer("nics"), row.integer("disks")  # checked only: vDisk and vNetwork hold the devices
    flags = {key: row.flag(column) for key, column in (
        ("template", "template"), ("change_tracking", "cbt"), ("consolidation_needed", "consolidation"),
        ("secure_boot", "secure_boot"))}
    primary_ip = _ip(row, "primary_ip", row.text("primary_ip"))
    if name is None or vm_id is None:
        return None
    attributes = {row.table.headers[i]: text for i in custom if (text := cell_text(row.at(i))) is not None}
    fields: dict[str, Any] = {
        "name": name,
        "moref": row.text("moref"),
        "bios_uuid": row.text("bios_uuid"),
        "cpus": cpus or 0,
        "memory_mb": memory or 0,
        "firmware": (row.text("firmware") or "").lower() or None,
        "hardware_version": _hardware_version(row.text("hw_version")),
        "power_state": power_state,
        "annotation": row.text("annotation"),
        "change_version": row.text("change_version"),
        "datacenter": row.text("datacenter"),
        "host": row.text("host"),
        "cluster": row.text("cluster"),
        "folder": row.text("folder"),
        "resource_pool": row.text("resource_pool"),
        "vapp": row.text("vapp"),
        "custom_attributes": attributes,
        "source": row.text("sdk_server"),
        "source_instance_uuid": row.text("sdk_uuid"),
        **{key: value for key, value in flags.items() if key != "template"},
        "template": bool(flags["template"]),
        "fault_tolerance_state": row.text("ft_state"),
        "min_evc_mode": row.text("min_evc"),
        "_hostname": row.text("dns_name"),
        "_os": row.text("os_tools") or row.text("os_config"),
    }
    id_field = row.field("uuid" if row.text("uuid") else "moref")
    return VmDraft(row.table.file, row.number, vcenter_of(row) or export, vm_id, id_field, fields,
                   ips=[primary_ip] if primary_ip else [])


def _hardware_version(text: str | None) -> str | None:
    return f"vmx-{text}" if text and text.isdigit() else text


class VmIndex:
    """Finds the VM of a row of another VM sheet: by "VM UUID" when the row has one, else by unique name."""

    def __init__(self, drafts: Iterable[VmDraft]) -> None:
        self.by_id: dict[str, list[VmDraft]] = {}
        self.by_name: dict[str, list[VmDraft]] = {}
        for draft in drafts:
            self.by_id.setdefault(draft.uuid, []).append(draft)
            self.by_name.setdefault(draft.fields["name"], []).append(draft)

    def owner(self, row: Row) -> VmDraft | None:
        vcenter = vcenter_of(row)
        uuid = row.text("uuid")
        if uuid is not None:
            return self._one(row, "uuid", self.by_id.get(uuid, []), vcenter, f"no VM with UUID {uuid!r}",
                             f"VM UUID {uuid!r}")
        name = row.text("vm")
        if name is None:
            row.bad("vm", "VM name is empty")
            return None
        return self._one(row, "vm", self.by_name.get(name, []), vcenter, f"no VM named {name!r}",
                         f"VM name {name!r}", 'export with the "VM UUID" column to tell them apart')

    def _one(self, row: Row, key: str, found: list[VmDraft], vcenter: str | None, none: str, what: str,
             hint: str = "") -> VmDraft | None:
        if vcenter is not None:  # the row's vCenter narrows the candidates, if any of them is of it
            found = [d for d in found if d.vcenter == vcenter] or (found if len(found) == 1 else [])
        if not found:
            row.bad(key, f"{none} in {VINFO.name}")
            return None
        if len(found) > 1:
            rows = ", ".join(str(d.row) for d in found)
            row.bad(key, f"{what} is ambiguous ({VINFO.name} rows {rows})" + (f"; {hint}" if hint else ""))
            return None
        owner = found[0]
        if folder := row.text("folder"):
            owner.folders.append(folder)
        return owner


# --- vDisk and vNetwork --------------------------------------------------------------------------------

def read_disks(vdisk: Table, index: VmIndex) -> None:
    for row in vdisk.rows():
        owner = index.owner(row)
        disk = _read_disk(row, len(owner.disks) if owner else 0)
        if owner is not None and disk is not None:
            owner.disks.append(disk)


def _vmdk(row: Row) -> str:
    """The disk's VMDK: "Path", or "Disk Path" if that one is the datastore path ("[ds] vm/vm.vmdk")."""
    for key in ("path", "disk_path"):
        text = row.text(key)
        if text and _DATASTORE_PATH.match(text):
            return text
    return row.text("path") or ""


def is_snapshot_delta(path: str) -> bool:
    """A delta disk of a snapshot: its descriptor ends in -00000N.vmdk."""
    return bool(_SNAPSHOT_DELTA.search(path))


def _read_disk(row: Row, position: int) -> Disk | None:
    capacity = row.decimal("capacity", maximum=MAX_DISK_BYTES / MIB)
    key = row.integer("key", minimum=-MAX_COUNT - 1)
    unit = row.integer("unit")
    thin, raw = row.flag("thin"), row.flag("raw")
    raw_mode = row.text("raw_mode")
    rdm = _RDM_MODES.get(raw_mode.casefold()) if raw_mode else None
    if raw_mode is not None and rdm is None:
        row.bad("raw_mode", f"unknown RDM compatibility mode {raw_mode!r}: physicalMode or virtualMode expected")
    elif raw and raw_mode is None:
        row.bad("raw_mode" if row.table.has("raw_mode") else "raw",
                "empty, but the disk is a raw device mapping (Raw is true): physicalMode or virtualMode expected")
    if capacity is None:
        if row.table.has("capacity") and row.text("capacity") is None:
            row.bad("capacity", "empty: the disk needs a capacity")
        return None
    datastore, path = _split_datastore_path(_vmdk(row))
    return Disk(
        key=position if key is None else key,
        label=row.text("label") or "",
        capacity_bytes=round(capacity * MIB),
        datastore=datastore,
        path=path,
        thin=thin,
        mode=row.text("mode"),
        sharing=_sharing(row.text("sharing")),
        controller=_controller(row.text("controller")),
        unit=unit,
        rdm=rdm if raw is not False else None,
    )


def _split_datastore_path(text: str) -> tuple[str | None, str]:
    match = _DATASTORE_PATH.match(text)
    return (match["ds"].strip() or None, match["path"].strip()) if match else (None, text)


def _sharing(text: str | None) -> str | None:
    if text is None:
        return None
    folded = text.casefold().replace(" ", "").replace("-", "")
    if "multiwriter" in folded:
        return "sharingMultiWriter"
    if folded in {"sharingnone", "nosharing", "none", "unshared"}:
        return "sharingNone"
    return text


def _controller(text: str | None) -> str | None:
    match = _CONTROLLER.match(text) if text else None
    return f"{match['kind'].lower()}:{match['bus']}" if match else text


def read_nics(vnetwork: Table, index: VmIndex) -> None:
    for row in vnetwork.rows():
        owner = index.owner(row)
        connected = row.flag("connected")
        ips = [ip for text in (row.text("ipv4"), row.text("ipv6")) for ip in _ips(row, text)]
        if owner is None:
            continue
        mac = row.text("mac")
        adapter = row.text("adapter")
        owner.nics.append(Nic(
            key=len(owner.nics),
            label=row.text("label") or "",
            mac=mac.lower() if mac else None,
            adapter=adapter.lower().replace(" ", "") if adapter else None,
            network=row.text("network"),
            connected=connected,
        ))
        owner.ips.extend(ips)


def _ips(row: Row, text: str | None) -> list[str]:
    parts = re.split(r"[,;\s]+", text) if text else []
    return [ip for part in parts if part and (ip := _ip(row, "ipv4" if ":" not in part else "ipv6", part))]


def _ip(row: Row, key: str, text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        row.bad(key, f"not an IP address: {text!r}")
        return None
