"""Bare-metal capacity for waves through two ports: a HostProvisioner and the target's HostCluster.

For one wave, idempotently (`ensure_capacity`, the engine's `ensure_capacity` wave step):
1. read the target cluster (hosts, VMs already placed) and plan the hosts to add (planners.capacity);
2. look up the hosts already allocated for this wave (tags `migrate:plan` / `migrate:wave`, and the
   idempotency key `<plan>:wave-<id>:capacity`); those allocated but not serving in the cluster yet (a
   crash between allocation and AddHost) count toward what is still missing;
3. `record("allocating", ...)` (durable) before asking the provider, and `record("allocated", ...)` with
   the host ids before adding any of them, so the journal knows every host that may exist;
4. wait (the engine's clock; a cancel stops it) until the provider says the hosts are ready, add each one
   not serving yet, wait for it to connect, admit it (out of maintenance, onto the cluster's switches and
   shared datastores), then `record("added", ...)`; admit again (idempotent) the wave's hosts already
   serving, since a crash between AddHost and admit leaves a connected host off the cluster's switches,
   and then no VM on a distributed port group can be created in the cluster.
A resumed run therefore finds the hosts by tag (and the provider's client token) and never allocates
twice. A provisioning failure, a failed host or one that never connects raises AdapterError with the
reason; the hosts stay allocated and tagged (the journal has them) until `release_capacity`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrate.core.capacity_ports import HostCluster, HostProvisioner, ProvisionedHost
from migrate.core.errors import AdapterError
from migrate.core.log import get_logger
from migrate.engine.capacity_journal import Recorder
from migrate.engine.capacity_plan import (
    CapacitySettings,
    cluster_hosts,
    idempotency_key,
    placed_demand,
    plan_capacity,
    wave_tags,
)
from migrate.engine.capacity_waits import Pacing, wait_connected, wait_ready
from planners.capacity import CapacityPlan, Demand, plan_waves_capacity
from planners.instance_types import InstanceType
from planners.sizing import VmSize, host_capacity

__all__ = ["CapacityPorts", "ReleaseResult", "WaveCapacityResult", "apply_capacity", "ensure_capacity",
           "release_capacity"]

log = get_logger(__name__)


@dataclass(frozen=True)
class CapacityPorts:
    """The two ports the capacity step drives; `close` lets go of both."""

    provisioner: HostProvisioner
    cluster: HostCluster

    def close(self) -> None:
        try:
            self.cluster.close()
        finally:
            self.provisioner.close()


@dataclass(frozen=True)
class WaveCapacityResult:
    """What ensuring one wave's capacity did (or, dry-run, would do)."""

    wave_id: str
    plan: CapacityPlan
    key: str
    allocated: list[ProvisionedHost]     # every host this wave's key holds
    newly_allocated: int
    added: list[str]                     # host names added to the cluster by this call
    in_cluster: list[str]                # this wave's hosts that were already in the cluster
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"wave_id": self.wave_id, "key": self.key, "dry_run": self.dry_run,
                "hosts_to_add": self.plan.hosts_to_add, "newly_allocated": self.newly_allocated,
                "allocated": [h.to_dict() for h in self.allocated], "added": self.added,
                "already_in_cluster": self.in_cluster, "plan": self.plan.to_dict()}


def _record(record: Recorder | None, event: str, data: Mapping[str, Any]) -> None:
    if record is not None:
        record(event, data)


def _add_hosts(ports: CapacityPorts, hosts: list[ProvisionedHost], settings: CapacitySettings,
               pacing: Pacing) -> list[str]:
    """Each host into the cluster, connected and admitted; the names added now."""
    added = []
    for host in sorted(hosts, key=lambda h: h.name):
        pacing.check(f"adding host {host.name}")
        now = ports.cluster.add_host(host.name, ports.provisioner.host_login(host), settings.connect_timeout_s)
        wait_connected(ports.cluster, host.name, settings.connect_timeout_s, pacing, reconnect=not now)
        ports.cluster.admit_host(host.name, settings.connect_timeout_s)
        if now:
            added.append(host.name)
    return added


def _ensure_wave(ports: CapacityPorts, plan: CapacityPlan, *, plan_tag: str, settings: CapacitySettings,
                 pacing: Pacing, record: Recorder | None, dry_run: bool) -> WaveCapacityResult:
    provisioner = ports.provisioner
    wave_id = plan.wave_id
    tags = wave_tags(plan_tag, wave_id)
    key = idempotency_key(plan_tag, wave_id)
    in_cluster = {h.name for h in ports.cluster.read().hosts if h.usable}
    existing = provisioner.find(tags)
    # ours but not serving yet: not in the cluster (a crash before AddHost), or in it but disconnected or in
    # maintenance mode; they are what the plan's missing hosts are, before anything new is allocated
    pending = [h for h in existing if h.name not in in_cluster]
    missing = max(0, plan.hosts_to_add - len(pending))
    target = len(existing) + missing
    already = sorted(h.name for h in existing if h.name in in_cluster)
    if dry_run:
        return WaveCapacityResult(wave_id=wave_id, plan=plan, key=key, allocated=existing, newly_allocated=missing,
                                  added=[], in_cluster=already, dry_run=True)
    hosts = existing
    if missing:
        pacing.check(f"allocating hosts for wave {wave_id}")
        _record(record, "allocating", {"key": key, "tags": tags, "count": missing, "total": target,
                                       "host_type": settings.host_type, "provisioner": provisioner.kind})
        hosts = provisioner.allocate(target, settings.host_type, tags, key)
        if len(hosts) < target:
            raise AdapterError(provisioner.kind, "allocate", f"asked for {target} hosts under {key}, got {len(hosts)}",
                               code="ShortAllocation")
    if missing or pending:   # (again after a crash: the journal may hold only "allocating")
        _record(record, "allocated", {"key": key, "tags": tags, "host_ids": [h.id for h in hosts],
                                      "names": [h.name for h in hosts], "provisioner": provisioner.kind})
    for name in already:   # serving, but a crash between AddHost and admit may have left it off the switches
        ports.cluster.admit_host(name, settings.connect_timeout_s)
    todo = [h for h in hosts if h.name not in in_cluster]
    added: list[str] = []
    if todo:
        ready = wait_ready(provisioner, tags, {h.id for h in todo}, settings.ready_timeout_s, pacing)
        added = _add_hosts(ports, list(ready.values()), settings, pacing)
        _record(record, "added", {"key": key, "names": [h.name for h in todo], "added_now": added})
    return WaveCapacityResult(wave_id=wave_id, plan=plan, key=key, allocated=hosts,
                              newly_allocated=len(hosts) - len(existing), added=added, in_cluster=already)


def ensure_capacity(ports: CapacityPorts, wave_demand: Sequence[VmSize], *, plan_tag: str, wave_id: str,
                    settings: CapacitySettings, host: InstanceType, pacing: Pacing | None = None,
                    record: Recorder | None = None, dry_run: bool = False) -> WaveCapacityResult:
    """Make the target cluster hold this wave (module docstring): the engine's per-wave step.

    `plan_tag` names the plan or run the hosts belong to (the engine passes its run id); `record` gets
    ("allocating" | "allocated" | "added", plain data) and must make it durable before returning.
    """
    policy = settings.policy()
    # hosts an earlier attempt of this wave added are part of the cluster it is planned on, like any other
    info = ports.cluster.read()
    names = {v.name for v in wave_demand if v.name}
    (plan,) = plan_waves_capacity([(wave_id, Demand.of(wave_demand))], placed_demand(info, names), cluster_hosts(info),
                                  host_capacity(host, policy.sizing), policy)
    log.info("capacity planned", wave=wave_id, hosts_to_add=plan.hosts_to_add, binding=plan.binding)
    return _ensure_wave(ports, plan, plan_tag=plan_tag, settings=settings, pacing=pacing or Pacing(), record=record,
                        dry_run=dry_run)


def apply_capacity(ports: CapacityPorts, waves: Sequence[tuple[str, Sequence[VmSize]]], *, plan_tag: str,
                   settings: CapacitySettings, host: InstanceType, pacing: Pacing | None = None,
                   record: Recorder | None = None, dry_run: bool = False) -> list[WaveCapacityResult]:
    """Grow the cluster ahead of time for every wave of a plan, in order (earlier waves' VMs count as
    landed for later waves, their hosts as added). Idempotent like `ensure_capacity`."""
    report = plan_capacity(ports.cluster, waves, settings, host)
    return [_ensure_wave(ports, plan, plan_tag=plan_tag, settings=settings, pacing=pacing or Pacing(), record=record,
                         dry_run=dry_run) for plan in report.plans]


@dataclass(frozen=True)
class ReleaseResult:
    """Hosts found for the plan, removed from the cluster, released at the provider."""

    plan_tag: str
    found: list[ProvisionedHost]
    removed_from_cluster: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"plan_tag": self.plan_tag, "dry_run": self.dry_run, "found": [h.to_dict() for h in self.found],
                "removed_from_cluster": self.removed_from_cluster, "released": self.released}


def release_capacity(ports: CapacityPorts, plan_tag: str, *, wave_id: str | None = None, timeout: float = 600.0,
                     dry_run: bool = False) -> ReleaseResult:
    """Take every host tagged with the plan (and wave) out of the cluster, then release it at the provider.

    A host that cannot leave the cluster (VMs still on it: ResourceInUse) raises AdapterError before
    anything is released for it; run again once it is empty.
    """
    found = ports.provisioner.find(wave_tags(plan_tag, wave_id))
    if dry_run or not found:
        return ReleaseResult(plan_tag=plan_tag, found=found, dry_run=dry_run)
    in_cluster = {h.name for h in ports.cluster.read().hosts}
    removed = [h.name for h in found if h.name in in_cluster and ports.cluster.remove_host(h.name, timeout)]
    released = ports.provisioner.release([h.id for h in found])
    return ReleaseResult(plan_tag=plan_tag, found=found, removed_from_cluster=removed, released=released)
