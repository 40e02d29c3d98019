"""Bare-metal capacity for waves: plan, apply (allocate + add to the cloud cluster), release.

The engine calls `ensure_capacity` once per wave, as one journaled wave step before prechecks:

    ensure_capacity(vm_sizes_from_facts(facts of the wave's VMs), site=site, plan_tag=run_id,
                    wave_id=str(wave.id), settings=CapacitySettings(...),
                    record=journal_recorder(journal, run_id, str(wave.id)))

What it does for one wave, idempotently:
1. read the target cluster (hosts, VMs already placed) and plan the hosts to add (planners.capacity);
2. look up the hosts already allocated for this wave (provider tags `migrate:plan` / `migrate:wave`,
   and the idempotency key `<plan>:wave-<id>:capacity`); those allocated but not in the cluster yet
   (a crash between allocation and AddHost) count toward what is still missing;
3. `record("allocating", ...)` (durable) before asking the provider, and `record("allocated", ...)` with
   the host ids before adding any of them, so the journal knows every host that may exist;
4. wait until the provider says the hosts are ready, add each one not yet in the cluster (AddHost,
   connected, out of maintenance), then `record("added", ...)`.
A resumed run therefore finds the hosts by tag (and the provider's client token) and never allocates
twice. A provisioning failure, a failed host or one that never connects raises AdapterError with the
reason; the hosts stay allocated and tagged (the journal has them) until `release_capacity`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from adapters.aws.settings import aws_settings
from adapters.vcenter.settings import vcenter_settings
from migrate.core.errors import AdapterError, InputError, MigrateError, Problem
from migrate.core.log import get_logger
from planners.capacity import CapacityPlan, CapacityPolicy, ClusterHost, Demand, plan_waves_capacity
from planners.sizing import SizingPolicy, VmSize, host_capacity, host_problems, policy_problems

if TYPE_CHECKING:
    from adapters.capacity.base import HostProvisioner, ProvisionedHost
    from adapters.vcenter.connection import VCenterSession
    from adapters.vcenter.hosts import ClusterInfo
    from migrate.core.config import SiteConfig
    from migrate.engine.journal import Journal
    from migrate.engine.plan import VmFacts
    from planners.instance_types import InstanceType

__all__ = [
    "CapacityReport",
    "CapacitySettings",
    "Recorder",
    "ReleaseResult",
    "WaveCapacityResult",
    "apply_capacity",
    "ensure_capacity",
    "idempotency_key",
    "journal_recorder",
    "make_provisioner",
    "plan_capacity",
    "plan_tag_for",
    "release_capacity",
    "resolve_host_type",
    "vm_sizes_from_facts",
]

log = get_logger(__name__)
Recorder = Callable[[str, Mapping[str, Any]], None]
CLI = "command line"
_FIELD = {"host_type": "--host-type", "provisioner": "--provisioner", "min_hosts": "--min-hosts",
          "spare_hosts": "--spare", "vcpu_per_core": "--ratio", "memory_max_util": "--max-util",
          "storage_usable_fraction": "--storage-util", "dedup_ratio": "--dedup", "vsan_policy": "--policy",
          "evs_environment_id": "--evs-environment", "evs_key_name": "--evs-key-name",
          "connect_timeout_s": "--connect-timeout", "ready_timeout_s": "--ready-timeout"}


@dataclass(frozen=True)
class CapacitySettings:
    """Capacity knobs (CLI options / function parameters until site.yaml carries them)."""

    host_type: str = "i4i.metal"
    provisioner: Literal["ec2", "evs"] = "ec2"
    min_hosts: int | None = None          # None: the vSAN policy's minimum (3 for raid1-ftt1)
    spare_hosts: int = 1                  # N+1
    vcpu_per_core: float = 4.0
    memory_max_util: float = 0.7
    storage_usable_fraction: float = 0.7
    dedup_ratio: float = 1.0
    vsan_policy: str = "raid1-ftt1"
    availability_zone: str | None = None  # EC2: default the region's first available zone
    host_domain: str = "sddc.internal"    # DNS suffix of the names hosts get in the cloud vCenter
    evs_environment_id: str | None = None
    evs_key_name: str | None = None
    esxi_username: str = "root"
    esxi_password: str | None = field(default=None, repr=False)
    trust_host_thumbprint: bool = False
    connect_timeout_s: float = 600.0      # a new host must be connected within this
    ready_timeout_s: float = 1800.0       # the provider must report a host ready within this

    def problems(self) -> list[Problem]:
        """Every bad value, named by its CLI option."""
        out = [Problem(CLI, _FIELD[name], message) for name, message in policy_problems(
            vcpu_per_core=self.vcpu_per_core, memory_max_util=self.memory_max_util,
            storage_usable_fraction=self.storage_usable_fraction, dedup_ratio=self.dedup_ratio,
            vsan_policy=self.vsan_policy, spare_hosts=self.spare_hosts)]
        if self.provisioner not in ("ec2", "evs"):
            out.append(Problem(CLI, "--provisioner", f"must be ec2 or evs, got {self.provisioner!r}"))
        if self.min_hosts is not None and self.min_hosts < 1:
            out.append(Problem(CLI, "--min-hosts", f"must be >= 1, got {self.min_hosts}"))
        if self.provisioner == "evs":
            out += [Problem(CLI, _FIELD[name], "needed with --provisioner evs")
                    for name in ("evs_environment_id", "evs_key_name") if not getattr(self, name)]
        out += [Problem(CLI, _FIELD[name], "must be > 0") for name in ("connect_timeout_s", "ready_timeout_s")
                if not getattr(self, name) > 0]
        return out

    @classmethod
    def from_site(cls, site: SiteConfig, env: Mapping[str, str] | None = None) -> CapacitySettings:
        """The settings of site.yaml's `capacity` section (defaults when it has none)."""
        config = site.capacity
        if config is None:
            return cls()
        environ = os.environ if env is None else env
        password = environ.get(config.esxi_password_env) if config.esxi_password_env else None
        return cls(host_type=config.host_type, provisioner=config.provisioner, min_hosts=config.min_hosts,
                   spare_hosts=config.spare_hosts, vcpu_per_core=config.vcpu_per_core,
                   memory_max_util=config.memory_max_util, availability_zone=config.availability_zone,
                   host_domain=config.host_domain, evs_environment_id=config.evs_environment_id,
                   evs_key_name=config.evs_key_name, esxi_username=config.esxi_username, esxi_password=password)

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


def _tags(plan_tag: str, wave_id: str | None = None) -> dict[str, str]:
    from adapters.capacity.base import TAG_PLAN, TAG_WAVE

    return {TAG_PLAN: plan_tag} | ({TAG_WAVE: wave_id} if wave_id is not None else {})


def make_provisioner(site: SiteConfig, settings: CapacitySettings) -> HostProvisioner:
    """The configured provisioner, on site.yaml's `aws` endpoint."""
    if site.replatformer is None:
        raise InputError.single("site.yaml", "aws", "no aws section: it is needed to provision hosts")
    if settings.provisioner == "evs":
        from adapters.capacity.evs import EvsHostProvisioner

        if not settings.evs_environment_id or not settings.evs_key_name:
            raise InputError([p for p in settings.problems() if p.field.startswith("--evs")])
        return EvsHostProvisioner.from_settings(aws_settings(site.replatformer),
                                                environment_id=settings.evs_environment_id,
                                                key_name=settings.evs_key_name, domain=settings.host_domain)
    from adapters.capacity.ec2 import Ec2HostProvisioner

    return Ec2HostProvisioner.from_settings(aws_settings(site.replatformer),
                                            availability_zone=settings.availability_zone,
                                            domain=settings.host_domain)


def resolve_host_type(site: SiteConfig, settings: CapacitySettings,
                      provisioner: HostProvisioner | None = None) -> InstanceType:
    """The host type's specs from EC2 DescribeInstanceTypes; InputError (exit 2) when unknown or unfit.

    Checked before anything is allocated: moto's AllocateHosts would accept any type name.
    """
    from adapters.aws.instance_types import fetch_instance_types
    from planners.instance_types import InstanceType

    if provisioner is not None:
        allowed = provisioner.supported_host_types()
        if allowed is not None and settings.host_type not in allowed:
            raise InputError.single(CLI, "--host-type", f"{settings.host_type!r} is not a {provisioner.kind} host "
                                                        f"type; one of {', '.join(allowed)}")
    if site.replatformer is None:
        raise InputError.single("site.yaml", "aws", "no aws section: it is needed to read the host type's specs")
    try:
        records = fetch_instance_types(aws_settings(site.replatformer), [settings.host_type])
    except InputError:
        raise InputError.single(CLI, "--host-type", f"{settings.host_type!r} is not an EC2 instance type in "
                                                    f"{aws_settings(site.replatformer).region}") from None
    host = InstanceType.model_validate(records[0])
    unusable = host_problems(host)
    if unusable:
        raise InputError([Problem(CLI, "--host-type", message) for message in unusable])
    return host


# -- reading the cluster -----------------------------------------------------------------------------

def _target(site: SiteConfig) -> tuple[str | None, str]:
    target = vcenter_settings(site.target, "target")
    if target is None or not target.cluster:
        raise InputError.single("site.yaml", "target.cluster", "the cloud vCenter and its cluster are needed")
    return target.datacenter, target.cluster


def _open(site: SiteConfig, session: VCenterSession | None) -> tuple[VCenterSession, bool]:
    if session is not None:
        return session, False
    from adapters.vcenter.connection import connect

    return connect(vcenter_settings(site.target, "target")), True


def _cluster_hosts(info: ClusterInfo) -> list[ClusterHost]:
    return [ClusterHost(name=h.name, cores=h.cores, memory_mib=h.memory_mib, usable=h.usable) for h in info.hosts]


def _placed(info: ClusterInfo, exclude_names: set[str]) -> Demand:
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


def plan_capacity(site: SiteConfig, waves: Sequence[tuple[str, Sequence[VmSize]]],
                  settings: CapacitySettings | None = None, *, session: VCenterSession | None = None,
                  host: InstanceType | None = None) -> CapacityReport:
    """Read the target cluster and plan the hosts each wave needs (cumulative; nothing is changed)."""
    from adapters.vcenter.hosts import read_cluster

    settings = settings or CapacitySettings()
    problems = settings.problems()
    if problems:
        raise InputError(problems)
    datacenter, cluster = _target(site)
    host = host or resolve_host_type(site, settings)
    policy = settings.policy()
    session, owned = _open(site, session)
    try:
        info = read_cluster(session, datacenter, cluster)
    finally:
        if owned:
            session.close()
    names = {v.name for _, vms in waves for v in vms if v.name}
    placed = _placed(info, names)
    plans = plan_waves_capacity([(wave_id, Demand.of(vms)) for wave_id, vms in waves], placed,
                                _cluster_hosts(info), host_capacity(host, policy.sizing), policy)
    hosts = [{"name": h.name, "state": h.connection_state, "maintenance": h.in_maintenance, "cores": h.cores,
              "memory_mib": h.memory_mib, "usable": h.usable} for h in info.hosts]
    return CapacityReport(cluster=cluster, host_type=host.name, hosts=hosts, placed=placed, plans=plans)


# -- applying ----------------------------------------------------------------------------------------

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


def _wait_ready(provisioner: HostProvisioner, tags: Mapping[str, str], ids: set[str],
                timeout: float) -> dict[str, ProvisionedHost]:
    """Poll the provider until every host in `ids` is ready; AdapterError on a failed host or timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        found = {h.id: h for h in provisioner.find(tags) if h.id in ids}
        failed = [h for h in found.values() if h.failed]
        if failed:
            raise AdapterError(provisioner.kind, "allocate", "; ".join(
                f"host {h.id} is {h.state}" + (f" ({h.detail})" if h.detail else "") for h in failed),
                code="HostFailed")
        if len(found) == len(ids) and all(h.ready for h in found.values()):
            return found
        if time.monotonic() > deadline:
            waiting = sorted(f"{i} ({found[i].state if i in found else 'not listed'})" for i in ids
                             if i not in found or not found[i].ready)
            raise AdapterError(provisioner.kind, "allocate", f"hosts not ready after {timeout:g} s: "
                               + ", ".join(waiting), retryable=True, code="HostNotReady")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 15.0)


def _ensure_wave(plan: CapacityPlan, *, site: SiteConfig, plan_tag: str, settings: CapacitySettings,
                 provisioner: HostProvisioner, session: VCenterSession, record: Recorder | None,
                 dry_run: bool) -> WaveCapacityResult:
    from adapters.vcenter.hosts import HostConnect, add_host, find_cluster, read_hosts

    datacenter, cluster = _target(site)
    wave_id = plan.wave_id
    tags = _tags(plan_tag, wave_id)
    key = idempotency_key(plan_tag, wave_id)
    usable = {h.name: h.usable for h in read_hosts(session, find_cluster(session, datacenter, cluster))}
    in_cluster = {name for name, ok in usable.items() if ok}
    existing = provisioner.find(tags)
    # ours but not serving yet: not in the cluster (a crash before AddHost), or in it but disconnected or in
    # maintenance mode; they are what the plan's missing hosts are, before anything new is allocated
    pending = [h for h in existing if h.name not in in_cluster]
    missing = max(0, plan.hosts_to_add - len(pending))
    target = len(existing) + missing
    if dry_run:
        return WaveCapacityResult(wave_id=wave_id, plan=plan, key=key, allocated=existing, newly_allocated=missing,
                                  added=[], in_cluster=sorted(h.name for h in existing if h.name in in_cluster),
                                  dry_run=True)
    hosts = existing
    if missing:
        _record(record, "allocating", {"key": key, "tags": tags, "count": missing, "total": target,
                                       "host_type": settings.host_type, "provisioner": provisioner.kind})
        hosts = provisioner.allocate(target, settings.host_type, tags, key)
        if len(hosts) < target:
            raise AdapterError(provisioner.kind, "allocate", f"asked for {target} hosts under {key}, got {len(hosts)}",
                               code="ShortAllocation")
    if missing or pending:   # (again after a crash: the journal may hold only "allocating")
        _record(record, "allocated", {"key": key, "tags": tags, "host_ids": [h.id for h in hosts],
                                      "names": [h.name for h in hosts], "provisioner": provisioner.kind})
    todo = [h for h in hosts if h.name not in in_cluster]
    if todo:
        ready = _wait_ready(provisioner, tags, {h.id for h in todo}, settings.ready_timeout_s)
        connect = HostConnect(username=settings.esxi_username, password=settings.esxi_password,
                              trust_on_first_use=settings.trust_host_thumbprint)
        added = []
        for host in sorted(ready.values(), key=lambda h: h.name):
            _, now = add_host(session, datacenter, cluster, host.name, connect=connect,
                              connect_timeout=settings.connect_timeout_s)
            if now:
                added.append(host.name)
        _record(record, "added", {"key": key, "names": [h.name for h in todo], "added_now": added})
    else:
        added = []
    return WaveCapacityResult(wave_id=wave_id, plan=plan, key=key, allocated=hosts,
                              newly_allocated=len(hosts) - len(existing), added=added,
                              in_cluster=sorted(h.name for h in existing if h.name in in_cluster))


def ensure_capacity(wave_demand: Sequence[VmSize], *, site: SiteConfig, plan_tag: str, wave_id: str,
                    settings: CapacitySettings | None = None, record: Recorder | None = None,
                    provisioner: HostProvisioner | None = None, session: VCenterSession | None = None,
                    host: InstanceType | None = None, dry_run: bool = False) -> WaveCapacityResult:
    """Make the target cluster hold this wave (module docstring): the engine's per-wave step.

    `plan_tag` names the plan or run the hosts belong to (the engine passes its run id); `record` gets
    ("allocating" | "allocated" | "added", plain data) and must make it durable before returning.
    """
    settings = settings or CapacitySettings()
    problems = settings.problems()
    if problems:
        raise InputError(problems)
    _target(site)
    provisioner = provisioner or make_provisioner(site, settings)
    host = host or resolve_host_type(site, settings, provisioner)
    owned = session is None
    try:
        session, _ = _open(site, session)
        return _plan_and_ensure(wave_demand, site=site, plan_tag=plan_tag, wave_id=wave_id, settings=settings,
                                record=record, provisioner=provisioner, session=session, host=host, dry_run=dry_run)
    except MigrateError:
        raise
    except Exception as exc:  # a raw SDK or network error from the target vCenter: classified, maybe retried
        from adapters.faults import is_provider_fault, provider_error

        if not is_provider_fault(exc):
            raise
        where = vcenter_settings(site.target, "target").host if site.target else None
        raise provider_error(exc, "vcenter", "ensure capacity", where) from exc
    finally:
        if owned and session is not None:
            session.close()


def _plan_and_ensure(wave_demand: Sequence[VmSize], *, site: SiteConfig, plan_tag: str, wave_id: str,
                     settings: CapacitySettings, record: Recorder | None, provisioner: HostProvisioner,
                     session: VCenterSession, host: InstanceType, dry_run: bool) -> WaveCapacityResult:
    from adapters.vcenter.hosts import read_cluster

    datacenter, cluster = _target(site)
    policy = settings.policy()
    # hosts an earlier attempt of this wave added are part of the cluster it is planned on, like any other
    info = read_cluster(session, datacenter, cluster)
    names = {v.name for v in wave_demand if v.name}
    (plan,) = plan_waves_capacity([(wave_id, Demand.of(wave_demand))], _placed(info, names), _cluster_hosts(info),
                                  host_capacity(host, policy.sizing), policy)
    log.info("capacity planned", wave=wave_id, hosts_to_add=plan.hosts_to_add, binding=plan.binding)
    return _ensure_wave(plan, site=site, plan_tag=plan_tag, settings=settings, provisioner=provisioner,
                        session=session, record=record, dry_run=dry_run)


def apply_capacity(site: SiteConfig, waves: Sequence[tuple[str, Sequence[VmSize]]],
                   settings: CapacitySettings | None = None, *, plan_tag: str | None = None,
                   provisioner: HostProvisioner | None = None, session: VCenterSession | None = None,
                   record: Recorder | None = None, dry_run: bool = False) -> list[WaveCapacityResult]:
    """Grow the cluster ahead of time for every wave of a plan, in order (earlier waves' VMs count as
    landed for later waves, their hosts as added). Idempotent like `ensure_capacity`."""
    settings = settings or CapacitySettings()
    problems = settings.problems()
    if problems:
        raise InputError(problems)
    plan_tag = plan_tag or plan_tag_for(waves)
    provisioner = provisioner or make_provisioner(site, settings)
    host = resolve_host_type(site, settings, provisioner)
    session, owned = _open(site, session)
    try:
        report = plan_capacity(site, waves, settings, session=session, host=host)
        return [_ensure_wave(plan, site=site, plan_tag=plan_tag, settings=settings, provisioner=provisioner,
                             session=session, record=record, dry_run=dry_run) for plan in report.plans]
    finally:
        if owned:
            session.close()


@dataclass(frozen=True)
class ReleaseResult:
    """Hosts found for the plan, removed from the cluster, released at the provider."""

    plan_tag: str
    found: list[ProvisionedHost]
    removed_from_cluster: list[str]
    released: list[str]
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"plan_tag": self.plan_tag, "dry_run": self.dry_run, "found": [h.to_dict() for h in self.found],
                "removed_from_cluster": self.removed_from_cluster, "released": self.released}


def release_capacity(site: SiteConfig, plan_tag: str, settings: CapacitySettings | None = None, *,
                     wave_id: str | None = None, provisioner: HostProvisioner | None = None,
                     session: VCenterSession | None = None, dry_run: bool = False) -> ReleaseResult:
    """Take every host tagged with the plan (and wave) out of the cluster, then release it at the provider.

    A host that cannot leave the cluster (VMs still on it: ResourceInUse) raises AdapterError before
    anything is released for it; run again once it is empty.
    """
    from adapters.vcenter.hosts import find_cluster, read_hosts, remove_host

    settings = settings or CapacitySettings()
    datacenter, cluster = _target(site)
    provisioner = provisioner or make_provisioner(site, settings)
    found = provisioner.find(_tags(plan_tag, wave_id))
    if dry_run or not found:
        return ReleaseResult(plan_tag=plan_tag, found=found, removed_from_cluster=[], released=[], dry_run=dry_run)
    session, owned = _open(site, session)
    removed = []
    try:
        in_cluster = {h.name for h in read_hosts(session, find_cluster(session, datacenter, cluster))}
        for host in found:
            if host.name in in_cluster and remove_host(session, datacenter, cluster, host.name,
                                                       timeout=settings.connect_timeout_s):
                removed.append(host.name)
    finally:
        if owned:
            session.close()
    released = provisioner.release([h.id for h in found])
    return ReleaseResult(plan_tag=plan_tag, found=found, removed_from_cluster=removed, released=released)


# -- journal -----------------------------------------------------------------------------------------

def journal_recorder(journal: Journal, run_id: str, wave_id: str) -> Recorder:
    """A Recorder writing wave steps `capacity_allocate` / `capacity_add_hosts` to the run journal, durably.

    "allocating" starts `capacity_allocate` (inputs: key, tags, count) before the provider is asked;
    "allocated" finishes it with the host ids; "added" records `capacity_add_hosts` with the names.
    """
    attempts: dict[str, int] = {}

    def record(event: str, data: Mapping[str, Any]) -> None:
        if event == "allocating":
            _, attempts["capacity_allocate"] = journal.step_started(run_id, "wave", wave_id, "capacity_allocate",
                                                                    dict(data), wait=True)
        elif event == "allocated":
            attempt = attempts.get("capacity_allocate")
            if attempt is None:
                _, attempt = journal.step_started(run_id, "wave", wave_id, "capacity_allocate", None, wait=True)
            journal.step_finished(run_id, "wave", wave_id, "capacity_allocate", attempt, dict(data), wait=True)
        elif event == "added":
            _, attempt = journal.step_started(run_id, "wave", wave_id, "capacity_add_hosts",
                                              {"names": data.get("names")}, wait=True)
            journal.step_finished(run_id, "wave", wave_id, "capacity_add_hosts", attempt, dict(data), wait=True)
        else:
            raise ValueError(f"unknown capacity event {event!r}")

    return record
