"""What a replicating method's phases need from the run: its finished cycles, chunk progress, and when to cut over.

A replicating method (warm) copies while the source runs, in cycles; each finished cycle is one journal
row (the disks' change ids the next cycle starts from and what it copied), and the chunks a cycle has
copied are recorded in batches like EBS blocks (migrate.core.block_progress), so a resumed cycle copies
only what no record holds. The cutover of a VM is due when its `cutover_at` passes, its wave's window
is open (not after its end: a missed window waits for a request), or an operator asked for it (`migrate
cutover`, a journaled request read by the running run).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from migrate.core.block_progress import BlockProgress
from migrate.engine.limits import SlotLease
from migrate.engine.plan import WavePlan
from migrate.engine.timing import Clock, SystemClock

__all__ = [
    "CYCLE_CEILING",
    "CYCLE_FLOOR",
    "JournalReplication",
    "MemoryReplication",
    "Replication",
    "next_cycle_after",
]

CYCLE_FLOOR = 3600.0      # adaptive interval: at least an hour between two cycles...
CYCLE_CEILING = 43200.0   # ...at most twelve hours (Azure Migrate's rule: min(max(1 h, last / 2), 12 h))


def next_cycle_after(interval: float | str, last_seconds: float) -> float:
    """Seconds from the end of a cycle that took `last_seconds` to the start of the next one."""
    if interval == "adaptive":
        return min(max(CYCLE_FLOOR, last_seconds / 2), CYCLE_CEILING)
    return float(interval)


class Replication(Protocol):
    """The run's side of one VM's replication (module docstring)."""

    blocks: BlockProgress

    def cycles(self) -> list[Mapping[str, Any]]:
        """The VM's finished cycles in order (each: `cycle`, `at` ISO time, and the recorded data)."""
        ...

    def record_cycle(self, cycle: int, data: Mapping[str, Any]) -> None:
        """Durably record that `cycle` finished."""
        ...

    def cutover_due(self) -> str | None:
        """Why the VM's cutover is due now, or None while it is not."""
        ...

    def tests_asked(self) -> list[tuple[int, str]]:
        """(request id, `test` or `test_cleanup`) of the test requests for the VM not done yet, in order."""
        ...

    def record_outcome(self, request: int, data: Mapping[str, Any]) -> None:
        """Durably record what a test request did."""
        ...

    @property
    def post_hooks(self) -> list[Any]:
        """The VM post hooks of the method's playbook (health checks a test copy runs too)."""
        ...

    def release(self) -> None:
        """The VM waits for its next cycle: its concurrency slots may go to other VMs meanwhile."""
        ...

    def hold(self) -> bool:
        """The VM is about to copy or cut over: take its slots again (waiting while they are busy); False when
        the run is stopping first."""
        ...


@dataclass
class JournalReplication:
    """Replication state of one VM in the run journal."""

    journal: Any              # migrate.engine.journal.Journal (cycles, record_cycle, requests)
    run_id: str
    wave: WavePlan
    vm_id: str
    clock: Clock = field(default_factory=SystemClock)
    hooks: list[Any] = field(default_factory=list)
    lease: SlotLease | None = None

    def __post_init__(self) -> None:
        self.blocks = BlockProgress(self.journal)

    @property
    def post_hooks(self) -> list[Any]:
        return self.hooks

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()

    def hold(self) -> bool:
        return self.lease.hold() if self.lease is not None else True

    def tests_asked(self) -> list[tuple[int, str]]:
        done = {request for request, _, _, _ in self.journal.outcomes(self.run_id, self.vm_id)}
        return [(request, kind) for request, kind, scope, entity in
                self.journal.request_rows(self.run_id, ("test", "test_cleanup"))
                if request not in done and (scope, entity) in (("vm", self.vm_id), ("wave", str(self.wave.id)))]

    def record_outcome(self, request: int, data: Mapping[str, Any]) -> None:
        self.journal.record_outcome(self.run_id, request, self.vm_id, data)

    def cycles(self) -> list[Mapping[str, Any]]:
        return [{**record.data, "cycle": record.cycle, "at": record.at.isoformat()}
                for record in self.journal.cycles(self.run_id, self.vm_id)]

    def record_cycle(self, cycle: int, data: Mapping[str, Any]) -> None:
        self.journal.record_cycle(self.run_id, self.vm_id, cycle, data)

    def cutover_due(self) -> str | None:
        return cutover_reason(self.wave, self.vm_id, self.clock.now(),
                              self.journal.requests(self.run_id, "cutover"))


def cutover_reason(wave: WavePlan, vm_id: str, now: datetime, requests: set[tuple[str, str]]) -> str | None:
    """Why `vm_id`'s cutover is due at `now` given the run's cutover `requests`, or None."""
    at = wave.cutover_at.get(vm_id)
    if at is not None and now >= at:
        return f"its cutover_at {at.isoformat()} has come"
    if wave.window is not None and wave.window.contains(now):   # a missed window waits for `migrate cutover`
        return f"wave {wave.id}'s window opened at {wave.window.start.isoformat()}"
    if ("vm", vm_id) in requests:
        return "an operator asked for it (migrate cutover --vm)"
    if ("wave", str(wave.id)) in requests:
        return f"an operator asked for wave {wave.id} (migrate cutover --wave)"
    return None


@dataclass
class MemoryReplication:
    """Replication state kept in memory (tests of the phases); the cutover is due when `due` says."""

    due: str | None = "immediately"
    blocks: BlockProgress = field(default_factory=lambda: BlockProgress(None))
    asked: list[tuple[int, str]] = field(default_factory=list)
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)
    _cycles: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cycles(self) -> list[Mapping[str, Any]]:
        with self._lock:
            return list(self._cycles)

    def record_cycle(self, cycle: int, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._cycles.append({**data, "cycle": cycle, "at": SystemClock().now().isoformat()})

    def cutover_due(self) -> str | None:
        return self.due

    def tests_asked(self) -> list[tuple[int, str]]:
        with self._lock:
            return [asked for asked in self.asked if asked[0] not in self.outcomes]

    def record_outcome(self, request: int, data: Mapping[str, Any]) -> None:
        with self._lock:
            self.outcomes[request] = dict(data)

    @property
    def post_hooks(self) -> list[Any]:
        return []

    def release(self) -> None:
        """No slots in memory: nothing to give back."""

    def hold(self) -> bool:
        return True
