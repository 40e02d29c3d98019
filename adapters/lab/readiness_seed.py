"""Give the lab's readiness VMs (adapters/lab/estate_readiness.py) their conditions on vcsim.

`configure` changes a VM's creation spec (devices, flags, extraConfig); `after_create` does what needs the VM
(snapshots); `pin` adds the VM-host DRS rule. Clean readiness VMs get tracking on and VMware Tools reported
running (vcsim reports every VM without Tools), so no rule finds anything on them.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from adapters.lab.estate import VmSpec
from adapters.vcenter.collector import wait_for_task
from adapters.vcenter.connection import VCenterSession

__all__ = ["after_create", "configure", "pin"]

_SCSI2_KEY, _IDE_KEY = 1001, 200     # a second pvscsi bus; vcsim's default IDE controller 0


def _option(key: str, value: str) -> vim.option.OptionValue:
    return vim.option.OptionValue(key=key, value=value)


def _disks(spec: vim.vm.ConfigSpec) -> list[Any]:
    return [c.device for c in spec.deviceChange if isinstance(c.device, vim.vm.device.VirtualDisk)]


def _add(spec: vim.vm.ConfigSpec, device: Any) -> None:
    spec.deviceChange.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=device))


def _spread_disks(spec: vim.vm.ConfigSpec) -> None:
    """Units 0-6 and 8-15 of bus 0, then bus 1 (unit 7 is the controller's own)."""
    _add(spec, vim.vm.device.ParaVirtualSCSIController(key=_SCSI2_KEY, busNumber=1, sharedBus="noSharing"))
    for index, disk in enumerate(_disks(spec)):
        units = [u for u in range(16) if u != 7]
        disk.controllerKey, disk.unitNumber = (1000, units[index]) if index < 15 else (_SCSI2_KEY, units[index - 15])


def configure(vm: VmSpec, spec: vim.vm.ConfigSpec) -> None:
    """The readiness VM's condition in its creation spec."""
    rules, name = vm.rules or (), vm.name
    disk = _disks(spec)[0]
    spec.changeTrackingEnabled = "change_tracking" not in rules
    if "tools" not in rules:
        spec.extraConfig += [_option("SET.guest.toolsRunningStatus", "guestToolsRunning"),
                             _option("SET.guest.toolsStatus", "toolsOk")]
    if "guest_identity" in rules:
        spec.extraConfig = [o for o in spec.extraConfig if o.key not in ("SET.guest.ipAddress", "SET.guest.hostName")]
    if "consolidation" in rules:
        disk.backing.fileName = disk.backing.fileName.replace(".vmdk", "-000001.vmdk")
    if "independent_disk" in rules:
        disk.backing.diskMode = "independent_persistent"
    if "shared_disk" in rules:
        disk.backing.sharing = "sharingMultiWriter"
    if "controller" in rules:
        disk.controllerKey, disk.unitNumber = _IDE_KEY, 0
    if "disks" in rules:
        _spread_disks(spec)
    if "devices" in rules:
        backing = vim.vm.device.VirtualSerialPort.DeviceBackingInfo(deviceName="/dev/ttyS0")
        _add(spec, vim.vm.device.VirtualSerialPort(key=-300, yieldOnPoll=True, backing=backing))
    if "sriov" in rules:
        nic = next(c.device for c in spec.deviceChange if isinstance(c.device, vim.vm.device.VirtualEthernetCard))
        _add(spec, vim.vm.device.VirtualSriovEthernetCard(key=-101, addressType="generated", backing=nic.backing))
    if "hot_add" in rules:
        spec.cpuHotAddEnabled = spec.memoryHotAddEnabled = True
    if "hardware_version" in rules:
        spec.version = "vmx-21"
    if "fault_tolerance" in rules:
        spec.extraConfig.append(_option("SET.runtime.faultToleranceState", "running"))
    if "evc_mode" in rules:
        spec.extraConfig.append(_option("SET.runtime.minRequiredEVCModeKey", "intel-icelake"))
    if name == "rdy-freebsd":
        spec.firmware = "bios"


def after_create(vc: VCenterSession, vm: VmSpec, ref: Any) -> None:
    """Snapshots for the VMs whose condition is one."""
    if "snapshots" in (vm.rules or ()):
        wait_for_task(vc.si, ref.CreateSnapshot_Task(name="before-patch", description="user snapshot", memory=False,
                                                     quiesce=False), f"snapshot {vm.name}", endpoint=vc.endpoint.host)


def pin(vc: VCenterSession, cluster: Any, host: Any, refs: list[Any]) -> None:
    """A mandatory VM-host rule keeping `refs` on `host` (a VM group and a host group)."""
    groups = [vim.cluster.GroupSpec(operation="add", info=vim.cluster.VmGroup(name="rdy-pinned-vms", vm=refs)),
              vim.cluster.GroupSpec(operation="add", info=vim.cluster.HostGroup(name="rdy-license-hosts", host=[host]))]
    rule = vim.cluster.VmHostRuleInfo(name="rdy-pin-to-licensed-host", enabled=True, mandatory=True,
                                      vmGroupName="rdy-pinned-vms", affineHostGroupName="rdy-license-hosts")
    spec = vim.cluster.ConfigSpecEx(groupSpec=groups, rulesSpec=[vim.cluster.RuleSpec(operation="add", info=rule)])
    wait_for_task(vc.si, cluster.ReconfigureComputeResource_Task(spec=spec, modify=True), "add VM-host rule",
                  endpoint=vc.endpoint.host)
