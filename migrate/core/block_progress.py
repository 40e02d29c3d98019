"""Durable block-level progress of EBS uploads, in the run journal (its `blocks` table).

The journal's steps are whole phases; an upload phase may run for hours over millions of blocks, so
the blocks it has put are recorded while it runs, in batches (at most `batch` blocks or `interval`
seconds late), each batch one committed row. After a kill -9 the blocks of the last unrecorded batch
are put again (putting a block twice is harmless); `done(...)` gives a resumed upload the blocks
already in its snapshot, so only the missing ones are sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Protocol

__all__ = ["BlockLedger", "BlockProgress", "BlockRecorder"]

DEFAULT_BATCH = 64          # blocks (32 MiB) per durable write at most
DEFAULT_INTERVAL = 1.0      # seconds between durable writes at most


class BlockLedger(Protocol):
    """Where block progress is kept durably (the engine's journal implements it)."""

    def blocks_done(self, run_id: str, vm_id: str, part: str,
                    target: str | None = None) -> Mapping[str, frozenset[int]]: ...

    def record_blocks(self, run_id: str, vm_id: str, part: str, target: str, blocks: list[int]) -> None: ...


class BlockProgress:
    """Accepted blocks per (run, VM, disk, snapshot), recorded in `journal`; thread-safe.

    With `journal` None it only keeps progress in memory (dry runs, tests of the phases).
    """

    def __init__(self, journal: BlockLedger | None, *, batch: int = DEFAULT_BATCH,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.journal = journal
        self.batch = max(1, batch)
        self.interval = interval
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str, str, str], set[int]] = {}

    def done(self, run_id: str, vm_id: str, disk: str, snapshot_id: str) -> frozenset[int]:
        """Blocks recorded for this disk's upload into `snapshot_id` (empty when none)."""
        if self.journal is None:
            with self._lock:
                return frozenset(self._memory.get((run_id, vm_id, disk, snapshot_id), set()))
        return self.journal.blocks_done(run_id, vm_id, disk, snapshot_id).get(snapshot_id, frozenset())

    def recorder(self, run_id: str, vm_id: str, disk: str, snapshot_id: str) -> BlockRecorder:
        """A batching recorder for one upload; use it as a context manager (flushes on exit)."""
        return BlockRecorder(self, (run_id, vm_id, disk, snapshot_id))

    def append(self, identity: tuple[str, str, str, str], blocks: list[int]) -> None:
        """Record one batch durably before returning."""
        if self.journal is None:
            with self._lock:
                self._memory.setdefault(identity, set()).update(blocks)
            return
        run_id, vm_id, disk, snapshot_id = identity
        self.journal.record_blocks(run_id, vm_id, disk, snapshot_id, blocks)

    def close(self) -> None:
        """Nothing to release: the journal is closed by its owner."""


class BlockRecorder:
    """Collects accepted block indexes of one upload and writes them in batches (size or age)."""

    def __init__(self, store: BlockProgress, identity: tuple[str, str, str, str]) -> None:
        self.store = store
        self.identity = identity
        self.pending: list[int] = []
        self.recorded = 0
        self._last = time.monotonic()

    def __call__(self, index: int, checksum: str = "") -> None:
        """The upload's `on_block` callback (runs on the uploading thread)."""
        self.pending.append(index)
        if len(self.pending) >= self.store.batch or time.monotonic() - self._last >= self.store.interval:
            self.flush()

    def flush(self) -> None:
        """Write the pending blocks now (nothing when there are none)."""
        self._last = time.monotonic()
        if not self.pending:
            return
        blocks, self.pending = self.pending, []
        self.store.append(self.identity, sorted(blocks))
        self.recorded += len(blocks)

    def __enter__(self) -> BlockRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
