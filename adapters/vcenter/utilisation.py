"""CPU and memory averages per VM from the PerformanceManager (QueryPerf over raw SOAP, in chunks).

The interval: the finest *historical* interval (a rollup the vCenter keeps in its database: 300 s
for a day, 1800 s a week, ...) whose samples fit in the window, so one hour is 12 five-minute
averages rather than 180 real-time (20 s) samples that the vCenter fetches from every host. Their
mean is the same average over the same hour (each rollup is the average of its 20 s samples); on
10,000 VMs it is 15 times fewer values to send and parse (vcsim: 0.7 s -> 0.06 s per 500 VMs). A
window shorter than the finest historical interval is read in real time. A counter whose
statistics level is above the level the vCenter collects at that interval (PerformanceManager
.historicalInterval; mem.active is level 2, the default level is 1) has no history: it is not
asked for, and its figure stays unset. A server that lists no intervals (vcsim) is asked every counter
at the vSphere default intervals. The response is asked as CSV (PerfEntityMetricCSV, a fraction of
the bytes; vcsim ignores it and sends PerfMetricIntSeries) and cut with regular expressions, not
parsed into a tree: both layouts are read. vCenter caps the metrics of one historical query
(vpxd.stats.maxQueryMetrics, default 64): a chunk it refuses is asked again in pieces under the cap.

A powered-on VM for which the history holds no sample (powered on since the last rollup, statistics
not collected) gets an instant figure from summary.quickStats, marked `basis="quickstats"`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, unescape

from adapters.vcenter.soap_reader import SoapReader, as_list
from migrate.core.errors import AdapterError
from migrate.core.models.inventory import Utilisation

__all__ = ["COUNTERS", "DEFAULT_INTERVALS", "MAX_QUERY_METRICS", "REAL_TIME", "PerfQuery", "parse_perf", "perf_query",
           "quick_stats", "read_history"]

COUNTERS = ("cpu.usage.average", "cpu.usagemhz.average", "mem.usage.average", "mem.active.average")
REAL_TIME = 20                # seconds between real-time samples (kept an hour, on the hosts)
# vSphere's default historical intervals: (sampling period, how long kept, statistics level)
DEFAULT_INTERVALS = ((300, 86400, None), (1800, 7 * 86400, None), (7200, 31 * 86400, None),
                     (86400, 366 * 86400, None))
QUICK_STATS = "summary.quickStats"
MAX_QUERY_METRICS = 64        # vCenter's default cap on VMs x counters of one historical query
_ENTITY = re.compile(rb"<entity\b[^>]*>([^<]*)</entity>")
_COUNTER = re.compile(rb"<counterId>\s*(\d+)\s*</counterId>")
_VALUES = re.compile(rb"<value>([-0-9,\s]*)</value>")
_ID = b"<id>"
_RETURNVAL = b"<returnval"


@dataclass(frozen=True)
class PerfQuery:
    """What is asked of QueryPerf: the interval, samples per VM, and the counters (key -> name)."""

    interval: int
    samples: int
    counters: dict[int, str]
    level: int | None        # statistics level the vCenter collects at that interval (None: not said)


def _intervals(listed: list[dict[str, Any]]) -> list[tuple[int, int, int | None]]:
    enabled = [(int(i["samplingPeriod"]), int(i["length"]), int(i["level"]) if i.get("level") is not None else None)
               for i in listed if str(i.get("enabled", "true")).lower() != "false"]
    return sorted(enabled) if enabled else list(DEFAULT_INTERVALS)


def perf_query(reader: SoapReader, manager: str, window_s: int) -> PerfQuery:
    """The interval, sample count and counters to ask for the averages over the last `window_s` seconds
    (the counters' and the intervals' definitions read from the PerformanceManager `manager`)."""
    [(_, props)] = reader.read("PerformanceManager", ("perfCounter", "historicalInterval"),
                               [("PerformanceManager", manager)])
    levels: dict[int, int | None] = {}
    names: dict[int, str] = {}
    for counter in as_list(props.get("perfCounter")):
        name = f"{counter['groupInfo']['key']}.{counter['nameInfo']['key']}.{counter['rollupType']}"
        if name in COUNTERS:
            names[int(counter["key"])] = name
            levels[int(counter["key"])] = int(counter["level"]) if counter.get("level") is not None else None
    intervals = _intervals(as_list(props.get("historicalInterval")))
    chosen = next(((period, level) for period, length, level in intervals if period <= window_s <= length), None)
    if chosen is None and window_s <= 3600:   # shorter than any rollup: the real-time samples (an hour)
        chosen = (REAL_TIME, None)
    if chosen is None:                        # longer than any interval keeps: the coarsest one
        chosen = max((period, level) for period, _, level in intervals)
    interval, level = chosen
    counters = {key: name for key, name in names.items()
                if level is None or levels[key] is None or (levels[key] or 0) <= level}
    return PerfQuery(interval, max(1, window_s // interval), counters, level)


def parse_perf(body: bytes, counters: dict[int, str]) -> dict[str, dict[str, list[int]]]:
    """moref -> counter name -> its samples (none of the -1 "no data" ones), from a QueryPerf response.

    Reads PerfEntityMetric (a <value> per sample) and PerfEntityMetricCSV (one comma-separated <value>).
    """
    out: dict[str, dict[str, list[int]]] = {}
    for piece in body.split(_RETURNVAL)[1:]:
        entity = _ENTITY.search(piece)
        if entity is None:
            continue
        ref = entity[1].decode()
        series: dict[str, list[int]] = {}
        for part in piece.split(_ID)[1:]:      # one metric series each: <id><counterId>..</id><value>..
            counter = _COUNTER.match(part)
            name = counters.get(int(counter[1])) if counter else None
            if name is None:
                continue
            values = [int(v) for text in _VALUES.findall(part) for v in text.split(b",") if v.strip()]
            series[name] = [v for v in values if v >= 0]
        out[unescape(ref) if "&" in ref else ref] = series
    return out


def read_history(reader: SoapReader, manager: str, vm_refs: Sequence[str], *, window_s: int = 3600,
                 chunk: int = 1000, workers: int = 2) -> dict[str, Utilisation]:
    """moref -> averages of the performance history over the last `window_s` seconds (VMs with samples only)."""
    query = perf_query(reader, manager, window_s)
    if not query.counters or not vm_refs:
        return {}
    metric_ids = "".join(f"<metricId><counterId>{key}</counterId><instance></instance></metricId>"
                         for key in query.counters)
    this = ("PerformanceManager", manager)
    per_query = max(1, MAX_QUERY_METRICS // len(query.counters))
    capped = threading.Event()      # the vCenter refused a chunk over its cap: split the others at once

    def split(part: Sequence[str]) -> dict[str, Utilisation]:
        out: dict[str, Utilisation] = {}
        for start in range(0, len(part), per_query):
            out.update(fetch(part[start:start + per_query]))
        return out

    def fetch(part: Sequence[str]) -> dict[str, Utilisation]:
        if capped.is_set() and len(part) > per_query:
            return split(part)
        specs = "".join(f'<querySpec><entity type="VirtualMachine">{escape(ref)}</entity>'
                        f"<maxSample>{query.samples}</maxSample>{metric_ids}"
                        f"<intervalId>{query.interval}</intervalId><format>csv</format></querySpec>"
                        for ref in part)
        try:
            body = reader.call_bytes("QueryPerf", this, specs)
        except AdapterError as exc:
            # vCenter caps the metrics of one historical query (vpxd.stats.maxQueryMetrics, 64 by default):
            # InvalidArgument (querySpec.size). Ask again within the cap.
            if exc.code != "InvalidArgument" or query.interval == REAL_TIME or len(part) <= per_query:
                raise
            capped.set()
            return split(part)
        return {ref: usage for ref, series in parse_perf(body, query.counters).items()
                if (usage := _averages(series, window_s, query.interval)) is not None}

    result: dict[str, Utilisation] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(fetch, [vm_refs[i:i + chunk] for i in range(0, len(vm_refs), chunk)]):
            result.update(part)
    return result


def _averages(series: dict[str, list[int]], window_s: int, interval: int) -> Utilisation | None:
    averages = {name: sum(values) / len(values) for name, values in series.items() if values}
    if not averages:
        return None

    def pct(name: str) -> float | None:   # percent counters are in hundredths of a percent
        return round(averages[name] / 100, 2) if name in averages else None

    return Utilisation(
        window_seconds=window_s, interval_seconds=interval, basis="history",
        samples=max(len(values) for values in series.values()),
        cpu_usage_mhz=round(averages["cpu.usagemhz.average"], 1) if "cpu.usagemhz.average" in averages else None,
        cpu_usage_percent=pct("cpu.usage.average"),
        memory_active_mb=round(averages["mem.active.average"] / 1024, 1) if "mem.active.average" in averages else None,
        memory_usage_percent=pct("mem.usage.average"))


def quick_stats(reader: SoapReader, vm_refs: Sequence[str]) -> dict[str, Utilisation]:
    """moref -> the instant figures of summary.quickStats (overallCpuUsage MHz, guestMemoryUsage MB: the
    active memory), stated as one instant reading (`basis="quickstats"`, window 0, one sample)."""
    out: dict[str, Utilisation] = {}
    for ref, props in reader.read("VirtualMachine", (QUICK_STATS,), [("VirtualMachine", ref) for ref in vm_refs]):
        stats = props.get(QUICK_STATS) or {}
        cpu, memory = _figure(stats.get("overallCpuUsage")), _figure(stats.get("guestMemoryUsage"))
        if cpu is not None or memory is not None:    # vcsim sends neither: no record rather than an empty one
            out[ref] = Utilisation(window_seconds=0, interval_seconds=None, samples=1, basis="quickstats",
                                   cpu_usage_mhz=cpu, memory_active_mb=memory)
    return out


def _figure(value: Any) -> float | None:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
