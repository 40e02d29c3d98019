"""Discovery of a vCenter into the inventory format: full, or incremental against a previous inventory.

Reads go through the PropertyCollector only (SoapReader: chunked, parallel, plain data), the
estate and the tags overlapping the VM reads. The incremental mode (vm_scan) re-reads in full only
the VMs that events name, that are new or whose configuration marker moved; it parses the marker
facts only of VMs whose marker digest moved; the others keep their previous record, placed where
they are now. Tags are always read again (tag by tag). Every inventory stores the VMs' marker
digests (provenance.vm_markers), and digests of each host's, folder's, pool's and vApp's VM list and
of what it gives its VMs (provenance.container_markers) plus one of all tags: the next incremental
scan places again only the VMs of containers whose digest moved. VMs' customValue is read only
where a custom attribute applies to VMs. The cyclic garbage collector pauses while a scan runs.
Utilisation (utilisation.py): a full scan reads the performance history of every VM the hosts list
while it reads the VMs (on 10,000 VMs that costs the scan ~1.3x instead of ~2x after it); the VMs
not powered on are dropped after. An incremental scan reads it for the VMs it reads in full.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from operator import attrgetter
from typing import Any, TypeVar

from pyVmomi import vim

from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.estate_extract import Estate, Placement, clusters_with_rules, read_estate
from adapters.vcenter.placement_markers import container_markers, tags_marker
from adapters.vcenter.settings import VCenterEndpoint
from adapters.vcenter.soap_reader import SoapEndpoint, SoapReader
from adapters.vcenter.tags import read_all_vm_tags
from adapters.vcenter.utilisation import quick_stats, read_history
from adapters.vcenter.vm_extract import VmPaths
from adapters.vcenter.vm_markers import marker_context
from adapters.vcenter.vm_scan import incremental_base, scan_vms
from migrate.core.errors import AdapterError
from migrate.core.faults import LOGIN_BACKOFF, call_with_retry
from migrate.core.log import get_logger
from migrate.core.models.inventory import Disk, Guest, Inventory, Nic, Provenance, Utilisation, VApp, Vm
from migrate.core.version import VERSION

__all__ = ["DiscoveryStats", "custom_fields", "discover_vcenter"]

log = get_logger(__name__)
_T = TypeVar("_T")


@dataclass
class DiscoveryStats:
    """What a discovery did, for the summary and the benchmark."""

    vms: int = 0
    full_reads: int = 0
    light_reads: int = 0
    incremental: bool = False
    mode: str = "full"             # full | events (VMs named by events or whose markers moved) | markers
    evented: int = 0               # VMs named by events since the previous scan
    parsed_markers: int = 0        # VMs whose marker properties were parsed (their digest moved)
    late_markers: int = 0          # VMs on hosts the previous inventory did not list (or moved), read after the pass
    marker_pass: str = ""          # hosts: through the previous inventory's hosts | view: over a container view
    seconds: dict[str, float] = field(default_factory=dict)    # by phase; some phases overlap
    elapsed: float = 0.0           # wall seconds of the whole discovery
    warnings: list[str] = field(default_factory=list)


class _Timer:
    def __init__(self, stats: DiscoveryStats) -> None:
        self._stats = stats
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self._stats.seconds[phase] = round(now - self._last, 3)
        self._last = now


def discover_vcenter(endpoint: VCenterEndpoint, *, password: str | None = None, since: Inventory | None = None,
                     utilisation: bool = True, window_s: int = 3600,
                     progress: Callable[[str], None] = lambda _: None) -> tuple[Inventory, DiscoveryStats]:
    """Discover everything the inventory holds from one vCenter (read-only)."""
    stats = DiscoveryStats()
    started = time.perf_counter()
    with _gc_paused(), call_with_retry(lambda: connect(endpoint, password), backoff=LOGIN_BACKOFF,
                                       what=f"login to {endpoint.host}") as vc:
        about = vc.about
        # the vCenter's clock when reading starts: the next incremental scan asks for events from here
        started_at = _server_time(vc)
        reader = SoapReader(SoapEndpoint.of(vc))
        try:
            timer = _Timer(stats)
            if since is not None and not incremental_base(since, about.instanceUuid):
                stats.warnings.append("the previous inventory is from another source: full scan")
            progress("infrastructure, virtual machines, tags")
            # read before the VMs: the marker digests cover the names custom attributes are given
            custom_names, vm_fields = custom_fields(vc)
            paths = VmPaths(custom_values=bool(vm_fields))
            # the estate (with the containers' VM lists: they place the VMs of an incremental scan, and
            # their digests let the next one skip re-placing VMs) and the tags overlap the VM reads
            full_scan = since is None or not incremental_base(since, about.instanceUuid)
            perf_manager = vc.si.content.perfManager._moId
            with ThreadPoolExecutor(max_workers=3) as pool:
                estate_job = pool.submit(_timed, stats, "infrastructure", partial(read_estate, placement=True),
                                         reader)
                tags_job = pool.submit(_timed, stats, "tags", _read_tags, vc, stats)
                # a full scan: the history of every VM the hosts list is read while the VMs are (their power
                # states come with them; the history of VMs not powered on is dropped after)
                history_job = pool.submit(_timed, stats, "utilisation", _history_ahead, reader, perf_manager,
                                          estate_job, window_s) if utilisation and full_scan else None
                scan = _timed(stats, "vms", scan_vms, reader, about.instanceUuid, since,
                              lambda: estate_job.result().placement, marker_context(vm_fields, paths.markers),
                              paths)
                estate, tags = estate_job.result(), tags_job.result()
                ahead = history_job.result() if history_job is not None else None
            vms_raw = scan.raw
            stats.mode, stats.full_reads, stats.light_reads = scan.mode, scan.full_reads, scan.light_reads
            stats.evented, stats.parsed_markers = scan.evented, scan.parsed_markers
            stats.late_markers, stats.marker_pass = scan.late_markers, scan.marker_pass
            stats.incremental = scan.mode != "full"
            timer.lap("read")
            usage: dict[str, Utilisation] = {}
            if utilisation:
                progress("utilisation")
                # VMs read in full; an unchanged VM keeps the utilisation of the previous inventory
                powered_on = [ref for ref, raw in vms_raw.items()
                              if raw.get("power_state") == "poweredOn" and "previous" not in raw]
                usage = _utilisation_of(reader, perf_manager, powered_on, ahead, window_s)
                timer.lap("utilisation after the read")
        finally:
            reader.close()
        vms = [_vm_record(ref, raw, estate, custom_names, tags.get(ref, {}), usage.get(ref))
               for ref, raw in vms_raw.items()]
        vm_ids = {ref: raw["id"] for ref, raw in vms_raw.items()}
        containers, tags_digest = _settled(container_markers(estate), vms_raw, estate.placement), tags_marker(tags)
        if scan.kept and scan.placement is not None and since is not None:
            moved = _moved_since(since.provenance, containers, tags_digest, scan.placement)
            vms += _kept_records(scan.kept, scan.placement, estate, tags, moved)
            vm_ids.update(zip(scan.kept, map(_vm_id, scan.kept.values()), strict=True))
        vapps: dict[str, list[str]] = {}
        for vm_ref, vapp in estate.vapp_members.items():
            if vm_ref in vm_ids:
                vapps.setdefault(vapp, []).append(vm_ids[vm_ref])
        inventory = Inventory(
            provenance=Provenance(
                source=vc.endpoint.host, kind="vcenter", collected_at=started_at,
                instance_uuid=about.instanceUuid, api_version=about.apiVersion, product=about.fullName,
                tool_version=VERSION,
                incremental_from=since.provenance.collected_at if since is not None and stats.incremental else None,
                vm_markers=_markers_of(scan.markers, vm_ids), container_markers=containers, tags_marker=tags_digest),
            vms=sorted(vms, key=attrgetter("name", "id")),
            hosts=sorted(estate.hosts, key=lambda h: h.name),
            clusters=sorted(clusters_with_rules(estate, vm_ids), key=lambda c: c.name),
            datastores=sorted(estate.datastores, key=lambda d: d.name),
            networks=sorted(estate.networks, key=lambda n: n.name),
            vapps=[VApp(id=name, name=name, vms=sorted(ids)) for name, ids in sorted(vapps.items())],
            folders=sorted(set(map(_folder, vms)) - {None, ""}),
            resource_pools=sorted(set(map(_resource_pool, vms)) - {None, ""}),
            custom_attribute_names=sorted(set(custom_names.values())),
        )
        timer.lap("assemble")
    stats.vms = len(inventory.vms)
    stats.elapsed = round(time.perf_counter() - started, 3)
    return inventory, stats


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a scan runs: its records hold no cycles (reference counting
    frees them), and its full passes over the previous and the new inventory cost a 10,000-VM scan 15%."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def custom_fields(vc: VCenterSession) -> tuple[dict[str, str], dict[str, str]]:
    """Custom attribute names by key: all of them, and those that can hold values on VMs."""
    fields = vc.si.content.customFieldsManager.field or []
    return {str(f.key): f.name for f in fields}, {str(f.key): f.name for f in fields if _applies_to_vms(f)}


def _applies_to_vms(field: Any) -> bool:
    """Whether a custom attribute definition can hold values on VMs (a global one, one for VMs, or in doubt)."""
    kind = field.managedObjectType
    return kind is None or not isinstance(kind, type) or issubclass(vim.VirtualMachine, kind)


def _history_ahead(reader: SoapReader, perf_manager: str, estate_job: Future[Estate],
                   window_s: int) -> tuple[set[str], dict[str, Utilisation]]:
    """The VMs the hosts list (all that can run), and the performance history of those that have one."""
    refs = sorted(estate_job.result().placement.host)
    return set(refs), read_history(reader, perf_manager, refs, window_s=window_s)


def _utilisation_of(reader: SoapReader, perf_manager: str, powered_on: list[str],
                    ahead: tuple[set[str], dict[str, Utilisation]] | None, window_s: int) -> dict[str, Utilisation]:
    """The utilisation of the powered-on VMs: their history read ahead (during the scan), that of VMs it did
    not cover (not on a host then), then an instant quickStats figure for those without history."""
    asked, read = ahead if ahead is not None else (set(), {})
    usage = {ref: read[ref] for ref in powered_on if ref in read}
    late = [ref for ref in powered_on if ref not in asked]
    if late:
        usage.update(read_history(reader, perf_manager, late, window_s=window_s))
    missing = [ref for ref in powered_on if ref not in usage]
    if missing:
        usage.update(quick_stats(reader, missing))
    return usage


def _timed(stats: DiscoveryStats, phase: str, work: Callable[..., _T], *args: Any) -> _T:
    started = time.perf_counter()
    try:
        return work(*args)
    finally:
        stats.seconds[phase] = round(time.perf_counter() - started, 3)


def _server_time(vc: VCenterSession) -> datetime:
    now: datetime = vc.si.CurrentTime()
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)


def _read_tags(vc: VCenterSession, stats: DiscoveryStats) -> dict[str, dict[str, list[str]]]:
    try:
        return read_all_vm_tags(vc)
    except AdapterError as exc:
        stats.warnings.append(f"tags not read: {exc}")
        log.warning("tags not read", error=str(exc))
        return {}


def _custom(raw: dict[str, Any], names: dict[str, str]) -> dict[str, str]:
    return {names[key]: value for key, value in raw.get("custom_values", []) if key in names and value}


def _nic_network(nic: dict[str, Any], estate: Estate) -> tuple[str | None, str | None]:
    key = nic.get("portgroup_key")
    if key and key in estate.portgroup_by_key:
        ref, name = estate.portgroup_by_key[key]
        return name, ref
    network_id = nic.get("network_id")
    if network_id:
        return estate.network_names.get(network_id, nic.get("network_name")), network_id
    return nic.get("network_name"), nic.get("opaque_id")


def _vm_record(ref: str, raw: dict[str, Any], estate: Estate, custom_names: dict[str, str],
               tags: dict[str, list[str]], usage: Any) -> Vm:
    previous: Vm | None = raw.get("previous")
    if previous is not None:   # unchanged configuration: refresh what was read of its run-time facts
        fresh: dict[str, Any] = {"tags": tags}
        if "name" in raw:
            fresh.update(_runtime_fields(raw, estate, custom_names))
            guest = raw["guest_runtime"]
            if any(getattr(previous.guest, key) != value for key, value in guest.items()):
                fresh["guest"] = previous.guest.model_copy(update=guest)
        if all(getattr(previous, key) == value for key, value in fresh.items()):
            return previous
        return previous.model_copy(update=fresh)
    nics = []
    for nic in raw["nics"]:
        network, network_id = _nic_network(nic, estate)
        nics.append(Nic(key=nic["key"], label=nic["label"], mac=nic.get("mac"), adapter=nic["adapter"],
                        network=network, network_id=network_id, connected=nic.get("connected")))
    return Vm(
        id=raw["id"], moref=ref, bios_uuid=raw.get("bios_uuid"), cpus=raw["cpus"],
        cores_per_socket=raw.get("cores_per_socket"), memory_mb=raw["memory_mb"], firmware=raw.get("firmware"),
        hardware_version=raw.get("hardware_version"), template=raw["template"], annotation=raw.get("annotation"),
        disks=[Disk(**disk) for disk in raw["disks"]], nics=nics, guest=Guest(**raw["guest"]),
        tags=tags, devices=raw["devices"], utilisation=usage, **_runtime_fields(raw, estate, custom_names),
        **{key: raw.get(key) for key in _READINESS_FIELDS},
    )


def _runtime_fields(raw: dict[str, Any], estate: Estate, custom_names: dict[str, str]) -> dict[str, Any]:
    """Inventory fields that come from the run-time half of a VM's facts (FEED_PATHS)."""
    return {
        "name": raw["name"], "power_state": raw.get("power_state"), "change_version": raw["change_version"],
        **_placement_fields(raw.get("host_ref"), raw.get("folder_ref"), raw.get("pool_ref"), estate),
        "vapp": estate.vapp_members.get(raw["moref"]) or estate.name(raw.get("vapp_ref")),
        "custom_attributes": _custom(raw, custom_names), "snapshots": raw["snapshots"],
    }


_READINESS_FIELDS = ("change_tracking", "cpu_hot_add", "cpu_hot_remove", "memory_hot_add", "secure_boot", "encrypted",
                    "consolidation_needed", "fault_tolerance_state", "min_evc_mode", "running_on_snapshot")
_PLACED = ("datacenter", "host", "cluster", "folder", "resource_pool", "vapp")
_placed_fields = attrgetter(*_PLACED)
_vm_id, _folder, _resource_pool = attrgetter("id"), attrgetter("folder"), attrgetter("resource_pool")
_NO_TAGS: dict[str, list[str]] = {}


def _moved_since(before: Provenance, containers: dict[str, str], tags_digest: str,
                 where: Placement) -> set[str] | None:
    """VMs whose placement may have moved since the previous scan: those its hosts, folders, pools and vApps
    list whose digest moved (container_markers). None when any VM's may have: no digests then, or tags moved."""
    if before.container_markers is None or before.tags_marker != tags_digest:
        return None
    moved = [ref for ref, digest in containers.items() if before.container_markers.get(ref) != digest]
    return set(chain.from_iterable(where.lists[ref][1] for ref in moved))


def _settled(digests: dict[str, str], vms_raw: dict[str, dict[str, Any]], where: Placement) -> dict[str, str]:
    """Container digests less those of containers whose list disagrees with where a VM read here says it is
    (it moved between its read and the estate's): the next scan places their VMs again."""
    unsettled: set[str | None] = set()
    for ref, raw in vms_raw.items():
        for own, lists in (("host_ref", where.host), ("folder_ref", where.folder), ("pool_ref", where.pool)):
            if own in raw and raw[own] != lists.get(ref):
                unsettled.update((raw[own], lists.get(ref)))
    return {ref: digest for ref, digest in digests.items() if ref not in unsettled}


def _kept_records(kept: dict[str, Vm], where: Placement, estate: Estate,
                  tags: dict[str, dict[str, list[str]]], moved: set[str] | None) -> list[Vm]:
    """VMs whose configuration and markers did not move: their previous records, placed where they are now.

    Only the `moved` ones (all when None) are placed again; their placement fields are worked out once
    per (host, folder, pool, vApp): VMs share a few hundred.
    """
    if moved is not None and not moved:
        return list(kept.values())
    host, folder, pool, vapp = where.host.get, where.folder.get, where.pool.get, estate.vapp_members.get
    places: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    records = []
    for ref, previous in kept.items():
        if moved is not None and ref not in moved:
            records.append(previous)
            continue
        key = (host(ref), folder(ref), pool(ref), vapp(ref))
        placed = places.get(key)
        if placed is None:
            placed = places[key] = (*_placement_fields(key[0], key[1], key[2], estate).values(), key[3])
        vm_tags = tags.get(ref, _NO_TAGS)
        if previous.tags == vm_tags and _placed_fields(previous) == placed:
            records.append(previous)
        else:
            fields = {"tags": dict(vm_tags), **dict(zip(_PLACED, placed, strict=True))}   # no dict shared
            records.append(previous.model_copy(update=fields))
    return records


def _placement_fields(host_ref: str | None, folder_ref: str | None, pool_ref: str | None,
                      estate: Estate) -> dict[str, Any]:
    """Inventory fields that follow from where the VM runs (host), lives (folder) and belongs (pool)."""
    return {
        "datacenter": estate.datacenter(folder_ref) or estate.datacenter(host_ref), "host": estate.name(host_ref),
        "cluster": estate.cluster_of_host(host_ref), "folder": estate.path(folder_ref),
        "resource_pool": estate.path(pool_ref),
    }


def _markers_of(digests: dict[str, str], held: dict[str, str]) -> dict[str, str] | None:
    """The digests of the VMs the inventory holds (None when none were taken)."""
    kept = {ref: digest for ref, digest in digests.items() if ref in held}
    return kept or None
