"""Bad input to status / resume / rollback: exit 2 naming the journal, run, VM or wave; nothing changes."""

from __future__ import annotations

from pathlib import Path

from migrate.engine.journal import Journal
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from tests.helpers import run_cli

SITE = """version: 1
source: {name: onprem, url: "https://127.0.0.1:9/sdk", username: u, password_env: MIGRATE_TEST_PW}
"""


def _site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE)
    return path


def test_missing_journal_is_bad_input(tmp_path: Path) -> None:
    site, journal = _site(tmp_path), tmp_path / "none.db"
    for args in (["status"], ["resume", "--config", site], ["rollback", "--config", site]):
        result = run_cli(*args, "--journal", journal, env={"MIGRATE_TEST_PW": "x"})
        assert result.code == 2, result
        assert "no such journal" in result.stderr and "Traceback" not in result.output
    assert not journal.exists()


def test_rollback_of_unknown_vm_or_wave_changes_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    plan = RunPlan(waves=[WavePlan(id=1, vms=["vm-a"], method="cold")], vms=[VmFacts(id="vm-a", name="a")])
    with Journal(journal) as jr:
        run_id = jr.create_run(plan, {}).run_id
        before = len(jr.history(run_id))
    result = run_cli("rollback", "--config", _site(tmp_path), "--journal", journal, "--vm", "ghost", "--wave", "7",
                     env={"MIGRATE_TEST_PW": "x"})
    assert result.code == 2, result
    assert "--vm: ghost" in result.stderr and "--wave: 7" in result.stderr
    with Journal(journal, create=False) as jr:
        assert len(jr.history(run_id)) == before
    unknown_run = run_cli("status", "--journal", journal, "--run-id", "run-nope")
    assert unknown_run.code == 2 and "run-nope" in unknown_run.stderr
