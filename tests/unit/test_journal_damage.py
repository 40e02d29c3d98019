"""Damaged journals: every kind of damage is exit 2 naming the file and the damage, and the file stays as it was."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrate.cli.main import cli
from migrate.core.errors import InputError
from migrate.engine.journal import Journal
from migrate.engine.journal_check import TABLES
from tests.unit.journal_damage_support import build_journal, digest, status
from tests.unit.test_engine_helpers import _quiet_logs

__all__ = ["_quiet_logs"]

SITE = """version: 1
source: {name: onprem, url: "https://127.0.0.1:9/sdk", username: u, password_env: MIGRATE_TEST_PW}
"""
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """A checkpointed journal and one whose records are still in its -wal, built once."""
    root = tmp_path_factory.mktemp("bases")
    return {wal: build_journal(root / f"base-{int(wal)}.db", in_wal=wal) for wal in (False, True)}


def _copy(base: Path, to: Path) -> Path:
    for suffix in ("", "-wal"):
        if Path(f"{base}{suffix}").exists():
            shutil.copyfile(f"{base}{suffix}", f"{to}{suffix}")
    return to


def _sql(*statements: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()
    return edit


def _flip(offset: Callable[[Path], int], mask: int = 0xFF, suffix: str = "") -> Callable[[Path], None]:
    def flip(path: Path) -> None:
        target = Path(f"{path}{suffix}")
        data = bytearray(target.read_bytes())
        data[offset(path)] ^= mask
        target.write_bytes(bytes(data))
    return flip


def _events_page(path: Path) -> int:
    """The offset of the first byte (the page type) of the events table's root page."""
    conn = sqlite3.connect(path)
    try:
        root = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name='events'").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return int((root - 1) * size)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 3 // 5 + 100])


def _duplicate_run(path: Path) -> None:
    columns = ", ".join(TABLES["runs"][1:])
    _sql("CREATE TABLE runs2 (run_no INTEGER PRIMARY KEY, run_id TEXT NOT NULL, created_at REAL NOT NULL, "
         "updated_at REAL NOT NULL, status TEXT NOT NULL, plan_digest TEXT NOT NULL, plan TEXT NOT NULL, "
         "playbooks TEXT NOT NULL)", "INSERT INTO runs2 SELECT * FROM runs", "DROP TABLE runs",
         "ALTER TABLE runs2 RENAME TO runs",
         f"INSERT INTO runs({columns}) SELECT {columns} FROM runs")(path)  # noqa: S608 - test SQL


def _set(column: str, value: str, event: str) -> Callable[[Path], None]:
    """Set `column` of the first VM event `event` to the SQL expression `value`."""
    return _sql(f"UPDATE events SET {column}={value} WHERE id=(SELECT MIN(id) FROM events "  # noqa: S608 - test SQL
                f"WHERE event='{event}' AND kind='vm')")


# (id, in the WAL?, damage, what the message must say)
DAMAGE: list[tuple[str, bool, Callable[[Path], None], str]] = [
    ("truncated", False, _truncate, "truncated"),
    ("header-magic", False, _flip(lambda p: 3), "not an SQLite database"),
    ("header-page-size", False, _flip(lambda p: 16, 0x03), "page size"),
    ("header-encoding", False, _flip(lambda p: 59, 0x06), "text encoding"),
    ("page-type", False, _flip(_events_page, 0x5A), "malformed"),
    ("newer-schema", False, _sql("PRAGMA user_version=4"), "journal schema 4 is newer"),
    ("missing-table", False, _sql("DROP TABLE events"), "table events: missing"),
    ("missing-column", False, _sql("ALTER TABLE events DROP COLUMN outputs"), "column(s) outputs missing"),
    ("plan-not-json", False, _sql("UPDATE runs SET plan='{\"waves\": ['"), "plan = '{\"waves\": [': not a JSON"),
    ("plan-invalid", False, _sql("UPDATE runs SET plan=json_set(plan, '$.waves[0].vms[0]', 'ghost')"),
     "plan: not a valid run plan (waves.0.vms.0: unknown VM 'ghost'"),
    ("playbook-invalid", False, _sql("UPDATE runs SET playbooks=json_set(playbooks, '$.noop.phases', 7)"),
     "playbooks.noop: not a valid playbook"),
    ("outputs-not-json", False, _set("outputs", "'{\"a\":'", "step_finished"),
     ": outputs: not a JSON object (Expecting value"),
    ("outputs-a-list", False, _set("outputs", "'[1]'", "step_finished"),
     ": outputs: not a JSON object (a JSON list"),
    ("unknown-state", False, _set("dst", "'teleported'", "transition"),
     "dst = 'teleported': not a known state"),
    ("unknown-vm", False, _set("entity_id", "'vm-9999'", "transition"),
     "vm 'vm-9999' is not in the plan of run run-1"),
    ("unknown-vm-step", False,
     _set("entity_id", "'vm-9999'", "step_finished"),
     "is not the key of step 'precheck' of vm 'vm-9999'"),
    ("invalid-utf8", False,
     _set("outputs", "CAST(x'7b2261223a22ff227d' AS TEXT)", "step_finished"),
     ": outputs: not UTF-8 text"),
    ("null-attempt", False, _set("attempt", "NULL", "step_started"),
     "attempt = NULL: not a positive integer"),
    ("zero-attempt", False, _set("attempt", "0", "step_started"),
     "attempt = '0': not a positive integer"),
    ("orphan-events", False, _sql("DELETE FROM runs"), "no run with this run_no"),
    ("duplicate-run-id", False, _duplicate_run, "run_id 'run-1' is used more than once"),
    ("wal-frame", True, _flip(lambda p: 32 + 2 * 4120 + 24 + 100, suffix="-wal"), "frame 3 of"),
    ("wal-header", True, _flip(lambda p: 9, suffix="-wal"), "the WAL header is damaged"),
]


@pytest.mark.parametrize(("in_wal", "damage", "says"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_damage_is_exit_2_naming_file_and_damage(in_wal: bool, damage: Callable[[Path], None], says: str,
                                                 bases: dict[bool, Path], tmp_path: Path) -> None:
    """`migrate status` (and --json) exits 2 naming the journal and the damage, and changes no byte of it."""
    journal = _copy(bases[in_wal], tmp_path / "run.db")
    damage(journal)
    before = digest(journal)
    for extra in ((), ("--json",)):
        result = status(journal, *extra)
        assert result.exit_code == 2, result.output
        assert str(journal) in result.output and says in result.output, result.output
        assert "internal error" not in result.output and "Traceback" not in result.output
        assert digest(journal) == before


@pytest.mark.parametrize("content", [b"", b"a text file\n" * 50, PNG], ids=["empty", "text", "png"])
def test_not_a_journal_is_exit_2(content: bytes, tmp_path: Path) -> None:
    """An empty file, a text file or a PNG is not a journal: exit 2 saying so, and the file is untouched."""
    journal = tmp_path / "run.db"
    journal.write_bytes(content)
    result = status(journal)
    assert result.exit_code == 2, result.output
    assert str(journal) in result.output
    assert ("the file is empty" if not content else "not an SQLite database") in result.output
    assert journal.read_bytes() == content and not Path(f"{journal}-wal").exists()


def test_resume_and_rollback_refuse_a_damaged_journal(bases: dict[bool, Path], tmp_path: Path) -> None:
    """resume and rollback exit 2 on a damaged journal, before anything is written to it."""
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    journal = _copy(bases[True], tmp_path / "run.db")
    _flip(lambda p: 32 + 2 * 4120 + 24 + 100, suffix="-wal")(journal)
    before = digest(journal)
    for verb in ("resume", "rollback"):
        result = CliRunner().invoke(cli, [verb, "--config", str(site), "--journal", str(journal)],
                                    env={"MIGRATE_TEST_PW": "x"})
        assert result.exit_code == 2, result.output
        assert "fails its checksum" in result.output and "migrate reconcile" in result.output
        assert digest(journal) == before


def test_library_open_refuses_damage_and_changes_nothing(bases: dict[bool, Path], tmp_path: Path) -> None:
    """Journal(path) raises InputError on a damaged journal (even with create=True) and leaves it as it was."""
    journal = _copy(bases[False], tmp_path / "run.db")
    _sql("UPDATE events SET src='nowhere' WHERE id=(SELECT MIN(id) FROM events WHERE event='transition')")(journal)
    before = digest(journal)
    for kwargs in ({}, {"create": False}, {"read_only": True}):
        with pytest.raises(InputError, match="src = 'nowhere': not a known state") as caught:
            Journal(journal, **kwargs)  # type: ignore[arg-type]
        assert caught.value.problems[-1].message.startswith("the journal is damaged: restore a copy")
    assert digest(journal) == before


def test_sound_journal_status_is_read_only(bases: dict[bool, Path], tmp_path: Path) -> None:
    """A sound journal, even one with records in its -wal, passes the check and status writes nothing to it."""
    journal = _copy(bases[True], tmp_path / "run.db")
    before = digest(journal)
    result = status(journal, "--json")
    assert result.exit_code == 0, result.output
    assert '"status": "partial"' in result.output
    assert digest(journal) == before


def test_checked_columns_match_the_schema(tmp_path: Path) -> None:
    """The check expects exactly the tables and columns a new journal has."""
    with Journal(tmp_path / "new.db"):
        pass
    conn = sqlite3.connect(tmp_path / "new.db")
    try:
        for table, columns in TABLES.items():
            assert tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})")) == columns
    finally:
        conn.close()
