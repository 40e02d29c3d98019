"""Progress events of a run: waves and VMs as they move, phases as they start and end, bytes as they flow.

The runner emits them to a listener (a live view) from its worker threads; a phase reports the bytes it
moves through `ctx.progress`, throttled to a few events per second per VM and never journaled per chunk.
Without a listener nothing is wrapped and `ctx.progress` is a no-op. `journal_events` reads the same
events back from a journal (opened read-only by the caller) for `migrate status --watch`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.core.log import get_logger
from migrate.engine.lifecycle import VmState
from migrate.engine.plan import RunPlan, VmFacts

if TYPE_CHECKING:  # types only: the context carries a VmProgress
    from migrate.engine.context import PhaseContext, PhaseFn
    from migrate.engine.journal import Journal
    from migrate.engine.run_state import RunSettings, RunState

__all__ = [
    "IN_FLIGHT",
    "NO_PROGRESS",
    "BytesCopied",
    "PhaseFinished",
    "PhaseStarted",
    "ProgressEvent",
    "ProgressListener",
    "RunFinished",
    "RunProgress",
    "RunStarted",
    "VmChanged",
    "VmInfo",
    "VmProgress",
    "WaveChanged",
    "WaveFinished",
    "WaveInfo",
    "WaveStarted",
    "journal_events",
]

BYTES_INTERVAL = 0.25       # seconds between two byte counts of one VM at most
EBS_BLOCK = 512 * 1024      # the EBS direct APIs' fixed block size (the journal's `blocks` table counts them)
IN_FLIGHT = frozenset({VmState.REPLICATING.value, VmState.CUTTING_OVER.value, VmState.VERIFYING.value})


@dataclass(frozen=True, slots=True)
class VmInfo:
    """One VM as a run (or its journal) has it now; `busy`: inside a phase (prechecks included)."""

    id: str
    name: str
    state: str
    phase: str | None = None
    error: str | None = None
    busy: bool = False


@dataclass(frozen=True, slots=True)
class WaveInfo:
    """One wave and its VMs, in plan order."""

    id: int
    name: str
    method: str
    state: str
    vms: tuple[VmInfo, ...]


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run starts (or resumes), or a journal snapshot of it: every wave and VM as it is now."""

    run_id: str
    status: str
    waves: tuple[WaveInfo, ...]


@dataclass(frozen=True, slots=True)
class RunFinished:
    """An execution of the run ended."""

    run_id: str
    status: str


@dataclass(frozen=True, slots=True)
class WaveStarted:
    """The runner took up a wave (it may end at once if it was done)."""

    wave: int


@dataclass(frozen=True, slots=True)
class WaveChanged:
    """A wave's state changed (journaled first)."""

    wave: int
    state: str


@dataclass(frozen=True, slots=True)
class WaveFinished:
    """The runner left a wave, in this state."""

    wave: int
    state: str


@dataclass(frozen=True, slots=True)
class VmChanged:
    """A VM's state changed (journaled first)."""

    wave: int
    vm: str
    state: str


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    """A VM's phase (an attempt at it) started."""

    wave: int
    vm: str
    phase: str
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class PhaseFinished:
    """A VM's phase attempt ended; `error` when it raised (the runner may retry it)."""

    wave: int
    vm: str
    phase: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BytesCopied:
    """`done` of `total` bytes (None: not known) a VM's phase has moved so far."""

    wave: int
    vm: str
    done: int
    total: int | None = None


ProgressEvent = (RunStarted | RunFinished | WaveStarted | WaveChanged | WaveFinished | VmChanged | PhaseStarted
                 | PhaseFinished | BytesCopied)
ProgressListener = Callable[[ProgressEvent], None]
Observer = Callable[[str, str, str, str], None]


class VmProgress:
    """What a phase reports while it runs (`ctx.progress`); this base reports nothing (no listener)."""

    __slots__ = ()

    def bytes(self, done: int, total: int | None = None) -> None:
        """`done` of `total` bytes (None: not known) of this VM moved so far by this phase."""

    def flush(self) -> None:
        """Report the last count held back by the throttle."""


NO_PROGRESS = VmProgress()


class _VmEmitter(VmProgress):
    """Byte counts of one phase attempt, at most one event per `interval` (the final count always).

    Calls come from the phase's thread; a phase reporting from several threads at worst sends one extra event.
    """

    __slots__ = ("_clock", "_emit", "_interval", "_last", "_pending", "_vm", "_wave")

    def __init__(self, emit: ProgressListener, wave: int, vm: str, *, interval: float = BYTES_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._emit, self._wave, self._vm = emit, wave, vm
        self._interval, self._clock = interval, clock
        self._last = -math.inf
        self._pending: tuple[int, int | None] | None = None

    def bytes(self, done: int, total: int | None = None) -> None:
        now = self._clock()
        if now - self._last < self._interval and done != total:
            self._pending = (done, total)
            return
        self._last, self._pending = now, None
        self._emit(BytesCopied(self._wave, self._vm, done, total))

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._emit(BytesCopied(self._wave, self._vm, *pending))


class RunProgress:
    """One execution's events to `listener`; without one every call is a no-op and nothing is wrapped.

    A listener that raises is dropped (logged once): a display never fails a migration.
    """

    def __init__(self, listener: ProgressListener | None, plan: RunPlan) -> None:
        self._listener = listener
        self._plan = plan
        self._wave_of = {vm: w.id for w in plan.waves for vm in w.vms} if listener is not None else {}

    def emit(self, event: ProgressEvent) -> None:
        """Send one event (any thread)."""
        listener = self._listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:
            self._listener = None
            get_logger("migrate.engine").warning("progress display failed; the run goes on without it",
                                                 exc_info=True)

    def run_started(self, rs: RunState) -> None:
        """The run as this execution found it in the journal."""
        if self._listener is None:
            return
        plan = self._plan
        self.emit(RunStarted(rs.run_id, "running", tuple(
            WaveInfo(w.id, w.name, w.method, rs.waves[w.id].state.value, tuple(
                VmInfo(v, plan.vm_index[v].name or v, rs.vms[v].state.value, rs.vms[v].phase,
                       str((rs.vms[v].error or {}).get("message", "")) or None) for v in w.vms))
            for w in plan.waves)))

    def settings(self, settings: RunSettings) -> RunSettings:
        """`settings` with a transition observer emitting VmChanged / WaveChanged (after theirs); unchanged
        without a listener."""
        if self._listener is None:
            return settings
        return dataclasses.replace(settings, observer=self._observer(settings.observer))

    def _observer(self, chained: Observer | None) -> Observer:
        def observe(kind: str, entity: str, trigger: str, state: str) -> None:
            if chained is not None:
                chained(kind, entity, trigger, state)
            if kind == "vm":
                self.emit(VmChanged(self._wave_of.get(entity, 0), entity, state))
            elif kind == "wave":
                self.emit(WaveChanged(int(entity), state))

        return observe

    def phases(self, phases: Mapping[str, Mapping[str, PhaseFn]]) -> Mapping[str, Mapping[str, PhaseFn]]:
        """`phases` each wrapped to emit PhaseStarted / PhaseFinished and get a byte reporter as `ctx.progress`."""
        if self._listener is None:
            return phases
        return {method: {name: self._wrap(fn) for name, fn in table.items()} for method, table in phases.items()}

    def _wrap(self, fn: PhaseFn) -> PhaseFn:
        def run(ctx: PhaseContext) -> Mapping[str, Any]:
            wave, vm = ctx.wave.id, ctx.vm.id
            meter = _VmEmitter(self.emit, wave, vm)
            self.emit(PhaseStarted(wave, vm, ctx.phase, ctx.attempt))
            try:
                outputs = fn(dataclasses.replace(ctx, progress=meter))
            except BaseException as exc:
                meter.flush()
                self.emit(PhaseFinished(wave, vm, ctx.phase, str(exc) or type(exc).__name__))
                raise
            meter.flush()
            self.emit(PhaseFinished(wave, vm, ctx.phase))
            return outputs

        return run


# -- the same events, read back from a journal -------------------------------------------------------------

def journal_events(journal: Journal, run_id: str | None = None) -> list[ProgressEvent]:
    """What the journal holds of a run (default: the latest) now: a RunStarted snapshot, then the bytes recorded
    for its VMs in flight (EBS blocks so far, or what a finished copy phase moved)."""
    record = journal.open_run(run_id)
    plan, rid = record.plan, record.run_id
    vms = {e.id: e for e in journal.entities(rid, "vm", plan)}
    waves = {e.wave: e for e in journal.entities(rid, "wave", plan)}
    infos, moving = [], []
    for wave in plan.waves:
        rows = []
        for vm_id in wave.vms:
            e = vms[vm_id]
            busy = e.state == VmState.PENDING.value and e.phase is not None  # in its prechecks
            error = str(e.error.get("message", e.error)) if e.error else None
            rows.append(VmInfo(vm_id, plan.vm_index[vm_id].name or vm_id, e.state, e.phase, error, busy))
            if busy or e.state in IN_FLIGHT:
                moving.append((wave.id, plan.vm_index[vm_id]))
        infos.append(WaveInfo(wave.id, wave.name, wave.method, waves[wave.id].state, tuple(rows)))
    events: list[ProgressEvent] = [RunStarted(rid, record.status, tuple(infos))]
    for wave_id, facts in moving:
        moved = _recorded_bytes(journal, rid, facts)
        if moved is not None:
            events.append(BytesCopied(wave_id, facts.id, *moved))
    return events


def _recorded_bytes(journal: Journal, run_id: str, vm: VmFacts) -> tuple[int, int | None] | None:
    """(done, total) bytes the journal has for a VM: a finished copy/upload phase's, else its EBS blocks so far."""
    for step in reversed(journal.steps(run_id, "vm", vm.id)):
        if step.status == "finished" and isinstance(step.outputs, Mapping):
            done = _output_bytes(step.outputs)
            if done:
                return done, done
    disks = [d for d in vm.facts.get("disks") or [] if isinstance(d, Mapping) and "key" in d]
    blocks = sum(max(map(len, journal.blocks_done(run_id, vm.id, str(d["key"])).values()), default=0) for d in disks)
    if not blocks:
        return None
    total = sum(int(d.get("capacity_bytes") or 0) for d in disks) or None
    done = blocks * EBS_BLOCK
    return (min(done, total) if total else done), total


def _output_bytes(outputs: Mapping[str, Any]) -> int:
    """Bytes a phase's outputs say it moved: `disks[].bytes` (EBS upload) or `disks[].files[].bytes` (copy)."""
    total = 0
    for disk in outputs.get("disks") or []:
        if not isinstance(disk, Mapping):
            continue
        if isinstance(disk.get("bytes"), int):
            total += disk["bytes"]
        else:
            total += sum(f["bytes"] for f in disk.get("files") or [] if isinstance(f, Mapping)
                         and isinstance(f.get("bytes"), int))
    return total
