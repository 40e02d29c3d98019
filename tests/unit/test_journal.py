"""The run journal: WAL, atomic records, idempotency keys, attempts, redaction, plan digests, locking."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from migrate.core.errors import AdapterError, InputError, OperationalError
from migrate.core.redact import REDACTED, register_secret
from migrate.engine.journal import _SCHEMA, Journal, error_info, step_key
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from tests.unit.test_engine_helpers import make_plan, open_journal

BOOKS = {"noop": {"name": "noop", "phases": ["precheck"]}}


def test_wal_and_synchronous(tmp_path: Path) -> None:
    """The journal is in WAL mode, synchronous=FULL by default (2), NORMAL (1) when asked."""
    with open_journal(tmp_path / "j.db") as journal:
        assert journal.pragma("journal_mode") == "wal"
        assert journal.pragma("synchronous") == 2
    with Journal(tmp_path / "k.db", synchronous="NORMAL") as journal:
        assert journal.pragma("synchronous") == 1


def test_create_and_reopen_run(tmp_path: Path) -> None:
    """A run keeps its plan and playbooks; everything starts pending; the latest run is the default."""
    plan = make_plan([2, 1])
    with open_journal(tmp_path / "j.db") as journal:
        first = journal.create_run(plan, BOOKS, run_id="run-a")
        journal.create_run(plan, BOOKS, run_id="run-b")
    with open_journal(tmp_path / "j.db") as journal:
        assert journal.open_run().run_id == "run-b"
        again = journal.open_run("run-a", plan=plan)
        assert again.plan == plan and again.playbooks == BOOKS and again.plan_digest == first.plan_digest
        assert {e.state for e in journal.entities("run-a", "vm")} == {"pending"}
        assert [e.id for e in journal.entities("run-a", "wave")] == ["1", "2"]
        assert [r.run_id for r in journal.runs()] == ["run-a", "run-b"]


def test_duplicate_run_id_and_unknown_run_are_input_errors(tmp_path: Path) -> None:
    """Creating a run id twice, or opening one that does not exist, is bad input."""
    plan = make_plan([1])
    with open_journal(tmp_path / "j.db") as journal:
        journal.create_run(plan, BOOKS, run_id="run-a")
        with pytest.raises(InputError, match="already exists"):
            journal.create_run(plan, BOOKS, run_id="run-a")
        with pytest.raises(InputError, match="no run 'nope'"):
            journal.open_run("nope")
    with open_journal(tmp_path / "empty.db") as journal, pytest.raises(InputError, match="holds no run"):
        journal.open_run()


def test_resume_against_another_plan_is_refused(tmp_path: Path) -> None:
    """A plan (or playbook) that differs from the run's own is refused with both digests named."""
    plan = make_plan([2])
    with open_journal(tmp_path / "j.db") as journal:
        journal.create_run(plan, BOOKS, run_id="run-a")
        other = make_plan([3])
        with pytest.raises(InputError) as caught:
            journal.open_run("run-a", plan=other)
        problem = caught.value.problems[0]
        assert problem.field == "plan" and "another plan" in problem.message
        with pytest.raises(InputError, match="another plan"):
            journal.open_run("run-a", plan=plan, playbooks={"noop": {"name": "noop", "phases": []}})


def test_digest_ignores_windows_and_policies(tmp_path: Path) -> None:
    """Windows and policies may change between run and resume; the work itself may not."""
    plan = make_plan([2])
    changed = RunPlan(waves=[plan.waves[0].model_copy(update={"policy": "stop"})], vms=plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        journal.create_run(plan, BOOKS, run_id="run-a")
        journal.open_run("run-a", plan=changed)
        moved = RunPlan(waves=[WavePlan(id=1, vms=list(reversed(plan.waves[0].vms)), method="noop")], vms=plan.vms)
        with pytest.raises(InputError):
            journal.open_run("run-a", plan=moved)


def test_transitions_and_steps_derive_current_state(tmp_path: Path) -> None:
    """The latest transition is the state, the latest step is the phase, and history keeps everything."""
    plan = make_plan([2])
    with open_journal(tmp_path / "j.db") as journal:
        run = journal.create_run(plan, BOOKS, run_id="r").run_id
        journal.record_transition(run, "vm", "vm-0000", "pass_prechecks", "pending", "prechecked", {"why": "ok"})
        key, attempt = journal.step_started(run, "vm", "vm-0000", "copy_disks", {"vm": "vm-0000"})
        assert (key, attempt) == ("r:vm-0000:copy_disks", 1)
        journal.step_failed(run, "vm", "vm-0000", "copy_disks", 1, {"type": "AdapterError", "retryable": True})
        key, attempt = journal.step_started(run, "vm", "vm-0000", "copy_disks")
        assert attempt == 2
        journal.step_finished(run, "vm", "vm-0000", "copy_disks", 2, {"sha256": "ab"})
        journal.record_transition(run, "vm", "vm-0001", "fail", "pending", "failed",
                                  {"error": {"type": "X", "message": "boom"}})
        states = journal.vm_states(run)
        assert states["vm-0000"].state == "prechecked" and states["vm-0000"].phase == "copy_disks"
        assert states["vm-0001"].state == "failed" and states["vm-0001"].error == {"type": "X", "message": "boom"}
        [step] = journal.steps(run, "vm", "vm-0000")
        assert (step.key, step.status, step.attempt, step.outputs) == (key, "finished", 2, {"sha256": "ab"})
        events = [e.event for e in journal.history(run, "vm", "vm-0000")]
        assert events == ["transition", "step_started", "step_failed", "step_started", "step_finished"]
        first = journal.history(run, "vm", "vm-0000")[0]
        assert (first.trigger, first.src, first.dst, first.inputs) == ("pass_prechecks", "pending", "prechecked",
                                                                         {"why": "ok"})


def test_idempotency_keys() -> None:
    """Keys are run:vm:phase for VMs and run:wave-N:step for waves."""
    assert step_key("r1", "vm", "4213-ab", "create_target_vm") == "r1:4213-ab:create_target_vm"
    assert step_key("r1", "wave", "3", "hook:pre:0:http") == "r1:wave-3:hook:pre:0:http"


def test_secrets_never_stored(tmp_path: Path) -> None:
    """Secret fields and registered secret values are masked in inputs, outputs and errors on disk."""
    register_secret("hunter2-very-secret")
    plan = make_plan([1])
    with open_journal(tmp_path / "j.db") as journal:
        run = journal.create_run(plan, BOOKS, run_id="r").run_id
        journal.step_started(run, "vm", "vm-0000", "precheck",
                             {"password": "pw-1234", "url": "x?t=hunter2-very-secret"})
        journal.step_finished(run, "vm", "vm-0000", "precheck", 1, {"api_key": "abcd", "note": "hunter2-very-secret"})
        journal.step_started(run, "vm", "vm-0000", "copy_disks")
        journal.step_failed(run, "vm", "vm-0000", "copy_disks", 1,
                            error_info(AdapterError("vcenter", "login", "bad password hunter2-very-secret")))
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("j.db*"))
    assert b"hunter2-very-secret" not in raw and b"pw-1234" not in raw and b"abcd" not in raw
    with open_journal(tmp_path / "j.db") as journal:
        step = {s.step: s for s in journal.steps("r")}
        assert step["precheck"].inputs == {"password": REDACTED, "url": f"x?t={REDACTED}"}
        assert step["precheck"].outputs == {"api_key": REDACTED, "note": REDACTED}
        assert step["copy_disks"].error is not None
        assert REDACTED in step["copy_disks"].error["message"] and step["copy_disks"].error["provider"] == "vcenter"


def test_a_bad_record_fails_alone(tmp_path: Path) -> None:
    """A record the database refuses raises for its caller; records queued with it are still committed."""
    plan = make_plan([1])
    with open_journal(tmp_path / "j.db") as journal:
        run = journal.create_run(plan, BOOKS, run_id="r").run_id
        journal.record_transition(run, "vm", "vm-0000", "pass_prechecks", "pending", "prechecked", wait=False)
        with pytest.raises(sqlite3.IntegrityError):
            journal.record_transition(run, "host", "esx-1", "x", "a", "b")  # kind must be vm or wave
        assert journal.vm_states(run)["vm-0000"].state == "prechecked"
        assert [e.kind for e in journal.history(run) if e.event == "transition"] == ["vm"]


def test_a_failed_queued_record_stops_later_writes(tmp_path: Path) -> None:
    """If a record nobody waited for fails, the next call says so instead of going on silently."""
    plan = make_plan([1])
    with open_journal(tmp_path / "j.db") as journal:
        run = journal.create_run(plan, BOOKS, run_id="r").run_id
        journal.record_transition(run, "bogus", "x", "t", "a", "b", wait=False)
        with pytest.raises(OperationalError, match="CHECK constraint"):
            journal.flush()
        with pytest.raises(OperationalError, match="earlier step"):
            journal.record_transition(run, "vm", "vm-0000", "pass_prechecks", "pending", "prechecked")


def test_queued_records_are_grouped_and_ordered(tmp_path: Path) -> None:
    """Records from many threads keep each thread's order and share commits."""
    vms = [VmFacts(id=f"vm-{i}") for i in range(8)]
    plan = RunPlan(waves=[WavePlan(id=1, vms=[v.id for v in vms], method="noop")], vms=vms)
    with open_journal(tmp_path / "j.db") as journal:
        run = journal.create_run(plan, BOOKS, run_id="r").run_id
        before = journal.commits

        def work(vm_id: str) -> None:
            for i in range(50):
                journal.step_started(run, "vm", vm_id, f"s{i}", wait=i % 5 == 0)
                journal.step_finished(run, "vm", vm_id, f"s{i}", 1, {"i": i}, wait=False)

        threads = [threading.Thread(target=work, args=(vm.id,)) for vm in vms]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        journal.flush()
        assert journal.commits - before < 8 * 50 * 2
        for vm in vms:
            steps = [e.step for e in journal.history(run, "vm", vm.id) if e.event == "step_finished"]
            assert steps == [f"s{i}" for i in range(50)]
        assert all(s.status == "finished" for s in journal.steps(run))


def test_only_one_runner_per_journal(tmp_path: Path) -> None:
    """A second runner lock on the same journal is refused while the first is held."""
    with open_journal(tmp_path / "j.db") as first, open_journal(tmp_path / "j.db") as second:
        first.acquire_runner_lock()
        with pytest.raises(OperationalError, match="in use by a running migration"):
            second.acquire_runner_lock()
        first.release_runner_lock()
        second.acquire_runner_lock()


def test_run_status_is_recorded(tmp_path: Path) -> None:
    """set_run_status updates the run and leaves a history line."""
    with open_journal(tmp_path / "j.db") as journal:
        run = journal.create_run(make_plan([1]), BOOKS, run_id="r").run_id
        journal.set_run_status(run, "paused", {"vms": {"failed": 1}})
        assert journal.open_run(run).status == "paused"
        last = journal.history(run, "run")[-1]
        assert (last.event, last.dst, last.inputs) == ("run_status", "paused", {"vms": {"failed": 1}})


def test_plan_json_round_trip(tmp_path: Path) -> None:
    """The stored plan is plain JSON that validates back to the same plan."""
    plan = make_plan([2, 2])
    with open_journal(tmp_path / "j.db") as journal:
        journal.create_run(plan, BOOKS, run_id="r")
    conn = sqlite3.connect(tmp_path / "j.db")
    stored = json.loads(conn.execute("SELECT plan FROM runs").fetchone()[0])
    conn.close()
    assert RunPlan.model_validate(stored) == plan


def test_open_existing_only_and_not_a_journal(tmp_path: Path) -> None:
    """create=False refuses a missing journal; a file that is not SQLite is bad input naming the file."""
    with pytest.raises(InputError, match="no such journal"):
        Journal(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database " * 100)
    with pytest.raises(InputError, match="not an SQLite database") as caught:
        Journal(junk)
    assert str(junk) in str(caught.value)


def test_reader_sees_a_run_in_progress(tmp_path: Path) -> None:
    """A second process-like reader sees committed records while the writer keeps its journal open."""
    with open_journal(tmp_path / "j.db") as writer:
        run = writer.create_run(make_plan([1]), BOOKS, run_id="r").run_id
        writer.record_transition(run, "vm", "vm-0000", "pass_prechecks", "pending", "prechecked")
        with Journal(tmp_path / "j.db", create=False) as reader:
            assert reader.vm_states(run)["vm-0000"].state == "prechecked"


def test_a_journal_whose_creation_was_cut_short_is_finished_by_a_new_run(tmp_path: Path) -> None:
    """A run killed while it created its journal leaves some of the tables and no schema version: `migrate run`
    finishes it; status and resume still refuse it; a file with tables not ours stays refused."""
    path = tmp_path / "cut.db"
    with sqlite3.connect(path) as conn:   # the first of the journal's tables, then the kill
        conn.execute(next(s for s in _SCHEMA.split(";") if "CREATE TABLE" in s))
    with pytest.raises(InputError, match="being created"):
        Journal(path, create=False)
    with Journal(path) as jr:
        jr.create_run(make_plan([2]), BOOKS, run_id="r1")
    with Journal(path, create=False, read_only=True) as jr:
        assert [r.run_id for r in jr.runs()] == ["r1"]
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(InputError, match="without the journal's tables"):
        Journal(foreign)
