"""A replicating VM's cycles inside one Temporal activity (the local engine keeps them in its journal).

The VM workflow owns the cycles: it hands every finished one to each phase it schedules, and a cycle
activity returns the cycle it recorded. Cycles a phase records (the final one) also ride on its heartbeats,
so the same phase retried on another worker finds them. The waits between cycles, cutover requests and
concurrency slots are the workflow's (migrate.temporal.workflows); test copies are not served here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from migrate.core.block_progress import BlockLedger, BlockProgress
from migrate.engine.timing import SystemClock

__all__ = ["TaskReplication"]


class TaskReplication:
    """migrate.engine.replication.Replication for one activity: the cycles it was given, plus those it records."""

    def __init__(self, cycles: Sequence[Mapping[str, Any]], ledger: BlockLedger | None,
                 previous: Sequence[Any] = ()) -> None:
        self.blocks = BlockProgress(ledger)
        self._lock = threading.Lock()
        self.recorded: list[dict[str, Any]] = []
        known = {int(c["cycle"]): dict(c) for c in cycles}
        for details in previous[-1:]:     # an earlier attempt's: recorded here too, for the workflow to keep
            for cycle in details.get("cycles", []) if isinstance(details, Mapping) else []:
                if int(cycle["cycle"]) not in known:
                    known[int(cycle["cycle"])] = dict(cycle)
                    self.recorded.append(dict(cycle))
        self._cycles = [known[n] for n in sorted(known)]

    def cycles(self) -> list[Mapping[str, Any]]:
        with self._lock:
            return list(self._cycles)

    def record_cycle(self, cycle: int, data: Mapping[str, Any]) -> None:
        record = {**data, "cycle": cycle, "at": SystemClock().now().isoformat()}
        with self._lock:
            self._cycles.append(record)
            self.recorded.append(record)

    def details(self) -> dict[str, Any]:
        """What the activity's heartbeats carry."""
        with self._lock:
            return {"cycles": list(self.recorded)} if self.recorded else {}

    def cutover_due(self) -> str | None:
        return None    # the workflow decides (it runs the precopy loop)

    def tests_asked(self) -> list[tuple[int, str]]:
        return []

    def record_outcome(self, request: int, data: Mapping[str, Any]) -> None:
        """No test requests on this engine."""

    @property
    def post_hooks(self) -> list[Any]:
        return []

    def release(self) -> None:
        """The workflow gives the VM's slots back between cycles."""

    def hold(self) -> bool:
        return True
