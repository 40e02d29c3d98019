"""How many bare-metal hosts to add to an existing cloud cluster so that it can hold a wave.

Pure computation (no SDK). Inputs: the wave's demand, what the cluster already holds (`placed`), the
cluster's current hosts as vCenter reports them, the new hosts' type and the policy. The formulas are
those of planners.sizing, applied to a cluster that may already exist and may be heterogeneous:

    survivors(cluster) = the cluster without its `spare_hosts` largest hosts (N+1: a host may fail),
                         taken per dimension (the largest by cores for CPU, by memory for memory...)
    fits(cluster)      = len(cluster) - spare_hosts >= minimum hosts (vSAN policy, or the override)
                         and placed + wave vCPU     <= sum over survivors of cores x vcpu_per_core
                         and placed + wave MiB      <= sum over survivors of memory MiB x memory_max_util
                         and (placed + wave GiB) x policy factor / dedup
                                                    <= sum over survivors of raw GiB x storage_usable_fraction
    hosts_to_add       = the least k >= 0 such that fits(usable hosts + k new hosts)

Usable hosts are connected and not in maintenance mode; the others give no capacity. vCenter does
not report a host's raw vSAN disk capacity, so an existing host whose `storage_raw_gib` is unknown is
taken to have the new type's (an SDDC cluster is one instance type). For an empty cluster of one type
this is exactly `planners.sizing.size_hosts(...).hosts` (tested). An empty wave adds nothing: a wave
that moves no VM does not make the cluster need more than it needed before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from planners.sizing import HostCapacity, SizingPolicy, VmSize

__all__ = [
    "CapacityPlan",
    "CapacityPolicy",
    "ClusterHost",
    "Demand",
    "plan_capacity",
    "plan_waves_capacity",
]

_DIMENSIONS = ("cpu", "memory", "storage", "policy_minimum")   # binding order, as in sizing.py


@dataclass(frozen=True)
class Demand:
    """What a set of VMs asks of the cluster: count, vCPUs, memory (MiB), provisioned storage (GiB)."""

    vms: int = 0
    vcpus: int = 0
    memory_mib: int = 0
    storage_gib: float = 0.0

    @classmethod
    def of(cls, sizes: Iterable[VmSize]) -> Demand:
        """The sum of VM sizes (as planners.sizing.VmSize computes them)."""
        items = list(sizes)
        return cls(vms=len(items), vcpus=sum(v.vcpus for v in items), memory_mib=sum(v.memory_mb for v in items),
                   storage_gib=sum(v.storage_gb for v in items))

    def __add__(self, other: Demand) -> Demand:
        return Demand(self.vms + other.vms, self.vcpus + other.vcpus, self.memory_mib + other.memory_mib,
                      self.storage_gib + other.storage_gib)


@dataclass(frozen=True)
class ClusterHost:
    """One host of the cluster as vCenter reports it; `usable` = connected and not in maintenance mode."""

    name: str
    cores: int
    memory_mib: int
    usable: bool = True
    storage_raw_gib: float | None = None


@dataclass(frozen=True)
class CapacityPolicy:
    """The sizing policy (ratios, vSAN policy, spares) plus an optional override of the minimum host count."""

    sizing: SizingPolicy = field(default_factory=SizingPolicy)
    min_hosts: int | None = None

    def __post_init__(self) -> None:
        if self.min_hosts is not None and self.min_hosts < 1:
            raise ValueError(f"min_hosts: must be >= 1, got {self.min_hosts}")

    @property
    def minimum(self) -> int:
        """Fewest hosts the cluster may run on (not counting spares)."""
        return self.min_hosts if self.min_hosts is not None else self.sizing.vsan.min_hosts

    @property
    def spare(self) -> int:
        return self.sizing.spare_hosts


@dataclass(frozen=True)
class CapacityPlan:
    """The hosts a wave needs added, with the numbers that explain it."""

    wave_id: str
    wave: Demand
    placed: Demand
    total: Demand
    host_type: str
    hosts_usable: int
    hosts_unusable: list[str]
    hosts_to_add: int
    hosts_after: int
    binding: str                  # what forced the last host: policy_minimum, cpu, memory, storage; fits; empty_wave
    capacity: dict[str, float]    # per dimension, what the survivors of the final cluster may hold (after util caps)
    demand: dict[str, float]      # per dimension, what must fit (storage after policy factor / dedup)
    fill_after_failure: dict[str, float]   # demand / capacity: 1.0 = exactly full after `spare` hosts fail
    explanation: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _rounded(asdict(self))
        return data


def _survivor_capacity(hosts: Sequence[ClusterHost], new: HostCapacity, policy: CapacityPolicy,
                       extra: int) -> dict[str, float]:
    """Per dimension, the capacity of `hosts` + `extra` new hosts after losing the `spare` largest."""
    sp = policy.sizing
    cpu = [h.cores * sp.vcpu_per_core for h in hosts] + [new.vcpus] * extra
    mem = [h.memory_mib * sp.memory_max_util for h in hosts] + [new.memory_usable_mib] * extra
    disk = [(h.storage_raw_gib if h.storage_raw_gib is not None else new.storage_raw_gib) * sp.storage_usable_fraction
            for h in hosts] + [new.storage_usable_gib] * extra

    def keep(values: list[float]) -> float:
        ordered = sorted(values)
        return float(sum(ordered[:max(0, len(ordered) - policy.spare)]))

    return {"cpu": keep(cpu), "memory": keep(mem), "storage": keep(disk)}


def _needs(total: Demand, policy: CapacityPolicy) -> dict[str, float]:
    sp = policy.sizing
    return {"cpu": float(total.vcpus), "memory": float(total.memory_mib),
            "storage": total.storage_gib * sp.vsan.factor / sp.dedup_ratio}


def _failing(count: int, capacity: dict[str, float], needs: dict[str, float], policy: CapacityPolicy) -> list[str]:
    """The dimensions a cluster of `count` hosts with survivor `capacity` fails, in _DIMENSIONS order."""
    out = []
    for name in ("cpu", "memory", "storage"):
        need, have = needs[name], capacity[name]
        # round first so that float noise (1.0000000001) does not cost a whole host, as sizing.py does
        if need > 0 and (have <= 0 or round(need / have, 9) > 1):
            out.append(name)
    if count - policy.spare < policy.minimum:
        out.append("policy_minimum")
    return out


def _upper_bound(needs: dict[str, float], new: HostCapacity, policy: CapacityPolicy) -> int:
    """Enough new hosts to fit everything even if the existing hosts gave nothing (sizing.py's formula)."""
    per = {"cpu": new.vcpus, "memory": new.memory_usable_mib, "storage": new.storage_usable_gib}
    dims = [math.ceil(round(needs[n] / per[n], 9)) if per[n] > 0 else 0 for n in per]
    return max([policy.minimum, *dims]) + policy.spare


def plan_capacity(wave: Demand, placed: Demand, hosts: Sequence[ClusterHost], new: HostCapacity,
                  policy: CapacityPolicy | None = None, *, wave_id: str = "") -> CapacityPlan:
    """The least number of `new` hosts to add so that the cluster holds `placed` + `wave` (module docstring).

    `new` is planners.sizing.host_capacity(instance type, policy.sizing); binary search over k, since
    adding a host never lowers what the survivors can hold.
    """
    policy = policy or CapacityPolicy()
    usable = [h for h in hosts if h.usable]
    unusable = sorted(h.name for h in hosts if not h.usable)
    total = placed + wave
    needs = _needs(total, policy)

    def fails(k: int) -> list[str]:
        return _failing(len(usable) + k, _survivor_capacity(usable, new, policy, k), needs, policy)

    if wave.vms == 0:
        k, binding = 0, "empty_wave"
    elif not fails(0):
        k, binding = 0, "fits"
    else:
        low, high = 1, _upper_bound(needs, new, policy)
        while low < high:
            mid = (low + high) // 2
            if fails(mid):
                low = mid + 1
            else:
                high = mid
        k, binding = low, fails(low - 1)[0]
    capacity = _survivor_capacity(usable, new, policy, k)
    count = len(usable) + k
    after = count - policy.spare
    util = {n: needs[n] / capacity[n] for n in needs if capacity[n] > 0} if after > 0 else {}
    plan = CapacityPlan(wave_id=wave_id, wave=wave, placed=placed, total=total, host_type=new.host_type,
                        hosts_usable=len(usable), hosts_unusable=unusable, hosts_to_add=k, hosts_after=count,
                        binding=binding, capacity=capacity, demand=needs, fill_after_failure=util)
    return CapacityPlan(**{**plan.__dict__, "explanation": _explain(plan, policy)})


def plan_waves_capacity(waves: Sequence[tuple[str, Demand]], placed: Demand, hosts: Sequence[ClusterHost],
                        new: HostCapacity, policy: CapacityPolicy | None = None) -> list[CapacityPlan]:
    """Per wave in order: hosts to add before it, given that earlier waves landed and their hosts were added."""
    policy = policy or CapacityPolicy()
    current = list(hosts)
    landed = placed
    out = []
    for wave_id, demand in waves:
        plan = plan_capacity(demand, landed, current, new, policy, wave_id=wave_id)
        out.append(plan)
        current += [ClusterHost(name=f"<new {new.host_type} #{len(current) + i + 1}>", cores=new.cores,
                                memory_mib=new.memory_mib, storage_raw_gib=new.storage_raw_gib)
                    for i in range(plan.hosts_to_add)]
        landed = landed + demand
    return out


def _explain(plan: CapacityPlan, policy: CapacityPolicy) -> list[str]:
    sp = policy.sizing
    units = {"cpu": "vCPU", "memory": "MiB", "storage": "GiB"}
    lines = [f"demand: wave {plan.wave.vms} VMs + placed {plan.placed.vms} VMs = {plan.total.vcpus} vCPU, "
             f"{plan.total.memory_mib} MiB, {plan.total.storage_gib:.1f} GiB x {sp.vsan.factor:.2f} "
             f"({sp.vsan_policy}) / {sp.dedup_ratio:g} dedup",
             f"cluster: {plan.hosts_usable} usable hosts"
             + (f" ({len(plan.hosts_unusable)} unusable: {', '.join(plan.hosts_unusable)})"
                if plan.hosts_unusable else "")
             + f"; policy: at least {policy.minimum} hosts + {policy.spare} spare"]
    for name in ("cpu", "memory", "storage"):
        lines.append(f"{name}: need {plan.demand[name]:.1f} {units[name]}, survivors of {plan.hosts_after} hosts "
                     f"hold {plan.capacity[name]:.1f}")
    if plan.hosts_to_add:
        lines.append(f"add {plan.hosts_to_add} x {plan.host_type} -> {plan.hosts_after} hosts "
                     f"(binding: {plan.binding})")
    else:
        lines.append("nothing to add: " + ("the wave moves no VM" if plan.wave.vms == 0 else "it fits"))
    return lines


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
