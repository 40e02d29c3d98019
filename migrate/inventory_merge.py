"""Inventories of several vCenters (site.yaml `sources`) as one, and one vCenter's part of such an inventory.

Everything read from a vCenter names it in `source` (its host[:port]); the inventory keeps each vCenter's
provenance in `sources`, so `discover --since` continues each from its own markers. Identity follows the
RVTools import's rule (migrate.importers.rvtools_merge): a VM keeps its instanceUuid as id unless another
vCenter holds the same one; then both get "<vCenter instanceUuid>:<instanceUuid>" and keep the bare UUID in
`instance_uuid`. Hosts, clusters, datastores and networks whose ids (morefs) collide are qualified the same
way; DRS rules and vApps follow their VMs' ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TypeVar

from migrate.core.models.inventory import Cluster, Datastore, Host, Inventory, Network, Provenance, VApp, Vm
from migrate.importers.rvtools_merge import unique_ids

__all__ = ["merge_sources", "source_part"]


_Entity = TypeVar("_Entity", Host, Cluster, Datastore, Network, VApp)


def merge_sources(parts: Sequence[Inventory]) -> Inventory:
    """One inventory of the vCenters each of `parts` was discovered from (in that order)."""
    shared = Counter(vm.id for part in parts for vm in part.vms)
    vms: list[Vm] = []
    clusters: list[tuple[str, Cluster]] = []
    vapps: list[tuple[str, VApp]] = []
    for part in parts:
        here = part.provenance
        label = here.instance_uuid or here.source
        ids = {vm.id: f"{label}:{vm.id}" if shared[vm.id] > 1 else vm.id for vm in part.vms}
        vms += [vm.model_copy(update={"id": ids[vm.id], "source": here.source,
                                      "source_instance_uuid": here.instance_uuid,
                                      "instance_uuid": vm.id if ids[vm.id] != vm.id else vm.instance_uuid})
                for vm in part.vms]
        clusters += [(label, _renamed_vms(cluster, ids).model_copy(update={"source": here.source}))
                     for cluster in part.clusters]
        vapps += [(label, vapp.model_copy(update={"vms": [ids.get(v, v) for v in vapp.vms]})) for vapp in part.vapps]
    return Inventory(
        provenance=Provenance(source=", ".join(part.provenance.source for part in parts), kind="vcenter",
                              collected_at=min(part.provenance.collected_at for part in parts),
                              tool_version=parts[0].provenance.tool_version),
        vms=sorted(vms, key=attrgetter("name", "id")),
        hosts=unique_ids(_tagged(parts, attrgetter("hosts"))),
        clusters=unique_ids(clusters),
        datastores=unique_ids(_tagged(parts, attrgetter("datastores"))),
        networks=unique_ids(_tagged(parts, attrgetter("networks"))),
        vapps=unique_ids(vapps),
        folders=sorted({f for part in parts for f in part.folders}),
        resource_pools=sorted({p for part in parts for p in part.resource_pools}),
        custom_attribute_names=sorted({n for part in parts for n in part.custom_attribute_names}),
        sources=[part.provenance for part in parts],
    )


def _tagged(parts: Sequence[Inventory], items: Callable[[Inventory], list[_Entity]]) -> list[tuple[str, _Entity]]:
    """Each part's entities naming their vCenter, with the label that qualifies their ids if they collide."""
    return [(part.provenance.instance_uuid or part.provenance.source,
             item.model_copy(update={"source": part.provenance.source}))
            for part in parts for item in items(part)]


def _renamed_vms(cluster: Cluster, ids: dict[str, str]) -> Cluster:
    """The cluster with its DRS rules' and VM groups' VM ids as the merged inventory has them."""
    if all(new == old for old, new in ids.items()):
        return cluster
    rules = [rule.model_copy(update={"vms": [ids.get(v, v) for v in rule.vms]}) for rule in cluster.rules]
    groups = {name: [ids.get(v, v) for v in members] for name, members in cluster.vm_groups.items()}
    return cluster.model_copy(update={"rules": rules, "vm_groups": groups})


def source_part(inventory: Inventory | None, host: str) -> Inventory | None:
    """What `inventory` holds of the vCenter at `host`, as its own discovery would have written it (the base
    of an incremental scan of it); None when it holds nothing of it."""
    if inventory is None:
        return None
    if not inventory.sources:
        return inventory if inventory.provenance.source == host else None
    provenance = next((p for p in inventory.sources if p.source == host), None)
    if provenance is None:
        return None
    vms = [vm.model_copy(update={"id": vm.instance_uuid or vm.id, "instance_uuid": None, "source": None,
                                 "source_instance_uuid": None})
           for vm in inventory.vms if vm.source == host]
    return Inventory(provenance=provenance, vms=vms, hosts=_own(inventory.hosts, host),
                     clusters=_own(inventory.clusters, host), datastores=_own(inventory.datastores, host),
                     networks=_own(inventory.networks, host))


def _own(items: Sequence[_Entity], host: str) -> list[_Entity]:
    """The entities of the vCenter at `host`, with the ids and no `source`, as its own discovery writes them."""
    return [item.model_copy(update={"source": None, "id": item.id.rsplit(":", 1)[-1]})
            for item in items if getattr(item, "source", None) == host]
