"""Durable block-level progress of EBS uploads, next to the run journal (`<journal>.blocks.jsonl`).

The journal records steps; an upload phase may run for hours over millions of blocks, so the blocks it
has put are recorded here instead, in batches, while it runs. Each line is one batch:

    {"run": RUN_ID, "vm": VM_ID, "disk": DISK_KEY, "snapshot": SNAPSHOT_ID, "blocks": [3, 7, 8]}

appended and fsync'd (at most `batch` blocks or `interval` seconds late). After a kill -9 the blocks of
the last unflushed batch are simply put again (putting a block twice is harmless); a torn last line is
ignored when read and closed with a newline before the next append. `done(...)` gives a resumed upload
the blocks already in its snapshot, so only the missing ones are sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BlockProgress", "BlockRecorder", "progress_path"]

DEFAULT_BATCH = 64          # blocks (32 MiB) per durable write at most
DEFAULT_INTERVAL = 1.0      # seconds between durable writes at most


def progress_path(journal: str | Path) -> Path:
    """Where the block progress of a journal's runs is kept."""
    return Path(f"{journal}.blocks.jsonl")


class BlockProgress:
    """Append-only, fsync'd record of accepted blocks per (run, VM, disk, snapshot); thread-safe.

    With `path` None it only keeps progress in memory (dry runs, tests of the phases).
    """

    def __init__(self, path: str | Path | None, *, batch: int = DEFAULT_BATCH,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.path = Path(path) if path is not None else None
        self.batch = max(1, batch)
        self.interval = interval
        self._lock = threading.Lock()
        self._memory: list[dict[str, object]] = []
        self._fd: int | None = None

    def done(self, run_id: str, vm_id: str, disk: str, snapshot_id: str) -> frozenset[int]:
        """Blocks recorded for this disk's upload into `snapshot_id` (empty when none)."""
        blocks: set[int] = set()
        for record in self._records():
            if (record.get("run"), record.get("vm"), record.get("disk"), record.get("snapshot")) == (
                    run_id, vm_id, disk, snapshot_id):
                blocks.update(int(b) for b in record.get("blocks", []))  # type: ignore[attr-defined]
        return frozenset(blocks)

    def recorder(self, run_id: str, vm_id: str, disk: str, snapshot_id: str) -> BlockRecorder:
        """A batching recorder for one upload; use it as a context manager (flushes on exit)."""
        return BlockRecorder(self, {"run": run_id, "vm": vm_id, "disk": disk, "snapshot": snapshot_id})

    def append(self, record: dict[str, object]) -> None:
        """Write one batch durably (fsync) before returning."""
        with self._lock:
            if self.path is None:
                self._memory.append(record)
                return
            line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
            fd = self._open()
            os.write(fd, line)
            os.fsync(fd)

    def close(self) -> None:
        """Close the file (appending reopens it)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")           # close a line torn by a crash mid-write
            self._fd = fd
        return self._fd

    def _records(self) -> Iterator[dict[str, object]]:
        if self.path is None:
            with self._lock:
                yield from list(self._memory)
            return
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue                  # a torn line: its blocks are put again
                if isinstance(record, dict):
                    yield record


class BlockRecorder:
    """Collects accepted block indexes of one upload and writes them in batches (size or age)."""

    def __init__(self, store: BlockProgress, identity: dict[str, object]) -> None:
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
        self.store.append({**self.identity, "blocks": sorted(blocks)})
        self.recorded += len(blocks)

    def __enter__(self) -> BlockRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
