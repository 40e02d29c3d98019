"""VM tags through the vAPI tagging service, in a few bulk calls."""

from __future__ import annotations

from collections.abc import Iterable

from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.rest import RestClient, TaggingClient

__all__ = ["read_all_vm_tags", "read_vm_tags"]

_BATCH = 2000
_TAG_BATCH = 500
_ASSOC = "/com/vmware/cis/tagging/tag-association"


def read_vm_tags(vc: VCenterSession, vm_refs: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """moref -> {category name: sorted tag names} for every VM that has tags."""
    rest = RestClient(vc)
    try:
        tagging = TaggingClient(rest)
        categories = {c["id"]: c["name"] for c in tagging.categories()}
        tags = {t["id"]: (categories.get(t["category_id"], t["category_id"]), t["name"]) for t in tagging.tags()}
        refs = list(vm_refs)
        out: dict[str, dict[str, list[str]]] = {}
        for start in range(0, len(refs), _BATCH):
            batch = [("VirtualMachine", ref) for ref in refs[start:start + _BATCH]]
            for ref, tag_ids in tagging.attached_tags(batch).items():
                by_category: dict[str, list[str]] = {}
                for tag_id in tag_ids:
                    if tag_id in tags:
                        category, name = tags[tag_id]
                        by_category.setdefault(category, []).append(name)
                if by_category:
                    out[ref] = {c: sorted(names) for c, names in sorted(by_category.items())}
        return out
    finally:
        rest.close()


def read_all_vm_tags(vc: VCenterSession) -> dict[str, dict[str, list[str]]]:
    """Like `read_vm_tags` for every VM, asked tag by tag: the cost follows the tags, not the VMs."""
    rest = RestClient(vc)
    try:
        tagging = TaggingClient(rest)
        categories = {c["id"]: c["name"] for c in tagging.categories()}
        tags = {t["id"]: (categories.get(t["category_id"], t["category_id"]), t["name"]) for t in tagging.tags()}
        found: dict[str, dict[str, list[str]]] = {}
        ids = sorted(tags)
        for start in range(0, len(ids), _TAG_BATCH):
            body = {"tag_ids": ids[start:start + _TAG_BATCH]}
            result = rest.post(_ASSOC, "list attached objects", body,
                               **{"~action": "list-attached-objects-on-tags"})["value"] or []
            for item in result:
                category, name = tags[item["tag_id"]]
                for obj in item.get("object_ids") or []:
                    if obj.get("type") == "VirtualMachine":
                        found.setdefault(obj["id"], {}).setdefault(category, []).append(name)
        return {ref: {c: sorted(names) for c, names in sorted(by_category.items())}
                for ref, by_category in found.items()}
    finally:
        rest.close()
