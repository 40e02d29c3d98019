"""Digests of where VMs are: an incremental scan places again only the VMs whose containers moved.

Per host, folder, resource pool and vApp: what it gives its VMs' records (name, path, cluster,
datacenter) and its member list as read with the estate (estate.placement.lists; a folder's list is
its childEntity, VMs and other children alike). Plus one digest of every VM's tags. Stored in the
inventory's provenance (container_markers, tags_marker) by every scan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from hashlib import sha256

from adapters.vcenter.estate_extract import Estate

__all__ = ["container_markers", "tags_marker"]

_FORMAT = "placement-markers/1"
_DIGEST_CHARS = 20


def container_markers(estate: Estate) -> dict[str, str]:
    """Per host, folder, resource pool and vApp (moref): a digest of what it gives its VMs' records (name,
    path, cluster, datacenter) and of its list of VMs (estate.placement.lists).

    Where every container's digest is as the previous scan stored it, every VM is where it was and its
    placement fields are as they were: the scan re-places only the VMs of containers whose digest moved.
    """
    found = {}
    for ref, (kind, members) in estate.placement.lists.items():
        if kind == "HostSystem":
            gives = [estate.name(ref), estate.cluster_of_host(ref), estate.datacenter(ref)]
        elif kind in ("Folder", "StoragePod"):
            gives = [estate.path(ref), estate.datacenter(ref)]
        else:
            gives = [estate.path(ref), estate.name(ref)]
        text = "\0".join((json.dumps([_FORMAT, kind, *gives]), *members))
        found[ref] = sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]
    return found


def tags_marker(tags: Mapping[str, Mapping[str, Sequence[str]]]) -> str:
    """One digest of every VM's tags (moref -> category -> tag names): whether any VM's tags may have moved."""
    return sha256(json.dumps(tags, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:_DIGEST_CHARS]
