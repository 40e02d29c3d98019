"""CPU and memory averages per VM from the PerformanceManager (QueryPerf over raw SOAP, in chunks)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.soap_reader import SoapReader, as_list, to_value
from migrate.core.models.inventory import Utilisation

__all__ = ["COUNTERS", "read_utilisation"]

COUNTERS = ("cpu.usage.average", "cpu.usagemhz.average", "mem.usage.average", "mem.active.average")
_NS = "{urn:vim25}"


def _interval(window_s: int) -> int:
    """The finest statistics interval that covers `window_s` (20 s real-time, then the rollups)."""
    for interval, span in ((20, 3600), (300, 86400), (1800, 7 * 86400), (7200, 31 * 86400)):
        if window_s <= span:
            return interval
    return 86400


def read_utilisation(vc: VCenterSession, reader: SoapReader, vm_refs: Iterable[str], *, window_s: int = 3600,
                     chunk: int = 500, workers: int = 3) -> dict[str, Utilisation]:
    """moref -> averages over the last `window_s` seconds, for the given (powered-on) VMs."""
    manager = vc.si.content.perfManager
    keys = {}
    for counter in manager.perfCounter:
        name = f"{counter.groupInfo.key}.{counter.nameInfo.key}.{counter.rollupType}"
        if name in COUNTERS:
            keys[counter.key] = name
    refs = list(vm_refs)
    if not keys or not refs:
        return {}
    interval = _interval(window_s)
    samples = max(1, window_s // interval)
    metric_ids = "".join(f"<metricId><counterId>{k}</counterId><instance></instance></metricId>" for k in keys)
    this = ("PerformanceManager", manager._moId)

    def query(part: list[str]) -> dict[str, Utilisation]:
        specs = "".join(f'<querySpec><entity type="VirtualMachine">{ref}</entity><maxSample>{samples}</maxSample>'
                        f"{metric_ids}<intervalId>{interval}</intervalId></querySpec>" for ref in part)
        response = reader.call("QueryPerf", this, specs)
        out = {}
        for metric in response.iterfind(_NS + "returnval"):
            entity = metric.findtext(_NS + "entity") or ""
            averages: dict[str, float] = {}
            count = 0
            for series in metric.iterfind(_NS + "value"):
                data = to_value(series)
                values = [int(v) for v in as_list(data.get("value")) if int(v) >= 0]
                name = keys.get(int((data.get("id") or {}).get("counterId", -1)))
                if name and values:
                    averages[name] = sum(values) / len(values)
                    count = max(count, len(values))
            out[entity] = _utilisation(averages, window_s, count)
        return out

    chunks = [refs[i:i + chunk] for i in range(0, len(refs), chunk)]
    result: dict[str, Utilisation] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(query, chunks):
            result.update(part)
    return result


def _utilisation(averages: dict[str, Any], window_s: int, samples: int) -> Utilisation:
    def pct(name: str) -> float | None:   # percent counters are in hundredths of a percent
        return round(averages[name] / 100, 2) if name in averages else None

    return Utilisation(
        window_seconds=window_s, samples=samples,
        cpu_usage_mhz=round(averages["cpu.usagemhz.average"], 1) if "cpu.usagemhz.average" in averages else None,
        cpu_usage_percent=pct("cpu.usage.average"),
        memory_active_mb=round(averages["mem.active.average"] / 1024, 1) if "mem.active.average" in averages else None,
        memory_usage_percent=pct("mem.usage.average"))
