"""Turn plan.yaml + inventory.json + site.yaml into the engine's RunPlan, or list every problem (exit 2).

Everything a run needs to know about a VM is fixed here, before any change: its hardware, each disk's
target datastore (site.yaml `mappings.datastores`, else the target's default datastore), each NIC's
target network (`mappings.networks`, required) and the placement (target cluster, folder, pool).
Methods that fix their own facts (replatform) get the replatformer's catalog (instance types, network
placements) from its driver (`Driver.catalog`). The result is digest-checked by the journal, so a resume
runs exactly what was checked.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from migrate.config import ROLE_SECTIONS
from migrate.core.config import Placement, SiteConfig
from migrate.core.drivers import Role, get_driver
from migrate.core.errors import InputError, Problem
from migrate.core.models.inventory import Inventory, Vm
from migrate.core.ports import NetworkPlacement, ReplatformCatalog
from migrate.engine.methods import FactsPlanner, Method, registry
from migrate.engine.plan import Policy, RunPlan, VmFacts, WavePlan, WaveWindow
from planners.instance_types import InstanceType
from planners.plan_model import Plan

__all__ = ["InstanceTypeSource", "build_run_plan", "target_folder"]

# names=None: every current-generation type; names given: exactly those (InputError when one is unknown)
InstanceTypeSource = Callable[[list[str] | None], list[InstanceType]]

_UNSAFE = re.compile(r"[\\/\[\]%]")


def target_folder(name: str) -> str:
    """The datastore folder a VM's copied disks go to: its name, with path characters replaced."""
    return _UNSAFE.sub("_", name).strip() or "vm"


class _Builder:
    def __init__(self, site: SiteConfig, plan_file: str, site_file: str) -> None:
        self.site = site
        self.plan_file = plan_file
        self.site_file = site_file
        self.problems: list[Problem] = []
        self.unmapped_networks: dict[str, list[str]] = defaultdict(list)
        self.unmapped_datastores: dict[str, list[str]] = defaultdict(list)

    def facts(self, vm: Vm) -> VmFacts:
        target = self.site.target.placement() if self.site.target else Placement()
        default_ds = target.datastore
        disks = []
        for disk in vm.disks:
            mapped = self.site.mappings.datastores.get(disk.datastore or "", default_ds)
            if mapped is None:
                self.unmapped_datastores[disk.datastore or "(none)"].append(vm.name)
            disks.append({"key": disk.key, "label": disk.label, "capacity_bytes": disk.capacity_bytes,
                          "source": f"[{disk.datastore}] {disk.path}", "datastore": disk.datastore,
                          "target_datastore": mapped, "controller": disk.controller or "pvscsi:0",
                          "unit": disk.unit if disk.unit is not None else 0, "thin": disk.thin, "mode": disk.mode,
                          "sharing": disk.sharing, "rdm": disk.rdm})
        nics = []
        for nic in vm.nics:
            mapped = self.site.mappings.networks.get(nic.network or "")
            if mapped is None:
                self.unmapped_networks[nic.network or "(none)"].append(vm.name)
            nics.append({"key": nic.key, "mac": nic.mac, "adapter": nic.adapter, "network": nic.network,
                         "target_network": mapped, "connected": nic.connected})
            if self.site.mappings.test_networks:   # only then: plans of sites without test networks stay as they were
                nics[-1]["test_network"] = self.site.mappings.test_networks.get(nic.network or "")
        facts: dict[str, Any] = {
            "name": vm.name, "power_state": vm.power_state, "cpus": vm.cpus, "cores_per_socket": vm.cores_per_socket,
            "memory_mb": vm.memory_mb, "guest_id": vm.guest.guest_id, "firmware": vm.firmware,
            "hardware_version": vm.hardware_version, "folder": target_folder(vm.name),
            "disks": disks, "nics": nics, "devices": vm.devices, "snapshots": vm.snapshots,
            "placement": {"cluster": target.cluster, "folder": target.folder, "resource_pool": target.resource_pool,
                          "datastore": default_ds},
        }
        return VmFacts(id=vm.id, name=vm.name, source_host=vm.host,
                       datastores=sorted({d.datastore for d in vm.disks if d.datastore}),
                       target_cluster=target.cluster, facts=facts)

    def mapping_problems(self) -> None:
        for name, vms in sorted(self.unmapped_networks.items()):
            self.problems.append(Problem(self.site_file, f"mappings.networks.{name}",
                                         f"no target network for port group {name!r} (used by {_few(vms)})"))
        for name, vms in sorted(self.unmapped_datastores.items()):
            self.problems.append(Problem(self.site_file, f"mappings.datastores.{name}",
                                         f"no target datastore for {name!r} (used by {_few(vms)}); map it or "
                                         "set target.datastore"))


def _routed(facts: VmFacts, vm: Vm, inventory: Inventory, site: SiteConfig, site_file: str,
            problems: list[Problem]) -> VmFacts:
    """The VM's facts naming the source (site.yaml `sources`) it is read from; a problem when none serves it
    (also with a single source, for an inventory of several vCenters)."""
    came_from = vm.source or inventory.provenance.source
    name = site.source_of(came_from)
    field = "sources" if site.sources else "source"
    if name is None:
        problems.append(Problem(site_file, field, f"VM {vm.name} comes from {came_from!r}, which no source serves "
                                                  f"(site.yaml has: {', '.join(site.source_sections)})"))
        return facts
    if vm.instance_uuid and vm.instance_uuid != vm.id:
        problems.append(Problem(site_file, field, f"VM {vm.name} ({vm.id}) shares its instanceUuid with a VM of "
                                                      "another vCenter; runs find VMs by instanceUuid: give one of "
                                                      "them a new one (or run each vCenter's VMs with its own site)"))
    return facts.model_copy(update={"facts": {**facts.facts, "source": name}}) if site.sources else facts


def _same_names(plan: Plan, vm_of: Callable[[str], Vm | None], plan_file: str) -> list[Problem]:
    """A problem for each name that VMs of the plan going to the target vCenter share (two folders, or two
    vCenters), whichever waves this run takes: the target folder, and the datastore folder of their disks,
    can hold only one of them."""
    methods = registry()
    named: dict[str, list[str]] = defaultdict(list)
    for wave in plan.waves:
        method = methods.get(wave.method)
        if method is None or Role.TARGET not in method.roles:
            continue
        for ref in wave.vms:
            vm = vm_of(ref)
            if vm is not None and vm.id not in named[vm.name]:
                named[vm.name].append(vm.id)
    return [Problem(plan_file, "waves", f"VMs {', '.join(ids)} are all named {name!r}: the target can hold only one "
                                        "VM of a name in its folder; rename all but one on their source first")
            for name, ids in sorted(named.items()) if len(ids) > 1]


def _few(names: Iterable[str], limit: int = 3) -> str:
    unique = sorted(set(names))
    more = f" and {len(unique) - limit} more" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


class _GivenTypes:
    """A replatformer's catalog whose instance types are given (records or a fetcher), not asked of the provider."""

    def __init__(self, catalog: ReplatformCatalog, types: Sequence[InstanceType] | InstanceTypeSource) -> None:
        self._catalog = catalog
        self._types = types

    @property
    def region(self) -> str:
        return self._catalog.region

    def instance_types(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        if callable(self._types):
            found = self._types(None if names is None else list(names))
        else:
            found = [t for t in self._types if names is None or t.name in names]
        return [t.model_dump() for t in found]

    def network_of(self, portgroup: str) -> NetworkPlacement | None:
        return self._catalog.network_of(portgroup)

    def test_network_of(self, portgroup: str) -> NetworkPlacement | None:
        return self._catalog.test_network_of(portgroup)


def _catalog(site: SiteConfig, site_file: str, instance_types: Sequence[InstanceType] | InstanceTypeSource | None,
             problems: list[Problem]) -> ReplatformCatalog | None:
    """The catalog of site.yaml's replatformer from its driver, with `instance_types` (if given) in place of
    the provider's; None without a replatformer, or (a problem) when its driver offers no catalog."""
    settings = site.replatformer
    if settings is None:
        return None
    try:
        driver = get_driver(settings.driver, Role.REPLATFORMER, file=site_file, field_name="replatformer.driver")
    except InputError as exc:
        problems.extend(exc.problems)
        return None
    if driver.catalog is None:
        problems.append(Problem(site_file, "replatformer.driver", f"driver {driver.name!r} offers no catalog of "
                                                                  "instance types and network placements to plan with"))
        return None
    catalog = driver.catalog(settings)
    return catalog if instance_types is None else _GivenTypes(catalog, instance_types)


def _role_problems(method: Method, wave_id: int, site: SiteConfig, site_file: str) -> list[Problem]:
    """A problem for each provider role the wave's method needs that site.yaml does not configure."""
    return [Problem(site_file, key, f"wave {wave_id} ({method.name}) needs site.yaml `{key}`")
            for key, role in ROLE_SECTIONS.items() if role in method.roles and getattr(site, key) is None]


def build_run_plan(plan: Plan, inventory: Inventory, site: SiteConfig, *, plan_file: str = "plan.yaml",
                   site_file: str = "site.yaml", waves: Iterable[int] | None = None,
                   policy: Policy = "continue",
                   instance_types: Sequence[InstanceType] | InstanceTypeSource | None = None) -> RunPlan:
    """The RunPlan for `plan`'s waves (all, or those in `waves`); InputError listing every problem.

    `instance_types` (replatform waves): InstanceType records or a fetcher given instead of the
    replatformer's (by default its driver's catalog asks EC2, only when a wave re-platforms).
    """
    builder = _Builder(site, plan_file, site_file)
    planners: dict[str, FactsPlanner] = {}   # methods that fix their own facts (e.g. replatform), one each
    by_id = {vm.id: vm for vm in inventory.vms}
    by_name = {vm.name: vm for vm in inventory.vms}
    wanted = set(waves) if waves is not None else None
    known = {wave.id for wave in plan.waves}
    builder.problems.extend(Problem("--waves", str(w), f"plan has no wave {w} (waves: {sorted(known)})")
                            for w in sorted((wanted or set()) - known))
    if not plan.waves:
        builder.problems.append(Problem(plan_file, "waves", "the plan has no waves"))
    run_waves: list[WavePlan] = []
    facts: list[VmFacts] = []
    for w, wave in enumerate(plan.waves):
        if wanted is not None and wave.id not in wanted:
            continue
        method = registry().get(wave.method)
        if method is None:
            builder.problems.append(Problem(plan_file, f"waves[{w}].method", f"unknown method {wave.method!r} "
                                                                            f"(installed: {', '.join(registry())})"))
        else:
            builder.problems.extend(_role_problems(method, wave.id, site, site_file))
        planner = None
        if method is not None and method.facts is not None:
            if method.name not in planners:
                catalog = _catalog(site, site_file, instance_types, builder.problems) \
                    if Role.REPLATFORMER in method.roles else None
                planners[method.name] = method.facts(site, plan_file, site_file, catalog)
            planner = planners[method.name]
        ids = []
        cutover_at = {}
        for v, ref in enumerate(wave.vms):
            vm = by_id.get(ref) or by_name.get(ref)
            if vm is None:
                builder.problems.append(Problem(plan_file, f"waves[{w}].vms[{v}]",
                                                f"unknown VM {ref!r}: not in the inventory"))
                continue
            ids.append(vm.id)
            for key in (vm.id, vm.name):
                if key in wave.cutover_at:
                    cutover_at[vm.id] = wave.cutover_at[key]
            vm_facts = planner.facts(vm, w, wave) if planner is not None else builder.facts(vm)
            several = site.sources or inventory.sources
            facts.append(_routed(vm_facts, vm, inventory, site, site_file, builder.problems) if several else vm_facts)
        window = WaveWindow(start=wave.window.start, end=wave.window.end) if wave.window else None
        builder.problems.extend(Problem(plan_file, f"waves[{w}].cutover_at.{ref}", f"{ref!r} is not a VM of wave "
                                                                                   f"{wave.id}")
                                for ref in wave.cutover_at if (ref not in by_id and ref not in by_name)
                                or (by_id.get(ref) or by_name[ref]).id not in ids)
        if (wave.cutover_at or wave.precopy_interval is not None) and method is not None and not method.replicates:
            builder.problems.append(Problem(plan_file, f"waves[{w}]", f"cutover_at and precopy_interval are for "
                                                                      f"replicating methods (warm), not {method.name}"))
        run_waves.append(WavePlan(id=wave.id, name=wave.name, vms=ids, method=wave.method if method else "cold",
                                  window=window, policy=policy, cutover_at=cutover_at,
                                  precopy_interval=wave.precopy_interval or 3600.0))
    builder.mapping_problems()
    builder.problems.extend(_same_names(plan, lambda ref: by_id.get(ref) or by_name.get(ref), plan_file))
    for planner in planners.values():
        builder.problems.extend(planner.finish())
    if builder.problems:
        raise InputError(builder.problems)
    return RunPlan(waves=run_waves, vms=facts)
