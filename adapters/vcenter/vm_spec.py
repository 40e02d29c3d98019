"""Build the ConfigSpec of a target VM from the plain spec the cold method hands the target adapter.

The spec (plain data, journaled) is:

    {name, source_id, cpus, cores_per_socket, memory_mb, guest_id, firmware, hardware_version, vm_path,
     disks: [{file, capacity_bytes, controller ("pvscsi:0"), unit, thin, mode}],
     nics:  [{mac, adapter, connected, network: {kind: dvs|standard|opaque, name, moref, key, switch_uuid,
              opaque_id, opaque_type}}]}

Disks attach the files the copy phase wrote (no file operation); NICs keep their MAC (manual address).
The source instanceUuid is both the new VM's instanceUuid and an extraConfig entry, so the VM records
which source it came from in the same call that creates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyVmomi import vim

__all__ = ["SOURCE_KEY", "TEST_KEY", "config_spec", "controller_kinds", "nic_backing"]

SOURCE_KEY = "migrate.sourceInstanceUuid"
TEST_KEY = "migrate.testOf"   # on a test copy (migrate test): the source it copies

_CONTROLLER_TYPES: dict[str, type] = {
    "pvscsi": vim.vm.device.ParaVirtualSCSIController,
    "lsilogic": vim.vm.device.VirtualLsiLogicController,
    "lsilogic-sas": vim.vm.device.VirtualLsiLogicSASController,
    "buslogic": vim.vm.device.VirtualBusLogicController,
    "sata": vim.vm.device.VirtualAHCIController,
    "nvme": vim.vm.device.VirtualNVMEController,
}
_NIC_TYPES: dict[str, type] = {
    "vmxnet3": vim.vm.device.VirtualVmxnet3,
    "vmxnet2": vim.vm.device.VirtualVmxnet2,
    "e1000": vim.vm.device.VirtualE1000,
    "e1000e": vim.vm.device.VirtualE1000e,
    "pcnet32": vim.vm.device.VirtualPCNet32,
}
_SCSI = {"pvscsi", "lsilogic", "lsilogic-sas", "buslogic"}


def controller_kinds() -> frozenset[str]:
    """Disk controller kinds a target VM can be given."""
    return frozenset(_CONTROLLER_TYPES)


def _controller(kind: str, bus: int, key: int) -> Any:
    device = _CONTROLLER_TYPES[kind](key=key, busNumber=bus)
    if kind in _SCSI:
        device.sharedBus = vim.vm.device.VirtualSCSIController.Sharing.noSharing
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=device)


def _disk(disk: Mapping[str, Any], controller_key: int, key: int) -> Any:
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
        fileName=disk["file"], diskMode=disk.get("mode") or "persistent", thinProvisioned=bool(disk.get("thin", True)))
    device = vim.vm.device.VirtualDisk(key=key, controllerKey=controller_key, unitNumber=int(disk["unit"]),
                                       capacityInKB=-(-int(disk["capacity_bytes"]) // 1024), backing=backing)
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=device)


def nic_backing(network: Mapping[str, Any]) -> Any:
    """The backing of a NIC on `network` (the plain facts VCenterTarget.networks returns)."""
    nics = vim.vm.device.VirtualEthernetCard
    if network["kind"] == "dvs":
        port = vim.dvs.PortConnection(portgroupKey=network["key"], switchUuid=network["switch_uuid"])
        return nics.DistributedVirtualPortBackingInfo(port=port)
    if network["kind"] == "opaque":
        return nics.OpaqueNetworkBackingInfo(opaqueNetworkId=network["opaque_id"],
                                             opaqueNetworkType=network["opaque_type"])
    return nics.NetworkBackingInfo(deviceName=network["name"], network=vim.Network(network["moref"]))


def _nic(nic: Mapping[str, Any], key: int) -> Any:
    device = _NIC_TYPES.get(str(nic.get("adapter") or "vmxnet3"), vim.vm.device.VirtualVmxnet3)(key=key)
    if nic.get("mac"):
        device.addressType = "manual"
        device.macAddress = nic["mac"]
    device.backing = nic_backing(nic["network"])
    connected = nic.get("connected") is not False
    device.connectable = vim.vm.device.VirtualDevice.ConnectInfo(startConnected=connected, allowGuestControl=True,
                                                                 connected=connected)
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=device)


def config_spec(spec: Mapping[str, Any]) -> Any:
    """The vim.vm.ConfigSpec for CreateVM_Task."""
    source_id = str(spec["source_id"])
    test = bool(spec.get("test"))   # a test copy: its own instanceUuid, and never taken for the migrated VM
    config = vim.vm.ConfigSpec(
        name=spec["name"], numCPUs=int(spec["cpus"]), memoryMB=int(spec["memory_mb"]),
        guestId=spec.get("guest_id") or "otherGuest64", instanceUuid=None if test else source_id,
        files=vim.vm.FileInfo(vmPathName=spec["vm_path"]),
        extraConfig=[vim.option.OptionValue(key=TEST_KEY if test else SOURCE_KEY, value=source_id)])
    if spec.get("cores_per_socket"):
        config.numCoresPerSocket = int(spec["cores_per_socket"])
    if spec.get("firmware"):
        config.firmware = spec["firmware"]
    if spec.get("hardware_version"):
        config.version = spec["hardware_version"]
    changes: list[Any] = []
    next_key = iter(range(-100, -10000, -1))
    controllers: dict[str, int] = {}
    for disk in spec.get("disks", []):
        kind, _, bus = str(disk.get("controller") or "pvscsi:0").partition(":")
        name = f"{kind}:{bus or 0}"
        if name not in controllers:
            controllers[name] = next(next_key)
            changes.append(_controller(kind, int(bus or 0), controllers[name]))
        changes.append(_disk(disk, controllers[name], next(next_key)))
    changes.extend(_nic(nic, next(next_key)) for nic in spec.get("nics", []))
    config.deviceChange = changes
    return config
