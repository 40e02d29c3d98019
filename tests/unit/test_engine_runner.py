"""The runner: full lifecycle, concurrency limits, retries, a failed VM failing alone, bad input before changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.noop.estate import NoopEstate
from migrate.core.errors import AdapterError, InputError, OperationalError
from migrate.engine import Limits, Runner, load_playbook
from migrate.engine.context import PhaseContext
from migrate.engine.noop import NOOP
from tests.unit.test_engine_helpers import Tracker, _quiet_logs, fast_settings, make_plan, open_journal, registry

__all__ = ["_quiet_logs"]


def test_full_lifecycle_with_noop_phases(tmp_path: Path) -> None:
    """Every VM goes through every phase once and ends completed; the estate shows each effect once."""
    plan = make_plan([6, 4])
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(), adapters=estate.adapters(), settings=fast_settings()).start(plan)
        assert result.status == "completed" and result.vms == {"completed": 10}
        assert result.waves == {1: "completed", 2: "completed"}
        assert result.transitions == 10 * 5 + 2 * 3
        states = journal.vm_states(result.run_id)
        assert {s.state for s in states.values()} == {"completed"}
        steps = journal.steps(result.run_id, "vm")
        assert len(steps) == 10 * 8 and {s.status for s in steps} == {"finished"}
        assert journal.open_run(result.run_id).status == "completed"
    creates = Counter(e["vm"] for e in estate.effects if e["effect"] == "create")
    assert creates == Counter({vm.id: 1 for vm in plan.vms})
    on = [vm.id for vm in plan.vms if vm.facts["power_state"] == "poweredOn"]
    assert sorted(e["vm"] for e in estate.effects if e["effect"] == "power_on") == sorted(on)
    assert set(estate.marked) == {vm.id for vm in plan.vms}


def test_phase_context_carries_prior_outputs_and_logger(tmp_path: Path) -> None:
    """A phase sees the VM facts, its wave, its key and attempt, and the outputs of earlier phases."""
    seen: dict[str, Any] = {}

    def tag_target(ctx: PhaseContext) -> Mapping[str, Any]:
        seen.update(prior=dict(ctx.prior), key=ctx.key, attempt=ctx.attempt, vm=ctx.vm.id, wave=ctx.wave.id,
                    log=ctx.log is not None)
        return NOOP.functions["tag_target"](ctx)

    plan = make_plan([1])
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides={"tag_target": tag_target}), adapters=estate.adapters(),
                        settings=fast_settings()).start(plan, run_id="r1")
    assert result.status == "completed"
    assert seen["key"] == "r1:vm-0000:tag_target" and seen["attempt"] == 1 and seen["wave"] == 1 and seen["log"]
    assert set(seen["prior"]) == {"precheck", "power_off_source", "copy_disks", "create_target_vm"}
    assert seen["prior"]["create_target_vm"]["created"] is True


@pytest.mark.parametrize("limits", [
    Limits(total=6, per_source_host=2, per_datastore=3, per_target_cluster=None),
    Limits(total=3, per_source_host=None, per_datastore=None, per_target_cluster=None),
    Limits(total=8, per_source_host=4, per_datastore=None, per_target_cluster=2,
           overrides={"host:esx-0": 1, "datastore:ds-1": 1}),
], ids=["host-ds", "global", "cluster-overrides"])
def test_concurrency_limits_are_respected(limits: Limits, tmp_path: Path) -> None:
    """No key ever has more VMs in cutover at once than its limit, and the limits are actually reached."""
    plan = make_plan([40], hosts=4, datastores=3, clusters=2)
    tracker = Tracker(limits, plan)
    estate = NoopEstate(plan.vms)
    settings = fast_settings(limits=limits)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(tracker=tracker, sleep=0.004), adapters=estate.adapters(),
                        settings=settings).start(plan)
    assert result.vms == {"completed": 40}
    for key, peak in tracker.peak.items():
        cap = limits.capacity(key)
        assert cap is None or peak <= cap, (key, peak, cap)
    assert tracker.peak["global"] >= 2, "VMs did run concurrently"
    binding = min(c for k in tracker.peak if (c := limits.capacity(k)) is not None)
    assert max(tracker.peak.values()) >= binding


def test_retryable_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    """A phase raising a retryable AdapterError twice then succeeding completes, with 3 attempts journaled."""
    failures: Counter[str] = Counter()

    def copy_disks(ctx: PhaseContext) -> Mapping[str, Any]:
        if failures[ctx.vm.id] < 2:
            failures[ctx.vm.id] += 1
            raise AdapterError("vcenter", "copy", "connection reset", retryable=True)
        return {"attempt": ctx.attempt}

    plan = make_plan([3])
    clock_sleeps: list[float] = []
    settings = fast_settings()
    settings.retry = settings.retry.model_copy(update={"attempts": 3, "base_delay": 2.0, "max_delay": 30.0})

    class Clock:
        def now(self) -> Any:
            from datetime import UTC, datetime
            return datetime.now(UTC)

        def sleep(self, seconds: float, interrupt: Any = None) -> bool:
            clock_sleeps.append(seconds)
            return False

    settings.clock = Clock()
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides={"copy_disks": copy_disks}),
                        adapters=NoopEstate(plan.vms).adapters(), settings=settings).start(plan)
        assert result.vms == {"completed": 3}
        copy = [s for s in journal.steps(result.run_id) if s.step == "copy_disks"]
        assert {(s.attempt, s.status) for s in copy} == {(3, "finished")}
        assert {s.outputs["attempt"] for s in copy} == {3}
        events = [e for e in journal.history(result.run_id, "vm", "vm-0000") if e.step == "copy_disks"]
        assert [(e.event, e.attempt) for e in events] == [
            ("step_started", 1), ("step_failed", 1), ("step_started", 2), ("step_failed", 2),
            ("step_started", 3), ("step_finished", 3)]
        assert events[1].error is not None and events[1].error["retryable"] is True
    # Exponential with jitter: each VM's first retry waits 1-2 s, its second 2-4 s.
    delays = sorted(clock_sleeps)
    assert len(delays) == 6
    assert all(1.0 <= d <= 2.0 for d in delays[:3]) and all(2.0 <= d <= 4.0 for d in delays[3:])
    assert len(set(delays)) == 6, "jitter makes every delay different"


def test_exhausted_and_non_retryable_errors_fail_the_vm_alone(tmp_path: Path) -> None:
    """Retries stop at the policy's attempts; a non-retryable error is not retried; other VMs complete."""
    calls: Counter[str] = Counter()

    def copy_disks(ctx: PhaseContext) -> Mapping[str, Any]:
        calls[ctx.vm.id] += 1
        if ctx.vm.id == "vm-0001":
            raise AdapterError("vcenter", "copy", "task timed out", retryable=True)
        if ctx.vm.id == "vm-0003":
            raise AdapterError("vcenter", "copy", "no permission", retryable=False)
        return {}

    plan = make_plan([6])
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides={"copy_disks": copy_disks}),
                        adapters=NoopEstate(plan.vms).adapters(), settings=fast_settings()).start(plan)
        assert result.status == "partial" and result.waves == {1: "partial"}
        assert result.vms == {"completed": 4, "failed": 2}
        assert calls["vm-0001"] == 3 and calls["vm-0003"] == 1 and calls["vm-0000"] == 1
        states = journal.vm_states(result.run_id)
        assert states["vm-0001"].error is not None and states["vm-0001"].error["retryable"] is True
        assert states["vm-0003"].error is not None and states["vm-0003"].error["op"] == "copy"
        assert states["vm-0001"].phase == "copy_disks"
        assert result.failed["vm-0003"]["message"].endswith("no permission")


def test_a_bug_in_a_phase_fails_only_that_vm(tmp_path: Path) -> None:
    """An unexpected exception (or bad outputs) fails the VM with the error type journaled."""
    def verify(ctx: PhaseContext) -> Any:
        if ctx.vm.id == "vm-0000":
            raise KeyError("missing")
        if ctx.vm.id == "vm-0001":
            return ["not", "a", "mapping"]
        return {}

    plan = make_plan([3])
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides={"verify": verify}), adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings()).start(plan)
        errors = {vm: e.error for vm, e in journal.vm_states(result.run_id).items()}
    assert result.vms == {"completed": 1, "failed": 2}
    assert errors["vm-0000"] is not None and errors["vm-0000"]["type"] == "KeyError"
    assert errors["vm-0001"] is not None and "not a mapping" in errors["vm-0001"]["message"]


def test_failed_precheck_fails_the_vm_before_any_change(tmp_path: Path) -> None:
    """A VM whose precheck fails never starts its cutover; the others go on."""
    def precheck(ctx: PhaseContext) -> Mapping[str, Any]:
        if ctx.vm.id == "vm-0002":
            raise OperationalError("RDM in physical mode")
        return {"power_state": "poweredOn"}

    plan = make_plan([4])
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides={"precheck": precheck}), adapters=estate.adapters(),
                        settings=fast_settings()).start(plan)
        history = [e.step for e in journal.history(result.run_id, "vm", "vm-0002") if e.step]
    assert result.vms == {"completed": 3, "failed": 1}
    assert history == ["precheck", "precheck"]  # started, failed
    assert not [e for e in estate.effects if e["vm"] == "vm-0002"]


def test_missing_phase_implementation_is_bad_input_before_any_change(tmp_path: Path) -> None:
    """A playbook phase with no function is refused before the run is even recorded."""
    plan = make_plan([2], method="cold")
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, {"cold": {"precheck": lambda ctx: {}}}, settings=fast_settings())
        with pytest.raises(InputError) as caught:
            runner.start(plan)
        assert journal.runs() == []
    fields = [p.field for p in caught.value.problems]
    assert fields == [f"phases[{i}]" for i in range(1, 8)]
    assert "not implemented" in caught.value.problems[0].message


def test_playbook_for_the_wrong_method_is_refused(tmp_path: Path) -> None:
    """A wave's method must be served by a playbook of that method."""
    plan = make_plan([1])
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(), settings=fast_settings())
        with pytest.raises(InputError, match="playbook is for 'cold'"):
            runner.start(plan, {"noop": load_playbook("cold")})


def test_resume_refuses_another_plan_and_a_second_runner(tmp_path: Path) -> None:
    """Resume with a different plan is bad input; a journal in use by another runner is refused."""
    plan = make_plan([2])
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(), adapters=NoopEstate(plan.vms).adapters(), settings=fast_settings())
        runner.start(plan)
        with pytest.raises(InputError, match="another plan"):
            runner.resume(plan=make_plan([3]))
        with open_journal(tmp_path / "j.db") as other:
            other.acquire_runner_lock()
            with pytest.raises(OperationalError, match="in use"):
                runner.resume()


def test_resume_of_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    """Resuming a completed run makes no transition and runs no phase."""
    plan = make_plan([3])
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(), adapters=estate.adapters(), settings=fast_settings())
        first = runner.start(plan)
        effects = len(estate.effects)
        again = runner.resume(plan=plan)
    assert again.run_id == first.run_id and again.status == "completed"
    assert again.transitions == 0 and len(estate.effects) == effects


def test_a_broken_journal_stops_the_run_and_frees_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the journal cannot record, the run stops with that error and the runner lock is released."""
    plan = make_plan([6])
    with open_journal(tmp_path / "j.db") as journal:
        real = journal.step_started

        def flaky(run_id: str, kind: str, entity_id: str, step: str, *args: Any, **kwargs: Any) -> Any:
            if entity_id == "vm-0003" and step == "copy_disks":
                raise OperationalError("disk I/O error")
            return real(run_id, kind, entity_id, step, *args, **kwargs)

        monkeypatch.setattr(journal, "step_started", flaky)
        runner = Runner(journal, registry(), adapters=NoopEstate(plan.vms).adapters(), settings=fast_settings())
        with pytest.raises(OperationalError, match="disk I/O error"):
            runner.start(plan)
        journal.acquire_runner_lock()
        run = journal.runs()[0]
        assert run.status == "interrupted"
        assert journal.vm_states(run.run_id)["vm-0003"].state == "cutting_over"
