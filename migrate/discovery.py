"""`migrate.discover`: read an estate from the source vCenter into an inventory (library verb)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.core.log import get_logger
from migrate.core.models.inventory import Inventory
from migrate.inventory import load_inventory, save_inventory

__all__ = ["discover", "inventory_summary"]

log = get_logger(__name__)


def discover(config: SiteConfig | str | Path, *, out: str | Path | None = None,
             since: Inventory | str | Path | None = None, utilisation: bool = True,
             window_s: int = 3600, progress: Callable[[str], None] | None = None) -> tuple[Inventory, dict[str, Any]]:
    """Discover the source vCenter of `config`; write `out` atomically when given.

    With `since` (an inventory of the same vCenter), only VMs whose configuration changed are read
    in full. Returns the inventory and statistics of the run.
    """
    from adapters.vcenter.discovery import discover_vcenter  # pyvmomi loads when discovering, not with the CLI
    from adapters.vcenter.settings import vcenter_settings

    site = config if isinstance(config, SiteConfig) else load_site_config(config)
    previous = load_inventory(since) if isinstance(since, str | Path) else since
    def report(phase: str) -> None:
        log.info("discovering", phase=phase)
        if progress is not None:
            progress(phase)

    endpoint = vcenter_settings(site.source, "source")
    inventory, stats = discover_vcenter(endpoint, since=previous, utilisation=utilisation, window_s=window_s,
                                        progress=report)
    if out is not None:
        save_inventory(inventory, out)
    return inventory, asdict(stats)


def inventory_summary(inventory: Inventory) -> dict[str, Any]:
    """Headline figures of an inventory, for people and for --json."""
    vms = [vm for vm in inventory.vms if not vm.template]
    power = Counter(vm.power_state or "unknown" for vm in vms)
    return {
        "source": inventory.provenance.source,
        "collected_at": inventory.provenance.collected_at.isoformat(),
        "vms": len(vms),
        "templates": len(inventory.vms) - len(vms),
        "powered_on": power.get("poweredOn", 0),
        "powered_off": power.get("poweredOff", 0),
        "vcpus": sum(vm.cpus for vm in vms),
        "memory_gib": round(sum(vm.memory_mb for vm in vms) / 1024, 1),
        "storage_gib": round(sum(vm.storage_bytes for vm in vms) / 2**30, 1),
        "disks": sum(len(vm.disks) for vm in vms),
        "hosts": len(inventory.hosts),
        "clusters": len(inventory.clusters),
        "datastores": len(inventory.datastores),
        "networks": len(inventory.networks),
        "drs_rules": sum(len(c.rules) for c in inventory.clusters),
        "vapps": len(inventory.vapps),
        "tagged_vms": sum(1 for vm in vms if vm.tags),
        "with_utilisation": sum(1 for vm in vms if vm.utilisation),
    }
