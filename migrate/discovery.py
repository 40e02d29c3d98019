"""`migrate.discover`: read an estate from the source vCenter(s) into one inventory (library verb)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.core.log import get_logger
from migrate.core.models.inventory import Inventory
from migrate.inventory import load_inventory, save_inventory
from migrate.inventory_merge import merge_sources, source_part

if TYPE_CHECKING:
    from adapters.vcenter.discovery import DiscoveryStats

__all__ = ["discover", "inventory_summary"]

log = get_logger(__name__)


def discover(config: SiteConfig | str | Path, *, out: str | Path | None = None,
             since: Inventory | str | Path | None = None, utilisation: bool = True,
             window_s: int = 3600, progress: Callable[[str], None] | None = None) -> tuple[Inventory, dict[str, Any]]:
    """Discover the source vCenter(s) of `config` (several in parallel: site.yaml `sources`); write `out`
    atomically when given.

    With `since` (an earlier inventory of the same vCenters), only VMs whose configuration changed are read
    in full, each vCenter against its own part of it. Returns the inventory and statistics of the run (with
    several sources: summed, and each source's under "sources").
    """
    from adapters.vcenter.discovery import discover_vcenter  # pyvmomi loads when discovering, not with the CLI
    from adapters.vcenter.settings import vcenter_settings

    site = config if isinstance(config, SiteConfig) else load_site_config(config)
    previous = load_inventory(since) if isinstance(since, str | Path) else since
    several = bool(site.sources)
    endpoints = {name: vcenter_settings(section, f"sources.{name}" if several else "source")
                 for name, section in site.source_sections.items()}

    def one(name: str) -> tuple[Inventory, DiscoveryStats]:
        endpoint = endpoints[name]

        def report(phase: str) -> None:
            log.info("discovering", source=name, phase=phase)
            if progress is not None:
                progress(f"{name}: {phase}" if several else phase)

        base = source_part(previous, endpoint.host) if several else previous
        return discover_vcenter(endpoint, since=base, utilisation=utilisation, window_s=window_s, progress=report)

    started = time.perf_counter()
    if several:
        with ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
            found = dict(zip(endpoints, pool.map(one, endpoints), strict=True))
        inventory = merge_sources([part for part, _ in found.values()])
        stats = _summed({name: asdict(part_stats) for name, (_, part_stats) in found.items()},
                        time.perf_counter() - started)
    else:   # in this thread: Ctrl-C stops it at once
        inventory, single = one(next(iter(endpoints)))
        stats = asdict(single)
    if out is not None:
        save_inventory(inventory, out)
    return inventory, stats


def _summed(per_source: dict[str, dict[str, Any]], elapsed: float) -> dict[str, Any]:
    """The statistics of several sources' discoveries as one (counts summed, wall time of the whole)."""
    parts = list(per_source.values())
    total: dict[str, Any] = {key: sum(p[key] for p in parts) for key in _COUNTS}
    modes = {p["mode"] for p in parts}
    total.update(incremental=any(p["incremental"] for p in parts),
                 mode=modes.pop() if len(modes) == 1 else "mixed", elapsed=round(elapsed, 3),
                 warnings=[f"{name}: {w}" for name, p in per_source.items() for w in p["warnings"]],
                 sources=per_source)
    return total


_COUNTS = ("vms", "full_reads", "light_reads", "evented", "parsed_markers", "late_markers")


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
