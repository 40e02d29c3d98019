"""Block progress of a worker's phases kept in their activities' heartbeats (the local engine keeps it in the
journal's `blocks` table: migrate.core.block_progress).

An upload records the blocks it has put; the phase's next heartbeat carries them (as index ranges, small
for the mostly sequential uploads). When the worker dies, Temporal gives the phase to another worker with
the last heartbeat's details, and `blocks_done` there answers from them: only blocks put after that last
heartbeat are put again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["BlockBeat", "HeartbeatLedger", "from_ranges", "to_ranges"]


def to_ranges(blocks: Iterable[int]) -> list[list[int]]:
    """Sorted block indexes as [start, end) runs."""
    runs: list[list[int]] = []
    for index in sorted(set(blocks)):
        if runs and runs[-1][1] == index:
            runs[-1][1] = index + 1
        else:
            runs.append([index, index + 1])
    return runs


def from_ranges(runs: Iterable[Sequence[int]]) -> set[int]:
    """The block indexes of [start, end) runs."""
    return {index for start, end in runs for index in range(int(start), int(end))}


class BlockBeat:
    """One running phase's blocks, by (part, target): those of earlier attempts and those put since."""

    def __init__(self, previous: Sequence[Any] = ()) -> None:
        self.blocks: dict[tuple[str, str], set[int]] = {}
        for details in previous[-1:]:
            for part, target, runs in (details.get("blocks") or []) if isinstance(details, Mapping) else []:
                self.blocks[(str(part), str(target))] = from_ranges(runs)

    def details(self) -> dict[str, Any]:
        """What the next heartbeat carries."""
        return {"blocks": [[part, target, to_ranges(blocks)] for (part, target), blocks in sorted(self.blocks.items())]}


class HeartbeatLedger:
    """migrate.core.block_progress.BlockLedger over the heartbeats of the phases running on this worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[tuple[str, str], BlockBeat] = {}

    def begin(self, run_id: str, vm_id: str, previous: Sequence[Any]) -> BlockBeat:
        """A phase of this VM starts, with its activity's last heartbeat details (of an earlier attempt)."""
        beat = BlockBeat(previous)
        with self._lock:
            self._beats[(run_id, vm_id)] = beat
        return beat

    def end(self, run_id: str, vm_id: str) -> None:
        with self._lock:
            self._beats.pop((run_id, vm_id), None)

    def blocks_done(self, run_id: str, vm_id: str, part: str,
                    target: str | None = None) -> Mapping[str, frozenset[int]]:
        with self._lock:
            beat = self._beats.get((run_id, vm_id))
            if beat is None:
                return {}
            return {t: frozenset(blocks) for (p, t), blocks in beat.blocks.items()
                    if p == part and (target is None or t == target)}

    def record_blocks(self, run_id: str, vm_id: str, part: str, target: str, blocks: list[int]) -> None:
        with self._lock:
            beat = self._beats.get((run_id, vm_id))
            if beat is not None:
                beat.blocks.setdefault((part, target), set()).update(blocks)
