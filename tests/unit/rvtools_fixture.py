"""Realistic RVTools exports for tests, generated with the real sheet and column names and orders.

Two generations: "MiB" is RVTools 4.x ("Capacity MiB", "SMBIOS UUID", "Object ID", "Folder ID", vDisk's
"Disk Path" = the guest's mount points and "Path" = the VMDK, VM UUID and vCenter on every VM sheet,
booleans and dates as xlsx values) and "MB" is RVTools 3.x ("Capacity MB", "Network adapter",
"IP Address", "HW version" as a bare number, booleans as "True"/"False" text, no VM UUID nor vCenter on
the VM sheets other than vInfo, so their rows join their VMs by name). Each can be written as one xlsx
workbook or as per-tab CSV files (RVTools_tabvInfo.csv, ...). The sources of the column lists are in
migrate/importers/rvtools_columns.py.

The estate of vCenter A: 10 VMs in datacenter dc-east, clusters cl-prod and cl-dev; app-01 has two disks
on two datastores and two NICs; db-01 and db-02 share a multi-writer disk; db-01 also has a physical
RDM; web-02 runs on a snapshot (a -000001.vmdk delta and a vSnapshot row), mon-01 on an orphaned delta
(-000002.vmdk, consolidation needed, no snapshot); ldap-01's vInfo "Folder" is empty (4.x: "Folder ID"
set) while its vDisk and vNetwork rows carry it; dev-01 is powered off, dev-02 suspended, tpl-rhel9 a
template; custom attributes "backup policy", "cost center" and "owner" sit between "Annotation" and
"Datacenter". vCenter B (VMS_B) holds three VMs, one of which has web-01's instanceUuid (a copy), and
hosts whose morefs are those of vCenter A's.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from openpyxl import Workbook

__all__ = [
    "ATTRIBUTES",
    "SDK_UUID",
    "VC_A",
    "VC_B",
    "VMS",
    "VMS_B",
    "Generation",
    "VCenter",
    "bios_uuid",
    "build_workbook",
    "delete_column",
    "row_of",
    "set_cell",
    "uuid_of",
    "vm_uuid",
    "write_csv",
    "write_rvtools",
]

Generation = Literal["MiB", "MB"]
SDK_SERVER = "vcenter.corp.local"
SDK_UUID = "5f3c8a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SDK_API = "8.0.2.0"
ATTRIBUTES = ("backup policy", "cost center", "owner")
GIB = 1024  # MiB


@dataclass(frozen=True)
class VCenter:
    server: str
    uuid: str
    datacenter: str


VC_A = VCenter(SDK_SERVER, SDK_UUID, "dc-east")
VC_B = VCenter("vcenter-west.corp.local", "8a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d", "dc-west")


@dataclass
class FDisk:
    label: str
    gib: int
    path: str
    thin: bool = True
    mode: str = "persistent"
    sharing: str = "sharingNone"
    controller: str = "SCSI controller 0"
    unit: int = 0
    raw_mode: str | None = None  # physicalMode / virtualMode for an RDM
    mounts: str = "/, /boot"  # what the guest mounts on it (4.x "Disk Path")


@dataclass
class FNic:
    label: str
    network: str
    mac: str
    ip: str | None
    adapter: str = "Vmxnet3"
    switch: str = "dvs-prod"
    connected: bool = True


@dataclass
class FVm:
    n: int
    name: str
    cluster: str
    host: str
    power: str
    cpus: int
    memory: int
    os_config: str
    folder: str
    pool: str
    template: bool = False
    vapp: str | None = None
    firmware: str = "bios"
    hw: str = "vmx-19"
    ip: str | None = None
    dns: str | None = None
    os_tools: str | None = None
    annotation: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    disks: list[FDisk] = field(default_factory=list)
    nics: list[FNic] = field(default_factory=list)
    snapshots: list[datetime] = field(default_factory=list)
    folder_in_vinfo: bool = True  # False: vInfo's "Folder" is empty (the other sheets still carry it)
    hot_add: bool = False
    consolidation_needed: bool = False


def uuid_of(n: int) -> str:
    """The fixture's instanceUuid ("VM UUID") of VM number n."""
    return f"5000{n:04x}-1111-2222-3333-{n:012x}"


def vm_uuid(name: str) -> str:
    """The fixture's instanceUuid ("VM UUID") of a VM of vCenter A."""
    return uuid_of(_vm(name).n)


def bios_uuid(name: str) -> str:
    """The fixture's BIOS uuid ("SMBIOS UUID") of a VM."""
    return f"4200{_vm(name).n:04x}-aaaa-bbbb-cccc-{_vm(name).n:012x}"


def _prod(n: int, name: str, host: str, cpus: int, memory: int, network: str, ip: str, **kw: Any) -> FVm:
    disks = kw.pop("disks", None) or [FDisk("Hard disk 1", 40, f"[ds-prod-01] {name}/{name}.vmdk")]
    nics = kw.pop("nics", None) or [FNic("Network adapter 1", network, f"00:50:56:aa:{n:02x}:01", ip)]
    return FVm(n, name, kw.pop("cluster", "cl-prod"), host, "poweredOn", cpus, memory, "Ubuntu Linux (64-bit)",
               kw.pop("folder", "dc-east/vm/prod"), "Resources/prod", ip=ip, dns=f"{name}.corp.local",
               os_tools="Ubuntu 22.04.3 LTS", disks=disks, nics=nics, **kw)


def _dev(n: int, name: str, power: str, cpus: int, memory: int, **kw: Any) -> FVm:
    return FVm(n, name, "cl-dev", "esx-03.corp.local", power, cpus, memory,
               "Microsoft Windows Server 2022 (64-bit)", "dc-east/vm/dev", "Resources/dev",
               disks=[FDisk("Hard disk 1", 60, f"[ds-dev-01] {name}/{name}.vmdk", mounts="C:\\")],
               nics=[FNic("Network adapter 1", "pg-dev", f"00:50:56:bb:{n:02x}:01", None, adapter="E1000E",
                          switch="vSwitch0", connected=power == "poweredOn")], **kw)


_QUORUM = "[ds-prod-02] shared/quorum.vmdk"
VMS: list[FVm] = [
    _prod(1, "web-01", "esx-01.corp.local", 2, 4096, "pg-web", "10.10.1.11", annotation="Web front end",
          attributes={"owner": "alice", "cost center": "CC-100"}),
    _prod(2, "web-02", "esx-02.corp.local", 2, 4096, "pg-web", "10.10.1.12",
          attributes={"owner": "alice", "cost center": "CC-100"},
          disks=[FDisk("Hard disk 1", 40, "[ds-prod-01] web-02/web-02-000001.vmdk")],
          snapshots=[datetime(2024, 4, 2, 22, 0, 5)]),
    _prod(3, "app-01", "esx-01.corp.local", 4, 8192, "pg-app", "10.10.2.21", vapp="payments", firmware="efi",
          folder="dc-east/vm/app", attributes={"owner": "bob", "backup policy": "gold"},
          disks=[FDisk("Hard disk 1", 60, "[ds-prod-01] app-01/app-01.vmdk", mounts="/"),
                 FDisk("Hard disk 2", 200, "[ds-prod-02] app-01/app-01_1.vmdk", thin=False, unit=1,
                       mounts="/var/lib/app")],
          nics=[FNic("Network adapter 1", "pg-app", "00:50:56:aa:03:01", "10.10.2.21"),
                FNic("Network adapter 2", "pg-backup", "00:50:56:aa:03:02", "10.10.9.21", connected=False)],
          snapshots=[datetime(2024, 3, 1, 8, 30, 0), datetime(2024, 1, 15, 9, 0, 0)]),
    _prod(4, "db-01", "esx-02.corp.local", 8, 32768, "pg-db", "10.10.3.31", vapp="payments", hot_add=True,
          attributes={"owner": "carol"},
          disks=[FDisk("Hard disk 1", 100, "[ds-prod-01] db-01/db-01.vmdk"),
                 FDisk("Hard disk 2", 500, _QUORUM, thin=False, mode="independent_persistent",
                       sharing="sharingMultiWriter", controller="SCSI controller 1", mounts="/quorum"),
                 FDisk("Hard disk 3", 1024, "[ds-prod-02] db-01/db-01_rdm.vmdk", thin=False,
                       mode="independent_persistent", controller="SCSI controller 2", raw_mode="physicalMode",
                       mounts="/data")]),
    _prod(5, "db-02", "esx-01.corp.local", 8, 32768, "pg-db", "10.10.3.32", hot_add=True,
          attributes={"owner": "carol"},
          disks=[FDisk("Hard disk 1", 100, "[ds-prod-01] db-02/db-02.vmdk"),
                 FDisk("Hard disk 2", 500, _QUORUM, thin=False, mode="independent_persistent",
                       sharing="sharingMultiWriter", controller="SCSI controller 1", mounts="/quorum")]),
    _dev(6, "dev-01", "poweredOff", 2, 2048, firmware="efi", hw="vmx-17", attributes={"owner": "dave"}),
    _dev(7, "dev-02", "suspended", 1, 1024),
    _dev(8, "tpl-rhel9", "poweredOff", 2, 4096, template=True),
    _prod(9, "mon-01", "esx-02.corp.local", 2, 4096, "pg-app", "10.10.2.40", consolidation_needed=True,
          disks=[FDisk("Hard disk 1", 40, "[ds-prod-01] mon-01/mon-01-000002.vmdk")]),
    _prod(10, "ldap-01", "esx-01.corp.local", 1, 2048, "pg-web", "10.10.1.50", folder_in_vinfo=False,
          attributes={"owner": "erin", "cost center": "CC-900"}),
]

# vCenter B: web-01 here has the instanceUuid of vCenter A's web-01 (a copy of it), erp-01/02 are its own
VMS_B: list[FVm] = [
    _prod(1, "web-01", "esx-01.corp.local", 2, 4096, "pg-web", "10.20.1.11", cluster="cl-west",
          folder="dc-west/vm/web"),
    _prod(101, "erp-01", "esx-02.corp.local", 4, 16384, "pg-erp", "10.20.5.11", cluster="cl-west",
          folder="dc-west/vm/erp"),
    _prod(102, "erp-02", "esx-02.corp.local", 4, 16384, "pg-erp", "10.20.5.12", cluster="cl-west",
          folder="dc-west/vm/erp"),
]


def _vm(name: str) -> FVm:
    return next(vm for vm in VMS if vm.name == name)


def _bool(value: bool | None, generation: Generation) -> Any:
    if value is None:
        return None
    return value if generation == "MiB" else ("True" if value else "False")


def _unit(generation: Generation) -> str:
    return "MiB" if generation == "MiB" else "MB"


# --- headers: real RVTools names, in the order RVTools writes them -------------------------------------------
# Sources (see migrate/importers/rvtools_columns.py): 4.x from the header lists of a real RVTools 4.x export
# (Yoobuu/Kylow, vmware_rvtools_exporter/out/compare/report.md), vDatastore 4.x from a public RVTools data
# generator; 3.x from a real RVTools 3.x vInfo CSV and the 3.x vDisk list of a public importer, with the
# columns later 3.x releases added.

_OS = ["OS according to the configuration file", "OS according to the VMware Tools"]


def _vm_tail(generation: Generation, *, uuid: bool = True, folder: bool = True) -> list[str]:
    """The columns RVTools appends to every VM sheet, after "Annotation" and the custom attributes."""
    if generation == "MiB":
        return ["Datacenter", "Cluster", "Host", "Folder", *_OS, "VM ID", "VM UUID", "VI SDK Server", "VI SDK UUID"]
    # 3.x: the per-VM sheets other than vInfo carry neither the VM UUID nor the vCenter (joins go by name)
    return ["Datacenter", "Cluster", "Host", *(["Folder"] if folder else []), *_OS, "VM ID",
            *(["VM UUID"] if uuid else [])]


def _vinfo_headers(generation: Generation) -> list[str]:
    if generation == "MiB":
        return ["VM", "Powerstate", "Template", "SRM Placeholder", "Config status", "DNS Name", "Connection state",
                "Guest state", "Heartbeat", "Consolidation Needed", "PowerOn", "Suspended To Memory", "Suspend time",
                "Suspend Interval", "Creation date", "Change Version", "CPUs", "Overall Cpu Readiness", "Memory",
                "Active Memory", "NICs", "Disks", "Total disk capacity MiB", "Fixed Passthru HotPlug",
                "min Required EVC Mode Key", "Latency Sensitivity", "Op Notification Timeout", "EnableUUID", "CBT",
                "Primary IP Address", *(f"Network #{i}" for i in range(1, 9)), "Num Monitors", "Video Ram KiB",
                "Resource pool", "Folder ID", "Folder", "vApp", "DAS protection", "FT State", "FT Role",
                "FT Latency", "FT Bandwidth", "FT Sec. Latency", "Vm Failover In Progress", "Provisioned MiB",
                "In Use MiB", "Unshared MiB", "HA Restart Priority", "HA Isolation Response", "HA VM Monitoring",
                "Cluster rule(s)", "Cluster rule name(s)", "Boot Required", "Boot delay", "Boot retry delay",
                "Boot retry enabled", "Boot BIOS setup", "Reboot PowerOff", "EFI Secure boot", "Firmware",
                "HW version", "HW upgrade status", "HW upgrade policy", "HW target", "Path", "Log directory",
                "Snapshot directory", "Suspend directory", "Annotation", *ATTRIBUTES, "Datacenter", "Cluster",
                "Host", *_OS, "Customization Info", "Guest Detailed Data", "VM ID", "SMBIOS UUID", "VM UUID",
                "VI SDK Server type", "VI SDK API Version", "VI SDK Server", "VI SDK UUID"]
    return ["VM", "Powerstate", "Template", "Config status", "DNS Name", "Connection state", "Guest state",
            "Heartbeat", "Consolidation Needed", "PowerOn", "Suspend time", "Creation date", "Change Version", "CPUs",
            "Memory", "NICs", "Disks", "min Required EVC Mode Key", "Latency Sensitivity", "EnableUUID", "CBT",
            "Primary IP Address", "Network #1", "Network #2", "Network #3", "Network #4", "Num Monitors",
            "Video Ram KB", "Resource pool", "Folder", "vApp", "DAS protection", "FT State", "FT Latency",
            "FT Bandwidth", "FT Sec. Latency", "Provisioned MB", "In Use MB", "Unshared MB", "HA Restart Priority",
            "HA Isolation Response", "HA VM Monitoring", "Cluster rule(s)", "Cluster rule name(s)", "Boot Required",
            "Boot delay", "Boot retry delay", "Boot retry enabled", "Boot BIOS setup", "Firmware", "HW version",
            "HW upgrade status", "HW upgrade policy", "HW target", "Path", "Log directory", "Snapshot directory",
            "Suspend directory", "Annotation", *ATTRIBUTES, "Datacenter", "Cluster", "Host", *_OS, "VM ID",
            "VM UUID", "VI SDK Server type", "VI SDK API Version", "VI SDK Server", "VI SDK UUID"]


def _vdisk_headers(generation: Generation) -> list[str]:
    if generation == "MiB":
        return ["VM", "Powerstate", "Template", "SRM Placeholder", "Disk", "Disk Key", "Disk UUID", "Disk Path",
                "Capacity MiB", "Raw", "Disk Mode", "Sharing mode", "Thin", "Eagerly Scrub", "Split",
                "Write Through", "Level", "Shares", "Reservation", "Limit", "Controller", "Label", "SCSI Unit #",
                "Unit #", "Shared Bus", "Path", "Raw LUN ID", "Raw Comp. Mode", "Internal Sort Column",
                "Annotation", *ATTRIBUTES, *_vm_tail(generation)]
    return ["VM", "Powerstate", "Template", "Disk", "Capacity MB", "Raw", "Disk Mode", "Sharing mode", "Thin",
            "Eagerly Scrub", "Split", "Write Through", "Level", "Shares", "Reservation", "Limit", "Controller",
            "Unit #", "Path", "Raw LUN ID", "Raw Comp. Mode", "Annotation", *ATTRIBUTES,
            *_vm_tail(generation, uuid=False, folder=False)]


def _vnetwork_headers(generation: Generation) -> list[str]:
    if generation == "MiB":
        return ["VM", "Powerstate", "Template", "SRM Placeholder", "NIC label", "Adapter", "Network", "Switch",
                "Connected", "Starts Connected", "Mac Address", "Type", "IPv4 Address", "IPv6 Address",
                "Direct Path IO", "Internal Sort Column", "Annotation", *ATTRIBUTES, *_vm_tail(generation)]
    return ["VM", "Powerstate", "Template", "Network adapter", "Adapter", "Network", "Switch", "Connected",
            "Starts Connected", "Mac Address", "Type", "IP Address", "Annotation", *ATTRIBUTES,
            *_vm_tail(generation, uuid=False)]


def _vcpu_headers(generation: Generation) -> list[str]:
    srm = ["SRM Placeholder"] if generation == "MiB" else []
    return ["VM", "Powerstate", "Template", *srm, "CPUs", "Sockets", "Cores p/s", "Max", "Overall", "Level",
            "Shares", "Reservation", "Entitlement", "DRS Entitlement", "Limit", "Hot Add", "Hot Remove",
            *(["Numa Hotadd Exposed"] if generation == "MiB" else []), "Annotation", *ATTRIBUTES,
            *_vm_tail(generation, uuid=False)]


def _vmemory_headers(generation: Generation) -> list[str]:
    srm = ["SRM Placeholder"] if generation == "MiB" else []
    return ["VM", "Powerstate", "Template", *srm, f"Size {_unit(generation)}",
            *(["Memory Reservation Locked To Max"] if generation == "MiB" else []), "Overhead", "Max", "Consumed",
            "Consumed Overhead", "Private", "Shared", "Swapped", "Ballooned", "Active", "Entitlement",
            "DRS Entitlement", "Level", "Shares", "Reservation", "Limit", "Hot Add", "Annotation", *ATTRIBUTES,
            *_vm_tail(generation, uuid=False)]


def _vsnapshot_headers(generation: Generation) -> list[str]:
    u = _unit(generation)
    return ["VM", "Powerstate", "Name", "Description", "Date / time", "Filename", f"Size {u} (vmsn)",
            f"Size {u} (total)", "Quiesced", "State", "Annotation", *ATTRIBUTES, *_vm_tail(generation, uuid=False)]


def _vtools_headers(generation: Generation) -> list[str]:
    srm = ["SRM Placeholder"] if generation == "MiB" else []
    tail = _vm_tail(generation, uuid=False)
    if generation == "MiB":
        tail.insert(tail.index("VM ID"), "VMRef")
    return ["VM", "Powerstate", "Template", *srm, "VM Version", "Tools", "Tools Version", "Required Version",
            "Upgradeable", "Upgrade Policy", "Sync time", "App status", "Heartbeat status", "Kernel Crash state",
            "Operation Ready", "State change support", "Interactive Guest", "Annotation", *ATTRIBUTES, *tail]


# --- rows ----------------------------------------------------------------------------------------------

def _vm_common(vm: FVm, generation: Generation, vc: VCenter) -> dict[str, Any]:
    return {
        "VM": vm.name, "Powerstate": vm.power, "Template": _bool(vm.template, generation),
        "SRM Placeholder": _bool(False, generation), "Annotation": vm.annotation, **vm.attributes,
        "Datacenter": vc.datacenter, "Cluster": vm.cluster, "Host": vm.host, "Folder": vm.folder,
        "OS according to the configuration file": vm.os_config,
        "OS according to the VMware Tools": vm.os_tools if vm.power == "poweredOn" else None,
        "VM ID": f"vm-{1000 + vm.n}", "VMRef": f"vm-{1000 + vm.n}", "VM UUID": uuid_of(vm.n),
        "VI SDK Server": vc.server, "VI SDK UUID": vc.uuid,
    }


def _vinfo_row(vm: FVm, generation: Generation, vc: VCenter) -> dict[str, Any]:
    u = _unit(generation)
    provisioned = sum(d.gib for d in vm.disks) * GIB
    on = vm.power == "poweredOn"
    return {
        **_vm_common(vm, generation, vc),
        "Config status": "green", "DNS Name": vm.dns if on else None, "Connection state": "connected",
        "Guest state": "running" if on else "notRunning", "Heartbeat": "green" if on else "gray",
        "Consolidation Needed": _bool(vm.consolidation_needed, generation), "Creation date": "2023/03/14 09:26:53",
        "Change Version": f"2024-05-0{vm.n % 9 + 1}T10:00:00.{vm.n:06d}Z", "CPUs": vm.cpus, "Memory": vm.memory,
        "NICs": len(vm.nics), "Disks": len(vm.disks), "Total disk capacity MiB": provisioned,
        "min Required EVC Mode Key": "intel-broadwell", "Latency Sensitivity": "normal",
        "EnableUUID": _bool(False, generation), "CBT": _bool(vm.cluster != "cl-dev", generation),
        "Primary IP Address": vm.ip if on else None,
        **{f"Network #{i + 1}": nic.network for i, nic in enumerate(vm.nics)},
        "Num Monitors": 1, "Video Ram KiB": 8192, "Video Ram KB": 8192, "Resource pool": vm.pool,
        "Folder ID": "group-v1001", "Folder": vm.folder if vm.folder_in_vinfo or generation == "MB" else None,
        "vApp": vm.vapp, "DAS protection": _bool(True, generation), "FT State": "notConfigured",
        f"Provisioned {u}": provisioned + vm.memory, f"In Use {u}": provisioned // 3, f"Unshared {u}": provisioned // 3,
        "HA Restart Priority": "clusterRestartPriority", "Boot Required": _bool(False, generation), "Boot delay": 0,
        "EFI Secure boot": _bool(vm.firmware == "efi", generation), "Firmware": vm.firmware,
        "HW version": vm.hw if generation == "MiB" else int(vm.hw.removeprefix("vmx-")),
        "HW upgrade status": "none", "Path": f"[{vm.disks[0].path[1:].split(']')[0]}] {vm.name}/{vm.name}.vmx",
        "SMBIOS UUID": f"4200{vm.n:04x}-aaaa-bbbb-cccc-{vm.n:012x}", "VI SDK Server type": "VMware vCenter Server",
        "VI SDK API Version": SDK_API,
    }


def _vdisk_rows(vm: FVm, generation: Generation, vc: VCenter) -> list[dict[str, Any]]:
    rows = []
    for i, disk in enumerate(vm.disks):
        rdm = disk.raw_mode is not None
        rows.append({
            **_vm_common(vm, generation, vc), "Disk": disk.label, "Disk Key": 2000 + i,
            "Disk UUID": f"6000C29{vm.n:02d}{i:02d}-0000-0000-0000-000000000000",
            f"Capacity {_unit(generation)}": disk.gib * GIB, "Raw": _bool(rdm, generation), "Disk Mode": disk.mode,
            "Sharing mode": disk.sharing if generation == "MiB" or disk.sharing != "sharingNone" else "No sharing",
            "Thin": _bool(disk.thin, generation), "Eagerly Scrub": _bool(not disk.thin, generation),
            "Split": _bool(False, generation), "Write Through": _bool(False, generation), "Level": "normal",
            "Shares": 1000, "Reservation": 0, "Limit": -1, "Controller": disk.controller,
            "Label": disk.controller, "SCSI Unit #": disk.unit, "Unit #": disk.unit, "Shared Bus": "noSharing",
            "Raw LUN ID": "02000000006000c29a" if rdm else None, "Raw Comp. Mode": disk.raw_mode,
            "Internal Sort Column": f"{vm.name}{2000 + i}",
            # 4.x: "Disk Path" is what the guest mounts there, "Path" the VMDK (an RDM's mapping file)
            "Disk Path": disk.mounts if vm.power == "poweredOn" else None, "Path": disk.path,
        })
    return rows


def _vnetwork_rows(vm: FVm, generation: Generation, vc: VCenter) -> list[dict[str, Any]]:
    on = vm.power == "poweredOn"
    return [{
        **_vm_common(vm, generation, vc), "NIC label": nic.label, "Network adapter": nic.label,
        "Adapter": nic.adapter, "Network": nic.network, "Switch": nic.switch,
        "Connected": _bool(nic.connected, generation), "Starts Connected": _bool(True, generation),
        "Mac Address": nic.mac.upper() if generation == "MB" else nic.mac, "Type": "assigned",
        "IPv4 Address": nic.ip if on else None, "IP Address": nic.ip if on else None,
        "IPv6 Address": "fe80::250:56ff:feaa:301" if on and nic.network == "pg-app" and vm.n == 3 else None,
        "Direct Path IO": _bool(False, generation), "Internal Sort Column": f"{vm.name}{nic.label}",
    } for nic in vm.nics]


def _vcpu_row(vm: FVm, generation: Generation, vc: VCenter) -> dict[str, Any]:
    sockets = vm.cpus // 2 if vm.cpus >= 4 else vm.cpus
    return {**_vm_common(vm, generation, vc), "CPUs": vm.cpus, "Sockets": sockets, "Cores p/s": vm.cpus // sockets,
            "Max": 2000 * vm.cpus, "Overall": 100, "Level": "normal", "Shares": 1000 * vm.cpus, "Reservation": 0,
            "Entitlement": 100, "DRS Entitlement": 100, "Limit": -1, "Hot Add": _bool(vm.hot_add, generation),
            "Hot Remove": _bool(False, generation), "Numa Hotadd Exposed": _bool(False, generation)}


def _vmemory_row(vm: FVm, generation: Generation, vc: VCenter) -> dict[str, Any]:
    return {**_vm_common(vm, generation, vc), f"Size {_unit(generation)}": vm.memory, "Overhead": 40,
            "Max": vm.memory, "Consumed": vm.memory // 2, "Level": "normal", "Shares": 10 * vm.memory,
            "Reservation": 0, "Limit": -1, "Hot Add": _bool(vm.hot_add and vm.name == "db-01", generation)}


def _vsnapshot_rows(vm: FVm, generation: Generation, vc: VCenter) -> list[dict[str, Any]]:
    return [{**_vm_common(vm, generation, vc), "Name": f"before-patch-{i}", "Description": None,
             "Date / time": taken if generation == "MiB" else taken.strftime("%Y/%m/%d %H:%M:%S"),
             "Filename": f"[ds-prod-01] {vm.name}/{vm.name}-Snapshot{i + 1}.vmsn", "Quiesced": _bool(False, generation),
             "State": "poweredOff"} for i, taken in enumerate(vm.snapshots)]


def _vtools_row(vm: FVm, generation: Generation, vc: VCenter) -> dict[str, Any]:
    on = vm.power == "poweredOn"
    return {**_vm_common(vm, generation, vc), "VM Version": vm.hw, "Tools": "toolsOk" if on else "toolsNotRunning",
            "Tools Version": 12352, "Required Version": 12352, "Upgradeable": _bool(False, generation),
            "Upgrade Policy": "manual"}


_HOSTS = [  # name, cluster, maintenance, object id, version
    ("esx-01.corp.local", "cl-prod", False, "host-101", "VMware ESXi 8.0.2 build-22380479"),
    ("esx-02.corp.local", "cl-prod", False, "host-102", "VMware ESXi 8.0.2 build-22380479"),
    ("esx-03.corp.local", "cl-dev", False, "host-103", "VMware ESXi 7.0.3 build-21930508"),
    ("esx-04.corp.local", "cl-dev", True, "host-104", "VMware ESXi 7.0.3 build-21930508"),
]
_HOSTS_B = [
    ("esx-01.corp.local", "cl-west", False, "host-101", "VMware ESXi 8.0.2 build-22380479"),
    ("esx-02.corp.local", "cl-west", False, "host-102", "VMware ESXi 8.0.2 build-22380479"),
]


def _vhost(generation: Generation, vc: VCenter) -> tuple[list[str], list[dict[str, Any]]]:
    if generation == "MiB":
        headers = ["Host", "Datacenter", "Cluster", "Config status", "Compliance Check State", "in Maintenance Mode",
                   "in Quarantine Mode", "vSAN Fault Domain Name", "CPU Model", "Speed", "HT Available", "HT Active",
                   "# CPU", "Cores per CPU", "# Cores", "CPU usage %", "# Memory", "Memory Tiering Type",
                   "Memory usage %", "Console", "# NICs", "# HBAs", "# VMs total", "# VMs", "VMs per Core",
                   "# vCPUs", "vCPUs per Core", "vRAM", "VM Used memory", "VM Memory Swapped", "VM Memory Ballooned",
                   "VMotion support", "Storage VMotion support", "Current EVC", "Max EVC", "Assigned License(s)",
                   "ATS Heartbeat", "ATS Locking", "Current CPU power man. policy", "Supported CPU power man.",
                   "Host Power Policy", "ESX Version", "Boot time", "DNS Servers", "DHCP", "Domain", "Domain List",
                   "DNS Search Order", "NTP Server(s)", "NTPD running", "Time Zone", "Time Zone Name", "GMT Offset",
                   "Vendor", "Model", "Serial number", "Service tag", "OEM specific string", "BIOS Vendor",
                   "BIOS Version", "BIOS Date", "Certificate Issuer", "Certificate Start Date",
                   "Certificate Expiry Date", "Certificate Status", "Certificate Subject", "Object ID", "UUID",
                   "VI SDK Server", "VI SDK UUID"]
    else:  # older: no "# Cores" (derived from sockets x cores), no EVC, no "Object ID"
        headers = ["Host", "Datacenter", "Cluster", "Config status", "in Maintenance Mode", "CPU Model", "Speed",
                   "HT Available", "HT Active", "# CPU", "Cores per CPU", "CPU usage %", "# Memory", "Memory usage %",
                   "# NICs", "# HBAs", "# VMs total", "# VMs", "ESX Version", "Vendor", "Model", "UUID",
                   "VI SDK Server", "VI SDK UUID"]
    rows = [{
        "Host": name, "Datacenter": vc.datacenter, "Cluster": cluster, "Config status": "green",
        "in Maintenance Mode": _bool(maintenance, generation), "in Quarantine Mode": _bool(False, generation),
        "CPU Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "Speed": 2000, "HT Available": _bool(True, generation),
        "HT Active": _bool(True, generation), "# CPU": 2, "Cores per CPU": 32, "# Cores": 64, "CPU usage %": 23,
        "# Memory": 1048576, "Memory usage %": 41, "# NICs": 4, "# HBAs": 2, "# VMs total": 3, "# VMs": 3,
        "Current EVC": "intel-icelake" if cluster == "cl-prod" else None, "Max EVC": "intel-icelake",
        "ESX Version": version, "Vendor": "Dell Inc.", "Model": "PowerEdge R750", "Object ID": object_id,
        "UUID": f"4c4c4544-0000-{i:04d}", "VI SDK Server": vc.server, "VI SDK UUID": vc.uuid,
    } for i, (name, cluster, maintenance, object_id, version) in enumerate(_HOSTS if vc == VC_A else _HOSTS_B)]
    return headers, rows


def _vcluster(generation: Generation, vc: VCenter) -> tuple[list[str], list[dict[str, Any]]]:
    headers = ["Name", "Config status", "OverallStatus", "NumHosts", "numEffectiveHosts", "TotalCpu",
               "NumCpuCores", "NumCpuThreads", "Effective Cpu", "TotalMemory", "Effective Memory", "Num VMotions",
               "HA enabled", "Failover Level", "AdmissionControlEnabled", "Host monitoring",
               "HB Datastore Candidate Policy", "Isolation Response", "Restart Priority", "Cluster Settings",
               "Max Failures", "Max Failure Window", "Failure Interval", "Min Up Time", "VM Monitoring",
               "DRS enabled", "DRS default VM behavior", "DRS vmotion rate", "DPM enabled", "DPM default behavior",
               "DPM Host Power Action Rate", "Object ID", "VI SDK Server", "VI SDK UUID"]
    if generation == "MB":
        headers.remove("Object ID")
    clusters = (("cl-prod", True, "domain-c201"), ("cl-dev", False, "domain-c202")) if vc == VC_A else (
        ("cl-west", True, "domain-c201"),)
    rows = [{
        "Name": name, "Config status": "green", "OverallStatus": "green", "NumHosts": 2, "numEffectiveHosts": 2,
        "TotalCpu": 256000, "NumCpuCores": 128, "NumCpuThreads": 256, "TotalMemory": 2199023255552,
        "HA enabled": _bool(ha, generation), "Failover Level": 1, "AdmissionControlEnabled": _bool(ha, generation),
        "DRS enabled": _bool(True, generation), "DRS default VM behavior": "fullyAutomated",
        "Object ID": object_id, "VI SDK Server": vc.server, "VI SDK UUID": vc.uuid,
    } for name, ha, object_id in clusters]
    return headers, rows


def _vdatastore(generation: Generation, vc: VCenter) -> tuple[list[str], list[dict[str, Any]]]:
    u = _unit(generation)
    headers = ["Name", "Config status", "Address", "Accessible", "Type", "# VMs total", "# VMs", f"Capacity {u}",
               f"Provisioned {u}", f"In Use {u}", f"Free {u}", "Free %", "SIOC enabled", "SIOC Threshold", "# Hosts",
               "Hosts", "Cluster name", "Cluster capacity MiB", "Cluster free space MiB", "Block size", "Max Blocks",
               "# Extents", "Major Version", "Version", "VMFS Upgradeable", "MHA", "URL", "Object ID",
               "VI SDK Server", "VI SDK UUID"]
    if generation == "MB":
        headers = [h for h in headers if h not in ("Object ID", "Cluster capacity MiB", "Cluster free space MiB")]
    stores = [("ds-prod-01", "VMFS", 4096, 1024, "datastore-301"), ("ds-prod-02", "VMFS", 8192, 3072, "datastore-302"),
              ("ds-dev-01", "NFS", 2048, 1536, "datastore-303")] if vc == VC_A else [
              ("ds-prod-01", "VMFS", 4096, 2048, "datastore-301")]
    rows = [{
        "Name": name, "Config status": "green", "Accessible": _bool(True, generation), "Type": kind,
        f"Capacity {u}": gib * GIB, f"Provisioned {u}": (gib - free) * GIB, f"In Use {u}": (gib - free) * GIB,
        f"Free {u}": free * GIB, "Free %": round(100 * free / gib), "# Hosts": 2,
        "Address": "nas01:/export/dev" if kind == "NFS" else "naa.600c0ff0001",
        "URL": f"ds:///vmfs/volumes/{object_id}/", "Object ID": object_id, "VI SDK Server": vc.server,
        "VI SDK UUID": vc.uuid,
    } for name, kind, gib, free, object_id in stores]
    return headers, rows


def build_workbook(generation: Generation = "MiB", vc: VCenter = VC_A, vms: list[FVm] | None = None) -> Workbook:
    """The whole fixture export of one vCenter as an openpyxl workbook (sheets in RVTools' order)."""
    vms = (VMS if vc == VC_A else VMS_B) if vms is None else vms
    g = generation
    wb = Workbook()
    wb.remove(wb.active)
    sheets: list[tuple[str, list[str], list[dict[str, Any]]]] = [
        ("vInfo", _vinfo_headers(g), [_vinfo_row(vm, g, vc) for vm in vms]),
        ("vCPU", _vcpu_headers(g), [_vcpu_row(vm, g, vc) for vm in vms]),
        ("vMemory", _vmemory_headers(g), [_vmemory_row(vm, g, vc) for vm in vms]),
        ("vDisk", _vdisk_headers(g), [r for vm in vms for r in _vdisk_rows(vm, g, vc)]),
        ("vNetwork", _vnetwork_headers(g), [r for vm in vms for r in _vnetwork_rows(vm, g, vc)]),
        ("vSnapshot", _vsnapshot_headers(g), [r for vm in vms for r in _vsnapshot_rows(vm, g, vc)]),
        ("vTools", _vtools_headers(g), [_vtools_row(vm, g, vc) for vm in vms]),
        ("vCluster", *_vcluster(g, vc)),
        ("vHost", *_vhost(g, vc)),
        ("vDatastore", *_vdatastore(g, vc)),
        ("vSource", ["Name", "OS type", "API type", "API version", "Version", "Patch level", "Build", "Fullname",
                     "Product name", "Product version", "Product line", "Vendor", "VI SDK Server", "VI SDK UUID"],
         [{"Name": vc.server, "API type": "VirtualCenter", "API version": SDK_API,
           "Fullname": "VMware vCenter Server 8.0.2 build-22617221", "VI SDK Server": vc.server,
           "VI SDK UUID": vc.uuid}]),
        ("vMetaData", ["RVTools major version", "RVTools version", "xlsx creation datetime", "Server"],
         [{"RVTools major version": 4 if g == "MiB" else 3, "RVTools version": "4.7.1.4" if g == "MiB" else "3.11.9.0",
           "xlsx creation datetime": "2024/05/06 08:15:00", "Server": vc.server}]),
    ]
    if g == "MiB":
        sheets.insert(10, ("dvSwitch", ["Switch", "Datacenter", "Name", "Vendor", "Version", "Object ID"],
                           [{"Switch": "dvs-prod", "Datacenter": vc.datacenter, "Name": "dvs-prod",
                             "Vendor": "VMware, Inc.", "Version": "8.0.0", "Object ID": "dvs-21"}]))
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(headers)
        for row in rows:
            ws.append([row.get(h) for h in headers])
    return wb


def write_rvtools(path: Path, generation: Generation = "MiB", edit: Callable[[Workbook], None] | None = None,
                  vc: VCenter = VC_A) -> Path:
    """Write the fixture export to `path` as xlsx, after `edit` changed the workbook if given."""
    wb = build_workbook(generation, vc)
    if edit is not None:
        edit(wb)
    wb.save(path)
    return path


def _csv_cell(value: Any) -> str:
    """A cell as RVTools writes it to CSV: True/False, thousands separators, dates as yyyy/mm/dd hh:mm:ss."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y/%m/%d %H:%M:%S")
    return str(value)


def write_csv(directory: Path, generation: Generation = "MiB", edit: Callable[[Workbook], None] | None = None,
              vc: VCenter = VC_A) -> Path:
    """Write the fixture export as RVTools' per-tab CSV files (RVTools_tab<sheet>.csv) into `directory`."""
    wb = build_workbook(generation, vc)
    if edit is not None:
        edit(wb)
    directory.mkdir(parents=True, exist_ok=True)
    for ws in wb.worksheets:
        with (directory / f"RVTools_tab{ws.title}.csv").open("w", newline="", encoding="utf-8-sig") as out:
            writer = csv.writer(out)
            for values in ws.iter_rows(values_only=True):
                writer.writerow([_csv_cell(v) for v in values])
    return directory


def _column(wb: Workbook, sheet: str, header: str) -> int:
    headers = [c.value for c in wb[sheet][1]]
    return headers.index(header) + 1


def row_of(wb: Workbook, sheet: str, **where: Any) -> int:
    """The Excel row number of the first row whose cells (by header, `_` for space) equal `where`."""
    ws = wb[sheet]
    columns = {_column(wb, sheet, key.replace("_", " ")): value for key, value in where.items()}
    for number in range(2, ws.max_row + 1):
        if all(ws.cell(number, col).value == value for col, value in columns.items()):
            return number
    raise LookupError(f"no row in {sheet} with {where}")


def set_cell(wb: Workbook, sheet: str, header: str, value: Any, **where: Any) -> int:
    """Set one cell of the row matching `where`; returns its Excel row number."""
    number = row_of(wb, sheet, **where)
    wb[sheet].cell(number, _column(wb, sheet, header)).value = value
    return number


def delete_column(wb: Workbook, sheet: str, header: str) -> None:
    """Remove a column (header and cells) from a sheet."""
    wb[sheet].delete_cols(_column(wb, sheet, header))
