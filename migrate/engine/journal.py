"""The run journal (SQLite, WAL): every transition and step of every VM and wave; the one source of truth.

Schema version 3 (`PRAGMA user_version`; an older journal gains the tables it lacks when opened for writing):

- `runs`: run id, status, plan digest, and the plan and playbooks as JSON (resume needs nothing else);
- `events`: the append-only log. One row per record: a transition of a VM or wave (trigger, src,
  dst, inputs, error) or a step of one (`step_started` with attempt and inputs, `step_finished` with
  outputs, `step_failed` with the error), each step under its idempotency key `"{run}:{vm}:{step}"`
  (`"{run}:wave-{id}:{step}"` for a wave's hooks), plus run-level events;
- `blocks`: progress inside a long step (the EBS blocks an upload has put), one row per durable batch,
  so a resumed upload sends only the blocks no row holds.
- `cycles`: the replication cycles a VM of a replicating method (warm) finished, one row each, with the
  change ids of its disks the next cycle starts from, and what it copied (bytes, extents, seconds);
- `requests`: operators' requests to a run (`migrate cutover`, `migrate test`), read by the running or a
  resumed run; `outcomes`: what a request did to a VM (a test copy's result), one row per request and VM.

Current states are derived from the log (the latest transition of each VM and wave, the latest event
of each step), so a record is one INSERT: atomic by construction, and the log can never disagree
with a separate state table. Records go through the group commit of store.py. The machines check
every transition before it is recorded and only one process at a time runs from a journal (an
flock), so the log is always a valid history. Inputs, outputs and errors pass through migrate.core.redact
first: secrets are never stored.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from migrate.core.errors import AdapterError, InputError, MigrateError, OperationalError
from migrate.core.redact import redact, redact_text
from migrate.engine.journal_check import (
    JSON_ERRORS,
    check_journal,
    check_members,
    damaged,
    json_damage,
    load_json,
    load_object,
    parse_run,
    read_rows,
)
from migrate.engine.plan import RunPlan, plan_digest
from migrate.engine.store import JournalWriter, Synchronous, connect, connect_readonly

__all__ = [
    "SCHEMA_VERSION",
    "CycleRecord",
    "EntityRecord",
    "EventRecord",
    "Journal",
    "RedactedJson",
    "RunRecord",
    "StepRecord",
    "error_info",
    "new_run_id",
    "redacted_json",
    "step_key",
]

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_no INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    plan TEXT NOT NULL,
    playbooks TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    run_no INTEGER NOT NULL REFERENCES runs(run_no),
    ts REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('run', 'wave', 'vm')),
    entity_id TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('run_created', 'run_status', 'transition', 'step_started',
                                         'step_finished', 'step_failed')),
    trigger TEXT,
    src TEXT,
    dst TEXT,
    step TEXT,
    attempt INTEGER,
    idem_key TEXT,
    inputs TEXT,
    outputs TEXT,
    error TEXT
);
-- Appended in run order, so inserts land on the last page; per-VM queries scan the run's events.
CREATE INDEX IF NOT EXISTS events_by_run ON events(run_no);
CREATE TABLE IF NOT EXISTS blocks (
    id INTEGER PRIMARY KEY,
    run_no INTEGER NOT NULL REFERENCES runs(run_no),
    ts REAL NOT NULL,
    vm TEXT NOT NULL,
    part TEXT NOT NULL,
    target TEXT NOT NULL,
    blocks TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_by_part ON blocks(run_no, vm, part);
CREATE TABLE IF NOT EXISTS cycles (
    id INTEGER PRIMARY KEY,
    run_no INTEGER NOT NULL REFERENCES runs(run_no),
    ts REAL NOT NULL,
    vm TEXT NOT NULL,
    cycle INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cycles_by_vm ON cycles(run_no, vm);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    run_no INTEGER NOT NULL REFERENCES runs(run_no),
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    entity_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    id INTEGER PRIMARY KEY,
    run_no INTEGER NOT NULL REFERENCES runs(run_no),
    ts REAL NOT NULL,
    request INTEGER NOT NULL,
    vm TEXT NOT NULL,
    data TEXT NOT NULL
);
"""

_COLUMNS = "run_no, ts, kind, entity_id, event, trigger, src, dst, step, attempt, idem_key, inputs, outputs, error"
_WIDTH = len(_COLUMNS.split(","))
_INSERT_INTO = f"INSERT INTO events({_COLUMNS}) VALUES "  # noqa: S608 - constant column list
_INSERT = _INSERT_INTO + "(" + ",".join("?" * _WIDTH) + ")"


class RedactedJson(str):
    """JSON text already redacted by `redacted_json` (reused when many records carry the same inputs)."""

    __slots__ = ()


def redacted_json(value: Any) -> RedactedJson:
    """Redacted, compact, stable JSON of `value`."""
    return RedactedJson(json.dumps(redact(value), sort_keys=True, separators=(",", ":"), default=str))


def _dump(value: Any) -> str | None:
    """Redacted JSON (None stays NULL)."""
    if value is None or isinstance(value, RedactedJson):
        return value
    return redacted_json(value)


def new_run_id() -> str:
    """A new run's id: `run-<UTC time>-<6 hex digits>`."""
    return f"run-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def step_key(run_id: str, kind: str, entity_id: str, step: str) -> str:
    """The idempotency key of one step of one VM (`run:vm:phase`) or wave (`run:wave-N:step`)."""
    return f"{run_id}:{entity_id}:{step}" if kind == "vm" else f"{run_id}:wave-{entity_id}:{step}"


def error_info(exc: BaseException) -> dict[str, Any]:
    """What the journal keeps of an error: type, message (redacted), retryable, and provider details."""
    info: dict[str, Any] = {"type": type(exc).__name__, "message": redact_text(str(exc)),
                            "retryable": bool(getattr(exc, "retryable", False))}
    if isinstance(exc, AdapterError):
        info.update(provider=exc.provider, op=exc.op, endpoint=exc.endpoint)
    elif isinstance(exc, MigrateError):
        info["exit_code"] = exc.exit_code
    return info


@dataclass(frozen=True)
class RunRecord:
    """One run: id, status, digest, and the plan and playbooks it was started with."""

    run_id: str
    status: str
    plan_digest: str
    plan: RunPlan
    playbooks: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class EntityRecord:
    """The current state of one VM or wave (`phase`: its latest step)."""

    kind: str
    id: str
    wave: int
    state: str
    phase: str | None
    error: dict[str, Any] | None
    updated_at: float | None


@dataclass(frozen=True)
class StepRecord:
    """The latest attempt at one phase or hook of one VM or wave."""

    key: str
    kind: str
    entity_id: str
    step: str
    status: str
    attempt: int
    inputs: Any
    outputs: Any
    error: dict[str, Any] | None
    started_at: float
    finished_at: float | None


@dataclass(frozen=True)
class CycleRecord:
    """One finished replication cycle of a VM (`data`: the disks' change ids, bytes, extents, seconds)."""

    vm: str
    cycle: int
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class EventRecord:
    """One line of history."""

    id: int
    ts: float
    kind: str
    entity_id: str
    event: str
    trigger: str | None
    src: str | None
    dst: str | None
    step: str | None
    attempt: int | None
    key: str | None
    inputs: Any
    outputs: Any
    error: dict[str, Any] | None

    @property
    def time(self) -> datetime:
        """When it happened (UTC)."""
        return datetime.fromtimestamp(self.ts, UTC)


class Journal:
    """A journal file: create or open runs, record transitions and steps, query states and history.

    An existing journal is checked (read-only) before it is used: a damaged one, or a file that is not a
    journal, is an InputError naming the file and the damage, and is left as it was (journal_check).
    `read_only` opens it for queries only: nothing is ever written, not even a checkpoint.
    """

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL", create: bool = True,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.read_only = read_only
        self._tables: set[str] = set()   # tables known to exist (see `_has`)
        if not self.path.exists():
            if not create or read_only:
                raise InputError.single(str(self.path), "", "no such journal (start a run with `migrate run`)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not create or read_only or self.path.stat().st_size:
            # a run killed while it created the journal left some of its tables: a new run finishes it
            check_journal(self.path, SCHEMA_VERSION, unfinished_ok=create and not read_only)
        self._plans: dict[int, tuple[RunPlan, dict[str, Any]]] = {}
        try:
            self._conn = connect_readonly(self.path) if read_only else self._open_for_writing()
            self._reader = self._conn if read_only else connect(self.path, synchronous)
            self._reader.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as exc:
            raise OperationalError(f"{self.path}: cannot open the journal: {exc}") from None
        self._writer = JournalWriter(self._conn, _INSERT_INTO, _WIDTH)
        self._read_lock = threading.Lock()
        self._run_nos: dict[str, int] = {}
        self._lock_file: IO[str] | None = None

    def _open_for_writing(self) -> sqlite3.Connection:
        conn = connect(self.path, self.synchronous)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OperationalError(f"{self.path}: journal schema {version} is newer than this tool's "
                                   f"({SCHEMA_VERSION})")
        if version < SCHEMA_VERSION:  # a new file, or an older one gaining tables (all IF NOT EXISTS)
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return conn

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued, release the runner lock and close the file."""
        try:
            if not self.read_only:
                self._writer.close()
        finally:
            self.release_runner_lock()
            self._reader.close()
            self._conn.close()

    def flush(self) -> None:
        """Return once every record submitted so far is committed."""
        self._writer.flush()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def acquire_runner_lock(self) -> None:
        """Make sure no other process runs from this journal (an flock, freed even by kill -9)."""
        if self._lock_file is not None:
            return
        handle = open(f"{self.path}.lock", "a+")  # noqa: SIM115 - held until release_runner_lock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise OperationalError(f"{self.path} is in use by a running migration ({holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def runner_active(self) -> bool:
        """Whether a process runs from this journal now (holds the runner lock); read-only, changes nothing."""
        if self._lock_file is not None:
            return True
        try:
            handle = open(f"{self.path}.lock")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False

    def release_runner_lock(self) -> None:
        """Let another process run from this journal."""
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    @property
    def commits(self) -> int:
        """Transactions committed by this process (records are grouped into them)."""
        return self._writer.commits

    @property
    def records(self) -> int:
        """Records written by this process."""
        return self._writer.records

    # -- runs --------------------------------------------------------------------------------------

    def create_run(self, plan: RunPlan, playbooks: Mapping[str, Any], run_id: str | None = None) -> RunRecord:
        """Record a new run of `plan` (playbooks by method, as plain JSON data); everything starts pending."""
        run_id = run_id or new_run_id()
        digest = plan_digest(plan, playbooks)
        now = time.time()
        plan_json = plan.model_dump_json()
        books_json = json.dumps(playbooks, sort_keys=True)

        def write(conn: sqlite3.Connection) -> None:
            try:
                run_no = conn.execute("INSERT INTO runs(run_id, created_at, updated_at, status, plan_digest, plan, "
                                      "playbooks) VALUES (?,?,?,?,?,?,?) RETURNING run_no",
                                      (run_id, now, now, "created", digest, plan_json, books_json)).fetchone()[0]
            except sqlite3.IntegrityError:
                raise InputError.single(str(self.path), "run_id", f"run {run_id!r} already exists") from None
            conn.execute(_INSERT, (run_no, now, "run", run_id, "run_created", None, None, None, None, None, None,
                                   _dump({"plan_digest": digest}), None, None))

        self._writer.submit(write)
        return self.open_run(run_id)

    def runs(self) -> list[RunRecord]:
        """Every run in this journal, oldest first."""
        return [self._run_record(row) for row in self._read("SELECT * FROM runs ORDER BY run_no")]

    def open_run(self, run_id: str | None = None, *, plan: RunPlan | None = None,
                 playbooks: Mapping[str, Any] | None = None) -> RunRecord:
        """A run by id (default: the latest); refuses a `plan` (and playbooks) other than the run's own."""
        if run_id is None:
            rows = self._read("SELECT * FROM runs ORDER BY run_no DESC LIMIT 1")
            if not rows:
                raise InputError.single(str(self.path), "", "this journal holds no run (start one with `migrate run`)")
        else:
            rows = self._read("SELECT * FROM runs WHERE run_id=?", (run_id,))
            if not rows:
                raise InputError.single(str(self.path), "run_id", f"no run {run_id!r} in this journal")
        record = self._run_record(rows[0])
        if plan is not None:
            digest = plan_digest(plan, record.playbooks if playbooks is None else playbooks)
            if digest != record.plan_digest:
                raise InputError.single(
                    str(self.path), "plan",
                    f"run {record.run_id} was started from another plan (digest {record.plan_digest[:12]}, "
                    f"this one {digest[:12]}): resume it without a plan or with its own plan, or start a new "
                    "run in another journal")
        return record

    def _run_no(self, run_id: str) -> int:
        number = self._run_nos.get(run_id)
        if number is None:
            rows = self._read("SELECT run_no FROM runs WHERE run_id=?", (run_id,))
            if not rows:
                raise InputError.single(str(self.path), "run_id", f"no run {run_id!r} in this journal")
            number = self._run_nos[run_id] = int(rows[0][0])
        return number

    def set_run_status(self, run_id: str, status: str, data: Mapping[str, Any] | None = None, *,
                       wait: bool = True) -> None:
        """Record the run's overall status (derived from its waves by the runner)."""
        run_no, now, data_json = self._run_no(run_id), time.time(), _dump(data)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE runs SET status=?, updated_at=? WHERE run_no=?", (status, now, run_no))
            conn.execute(_INSERT, (run_no, now, "run", run_id, "run_status", None, None, status, None, None, None,
                                   data_json, None, None))

        self._writer.submit(write, wait=wait)

    # -- records -----------------------------------------------------------------------------------

    def _append(self, row: tuple[Any, ...], wait: bool) -> None:
        self._writer.append(row, wait=wait)

    def record_transition(self, run_id: str, kind: str, entity_id: str, trigger: str, src: str, dst: str,
                          data: Mapping[str, Any] | None = None, *, wait: bool = True) -> None:
        """One state change of a VM or wave, with its inputs (an `error` in data is recorded as the error)."""
        inputs = {k: v for k, v in (data or {}).items() if k != "error"}
        error = (data or {}).get("error")
        self._append((self._run_no(run_id), time.time(), kind, entity_id, "transition", trigger, src, dst, None, None,
                      None, _dump(inputs or None), None, _dump(error)), wait)

    def step_started(self, run_id: str, kind: str, entity_id: str, step: str,
                     inputs: Mapping[str, Any] | RedactedJson | None = None, *, attempt: int | None = None,
                     wait: bool = True) -> tuple[str, int]:
        """A phase or hook starts: returns (idempotency key, attempt number, counted across resumes).

        With `wait` (the default) it is durable on return, with everything recorded before it.
        """
        key = step_key(run_id, kind, entity_id, step)
        if attempt is None:
            self.flush()  # count the starts still queued too
            previous = self._read("SELECT COUNT(*) FROM events WHERE run_no=? AND kind=? AND entity_id=? AND "
                                  "event='step_started' AND step=?", (self._run_no(run_id), kind, entity_id, step))
            attempt = int(previous[0][0]) + 1
        self._append((self._run_no(run_id), time.time(), kind, entity_id, "step_started", None, None, None, step,
                      attempt, key, _dump(inputs), None, None), wait)
        return key, attempt

    def step_finished(self, run_id: str, kind: str, entity_id: str, step: str, attempt: int,
                      outputs: Mapping[str, Any] | None = None, *, wait: bool = True) -> None:
        """A phase or hook finished; its outputs are kept for later phases and reports."""
        self._append((self._run_no(run_id), time.time(), kind, entity_id, "step_finished", None, None, None, step,
                      attempt, step_key(run_id, kind, entity_id, step), None, _dump(outputs or {}), None), wait)

    def step_failed(self, run_id: str, kind: str, entity_id: str, step: str, attempt: int,
                    error: Mapping[str, Any], *, wait: bool = True) -> None:
        """A phase or hook failed (the runner decides whether it is retried)."""
        self._append((self._run_no(run_id), time.time(), kind, entity_id, "step_failed", None, None, None, step,
                      attempt, step_key(run_id, kind, entity_id, step), None, None, _dump(dict(error))), wait)

    # -- queries -----------------------------------------------------------------------------------

    def record_blocks(self, run_id: str, vm_id: str, part: str, target: str, blocks: list[int]) -> None:
        """Durably record that `blocks` of `part` (e.g. a disk) of a VM are in `target` (e.g. a snapshot)."""
        run_no, now, text = self._run_no(run_id), time.time(), json.dumps(sorted(blocks), separators=(",", ":"))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO blocks(run_no, ts, vm, part, target, blocks) VALUES (?, ?, ?, ?, ?, ?)",
                         (run_no, now, vm_id, part, target, text))

        self._writer.submit(write, wait=True)

    def blocks_done(self, run_id: str, vm_id: str, part: str, target: str | None = None) -> dict[str, frozenset[int]]:
        """Blocks recorded for a VM's part, by target (only `target` when given)."""
        rows = self._read("SELECT id, target, blocks FROM blocks WHERE run_no=? AND vm=? AND part=?",
                          (self._run_no(run_id), vm_id, part))
        found: dict[str, set[int]] = {}
        for row in rows:
            if target is None or row["target"] == target:
                found.setdefault(row["target"], set()).update(
                    load_json(self.path, f"blocks row {row['id']}", "blocks", row["blocks"]))
        return {name: frozenset(blocks) for name, blocks in found.items()}

    def record_cycle(self, run_id: str, vm_id: str, cycle: int, data: Mapping[str, Any]) -> None:
        """Durably record that replication cycle `cycle` of a VM finished (`data`: change ids and figures)."""
        run_no, now, text = self._run_no(run_id), time.time(), json.dumps(dict(data), separators=(",", ":"))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO cycles(run_no, ts, vm, cycle, data) VALUES (?, ?, ?, ?, ?)",
                         (run_no, now, vm_id, cycle, text))

        self._writer.submit(write, wait=True)

    def _has(self, table: str) -> bool:
        """Whether the file has `table` (a journal of an older schema, opened read-only, is not upgraded);
        a table found is not asked for again (the replication loop asks every few seconds)."""
        if table not in self._tables and self._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                                    (table,)):
            self._tables.add(table)
        return table in self._tables

    def cycles(self, run_id: str, vm_id: str | None = None) -> list[CycleRecord]:
        """Finished replication cycles of a run (of one VM when given), in order."""
        if not self._has("cycles"):
            return []
        sql = "SELECT id, ts, vm, cycle, data FROM cycles WHERE run_no=?"
        args: tuple[Any, ...] = (self._run_no(run_id),)
        if vm_id is not None:
            sql, args = sql + " AND vm=?", (*args, vm_id)
        rows = self._read(sql + " ORDER BY id", args)
        return [CycleRecord(vm=row["vm"], cycle=int(row["cycle"]), at=datetime.fromtimestamp(row["ts"], UTC),
                            data=load_json(self.path, f"cycles row {row['id']}", "data", row["data"]) or {})
                for row in rows]

    def request(self, run_id: str, kind: str, scope: str, entity_id: str) -> None:
        """Durably record an operator's request (e.g. kind `cutover`, scope `wave` or `vm`)."""
        run_no, now = self._run_no(run_id), time.time()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO requests(run_no, ts, kind, scope, entity_id) VALUES (?, ?, ?, ?, ?)",
                         (run_no, now, kind, scope, entity_id))

        self._writer.submit(write, wait=True)

    def requests(self, run_id: str, kind: str) -> set[tuple[str, str]]:
        """(scope, entity id) of every request of `kind` made to a run."""
        if not self._has("requests"):
            return set()
        rows = self._read("SELECT scope, entity_id FROM requests WHERE run_no=? AND kind=?",
                          (self._run_no(run_id), kind))
        return {(str(row["scope"]), str(row["entity_id"])) for row in rows}

    def request_rows(self, run_id: str, kinds: tuple[str, ...]) -> list[tuple[int, str, str, str]]:
        """(id, kind, scope, entity id) of the requests of these kinds made to a run, in order."""
        if not self._has("requests"):
            return []
        marks = ",".join("?" * len(kinds))
        rows = self._read(f"SELECT id, kind, scope, entity_id FROM requests WHERE run_no=? AND kind IN ({marks}) "  # noqa: S608
                          "ORDER BY id", (self._run_no(run_id), *kinds))
        return [(int(r["id"]), str(r["kind"]), str(r["scope"]), str(r["entity_id"])) for r in rows]

    def record_outcome(self, run_id: str, request: int, vm_id: str, data: Mapping[str, Any]) -> None:
        """Durably record what request `request` did to a VM."""
        run_no, now, text = self._run_no(run_id), time.time(), json.dumps(redact(dict(data)), separators=(",", ":"))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO outcomes(run_no, ts, request, vm, data) VALUES (?, ?, ?, ?, ?)",
                         (run_no, now, request, vm_id, text))

        self._writer.submit(write, wait=True)

    def outcomes(self, run_id: str, vm_id: str | None = None) -> list[tuple[int, str, datetime, dict[str, Any]]]:
        """(request, vm, when, data) of every outcome of a run (of one VM when given), in order."""
        if not self._has("outcomes"):
            return []
        sql = "SELECT id, request, vm, ts, data FROM outcomes WHERE run_no=?"
        args: tuple[Any, ...] = (self._run_no(run_id),)
        if vm_id is not None:
            sql, args = sql + " AND vm=?", (*args, vm_id)
        return [(int(r["request"]), str(r["vm"]), datetime.fromtimestamp(r["ts"], UTC),
                 load_json(self.path, f"outcomes row {r['id']}", "data", r["data"]) or {})
                for r in self._read(sql + " ORDER BY id", args)]

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._read_lock:
            return read_rows(self.path, self._reader, sql, args)

    def _run_record(self, row: sqlite3.Row) -> RunRecord:
        parsed = self._plans.get(row["run_no"])
        if parsed is None:  # a run's plan never changes: validated once
            parsed = self._plans[row["run_no"]] = parse_run(self.path, row)
        return RunRecord(run_id=row["run_id"], status=row["status"], plan_digest=row["plan_digest"], plan=parsed[0],
                         playbooks=parsed[1], created_at=row["created_at"], updated_at=row["updated_at"])

    def entities(self, run_id: str, kind: str, plan: RunPlan | None = None) -> list[EntityRecord]:
        """Current state of every VM (kind `vm`) or wave (`wave`) of a run, in plan order."""
        run_no = self._run_no(run_id)
        plan = plan or self.open_run(run_id).plan
        transitions = self._read(
            "SELECT id, entity_id, dst, error, ts FROM events WHERE id IN (SELECT MAX(id) FROM events WHERE run_no=? "
            "AND kind=? AND event='transition' GROUP BY entity_id)", (run_no, kind))
        starts = self._read(
            "SELECT id, entity_id, step FROM events WHERE id IN (SELECT MAX(id) FROM events WHERE run_no=? "
            "AND kind=? AND event='step_started' GROUP BY entity_id)", (run_no, kind))
        members: list[tuple[str, int]] = ([(str(w.id), w.id) for w in plan.waves] if kind == "wave"
                   else [(vm_id, w.id) for w in plan.waves for vm_id in w.vms])
        check_members(self.path, run_id, kind, [*transitions, *starts], {entity_id for entity_id, _ in members})
        last = {r["entity_id"]: r for r in transitions}
        steps = {r["entity_id"]: r["step"] for r in starts}
        try:
            errors = {r["entity_id"]: load_object(r["error"]) for r in transitions}
        except JSON_ERRORS:
            raise json_damage(self.path, "events", transitions, ("error",)) from None
        records = []
        for entity_id, wave in members:
            row = last.get(entity_id)
            records.append(EntityRecord(
                kind=kind, id=entity_id, wave=wave, state=row["dst"] if row else "pending", phase=steps.get(entity_id),
                error=errors.get(entity_id), updated_at=row["ts"] if row else None))
        return records

    def vm_states(self, run_id: str) -> dict[str, EntityRecord]:
        """Current state of every VM by id."""
        return {e.id: e for e in self.entities(run_id, "vm")}

    def wave_states(self, run_id: str) -> dict[int, EntityRecord]:
        """Current state of every wave by id."""
        return {e.wave: e for e in self.entities(run_id, "wave")}

    def steps(self, run_id: str, kind: str | None = None, entity_id: str | None = None) -> list[StepRecord]:
        """The latest attempt of every step of a run (optionally of one kind or entity), in start order."""
        steps: dict[str, StepRecord] = {}
        for event in self.history(run_id, kind, entity_id, steps_only=True):
            if event.attempt is None or event.step is None or event.key != step_key(run_id, event.kind,
                                                                                      event.entity_id, event.step):
                raise damaged(self.path, [(f"events row {event.id}: idem_key", f"{event.key!r} is not the key of "
                                           f"step {event.step!r} of {event.kind} {event.entity_id!r} (attempt "
                                           f"{event.attempt})")])
            if event.event == "step_started":
                steps.pop(event.key, None)  # re-inserted: latest start order
                steps[event.key] = StepRecord(
                    key=event.key, kind=event.kind, entity_id=event.entity_id, step=event.step, status="started",
                    attempt=event.attempt, inputs=event.inputs, outputs=None, error=None, started_at=event.ts,
                    finished_at=None)
            elif event.key in steps:
                begun = steps[event.key]
                steps[event.key] = StepRecord(
                    key=begun.key, kind=begun.kind, entity_id=begun.entity_id, step=begun.step,
                    status=event.event.removeprefix("step_"), attempt=begun.attempt, inputs=begun.inputs,
                    outputs=event.outputs, error=event.error, started_at=begun.started_at, finished_at=event.ts)
        return list(steps.values())

    def history(self, run_id: str, kind: str | None = None, entity_id: str | None = None, *,
                limit: int | None = None, steps_only: bool = False) -> list[EventRecord]:
        """Events of a run (optionally of one kind or one VM or wave), oldest first."""
        sql = "SELECT * FROM events WHERE run_no=?"
        args: list[Any] = [self._run_no(run_id)]
        if kind is not None:
            sql, args = sql + " AND kind=?", [*args, kind]
        if entity_id is not None:
            sql, args = sql + " AND entity_id=?", [*args, entity_id]
        if steps_only:
            sql += " AND event IN ('step_started', 'step_finished', 'step_failed')"
        sql += " ORDER BY id"
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, limit]
        rows = self._read(sql, tuple(args))
        try:
            return [EventRecord(id=r["id"], ts=r["ts"], kind=r["kind"], entity_id=r["entity_id"], event=r["event"],
                                trigger=r["trigger"], src=r["src"], dst=r["dst"], step=r["step"],
                                attempt=r["attempt"], key=r["idem_key"], inputs=load_object(r["inputs"]),
                                outputs=load_object(r["outputs"]), error=load_object(r["error"])) for r in rows]
        except JSON_ERRORS:
            raise json_damage(self.path, "events", rows, ("inputs", "outputs", "error")) from None

    def pragma(self, name: str) -> Any:
        """A PRAGMA value of the journal's connection (journal_mode, synchronous, user_version)."""
        if name not in {"journal_mode", "synchronous", "user_version"}:
            raise ValueError(name)
        return self._reader.execute(f"PRAGMA {name}").fetchone()[0]
