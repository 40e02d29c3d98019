"""Read RVTools exports (xlsx, or per-tab CSV files) into the inventory format, for planning without vCenter.

Sheets: vInfo, vDisk and vNetwork are required; vCPU, vMemory, vSnapshot, vTools, vHost, vCluster,
vDatastore (and dvSwitch, to tell distributed port groups apart) are used when present. Several exports
(one per vCenter) merge into one inventory; each VM keeps its vCenter (rvtools_merge states the identity
rule). Custom attributes are the vInfo columns between "Annotation" and the trailing block of standard
columns ("Datacenter", "VM ID", ...), which is where RVTools writes them; their empty cells are left out.
Every problem of every file is collected, then raised at once as an InputError naming file, sheet, row
and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from migrate.core.errors import InputError
from migrate.core.models.inventory import Cluster, Datastore, Host, Inventory, Provenance
from migrate.importers.rvtools_columns import DVSWITCH, VCLUSTER, VDATASTORE, VDISK, VHOST, VINFO, VNETWORK
from migrate.importers.rvtools_estate import (
    dvswitch_names,
    networks,
    read_clusters,
    read_datastores,
    read_hosts,
    vapps,
    vnetwork_rows,
    with_referenced_clusters,
    with_referenced_datastores,
)
from migrate.importers.rvtools_facts import finish_vm, read_vm_facts
from migrate.importers.rvtools_merge import unique_ids, vm_ids
from migrate.importers.rvtools_sources import Export, read_exports
from migrate.importers.rvtools_table import Problems
from migrate.importers.rvtools_vms import (
    VmDraft,
    VmIndex,
    custom_attribute_headers,
    read_disks,
    read_nics,
    read_vms,
)

__all__ = ["import_rvtools"]


@dataclass
class _Read:
    """What one export holds, before the merge."""

    drafts: list[VmDraft]
    hosts: list[tuple[str, Host]]
    clusters: list[tuple[str, Cluster]]
    datastores: list[tuple[str, Datastore]]
    networks: list[tuple[str, str | None]]
    distributed: set[str]
    custom_names: list[str]
    vcenters: set[tuple[str | None, str | None]]  # (VI SDK UUID, VI SDK API Version) of its vInfo rows


def import_rvtools(*paths: str | Path) -> Inventory:
    """Read RVTools exports (workbooks, tab CSV files, directories of them) into one inventory.

    InputError lists every problem of every file (missing sheet or column, bad cell, duplicate VM).
    """
    if not paths:
        raise InputError.single("", "", "no RVTools export given")
    problems = Problems("")
    exports = read_exports([Path(p) for p in paths], problems)
    reads = [_read(export) for export in exports]
    inventory = None if problems else _merge(exports, reads, problems)
    if problems or inventory is None:
        raise InputError(problems.items)
    return inventory


def _read(export: Export) -> _Read:
    tables = export.tables
    vinfo = tables[VINFO.name]
    drafts = read_vms(vinfo, export.label) if vinfo else []
    if vinfo:
        index = VmIndex(drafts)
        if (vdisk := tables[VDISK.name]) is not None:
            read_disks(vdisk, index)
        if (vnetwork := tables[VNETWORK.name]) is not None:
            read_nics(vnetwork, index)
        read_vm_facts(tables, index)
    hosts = read_hosts(tables[VHOST.name], export.label)
    return _Read(
        drafts=drafts, hosts=hosts, clusters=read_clusters(tables[VCLUSTER.name], hosts, export.label),
        datastores=read_datastores(tables[VDATASTORE.name], export.label),
        networks=vnetwork_rows(tables[VNETWORK.name]), distributed=dvswitch_names(tables[DVSWITCH.name]),
        custom_names=custom_attribute_headers(vinfo) if vinfo else [],
        vcenters={(row.text("sdk_uuid"), row.text("sdk_api")) for row in vinfo.rows()} if vinfo else set())


def _merge(exports: list[Export], reads: list[_Read], problems: Problems) -> Inventory | None:
    named = vm_ids([d for r in reads for d in r.drafts], problems)
    if problems:
        return None
    vms = [finish_vm(draft, vm_id) for draft, vm_id in named]
    hosts = unique_ids([h for r in reads for h in r.hosts])
    distributed = set().union(*(r.distributed for r in reads))
    return Inventory(
        provenance=_provenance(exports, reads),
        vms=vms,
        hosts=hosts,
        clusters=with_referenced_clusters(unique_ids([c for r in reads for c in r.clusters]), vms, hosts),
        datastores=with_referenced_datastores(unique_ids([d for r in reads for d in r.datastores]), vms),
        networks=networks([n for r in reads for n in r.networks], distributed),
        vapps=vapps(vms),
        folders=sorted({vm.folder for vm in vms if vm.folder}),
        resource_pools=sorted({vm.resource_pool for vm in vms if vm.resource_pool}),
        custom_attribute_names=list(dict.fromkeys(name for r in reads for name in r.custom_names)),
    )


def _provenance(exports: list[Export], reads: list[_Read]) -> Provenance:
    """The files read; one vCenter's UUID and API version only when every VM came from that one vCenter."""
    vcenters = set().union(*(r.vcenters for r in reads))
    uuids, apis = {uuid for uuid, _ in vcenters}, {api for _, api in vcenters}
    mtimes = [e.mtime for e in exports if e.mtime is not None]
    collected = datetime.fromtimestamp(min(mtimes), tz=UTC) if mtimes else datetime.now(tz=UTC)
    return Provenance(source=", ".join(e.label for e in exports), kind="rvtools", collected_at=collected,
                      instance_uuid=next(iter(uuids)) if len(uuids) == 1 else None,
                      api_version=next(iter(apis)) if len(apis) == 1 and len(uuids) == 1 else None)
