"""Benchmark: discovery of a bare lab of N VMs, naive pyvmomi vs one PropertyCollector pass vs ours.

Run: .venv/bin/python tests/bench/bench_discovery.py [--vms 10000] [--lab-dir DIR] [--naive-sample K]

In one process and the same run, against a `--bare` lab (reused when --lab-dir holds one with the
same settings, else started and stopped here), it measures:
  (a) a naive per-attribute pyvmomi loop over the VMs of a ContainerView (every attribute is a round
      trip; with --naive-sample K only K VMs are timed and the time is extrapolated linearly),
  (b) one plain pyvmomi RetrievePropertiesEx pass over a ContainerView (pyvmomi builds typed objects),
  (c) our SoapReader read of the same paths, and the whole discover_vcenter end-to-end, with
      utilisation off (--no-utilisation) and on (the default: the performance history too), in
      alternate runs, and the ratio of the two,
  (d) an incremental re-scan after changing 1% of the VMs, checked against a fresh full scan,
then prints a table of seconds, VMs/s and ratios next to the goals. Not part of the test suite.
It CHANGES VMs of the lab (memory, power state, names): a reused lab stays changed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import vim

from adapters.vcenter.collector import read_view, wait_for_task
from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.discovery import DiscoveryStats, custom_fields, discover_vcenter
from adapters.vcenter.settings import VCenterEndpoint
from adapters.vcenter.soap_reader import SoapEndpoint, SoapReader
from adapters.vcenter.vm_extract import VmPaths, extract_vm
from migrate.config import load_site_config
from migrate.core.log import configure_logging
from migrate.core.models.inventory import Inventory
from migrate.lab.manager import lab_down, lab_status, lab_up

GOAL_SECONDS = 6.0
GOAL_VS_NAIVE = 20.0
GOAL_VS_PYVMOMI = 3.0
GOAL_INCREMENTAL = 0.10
GOAL_UTILISATION = 1.5          # discovery with utilisation (the default) / without, at most
_CONNECTION_ERRORS = (http.client.HTTPException, ConnectionError, TimeoutError)


@dataclass
class Timing:
    """Seconds of one method over its runs."""

    runs: list[float]
    extrapolated: bool = False

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


@dataclass
class NaiveResult:
    timing: Timing
    timed_vms: int
    accesses: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    drops: int = 0
    reconnects: int = 0


def say(text: str = "") -> None:
    print(text, flush=True)


def walk(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


# --- (a) naive per-attribute pyvmomi ----------------------------------------------------------------

def naive(endpoint: VCenterEndpoint, total: int, sample: int, paths: tuple[str, ...]) -> NaiveResult:
    """Read `paths` of every VM (or of `sample` evenly spread VMs) through pyvmomi attribute access."""
    vc = connect(endpoint)
    try:
        started = time.perf_counter()
        content = vc.si.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = list(view.view)
        view_seconds = time.perf_counter() - started
        picked = vms if not sample or sample >= len(vms) else vms[:: len(vms) // sample][:sample]
        result = NaiveResult(Timing([0.0]), timed_vms=len(picked))
        stub, original = vc.si._stub, vc.si._stub
        streak = 0
        started = time.perf_counter()
        for vm in picked:
            current = vm if stub is original else vim.VirtualMachine(vm._moId, stub)
            for path in paths:
                result.accesses += 1
                try:
                    walk(current, path)
                    streak = 0
                    continue
                except Exception as exc:  # unset properties drop the connection in vcsim: count and go on
                    result.failures[path] += 1
                    result.errors[type(exc).__name__] += 1
                    result.drops += isinstance(exc, _CONNECTION_ERRORS)
                    streak += 1
                if streak >= 3 and not _alive(vc):
                    vc.close()
                    vc = connect(endpoint)
                    stub = vc.si._stub
                    current = vim.VirtualMachine(vm._moId, stub)
                    result.reconnects += 1
                    streak = 0
        loop_seconds = time.perf_counter() - started
        with contextlib.suppress(Exception):
            view.DestroyView()
    finally:
        vc.close()
    scale = total / len(picked) if picked else 1.0
    result.timing = Timing([view_seconds + loop_seconds * scale], extrapolated=len(picked) < total)
    return result


def _alive(vc: VCenterSession) -> bool:
    try:
        vc.si.CurrentTime()
    except Exception:
        return False
    return True


# --- (b) one plain pyvmomi PropertyCollector pass ---------------------------------------------------

def pyvmomi_pass(vc: VCenterSession, paths: tuple[str, ...]) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    for _obj, props in read_view(vc.si, vim.VirtualMachine, paths):
        count += len(props) > 0
    return time.perf_counter() - started, count


# --- (c) ours ---------------------------------------------------------------------------------------

def soap_reader_pass(vc: VCenterSession, paths: tuple[str, ...]) -> tuple[float, int]:
    started = time.perf_counter()
    reader = SoapReader(SoapEndpoint.of(vc))
    try:
        records = reader.read("VirtualMachine", paths, convert=extract_vm)
    finally:
        reader.close()
    return time.perf_counter() - started, len(records)


def timed_discovery(endpoint: VCenterEndpoint, since: Inventory | None = None, *,
                    utilisation: bool = False) -> tuple[float, Inventory, DiscoveryStats]:
    started = time.perf_counter()
    inventory, stats = discover_vcenter(endpoint, since=since, utilisation=utilisation)
    return time.perf_counter() - started, inventory, stats


def phases(stats: DiscoveryStats) -> str:
    return "  ".join(f"{name} {seconds:.2f}" for name, seconds in stats.seconds.items())


# --- (d) changes ------------------------------------------------------------------------------------

def change_vms(vc: VCenterSession, inventory: Inventory, percent: float, seed: int) -> Counter[str]:
    """Change `percent` of the VMs: a third memory, a third power state, a third name."""
    vms = sorted((vm for vm in inventory.vms if vm.moref), key=lambda v: v.moref or "")
    count = max(1, round(len(vms) * percent / 100))
    chosen = random.Random(seed).sample(vms, min(count, len(vms)))
    done: Counter[str] = Counter()
    stamp = int(time.time()) % 100_000
    for index, record in enumerate(chosen):
        vm = vim.VirtualMachine(record.moref, vc.si._stub)
        kind = ("memory", "power", "rename")[index % 3]
        if kind == "memory":
            memory = record.memory_mb * 2 if record.memory_mb <= 65536 else record.memory_mb // 2
            task = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(memoryMB=memory))
            op = "memory"
        elif kind == "power" and record.power_state == "poweredOn":
            task, op = vm.PowerOffVM_Task(), "power off"
        elif kind == "power":
            task, op = vm.PowerOnVM_Task(), "power on"
        else:
            task, op = vm.Rename_Task(newName=f"{record.name.split('-bench')[0]}-bench{stamp}"), "rename"
        wait_for_task(vc.si, task, op)
        done[op] += 1
    return done


def compare(incremental: Inventory, fresh: Inventory) -> tuple[int, list[str]]:
    """Number of VMs that differ (by moref, utilisation excluded) and a few examples."""
    def by_ref(inventory: Inventory) -> dict[str, dict[str, Any]]:
        return {vm.moref or vm.id: vm.model_dump(exclude={"utilisation"}) for vm in inventory.vms}

    left, right = by_ref(incremental), by_ref(fresh)
    differing = 0
    examples: list[str] = []
    for ref in sorted(left.keys() | right.keys()):
        a, b = left.get(ref), right.get(ref)
        if a == b:
            continue
        differing += 1
        if len(examples) < 5:
            if a is None or b is None:
                examples.append(f"{ref}: only in the {'fresh' if a is None else 'incremental'} scan")
            else:
                fields = [key for key in a.keys() | b.keys() if a.get(key) != b.get(key)]
                examples.append(f"{ref}: " + ", ".join(f"{k} {a.get(k)!r} != {b.get(k)!r}" for k in sorted(fields)))
    return differing, examples


# --- main -------------------------------------------------------------------------------------------

def repeat(times: int, label: str, run: Callable[[], tuple[float, Any]]) -> tuple[Timing, list[Any]]:
    seconds, outputs = [], []
    for attempt in range(1, times + 1):
        elapsed, output = run()
        seconds.append(elapsed)
        outputs.append(output)
        say(f"    {label} run {attempt}: {elapsed:7.2f} s  (load {load()})")
    return Timing(seconds), outputs


def goal(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=10_000, help="VMs in the bare lab (default 10000)")
    parser.add_argument("--lab-dir", type=Path, default=None, help="lab directory (reused if a lab runs there)")
    parser.add_argument("--naive-sample", type=int, default=0, metavar="K",
                        help="time the naive loop on K VMs and extrapolate (default 0: all VMs)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (c) and of the full discovery (default 3)")
    parser.add_argument("--rescans", type=int, default=5, help="runs of each incremental re-scan (default 5)")
    parser.add_argument("--change-percent", type=float, default=1.0, help="VMs changed before the re-scan (1%%)")
    parser.add_argument("--seed", type=int, default=1, help="which VMs get changed")
    args = parser.parse_args()
    configure_logging("warning")

    directory = args.lab_dir or Path(tempfile.mkdtemp(prefix="bench-discovery-"))
    existing = lab_status(directory)
    reused = existing is not None and existing.running()
    started = time.perf_counter()
    info = lab_up(directory, vms=args.vms, bare=True)
    if reused:
        say(f"lab: reusing the running bare lab in {info.directory} ({info.vms} VMs)")
        say("NOTE: step (d) changes 1% of its VMs (memory, power state, names); the lab stays changed.")
    else:
        say(f"lab: started a bare lab of {info.vms} VMs in {info.directory} in {time.perf_counter() - started:.1f} s")
    try:
        source = load_site_config(info.site_config).source
        assert isinstance(source, VCenterEndpoint), source
        run(args, source)
    finally:
        if not reused:
            lab_down(directory)
            say(f"lab: stopped {directory}")


def run(args: argparse.Namespace, endpoint: VCenterEndpoint) -> None:
    total = args.vms
    with connect(endpoint) as vc:
        # the paths discovery asks for on this vCenter (customValue only when a custom attribute applies to VMs)
        paths = VmPaths(custom_values=bool(custom_fields(vc)[1])).vm
    say(f"{len(paths)} property paths per VM (as discovery asks them here); {os.cpu_count()} CPUs, "
        f"load average {load()}")

    what = f"{args.naive_sample} of {total} VMs, extrapolated" if 0 < args.naive_sample < total else f"{total} VMs"
    say(f"\n(a) naive per-attribute pyvmomi loop ({what}) ...")
    a = naive(endpoint, total, args.naive_sample, paths)
    note = f" (EXTRAPOLATED linearly from {a.timed_vms} VMs)" if a.timing.extrapolated else ""
    say(f"    {a.timing.best:.1f} s{note}; {a.accesses} attribute reads, {sum(a.failures.values())} failed")
    if a.failures:
        say("    failed reads by path: " + ", ".join(f"{p} {n}" for p, n in a.failures.most_common()))
        say("    errors: " + ", ".join(f"{e} {n}" for e, n in a.errors.most_common()))
    say(f"    connection drops {a.drops}, reconnects (new login) {a.reconnects}")

    with connect(endpoint) as vc:
        say("\n(b) one plain pyvmomi RetrievePropertiesEx pass (ContainerView, paging tokens followed) ...")
        b_seconds, b_count = pyvmomi_pass(vc, paths)
        b = Timing([b_seconds])
        say(f"    {b_seconds:.2f} s, {b_count} VMs materialised")

        say(f"\n(c) ours: SoapReader.read(VirtualMachine, paths, convert=extract_vm), {args.repeat} runs ...")
        c, counts = repeat(args.repeat, "SoapReader", lambda: soap_reader_pass(vc, paths))
        say(f"    {counts[-1]} VM records")

    say(f"\n(c) ours: discover_vcenter end-to-end, utilisation off and on (the default) in turn, "
        f"{args.repeat} runs each ...")
    # keep only the latest inventory alive: held inventories would slow the next runs (garbage collector)
    full, with_usage, baseline, warnings = Timing([]), Timing([]), None, set()
    for attempt in range(1, args.repeat + 1):
        for on in (False, True):
            baseline = None
            elapsed, baseline, stats = timed_discovery(endpoint, utilisation=on)
            (with_usage if on else full).runs.append(elapsed)
            warnings.update(stats.warnings)
            usage = f", {usage_summary(baseline)}" if on else ""
            say(f"    discovery run {attempt} utilisation {'on ' if on else 'off'}: {elapsed:7.2f} s  "
                f"({len(baseline.vms)} VMs{usage}; load {load()}; phases: {phases(stats)})")
    assert baseline is not None
    baseline = None
    _, baseline, _ = timed_discovery(endpoint)     # step (d) changes VMs from an inventory without utilisation
    for warning in sorted(warnings):
        say(f"    warning: {warning}")

    say(f"\n(d) incremental re-scan after changing {args.change_percent:g}% of the VMs ...")
    with connect(endpoint) as vc:
        started = time.perf_counter()
        done = change_vms(vc, baseline, args.change_percent, args.seed)
        say(f"    changed {sum(done.values())} VMs in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{op} {n}" for op, n in sorted(done.items())))
    incremental, latest, full_reads = rescans(endpoint, baseline, args.rescans,
                                              "first incremental (from the full scan)")
    del baseline
    say(f"    then a later re-scan: another {args.change_percent:g}% changed, re-scan from the incremental inventory")
    with connect(endpoint) as vc:
        done = change_vms(vc, latest, args.change_percent, args.seed + 1)
        say("    changed " + ", ".join(f"{op} {n}" for op, n in sorted(done.items())))
    later, latest, _ = rescans(endpoint, latest, args.rescans, "later incremental (from an incremental)")
    fresh_seconds, fresh, _ = timed_discovery(endpoint)
    say(f"    fresh full scan after the changes: {fresh_seconds:.2f} s")
    differing, examples = compare(latest, fresh)
    if differing == 0:
        say(f"    incremental vs fresh full scan: MATCH ({len(fresh.vms)} VMs)")
    else:
        say(f"    incremental vs fresh full scan: {differing} VMs DIFFER")
        for example in examples:
            say(f"      {example}")

    table(total, a, b, c, full, incremental, full_reads, with_usage)
    say(f"{'later re-scan / full discovery':48} {later.best / full.best:9.1%}   "
        f"< {GOAL_INCREMENTAL:.0%}    {goal(later.best / full.best < GOAL_INCREMENTAL)}")
    say(f"(later re-scan: best {later.best:.2f} s, median {later.median:.2f} s; "
        f"median later / median full: {later.median / full.median:.1%})")
    say(f"load average at the end: {load()} (other work on this machine skews every number)")


def rescans(endpoint: VCenterEndpoint, since: Inventory, times: int, label: str) -> tuple[Timing, Inventory, int]:
    """`times` incremental discoveries from `since`: their timing, the last inventory, its full reads."""
    timing, latest, full_reads = Timing([]), None, 0
    for attempt in range(1, times + 1):
        latest = None
        elapsed, latest, stats = timed_discovery(endpoint, since=since)
        timing.runs.append(elapsed)
        full_reads = stats.full_reads
        say(f"    {label} run {attempt}: {elapsed:7.2f} s  (load {load()}; full reads {stats.full_reads}, "
            f"markers parsed {stats.parsed_markers} of {stats.light_reads}, mode {stats.mode}, "
            f"marker pass {stats.marker_pass}, VMs named by events {stats.evented}; phases: {phases(stats)})")
    assert latest is not None
    return timing, latest, full_reads


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def usage_summary(inventory: Inventory) -> str:
    """How many VMs got utilisation, and what it means (basis, window, interval, samples)."""
    kinds = Counter((u.basis, u.window_seconds, u.interval_seconds, u.samples)
                    for vm in inventory.vms if (u := vm.utilisation) is not None)
    return f"{sum(kinds.values())} with utilisation: " + ", ".join(
        f"{n} {basis} {window} s window / {interval} s interval / {samples} samples"
        for (basis, window, interval, samples), n in kinds.most_common(3))


def table(total: int, a: NaiveResult, b: Timing, c: Timing, full: Timing, incremental: Timing,
          full_reads: int, with_usage: Timing) -> None:
    say(f"\n{'method':48} {'best s':>8} {'median s':>9} {'VMs/s (best)':>13}")
    rows = [
        ("(a) naive per-attribute pyvmomi" + (" [extrapolated]" if a.timing.extrapolated else ""), a.timing),
        ("(b) pyvmomi RetrievePropertiesEx pass", b),
        ("(c) ours: SoapReader VM records", c),
        ("(c) ours: discover_vcenter end-to-end", full),
        ("(c) ours: discover_vcenter, utilisation on", with_usage),
        (f"(d) incremental discover_vcenter ({full_reads} full reads)", incremental),
    ]
    for label, timing in rows:
        runs = len(timing.runs)
        median = f"{timing.median:9.2f}" if runs > 1 else f"{'(1 run)':>9}"
        say(f"{label:48} {timing.best:8.2f} {median} {total / timing.best:13.0f}")
    say("")
    say(f"{'ratio (best times)':48} {'measured':>9}   goal")
    checks = [
        ("ours (SoapReader VM records) seconds", c.best, f"<= {GOAL_SECONDS:g} s", c.best <= GOAL_SECONDS),
        ("ours (discover_vcenter end-to-end) seconds", full.best, f"<= {GOAL_SECONDS:g} s", full.best <= GOAL_SECONDS),
        ("(a)/(c) naive / SoapReader", a.timing.best / c.best, f">= {GOAL_VS_NAIVE:g}x",
         a.timing.best / c.best >= GOAL_VS_NAIVE),
        ("(b)/(c) pyvmomi pass / SoapReader", b.best / c.best, f">= {GOAL_VS_PYVMOMI:g}x",
         b.best / c.best >= GOAL_VS_PYVMOMI),
        ("(a)/discovery naive / end-to-end", a.timing.best / full.best, f">= {GOAL_VS_NAIVE:g}x",
         a.timing.best / full.best >= GOAL_VS_NAIVE),
        ("(b)/discovery pyvmomi pass / end-to-end", b.best / full.best, f">= {GOAL_VS_PYVMOMI:g}x",
         b.best / full.best >= GOAL_VS_PYVMOMI),
        ("incremental / full discovery", incremental.best / full.best, f"< {GOAL_INCREMENTAL:.0%}",
         incremental.best / full.best < GOAL_INCREMENTAL),
        ("utilisation on / off (discovery)", with_usage.best / full.best, f"<= {GOAL_UTILISATION:g}x",
         with_usage.best / full.best <= GOAL_UTILISATION),
    ]
    for label, value, target, ok in checks:
        shown = f"{value:.1%}" if "incremental" in label else f"{value:.2f}"
        say(f"{label:48} {shown:>9}   {target:8} {goal(ok)}")
    say(f"(median incremental / median full: {incremental.median / full.median:.1%}; "
        f"median utilisation on / off: {with_usage.median / full.median:.2f}x)")


if __name__ == "__main__":
    main()
