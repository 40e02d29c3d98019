"""Realistic RVTools exports for tests, written with openpyxl with the real sheet and column names.

Two generations: "MiB" (RVTools 4.x: "Capacity MiB", "Disk Path", "Raw Comp. Mode", "SMBIOS UUID",
"Object ID", booleans as xlsx booleans) and "MB" (older: "Capacity MB", "Path", "Raw Com. Mode",
"Network adapter", "IP Address", booleans as "True"/"False" text). The MB export leaves "VM UUID" out
of vDisk and vNetwork, so its disks and NICs join their VMs by name, and writes "HW version" as a bare
number ("vmx-19" in the MiB one), to exercise both spellings.

The estate: 10 VMs in datacenter dc-east, clusters cl-prod and cl-dev; app-01 has two disks on two
datastores and two NICs; db-01 and db-02 share a multi-writer disk; db-01 also has a physical RDM;
dev-01 is powered off, dev-02 suspended, tpl-rhel9 a template; custom attributes "backup policy",
"cost center" and "owner" sit between "Annotation" and "Datacenter".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from openpyxl import Workbook

__all__ = [
    "ATTRIBUTES",
    "SDK_UUID",
    "VMS",
    "Generation",
    "bios_uuid",
    "build_workbook",
    "delete_column",
    "row_of",
    "set_cell",
    "vm_uuid",
    "write_rvtools",
]

Generation = Literal["MiB", "MB"]
SDK_SERVER = "vcenter.corp.local"
SDK_UUID = "5f3c8a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SDK_API = "8.0.2.0"
ATTRIBUTES = ("backup policy", "cost center", "owner")
GIB = 1024  # MiB


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


def vm_uuid(name: str) -> str:
    """The fixture's instanceUuid ("VM UUID") of a VM."""
    return f"5000{_vm(name).n:04x}-1111-2222-3333-{_vm(name).n:012x}"


def bios_uuid(name: str) -> str:
    """The fixture's BIOS uuid ("SMBIOS UUID") of a VM."""
    return f"4200{_vm(name).n:04x}-aaaa-bbbb-cccc-{_vm(name).n:012x}"


def _prod(n: int, name: str, host: str, cpus: int, memory: int, network: str, ip: str, **kw: Any) -> FVm:
    disks = kw.pop("disks", None) or [FDisk("Hard disk 1", 40, f"[ds-prod-01] {name}/{name}.vmdk")]
    nics = kw.pop("nics", None) or [FNic("Network adapter 1", network, f"00:50:56:aa:{n:02x}:01", ip)]
    return FVm(n, name, "cl-prod", host, "poweredOn", cpus, memory, "Ubuntu Linux (64-bit)",
               kw.pop("folder", "dc-east/vm/prod"), "Resources/prod", ip=ip, dns=f"{name}.corp.local",
               os_tools="Ubuntu 22.04.3 LTS", disks=disks, nics=nics, **kw)


def _dev(n: int, name: str, power: str, cpus: int, memory: int, **kw: Any) -> FVm:
    return FVm(n, name, "cl-dev", "esx-03.corp.local", power, cpus, memory,
               "Microsoft Windows Server 2022 (64-bit)", "dc-east/vm/dev", "Resources/dev",
               disks=[FDisk("Hard disk 1", 60, f"[ds-dev-01] {name}/{name}.vmdk")],
               nics=[FNic("Network adapter 1", "pg-dev", f"00:50:56:bb:{n:02x}:01", None, adapter="E1000E",
                          switch="vSwitch0", connected=power == "poweredOn")], **kw)


_QUORUM = "[ds-prod-02] shared/quorum.vmdk"
VMS: list[FVm] = [
    _prod(1, "web-01", "esx-01.corp.local", 2, 4096, "pg-web", "10.10.1.11", annotation="Web front end",
          attributes={"owner": "alice", "cost center": "CC-100"}),
    _prod(2, "web-02", "esx-02.corp.local", 2, 4096, "pg-web", "10.10.1.12",
          attributes={"owner": "alice", "cost center": "CC-100"}),
    _prod(3, "app-01", "esx-01.corp.local", 4, 8192, "pg-app", "10.10.2.21", vapp="payments", firmware="efi",
          folder="dc-east/vm/app", attributes={"owner": "bob", "backup policy": "gold"},
          disks=[FDisk("Hard disk 1", 60, "[ds-prod-01] app-01/app-01.vmdk"),
                 FDisk("Hard disk 2", 200, "[ds-prod-02] app-01/app-01_1.vmdk", thin=False, unit=1)],
          nics=[FNic("Network adapter 1", "pg-app", "00:50:56:aa:03:01", "10.10.2.21"),
                FNic("Network adapter 2", "pg-backup", "00:50:56:aa:03:02", "10.10.9.21", connected=False)]),
    _prod(4, "db-01", "esx-02.corp.local", 8, 32768, "pg-db", "10.10.3.31", vapp="payments",
          attributes={"owner": "carol"},
          disks=[FDisk("Hard disk 1", 100, "[ds-prod-01] db-01/db-01.vmdk"),
                 FDisk("Hard disk 2", 500, _QUORUM, thin=False, mode="independent_persistent",
                       sharing="sharingMultiWriter", controller="SCSI controller 1"),
                 FDisk("Hard disk 3", 1024, "[ds-prod-02] db-01/db-01_rdm.vmdk", thin=False,
                       mode="independent_persistent", controller="SCSI controller 2", raw_mode="physicalMode")]),
    _prod(5, "db-02", "esx-01.corp.local", 8, 32768, "pg-db", "10.10.3.32",
          attributes={"owner": "carol"},
          disks=[FDisk("Hard disk 1", 100, "[ds-prod-01] db-02/db-02.vmdk"),
                 FDisk("Hard disk 2", 500, _QUORUM, thin=False, mode="independent_persistent",
                       sharing="sharingMultiWriter", controller="SCSI controller 1")]),
    _dev(6, "dev-01", "poweredOff", 2, 2048, firmware="efi", hw="vmx-17", attributes={"owner": "dave"}),
    _dev(7, "dev-02", "suspended", 1, 1024),
    _dev(8, "tpl-rhel9", "poweredOff", 2, 4096, template=True),
    _prod(9, "mon-01", "esx-02.corp.local", 2, 4096, "pg-app", "10.10.2.40"),
    _prod(10, "ldap-01", "esx-01.corp.local", 1, 2048, "pg-web", "10.10.1.50",
          attributes={"owner": "erin", "cost center": "CC-900"}),
]


def _vm(name: str) -> FVm:
    return next(vm for vm in VMS if vm.name == name)


def _bool(value: bool | None, generation: Generation) -> Any:
    if value is None:
        return None
    return value if generation == "MiB" else ("True" if value else "False")


def _unit(generation: Generation) -> str:
    return "MiB" if generation == "MiB" else "MB"


# --- headers: real RVTools names, in the order RVTools writes them ----------------------------------------

def _vm_tail(generation: Generation, *, uuid: bool = True) -> list[str]:
    """The columns RVTools appends to every VM sheet, after "Annotation" and the custom attributes."""
    tail = ["Datacenter", "Cluster", "Host", "Folder", "OS according to the configuration file",
            "OS according to the VMware Tools", "VM ID"]
    if uuid:
        tail.append("VM UUID")
    return [*tail, "VI SDK Server", "VI SDK UUID"] if generation == "MiB" else tail


def _vinfo_headers(generation: Generation) -> list[str]:
    u = _unit(generation)
    head = ["VM", "Powerstate", "Template"] + (["SRM Placeholder"] if generation == "MiB" else []) + [
        "Config status", "DNS Name", "Connection state", "Guest state", "Heartbeat", "Consolidation Needed",
        "PowerOn", "Suspend time", "Creation date", "Change Version", "CPUs", "Memory", "NICs", "Disks"]
    head += ["Total disk capacity MiB"] if generation == "MiB" else []
    head += ["min Required EVC Mode Key", "Latency Sensitivity", "EnableUUID", "CBT", "Primary IP Address",
             "Network #1", "Network #2", "Network #3", "Network #4", "Num Monitors", "Video Ram KiB",
             "Resource pool"] + (["Folder ID"] if generation == "MiB" else []) + [
             "Folder", "vApp", "DAS protection", "FT State", "FT Role", f"Provisioned {u}", f"In Use {u}",
             f"Unshared {u}", "HA Restart Priority", "Cluster rule(s)", "Cluster rule name(s)", "Boot Required",
             "Boot delay", "EFI Secure boot", "Firmware", "HW version", "HW upgrade status", "Path",
             "Log directory", "Snapshot directory", "Suspend directory", "Annotation", *ATTRIBUTES,
             "Datacenter", "Cluster", "Host", "OS according to the configuration file",
             "OS according to the VMware Tools", "VM ID"]
    head += (["SMBIOS UUID", "VM UUID", "VI SDK Server type", "VI SDK API Version", "VI SDK Server", "VI SDK UUID"]
             if generation == "MiB" else ["VM UUID", "VI SDK Server type", "VI SDK API Version", "VI SDK Server",
                                          "VI SDK UUID"])
    return head


def _vdisk_headers(generation: Generation) -> list[str]:
    if generation == "MiB":
        return ["VM", "Powerstate", "Template", "SRM Placeholder", "Disk", "Disk Key", "Disk UUID", "Disk Path",
                "Capacity MiB", "Raw", "Disk Mode", "Sharing mode", "Thin", "Eagerly Scrub", "Split",
                "Write Through", "Level", "Shares", "Reservation", "Limit", "Controller", "Label", "SCSI Unit #",
                "Unit #", "Shared Bus", "Path", "Raw LUN ID", "Raw Comp. Mode", "Internal Sort Column",
                "Annotation", *ATTRIBUTES, *_vm_tail(generation)]
    return ["VM", "Powerstate", "Template", "Disk", "Capacity MB", "Raw", "Disk Mode", "Sharing mode", "Thin",
            "Eagerly Scrub", "Split", "Write Through", "Level", "Shares", "Reservation", "Limit", "Controller",
            "Unit #", "Path", "Raw LUN ID", "Raw Com. Mode", "Annotation", *ATTRIBUTES,
            *_vm_tail(generation, uuid=False)]


def _vnetwork_headers(generation: Generation) -> list[str]:
    if generation == "MiB":
        return ["VM", "Powerstate", "Template", "SRM Placeholder", "NIC label", "Adapter", "Network", "Switch",
                "Connected", "Starts Connected", "Mac Address", "Type", "IPv4 Address", "IPv6 Address",
                "Direct Path IO", "Internal Sort Column", "Annotation", *ATTRIBUTES, *_vm_tail(generation)]
    return ["VM", "Powerstate", "Template", "Network adapter", "Adapter", "Network", "Switch", "Connected",
            "Starts Connected", "Mac Address", "Type", "IP Address", "Annotation", *ATTRIBUTES,
            *_vm_tail(generation, uuid=False)]


# --- rows ----------------------------------------------------------------------------------------------

def _vm_common(vm: FVm, generation: Generation) -> dict[str, Any]:
    return {
        "VM": vm.name, "Powerstate": vm.power, "Template": _bool(vm.template, generation),
        "SRM Placeholder": _bool(False, generation), "Annotation": vm.annotation, **vm.attributes,
        "Datacenter": "dc-east", "Cluster": vm.cluster, "Host": vm.host, "Folder": vm.folder,
        "OS according to the configuration file": vm.os_config,
        "OS according to the VMware Tools": vm.os_tools if vm.power == "poweredOn" else None,
        "VM ID": f"vm-{1000 + vm.n}", "VM UUID": vm_uuid(vm.name), "VI SDK Server": SDK_SERVER,
        "VI SDK UUID": SDK_UUID,
    }


def _vinfo_row(vm: FVm, generation: Generation) -> dict[str, Any]:
    u = _unit(generation)
    provisioned = sum(d.gib for d in vm.disks) * GIB
    on = vm.power == "poweredOn"
    return {
        **_vm_common(vm, generation),
        "Config status": "green", "DNS Name": vm.dns if on else None, "Connection state": "connected",
        "Guest state": "running" if on else "notRunning", "Heartbeat": "green" if on else "gray",
        "Consolidation Needed": _bool(False, generation), "Creation date": "2023/03/14 09:26:53",
        "Change Version": f"2024-05-0{vm.n % 9 + 1}T10:00:00.{vm.n:06d}Z", "CPUs": vm.cpus, "Memory": vm.memory,
        "NICs": len(vm.nics), "Disks": len(vm.disks), "Total disk capacity MiB": provisioned,
        "Latency Sensitivity": "normal", "EnableUUID": _bool(False, generation), "CBT": _bool(True, generation),
        "Primary IP Address": vm.ip if on else None,
        **{f"Network #{i + 1}": nic.network for i, nic in enumerate(vm.nics)},
        "Num Monitors": 1, "Video Ram KiB": 8192, "Resource pool": vm.pool, "Folder ID": "group-v1001",
        "vApp": vm.vapp, "DAS protection": _bool(True, generation), "FT State": "notConfigured",
        f"Provisioned {u}": provisioned + vm.memory, f"In Use {u}": provisioned // 3, f"Unshared {u}": provisioned // 3,
        "HA Restart Priority": "clusterRestartPriority", "Boot Required": _bool(False, generation), "Boot delay": 0,
        "EFI Secure boot": _bool(vm.firmware == "efi", generation), "Firmware": vm.firmware,
        "HW version": vm.hw if generation == "MiB" else int(vm.hw.removeprefix("vmx-")),
        "HW upgrade status": "none", "Path": f"[{vm.disks[0].path[1:].split(']')[0]}] {vm.name}/{vm.name}.vmx",
        "SMBIOS UUID": bios_uuid(vm.name), "VI SDK Server type": "VMware vCenter Server",
        "VI SDK API Version": SDK_API,
    }


def _vdisk_rows(vm: FVm, generation: Generation) -> list[dict[str, Any]]:
    rows = []
    for i, disk in enumerate(vm.disks):
        rdm = disk.raw_mode is not None
        row = {
            **_vm_common(vm, generation), "Disk": disk.label, "Disk Key": 2000 + i,
            "Disk UUID": f"6000C29{vm.n:02d}{i:02d}-0000-0000-0000-000000000000",
            f"Capacity {_unit(generation)}": disk.gib * GIB, "Raw": _bool(rdm, generation), "Disk Mode": disk.mode,
            "Sharing mode": disk.sharing if generation == "MiB" or disk.sharing != "sharingNone" else "No sharing",
            "Thin": _bool(disk.thin, generation), "Eagerly Scrub": _bool(not disk.thin, generation),
            "Split": _bool(False, generation), "Write Through": _bool(False, generation), "Level": "normal",
            "Shares": 1000, "Reservation": 0, "Limit": -1, "Controller": disk.controller,
            "Label": disk.controller, "SCSI Unit #": disk.unit, "Unit #": disk.unit, "Shared Bus": "noSharing",
            "Raw LUN ID": "02000000006000c29a" if rdm else None,
            f"Raw {'Comp' if generation == 'MiB' else 'Com'}. Mode": disk.raw_mode,
            "Internal Sort Column": f"{vm.name}{2000 + i}",
        }
        if generation == "MiB":  # "Path" is the RDM device; "Disk Path" the vmdk
            row |= {"Disk Path": disk.path, "Path": "/vmfs/devices/disks/naa.600c0ff000" if rdm else None}
        else:
            row["Path"] = disk.path
        rows.append(row)
    return rows


def _vnetwork_rows(vm: FVm, generation: Generation) -> list[dict[str, Any]]:
    on = vm.power == "poweredOn"
    return [{
        **_vm_common(vm, generation), "NIC label": nic.label, "Network adapter": nic.label,
        "Adapter": nic.adapter, "Network": nic.network, "Switch": nic.switch,
        "Connected": _bool(nic.connected, generation), "Starts Connected": _bool(True, generation),
        "Mac Address": nic.mac.upper() if generation == "MB" else nic.mac, "Type": "assigned",
        "IPv4 Address": nic.ip if on else None, "IP Address": nic.ip if on else None,
        "IPv6 Address": "fe80::250:56ff:feaa:301" if on and nic.network == "pg-app" and vm.n == 3 else None,
        "Direct Path IO": _bool(False, generation), "Internal Sort Column": f"{vm.name}{nic.label}",
    } for nic in vm.nics]


_HOSTS = [  # name, cluster, maintenance, object id, version
    ("esx-01.corp.local", "cl-prod", False, "host-101", "VMware ESXi 8.0.2 build-22380479"),
    ("esx-02.corp.local", "cl-prod", False, "host-102", "VMware ESXi 8.0.2 build-22380479"),
    ("esx-03.corp.local", "cl-dev", False, "host-103", "VMware ESXi 7.0.3 build-21930508"),
    ("esx-04.corp.local", "cl-dev", True, "host-104", "VMware ESXi 7.0.3 build-21930508"),
]


def _vhost(generation: Generation) -> tuple[list[str], list[dict[str, Any]]]:
    headers = ["Host", "Datacenter", "Cluster", "Config status", "in Maintenance Mode", "CPU Model", "Speed",
               "HT Available", "HT Active", "# CPU", "Cores per CPU", "# Cores", "CPU usage %", "# Memory",
               "Memory usage %", "# NICs", "# HBAs", "# VMs total", "# VMs", "ESX Version", "Vendor", "Model",
               "Object ID", "UUID", "VI SDK Server", "VI SDK UUID"]
    if generation == "MB":  # older: no "# Cores" (derived from sockets x cores) and no "Object ID"
        headers = [h for h in headers if h not in ("# Cores", "Object ID")]
    rows = [{
        "Host": name, "Datacenter": "dc-east", "Cluster": cluster, "Config status": "green",
        "in Maintenance Mode": _bool(maintenance, generation), "CPU Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        "Speed": 2000, "HT Available": _bool(True, generation), "HT Active": _bool(True, generation), "# CPU": 2,
        "Cores per CPU": 32, "# Cores": 64, "CPU usage %": 23, "# Memory": 1048576, "Memory usage %": 41,
        "# NICs": 4, "# HBAs": 2, "# VMs total": 3, "# VMs": 3, "ESX Version": version, "Vendor": "Dell Inc.",
        "Model": "PowerEdge R750", "Object ID": object_id, "UUID": f"4c4c4544-0000-{i:04d}",
        "VI SDK Server": SDK_SERVER, "VI SDK UUID": SDK_UUID,
    } for i, (name, cluster, maintenance, object_id, version) in enumerate(_HOSTS)]
    return headers, rows


def _vcluster(generation: Generation) -> tuple[list[str], list[dict[str, Any]]]:
    headers = ["Name", "Config status", "OverallStatus", "NumHosts", "numEffectiveHosts", "TotalCpu",
               "NumCpuCores", "NumCpuThreads", "Effective Cpu", "TotalMemory", "Effective Memory", "Num VMotions",
               "HA enabled", "Failover Level", "AdmissionControlEnabled", "DRS enabled", "DRS default VM behavior",
               "Object ID", "VI SDK Server", "VI SDK UUID"]
    if generation == "MB":
        headers.remove("Object ID")
    rows = [{
        "Name": name, "Config status": "green", "OverallStatus": "green", "NumHosts": 2, "numEffectiveHosts": 2,
        "TotalCpu": 256000, "NumCpuCores": 128, "NumCpuThreads": 256, "TotalMemory": 2199023255552,
        "HA enabled": _bool(ha, generation), "Failover Level": 1, "AdmissionControlEnabled": _bool(ha, generation),
        "DRS enabled": _bool(True, generation), "DRS default VM behavior": "fullyAutomated",
        "Object ID": object_id, "VI SDK Server": SDK_SERVER, "VI SDK UUID": SDK_UUID,
    } for name, ha, object_id in (("cl-prod", True, "domain-c201"), ("cl-dev", False, "domain-c202"))]
    return headers, rows


def _vdatastore(generation: Generation) -> tuple[list[str], list[dict[str, Any]]]:
    u = _unit(generation)
    headers = ["Name", "Config status", "Address", "Accessible", "Type", "# VMs total", "# VMs", f"Capacity {u}",
               f"Provisioned {u}", f"In Use {u}", f"Free {u}", "Free %", "# Hosts", "Hosts", "URL", "Object ID",
               "VI SDK Server", "VI SDK UUID"]
    if generation == "MB":
        headers.remove("Object ID")
    stores = [("ds-prod-01", "VMFS", 4096, 1024, "datastore-301"), ("ds-prod-02", "VMFS", 8192, 3072, "datastore-302"),
              ("ds-dev-01", "NFS", 2048, 1536, "datastore-303")]
    rows = [{
        "Name": name, "Config status": "green", "Accessible": _bool(True, generation), "Type": kind,
        f"Capacity {u}": gib * GIB, f"Provisioned {u}": (gib - free) * GIB, f"In Use {u}": (gib - free) * GIB,
        f"Free {u}": free * GIB, "Free %": round(100 * free / gib), "# Hosts": 2,
        "Address": "nas01:/export/dev" if kind == "NFS" else "naa.600c0ff0001",
        "URL": f"ds:///vmfs/volumes/{object_id}/", "Object ID": object_id, "VI SDK Server": SDK_SERVER,
        "VI SDK UUID": SDK_UUID,
    } for name, kind, gib, free, object_id in stores]
    return headers, rows


def build_workbook(generation: Generation = "MiB") -> Workbook:
    """The whole fixture export as an openpyxl workbook (sheets in RVTools' order)."""
    wb = Workbook()
    wb.remove(wb.active)
    sheets: list[tuple[str, list[str], list[dict[str, Any]]]] = [
        ("vInfo", _vinfo_headers(generation), [_vinfo_row(vm, generation) for vm in VMS]),
        ("vCPU", ["VM", "Powerstate", "Template", "CPUs", "Sockets", "Cores p/s"],
         [{"VM": vm.name, "Powerstate": vm.power, "CPUs": vm.cpus, "Sockets": vm.cpus, "Cores p/s": 1} for vm in VMS]),
        ("vDisk", _vdisk_headers(generation), [r for vm in VMS for r in _vdisk_rows(vm, generation)]),
        ("vNetwork", _vnetwork_headers(generation), [r for vm in VMS for r in _vnetwork_rows(vm, generation)]),
        ("vCluster", *_vcluster(generation)),
        ("vHost", *_vhost(generation)),
        ("vDatastore", *_vdatastore(generation)),
        ("vSource", ["Name", "API type", "API version", "Fullname", "VI SDK Server", "VI SDK UUID"],
         [{"Name": SDK_SERVER, "API type": "VirtualCenter", "API version": SDK_API,
           "Fullname": "VMware vCenter Server 8.0.2 build-22617221", "VI SDK Server": SDK_SERVER,
           "VI SDK UUID": SDK_UUID}]),
        ("vMetaData", ["RVTools major version", "RVTools version", "xlsx creation datetime", "Server"],
         [{"RVTools major version": 4 if generation == "MiB" else 3,
           "RVTools version": "4.6.1.0" if generation == "MiB" else "3.11.9.0",
           "xlsx creation datetime": "2024/05/06 08:15:00", "Server": SDK_SERVER}]),
    ]
    if generation == "MiB":
        sheets.insert(7, ("dvSwitch", ["Switch", "Datacenter", "Name", "Vendor", "Version", "Object ID"],
                          [{"Switch": "dvs-prod", "Datacenter": "dc-east", "Name": "dvs-prod", "Vendor": "VMware, Inc.",
                            "Version": "8.0.0", "Object ID": "dvs-21"}]))
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(headers)
        for row in rows:
            ws.append([row.get(h) for h in headers])
    return wb


def write_rvtools(path: Path, generation: Generation = "MiB",
                  edit: Callable[[Workbook], None] | None = None) -> Path:
    """Write the fixture export to `path`, after `edit` changed the workbook if given."""
    wb = build_workbook(generation)
    if edit is not None:
        edit(wb)
    wb.save(path)
    return path


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
