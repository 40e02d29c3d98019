"""Readiness rules that read more than the VM: the estate (DRS rules, datastores), the target cluster and site.yaml.

`Context` holds those facts, all optional: a rule whose whole input is missing (no target inventory, no
site.yaml) is listed as not assessed once, not as unknown on every VM.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from migrate.core.models.inventory import Host, Inventory, Vm
from migrate.engine.readiness import SNAPSHOT_RESERVE, Hit

__all__ = ["EVC_ORDER", "Context", "TargetCluster", "context_hits", "max_hardware_version", "target_cluster"]

# EVC baselines from oldest to newest per vendor (vSphere's EVC mode keys); a VM needing a later one than the
# target offers cannot be vMotioned there.
EVC_ORDER: dict[str, tuple[str, ...]] = {
    "intel": ("intel-merom", "intel-penryn", "intel-nehalem", "intel-westmere", "intel-sandybridge",
              "intel-ivybridge", "intel-haswell", "intel-broadwell", "intel-skylake", "intel-cascadelake",
              "intel-icelake", "intel-sapphirerapids", "intel-graniterapids"),
    "amd": ("amd-rev-e", "amd-rev-f", "amd-greyhound-no3dnow", "amd-greyhound", "amd-bulldozer", "amd-piledriver",
            "amd-steamroller", "amd-zen", "amd-zen2", "amd-zen3", "amd-zen4"),
}
# Newest virtual hardware an ESXi release runs (KB 2007240): (major, minor, update-as-patch) -> vmx-N.
_HW_BY_ESXI = ((6, 0, 0, 11), (6, 5, 0, 13), (6, 7, 0, 14), (7, 0, 0, 17), (7, 0, 1, 18), (7, 0, 2, 19),
               (8, 0, 0, 20), (8, 0, 2, 21), (9, 0, 0, 22))


@dataclass(frozen=True)
class TargetCluster:
    """What the target cluster offers (from an inventory of the target vCenter)."""

    name: str | None
    hardware_version: int | None     # newest vmx-N every host runs; None: a host's version is unknown
    evc_mode: str | None             # newest EVC baseline every host offers; None: unknown


@dataclass(frozen=True)
class Context:
    """The estate around the VMs, the target cluster and site.yaml's replatform mappings (each optional)."""

    inventory: Inventory
    target: TargetCluster | None = None
    kept_ip_networks: frozenset[str] | None = None    # port groups whose private IP re-platform keeps; None: no site
    host_rules: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, inventory: Inventory, target: TargetCluster | None = None,
           kept_ip_networks: Iterable[str] | None = None) -> Context:
        rules: dict[str, list[str]] = defaultdict(list)
        for cluster in inventory.clusters:
            for rule in cluster.rules:
                if rule.kind == "vm-host" and rule.enabled:
                    members = set(rule.vms) | set(cluster.vm_groups.get(rule.vm_group or "", []))
                    for vm_id in members:
                        rules[vm_id].append(f"{cluster.name}/{rule.name}" + (" (mandatory)" if rule.mandatory else ""))
        kept = None if kept_ip_networks is None else frozenset(kept_ip_networks)
        return cls(inventory, target, kept, dict(rules))

    def not_assessed(self) -> dict[str, str]:
        """Rules whose input is missing as a whole: rule id -> what would give it."""
        missing: dict[str, str] = {}
        if self.target is None:
            why = "needs the target cluster's facts (--target-inventory)"
            missing.update(hardware_version=why, evc_mode=why)
        return missing


def _version(text: str | None) -> tuple[int, ...] | None:
    numbers = re.findall(r"\d+", text or "")
    return tuple(int(n) for n in numbers[:3]) + (0,) * (3 - len(numbers[:3])) if numbers else None


def max_hardware_version(esxi_version: str | None) -> int | None:
    """The newest vmx-N an ESXi version runs (e.g. 8.0.2 -> 21); None when unknown or older than 6.0."""
    version = _version(esxi_version)
    if version is None:
        return None
    newest = None
    for major, minor, update, hw in _HW_BY_ESXI:
        if version >= (major, minor, update):
            newest = hw
    return newest


def _evc_rank(mode: str | None) -> tuple[str, int] | None:
    for vendor, order in EVC_ORDER.items():
        if mode in order:
            return vendor, order.index(mode)
    return None


def _cluster_evc(hosts: list[Host]) -> str | None:
    """The cluster's EVC baseline when set on its hosts, else the oldest of the hosts' newest modes."""
    current = {h.evc_mode for h in hosts if h.evc_mode}
    if len(current) == 1:
        return current.pop()
    known = [r for r in (_evc_rank(h.max_evc_mode) for h in hosts) if r is not None]
    if not hosts or len(known) != len(hosts) or len({vendor for vendor, _ in known}) != 1:
        return None
    return EVC_ORDER[known[0][0]][min(index for _, index in known)]


def target_cluster(target: Inventory, name: str | None) -> TargetCluster:
    """The facts of cluster `name` of a target inventory (None: all its hosts)."""
    hosts = [h for h in target.hosts if name is None or h.cluster == name]
    versions = [max_hardware_version(h.version) for h in hosts]
    hardware = None if not hosts or None in versions else min(v for v in versions if v is not None)
    return TargetCluster(name, hardware, _cluster_evc(hosts))


def _hardware(vm: Vm, target: TargetCluster) -> list[Hit]:
    version = _version(vm.hardware_version)
    if version is None:
        return [Hit("hardware_version", "unknown", "the VM's hardware version is unknown")]
    if target.hardware_version is None:
        return [Hit("hardware_version", "unknown", f"the target cluster's newest hardware version is unknown "
                                                   f"(VM: {vm.hardware_version})")]
    if version[0] > target.hardware_version:
        return [Hit("hardware_version", "block", f"hardware {vm.hardware_version}: the target cluster runs at most "
                                                 f"vmx-{target.hardware_version}")]
    return []


def _evc(vm: Vm, target: TargetCluster) -> list[Hit]:
    if not vm.min_evc_mode:
        return []    # no CPU baseline recorded: a powered-off VM needs none
    need, offer = _evc_rank(vm.min_evc_mode), _evc_rank(target.evc_mode)
    if need is None or offer is None:
        return [Hit("evc_mode", "unknown", f"the VM needs EVC {vm.min_evc_mode}; the target cluster offers "
                                           f"{target.evc_mode or 'an unknown mode'}")]
    if need[0] != offer[0] or need[1] > offer[1]:
        return [Hit("evc_mode", "block", f"the VM needs EVC {vm.min_evc_mode}; the target cluster offers "
                                         f"{target.evc_mode}")]
    return []


def _snapshot_space(vm: Vm, free: dict[str, int | None]) -> list[Hit]:
    need: dict[str, int] = defaultdict(int)
    for disk in vm.disks:
        if disk.datastore:
            need[disk.datastore] += int(disk.capacity_bytes * SNAPSHOT_RESERVE)
    hits = []
    for name, wanted in sorted(need.items()):
        have = free.get(name)
        if have is None:
            hits.append(Hit("snapshot_space", "unknown", f"free space of datastore {name!r} unknown"))
        elif have < wanted:
            hits.append(Hit("snapshot_space", "warn", f"datastore {name!r} has {max(have, 0) / 2**30:.1f} GiB free; "
                                                      f"snapshot deltas may need {wanted / 2**30:.1f} GiB"))
    return hits


def _guest_identity(vm: Vm, kept: frozenset[str] | None) -> list[Hit]:
    hits = []
    if not [ip for ip in vm.guest.ip_addresses if ":" not in ip]:
        keeps = sorted({n.network for n in vm.nics if n.network is not None and n.network in (kept or ())})
        if keeps:
            hits.append(Hit("guest_identity", "block", f"the guest reports no IPv4 address, and site.yaml keeps the "
                                                       f"private IP on {', '.join(keeps)}"))
        elif kept is None:
            hits.append(Hit("guest_identity", "warn", "the guest reports no IPv4 address: its private IP cannot be "
                                                      "kept"))
    if not vm.guest.hostname:
        hits.append(Hit("guest_identity", "warn", "the guest reports no host name"))
    return hits


def context_hits(vm: Vm, context: Context, free: dict[str, int | None]) -> list[Hit]:
    """The rules on the VM within its estate, against the target and site.yaml."""
    hits = [Hit("host_affinity", "warn", f"VM-host DRS rule {rule}: it does not move with the VM")
            for rule in context.host_rules.get(vm.id, [])]
    if context.target is not None:
        hits += _hardware(vm, context.target) + _evc(vm, context.target)
    return hits + _snapshot_space(vm, free) + _guest_identity(vm, context.kept_ip_networks)
