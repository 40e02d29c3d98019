"""Find inventory objects by name or path (datacenter, cluster, folder, pool, datastore, network, VM by uuid)."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from adapters.vcenter.collector import read_view

__all__ = ["find_datacenter", "find_named", "find_vm_by_instance_uuid", "resolve_folder", "resolve_pool"]


def find_datacenter(si: Any, name: str | None) -> Any:
    """The datacenter called `name` (the only one when `name` is None), or None."""
    found = [obj for obj, props in read_view(si, vim.Datacenter, ["name"]) if name in (None, props.get("name"))]
    return found[0] if len(found) == 1 or (found and name) else None


def find_named(si: Any, vim_type: type, name: str, root: Any = None) -> Any:
    """The first object of `vim_type` called `name` under `root`, or None."""
    for obj, props in read_view(si, vim_type, ["name"], root):
        if props.get("name") == name:
            return obj
    return None


def resolve_folder(datacenter: Any, path: str | None) -> Any:
    """The VM folder at `path` (slash separated, relative to the datacenter's vm folder), or None."""
    folder = datacenter.vmFolder
    for part in [p for p in (path or "").split("/") if p]:
        folder = next((child for child in folder.childEntity
                       if isinstance(child, vim.Folder) and child.name == part), None)
        if folder is None:
            return None
    return folder


def resolve_pool(cluster: Any, path: str | None) -> Any:
    """The resource pool at `path` under the cluster's root pool (the root pool when empty), or None."""
    pool = cluster.resourcePool
    for part in [p for p in (path or "").split("/") if p]:
        pool = next((child for child in pool.resourcePool if child.name == part), None)
        if pool is None:
            return None
    return pool


def find_vm_by_instance_uuid(si: Any, uuid: str) -> Any:
    """The VM whose instanceUuid is `uuid`, or None (SearchIndex, one call)."""
    return si.content.searchIndex.FindByUuid(datacenter=None, uuid=uuid, vmSearch=True, instanceUuid=True)
