"""RVTools sheet and column names, for the 3.x and 4.x generations of exports.

Each logical column lists its header names, newest first; headers match case-insensitively with
whitespace collapsed. RVTools 3.x wrote sizes in columns ending "MB" ("Capacity MB"); 4.x writes "MiB"
("Capacity MiB"). Both mean mebibytes.

Where the column lists come from (there was no access to RVTools' own documentation; the lists below and
the test fixture's header orders, tests/unit/rvtools_fixture.py, were taken from these public sources):
- RVTools 4.x (4.4-4.7): the header lists, in order, of a real RVTools 4.x export of a vCenter 8 estate
  (27 sheets, 133 VMs) in the public repository Yoobuu/Kylow, vmware_rvtools_exporter/out/compare/report.md
  (vInfo 93 columns, vCPU, vMemory, vDisk 43, vNetwork, vSnapshot, vTools, vHost 74, vCluster, vSource).
  The same 4.x vDisk order ("Disk Key", "Disk UUID", "Disk Path", "Capacity MiB", ..., "Path", "Raw LUN ID",
  "Raw Comp. Mode") is in several other public RVTools readers and generators found by code search. What the
  4.x vDisk "Disk Path" holds (the guest's mount points, "/, /boot") and "Path" (the VMDK,
  "[ds-01] vm/vm-000003.vmdk") is from a real RVTools 4.7 export described in issue 19; the importer takes
  whichever of the two is a datastore path, so exports that fill them the other way round read right too.
- RVTools 3.x: vInfo from a real RVTools 3.x CSV export of a vCenter 5.1 (RVTools_tabvInfo.csv with
  "Video Ram KB", "Provisioned MB", "VM ID", "VM UUID", "VI SDK Server type", "VI SDK API Version",
  "VI SDK Server", "VI SDK UUID"; comma-separated, thousands separators, "True"/"False") quoted in a
  public Groovy ETL test found by code search; later 3.x releases (3.9-3.11) added "Creation date",
  "min Required EVC Mode Key", "Latency Sensitivity", "EnableUUID", "CBT", "Primary IP Address" and the
  "Log/Snapshot/Suspend directory" columns (RVTools release notes as remembered, not re-checked here).
  vDisk 3.x ("VM", "Disk", "Capacity MB", "Raw", "Disk Mode", "Thin", "Eagerly Scrub", "Split",
  "Write Through", "Level", "Shares", "Controller", "Unit #", "Path", "Raw LUN ID", "Raw Comp. Mode",
  "Annotation", custom attributes, "Datacenter", "Cluster", "Host", "OS according to the configuration
  file") from a public C# importer's entity comment found by code search; the fixture's 3.x vDisk adds
  "Sharing mode", "Reservation" and "Limit", which later 3.x releases wrote. "Raw Com. Mode" is the spelling
  several public RVTools analysers read; it is kept as an alternative name. vNetwork 3.x ("Network adapter",
  "IP Address"), vHost/vCluster/vDatastore 3.x (no "Object ID", no "# Cores"): the fixture's earlier
  "MB" generation, from RVTools 3.x exports as remembered.
- Sheets exported as CSV are named RVTools_tab<sheet>.csv (RVTools' -ExportAll2csv); that name is in
  many public scripts that read such exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CUSTOM_ATTRIBUTES_AFTER",
    "CUSTOM_ATTRIBUTES_UNTIL",
    "DVSWITCH",
    "MIB",
    "SHEETS",
    "VCLUSTER",
    "VCPU",
    "VDATASTORE",
    "VDISK",
    "VHOST",
    "VINFO",
    "VMEMORY",
    "VM_SHEETS",
    "VNETWORK",
    "VSNAPSHOT",
    "VTOOLS",
    "SheetSpec",
    "normalise_header",
]


MIB = 2**20  # bytes in the unit of every size column, whether its header says "MiB" or "MB"


def normalise_header(text: str) -> str:
    """Header key used for matching: case-folded, whitespace collapsed."""
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class SheetSpec:
    """One RVTools sheet: its name, whether it must exist, its logical columns and which are required."""

    name: str
    required: bool
    columns: dict[str, tuple[str, ...]]
    required_columns: tuple[str, ...] = field(default=())


# The columns RVTools appends to every per-VM sheet: who the row belongs to and which vCenter it came from.
_VM_ROW: dict[str, tuple[str, ...]] = {
    "vm": ("VM",),
    "uuid": ("VM UUID",),  # vCenter instanceUuid
    "moref": ("VM ID",),
    "folder": ("Folder",),
    "sdk_server": ("VI SDK Server",),
    "sdk_uuid": ("VI SDK UUID",),
}

VINFO = SheetSpec("vInfo", True, {
    **_VM_ROW,
    "name": ("VM",),
    "power": ("Powerstate",),
    "template": ("Template",),
    "cpus": ("CPUs",),
    "memory": ("Memory",),  # MiB in both generations (no unit in the header)
    "nics": ("NICs",),
    "disks": ("Disks",),
    "primary_ip": ("Primary IP Address",),
    "dns_name": ("DNS Name",),
    "annotation": ("Annotation",),
    "change_version": ("Change Version",),
    "consolidation": ("Consolidation Needed",),
    "cbt": ("CBT",),
    "min_evc": ("min Required EVC Mode Key",),
    "ft_state": ("FT State",),
    "secure_boot": ("EFI Secure boot",),
    "datacenter": ("Datacenter",),
    "cluster": ("Cluster",),
    "host": ("Host",),
    "folder_id": ("Folder ID",),  # 4.x: may be set while "Folder" is empty
    "resource_pool": ("Resource pool",),
    "vapp": ("vApp",),
    "firmware": ("Firmware",),
    "hw_version": ("HW version",),
    "os_config": ("OS according to the configuration file",),
    "os_tools": ("OS according to the VMware Tools",),
    "bios_uuid": ("SMBIOS UUID",),  # 4.x only
    "sdk_api": ("VI SDK API Version",),
}, ("name", "power", "cpus", "memory"))

VDISK = SheetSpec("vDisk", True, {
    **_VM_ROW,
    "label": ("Disk",),
    "key": ("Disk Key",),
    "capacity": ("Capacity MiB", "Capacity MB"),
    "thin": ("Thin",),
    "mode": ("Disk Mode",),
    "path": ("Path",),  # the VMDK ("[ds] vm/vm.vmdk") in both generations
    "disk_path": ("Disk Path",),  # 4.x: the guest's mount points ("/, /boot")
    "controller": ("Controller",),
    "unit": ("Unit #", "SCSI Unit #"),
    "sharing": ("Sharing mode",),
    "raw": ("Raw",),
    "raw_mode": ("Raw Comp. Mode", "Raw Com. Mode"),
}, ("vm", "capacity"))

VNETWORK = SheetSpec("vNetwork", True, {
    **_VM_ROW,
    "label": ("NIC label", "Network adapter"),
    "adapter": ("Adapter",),
    "network": ("Network",),
    "switch": ("Switch",),
    "connected": ("Connected",),
    "mac": ("Mac Address",),
    "ipv4": ("IPv4 Address", "IP Address"),
    "ipv6": ("IPv6 Address",),
}, ("vm", "network"))

VCPU = SheetSpec("vCPU", False, {
    **_VM_ROW,
    "sockets": ("Sockets",),
    "cores_per_socket": ("Cores p/s",),
    "hot_add": ("Hot Add",),
    "hot_remove": ("Hot Remove",),
}, ("vm",))

VMEMORY = SheetSpec("vMemory", False, {**_VM_ROW, "hot_add": ("Hot Add",)}, ("vm",))

VSNAPSHOT = SheetSpec("vSnapshot", False, {
    **_VM_ROW,
    "name": ("Name",),
    "taken": ("Date / time",),
}, ("vm",))

VTOOLS = SheetSpec("vTools", False, {
    **_VM_ROW,
    "tools": ("Tools",),  # toolsOk, toolsOld, toolsNotInstalled, toolsNotRunning
    "tools_version": ("Tools Version",),
}, ("vm",))

_VCENTER: dict[str, tuple[str, ...]] = {"sdk_server": ("VI SDK Server",), "sdk_uuid": ("VI SDK UUID",)}

VHOST = SheetSpec("vHost", False, {
    **_VCENTER,
    "name": ("Host",),
    "datacenter": ("Datacenter",),
    "cluster": ("Cluster",),
    "cpu_model": ("CPU Model",),
    "ht_active": ("HT Active",),
    "sockets": ("# CPU",),
    "cores_per_socket": ("Cores per CPU",),
    "cores": ("# Cores",),
    "speed": ("Speed",),  # MHz
    "memory": ("# Memory",),  # MiB (MB in older exports)
    "version": ("ESX Version",),
    "evc": ("Current EVC",),
    "max_evc": ("Max EVC",),
    "maintenance": ("in Maintenance Mode",),
    "connection": ("Connection state",),
    "object_id": ("Object ID",),
}, ("name",))

VCLUSTER = SheetSpec("vCluster", False, {
    **_VCENTER,
    "name": ("Name",),
    "datacenter": ("Datacenter",),
    "num_hosts": ("NumHosts", "# Hosts"),
    "ha": ("HA enabled",),
    "drs": ("DRS enabled",),
    "object_id": ("Object ID",),
}, ("name",))

VDATASTORE = SheetSpec("vDatastore", False, {
    **_VCENTER,
    "name": ("Name",),
    "type": ("Type",),
    "capacity": ("Capacity MiB", "Capacity MB"),
    "free": ("Free MiB", "Free MB"),
    "url": ("URL",),
    "object_id": ("Object ID",),
}, ("name",))

# Only used to tell distributed port groups from standard ones (a switch named here is a vDS).
DVSWITCH = SheetSpec("dvSwitch", False, {"switch": ("Switch",), "name": ("Name",)})

SHEETS: tuple[SheetSpec, ...] = (VINFO, VDISK, VNETWORK, VCPU, VMEMORY, VSNAPSHOT, VTOOLS, VHOST, VCLUSTER,
                                 VDATASTORE, DVSWITCH)
VM_SHEETS: tuple[SheetSpec, ...] = (VDISK, VNETWORK, VCPU, VMEMORY, VSNAPSHOT, VTOOLS)  # rows that join a VM

# Custom attributes: RVTools writes one column per attribute right after "Annotation" and before the
# trailing block of standard columns, which starts with "Datacenter" (older exports) or one of these.
CUSTOM_ATTRIBUTES_AFTER = "Annotation"
CUSTOM_ATTRIBUTES_UNTIL: frozenset[str] = frozenset(normalise_header(h) for h in (
    "Datacenter", "Cluster", "Host", "Folder", "OS according to the configuration file",
    "OS according to the VMware Tools", "VM ID", "SMBIOS UUID", "VM UUID", "VI SDK Server type",
    "VI SDK API Version", "VI SDK Server", "VI SDK UUID",
))
