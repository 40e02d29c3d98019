"""What the capacity step plans with: its settings, the waves' VM sizes, the new hosts' type, and the plan of
the hosts each wave needs against the target cluster as it is (read through the HostCluster port)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from migrate.core.capacity_ports import TAG_PLAN, TAG_WAVE, ClusterInfo, HostCluster, HostProvisioner
from migrate.core.config import CapacityConfig
from migrate.core.errors import InputError, Problem
from migrate.engine.plan import VmFacts
from planners.capacity import CapacityPlan, CapacityPolicy, ClusterHost, Demand, plan_waves_capacity
from planners.instance_types import InstanceType
from planners.sizing import SizingPolicy, VmSize, host_capacity, host_problems, policy_problems

__all__ = [
    "CapacityReport",
    "CapacitySettings",
    "cluster_hosts",
    "idempotency_key",
    "placed_demand",
    "plan_capacity",
    "plan_tag_for",
    "resolve_host_type",
    "vm_sizes_from_facts",
    "wave_tags",
]

SECTION = "capacity"   # the `file` of the Problems below; callers name it as their input has it


@dataclass(frozen=True)
class CapacitySettings:
    """The capacity policy and timeouts (site.yaml `capacity`, or `migrate capacity` options)."""

    host_type: str = "i4i.metal"
    min_hosts: int | None = None          # None: the vSAN policy's minimum (3 for raid1-ftt1)
    spare_hosts: int = 1                  # N+1
    vcpu_per_core: float = 4.0
    memory_max_util: float = 0.7
    storage_usable_fraction: float = 0.7
    dedup_ratio: float = 1.0
    vsan_policy: str = "raid1-ftt1"
    connect_timeout_s: float = 600.0      # a new host must be connected within this
    ready_timeout_s: float = 1800.0       # the provider must report a host ready within this

    @classmethod
    def from_config(cls, config: CapacityConfig | None) -> CapacitySettings:
        """The settings of site.yaml's `capacity` section (defaults when it has none)."""
        if config is None:
            return cls()
        return cls(host_type=config.host_type, min_hosts=config.min_hosts, spare_hosts=config.spare_hosts,
                   vcpu_per_core=config.vcpu_per_core, memory_max_util=config.memory_max_util)

    def problems(self) -> list[Problem]:
        """Every bad value, as Problem("capacity", <field>, message)."""
        out = [Problem(SECTION, name, message) for name, message in policy_problems(
            vcpu_per_core=self.vcpu_per_core, memory_max_util=self.memory_max_util,
            storage_usable_fraction=self.storage_usable_fraction, dedup_ratio=self.dedup_ratio,
            vsan_policy=self.vsan_policy, spare_hosts=self.spare_hosts)]
        if self.min_hosts is not None and self.min_hosts < 1:
            out.append(Problem(SECTION, "min_hosts", f"must be >= 1, got {self.min_hosts}"))
        return out + [Problem(SECTION, name, "must be > 0") for name in ("connect_timeout_s", "ready_timeout_s")
                      if not getattr(self, name) > 0]

    def policy(self) -> CapacityPolicy:
        sizing = SizingPolicy(vcpu_per_core=self.vcpu_per_core, memory_max_util=self.memory_max_util,
                              storage_usable_fraction=self.storage_usable_fraction, dedup_ratio=self.dedup_ratio,
                              vsan_policy=self.vsan_policy, spare_hosts=self.spare_hosts)
        return CapacityPolicy(sizing=sizing, min_hosts=self.min_hosts)


# -- inputs ------------------------------------------------------------------------------------------

def vm_sizes_from_facts(vms: Iterable[VmFacts]) -> list[VmSize]:
    """VmSize from the engine's VM facts: `cpus` (or `vcpus`), `memory_mb`, and `storage_gb` or `disks`
    (each with `capacity_bytes`, as in inventory.json); `template: true` counts storage only."""
    out = []
    for vm in vms:
        f = vm.facts
        cpus = int(f.get("cpus", f.get("vcpus", 0)) or 0)
        memory = int(f.get("memory_mb", 0) or 0)
        if "storage_gb" in f:
            storage = float(f["storage_gb"] or 0.0)
        else:
            storage = sum(int(d.get("capacity_bytes", 0) or 0) for d in f.get("disks", []) or []) / 2**30
        if f.get("template"):
            cpus, memory = 0, 0
        out.append(VmSize(id=vm.id, name=vm.name, vcpus=cpus, memory_mb=memory, storage_gb=storage))
    return out


def plan_tag_for(waves: Sequence[tuple[str, Sequence[VmSize]]]) -> str:
    """A stable tag for a plan without a run: `plan-` + digest of its waves' ids and VM ids."""
    text = json.dumps([[wave_id, sorted(v.id for v in vms)] for wave_id, vms in waves], separators=(",", ":"))
    return "plan-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def idempotency_key(plan_tag: str, wave_id: str) -> str:
    """The allocation key of one wave (stable across resumes)."""
    return f"{plan_tag}:wave-{wave_id}:capacity"


def wave_tags(plan_tag: str, wave_id: str | None = None) -> dict[str, str]:
    """The tags of the hosts of a plan (and wave)."""
    return {TAG_PLAN: plan_tag} | ({TAG_WAVE: wave_id} if wave_id is not None else {})


def resolve_host_type(provisioner: HostProvisioner, host_type: str) -> InstanceType:
    """The host type's specs from the provisioner; InputError (capacity.host_type) when unknown or unfit.

    Checked before anything is allocated: moto's AllocateHosts would accept any type name.
    """
    allowed = provisioner.supported_host_types()
    if allowed is not None and host_type not in allowed:
        raise InputError.single(SECTION, "host_type", f"{host_type!r} is not a {provisioner.kind} host type; one of "
                                                      f"{', '.join(allowed)}")
    try:
        host = InstanceType.model_validate(provisioner.host_type_specs(host_type))
    except InputError as exc:
        raise InputError([Problem(SECTION, "host_type", p.message) for p in exc.problems]) from None
    unusable = host_problems(host)
    if unusable:
        raise InputError([Problem(SECTION, "host_type", message) for message in unusable])
    return host


# -- the cluster as it is ----------------------------------------------------------------------------

def cluster_hosts(info: ClusterInfo) -> list[ClusterHost]:
    """The cluster's hosts as the capacity planner reads them."""
    return [ClusterHost(name=h.name, cores=h.cores, memory_mib=h.memory_mib, usable=h.usable) for h in info.hosts]


def placed_demand(info: ClusterInfo, exclude_names: set[str]) -> Demand:
    """What the cluster's VMs ask (templates: storage only); VMs named like a wave VM count in the wave."""
    sizes = [VmSize(id=vm.moref, name=vm.name, vcpus=0 if vm.template else vm.vcpus,
                    memory_mb=0 if vm.template else vm.memory_mb, storage_gb=vm.storage_gb)
             for vm in info.vms if vm.name not in exclude_names]
    return Demand.of(sizes)


@dataclass(frozen=True)
class CapacityReport:
    """Per wave: demand, current capacity and hosts to add; plus the cluster as read."""

    cluster: str
    host_type: str
    hosts: list[dict[str, Any]]
    placed: Demand
    plans: list[CapacityPlan]

    @property
    def hosts_to_add(self) -> int:
        return sum(p.hosts_to_add for p in self.plans)

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "host_type": self.host_type, "hosts": self.hosts,
                "placed": self.placed.__dict__, "hosts_to_add": self.hosts_to_add,
                "waves": [p.to_dict() for p in self.plans]}


def plan_capacity(cluster: HostCluster, waves: Sequence[tuple[str, Sequence[VmSize]]], settings: CapacitySettings,
                  host: InstanceType) -> CapacityReport:
    """Read the target cluster and plan the hosts each wave needs (cumulative; nothing is changed)."""
    policy = settings.policy()
    info = cluster.read()
    names = {v.name for _, vms in waves for v in vms if v.name}
    placed = placed_demand(info, names)
    plans = plan_waves_capacity([(wave_id, Demand.of(vms)) for wave_id, vms in waves], placed, cluster_hosts(info),
                                host_capacity(host, policy.sizing), policy)
    hosts = [{"name": h.name, "state": h.connection_state, "maintenance": h.in_maintenance, "cores": h.cores,
              "memory_mib": h.memory_mib, "usable": h.usable} for h in info.hosts]
    return CapacityReport(cluster=info.name, host_type=host.name, hosts=hosts, placed=placed, plans=plans)
