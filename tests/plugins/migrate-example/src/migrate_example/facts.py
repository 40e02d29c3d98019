"""Facts of VMs in `archive` waves, fixed when the run plan is built: hardware, disks, NICs, archive folder.

Unlike the vSphere facts, nothing is mapped (no target network or datastore): an archive keeps the
source's names. Two VMs of a run that would share an archive folder are a problem of the plan.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from migrate.core.config import SiteConfig
from migrate.core.errors import Problem
from migrate.core.models.inventory import Vm
from migrate.engine.plan import VmFacts

__all__ = ["ArchivePlanner", "archive_facts", "archive_folder"]

_UNSAFE = re.compile(r"[\\/\[\]%\x00]")


def archive_folder(name: str) -> str:
    """The folder a VM is archived into: its name, with path characters replaced, never hidden."""
    return _UNSAFE.sub("_", name).strip().lstrip(".") or "vm"


class ArchivePlanner:
    """Builds the facts of archive waves' VMs and collects the plan's problems (a FactsPlanner)."""

    def __init__(self, plan_file: str) -> None:
        self.plan_file = plan_file
        self.folders: dict[str, list[tuple[int, str]]] = defaultdict(list)

    def facts(self, vm: Vm, wave_index: int, wave: Any) -> VmFacts:
        folder = archive_folder(vm.name)
        self.folders[folder].append((wave_index, vm.name))
        disks = [{"key": d.key, "label": d.label, "capacity_bytes": d.capacity_bytes, "datastore": d.datastore,
                  "path": f"[{d.datastore}] {d.path}", "controller": d.controller, "unit": d.unit, "thin": d.thin,
                  "mode": d.mode, "sharing": d.sharing, "rdm": d.rdm} for d in vm.disks]
        nics = [{"key": n.key, "mac": n.mac, "adapter": n.adapter, "network": n.network, "connected": n.connected}
                for n in vm.nics]
        facts = {"name": vm.name, "power_state": vm.power_state, "cpus": vm.cpus,
                 "cores_per_socket": vm.cores_per_socket, "memory_mb": vm.memory_mb, "guest_id": vm.guest.guest_id,
                 "firmware": vm.firmware, "hardware_version": vm.hardware_version, "folder": folder,
                 "disks": disks, "nics": nics}
        return VmFacts(id=vm.id, name=vm.name, source_host=vm.host,
                       datastores=sorted({d.datastore for d in vm.disks if d.datastore}), facts=facts)

    def finish(self) -> list[Problem]:
        return [Problem(self.plan_file, f"waves[{vms[1][0]}].vms", f"VMs {', '.join(sorted(n for _, n in vms))} "
                                                                   f"would share the archive folder {folder!r}")
                for folder, vms in sorted(self.folders.items()) if len(vms) > 1]


def archive_facts(site: SiteConfig, plan_file: str, site_file: str, instance_types: Any) -> ArchivePlanner:
    """The method's FactsFactory (migrate.engine.methods): the site and instance types are not needed."""
    return ArchivePlanner(plan_file)
