"""The inventory format (inventory.json): everything discovery knows about an estate, as plain data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from migrate.core.models.base import StrictModel

__all__ = [
    "INVENTORY_VERSION",
    "MAX_DISK_BYTES",
    "MAX_MEMORY_MB",
    "MAX_VCPUS",
    "MAX_VMS",
    "MAX_VM_GB",
    "Cluster",
    "Count",
    "Datastore",
    "Disk",
    "DrsRule",
    "Guest",
    "Host",
    "Inventory",
    "Network",
    "Nic",
    "Provenance",
    "Utilisation",
    "VApp",
    "Vm",
]

INVENTORY_VERSION: Literal[1] = 1

# Ranges of the numbers an inventory may hold: generous for real estates, small enough that no
# later computation overflows or allocates by a number's value. The planners reuse them.
MAX_VMS = 1_000_000                 # VMs in one estate (and per wave)
MAX_VCPUS = 4096                    # vCPUs of one VM (vSphere 8 allows 768)
MAX_MEMORY_MB = 2**26               # 64 TiB of memory per VM (vSphere 8 allows 24 TiB)
MAX_DISK_BYTES = 2**52              # 4 PiB per virtual disk (VMDKs stop at 62 TB)
MAX_VM_GB = 2**30                   # GiB of storage of one VM, all disks together (1 EiB)
MAX_HOST_BYTES = 2**60              # memory of a host, capacity of a datastore (1 EiB)
MAX_COUNT = 2**31 - 1               # device keys, CPU MHz, thread counts, samples: a 32-bit signed int
MAX_SNAPSHOTS = 10_000
MAX_WINDOW_SECONDS = 10 * 366 * 86400   # a utilisation window of at most ten years
MAX_PERCENT = 10_000.0              # usage percentages (CPU demand can exceed 100 %)

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]



class Disk(StrictModel):
    """One virtual disk."""

    key: int = Field(..., ge=-MAX_COUNT - 1, le=MAX_COUNT)
    label: str = ""
    capacity_bytes: int = Field(..., ge=0, le=MAX_DISK_BYTES)
    datastore: str | None = Field(None, description="datastore name")
    path: str = Field("", description="file path on the datastore, e.g. vm/vm.vmdk")
    thin: bool | None = None
    mode: str | None = Field(None, description="persistent, independent_persistent, ...")
    sharing: str | None = Field(None, description="sharingNone or sharingMultiWriter")
    controller: str | None = Field(None, description="controller type and bus, e.g. pvscsi:0")
    unit: Count | None = None
    rdm: Literal["physical", "virtual"] | None = Field(None, description="raw device mapping compatibility mode")

    @property
    def capacity_gb(self) -> float:
        return self.capacity_bytes / 2**30


class Nic(StrictModel):
    """One virtual network adapter."""

    key: int = Field(..., ge=-MAX_COUNT - 1, le=MAX_COUNT)
    label: str = ""
    mac: str | None = None
    adapter: str | None = Field(None, description="vmxnet3, e1000e, ...")
    network: str | None = Field(None, description="port group or network name")
    network_id: str | None = Field(None, description="moref of the port group / network")
    connected: bool | None = None


class Guest(StrictModel):
    """What the guest reports (VMware Tools) or the configuration says."""

    hostname: str | None = None
    ip_addresses: list[str] = Field(default_factory=list)
    guest_id: str | None = None
    full_name: str | None = None
    tools_status: str | None = None
    tools_version: str | None = Field(None, description="VMware Tools version number (guest.toolsVersion)")


class Utilisation(StrictModel):
    """CPU and memory use of a VM, for right-sizing: averages over a window, or one instant reading.

    `basis` says which: "history" = the mean of the vCenter's performance samples (QueryPerf) over the
    last `window_seconds`, `samples` of them, each itself an average over `interval_seconds` (20 = the
    real-time samples; 300, 1800, 7200, 86400 = the vCenter's historical rollups). "quickstats" = one
    instant reading of summary.quickStats (window 0, one sample): not an average.
    """

    window_seconds: int = Field(..., ge=0, le=MAX_WINDOW_SECONDS,
                                description="the averages cover the last this many seconds (0: an instant reading)")
    samples: Count = Field(..., description="samples averaged (at most window_seconds / interval_seconds)")
    interval_seconds: int | None = Field(
        None, ge=1, le=MAX_WINDOW_SECONDS,
        description="seconds each sample averages: 20 real-time, 300/1800/7200/86400 the historical rollups "
                    "(unset: an instant reading, or an inventory written before this field)")
    basis: Literal["history", "quickstats"] = Field(
        "history", description="history: averages of the performance history (QueryPerf, rollup type average); "
                               "quickstats: one instant reading of summary.quickStats, not an average")
    cpu_usage_mhz: float | None = Field(None, ge=0, le=MAX_COUNT, allow_inf_nan=False)
    cpu_usage_percent: float | None = Field(None, ge=0, le=MAX_PERCENT, allow_inf_nan=False)
    memory_active_mb: float | None = Field(None, ge=0, le=MAX_MEMORY_MB, allow_inf_nan=False)
    memory_usage_percent: float | None = Field(None, ge=0, le=MAX_PERCENT, allow_inf_nan=False)


class Vm(StrictModel):
    """One virtual machine; `id` is the vCenter instanceUuid (stable across renames and moves)."""

    id: str
    name: str
    moref: str | None = None
    bios_uuid: str | None = None
    cpus: int = Field(0, ge=0, le=MAX_VCPUS)
    cores_per_socket: int | None = Field(None, ge=0, le=MAX_VCPUS)
    memory_mb: int = Field(0, ge=0, le=MAX_MEMORY_MB)
    firmware: str | None = None
    hardware_version: str | None = None
    power_state: Literal["poweredOn", "poweredOff", "suspended"] | None = None
    template: bool = False
    annotation: str | None = None
    change_version: str | None = Field(None, description="config.changeVersion, used by incremental discovery")
    disks: list[Disk] = Field(default_factory=list)
    nics: list[Nic] = Field(default_factory=list)
    guest: Guest = Field(default_factory=Guest)
    datacenter: str | None = None
    host: str | None = None
    cluster: str | None = None
    folder: str | None = Field(None, description="inventory path of the VM folder")
    resource_pool: str | None = None
    vapp: str | None = None
    tags: dict[str, list[str]] = Field(default_factory=dict, description="tag category -> tag names")
    custom_attributes: dict[str, str] = Field(default_factory=dict)
    snapshots: int = Field(0, ge=0, le=MAX_SNAPSHOTS)
    devices: list[str] = Field(default_factory=list,
                               description="notable devices: usb, serial, parallel, cdrom, pci-passthrough, tpm")
    utilisation: Utilisation | None = None
    # Optional facts (None: not known). An RVTools import fills them; readiness reads them.
    instance_uuid: str | None = Field(
        None, description="the VM's instanceUuid in its vCenter, when `id` is not it: an id qualified by its vCenter "
                          "(<vCenter instanceUuid>:<instanceUuid>) because two vCenters hold the same instanceUuid")
    source: str | None = Field(None, description="vCenter the VM was read from (host name; RVTools 'VI SDK Server')")
    source_instance_uuid: str | None = Field(
        None, description="about.instanceUuid of that vCenter (RVTools 'VI SDK UUID')")
    change_tracking: bool | None = Field(None, description="changed block tracking on (config.changeTrackingEnabled)")
    running_on_snapshot: bool | None = Field(
        None, description="a disk is a snapshot delta (-00000N.vmdk): the VM runs on a snapshot")
    consolidation_needed: bool | None = Field(None, description="runtime.consolidationNeeded")
    oldest_snapshot: datetime | None = Field(None, description="creation time of the VM's oldest snapshot")
    cpu_hot_add: bool | None = Field(None, description="config.cpuHotAddEnabled")
    cpu_hot_remove: bool | None = Field(None, description="config.cpuHotRemoveEnabled")
    memory_hot_add: bool | None = Field(None, description="config.memoryHotAddEnabled")
    fault_tolerance_state: str | None = Field(None, description="runtime.faultToleranceState: notConfigured, ...")
    secure_boot: bool | None = Field(None, description="EFI secure boot on (config.bootOptions.efiSecureBootEnabled)")
    min_evc_mode: str | None = Field(None, description="minimum EVC mode the VM needs (runtime.minRequiredEVCModeKey)")
    encrypted: bool | None = Field(None, description="the VM is encrypted: it has a key (config.keyId)")

    @property
    def storage_bytes(self) -> int:
        return sum(d.capacity_bytes for d in self.disks)


class Host(StrictModel):
    id: str = Field(..., description="moref")
    name: str
    cluster: str | None = None
    datacenter: str | None = None
    cpu_cores: Count | None = None
    cpu_threads: Count | None = None
    cpu_mhz: Count | None = None
    memory_bytes: int | None = Field(None, ge=0, le=MAX_HOST_BYTES)
    connection_state: str | None = None
    maintenance_mode: bool | None = None
    version: str | None = None
    cpu_model: str | None = None
    evc_mode: str | None = Field(None, description="current EVC mode key of the host")
    max_evc_mode: str | None = Field(None, description="highest EVC mode key the host supports")
    source: str | None = Field(None, description="in an inventory of several vCenters: the one it was read from")


class DrsRule(StrictModel):
    name: str
    kind: Literal["affinity", "anti-affinity", "vm-host"]
    enabled: bool = True
    mandatory: bool = False
    vms: list[str] = Field(default_factory=list, description="VM ids (instanceUuid)")
    vm_group: str | None = None
    host_group: str | None = None


class Cluster(StrictModel):
    id: str
    name: str
    datacenter: str | None = None
    hosts: list[str] = Field(default_factory=list, description="host names")
    drs_enabled: bool | None = None
    ha_enabled: bool | None = None
    rules: list[DrsRule] = Field(default_factory=list)
    vm_groups: dict[str, list[str]] = Field(default_factory=dict, description="group name -> VM ids")
    host_groups: dict[str, list[str]] = Field(default_factory=dict, description="group name -> host names")
    source: str | None = Field(None, description="in an inventory of several vCenters: the one it was read from")


class Datastore(StrictModel):
    id: str
    name: str
    type: str | None = None
    capacity_bytes: int | None = Field(None, ge=0, le=MAX_HOST_BYTES)
    # vcsim (and an overcommitted thin datastore's arithmetic) can report less than nothing free: kept as read
    free_bytes: int | None = Field(None, ge=-MAX_HOST_BYTES, le=MAX_HOST_BYTES)
    url: str | None = None
    source: str | None = Field(None, description="in an inventory of several vCenters: the one it was read from")


class Network(StrictModel):
    id: str
    name: str
    kind: Literal["standard", "distributed", "opaque", "uplink"] = "standard"
    vlan: int | None = Field(None, ge=0, le=4095)
    switch: str | None = None
    source: str | None = Field(None, description="in an inventory of several vCenters: the one it was read from")


class VApp(StrictModel):
    id: str
    name: str
    vms: list[str] = Field(default_factory=list, description="VM ids")


class Provenance(StrictModel):
    source: str = Field(..., description="where the data came from: vcenter URL host or rvtools file")
    kind: Literal["vcenter", "rvtools"]
    collected_at: datetime
    instance_uuid: str | None = None
    api_version: str | None = None
    product: str | None = None
    tool_version: str | None = None
    incremental_from: datetime | None = None
    vm_markers: dict[str, str] | None = Field(
        None, description="VM moref -> digest of the properties incremental discovery watches, taken no later "
                          "than the VM's record: the next `discover --since` parses only VMs whose digest moved")
    container_markers: dict[str, str] | None = Field(
        None, description="host, folder, resource pool or vApp moref -> digest of its name, path, cluster and "
                          "datacenter and of its member list (VMs; a folder's children): the next `discover --since` "
                          "re-places only the VMs of containers whose digest moved")
    tags_marker: str | None = Field(None, description="digest of every VM's tags when container_markers were taken")


class Inventory(StrictModel):
    """The whole inventory.json."""

    version: Literal[1] = INVENTORY_VERSION
    provenance: Provenance
    vms: list[Vm] = Field(default_factory=list, max_length=MAX_VMS)
    hosts: list[Host] = Field(default_factory=list)
    clusters: list[Cluster] = Field(default_factory=list)
    datastores: list[Datastore] = Field(default_factory=list)
    networks: list[Network] = Field(default_factory=list)
    vapps: list[VApp] = Field(default_factory=list)
    folders: list[str] = Field(default_factory=list, description="VM folder paths")
    resource_pools: list[str] = Field(default_factory=list, description="resource pool paths")
    custom_attribute_names: list[str] = Field(default_factory=list)
    sources: list[Provenance] = Field(
        default_factory=list, description="an inventory of several vCenters (site.yaml `sources`): each one's "
                                          "provenance; its VMs, hosts, clusters, datastores and networks name it in "
                                          "`source` (its host), and `discover --since` continues each from its own")

    @model_validator(mode="after")
    def _unique_vm_ids(self) -> Inventory:
        seen: set[str] = set()
        duplicates: set[str] = set()
        for vm in self.vms:
            (duplicates if vm.id in seen else seen).add(vm.id)
        if duplicates:
            raise ValueError(f"duplicate VM ids: {', '.join(sorted(duplicates)[:10])}")
        return self

    def vm_by_id(self) -> dict[str, Vm]:
        return {vm.id: vm for vm in self.vms}
