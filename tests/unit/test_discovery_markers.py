"""Pure parts of incremental discovery: host groups for the marker pass, paths, container and tag digests."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.vcenter.discovery import _kept_records, _moved_since, _settled
from adapters.vcenter.estate_extract import Estate, Placement
from adapters.vcenter.placement_markers import container_markers, tags_marker
from adapters.vcenter.vm_extract import MARKER_PATHS, RUNTIME_PATHS, VM_PATHS, VmPaths
from adapters.vcenter.vm_scan import host_groups
from migrate.core.models.inventory import Guest, Host, Inventory, Provenance, Vm


def vm(name: str, host: str, **fields: object) -> Vm:
    return Vm(id=f"id-{name}", moref=f"vm-{name}", name=name, cpus=1, memory_mb=512, template=False, host=host,
              guest=Guest(), **fields)


def inventory(hosts: dict[str, int]) -> Inventory:
    vms = [vm(f"{host}-{i}", host) for host, count in hosts.items() for i in range(count)]
    return Inventory(provenance=Provenance(source="vc", kind="vcenter", collected_at=datetime.now(UTC)),
                     hosts=[Host(id=f"host-{name}", name=name) for name in hosts], vms=vms)


def test_host_groups_balance_vms_over_two_requests() -> None:
    groups = host_groups(inventory({"a": 5, "b": 3, "c": 2, "d": 0}))
    assert [[ref for _, ref in group] for group in groups] == [["host-a", "host-d"], ["host-b", "host-c"]]
    assert all(kind == "HostSystem" for group in groups for kind, _ in group)
    assert host_groups(inventory({"a": 4})) == [[("HostSystem", "host-a")]]
    assert host_groups(inventory({})) == []


def test_paths_without_custom_values_drop_only_custom_value() -> None:
    assert (VmPaths().vm, VmPaths().runtime, VmPaths().markers) == (VM_PATHS, RUNTIME_PATHS, MARKER_PATHS)
    lean = VmPaths(custom_values=False)
    for full, kept in ((VM_PATHS, lean.vm), (RUNTIME_PATHS, lean.runtime), (MARKER_PATHS, lean.markers)):
        assert [p for p in full if p != "customValue"] == list(kept) and "customValue" in full


def estate(folder_name: str = "Workloads", host_vms: tuple[str, ...] = ("vm-1", "vm-2")) -> Estate:
    found = Estate(parents={"group-d1": ("Folder", "Datacenters", None), "dc-1": ("Datacenter", "DC0", "group-d1"),
                            "group-v1": ("Folder", "vm", "dc-1"), "folder-1": ("Folder", folder_name, "group-v1"),
                            "cl-1": ("ClusterComputeResource", "C0", "dc-1"), "host-1": ("HostSystem", "esx1", "cl-1"),
                            "pool-1": ("ResourcePool", "Resources", "cl-1")})
    found.placement = Placement(lists={"host-1": ("HostSystem", list(host_vms)),
                                       "folder-1": ("Folder", ["vm-1", "vm-2", "vm-3"]),
                                       "pool-1": ("ResourcePool", ["vm-1", "vm-2", "vm-3"])})
    for ref, (_, members) in found.placement.lists.items():
        where = {"host-1": found.placement.host, "folder-1": found.placement.folder}.get(ref, found.placement.pool)
        where.update(dict.fromkeys(members, ref))
    return found


def test_container_digests_move_with_what_a_container_gives_its_vms() -> None:
    before = container_markers(estate())
    assert before == container_markers(estate())
    renamed = container_markers(estate(folder_name="Renamed"))
    assert {ref for ref in before if before[ref] != renamed[ref]} == {"folder-1"}
    moved = container_markers(estate(host_vms=("vm-1",)))
    assert {ref for ref in before if before[ref] != moved[ref]} == {"host-1"}


def test_only_vms_of_moved_containers_are_placed_again() -> None:
    old = estate()
    tags = {"vm-1": {"env": ["prod"]}}
    previous = Provenance(source="vc", kind="vcenter", collected_at=datetime.now(UTC),
                          container_markers=container_markers(old), tags_marker=tags_marker(tags))
    now = estate(folder_name="Renamed")
    assert _moved_since(previous, container_markers(now), tags_marker(tags), now.placement) == {"vm-1", "vm-2", "vm-3"}
    assert _moved_since(previous, container_markers(old), tags_marker(tags), old.placement) == set()
    assert _moved_since(previous, container_markers(old), tags_marker({}), old.placement) is None
    unknown = previous.model_copy(update={"container_markers": None})
    assert _moved_since(unknown, container_markers(old), tags_marker(tags), old.placement) is None
    # placed again: the folder path follows the rename; not placed again: the record as it was
    kept = {f"vm-{i}": vm(str(i), "esx1", folder="/DC0/vm/Workloads", datacenter="DC0", cluster="C0",
                          resource_pool="/DC0/vm/Workloads", tags={"env": ["prod"]} if i == 1 else {})
            for i in (1, 2)}
    records = _kept_records(kept, now.placement, now, tags, {"vm-1"})
    assert records[0].folder == "/DC0/vm/Renamed" and records[0].tags == {"env": ["prod"]}
    assert records[1] is kept["vm-2"]
    assert _kept_records(kept, now.placement, now, tags, set()) == list(kept.values())


def test_containers_a_vm_read_in_full_disagrees_with_keep_no_digest() -> None:
    """A VM read in full (placed by its own properties) that the lists put elsewhere moved between the two
    reads: neither container's digest is stored, so the next scan places their VMs again."""
    now = estate()
    digests = container_markers(now)
    agreeing = {"vm-1": {"host_ref": "host-1", "folder_ref": "folder-1", "pool_ref": "pool-1"}}
    assert _settled(digests, agreeing, now.placement) == digests
    moved = {"vm-2": {"host_ref": "host-1", "folder_ref": "folder-9", "pool_ref": "pool-1"}}
    assert _settled(digests, moved, now.placement).keys() == {"host-1", "pool-1"}
    kept_only = {"vm-3": {"previous": None}}        # facts without placement refs say nothing
    assert _settled(digests, kept_only, now.placement) == digests
