"""Progress on a terminal, silence when piped (logs still say what happens): bars, spinners, and the board
of a run's waves and VMs in flight that the live view (migrate.cli.live_view) draws."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from migrate.engine.progress import (
    IN_FLIGHT,
    BytesCopied,
    PhaseFinished,
    PhaseStarted,
    ProgressEvent,
    RunFinished,
    RunStarted,
    VmChanged,
    WaveChanged,
    WaveFinished,
    WaveStarted,
)

__all__ = ["BoardView", "Failure", "ProgressBoard", "Rate", "VmLine", "WaveLine", "eta", "progress_bar",
           "progress_status"]


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable; draws a bar on stderr only when it is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda _n: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def progress_status(description: str, *, enabled: bool | None = None) -> Iterator[Callable[[str], None]]:
    """Yield an `update(phase)` callable showing a spinner with the current phase on a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda _phase: None
        return
    with Console(stderr=True).status(description) as status:
        yield lambda phase: status.update(f"{description}: {phase}")


# -- the board behind the live run view: progress events in, a consistent snapshot out ------------------------

DONE = frozenset({"completed", "failed", "rolled_back", "skipped"})


class Rate:
    """Bytes per second over about the last `window` seconds of samples (a moving average)."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, when: float, done: int) -> None:
        """A count at a time; a smaller count than the last (a retry from the start) starts over."""
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()
        self._samples.append((when, done))
        while len(self._samples) > 2 and self._samples[1][0] <= when - self.window:
            self._samples.popleft()   # keep one sample at or before the window's start as the anchor

    def per_second(self, now: float | None = None) -> float | None:
        """The rate up to `now` (a stall lowers it), or None before two samples."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        span = max(t1, now if now is not None else t1) - t0
        return (d1 - d0) / span if span > 0 else None


def eta(done: int, total: int | None, rate: float | None) -> float | None:
    """Seconds left at `rate` bytes/s, or None when the total or a positive rate is not known."""
    if total is None or rate is None or rate <= 0:
        return None
    return max(0, total - done) / rate


@dataclass(frozen=True)
class WaveLine:
    """One wave's bar: VMs done of its total, failures, state."""

    id: int
    name: str
    method: str
    state: str
    total: int
    done: int
    failed: int


@dataclass(frozen=True)
class VmLine:
    """One VM in flight."""

    name: str
    wave: int
    phase: str | None
    attempt: int
    done: int | None
    total: int | None
    rate: float | None
    eta: float | None


@dataclass(frozen=True)
class Failure:
    """A VM that failed: where, and why."""

    name: str
    wave: int
    phase: str | None
    error: str | None


@dataclass(frozen=True)
class BoardView:
    """What the live view draws, taken at one instant."""

    run_id: str
    status: str
    elapsed: float
    current: int | None
    waves: tuple[WaveLine, ...]
    in_flight: tuple[VmLine, ...]
    failures: tuple[Failure, ...]


@dataclass
class _Vm:
    name: str
    wave: int
    state: str
    phase: str | None = None
    attempt: int = 1
    busy: bool = False
    error: str | None = None
    done: int | None = None
    total: int | None = None
    rate: Rate = field(default_factory=Rate)


@dataclass
class _Wave:
    name: str
    method: str
    state: str
    total: int = 0
    done: int = 0
    failed: int = 0


class ProgressBoard:
    """A run's waves and VMs kept up to date from progress events (a ProgressListener); thread-safe.

    Fed live by the runner, or by snapshots read from the journal (each RunStarted replaces the state and
    keeps the byte rates measured so far).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._began = clock()
        self.run_id = ""
        self.status = "starting"
        self._current: int | None = None     # the wave the runner took up last
        self._waves: dict[int, _Wave] = {}
        self._vms: dict[str, _Vm] = {}
        self._flying: dict[str, None] = {}   # VMs in flight, in the order they took off
        self._failures: list[Failure] = []

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            self._apply(event)

    def _apply(self, event: ProgressEvent) -> None:
        match event:
            case RunStarted():
                self._start(event)
            case RunFinished(status=status):
                self.status = status
            case WaveStarted(wave=wave):
                self._current = wave
            case WaveChanged(wave=wave, state=state) | WaveFinished(wave=wave, state=state) if wave in self._waves:
                self._waves[wave].state = state
            case VmChanged(vm=vm, state=state) if vm in self._vms:
                self._vm_state(vm, self._vms[vm], state)
            case PhaseStarted(vm=vm, phase=phase, attempt=attempt) if vm in self._vms:
                row = self._vms[vm]
                row.phase, row.attempt, row.busy = phase, attempt, True
                self._fly(vm, row)
            case PhaseFinished(vm=vm, error=error) if vm in self._vms:
                row = self._vms[vm]
                row.busy, row.error = False, error
                self._fly(vm, row)
            case BytesCopied(vm=vm, done=done, total=total) if vm in self._vms:
                row = self._vms[vm]
                row.done, row.total = done, total
                row.rate.add(self._clock(), done)

    def _start(self, event: RunStarted) -> None:
        rates = {vm: row.rate for vm, row in self._vms.items()}
        moved = {vm: (row.done, row.total) for vm, row in self._vms.items()}
        self.run_id, self.status = event.run_id, event.status
        self._waves, self._vms, self._flying, self._failures = {}, {}, {}, []
        for wave in event.waves:
            self._waves[wave.id] = _Wave(wave.name, wave.method, wave.state, total=len(wave.vms))
            for info in wave.vms:
                row = _Vm(info.name, wave.id, "pending", info.phase, busy=info.busy, error=info.error)
                row.done, row.total = moved.get(info.id, (None, None))
                row.rate = rates.get(info.id, row.rate)
                self._vms[info.id] = row
                self._vm_state(info.id, row, info.state)

    def _vm_state(self, vm: str, row: _Vm, state: str) -> None:
        wave, before = self._waves[row.wave], row.state
        row.state = state
        wave.done += (state in DONE) - (before in DONE)
        wave.failed += (state == "failed") - (before == "failed")
        if state == "failed" and before != "failed":
            self._failures.append(Failure(row.name, row.wave, row.phase, row.error))
        if state in DONE:
            row.busy = False
        self._fly(vm, row)

    def _fly(self, vm: str, row: _Vm) -> None:
        if row.busy or row.state in IN_FLIGHT:
            self._flying.setdefault(vm)
        else:
            self._flying.pop(vm, None)

    def snapshot(self) -> BoardView:
        """The board now (any thread)."""
        with self._lock:
            now = self._clock()
            flying = []
            for vm in self._flying:
                row = self._vms[vm]
                rate = row.rate.per_second(now) if row.done is not None else None
                total = max(row.total, row.done or 0) if row.total is not None else None
                flying.append(VmLine(row.name, row.wave, row.phase, row.attempt, row.done, total, rate,
                                     eta(row.done or 0, total, rate)))
            waves = tuple(WaveLine(i, w.name, w.method, w.state, w.total, w.done, w.failed)
                          for i, w in self._waves.items())
            return BoardView(self.run_id, self.status, now - self._began, self._current, waves, tuple(flying),
                             tuple(self._failures))
