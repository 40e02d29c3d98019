"""Discovery of a vCenter into the inventory format: full, or incremental against a previous inventory.

Reads go through the PropertyCollector only (SoapReader: chunked, parallel, plain data), the
estate and the tags overlapping the VM reads. The incremental mode (vm_scan) re-reads in full only
the VMs that events name, that are new or whose configuration marker moved; it parses the marker
facts only of VMs whose marker digest moved; the others keep their previous record, placed where
they are now. Tags are always read again (tag by tag). Every inventory stores the VMs' marker
digests (provenance.vm_markers) for the next incremental scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.estate_extract import Estate, clusters_with_rules, read_estate
from adapters.vcenter.soap_reader import SoapEndpoint, SoapReader
from adapters.vcenter.tags import read_all_vm_tags
from adapters.vcenter.utilisation import read_utilisation
from adapters.vcenter.vm_markers import marker_context
from adapters.vcenter.vm_scan import incremental_base, scan_vms
from migrate import __version__
from migrate.config import VCenterEndpoint
from migrate.errors import AdapterError
from migrate.log import get_logger
from migrate.models.inventory import Disk, Guest, Inventory, Nic, Provenance, VApp, Vm

__all__ = ["DiscoveryStats", "discover_vcenter"]

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
    seconds: dict[str, float] = field(default_factory=dict)
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
    with connect(endpoint, password) as vc:
        about = vc.about
        # the vCenter's clock when reading starts: the next incremental scan asks for events from here
        started_at = _server_time(vc)
        reader = SoapReader(SoapEndpoint.of(vc))
        try:
            timer = _Timer(stats)
            if since is not None and (since.provenance.instance_uuid != about.instanceUuid
                                      or since.provenance.kind != "vcenter"):
                stats.warnings.append("the previous inventory is from another source: full scan")
            progress("infrastructure, virtual machines, tags")
            # the estate and the tags are a few small calls: they overlap the VM reads
            # the estate (with the containers' VM lists an incremental scan places VMs by) and the tags
            # are a few small calls: they overlap the VM reads
            placement = incremental_base(since, about.instanceUuid)
            # read before the VMs: the marker digests cover the names custom attributes are given
            custom_names = {str(f.key): f.name for f in vc.si.content.customFieldsManager.field or []}
            with ThreadPoolExecutor(max_workers=2) as pool:
                estate_job = pool.submit(_timed, stats, "infrastructure", partial(read_estate, placement=placement),
                                         reader)
                tags_job = pool.submit(_timed, stats, "tags", _read_tags, vc, stats)
                scan = _timed(stats, "vms", scan_vms, reader, about.instanceUuid, since,
                              lambda: estate_job.result().placement, marker_context(custom_names))
                estate, tags = estate_job.result(), tags_job.result()
            vms_raw = scan.raw
            stats.mode, stats.full_reads, stats.light_reads = scan.mode, scan.full_reads, scan.light_reads
            stats.evented, stats.parsed_markers = scan.evented, scan.parsed_markers
            stats.incremental = scan.mode != "full"
            timer.lap("read")
            usage: dict[str, Any] = {}
            if utilisation:
                progress("utilisation")
                # VMs read in full; an unchanged VM keeps the utilisation of the previous inventory
                powered_on = [ref for ref, raw in vms_raw.items()
                              if raw.get("power_state") == "poweredOn" and "previous" not in raw]
                usage = read_utilisation(vc, reader, powered_on, window_s=window_s)
                timer.lap("utilisation")
        finally:
            reader.close()
        places: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        vms = [_kept_record(ref, raw, estate, tags.get(ref, {}), places) if raw.get("kept") else
               _vm_record(ref, raw, estate, custom_names, tags.get(ref, {}), usage.get(ref))
               for ref, raw in vms_raw.items()]
        vm_ids = {ref: raw["id"] for ref, raw in vms_raw.items()}
        vapps: dict[str, list[str]] = {}
        for vm_ref, vapp in estate.vapp_members.items():
            if vm_ref in vm_ids:
                vapps.setdefault(vapp, []).append(vm_ids[vm_ref])
        inventory = Inventory(
            provenance=Provenance(
                source=vc.endpoint.host, kind="vcenter", collected_at=started_at,
                instance_uuid=about.instanceUuid, api_version=about.apiVersion, product=about.fullName,
                tool_version=__version__,
                incremental_from=since.provenance.collected_at if since is not None and stats.incremental else None,
                vm_markers=_markers_of(scan.markers, vms_raw)),
            vms=sorted(vms, key=lambda v: (v.name, v.id)),
            hosts=sorted(estate.hosts, key=lambda h: h.name),
            clusters=sorted(clusters_with_rules(estate, vm_ids), key=lambda c: c.name),
            datastores=sorted(estate.datastores, key=lambda d: d.name),
            networks=sorted(estate.networks, key=lambda n: n.name),
            vapps=[VApp(id=name, name=name, vms=sorted(ids)) for name, ids in sorted(vapps.items())],
            folders=sorted({v.folder for v in vms if v.folder}),
            resource_pools=sorted({v.resource_pool for v in vms if v.resource_pool}),
            custom_attribute_names=sorted(set(custom_names.values())),
        )
        timer.lap("assemble")
    stats.vms = len(inventory.vms)
    return inventory, stats


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
    )


def _runtime_fields(raw: dict[str, Any], estate: Estate, custom_names: dict[str, str]) -> dict[str, Any]:
    """Inventory fields that come from the run-time half of a VM's facts (FEED_PATHS)."""
    return {
        "name": raw["name"], "power_state": raw.get("power_state"), "change_version": raw["change_version"],
        **_placement_fields(raw, estate),
        "vapp": estate.vapp_members.get(raw["moref"]) or estate.name(raw.get("vapp_ref")),
        "custom_attributes": _custom(raw, custom_names), "snapshots": raw["snapshots"],
    }


_PLACED = ("datacenter", "host", "cluster", "folder", "resource_pool", "vapp")


def _kept_record(ref: str, raw: dict[str, Any], estate: Estate, tags: dict[str, list[str]],
                 places: dict[tuple[Any, ...], tuple[Any, ...]]) -> Vm:
    """A VM whose configuration and markers did not move: its previous record, placed where it is now.

    `places` caches the placement fields by (host, folder, pool, vApp): VMs share a few hundred of them.
    """
    previous: Vm = raw["previous"]
    key = (raw.get("host_ref"), raw.get("folder_ref"), raw.get("pool_ref"), estate.vapp_members.get(ref))
    placed = places.get(key)
    if placed is None:
        fields = _placement_fields(raw, estate)
        placed = places[key] = (*(fields[name] for name in _PLACED[:-1]), key[3])
    before = (previous.datacenter, previous.host, previous.cluster, previous.folder, previous.resource_pool,
              previous.vapp)
    if before == placed and previous.tags == tags:
        return previous
    return previous.model_copy(update={"tags": tags, **dict(zip(_PLACED, placed, strict=True))})


def _placement_fields(raw: dict[str, Any], estate: Estate) -> dict[str, Any]:
    """Inventory fields that follow from where the VM runs (host), lives (folder) and belongs (pool)."""
    host_ref, folder_ref = raw.get("host_ref"), raw.get("folder_ref")
    return {
        "datacenter": estate.datacenter(folder_ref) or estate.datacenter(host_ref), "host": estate.name(host_ref),
        "cluster": estate.cluster_of_host(host_ref), "folder": estate.path(folder_ref),
        "resource_pool": estate.path(raw.get("pool_ref")),
    }


def _markers_of(digests: dict[str, str], vms_raw: dict[str, dict[str, Any]]) -> dict[str, str] | None:
    """The digests of the VMs the inventory holds (None when none were taken)."""
    kept = {ref: digest for ref, digest in digests.items() if ref in vms_raw}
    return kept or None
