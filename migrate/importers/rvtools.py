"""Read an RVTools export (xlsx) into the inventory format, for planning without access to vCenter.

Sheets: vInfo, vDisk and vNetwork are required; vHost, vCluster, vDatastore (and dvSwitch, to tell
distributed port groups apart) are used when present. Disks and NICs join their VM by "VM UUID" when the
sheet has it, else by VM name (an ambiguous name is a problem). Custom attributes are the vInfo columns
between "Annotation" and the trailing block of standard columns ("Datacenter", "VM ID", ...), which is
where RVTools writes them; their empty cells are left out. Every problem is collected, then raised at
once as an InputError naming sheet, row and column.
"""

from __future__ import annotations

import ipaddress
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from xml.etree.ElementTree import ParseError

import openpyxl  # type: ignore[import-untyped]
from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

from migrate.core.errors import InputError
from migrate.core.models.inventory import (
    MAX_COUNT,
    MAX_DISK_BYTES,
    MAX_MEMORY_MB,
    MAX_VCPUS,
    Disk,
    Guest,
    Inventory,
    Nic,
    Provenance,
    Vm,
)
from migrate.importers.rvtools_columns import (
    CUSTOM_ATTRIBUTES_AFTER,
    CUSTOM_ATTRIBUTES_UNTIL,
    DVSWITCH,
    MIB,
    SHEETS,
    VCLUSTER,
    VDATASTORE,
    VDISK,
    VHOST,
    VINFO,
    VNETWORK,
    normalise_header,
)
from migrate.importers.rvtools_estate import (
    dvswitch_names,
    networks,
    read_clusters,
    read_datastores,
    read_hosts,
    vapps,
    vnetwork_rows,
    with_referenced_clusters,
    with_referenced_datastores,
)
from migrate.importers.rvtools_table import Problems, Row, Table, cell_text, find_sheet, read_table

__all__ = ["import_rvtools"]

_POWER_STATES = {s.casefold(): s for s in ("poweredOn", "poweredOff", "suspended")}
_DATASTORE_PATH = re.compile(r"^\[(?P<ds>[^\]]*)\]\s*(?P<path>.*)$")
_CONTROLLER = re.compile(r"^(?P<kind>scsi|ide|sata|nvme)\s*(?:controller)?\s*(?P<bus>\d+)$", re.IGNORECASE)
_RDM_MODES: dict[str, Literal["physical", "virtual"]] = {
    "physicalmode": "physical", "physical": "physical", "virtualmode": "virtual", "virtual": "virtual"}
_UNREADABLE = (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, EOFError, OSError,
               zlib.error, ParseError)


@dataclass
class _VmDraft:
    """A VM being assembled from its vInfo row, then its vDisk and vNetwork rows."""

    row: int
    fields: dict[str, Any]
    disks: list[Disk] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)


def import_rvtools(path: str | Path) -> Inventory:
    """Read an RVTools xlsx export; InputError lists every problem (missing sheet, column, bad cell)."""
    path = Path(path)
    problems = Problems(str(path))
    tables = _read_workbook(path, problems)
    inventory = _build(path, tables, problems)
    if problems or inventory is None:
        raise InputError(problems.items)
    return inventory


def _read_workbook(path: Path, problems: Problems) -> dict[str, Table | None]:
    file = str(path)
    if not path.exists():
        raise InputError.single(file, "", "no such file")
    if path.is_dir():
        raise InputError.single(file, "", "is a directory, not an xlsx file")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except _UNREADABLE as exc:
        raise InputError.single(file, "", f"not an xlsx workbook (RVTools export): {exc}") from None
    tables: dict[str, Table | None] = {}
    try:
        for spec in SHEETS:
            name = find_sheet(workbook.sheetnames, spec.name)
            if name is None:
                if spec.required:
                    problems.add(f'sheet "{spec.name}"', "required sheet is missing")
                tables[spec.name] = None
                continue
            tables[spec.name] = read_table(workbook[name].iter_rows(values_only=True), spec, problems)
    except _UNREADABLE as exc:
        raise InputError.single(file, "", f"cannot read the workbook: {exc}") from None
    finally:
        workbook.close()
    return tables


def _build(path: Path, tables: dict[str, Table | None], problems: Problems) -> Inventory | None:
    vinfo = tables[VINFO.name]
    drafts = _read_vms(vinfo) if vinfo else []
    if vinfo:
        index = _VmIndex(drafts)
        if (vdisk := tables[VDISK.name]) is not None:
            _read_disks(vdisk, index)
        if (vnetwork := tables[VNETWORK.name]) is not None:
            _read_nics(vnetwork, index)
    hosts = read_hosts(tables[VHOST.name])
    clusters = read_clusters(tables[VCLUSTER.name], hosts)
    datastores = read_datastores(tables[VDATASTORE.name])
    if problems or vinfo is None:
        return None
    vms = [_finish(d) for d in drafts]
    custom_names = _custom_attribute_headers(vinfo)
    return Inventory(
        provenance=_provenance(path, vinfo),
        vms=vms,
        hosts=hosts,
        clusters=with_referenced_clusters(clusters, vms, hosts),
        datastores=with_referenced_datastores(datastores, vms),
        networks=networks(vnetwork_rows(tables[VNETWORK.name]), dvswitch_names(tables[DVSWITCH.name])),
        vapps=vapps(vms),
        folders=sorted({vm.folder for vm in vms if vm.folder}),
        resource_pools=sorted({vm.resource_pool for vm in vms if vm.resource_pool}),
        custom_attribute_names=custom_names,
    )


# --- vInfo ---------------------------------------------------------------------------------------------

def _custom_attribute_headers(vinfo: Table) -> list[str]:
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


def _read_vms(vinfo: Table) -> list[_VmDraft]:
    custom = _custom_attribute_indexes(vinfo)
    drafts: list[_VmDraft] = []
    seen_ids: dict[str, int] = {}
    if not vinfo.has("uuid") and not vinfo.has("moref"):
        vinfo.problems.add(f'{VINFO.name}, column "VM UUID"', 'required column is missing (nor "VM ID")')
    for row in vinfo.rows():
        draft = _read_vm(row, custom)
        if draft is None:
            continue
        vm_id = draft.fields["id"]
        if vm_id in seen_ids:
            row.bad("uuid" if row.text("uuid") else "moref",
                    f"duplicate VM id {vm_id!r} (also in row {seen_ids[vm_id]})")
            continue
        seen_ids[vm_id] = row.number
        drafts.append(draft)
    return drafts


def _read_vm(row: Row, custom: list[int]) -> _VmDraft | None:
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
    template = row.flag("template")
    primary_ip = _ip(row, "primary_ip", row.text("primary_ip"))
    if name is None or vm_id is None:
        return None
    attributes = {row.table.headers[i]: text for i in custom if (text := cell_text(row.at(i))) is not None}
    fields: dict[str, Any] = {
        "id": vm_id,
        "name": name,
        "moref": row.text("moref"),
        "bios_uuid": row.text("bios_uuid"),
        "cpus": cpus or 0,
        "memory_mb": memory or 0,
        "firmware": (row.text("firmware") or "").lower() or None,
        "hardware_version": _hardware_version(row.text("hw_version")),
        "power_state": power_state,
        "template": bool(template),
        "annotation": row.text("annotation"),
        "change_version": row.text("change_version"),
        "datacenter": row.text("datacenter"),
        "host": row.text("host"),
        "cluster": row.text("cluster"),
        "folder": row.text("folder"),
        "resource_pool": row.text("resource_pool"),
        "vapp": row.text("vapp"),
        "custom_attributes": attributes,
        "_hostname": row.text("dns_name"),
        "_os": row.text("os_tools") or row.text("os_config"),
    }
    return _VmDraft(row.number, fields, ips=[primary_ip] if primary_ip else [])


def _hardware_version(text: str | None) -> str | None:
    return f"vmx-{text}" if text and text.isdigit() else text


def _finish(draft: _VmDraft) -> Vm:
    fields = dict(draft.fields)
    guest = Guest(hostname=fields.pop("_hostname"), full_name=fields.pop("_os"),
                  ip_addresses=list(dict.fromkeys(draft.ips)))
    return Vm(**fields, guest=guest, disks=draft.disks, nics=draft.nics)


class _VmIndex:
    """Finds the VM of a vDisk/vNetwork row: by "VM UUID" when the row has one, else by unique name."""

    def __init__(self, drafts: Iterable[_VmDraft]) -> None:
        self.by_id: dict[str, _VmDraft] = {}
        self.by_name: dict[str, list[_VmDraft]] = {}
        for draft in drafts:
            self.by_id[draft.fields["id"]] = draft
            self.by_name.setdefault(draft.fields["name"], []).append(draft)

    def owner(self, row: Row) -> _VmDraft | None:
        uuid = row.text("uuid")
        if uuid is not None:
            found = self.by_id.get(uuid)
            if found is None:
                row.bad("uuid", f"no VM with UUID {uuid!r} in {VINFO.name}")
            return found
        name = row.text("vm")
        if name is None:
            row.bad("vm", "VM name is empty")
            return None
        matches = self.by_name.get(name, [])
        if not matches:
            row.bad("vm", f"no VM named {name!r} in {VINFO.name}")
            return None
        if len(matches) > 1:
            rows = ", ".join(str(m.row) for m in matches)
            row.bad("vm", f"VM name {name!r} is ambiguous ({VINFO.name} rows {rows}); "
                          'export with the "VM UUID" column to tell them apart')
            return None
        return matches[0]


# --- vDisk and vNetwork --------------------------------------------------------------------------------

def _read_disks(vdisk: Table, index: _VmIndex) -> None:
    for row in vdisk.rows():
        owner = index.owner(row)
        disk = _read_disk(row, len(owner.disks) if owner else 0)
        if owner is not None and disk is not None:
            owner.disks.append(disk)


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
    datastore, path = _split_datastore_path(row.text("path"))
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


def _split_datastore_path(text: str | None) -> tuple[str | None, str]:
    if not text:
        return None, ""
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


def _read_nics(vnetwork: Table, index: _VmIndex) -> None:
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


def _provenance(path: Path, vinfo: Table) -> Provenance:
    def only(key: str) -> str | None:
        values = {text for row in vinfo.rows() if (text := row.text(key))}
        return values.pop() if len(values) == 1 else None  # several vCenters merged: no single value

    try:
        collected_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError:
        collected_at = datetime.now(tz=UTC)
    return Provenance(source=path.name, kind="rvtools", collected_at=collected_at,
                      instance_uuid=only("sdk_uuid"), api_version=only("sdk_api"))
