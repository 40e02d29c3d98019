"""Observed traffic (flows.csv): parse every row strictly, then resolve its endpoints to VMs.

The file has a header row. `src` and `dst` are required; `dst_port`, `protocol`, `bytes` and
`connections` are optional, other columns are ignored. An endpoint is a VM id (instanceUuid), an
exact VM name, a guest IP address or, last, a guest host name. Bad rows are bad input: every one is
listed (row numbers count lines of the file, the header is row 1). Endpoints that match no VM, or
more than one, are not errors: they are collected and reported with their row and byte counts.

Weight unit: a flow row weighs its bytes in MiB (bytes / 2**20). A row without a byte count falls
back to its connections at 256 KiB each, and a row with neither weighs 1 MiB (it proves that the two
VMs talk, not how much).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from migrate.core.errors import InputError, Problem
from migrate.core.fileio import read_input_text
from migrate.core.models.inventory import Inventory

__all__ = [
    "BARE_ROW_WEIGHT",
    "CONNECTION_WEIGHT",
    "FLOW_WEIGHT_UNIT",
    "MAX_FLOW_BYTES",
    "MAX_FLOW_CONNECTIONS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "EndpointIndex",
    "EndpointReport",
    "FlowEdge",
    "FlowResolution",
    "FlowRow",
    "FlowTable",
    "Resolved",
    "load_flows",
    "parse_flows",
    "resolve_flows",
    "row_weight",
]

REQUIRED_COLUMNS = ("src", "dst")
OPTIONAL_COLUMNS = ("dst_port", "protocol", "bytes", "connections")
FLOW_WEIGHT_UNIT = 2**20        # weight 1.0 == 1 MiB of observed traffic
CONNECTION_WEIGHT = 0.25        # a connection without a byte count counts as 256 KiB
BARE_ROW_WEIGHT = 1.0           # a row with neither bytes nor connections counts as 1 MiB
MAX_FLOW_BYTES = 2**60          # one row: at most 1 EiB observed
MAX_FLOW_CONNECTIONS = 2**40    # one row: at most about 10^12 connections
_LIMITS = {"dst_port": 65535, "bytes": MAX_FLOW_BYTES, "connections": MAX_FLOW_CONNECTIONS}


@dataclass(frozen=True)
class FlowRow:
    """One valid row of flows.csv; `row` is its line number in the file (header = 1)."""

    src: str
    dst: str
    dst_port: int | None = None
    protocol: str | None = None
    bytes: int | None = None
    connections: int | None = None
    row: int = 0


@dataclass(frozen=True)
class FlowTable:
    """All rows of one flows file, every one of them valid."""

    file: str
    rows: tuple[FlowRow, ...]


def row_weight(row: FlowRow) -> float:
    """The soft weight one row adds to its edge (MiB; see the module docstring for the fallbacks)."""
    if row.bytes is not None:
        return row.bytes / FLOW_WEIGHT_UNIT
    if row.connections is not None:
        return row.connections * CONNECTION_WEIGHT
    return BARE_ROW_WEIGHT


def load_flows(path: str | Path) -> FlowTable:
    """Read and validate flows.csv; InputError lists every bad row."""
    path = Path(path)
    return parse_flows(read_input_text(path, encoding="utf-8-sig"), str(path))


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for record in reader:
        yield start, record
        start = reader.line_num + 1


def _number(value: str, *, whole: bool, limit: int) -> int:
    """A count from 0 to `limit`; raises ValueError with a message for a person."""
    shown = value if len(value) <= 40 else f"{value[:40]}... ({len(value)} characters)"
    if value.isdecimal() and value.isascii():
        digits = value.lstrip("0") or "0"
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise ValueError(f"more than {limit}: {shown!r}")
        return int(digits)         # exact
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"not a number: {shown!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {shown!r}")
    if number < 0:
        raise ValueError(f"must not be negative: {shown!r}")
    if whole and not number.is_integer():
        raise ValueError(f"not a whole number: {shown!r}")
    if number > limit:
        raise ValueError(f"more than {limit}: {shown!r}")
    return round(number)


def parse_flows(text: str, file: str = "flows.csv") -> FlowTable:
    """Validate flows CSV text (header row first); InputError lists every bad row at once."""
    records = _records(text)
    problems: list[Problem] = []
    header: list[str] | None = None
    header_line = line = 1
    try:
        for line, record in records:
            if record and any(cell.strip() for cell in record):
                header = [cell.strip().lower() for cell in record]
                header_line = line
                break
    except csv.Error as exc:
        raise InputError.single(file, "row 1", f"not valid CSV: {exc}") from None
    if header is None:
        raise InputError.single(file, "row 1", "empty file: expected a header row with columns src,dst")
    for name in REQUIRED_COLUMNS:
        if name not in header:
            problems.append(Problem(file, f"row {header_line}, column {name}",
                                    "required column is missing from the header"))
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    problems.extend(Problem(file, f"row {header_line}, column {name}", "column appears more than once")
                    for name in duplicates)
    if problems:
        raise InputError(problems)

    rows: list[FlowRow] = []
    try:
        for line, record in records:
            if not record or not any(cell.strip() for cell in record):
                continue   # blank line
            if len(record) != len(header):
                problems.append(Problem(file, f"row {line}",
                                        f"expected {len(header)} columns, found {len(record)}"))
                continue
            cells = {name: cell.strip() for name, cell in zip(header, record, strict=True)}
            row, row_problems = _parse_row(cells, line, file)
            problems.extend(row_problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        problems.append(Problem(file, f"row {line + 1}", f"not valid CSV: {exc}"))
    if problems:
        raise InputError(problems)
    return FlowTable(file=file, rows=tuple(rows))


def _parse_row(cells: dict[str, str], line: int, file: str) -> tuple[FlowRow | None, list[Problem]]:
    problems = [Problem(file, f"row {line}, column {name}", "required value is missing")
                for name in REQUIRED_COLUMNS if not cells[name]]
    numbers: dict[str, int | None] = {}
    for name in ("dst_port", "bytes", "connections"):
        value = cells.get(name, "")
        numbers[name] = None
        if not value:
            continue
        try:
            numbers[name] = _number(value, whole=name != "bytes", limit=_LIMITS[name])
        except ValueError as exc:
            message = f"not a port number ({exc})" if name == "dst_port" else str(exc)
            problems.append(Problem(file, f"row {line}, column {name}", message))
    if problems:
        return None, problems
    return FlowRow(src=cells["src"], dst=cells["dst"], dst_port=numbers["dst_port"],
                   protocol=cells.get("protocol") or None, bytes=numbers["bytes"],
                   connections=numbers["connections"], row=line), []


def _ip_key(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%")[0])
    except ValueError:
        return None
    return str(address)


@dataclass(frozen=True)
class Resolved:
    """What an endpoint names: one VM id, several (ambiguous), or none (unknown)."""

    vm: str | None
    candidates: tuple[str, ...] = ()
    by: str = ""            # id, name, ip or hostname


class EndpointIndex:
    """Looks up VMs by id, exact name, guest IP and guest host name, in that order."""

    def __init__(self, inventory: Inventory) -> None:
        self.ids = {vm.id for vm in inventory.vms}
        self.names: dict[str, list[str]] = defaultdict(list)
        self.ips: dict[str, list[str]] = defaultdict(list)
        self.hostnames: dict[str, list[str]] = defaultdict(list)
        for vm in inventory.vms:
            self.names[vm.name].append(vm.id)
            for ip in dict.fromkeys(vm.guest.ip_addresses):
                key = _ip_key(ip)
                if key is None:
                    key = ip.strip()      # not a valid address: still matches the same text in flows
                elif ipaddress.ip_address(key).is_loopback:
                    continue
                if key:
                    self.ips[key].append(vm.id)
            if vm.guest.hostname:
                self.hostnames[vm.guest.hostname.lower()].append(vm.id)

    def by_id_or_name(self, endpoint: str) -> Resolved:
        """Resolve by VM id, then exact name (as declared links do)."""
        if endpoint in self.ids:
            return Resolved(endpoint, (endpoint,), "id")
        return self._pick(self.names.get(endpoint, []), "name")

    def resolve(self, endpoint: str) -> Resolved:
        """Resolve a flow endpoint: id, exact name, guest IP, guest host name."""
        found = self.by_id_or_name(endpoint)
        if found.candidates:
            return found
        key = _ip_key(endpoint)
        found = self._pick(self.ips.get(key or endpoint, []), "ip")
        if found.candidates or key is not None:
            return found
        return self._pick(self.hostnames.get(endpoint.lower(), []), "hostname")

    @staticmethod
    def _pick(ids: list[str], by: str) -> Resolved:
        unique = tuple(dict.fromkeys(ids))
        if len(unique) == 1:
            return Resolved(unique[0], unique, by)
        return Resolved(None, unique, by if unique else "")


@dataclass
class FlowEdge:
    """Traffic between two VMs, both directions and all rows summed."""

    a: str
    b: str
    weight: float = 0.0
    bytes: int = 0
    connections: int = 0
    rows: int = 0
    services: set[str] = field(default_factory=set)
    providers: set[str] = field(default_factory=set)    # the rows' dst VMs: what the other end depends on

    def reason(self) -> str:
        """A short human description, e.g. 'flows 6.3 GiB, 27035 connections (tcp/5432)'."""
        size = self.bytes
        amount = next(f"{size / 2**p:.1f} {unit}" for p, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"),
                                                                    (10, "KiB"), (0, "B")) if size >= 2**p or p == 0)
        parts = [f"flows {amount}" if self.bytes else f"flows ({self.rows} rows)"]
        if self.connections:
            parts.append(f"{self.connections} connections")
        text = ", ".join(parts)
        if self.services:
            shown = sorted(self.services)
            text += f" ({', '.join(shown[:4])}{', ...' if len(shown) > 4 else ''})"
        return text


@dataclass
class EndpointReport:
    """A flow endpoint that names no VM (unknown) or several (ambiguous), with what it carried."""

    endpoint: str
    rows: int = 0
    bytes: int = 0
    by: str = ""
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"endpoint": self.endpoint, "rows": self.rows, "bytes": self.bytes}
        if self.candidates:
            data.update(by=self.by, candidates=list(self.candidates))
        return data


@dataclass
class FlowResolution:
    """Flows resolved against an inventory: VM-to-VM edges plus what could not be placed."""

    edges: dict[tuple[str, str], FlowEdge]
    unknown: list[EndpointReport]
    ambiguous: list[EndpointReport]
    stats: dict[str, int]


def resolve_flows(rows: Iterable[FlowRow], index: EndpointIndex) -> FlowResolution:
    """Aggregate rows into undirected VM pairs; collect unknown and ambiguous endpoints, skip self-flows."""
    edges: dict[tuple[str, str], FlowEdge] = {}
    unplaced: dict[str, EndpointReport] = {}
    stats = {"rows": 0, "used": 0, "self": 0, "unresolved": 0}
    cache: dict[str, Resolved] = {}
    for row in rows:
        stats["rows"] += 1
        ends: list[str] = []
        for endpoint in (row.src, row.dst):
            found = cache.get(endpoint)
            if found is None:
                found = cache[endpoint] = index.resolve(endpoint)
            if found.vm is not None:
                ends.append(found.vm)
                continue
            report = unplaced.get(endpoint)
            if report is None:
                report = unplaced[endpoint] = EndpointReport(endpoint, by=found.by, candidates=found.candidates)
            report.rows += 1
            report.bytes += row.bytes or 0
        if len(ends) < 2:
            stats["unresolved"] += 1
            continue
        a, b = sorted(ends)
        provider = ends[1]
        if a == b:
            stats["self"] += 1
            continue
        stats["used"] += 1
        edge = edges.get((a, b))
        if edge is None:
            edge = edges[(a, b)] = FlowEdge(a, b)
        edge.weight += row_weight(row)
        edge.bytes += row.bytes or 0
        edge.connections += row.connections or 0
        edge.rows += 1
        edge.providers.add(provider)
        if row.protocol or row.dst_port is not None:
            edge.services.add("/".join(str(p) for p in (row.protocol, row.dst_port) if p is not None))

    ordered = sorted(unplaced.values(), key=lambda r: (-r.bytes, -r.rows, r.endpoint))
    return FlowResolution(edges=edges, unknown=[r for r in ordered if not r.candidates],
                          ambiguous=[r for r in ordered if r.candidates], stats=stats)
