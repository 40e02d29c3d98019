"""Shared helpers of the engine tests (plans, a fake clock, phase recorders), with their own checks."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from migrate.core.log import configure_logging
from migrate.engine import Journal, Limits, RetryPolicy, RunPlan, RunSettings, VmFacts, WavePlan
from migrate.engine.context import PhaseContext, PhaseFn
from migrate.engine.methods import get_method
from migrate.engine.noop import NOOP

__all__ = [
    "FakeClock",
    "Tracker",
    "fast_settings",
    "make_plan",
    "open_journal",
    "registry",
]

T0 = datetime(2030, 1, 1, 20, 0, tzinfo=UTC)


def make_plan(waves: list[int], *, hosts: int = 4, datastores: int = 3, clusters: int = 2,
              policy: str = "continue", method: str = "noop", **wave_extra: Any) -> RunPlan:
    """A plan with len(waves) waves of the given sizes; VM i sits on host i%hosts, datastore i%datastores."""
    vms, plan_waves, n = [], [], 0
    for w, size in enumerate(waves, start=1):
        ids = []
        for _ in range(size):
            vm_id = f"vm-{n:04d}"
            power = "poweredOff" if n % 5 == 4 else "poweredOn"
            vms.append(VmFacts(id=vm_id, name=f"name-{n}", source_host=f"esx-{n % hosts}",
                               datastores=[f"ds-{n % datastores}"], target_cluster=f"cl-{n % clusters}",
                               facts={"power_state": power}))
            ids.append(vm_id)
            n += 1
        plan_waves.append(WavePlan(id=w, name=f"wave {w}", vms=ids, method=method, policy=policy,
                                   **wave_extra))
    return RunPlan(waves=plan_waves, vms=vms)


def fast_settings(**overrides: Any) -> RunSettings:
    """Settings for tests: no real backoff waits, quick polling."""
    values: dict[str, Any] = {"limits": Limits(total=8, per_source_host=None, per_datastore=None),
                              "retry": RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0), "seed": 7,
                              "poll_seconds": 0.02}
    values.update(overrides)
    return RunSettings(**values)


@contextmanager
def open_journal(path: Path) -> Iterator[Journal]:
    """A journal closed at the end of the block."""
    journal = Journal(path)
    try:
        yield journal
    finally:
        journal.close()


class FakeClock:
    """A clock that moves only when slept on or advanced."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> datetime:
        """The fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        """Advance instead of sleeping (interrupted at once if the event is set)."""
        if interrupt is not None and interrupt.is_set():
            return True
        self.slept.append(seconds)
        self.advance(seconds)
        return False


class Tracker:
    """Counts, per limit key, how many VMs are inside a phase at once (the highest count seen)."""

    def __init__(self, limits: Limits, plan: RunPlan) -> None:
        self.limits = limits
        self.plan = plan
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.calls: Counter[tuple[str, str]] = Counter()

    def enter(self, vm_id: str) -> None:
        """A VM started its cutover."""
        with self.lock:
            for key in self.limits.keys(self.plan.vm_index[vm_id]):
                self.now[key] += 1
                self.peak[key] = max(self.peak[key], self.now[key])

    def leave(self, vm_id: str) -> None:
        """A VM ended its cutover."""
        with self.lock:
            for key in self.limits.keys(self.plan.vm_index[vm_id]):
                self.now[key] -= 1

    def count(self, vm_id: str, phase: str) -> None:
        """One more call of a phase for a VM."""
        with self.lock:
            self.calls[(vm_id, phase)] += 1


def registry(method: str = "noop", overrides: Mapping[str, PhaseFn] | None = None,
             tracker: Tracker | None = None, sleep: float = 0.0) -> dict[str, dict[str, PhaseFn]]:
    """Phase functions for `method` that record calls (and the cutover span of each VM when tracked)."""
    base: dict[str, PhaseFn] = dict(NOOP.functions) if method == "noop" else {}
    phases = [p.name for p in get_method(method).phases]
    first, last = phases[1], phases[-1]

    def wrap(name: str, fn: PhaseFn | None) -> PhaseFn:
        def phase(ctx: PhaseContext) -> Mapping[str, Any]:
            if tracker is not None:
                tracker.count(ctx.vm.id, name)
                if name == first:
                    tracker.enter(ctx.vm.id)
            try:
                if sleep and name not in ("precheck", "verify"):
                    time.sleep(sleep)
                return fn(ctx) if fn is not None else {"phase": name}
            finally:
                if tracker is not None and name == last:
                    tracker.leave(ctx.vm.id)
        return phase

    table: dict[str, PhaseFn] = {}
    for name in phases:
        fn = (overrides or {}).get(name, base.get(name))
        table[name] = wrap(name, fn)
    return {method: table}


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """Engine tests log errors only, and leave structlog as they found it."""
    configure_logging("error", json_logs=True)
    yield
    structlog.reset_defaults()


def test_fake_clock_advances_only_when_asked() -> None:
    """The fake clock moves on sleep and advance, and an interrupted sleep does not move it."""
    clock = FakeClock()
    clock.sleep(30)
    clock.advance(30)
    stop = threading.Event()
    stop.set()
    assert clock.sleep(100, stop) is True
    assert clock.now() == T0 + timedelta(minutes=1)


def test_make_plan_spreads_vms() -> None:
    """make_plan numbers VMs across waves and spreads them over hosts and datastores."""
    plan = make_plan([3, 2], hosts=2)
    assert [w.vms for w in plan.waves] == [["vm-0000", "vm-0001", "vm-0002"], ["vm-0003", "vm-0004"]]
    assert {vm.source_host for vm in plan.vms} == {"esx-0", "esx-1"}


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `predicate` holds (test helper)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
