"""How many bare-metal hosts a cloud SDDC cluster needs for a set of VMs, per wave and cumulative.

For one set of VMs on hosts of one instance type (specs from the EC2 API, see planners.instance_types):

    cpu_hosts      = ceil(sum vCPU / (physical cores per host * vcpu_per_core))
    memory_hosts   = ceil(sum memory MiB / (host memory MiB * memory_max_util))
    storage_hosts  = ceil(sum provisioned GiB * policy factor / dedup_ratio
                          / (host raw instance storage GiB * storage_usable_fraction))
    hosts          = max(cpu_hosts, memory_hosts, storage_hosts, policy minimum hosts) + spare_hosts

Physical cores are VCpuInfo.DefaultCores; host raw storage is InstanceStorageInfo.TotalSizeInGB, which
AWS states in decimal GB (10^9 bytes) and which is converted to GiB (2^30) like VM disk sizes.
`storage_usable_fraction` is vSAN slack: keep the datastore under 70-80 % used so that rebuilds,
rebalancing and policy changes have room (default 0.7). `dedup_ratio` divides the storage need
(1.0 = no deduplication/compression savings assumed). The vSAN policy factors and minimum host
counts are in VSAN_POLICIES. `spare_hosts` (default 1) is N+1: capacity to survive a host failure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from migrate.core.models.inventory import Vm
from planners.instance_types import InstanceType

__all__ = [
    "DIMENSIONS",
    "VSAN_POLICIES",
    "Dimension",
    "HostCapacity",
    "HostSizing",
    "SizingPolicy",
    "VmSize",
    "VsanPolicy",
    "WaveSizing",
    "host_capacity",
    "host_problems",
    "policy_problems",
    "size_hosts",
    "size_waves",
]

GIB_PER_GB = 10**9 / 2**30
DIMENSIONS = ("cpu", "memory", "storage", "policy_minimum")


@dataclass(frozen=True)
class VsanPolicy:
    """A vSAN storage policy: raw capacity used per GiB written, and the fewest hosts it can run on."""

    name: str
    description: str
    factor: float
    min_hosts: int


VSAN_POLICIES: dict[str, VsanPolicy] = {p.name: p for p in (
    VsanPolicy("raid1-ftt1", "RAID-1 mirroring, FTT=1: 2 copies + witness", 2.0, 3),
    VsanPolicy("raid1-ftt2", "RAID-1 mirroring, FTT=2: 3 copies + 2 witnesses", 3.0, 5),
    VsanPolicy("raid5-ftt1", "RAID-5 erasure coding, FTT=1: 3 data + 1 parity", 4 / 3, 4),
    VsanPolicy("raid6-ftt2", "RAID-6 erasure coding, FTT=2: 4 data + 2 parity", 1.5, 6),
)}


@dataclass(frozen=True)
class SizingPolicy:
    """The knobs of the sizing formulas; invalid values raise ValueError naming the field."""

    vcpu_per_core: float = 4.0
    memory_max_util: float = 0.7
    storage_usable_fraction: float = 0.7
    dedup_ratio: float = 1.0
    vsan_policy: str = "raid1-ftt1"
    spare_hosts: int = 1

    def __post_init__(self) -> None:
        problems = policy_problems(**asdict(self))
        if problems:
            raise ValueError("; ".join(f"{name}: {message}" for name, message in problems))

    @property
    def vsan(self) -> VsanPolicy:
        return VSAN_POLICIES[self.vsan_policy]


def policy_problems(*, vcpu_per_core: float, memory_max_util: float, storage_usable_fraction: float,
                    dedup_ratio: float, vsan_policy: str, spare_hosts: int) -> list[tuple[str, str]]:
    """(SizingPolicy field, message) for every bad value; empty when all are valid."""
    out = []
    if not vcpu_per_core > 0:
        out.append(("vcpu_per_core", f"must be > 0, got {vcpu_per_core:g}"))
    for name, value in (("memory_max_util", memory_max_util), ("storage_usable_fraction", storage_usable_fraction)):
        if not 0 < value <= 1:
            out.append((name, f"must be in (0, 1], got {value:g}"))
    if not dedup_ratio >= 1:
        out.append(("dedup_ratio", f"must be >= 1.0 (1.0 = no savings), got {dedup_ratio:g}"))
    if vsan_policy not in VSAN_POLICIES:
        out.append(("vsan_policy", f"unknown policy {vsan_policy!r}; one of {', '.join(VSAN_POLICIES)}"))
    if spare_hosts < 0:
        out.append(("spare_hosts", f"must be >= 0, got {spare_hosts}"))
    return out


@dataclass(frozen=True)
class VmSize:
    """What one VM asks of the cluster: vCPUs, memory (MiB) and provisioned storage (GiB)."""

    id: str
    vcpus: int
    memory_mb: int
    storage_gb: float
    name: str = ""

    @classmethod
    def from_vm(cls, vm: Vm) -> VmSize:
        """From an inventory VM: configured vCPUs and memory, provisioned (not used) disk GiB."""
        return cls(id=vm.id, name=vm.name, vcpus=vm.cpus, memory_mb=vm.memory_mb, storage_gb=vm.storage_bytes / 2**30)

    @classmethod
    def from_node(cls, node_id: str, attrs: Mapping[str, Any]) -> VmSize:
        """From a dependency-graph node (attributes vcpu, memory_mb, gb)."""
        return cls(id=node_id, name=str(attrs.get("name") or ""), vcpus=int(attrs.get("vcpu") or 0),
                   memory_mb=int(attrs.get("memory_mb") or 0), storage_gb=float(attrs.get("gb") or 0.0))


@dataclass(frozen=True)
class HostCapacity:
    """Per-host capacities of one instance type under a policy (the denominators of the formulas)."""

    host_type: str
    cores: int
    vcpus: float
    memory_mib: int
    memory_usable_mib: float
    storage_raw_gib: float
    storage_usable_gib: float


@dataclass(frozen=True)
class Dimension:
    """One resource: total demand, usable capacity per host, and the hosts it needs (rounded up)."""

    name: str
    unit: str
    demand: float
    per_host: float
    hosts: int


@dataclass(frozen=True)
class HostSizing:
    """The hosts a set of VMs needs, with every formula input so a plan can explain the number."""

    host_type: str
    vms: int
    total_vcpus: int
    total_memory_mib: int
    total_storage_gib: float
    cpu: Dimension
    memory: Dimension
    storage: Dimension
    policy_minimum: int
    binding: str
    base_hosts: int
    spare_hosts: int
    hosts: int
    utilisation: dict[str, float]
    utilisation_after_failure: dict[str, float]
    capacity: HostCapacity
    policy: SizingPolicy

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["policy"]["vsan_factor"] = round(self.policy.vsan.factor, 4)
        data["explanation"] = self.explain()
        rounded: dict[str, Any] = _rounded(data)
        return rounded

    def explain(self) -> list[str]:
        """The formulas with their numbers, one line per dimension, then the total."""
        p, c = self.policy, self.capacity
        return [
            f"cpu: {self.total_vcpus} vCPU / ({c.cores} cores x {p.vcpu_per_core:g} vCPU/core = {c.vcpus:g} per host)"
            f" = {_ratio(self.cpu)} -> {self.cpu.hosts}",
            f"memory: {self.total_memory_mib} MiB / ({c.memory_mib} MiB x {p.memory_max_util:g} = "
            f"{c.memory_usable_mib:.0f} per host) = {_ratio(self.memory)} -> {self.memory.hosts}",
            f"storage: {self.total_storage_gib:.1f} GiB x {p.vsan.factor:.2f} ({p.vsan_policy}) / {p.dedup_ratio:g} "
            f"dedup = {self.storage.demand:.1f} GiB / ({c.storage_raw_gib:.1f} GiB raw x "
            f"{p.storage_usable_fraction:g} = {c.storage_usable_gib:.1f} per host) = {_ratio(self.storage)} "
            f"-> {self.storage.hosts}",
            f"policy: {p.vsan_policy} ({p.vsan.description}) needs at least {self.policy_minimum} hosts",
            f"hosts = max({self.cpu.hosts}, {self.memory.hosts}, {self.storage.hosts}, {self.policy_minimum}) + "
            f"{self.spare_hosts} spare = {self.hosts} {self.host_type} (binding: {self.binding})",
        ]


@dataclass(frozen=True)
class WaveSizing:
    """The cluster after one wave lands: hosts needed for every VM moved so far, and hosts to add first."""

    index: int
    wave_id: str
    vms: int
    vms_cumulative: int
    hosts_before: int
    hosts_to_add: int
    hosts_after: int
    sizing: HostSizing = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "wave_id": self.wave_id, "vms": self.vms, "vms_cumulative": self.vms_cumulative,
                "hosts_before": self.hosts_before, "hosts_to_add": self.hosts_to_add,
                "hosts_after": self.hosts_after, "sizing": self.sizing.to_dict()}


def host_problems(host: InstanceType) -> list[str]:
    """Why `host` cannot be a vSAN cluster host (empty list when it can)."""
    out = []
    if not host.bare_metal:
        out.append(f"{host.name} is not a bare-metal type")
    if "x86_64" not in host.architectures:
        out.append(f"{host.name} is not x86_64 ({', '.join(host.architectures) or 'no architecture given'})")
    if not host.default_cores:
        out.append(f"the data gives no physical core count (DefaultCores) for {host.name}")
    if not host.memory_mib:
        out.append(f"the data gives no memory size for {host.name}")
    if not host.instance_storage_gb:
        out.append(f"{host.name} has no local instance storage for vSAN")
    return out


def host_capacity(host: InstanceType, policy: SizingPolicy) -> HostCapacity:
    """Per-host denominators of the formulas; ValueError when the type cannot host vSAN."""
    problems = host_problems(host)
    if problems:
        raise ValueError("; ".join(problems))
    assert host.default_cores is not None and host.instance_storage_gb is not None
    raw_gib = host.instance_storage_gb * GIB_PER_GB
    return HostCapacity(host_type=host.name, cores=host.default_cores, vcpus=host.default_cores * policy.vcpu_per_core,
                        memory_mib=host.memory_mib, memory_usable_mib=host.memory_mib * policy.memory_max_util,
                        storage_raw_gib=raw_gib, storage_usable_gib=raw_gib * policy.storage_usable_fraction)


def size_hosts(vms: Iterable[VmSize], host: InstanceType, policy: SizingPolicy | None = None) -> HostSizing:
    """Hosts of type `host` that `vms` need together, by the formulas in this module's docstring."""
    policy = policy or SizingPolicy()
    cap = host_capacity(host, policy)
    items = list(vms)
    vcpus = sum(vm.vcpus for vm in items)
    memory = sum(vm.memory_mb for vm in items)
    storage = sum(vm.storage_gb for vm in items)
    cpu = _dimension("cpu", "vCPU", vcpus, cap.vcpus)
    mem = _dimension("memory", "MiB", memory, cap.memory_usable_mib)
    disk = _dimension("storage", "GiB", storage * policy.vsan.factor / policy.dedup_ratio, cap.storage_usable_gib)
    minimum = policy.vsan.min_hosts
    needs = {"cpu": cpu.hosts, "memory": mem.hosts, "storage": disk.hosts, "policy_minimum": minimum}
    base = max(needs.values())
    binding = next(name for name in DIMENSIONS if needs[name] == base)
    hosts = base + policy.spare_hosts

    def usage(count: int) -> dict[str, float]:
        if count <= 0:
            return {}
        return {"cpu": vcpus / (count * cap.vcpus), "memory": memory / (count * cap.memory_mib),
                "storage": disk.demand / (count * cap.storage_raw_gib)}

    return HostSizing(host_type=host.name, vms=len(items), total_vcpus=vcpus, total_memory_mib=memory,
                      total_storage_gib=storage, cpu=cpu, memory=mem, storage=disk, policy_minimum=minimum,
                      binding=binding, base_hosts=base, spare_hosts=policy.spare_hosts, hosts=hosts,
                      utilisation=usage(hosts), utilisation_after_failure=usage(hosts - policy.spare_hosts),
                      capacity=cap, policy=policy)


def size_waves(waves: Sequence[Sequence[VmSize]], host: InstanceType, policy: SizingPolicy | None = None,
               existing_hosts: int = 0, wave_ids: Sequence[str] | None = None) -> list[WaveSizing]:
    """Per wave, the hosts the cluster needs once that wave has landed (VMs accumulate) and how many to add.

    The cluster starts at `existing_hosts` and never shrinks: hosts_to_add = max(0, needed - hosts_before).
    """
    if existing_hosts < 0:
        raise ValueError(f"existing_hosts must be >= 0, got {existing_hosts}")
    if wave_ids is not None and len(wave_ids) != len(waves):
        raise ValueError("wave_ids must name every wave")
    policy = policy or SizingPolicy()
    landed: list[VmSize] = []
    current = existing_hosts
    out = []
    for index, wave in enumerate(waves, start=1):
        landed.extend(wave)
        sizing = size_hosts(landed, host, policy)
        after = max(current, sizing.hosts)
        out.append(WaveSizing(index=index, wave_id=wave_ids[index - 1] if wave_ids else str(index), vms=len(wave),
                              vms_cumulative=len(landed), hosts_before=current, hosts_to_add=after - current,
                              hosts_after=after, sizing=sizing))
        current = after
    return out


def _dimension(name: str, unit: str, demand: float, per_host: float) -> Dimension:
    # round first so that float noise (3.0000000001) does not cost a whole host
    hosts = math.ceil(round(demand / per_host, 9))
    return Dimension(name=name, unit=unit, demand=demand, per_host=per_host, hosts=hosts)


def _ratio(dim: Dimension) -> str:
    return f"{dim.demand / dim.per_host:.2f}"


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
