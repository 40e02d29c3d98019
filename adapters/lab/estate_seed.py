"""Create the seeded estate on the on-prem simulator through SOAP, vAPI REST and datastore HTTP."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyVmomi import vim

from adapters.lab.estate import Estate, VmSpec, disk_bytes
from adapters.lab.readiness_seed import after_create, configure, pin
from adapters.lab.topology import BuiltTopology, resource_spec
from adapters.vcenter.collector import read_properties, wait_for_task
from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.datastore_http import DatastoreFiles, split_datastore_path
from adapters.vcenter.rest import RestClient, TaggingClient

__all__ = ["SeededVm", "seed_estate"]

_SCSI_KEY = 1000


class SeededVm:
    """What the seeder made for one VM: its moref, uuid and the sha256 of each disk's bytes."""

    def __init__(self, spec: VmSpec, ref: Any, instance_uuid: str, disk_files: list[tuple[str, str]]) -> None:
        self.spec = spec
        self.ref = ref
        self.instance_uuid = instance_uuid
        self.disk_files = disk_files           # (datastore, path) per disk
        self.disk_sha256: list[str] = []


def _vm_config(vm: VmSpec, built: BuiltTopology) -> vim.vm.ConfigSpec:
    changes: list[vim.vm.device.VirtualDeviceSpec] = [
        vim.vm.device.VirtualDeviceSpec(
            operation="add",
            device=vim.vm.device.ParaVirtualSCSIController(key=_SCSI_KEY, busNumber=0, sharedBus="noSharing")),
    ]
    for unit, disk in enumerate(vm.disks):
        suffix = "" if unit == 0 else f"_{unit}"
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[{disk.datastore}] {vm.name}/{vm.name}{suffix}.vmdk", diskMode="persistent",
            thinProvisioned=True)
        changes.append(vim.vm.device.VirtualDeviceSpec(
            operation="add", fileOperation="create",
            device=vim.vm.device.VirtualDisk(key=-(unit + 1), controllerKey=_SCSI_KEY, unitNumber=unit,
                                             capacityInKB=disk.size_gb * 1024 * 1024, backing=backing)))
    port = vim.dvs.PortConnection(switchUuid=built.switch_uuid, portgroupKey=built.portgroup_keys[vm.portgroup])
    changes.append(vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            key=-100, addressType="generated",
            backing=vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True))))
    spec = vim.vm.ConfigSpec(
        name=vm.name, guestId=vm.guest_id, numCPUs=vm.cpus, memoryMB=vm.memory_mb, firmware=vm.firmware,
        annotation=f"{vm.app} {vm.tier} ({vm.env})",
        files=vim.vm.FileInfo(vmPathName=f"[{vm.disks[0].datastore}]"),
        deviceChange=changes,
        extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress", value=vm.ip),
                     vim.option.OptionValue(key="SET.guest.hostName", value=vm.hostname)],
    )
    if vm.rules is not None:
        configure(vm, spec)
    return spec


def _create_vms(vc: VCenterSession, estate: Estate, built: BuiltTopology,
                advance: Callable[[int], None]) -> list[SeededVm]:
    si, where = vc.si, vc.endpoint.host
    vapps = {
        name: built.pools[cluster].CreateVApp(
            name=name, resSpec=resource_spec(), configSpec=vim.vApp.VAppConfigSpec(), vmFolder=built.vm_folder)
        for name, cluster in estate.vapps.items()
    }
    seeded = []
    file_manager = si.content.fileManager
    for vm in estate.vms:
        for datastore in {d.datastore for d in vm.disks[1:]} - {vm.disks[0].datastore}:
            # the VM's folder exists only on its home datastore; other disks need one made
            file_manager.MakeDirectory(name=f"[{datastore}] {vm.name}", datacenter=built.datacenter,
                                       createParentDirectories=True)
        config = _vm_config(vm, built)
        host = built.hosts[vm.host]
        if vm.vapp:
            task = vapps[vm.vapp].CreateChildVM_Task(config=config, host=host)
        else:
            task = built.vm_folder.CreateVM_Task(config=config, pool=built.pools[vm.cluster], host=host)
        ref = wait_for_task(si, task, f"create VM {vm.name}", endpoint=where)
        after_create(vc, vm, ref)
        props = read_properties(si, ref, ["config.instanceUuid", "config.hardware.device"])
        disks: list[Any] = [d for d in props["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualDisk)]
        files = [split_datastore_path(d.backing.fileName) for d in disks]
        if vm.powered_on:
            wait_for_task(si, ref.PowerOnVM_Task(), f"power on {vm.name}", endpoint=where)
        seeded.append(SeededVm(vm, ref, props["config.instanceUuid"], files))
        advance(1)
    return seeded



def _custom_attributes(vc: VCenterSession, estate: Estate, seeded: list[SeededVm]) -> None:
    manager = vc.si.content.customFieldsManager
    field = manager.AddCustomFieldDef(name=estate.custom_attribute, moType=vim.VirtualMachine)
    for item in seeded:
        manager.SetField(entity=item.ref, key=field.key, value=item.spec.owner)


def _tags(vc: VCenterSession, seeded: list[SeededVm]) -> None:
    rest = RestClient(vc)
    try:
        tagging = TaggingClient(rest)
        for category in ("app", "tier", "env"):
            category_id = tagging.create_category(category)
            groups: dict[str, list[tuple[str, str]]] = {}
            for item in seeded:
                value = getattr(item.spec, category)
                groups.setdefault(value, []).append(("VirtualMachine", item.ref._moId))
            for value, objects in sorted(groups.items()):
                tagging.attach(tagging.create_tag(category_id, value), objects)
    finally:
        rest.close()


def _drs_rules(vc: VCenterSession, estate: Estate, built: BuiltTopology, seeded: list[SeededVm]) -> None:
    refs = {item.spec.name: item.ref for item in seeded}
    for rule in estate.rules:
        members = [refs[name] for name in rule.vms if name in refs]
        info_type = vim.cluster.AffinityRuleSpec if rule.keep_together else vim.cluster.AntiAffinityRuleSpec
        info = info_type(name=rule.name, enabled=True, mandatory=False, vm=members)
        spec = vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(operation="add", info=info)])
        wait_for_task(vc.si, built.clusters[rule.cluster].ReconfigureComputeResource_Task(spec=spec, modify=True),
                      f"add DRS rule {rule.name}", endpoint=vc.endpoint.host)
    pinned = [item for item in seeded if "host_affinity" in (item.spec.rules or ())]
    if pinned:
        pin(vc, built.clusters[pinned[0].spec.cluster], built.hosts[pinned[0].spec.host], [i.ref for i in pinned])


def _upload_disks(vc: VCenterSession, estate: Estate, datacenter: str, seeded: list[SeededVm],
                  advance: Callable[[int], None]) -> None:
    files = DatastoreFiles(vc)

    def upload(item: SeededVm) -> None:
        for unit, ((datastore, path), disk) in enumerate(zip(item.disk_files, item.spec.disks, strict=True)):
            blocks = disk_bytes(estate.seed, item.spec.name, unit, disk.seeded_bytes)
            item.disk_sha256.append(files.upload(datacenter, datastore, path, iter(blocks)))
        advance(1)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(upload, seeded))
    finally:
        files.close()


def seed_estate(vc: VCenterSession, estate: Estate, built: BuiltTopology, datacenter: str,
                advance: Callable[[int], None] = lambda _: None) -> list[SeededVm]:
    """Create every VM of `estate` with its tags, attribute, rules and disk bytes; `advance` reports progress."""
    seeded = _create_vms(vc, estate, built, advance)
    _custom_attributes(vc, estate, seeded)
    _tags(vc, seeded)
    _drs_rules(vc, estate, built, seeded)
    _upload_disks(vc, estate, datacenter, seeded, advance)
    return seeded
