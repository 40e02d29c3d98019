"""Utilisation from the performance history: the interval chosen, both QueryPerf layouts, quickStats instants."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from adapters.vcenter.utilisation import MAX_QUERY_METRICS, _averages, parse_perf, perf_query, quick_stats, read_history
from migrate.core.errors import AdapterError
from migrate.core.models.inventory import Inventory, Utilisation

COUNTERS = {2: "cpu.usage.average", 6: "cpu.usagemhz.average", 24: "mem.usage.average", 33: "mem.active.average"}
ENVELOPE = (b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            b'<soapenv:Body><QueryPerfResponse xmlns="urn:vim25">%s</QueryPerfResponse></soapenv:Body>'
            b"</soapenv:Envelope>")


def _series(counter: int, values: Sequence[int]) -> bytes:
    return (b'<value xsi:type="PerfMetricIntSeries"><id><counterId>%d</counterId><instance></instance></id>' % counter
            + b"".join(b"<value>%d</value>" % v for v in values) + b"</value>")


def _csv(counter: int, values: Sequence[int]) -> bytes:
    return (b'<value xsi:type="PerfMetricSeriesCSV"><id><counterId>%d</counterId><instance></instance></id>' % counter
            + b"<value>" + b",".join(b"%d" % v for v in values) + b"</value></value>")


def test_parse_perf_reads_both_layouts_and_drops_missing_samples() -> None:
    """PerfEntityMetric (a <value> per sample) and PerfEntityMetricCSV give the same series; -1 is no sample."""
    normal = (b'<returnval xsi:type="PerfEntityMetric"><entity type="VirtualMachine">vm-1</entity>'
              b"<sampleInfo><timestamp>2024-01-01T00:05:00Z</timestamp><interval>300</interval></sampleInfo>"
              + _series(2, [500, -1, 700]) + _series(33, [1024, 2048]) + _series(99, [1]) + b"</returnval>")
    csv = (b'<returnval xsi:type="PerfEntityMetricCSV"><entity type="VirtualMachine">vm-&amp;2</entity>'
           b"<sampleInfoCSV>300,2024-01-01T00:05:00Z,300,2024-01-01T00:10:00Z</sampleInfoCSV>"
           + _csv(2, [500, -1, 700]) + _csv(33, [1024, 2048]) + b"</returnval>")
    parsed = parse_perf(ENVELOPE % (normal + csv), COUNTERS)
    expected = {"cpu.usage.average": [500, 700], "mem.active.average": [1024, 2048]}
    assert parsed == {"vm-1": expected, "vm-&2": expected}
    usage = _averages(parsed["vm-1"], 3600, 300)
    assert usage == Utilisation(window_seconds=3600, interval_seconds=300, samples=2, basis="history",
                                cpu_usage_percent=6.0, memory_active_mb=1.5)
    assert _averages({"cpu.usage.average": []}, 3600, 300) is None     # no sample: no average


class FakeReader:
    """Answers SoapReader.read with canned properties per object."""

    def __init__(self, props: dict[str, dict[str, Any]]) -> None:
        self.props = props
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def read(self, obj_type: str, paths: Sequence[str], objects: Iterable[tuple[str, str]] | None = None,
             ) -> list[tuple[str, dict[str, Any]]]:
        self.asked.append((obj_type, tuple(paths)))
        return [(ref, self.props[ref]) for _, ref in objects or ()]


def _manager(intervals: list[dict[str, Any]]) -> FakeReader:
    counters = [{"key": str(key), "groupInfo": {"key": name.split(".")[0]}, "nameInfo": {"key": name.split(".")[1]},
                 "rollupType": "average", "level": "2" if key == 33 else "1"} for key, name in COUNTERS.items()]
    return FakeReader({"PerfMgr": {"perfCounter": counters, "historicalInterval": intervals}})


@pytest.mark.parametrize(("window", "interval", "samples"), [
    (3600, 300, 12),       # an hour: twelve 5-minute rollups, not 180 real-time samples
    (600, 300, 2),
    (120, 20, 6),          # shorter than the finest rollup: real time
    (7 * 86400, 1800, 336),
    (400 * 86400, 86400, 400),   # longer than any interval keeps: the coarsest
])
def test_perf_query_picks_the_finest_rollup_that_fits_the_window(window: int, interval: int, samples: int) -> None:
    """With no intervals listed (vcsim) the vSphere defaults apply, every counter asked."""
    query = perf_query(_manager([]), "PerfMgr", window)  # type: ignore[arg-type]
    assert (query.interval, query.samples, query.level) == (interval, samples, None)
    assert query.counters == COUNTERS


def test_perf_query_leaves_out_counters_above_the_collection_level() -> None:
    """At statistics level 1, mem.active (level 2) has no history: not asked; a disabled interval is skipped."""
    intervals = [{"samplingPeriod": "300", "length": "86400", "level": "1", "enabled": "false"},
                 {"samplingPeriod": "1800", "length": "604800", "level": "1", "enabled": "true"},
                 {"samplingPeriod": "7200", "length": "2592000", "level": "2", "enabled": "true"}]
    query = perf_query(_manager(intervals), "PerfMgr", 3600)  # type: ignore[arg-type]
    assert (query.interval, query.samples, query.level) == (1800, 2, 1)
    assert set(query.counters.values()) == set(COUNTERS.values()) - {"mem.active.average"}
    query = perf_query(_manager(intervals), "PerfMgr", 7200)  # type: ignore[arg-type]
    assert (query.interval, query.level) == (1800, 1)
    assert perf_query(_manager(intervals), "PerfMgr", 86400 * 10).counters == COUNTERS  # type: ignore[arg-type]


class CappedPerfManager(FakeReader):
    """A vCenter that refuses historical queries of more than MAX_QUERY_METRICS metrics, as vCenter does."""

    def __init__(self) -> None:
        super().__init__(_manager([]).props)
        self.queries: list[int] = []

    def call_bytes(self, method: str, this: tuple[str, str], inner: str) -> bytes:
        refs = re.findall(r'<entity type="VirtualMachine">([^<]*)</entity>', inner)
        self.queries.append(len(refs))
        if len(refs) * len(COUNTERS) > MAX_QUERY_METRICS:
            raise AdapterError("vcenter", method, "InvalidArgument: querySpec.size", code="InvalidArgument")
        assert "<intervalId>300</intervalId>" in inner and "<maxSample>12</maxSample>" in inner
        return ENVELOPE % b"".join(b'<returnval><entity type="VirtualMachine">%s</entity>%s</returnval>'
                                   % (ref.encode(), _csv(2, [100 * int(ref[3:])])) for ref in refs)


def test_read_history_asks_again_within_the_metrics_cap() -> None:
    """A chunk the vCenter refuses for its size (InvalidArgument) is asked again in pieces of 64 metrics, and
    the chunks after it are split at once (one refusal, not one per chunk)."""
    reader = CappedPerfManager()
    refs = [f"vm-{i}" for i in range(1, 41)]
    usage = read_history(reader, "PerfMgr", refs, chunk=20, workers=1)  # type: ignore[arg-type]
    assert sorted(usage) == sorted(refs)
    assert usage["vm-7"].cpu_usage_percent == 7.0 and usage["vm-7"].samples == 1
    assert reader.queries == [20, 16, 4, 16, 4]


def test_quick_stats_are_stated_as_one_instant_reading() -> None:
    """quickStats give basis quickstats, window 0, one sample, no interval; no figures, no record."""
    reader = FakeReader({"vm-1": {"summary.quickStats": {"overallCpuUsage": 850, "guestMemoryUsage": 2048}},
                         "vm-2": {"summary.quickStats": {"guestHeartbeatStatus": "gray"}}})
    usage = quick_stats(reader, ["vm-1", "vm-2"])  # type: ignore[arg-type]
    assert usage == {"vm-1": Utilisation(window_seconds=0, samples=1, interval_seconds=None, basis="quickstats",
                                         cpu_usage_mhz=850.0, memory_active_mb=2048.0)}
    assert reader.asked == [("VirtualMachine", ("summary.quickStats",))]


def test_inventories_without_the_new_fields_still_load() -> None:
    """An inventory written before interval_seconds and basis loads, as history of an unstated interval."""
    old = {"provenance": {"source": "vc", "kind": "vcenter", "collected_at": "2024-01-01T00:00:00Z"},
           "vms": [{"id": "a", "name": "a", "utilisation": {"window_seconds": 3600, "samples": 180,
                                                            "cpu_usage_percent": 5.0}}]}
    usage = Inventory.model_validate(old).vms[0].utilisation
    assert usage is not None and (usage.basis, usage.interval_seconds, usage.samples) == ("history", None, 180)
