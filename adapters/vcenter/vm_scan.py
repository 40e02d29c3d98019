"""Reading the VMs: a full scan, or an incremental one whose cost follows the changes.

Incremental (`since` = an inventory of the same vCenter), in the order tried:
- events: every event since the previous scan that names a VM (reconfigured, powered on/off,
  migrated, created, any task...) marks that VM for a full re-read, done while the marker pass
  runs. The marker pass reads, for every VM, only what can change without an event (MARKER_PATHS:
  name, custom values, guest facts, snapshots, config.changeVersion), cut per VM and hashed without
  parsing (vm_markers): only VMs whose digest differs from the one the previous inventory stored
  (provenance.vm_markers; a full scan stores them too) are parsed. The pass goes through the
  previous inventory's hosts' VM lists in two parallel requests (no container view to build; the
  server builds both halves at once); VMs the hosts' and pools' lists hold that it did not see (a
  new host, a VM moved meanwhile) are read after it. Where each VM runs, lives and
  belongs comes from the hosts', folders' and resource pools' own VM lists (one short list per
  container, not one property per VM), read with the rest of the estate in one request.
  Unchanged VMs keep their previous record, with those facts refreshed. A VM gets no digest when
  its record may be older than the marker pass (read while it ran): the next scan parses it.
- markers: when the event history may not reach back to the previous scan (vcsim keeps the last
  1,000 events; vCenter purges old ones), every VM's run-time facts and configuration markers are
  read (RUNTIME_PATHS) and only VMs whose config.changeVersion / config.modified moved are re-read.

A PropertyCollector change feed kept across runs was tried before and rejected: vcsim does not
announce reconfigurations or custom-value changes through WaitForUpdatesEx.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, cast
from xml.sax.saxutils import unescape

from adapters.vcenter.estate_extract import Placement, read_estate
from adapters.vcenter.soap_reader import Moref, SoapReader
from adapters.vcenter.vm_extract import VmPaths, extract_light, extract_vm
from adapters.vcenter.vm_markers import MarkerPass, full_read_digests, read_markers
from migrate.core.errors import AdapterError
from migrate.core.models.inventory import Host, Inventory, Vm

__all__ = [
    "EVENT_MARGIN", "MARKER_REQUESTS", "VmScan", "host_groups", "incremental_base", "scan_vms", "vms_with_events",
]

VM = "VirtualMachine"
EVENT_MARGIN = timedelta(seconds=1)    # events this close before the previous scan count as changes too
_PAGE = 1000                            # events per page (vcsim's and vCenter's maximum)
_MAX_EVENTS = 200_000                   # beyond this many events a marker pass is cheaper
ALL_PATHS = VmPaths()
MARKER_REQUESTS = 2                     # parallel marker requests (over disjoint sets of hosts)
_moref = attrgetter("moref")
_EVENT = b"<returnval"
_CREATED = re.compile(rb"<createdTime>([^<]*)</createdTime>")
_VM_REF = re.compile(rb'<[^<>/!?][^<>]*?\stype="VirtualMachine"[^<>]*>([^<]+)<')   # moref, any attribute order
_NS = "{urn:vim25}"
_TIME = re.compile(r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?P<frac>\.\d+)?(?P<zone>Z|[+-]\d\d:?\d\d)?$")


@dataclass
class VmScan:
    """moref -> raw facts: a full record, or run-time facts plus the `previous` record of an unchanged VM.

    A VM whose marker digest did not move is `kept`: its previous record, to be placed by `placement`.
    """

    raw: dict[str, dict[str, Any]]
    mode: str            # full | events | markers
    full_reads: int
    light_reads: int
    evented: int = 0     # VMs named by events since the previous scan
    markers: dict[str, str] = field(default_factory=dict)    # moref -> marker digest, for the next scan
    parsed_markers: int = 0   # VMs whose marker facts were parsed (digest moved, new, or in doubt)
    kept: dict[str, Vm] = field(default_factory=dict)
    placement: Placement | None = None       # the containers' VM lists (incremental scans)
    late_markers: int = 0     # VMs the pass through the hosts missed (new host, moved meanwhile), read after it
    marker_pass: str = ""     # hosts (through the previous inventory's hosts) | view (over a container view)


def incremental_base(since: Inventory | None, instance_uuid: str) -> bool:
    """Whether `since` can serve as the base of an incremental scan of the vCenter `instance_uuid`."""
    return since is not None and since.provenance.kind == "vcenter" and since.provenance.instance_uuid == instance_uuid


def scan_vms(reader: SoapReader, instance_uuid: str, since: Inventory | None,
             placement: Callable[[], Placement] | None = None, context: bytes = b"",
             paths: VmPaths = ALL_PATHS) -> VmScan:
    """Raw facts of every VM; with `since` (same vCenter), only new or changed VMs are read in full.

    `placement` gives the containers' VM lists (read_estate(placement=True)); read here when not given.
    `context` is what every marker digest also covers (vm_markers.marker_context).
    """
    if since is None or not incremental_base(since, instance_uuid):
        digests: dict[str, str] = {}
        everything = dict(reader.read(VM, paths.vm, convert=extract_vm,
                                      raw=lambda page: digests.update(full_read_digests(page, context))))
        return VmScan(everything, "full", len(everything), 0, markers=digests)
    by_ref: dict[str | None, Vm] = dict(zip(map(_moref, since.vms), since.vms, strict=True))
    by_ref.pop(None, None)           # a record without a moref matches no VM
    previous = cast("dict[str, Vm]", by_ref)
    stored = since.provenance.vm_markers or {}
    groups = host_groups(since)
    with ThreadPoolExecutor(max_workers=1) as pool:   # the events, and reading what they name, overlap the marker pass
        events = pool.submit(_evented_reads, reader, since.provenance.collected_at, paths.vm)
        markers = _read_markers(reader, context, paths.markers, groups)
        evented, early = events.result()
    if evented is None:
        return _marker_scan(reader, previous, markers.digests, paths)
    where = placement() if placement is not None else read_estate(reader, placement=True).placement
    late = 0
    if markers.source == "hosts":
        markers, late = _complete(reader, context, paths.markers, markers, where)
    # set operations, not loops over 10,000 VMs: this runs after the marker pass, on the critical path
    seen, found = set(markers.refs), markers.digests
    # a VM read while the marker pass ran may be older than its digest: keep none, the next scan parses it
    digests = dict(found)
    for ref in early.keys() & found.keys():
        del digests[ref]
    # parse the markers of VMs whose digest moved (or that have none), and of those whose vApp may come
    # from parentVApp; not of VMs read in full anyway
    moved = {ref for ref, _ in found.items() - stored.items()} | (seen - found.keys())
    moved |= {ref for ref, vm in previous.items() if vm.vapp is not None} - where.vapp.keys()
    wanted = (moved & previous.keys()) - evented
    # a page that could not be split gives the facts of all its VMs: keep those asked for (new and
    # evented VMs are read in full)
    facts = {ref: record for ref, record in markers.facts(wanted).items() if ref in wanted}
    changed = (seen - previous.keys()) | (evented & seen)
    changed.update(ref for ref, record in facts.items() if _config_moved(previous[ref], record))
    unread = [(VM, ref) for ref in sorted(changed) if ref not in early]
    full = {ref: early[ref] for ref in changed if ref in early}
    full.update(reader.read(VM, paths.vm, unread, convert=extract_vm) if unread else ())
    raw: dict[str, dict[str, Any]] = dict(full)
    for ref, record in facts.items():
        if ref in full:
            continue
        before = previous[ref]
        record.update(host_ref=where.host.get(ref), folder_ref=where.folder.get(ref), pool_ref=where.pool.get(ref),
                      power_state=before.power_state, change_version=before.change_version, id=before.id,
                      previous=before)
        raw[ref] = record
    # in the previous inventory's order (sorted by name): the new one sorts in a single pass
    kept = dict(previous)
    for ref in (previous.keys() - seen) | (raw.keys() & previous.keys()):
        del kept[ref]
    return VmScan(raw, "events", len(full), len(markers.refs), evented=len(evented), markers=digests,
                  parsed_markers=len(facts), kept=kept, placement=where, late_markers=late,
                  marker_pass=markers.source)


def host_groups(since: Inventory, parts: int = MARKER_REQUESTS) -> list[list[Moref]]:
    """The previous inventory's hosts in `parts` groups of about as many VMs each (fewer if fewer hosts)."""
    load = Counter(map(_where_run, since.vms))       # host names are unique only within a cluster
    groups: list[list[Moref]] = [[] for _ in range(min(parts, len(since.hosts)))]
    weights = [0] * len(groups)
    for host in sorted(since.hosts, key=lambda h: (-load[_where_run(h)], h.id)):
        lightest = weights.index(min(weights))
        groups[lightest].append(("HostSystem", host.id))
        weights[lightest] += load[_where_run(host)]
    return groups


def _where_run(record: Vm | Host) -> tuple[str | None, str | None, str | None]:
    """(datacenter, cluster, host name) of a VM record, or of a host record."""
    return record.datacenter, record.cluster, record.host if isinstance(record, Vm) else record.name


def _read_markers(reader: SoapReader, context: bytes, paths: Sequence[str], groups: list[list[Moref]]) -> MarkerPass:
    """The marker pass through the hosts' VM lists, or over a container view if a host is gone."""
    if groups:
        try:
            return read_markers(reader, context, paths, groups=groups)
        except AdapterError as exc:
            if exc.code != "ManagedObjectNotFound":
                raise
    return read_markers(reader, context, paths)


def _complete(reader: SoapReader, context: bytes, paths: Sequence[str], markers: MarkerPass,
              where: Placement) -> tuple[MarkerPass, int]:
    """The pass through the hosts, plus the VMs the hosts' and pools' lists hold that it did not see.

    Those are on a host the previous inventory did not know, or moved between hosts while the pass
    ran. One that is gone by now makes a whole pass over a container view instead.
    """
    unseen = sorted((where.host.keys() | where.pool.keys()) - set(markers.refs))
    if not unseen:
        return markers, 0
    try:
        markers.add(read_markers(reader, context, paths, objects=[(VM, ref) for ref in unseen]))
    except AdapterError as exc:
        if exc.code != "ManagedObjectNotFound":
            raise
        return read_markers(reader, context, paths), 0
    return markers, len(unseen)


def _evented_reads(reader: SoapReader, since: datetime,
                   paths: Sequence[str]) -> tuple[set[str] | None, dict[str, dict[str, Any]]]:
    """The VMs events name since `since` (None: the history may not reach back), and their full records."""
    evented = vms_with_events(reader, since)
    if not evented:
        return evented, {}
    try:
        return evented, dict(reader.read(VM, paths, [(VM, ref) for ref in sorted(evented)], convert=extract_vm))
    except AdapterError as exc:
        if exc.code != "ManagedObjectNotFound":
            raise
        return evented, {}     # one is gone: read them after the marker pass, which lists the VMs that exist


def _config_moved(before: Vm, facts: dict[str, Any]) -> bool:
    return bool((before.change_version or "").split("|", 1)[0] != facts["config_marker"])


def _marker_scan(reader: SoapReader, previous: dict[str, Vm], digests: dict[str, str], paths: VmPaths) -> VmScan:
    light = dict(reader.read(VM, paths.runtime, convert=extract_light))
    changed = [(VM, ref) for ref, facts in light.items()
               if ref not in previous or previous[ref].change_version != facts["change_version"]]
    full = dict(reader.read(VM, paths.vm, changed, convert=extract_vm)) if changed else {}
    raw = {ref: full[ref] if ref in full else {**facts, "id": previous[ref].id, "previous": previous[ref]}
           for ref, facts in light.items()}
    # the digests were taken before these reads; a VM created in between has none (parsed next time)
    return VmScan(raw, "markers", len(full), len(light), markers=digests, parsed_markers=len(light))


# --- events -------------------------------------------------------------------------------------------

def _parse_time(text: str | None) -> datetime | None:
    """An xsd:dateTime (vcsim writes nanoseconds) as an aware datetime."""
    match = _TIME.match((text or "").strip())
    if match is None:
        return None
    zone = match["zone"] or "+00:00"
    value = datetime.fromisoformat(match["base"] + (match["frac"] or "")[:7] + ("+00:00" if zone == "Z" else zone))
    return value.astimezone(UTC)


def _xml_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _events(reader: SoapReader, filter_xml: str) -> Iterator[list[tuple[datetime | None, bytes]]]:
    """Pages of events matching `filter_xml`, oldest first, through a history collector: (created, raw
    event) each, cut from the response bytes (an lxml walk over 1,000 events' elements costs ~10 ms)."""
    created = reader.call("CreateCollectorForEvents", reader.event_manager, f"<filter>{filter_xml}</filter>",
                          idempotent=False)
    collector: Moref = ("EventHistoryCollector", created.findtext(f"{_NS}returnval") or "")
    try:
        reader.call("RewindCollector", collector, "")
        while True:
            raw = reader.call_bytes("ReadNextEvents", collector, f"<maxCount>{_PAGE}</maxCount>", idempotent=False)
            page = [(_event_time(event), event) for event in raw.split(_EVENT)[1:]]
            if not page:
                return
            yield page
    finally:
        reader.call("DestroyCollector", collector, "")


def _event_time(event: bytes) -> datetime | None:
    found = _CREATED.search(event)
    return _parse_time(found[1].decode()) if found else None


def _vms_named(event: bytes) -> Iterator[str]:
    """Morefs of the VMs an event names (elements with type="VirtualMachine": vm, entity, arguments...)."""
    for ref in _VM_REF.findall(event):
        yield unescape(ref.decode()) if b"&" in ref else ref.decode()


def vms_with_events(reader: SoapReader, since: datetime) -> set[str] | None:
    """Morefs of the VMs any event since `since` names; None if the event history may not reach back to it.

    The history is complete back to `since` when it still holds an event from at or before `since`
    (the previous scan's own login is one): history is dropped oldest first. vcsim ignores the
    filter's time range, so times are also checked here.
    """
    begin = since - EVENT_MARGIN
    window = f"<time><beginTime>{_xml_time(begin)}</beginTime></time>"
    changed: set[str] = set()
    reaches_back = False
    seen = 0
    for page in _events(reader, f"{window}<maxCount>{_PAGE}</maxCount>"):
        seen += len(page)
        if seen > _MAX_EVENTS:
            return None
        for created, event in page:
            if created is None:
                continue
            reaches_back = reaches_back or created <= since
            if created >= begin:
                changed.update(_vms_named(event))
    if not reaches_back:
        reaches_back = _history_reaches(reader, since)
    return changed if reaches_back else None


def _history_reaches(reader: SoapReader, since: datetime) -> bool:
    """Whether the event history holds any event from at or before `since` (looked for in the hour before)."""
    window = (f"<time><beginTime>{_xml_time(since - timedelta(hours=1))}</beginTime>"
              f"<endTime>{_xml_time(since)}</endTime></time>")
    for page in _events(reader, f"{window}<maxCount>{_PAGE}</maxCount>"):
        if any(created is not None and created <= since for created, _ in page):
            return True
    return False
