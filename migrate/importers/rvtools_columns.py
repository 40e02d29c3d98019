"""RVTools sheet and column names, for both generations of exports.

RVTools before 4.x wrote sizes in columns ending "MB" ("Provisioned MB", "Capacity MB"); later
versions write "MiB" ("Provisioned MiB", "Capacity MiB"). Both mean mebibytes. Each logical column
below lists its names, newest first; headers match case-insensitively with whitespace collapsed.
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
    "VDATASTORE",
    "VDISK",
    "VHOST",
    "VINFO",
    "VNETWORK",
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


VINFO = SheetSpec("vInfo", True, {
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
    "datacenter": ("Datacenter",),
    "cluster": ("Cluster",),
    "host": ("Host",),
    "folder": ("Folder",),
    "resource_pool": ("Resource pool",),
    "vapp": ("vApp",),
    "firmware": ("Firmware",),
    "hw_version": ("HW version",),
    "os_config": ("OS according to the configuration file",),
    "os_tools": ("OS according to the VMware Tools",),
    "moref": ("VM ID",),
    "uuid": ("VM UUID",),  # vCenter instanceUuid
    "bios_uuid": ("SMBIOS UUID",),  # newer exports only
    "sdk_server": ("VI SDK Server",),
    "sdk_uuid": ("VI SDK UUID",),
    "sdk_api": ("VI SDK API Version",),
}, ("name", "power", "cpus", "memory"))

VDISK = SheetSpec("vDisk", True, {
    "vm": ("VM",),
    "uuid": ("VM UUID",),
    "label": ("Disk",),
    "key": ("Disk Key",),
    "capacity": ("Capacity MiB", "Capacity MB"),
    "thin": ("Thin",),
    "mode": ("Disk Mode",),
    # "Disk Path" holds the vmdk in newer exports, where "Path" is an RDM's device; older ones only have "Path"
    "path": ("Disk Path", "Path"),
    "controller": ("Controller",),
    "unit": ("Unit #", "SCSI Unit #"),
    "sharing": ("Sharing mode",),
    "raw": ("Raw",),
    "raw_mode": ("Raw Comp. Mode", "Raw Com. Mode"),
}, ("vm", "capacity"))

VNETWORK = SheetSpec("vNetwork", True, {
    "vm": ("VM",),
    "uuid": ("VM UUID",),
    "label": ("NIC label", "Network adapter"),
    "adapter": ("Adapter",),
    "network": ("Network",),
    "switch": ("Switch",),
    "connected": ("Connected",),
    "mac": ("Mac Address",),
    "ipv4": ("IPv4 Address", "IP Address"),
    "ipv6": ("IPv6 Address",),
}, ("vm", "network"))

VHOST = SheetSpec("vHost", False, {
    "name": ("Host",),
    "datacenter": ("Datacenter",),
    "cluster": ("Cluster",),
    "sockets": ("# CPU",),
    "cores_per_socket": ("Cores per CPU",),
    "cores": ("# Cores",),
    "speed": ("Speed",),  # MHz
    "memory": ("# Memory",),  # MiB (MB in older exports)
    "version": ("ESX Version",),
    "maintenance": ("in Maintenance Mode",),
    "connection": ("Connection state",),
    "object_id": ("Object ID",),
}, ("name",))

VCLUSTER = SheetSpec("vCluster", False, {
    "name": ("Name",),
    "datacenter": ("Datacenter",),
    "num_hosts": ("NumHosts", "# Hosts"),
    "ha": ("HA enabled",),
    "drs": ("DRS enabled",),
    "object_id": ("Object ID",),
}, ("name",))

VDATASTORE = SheetSpec("vDatastore", False, {
    "name": ("Name",),
    "type": ("Type",),
    "capacity": ("Capacity MiB", "Capacity MB"),
    "free": ("Free MiB", "Free MB"),
    "url": ("URL",),
    "object_id": ("Object ID",),
}, ("name",))

# Only used to tell distributed port groups from standard ones (a switch named here is a vDS).
DVSWITCH = SheetSpec("dvSwitch", False, {"switch": ("Switch",), "name": ("Name",)})

SHEETS: tuple[SheetSpec, ...] = (VINFO, VDISK, VNETWORK, VHOST, VCLUSTER, VDATASTORE, DVSWITCH)

# Custom attributes: RVTools writes one column per attribute right after "Annotation" and before the
# trailing block of standard columns, which starts with "Datacenter" (older exports) or one of these.
CUSTOM_ATTRIBUTES_AFTER = "Annotation"
CUSTOM_ATTRIBUTES_UNTIL: frozenset[str] = frozenset(normalise_header(h) for h in (
    "Datacenter", "Cluster", "Host", "Folder", "OS according to the configuration file",
    "OS according to the VMware Tools", "VM ID", "SMBIOS UUID", "VM UUID", "VI SDK Server type",
    "VI SDK API Version", "VI SDK Server", "VI SDK UUID",
))
