"""Helpers of the damaged-journal tests: a small real journal, ways to damage it, and `migrate status` on it.

A base journal is made by the engine (noop phases, one VM failing) and kept either checkpointed (all in
the .db file) or with its records still in the WAL. A damage flips bytes (anywhere, in the header, in the
WAL), truncates the file, or edits the database through sqlite3 like a careless hand would: a cell set to
garbage, NULL, invalid UTF-8 or another state, a row deleted or duplicated, a table dropped, the schema
version changed.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from adapters.noop.estate import NoopEstate
from migrate.cli.main import cli
from migrate.core.errors import AdapterError
from migrate.engine import Runner
from migrate.engine.context import PhaseContext
from migrate.engine.journal import Journal
from migrate.engine.noop import NOOP
from tests.unit.test_engine_helpers import fast_settings, make_plan, registry

__all__ = ["Damage", "build_journal", "damage", "digest", "status"]

TABLES = {"runs": ["run_no", "run_id", "created_at", "updated_at", "status", "plan_digest", "plan", "playbooks"],
          "events": ["run_no", "ts", "kind", "entity_id", "event", "trigger", "src", "dst", "step", "attempt",
                     "idem_key", "inputs", "outputs", "error"],
          "blocks": ["run_no", "ts", "vm", "part", "target", "blocks"]}
VALUES: list[object] = [
    None, 0, -1, 7, 2**62, 1.5, "", "garbage", "{", "[]", "{}", "[1, 2]", '"x"', "null", "true", "NaN",
    '{"target_id": 5, "added": 3}', '{"message": null}', '{"waves": "x", "vms": 1}', "bogus", "completed",
    "rolled_back", "vm-9999", "99", "run-1", "rollback:copy_disks", b"\xff\xfe\x00bad", "é☃",
]


def _fail_copy(ctx: PhaseContext) -> Mapping[str, Any]:
    if ctx.vm.id == "vm-0001":
        raise AdapterError("vcenter", "copy", "disk gone")
    return NOOP.functions["copy_disks"](ctx)


def build_journal(path: Path, *, in_wal: bool = False) -> Path:
    """A real journal of a 5-VM noop run (one VM failed); with `in_wal`, its records are still in the -wal."""
    plan = make_plan([3, 2])
    estate = NoopEstate(plan.vms)
    work = path.with_name(path.name + ".work")
    journal = Journal(work)
    try:
        Runner(journal, registry(overrides={"copy_disks": _fail_copy}), adapters=estate.adapters(),
               settings=fast_settings()).start(plan, run_id="run-1")
        journal.flush()
        if in_wal:  # a copy taken while the journal is open: the .db plus a -wal holding the run
            for suffix in ("", "-wal"):
                shutil.copyfile(f"{work}{suffix}", f"{path}{suffix}")
    finally:
        journal.close()
    if not in_wal:
        shutil.copyfile(work, path)
    return path


def digest(path: Path) -> dict[str, str]:
    """sha256 of the journal and its -wal (what a check must leave untouched)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (path, Path(f"{path}-wal")) if p.exists() and p.stat().st_size}


@dataclass(frozen=True)
class Damage:
    """What was done to a journal (for the failure message)."""

    kind: str
    detail: str


def _flip(path: Path, rng: random.Random, start: int = 0, end: int | None = None, count: int = 0) -> str:
    data = bytearray(path.read_bytes())
    if not data:
        return "empty"
    end = min(len(data), end or len(data))
    places = [rng.randrange(start, end) for _ in range(count or rng.randint(1, 8))]
    for at in places:
        data[at] ^= rng.choice([0x01, 0x80, 0xFF, rng.randint(1, 255)])
    path.write_bytes(bytes(data))
    return f"offsets {places}"


def _edit(path: Path, rng: random.Random) -> str:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        table = rng.choice(["runs", "events", "events", "events", "blocks"])
        ids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table}")]  # noqa: S608 - test table names
        action = rng.choice(["cell", "cell", "cell", "cell", "json", "delete", "duplicate", "schema"])
        if action == "schema":
            sql = rng.choice(["DROP TABLE events", "DROP TABLE runs", "DROP TABLE blocks",
                              "ALTER TABLE events RENAME COLUMN outputs TO outs", "PRAGMA user_version=3",
                              "PRAGMA user_version=1", "PRAGMA user_version=0", "DROP INDEX events_by_run",
                              "ALTER TABLE runs ADD COLUMN extra TEXT"])
            conn.execute(sql)
            return sql
        if not ids:
            return f"{table} empty"
        rowid = rng.choice(ids)
        if action == "delete":
            conn.execute(f"DELETE FROM {table} WHERE rowid=?", (rowid,))  # noqa: S608
            return f"delete {table} {rowid}"
        if action == "duplicate":
            cols = ", ".join(TABLES[table])
            conn.execute(f"INSERT INTO {table}({cols}) SELECT {cols} FROM {table} WHERE rowid=?", (rowid,))  # noqa: S608
            return f"duplicate {table} {rowid}"
        column = rng.choice(TABLES[table])
        if action == "json":  # a small edit inside the existing text
            text = conn.execute(f"SELECT {column} FROM {table} WHERE rowid=?", (rowid,)).fetchone()[0]  # noqa: S608
            if isinstance(text, str) and text:
                at = rng.randrange(len(text))
                value: object = text[:at] + rng.choice(['"', "}", "]", ",", "x", "1", ""]) + text[at + 1:]
            else:
                value = rng.choice(VALUES)
        else:
            value = rng.choice(VALUES)
        if isinstance(value, bytes):  # invalid UTF-8 stored as TEXT
            conn.execute(f"UPDATE {table} SET {column}=CAST(? AS TEXT) WHERE rowid=?", (value, rowid))  # noqa: S608
        else:
            conn.execute(f"UPDATE {table} SET {column}=? WHERE rowid=?", (value, rowid))  # noqa: S608
        return f"{table}.{column} row {rowid} = {value!r}"[:200]
    except sqlite3.DatabaseError as exc:  # e.g. a constraint refused the edit: nothing changed
        return f"edit refused: {exc}"
    finally:
        conn.close()


def damage(path: Path, rng: random.Random) -> Damage:
    """Damage the journal at `path` in one random way."""
    wal = Path(f"{path}-wal")
    kinds = ["flip", "flip_header", "truncate", "edit", "edit", "edit"] + (["flip_wal"] * 2 if wal.exists() else [])
    kind = rng.choice(kinds)
    if kind == "flip":
        return Damage(kind, _flip(path, rng))
    if kind == "flip_header":
        return Damage(kind, _flip(path, rng, 0, 100, rng.randint(1, 3)))
    if kind == "flip_wal":
        return Damage(kind, _flip(wal, rng))
    if kind == "truncate":
        data = path.read_bytes()
        size = rng.randrange(len(data))
        path.write_bytes(data[:size])
        return Damage(kind, f"to {size} bytes")
    return Damage(kind, _edit(path, rng))


def status(path: Path, *extra: str) -> Result:
    """`migrate status --journal PATH [extra]`, in-process."""
    return CliRunner().invoke(cli, ["status", "--journal", str(path), *extra], catch_exceptions=True)
