"""Facts of VMs in `replatform` waves, fixed before any change: EC2 instance type and NIC placements.

- Instance type: the plan's per-VM override (`waves[].instance_types`, VM id or name -> type) or
  right-sizing (planners.rightsizing, the same rules and defaults as `migrate size --rightsize`) over
  the current-generation types the replatformer offers (EC2 in site.yaml's region). An override EC2 does
  not know, or a VM no type fits, is a Problem.
- NICs: each port group through site.yaml `replatformer.networks` (subnet, security groups,
  keep_private_ip); an unmapped port group is a Problem. A kept IP is the guest's IPv4 address: the first one for a VM
  with one NIC, the i-th for the i-th NIC when the guest reports one per NIC, else none (a Problem
  when the mapping asks to keep it).
- Disks in inventory order (discovery lists devices in key order: the boot disk first).

Both come from the replatformer's catalog (migrate.core.ports.ReplatformCatalog), which the wiring
(migrate.execution_plan) obtains from the replatformer's driver.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from migrate.core.config import SiteConfig
from migrate.core.errors import InputError, Problem
from migrate.core.guest import architecture_of, boot_mode_of
from migrate.core.models.inventory import Vm
from migrate.core.ports import ReplatformCatalog
from migrate.engine.plan import VmFacts
from planners.instance_types import InstanceType
from planners.plan_model import Wave
from planners.rightsizing import rightsize_vm

__all__ = ["ReplatformPlanner"]


class ReplatformPlanner:
    """Builds replatform VM facts and collects every problem (reported with the plan's other problems).

    `types` is the replatformer's catalog; None when site.yaml has no replatformer (a problem of the plan
    already: the method's roles, migrate.execution_plan).
    """

    def __init__(self, site: SiteConfig, *, plan_file: str, site_file: str,
                 catalog: ReplatformCatalog | None = None, tests: bool = False) -> None:
        self.site = site
        self.tests = tests          # a method with test migrations: each NIC's test placement too
        self.plan_file = plan_file
        self.site_file = site_file
        self.catalog = catalog
        self.problems: list[Problem] = []
        self._types: list[InstanceType] | None = None
        self._known: dict[str, bool] = {}
        self._unmapped: dict[str, list[str]] = defaultdict(list)

    def types(self) -> list[InstanceType]:
        """Current-generation types (fetched once, on first use)."""
        if self._types is None:
            self._types = _types_of(self.catalog, None) if self.catalog is not None else []
        return self._types

    def _exists(self, name: str) -> bool:
        if name not in self._known:
            if any(t.name == name for t in self.types()):
                self._known[name] = True
            elif self.catalog is None:
                self._known[name] = False
            else:
                try:
                    self._known[name] = bool(_types_of(self.catalog, [name]))
                except InputError:
                    self._known[name] = False
        return self._known[name]

    def facts(self, vm: Vm, wave_index: int, wave: Wave) -> VmFacts:
        """The VM's facts for the replatform phases; problems go to `self.problems`."""
        if self.catalog is None:   # a problem of the plan already (the method's roles: migrate.execution_plan)
            instance_type, why, basis = None, "no replatformer section", "none"
        else:
            instance_type, why, basis = self._instance_type(vm, wave_index, wave)
        disks = [{"key": d.key, "label": d.label, "capacity_bytes": d.capacity_bytes,
                  "source": f"[{d.datastore}] {d.path}", "datastore": d.datastore,
                  "controller": d.controller or "pvscsi:0", "unit": d.unit if d.unit is not None else 0,
                  "thin": d.thin, "mode": d.mode, "sharing": d.sharing, "rdm": d.rdm} for d in vm.disks]
        facts: dict[str, Any] = {
            "name": vm.name, "power_state": vm.power_state, "cpus": vm.cpus, "memory_mb": vm.memory_mb,
            "guest_id": vm.guest.guest_id, "firmware": vm.firmware, "disks": disks,
            "nics": [{"key": n.key, "mac": n.mac, "network": n.network} for n in vm.nics],
            "devices": vm.devices, "snapshots": vm.snapshots,
            "replatform": {"instance_type": instance_type, "instance_type_basis": basis, "why": why,
                           "architecture": architecture_of(vm.guest.guest_id),
                           "boot_mode": boot_mode_of(vm.firmware), "nics": self._nics(vm)},
        }
        if self.tests:
            self._test_nics(vm, facts)
        return VmFacts(id=vm.id, name=vm.name, source_host=vm.host,
                       datastores=sorted({d.datastore for d in vm.disks if d.datastore}), target_cluster=None,
                       facts=facts)

    def _instance_type(self, vm: Vm, wave_index: int, wave: Wave) -> tuple[str | None, str, str]:
        overrides: dict[str, str] = dict(getattr(wave, "instance_types", None) or {})
        ref = vm.id if vm.id in overrides else vm.name if vm.name in overrides else None
        if ref is not None:
            name = overrides[ref]
            if not self._exists(name):
                self.problems.append(Problem(self.plan_file, f"waves[{wave_index}].instance_types.{ref}",
                                             f"EC2 ({self.catalog.region if self.catalog else '?'}) has no "
                                             f"instance type {name!r} (VM {vm.name})"))
            return name, f"override in the plan (waves[{wave_index}].instance_types)", "override"
        pick = rightsize_vm(vm, self.types())
        if pick.instance_type is None:
            self.problems.append(Problem(self.plan_file, f"waves[{wave_index}].instance_types.{vm.name}",
                                         f"no EC2 instance type fits VM {vm.name}: {pick.why}; name one here"))
        return pick.instance_type, pick.why, "rightsizing"

    def _nics(self, vm: Vm) -> list[dict[str, Any]]:
        if self.catalog is None:
            return []
        ipv4 = [ip for ip in vm.guest.ip_addresses if ":" not in ip]
        if not vm.nics:
            self.problems.append(Problem("inventory", f"{vm.name}.nics", "the VM has no NIC to place in a subnet"))
        placed = []
        unknown_ip: set[str] = set()
        for index, nic in enumerate(vm.nics):
            portgroup = nic.network or "(none)"
            mapping = self.catalog.network_of(portgroup)
            if mapping is None:
                self._unmapped[portgroup].append(vm.name)
                continue
            ip = ipv4[0] if len(vm.nics) == 1 and ipv4 else ipv4[index] if len(ipv4) == len(vm.nics) else None
            if mapping.keep_private_ip and ip is None and portgroup not in unknown_ip:
                unknown_ip.add(portgroup)
                self.problems.append(Problem(self.site_file, f"replatformer.networks.{portgroup}.keep_private_ip",
                                             f"VM {vm.name}: the IP to keep is unknown (guest reports "
                                             f"{len(ipv4)} IPv4 address(es) for {len(vm.nics)} NIC(s))"))
            placed.append({"portgroup": portgroup, "subnet_id": mapping.subnet_id,
                           "security_group_ids": list(mapping.security_group_ids),
                           "private_ip": ip if mapping.keep_private_ip else None})
        return placed

    def _test_nics(self, vm: Vm, facts: dict[str, Any]) -> None:
        """Where a test instance's NICs go (`replatformer.test_networks`; no kept IP: the source still runs).
        An unmapped port group is no problem of the plan: `migrate test` refuses the VM, naming it."""
        placed = []
        for nic, fact in zip(vm.nics, facts["nics"], strict=True):
            mapping = self.catalog.test_network_of(nic.network or "(none)") if self.catalog is not None else None
            fact["test_network"] = mapping.subnet_id if mapping is not None else None
            if mapping is not None:
                placed.append({"portgroup": nic.network or "(none)", "subnet_id": mapping.subnet_id,
                               "security_group_ids": list(mapping.security_group_ids), "private_ip": None})
        facts["replatform"]["test_nics"] = placed

    def finish(self) -> list[Problem]:
        """Every problem found, unmapped port groups last (one each, naming a few VMs)."""
        for portgroup, vms in sorted(self._unmapped.items()):
            self.problems.append(Problem(self.site_file, f"replatformer.networks.{portgroup}",
                                         f"no EC2 subnet mapped for port group {portgroup!r} (used by {_few(vms)})"))
        self._unmapped.clear()
        return self.problems


def _types_of(catalog: ReplatformCatalog, names: Sequence[str] | None) -> list[InstanceType]:
    return [InstanceType.model_validate(r) for r in catalog.instance_types(names)]


def _few(names: Iterable[str], limit: int = 3) -> str:
    unique = sorted(set(names))
    more = f" and {len(unique) - limit} more" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more
