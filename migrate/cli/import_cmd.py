"""`migrate import rvtools EXPORT... --out inventory.json`: an inventory from RVTools exports, without vCenter."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from migrate.cli.output import Reporter, command_errors, json_option

if TYPE_CHECKING:
    from migrate.core.models.inventory import Inventory

__all__ = ["import_group", "inventory_summary"]


@click.group("import")
def import_group() -> None:
    """Build inventory.json from files other tools exported (no network access to vCenter needed)."""


@import_group.command("rvtools")
@click.argument("exports", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the inventory (written atomically).")
@json_option
@command_errors
def rvtools(exports: tuple[Path, ...], out: Path, as_json: bool) -> None:
    """Read RVTools exports into one inventory.

    EXPORTS are xlsx workbooks, per-tab CSV files (RVTools_tabvInfo.csv, ...; those of one directory are one
    export) or directories holding either, typically one per vCenter; each VM keeps its vCenter. Needs the
    vInfo, vDisk and vNetwork sheets; uses vCPU, vMemory, vSnapshot, vTools, vHost, vCluster and vDatastore
    when present. Exit 2 lists every problem by file, sheet, row and column; nothing is written then.
    """
    from migrate.importers import import_rvtools
    from migrate.inventory import save_inventory

    inventory = import_rvtools(*exports)
    save_inventory(inventory, out)
    Reporter(as_json).result({"output": str(out), **inventory_summary(inventory)}, _human)


def inventory_summary(inventory: Inventory) -> dict[str, Any]:
    """Counts and totals; vCPU and memory over VMs (not templates), storage over distinct disk files."""
    vms = [vm for vm in inventory.vms if not vm.template]
    disk_files: dict[tuple[str | None, str] | int, int] = {}
    for n, disk in enumerate(d for vm in inventory.vms for d in vm.disks):
        # a disk shared by several VMs (multi-writer) is one file: count it once
        disk_files[(disk.datastore, disk.path) if disk.path else n] = disk.capacity_bytes
    return {
        "source": inventory.provenance.source,
        "vcenters": len({vm.source_instance_uuid or vm.source for vm in inventory.vms} - {None}),
        "vms": len(vms),
        "templates": len(inventory.vms) - len(vms),
        "powered_on": sum(vm.power_state == "poweredOn" for vm in vms),
        "powered_off": sum(vm.power_state == "poweredOff" for vm in vms),
        "suspended": sum(vm.power_state == "suspended" for vm in vms),
        "disks": sum(len(vm.disks) for vm in inventory.vms),
        "nics": sum(len(vm.nics) for vm in inventory.vms),
        "hosts": len(inventory.hosts),
        "clusters": len(inventory.clusters),
        "datastores": len(inventory.datastores),
        "networks": len(inventory.networks),
        "vcpus": sum(vm.cpus for vm in vms),
        "memory_gib": round(sum(vm.memory_mb for vm in vms) / 1024, 1),
        "storage_gib": round(sum(disk_files.values()) / 2**30, 1),
    }


def _human(data: dict[str, Any]) -> str:
    return "\n".join([
        f"Imported {data['source']} ({data['vcenters']} vCenter(s)):",
        f"  VMs         {data['vms']} ({data['powered_on']} powered on, {data['powered_off']} powered off, "
        f"{data['suspended']} suspended) and {data['templates']} template(s)",
        f"  disks       {data['disks']} on {data['datastores']} datastore(s)",
        f"  NICs        {data['nics']} on {data['networks']} network(s)",
        f"  hosts       {data['hosts']} in {data['clusters']} cluster(s)",
        f"  total       {data['vcpus']} vCPU, {data['memory_gib']} GiB memory, "
        f"{data['storage_gib']} GiB storage",
        f"Written to {data['output']}",
    ])
