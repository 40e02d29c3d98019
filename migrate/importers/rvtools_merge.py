"""Several RVTools exports (one per vCenter, or workbooks merged from several) into one estate.

Identity rule. Every VM belongs to one vCenter: the "VI SDK UUID" of its vInfo row (else its
"VI SDK Server", else the export's file or directory name). Within a vCenter a VM is its "VM UUID"
(instanceUuid; "VM ID" when the export has no UUIDs), and the same one twice is a problem. Its inventory id
is that UUID, as `migrate discover` writes it, unless another vCenter of the same import holds a VM with
the same UUID: then every VM with that UUID gets the id "<vCenter>:<UUID>" and keeps the bare UUID in
`instance_uuid`. The ids depend only on the set of VMs read, not on the order of the files. Hosts, clusters
and datastores whose ids (morefs, names) collide across vCenters are qualified the same way; identical
entries from the same vCenter (the same export read twice) are kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from migrate.core.models.inventory import Cluster, Datastore, Host, Network, VApp
from migrate.importers.rvtools_table import Problems
from migrate.importers.rvtools_vms import VmDraft

__all__ = ["unique_ids", "vm_ids"]

_Item = TypeVar("_Item", Host, Cluster, Datastore, Network, VApp)


def vm_ids(drafts: Sequence[VmDraft], problems: Problems) -> list[tuple[VmDraft, str]]:
    """Each draft with its inventory id; a VM listed twice for one vCenter is a problem (the later row)."""
    seen: dict[tuple[str, str], VmDraft] = {}
    kept: list[VmDraft] = []
    for draft in drafts:
        first = seen.get((draft.vcenter, draft.uuid))
        if first is not None:
            problems.for_file(draft.file).add(
                draft.id_field, f"duplicate VM id {draft.uuid!r} of vCenter {draft.vcenter} (also in {first.file} "
                                f"row {first.row}): the same vCenter exported twice?")
            continue
        seen[(draft.vcenter, draft.uuid)] = draft
        kept.append(draft)
    vcenters: dict[str, set[str]] = {}
    for draft in kept:
        vcenters.setdefault(draft.uuid, set()).add(draft.vcenter)
    return [(d, f"{d.vcenter}:{d.uuid}" if len(vcenters[d.uuid]) > 1 else d.uuid) for d in kept]


def unique_ids(items: Sequence[tuple[str, _Item]]) -> list[_Item]:
    """Items of several vCenters, ids qualified by their vCenter where they collide; repeats dropped."""
    vcenters: dict[str, set[str]] = {}
    for vcenter, item in items:
        vcenters.setdefault(item.id, set()).add(vcenter)
    found: dict[tuple[str, str], _Item] = {}
    for vcenter, item in items:
        if (vcenter, item.id) not in found:
            found[(vcenter, item.id)] = (item.model_copy(update={"id": f"{vcenter}:{item.id}"})
                                         if len(vcenters[item.id]) > 1 else item)
    return list(found.values())
