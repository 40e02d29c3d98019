"""SQLite plumbing of the journal: WAL connections and group commit without a writer thread.

Records are written in the order they are submitted, each atomically. A caller either waits for its
record to be committed (`wait=True`: it and everything submitted before it are durable when it
returns) or queues it (`wait=False`). A waiting caller that finds nobody writing becomes the leader:
it commits the whole queue, everybody's records, in one transaction, while later callers queue up for
the next one. The runner waits for the start record of every phase that may change something, so
each side effect is preceded by durable records of everything before it; finishes and transitions
ride along with the next commit. A crash (kill -9) loses at most the queued tail: the journal is
always an ordered prefix of what happened, and resume runs again the phases whose finish was lost
(phases are idempotent). If a queued record fails, every later call raises.

Measured on the 2-core test machine: a commit costs 100-150 us (WAL locks and page writes are a
dozen system calls) plus ~0.4 ms with an fsync, a record 15-40 us of CPU, and handing work to a
writer thread ~100 us per round trip. Hence: no writer thread; one multi-row INSERT per commit; and,
when several threads are recording, a leader waits `commit_delay` (1 ms) before committing so the
others can join (PostgreSQL's commit_delay/commit_siblings): 10,000 no-op VMs need ~7,600 commits
instead of ~13,400, and fsyncs stop dominating.

synchronous=FULL is the default. In WAL mode NORMAL already keeps every commit through a process
crash (kill -9), but an OS crash or power cut may drop the last commits, and with them the barrier
that keeps an earlier phase from running again after a later one changed something (copy_disks
again under a target VM that power_on_target already started). FULL fsyncs the WAL at each commit;
with grouped commits bench_engine measures FULL within ~10% of NORMAL for 10,000 no-op VMs (real
phases take seconds each, so a millisecond per phase is noise).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from migrate.core.errors import OperationalError

__all__ = ["JournalWriter", "Synchronous", "connect", "connect_readonly"]

Synchronous = Literal["NORMAL", "FULL"]


def connect(path: Path, synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """A connection in WAL mode, autocommit (transactions are explicit), shareable between threads."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise sqlite3.OperationalError(f"cannot put {path} in WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection (the file is opened read-only: no schema change, no checkpoint, ever)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0)


class _Item:
    __slots__ = ("done", "error", "fn", "result", "row", "wait", "wake")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any] | None, row: tuple[Any, ...] | None,
                 wait: bool) -> None:
        self.fn = fn
        self.row = row
        self.wait = wait
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None  # held while the caller waits; released to wake it


class JournalWriter:
    """Group commit: queued records are committed together by whichever caller needs durability first.

    Most records are rows of one table (`insert`, a multi-row INSERT of `width` columns): consecutive
    ones are written by a single statement, so a commit costs a handful of calls into SQLite however
    many records it carries (each call releases and retakes the GIL, which is slow under contention).
    A waiting caller is woken once: when its record is committed, or to lead the next commit.
    """

    _CHUNK = 128

    def __init__(self, conn: sqlite3.Connection, insert: str, width: int, *, max_queue: int = 1000,
                 commit_delay: float = 0.001) -> None:
        self._conn = conn
        self._insert = insert
        self._values = "(" + ",".join("?" * width) + ")"
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._queue: list[_Item] = []
        self._busy = False
        self._commit_delay = commit_delay
        self._submitters: set[int] = set()  # threads that recorded since the last commit began
        self._siblings = 0
        self._closed = False
        self._failure: BaseException | None = None
        self.commits = 0
        self.records = 0

    def submit(self, fn: Callable[[sqlite3.Connection], Any], *, wait: bool = True) -> Any:
        """Queue `fn(conn)` as one atomic record; with `wait`, return its result once committed."""
        return self._submit(_Item(fn, None, wait))

    def append(self, row: tuple[Any, ...], *, wait: bool = True) -> None:
        """Queue one row of the insert table as a record; with `wait`, return once committed."""
        self._submit(_Item(None, row, wait))

    def _submit(self, item: _Item) -> Any:
        with self._lock:
            if self._failure is not None:
                raise OperationalError(f"the journal could not record an earlier step: {self._failure}")
            if self._closed:
                raise OperationalError("the journal is closed")
            self._queue.append(item)
            self._submitters.add(threading.get_ident())
            if not item.wait and len(self._queue) < self._max_queue:
                return None
            item.wait = True
            lead = not self._busy
            if lead:
                self._busy = True
            else:
                item.wake = threading.Lock()
                item.wake.acquire()
        if not lead:
            assert item.wake is not None
            item.wake.acquire()  # until the leader releases it
        if not item.done:  # this caller leads the next commit
            self._lead()
        if item.error is not None:
            raise item.error
        if self._failure is not None:  # a record queued before this one was lost: this one is not enough
            raise OperationalError(f"the journal could not record an earlier step: {self._failure}")
        return item.result

    def _lead(self) -> None:
        """Commit the queue, wake the callers waiting for it, and hand the lead to the next waiter."""
        if self._siblings > 1:
            # Other threads were recording too: give them a moment (and the GIL) to queue their records,
            # so that one commit, and one fsync, serves them all (PostgreSQL's commit_delay).
            time.sleep(self._commit_delay)
        with self._lock:
            batch, self._queue = self._queue, []
            self._siblings, self._submitters = len(self._submitters), set()
        try:
            self._write(batch)
        except BaseException as exc:  # the connection itself failed: nothing more can be recorded
            for queued in batch:
                queued.error = queued.error or exc
            raise
        finally:
            with self._lock:
                for queued in batch:
                    queued.done = True
                    if queued.error is not None and not queued.wait and self._failure is None:
                        self._failure = queued.error
                    if queued.wake is not None:
                        queued.wake.release()
                successor = next((q for q in self._queue if q.wake is not None), None)
                if successor is None:
                    self._busy = False
                else:
                    successor.wake.release()  # type: ignore[union-attr]

    def flush(self) -> None:
        """Return once everything submitted so far is committed (or raise an earlier failure)."""
        self.submit(lambda conn: None)

    def close(self) -> None:
        """Commit what is queued; later submissions are refused."""
        try:
            if self._failure is None:
                self.flush()
        finally:
            with self._lock:
                self._closed = True

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), self._CHUNK):
            chunk = rows[start:start + self._CHUNK]
            self._conn.execute(self._insert + ",".join([self._values] * len(chunk)),
                               [value for row in chunk for value in row])

    def _write(self, batch: list[_Item]) -> None:
        """Commit the batch in one transaction; if a record fails, commit the others one by one."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            rows: list[tuple[Any, ...]] = []
            for item in batch:
                if item.row is not None:
                    rows.append(item.row)
                    continue
                self._insert_rows(rows)
                rows = []
                assert item.fn is not None
                item.result = item.fn(conn)
            self._insert_rows(rows)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(batch) == 1:
                batch[0].error = exc
                return
            for item in batch:
                self._write([item])
            return
        self.commits += 1
        self.records += len(batch)
