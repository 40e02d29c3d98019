"""Turn one VM's raw PropertyCollector values into inventory fields, reading only what is needed.

Devices are the bulk of a VM's properties; walking just the children we use (instead of converting
every device tree) is what keeps discovery of 10,000 VMs within seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from adapters.vcenter.soap_reader import to_value

__all__ = [
    "HEAVY_PATHS",
    "MARKER_PATHS",
    "RUNTIME_PATHS",
    "VM_PATHS",
    "VmPaths",
    "combine",
    "extract_heavy",
    "extract_light",
    "extract_marker",
    "extract_vm",
    "scalar",
]

# Coarse paths on purpose: each path costs a propSet wrapper (~180 bytes in vcsim) and a round of
# encoding and parsing per VM; `guest` and `config.hardware` replace 4 paths each.
# What changes while a VM runs, plus the configuration's change markers: cheap, and enough to notice
# any change of configuration (it moves config.changeVersion / config.modified).
RUNTIME_PATHS = (
    "name", "config.changeVersion", "config.modified", "runtime.powerState", "runtime.host", "guest", "parent",
    "resourcePool", "parentVApp", "customValue", "snapshot",
)
# The configuration: identity, hardware (with the device list: the bulk of the bytes).
# The readiness facts (migrate.engine.readiness) are here too: the run-time ones (consolidation, fault
# tolerance, EVC baseline) change with events that name the VM (snapshot tasks, power on), which re-read it.
HEAVY_PATHS = (
    "config.instanceUuid", "config.uuid", "config.hardware", "config.firmware", "config.version", "config.template",
    "config.annotation", "config.guestId", "config.guestFullName", "config.changeTrackingEnabled",
    "config.cpuHotAddEnabled", "config.cpuHotRemoveEnabled", "config.memoryHotAddEnabled", "config.bootOptions",
    "config.keyId", "runtime.consolidationNeeded", "runtime.faultToleranceState", "runtime.minRequiredEVCModeKey",
)
VM_PATHS = HEAVY_PATHS + RUNTIME_PATHS
# What can change without an event naming the VM (vcsim: renames, custom values; any vCenter: guest
# facts), plus config.changeVersion (real vCenter's configuration marker; unset, so free, in vcsim).
# Power state, host, folder and pool come from events and from the hosts', folders' and pools' lists.
# In VM_PATHS' relative order: servers send propSets in the order asked (vcsim does), so a full scan's
# marker propSets hash like the marker pass's own (vm_markers).
MARKER_PATHS = ("name", "config.changeVersion", "guest", "parentVApp", "customValue", "snapshot")
_CUSTOM_VALUES = "customValue"


@dataclass(frozen=True)
class VmPaths:
    """The paths a scan asks of every VM: without customValue when no custom attribute applies to VMs.

    Every present property costs the server an encoding per VM (vcsim: ~5 us, 15-20% of a marker
    pass); a vCenter with no custom attribute for VMs has no values to send.
    """

    custom_values: bool = True

    def _keep(self, paths: tuple[str, ...]) -> tuple[str, ...]:
        return paths if self.custom_values else tuple(path for path in paths if path != _CUSTOM_VALUES)

    @property
    def vm(self) -> tuple[str, ...]:
        return self._keep(VM_PATHS)

    @property
    def runtime(self) -> tuple[str, ...]:
        return self._keep(RUNTIME_PATHS)

    @property
    def markers(self) -> tuple[str, ...]:
        return self._keep(MARKER_PATHS)


_NS = "{urn:vim25}"
_NS_LEN = len(_NS)
_IP_ADDRESS = _NS + "ipAddress"
_NET, _DEVICE, _HOST_NAME, _TOOLS_STATUS = _NS + "net", _NS + "device", _NS + "hostName", _NS + "toolsStatus"
_ROOT_SNAPSHOT, _CHILD_SNAPSHOT = _NS + "rootSnapshotList", _NS + "childSnapshotList"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_NIC_TYPES = {"VirtualVmxnet3": "vmxnet3", "VirtualVmxnet2": "vmxnet2", "VirtualVmxnet": "vmxnet",
              "VirtualE1000": "e1000", "VirtualE1000e": "e1000e", "VirtualPCNet32": "pcnet32",
              "VirtualSriovEthernetCard": "sriov", "VirtualVmxnet3Vrdma": "vmxnet3vrdma"}
_CONTROLLERS = {"ParaVirtualSCSIController": "pvscsi", "VirtualLsiLogicController": "lsilogic",
                "VirtualLsiLogicSASController": "lsilogic-sas", "VirtualBusLogicController": "buslogic",
                "VirtualAHCIController": "sata", "VirtualNVMEController": "nvme", "VirtualIDEController": "ide"}
_DELTA_DISK = re.compile(r"-\d{6}\.vmdk$")   # a snapshot delta's descriptor: vm-000001.vmdk
_NOTABLE = {"VirtualTPM": "tpm",
            "VirtualUSB": "usb", "VirtualUSBController": "usb-controller", "VirtualUSBXHCIController": "usb-controller",
            "VirtualSerialPort": "serial", "VirtualParallelPort": "parallel", "VirtualCdrom": "cdrom",
            "VirtualFloppy": "floppy", "VirtualPCIPassthrough": "pci-passthrough"}


def _fields(element: Any) -> dict[str, Any]:
    """Direct children by local name (one pass; repeated lookups on lxml elements are slow)."""
    return {child.tag[_NS_LEN:]: child for child in element}


def _text(fields: dict[str, Any], name: str) -> str | None:
    child = fields.get(name)
    return None if child is None else child.text


def _int(fields: dict[str, Any], name: str) -> int | None:
    child = fields.get(name)
    return int(child.text) if child is not None and child.text else None


def _bool(fields: dict[str, Any], name: str) -> bool | None:
    child = fields.get(name)
    return None if child is None else child.text == "true"


def scalar(val: Any) -> Any:
    """A <val> as a Python value, with a fast path for the common leaf types."""
    if val is None:
        return None
    if len(val) == 0:
        kind = val.get(_XSI_TYPE, "")
        text = val.text or ""
        if kind.endswith((":string", "ManagedObjectReference", ":dateTime")):
            return text
        if kind.endswith((":int", ":long", ":short")):
            return int(text)
        if kind.endswith(":boolean"):
            return text == "true"
    return to_value(val)


def _split_path(path: str) -> tuple[str | None, str]:
    if path.startswith("[") and "]" in path:
        datastore, rest = path[1:].split("]", 1)
        return datastore, rest.strip()
    return None, path


def _disk(fields: dict[str, Any], controllers: dict[int, str]) -> dict[str, Any]:
    capacity = _int(fields, "capacityInBytes")
    if capacity is None:
        capacity = (_int(fields, "capacityInKB") or 0) * 1024
    info = fields.get("deviceInfo")
    entry: dict[str, Any] = {"key": _int(fields, "key") or 0, "capacity_bytes": capacity,
                             "label": (info.findtext(_NS + "label") if info is not None else None) or "",
                             "unit": _int(fields, "unitNumber"),
                             "controller": controllers.get(_int(fields, "controllerKey") or -1)}
    backing = fields.get("backing")
    if backing is not None:
        b = _fields(backing)
        entry["datastore"], entry["path"] = _split_path(_text(b, "fileName") or "")
        entry["mode"] = _text(b, "diskMode")
        entry["thin"] = _bool(b, "thinProvisioned")
        entry["sharing"] = _text(b, "sharing")
        mode = _text(b, "compatibilityMode")
        if mode:
            entry["rdm"] = "physical" if mode == "physicalMode" else "virtual"
    return entry


def _nic(fields: dict[str, Any], adapter: str) -> dict[str, Any]:
    info = fields.get("deviceInfo")
    nic: dict[str, Any] = {"key": _int(fields, "key") or 0, "adapter": adapter, "mac": _text(fields, "macAddress"),
                           "label": (info.findtext(_NS + "label") if info is not None else None) or ""}
    connectable = fields.get("connectable")
    if connectable is not None:
        nic["connected"] = _bool(_fields(connectable), "connected")
    backing = fields.get("backing")
    if backing is not None:
        b = _fields(backing)
        nic["network_name"] = _text(b, "deviceName")
        nic["network_id"] = _text(b, "network")
        port = b.get("port")
        nic["portgroup_key"] = port.findtext(_NS + "portgroupKey") if port is not None else None
        nic["opaque_id"] = _text(b, "opaqueNetworkId")
    return nic


def _devices(val: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Disks, NICs (with raw backing facts) and notable devices from config.hardware.device."""
    controllers: dict[int, str] = {}
    disks: list[dict[str, Any]] = []
    nics: list[dict[str, Any]] = []
    notable: set[str] = set()
    for device in val if val is not None else ():
        kind = (device.get(_XSI_TYPE) or "").rsplit(":", 1)[-1]
        if kind in _CONTROLLERS:
            fields = _fields(device)
            controllers[_int(fields, "key") or 0] = f"{_CONTROLLERS[kind]}:{_int(fields, 'busNumber') or 0}"
        elif kind == "VirtualDisk":
            disks.append(_fields(device))
        elif kind in _NIC_TYPES:
            nics.append(_nic(_fields(device), _NIC_TYPES[kind]))
        elif kind in _NOTABLE:
            notable.add(_NOTABLE[kind])
    # controllers may come after their disks in the list
    return [_disk(fields, controllers) for fields in disks], nics, sorted(notable)


def _guest_ips(net: Any, primary: str | None) -> list[str]:
    """The primary IP, then every NIC's addresses (GuestNicInfo elements), walked directly."""
    ips: list[str] = [primary] if primary else []
    for nic in net if net is not None else ():
        for child in nic.iterchildren(_IP_ADDRESS):
            ip = child.text
            if ip and ip not in ips:
                ips.append(ip)
    return ips


def _snapshot_count(val: Any) -> int:
    """Snapshots in a snapshot tree: every node is a rootSnapshotList or childSnapshotList element."""
    return 0 if val is None else sum(1 for _ in val.iter(_ROOT_SNAPSHOT, _CHILD_SNAPSHOT))


def _str(val: Any) -> str | None:
    """A string, enum or moref <val> (what scalar() gives for them, without looking at its type)."""
    return None if val is None else (val.text or "")


def _custom_values(val: Any) -> list[tuple[str, str]]:
    """(key, value) of customValue (ArrayOfCustomFieldValue), walked directly."""
    values = []
    for item in val if val is not None else ():
        fields = _fields(item)
        values.append((_text(fields, "key") or "None", _text(fields, "value") or ""))
    return values


def _guest_runtime(guest: Any) -> dict[str, Any]:
    """Host name, IPs (the primary one first) and tools status from a `guest` <val> (GuestInfo)."""
    hostname = primary = tools = None
    net = []
    for child in guest if guest is not None else ():     # one pass: lookups by tag are slow on lxml
        tag = child.tag
        if tag == _NET:
            net.append(child)
        elif tag == _HOST_NAME:
            hostname = child.text
        elif tag == _IP_ADDRESS:
            primary = child.text
        elif tag == _TOOLS_STATUS:
            tools = child.text or ""
    return {"hostname": hostname or None, "ip_addresses": _guest_ips(net, primary), "tools_status": tools}


def extract_marker(moref: str, props: dict[str, Any]) -> dict[str, Any]:
    """The facts behind MARKER_PATHS."""
    get = props.get
    return {
        "moref": moref,
        "name": _str(get("name")),
        "config_marker": _str(get("config.changeVersion")) or "",
        "vapp_ref": _str(get("parentVApp")),
        "guest_runtime": _guest_runtime(get("guest")),
        "custom_values": _custom_values(get("customValue")),
        "snapshots": _snapshot_count(get("snapshot")),
    }


def extract_light(moref: str, props: dict[str, Any]) -> dict[str, Any]:
    """The facts behind RUNTIME_PATHS: what changes at run time, and the configuration's change markers."""
    get = props.get
    return {
        "moref": moref,
        "name": _str(get("name")),
        "change_version": f"{_str(get('config.changeVersion')) or ''}|{_str(get('config.modified')) or ''}",
        "power_state": _str(get("runtime.powerState")),
        "host_ref": _str(get("runtime.host")),
        "folder_ref": _str(get("parent")),
        "pool_ref": _str(get("resourcePool")),
        "vapp_ref": _str(get("parentVApp")),
        "guest_runtime": _guest_runtime(get("guest")),
        "custom_values": _custom_values(get("customValue")),
        "snapshots": _snapshot_count(get("snapshot")),
    }


def extract_heavy(moref: str, props: dict[str, Any]) -> dict[str, Any]:
    """The facts behind HEAVY_PATHS: the configuration (hardware, devices, identity)."""
    get = props.get
    hardware = get("config.hardware")
    fields = {} if hardware is None else _fields(hardware)
    disks, nics, notable = _devices([child for child in hardware if child.tag == _DEVICE] if hardware is not None
                                    else None)
    return {
        "moref": moref,
        "id": _str(get("config.instanceUuid")),
        "bios_uuid": _str(get("config.uuid")),
        "cpus": _int(fields, "numCPU") or 0,
        "cores_per_socket": _int(fields, "numCoresPerSocket"),
        "memory_mb": _int(fields, "memoryMB") or 0,
        "firmware": scalar(get("config.firmware")),
        "hardware_version": scalar(get("config.version")),
        "template": bool(scalar(get("config.template"))),
        "annotation": scalar(get("config.annotation")) or None,
        "guest_config": {"guest_id": scalar(get("config.guestId")), "full_name": scalar(get("config.guestFullName"))},
        "disks": disks,
        "nics": nics,
        "devices": notable,
        **_readiness(get, disks),
    }


def _readiness(get: Any, disks: list[dict[str, Any]]) -> dict[str, Any]:
    """The readiness facts; an unset flag is off (the API leaves false flags out), an unset state unknown."""
    boot = get("config.bootOptions")
    secure = None if boot is None else _bool(_fields(boot), "efiSecureBootEnabled")
    return {
        "change_tracking": bool(scalar(get("config.changeTrackingEnabled"))),
        "cpu_hot_add": bool(scalar(get("config.cpuHotAddEnabled"))),
        "cpu_hot_remove": bool(scalar(get("config.cpuHotRemoveEnabled"))),
        "memory_hot_add": bool(scalar(get("config.memoryHotAddEnabled"))),
        "secure_boot": bool(secure),
        "encrypted": get("config.keyId") is not None,
        "consolidation_needed": bool(scalar(get("runtime.consolidationNeeded"))),
        "fault_tolerance_state": _str(get("runtime.faultToleranceState")) or None,
        "min_evc_mode": _str(get("runtime.minRequiredEVCModeKey")) or None,
        "running_on_snapshot": any(_DELTA_DISK.search(d.get("path") or "") for d in disks),
    }


def combine(heavy: dict[str, Any], light: dict[str, Any]) -> dict[str, Any]:
    """One VM's raw facts from its configuration part and its run-time part."""
    merged = {**heavy, **light}
    merged["guest"] = {**light["guest_runtime"], **heavy["guest_config"]}
    return merged


def extract_vm(moref: str, props: dict[str, Any]) -> dict[str, Any]:
    """A plain dict of one VM's facts (all VM_PATHS); names of hosts, networks etc. are resolved later."""
    return combine(extract_heavy(moref, props), extract_light(moref, props))
