"""Wave policies, cutover windows (injected clock), cancel and resume."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.noop.estate import NoopEstate
from migrate.core.errors import AdapterError
from migrate.engine import CancelToken, Limits, Runner, RunPlan, WavePlan, WaveWindow
from migrate.engine.context import PhaseContext, PhaseFn
from migrate.engine.noop import NOOP
from tests.unit.test_engine_helpers import T0, FakeClock, _quiet_logs, fast_settings, make_plan, open_journal, registry

__all__ = ["_quiet_logs"]

SERIAL = Limits(total=1, per_source_host=None, per_datastore=None)


def _failing(bad: set[str], phase: str = "copy_disks") -> dict[str, PhaseFn]:
    """Overrides making `phase` fail for the VMs in `bad` (remove ids from it to 'fix' them)."""
    def fn(ctx: PhaseContext) -> Mapping[str, Any]:
        if ctx.vm.id in bad:
            raise AdapterError("vcenter", phase, "datastore full")
        return NOOP.functions[phase](ctx)
    return {phase: fn}


def _states(journal: Any, run_id: str) -> dict[str, str]:
    return {vm: e.state for vm, e in journal.vm_states(run_id).items()}


def _once_each(estate: NoopEstate, plan: RunPlan) -> None:
    """Every VM has exactly one of each effect its power state calls for."""
    counts = Counter((e["vm"], e["effect"]) for e in estate.effects)
    for vm in plan.vms:
        on = vm.facts["power_state"] == "poweredOn"
        expected = {"copy": 1, "create": 1, "tag": 1, "mark": 1, "power_off": int(on), "power_on": int(on)}
        assert {k: counts[(vm.id, k)] for k in expected} == expected, vm.id


def test_policy_continue(tmp_path: Path) -> None:
    """A failed VM fails alone; its wave ends partial and the next wave still runs."""
    plan = make_plan([4, 2], policy="continue")
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides=_failing({"vm-0001"})), adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings()).start(plan)
    assert result.status == "partial" and result.waves == {1: "partial", 2: "completed"}
    assert result.vms == {"completed": 5, "failed": 1}


def test_policy_pause_then_resume(tmp_path: Path) -> None:
    """Pause: nothing new starts after a failure; resume finishes the rest; retry_failed retries the failed VM."""
    plan = make_plan([4, 2], policy="pause")
    bad = {"vm-0001"}
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(overrides=_failing(bad)), adapters=estate.adapters(),
                        settings=fast_settings(limits=SERIAL))
        first = runner.start(plan)
        assert first.status == "paused" and first.waves == {1: "paused", 2: "pending"}
        states = _states(journal, first.run_id)
        assert states["vm-0000"] == "completed" and states["vm-0001"] == "failed"
        assert states["vm-0002"] == states["vm-0003"] == "ready" and states["vm-0004"] == "pending"
        second = runner.resume()
        assert second.waves == {1: "partial", 2: "completed"} and second.status == "partial"
        assert _states(journal, first.run_id)["vm-0001"] == "failed"
        bad.clear()
        third = runner.resume(retry_failed=True)
        assert third.status == "completed" and third.vms == {"completed": 6}
    _once_each(estate, plan)


def test_policy_stop_then_retry(tmp_path: Path) -> None:
    """Stop: the rest of the wave is skipped, the wave fails, the run stops; resume alone does not go on."""
    plan = make_plan([4, 2], policy="stop")
    bad = {"vm-0001"}
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(overrides=_failing(bad)), adapters=estate.adapters(),
                        settings=fast_settings(limits=SERIAL))
        first = runner.start(plan)
        assert first.status == "failed" and first.waves == {1: "failed", 2: "pending"}
        assert first.vms == {"completed": 1, "failed": 1, "pending": 2, "skipped": 2}
        again = runner.resume()
        assert again.status == "failed" and again.transitions == 0
        bad.clear()
        retried = runner.resume(retry_failed=True)
        assert retried.status == "completed" and retried.vms == {"completed": 6}
        retries = [e for e in journal.history(first.run_id, "vm") if e.trigger == "retry"]
        assert sorted(e.entity_id for e in retries) == ["vm-0001", "vm-0002", "vm-0003"]
    _once_each(estate, plan)


def test_precheck_failure_with_pause_stops_before_cutover(tmp_path: Path) -> None:
    """Under pause, a failed precheck pauses the wave before any VM starts its cutover."""
    plan = make_plan([3], policy="pause")
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides=_failing({"vm-0002"}, "precheck")), adapters=estate.adapters(),
                        settings=fast_settings()).start(plan)
        assert result.waves == {1: "paused"}
        assert _states(journal, result.run_id) == {"vm-0000": "prechecked", "vm-0001": "prechecked",
                                                    "vm-0002": "failed"}
    assert estate.effects == []


def _window(plan: RunPlan, start: float, end: float) -> RunPlan:
    window = WaveWindow(start=T0 + timedelta(hours=start), end=T0 + timedelta(hours=end))
    return RunPlan(waves=[w.model_copy(update={"window": window}) for w in plan.waves], vms=plan.vms)


def test_wave_waits_for_its_window(tmp_path: Path) -> None:
    """A wave whose window opens later waits for it (on the injected clock) and then runs."""
    plan = _window(make_plan([3]), 2, 6)
    clock = FakeClock()
    started: list[Any] = []

    def power_off(ctx: PhaseContext) -> Mapping[str, Any]:
        started.append(ctx.clock.now())
        return NOOP.functions["power_off_source"](ctx)

    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides={"power_off_source": power_off}),
                        adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings(clock=clock, estimate=lambda wave, vms: 600.0 * len(vms))).start(plan)
    assert result.status == "completed"
    assert sum(clock.slept) == 2 * 3600
    assert min(started) >= T0 + timedelta(hours=2)


def test_wave_refused_when_it_cannot_fit(tmp_path: Path) -> None:
    """A wave whose estimate overruns its window is not started (canceled, nothing touched); a new window runs."""
    plan = _window(make_plan([3]), 1, 2)
    estate = NoopEstate(plan.vms)
    clock = FakeClock()
    settings = fast_settings(clock=clock, estimate=lambda wave, vms: 1800.0 * len(vms))
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(), adapters=estate.adapters(), settings=settings)
        result = runner.start(plan)
        assert result.status == "canceled" and result.waves == {1: "canceled"}
        wave_event = next(e for e in journal.history(result.run_id, "wave") if e.trigger == "cancel")
        assert wave_event.error is not None and wave_event.error["type"] == "WindowError"
        assert "too short" in wave_event.inputs["reason"]
        assert estate.effects == [] and clock.slept == []
        later = runner.resume(plan=_window(make_plan([3]), 3, 6))
    assert later.status == "completed"


def test_window_end_pauses_the_wave(tmp_path: Path) -> None:
    """No VM starts after the window ends; the wave pauses and resumes in a later window."""
    plan = _window(make_plan([6]), 0, 1)
    clock = FakeClock()

    def copy_disks(ctx: PhaseContext) -> Mapping[str, Any]:
        clock.advance(25 * 60)
        return NOOP.functions["copy_disks"](ctx)

    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(overrides={"copy_disks": copy_disks}), adapters=estate.adapters(),
                        settings=fast_settings(clock=clock, limits=SERIAL))
        first = runner.start(plan)
        assert first.waves == {1: "paused"} and first.vms == {"completed": 3, "ready": 3}
        second = runner.resume(plan=_window(make_plan([6]), 1.5, 8))
    assert second.status == "completed"
    _once_each(estate, plan)


def test_cancel_then_resume_finishes_everything_exactly_once(tmp_path: Path) -> None:
    """A cancel stops VMs at their next phase boundary; resume completes all with every effect once."""
    plan = make_plan([12, 8])
    cancel = CancelToken()
    estate = NoopEstate(plan.vms)
    created = threading.Semaphore(0)

    def create(ctx: PhaseContext) -> Mapping[str, Any]:
        out = NOOP.functions["create_target_vm"](ctx)
        created.release()
        if ctx.vm.id == "vm-0005":
            cancel.cancel(reason="operator")
        return out

    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(overrides={"create_target_vm": create}), adapters=estate.adapters(),
                        settings=fast_settings(limits=Limits(total=3, per_source_host=None, per_datastore=None)),
                        cancel=cancel)
        first = runner.start(plan)
        assert first.status == "canceled" and first.waves == {1: "canceled", 2: "pending"}
        states = _states(journal, first.run_id)
        assert states["vm-0005"] == "cutting_over", "stopped at the boundary after create_target_vm"
        assert "completed" not in {states[f"vm-00{i:02d}"] for i in range(12, 20)}
        resumed = Runner(journal, registry(), adapters=estate.adapters(), settings=fast_settings()).resume()
        assert resumed.status == "completed" and resumed.vms == {"completed": 20}
        assert [s for s in journal.steps(first.run_id) if s.status != "finished"] == []
    _once_each(estate, plan)


def test_drain_cancel_lets_in_flight_vms_finish(tmp_path: Path) -> None:
    """A draining cancel starts no new VM but lets the VMs in flight complete."""
    plan = make_plan([10])
    cancel = CancelToken()
    both_in_flight = threading.Barrier(2, timeout=30)  # the two slots hold vm-0000 and vm-0001 when it comes

    def copy(ctx: PhaseContext) -> Mapping[str, Any]:
        if ctx.vm.id in ("vm-0000", "vm-0001"):
            both_in_flight.wait()
        if ctx.vm.id == "vm-0001":
            cancel.cancel(drain=True)
        elif ctx.vm.id == "vm-0000":
            cancel.requested.wait(30)  # keep its slot until the cancel has come
        return NOOP.functions["copy_disks"](ctx)

    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(overrides={"copy_disks": copy}), adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings(limits=Limits(total=2, per_source_host=None, per_datastore=None)),
                        cancel=cancel).start(plan)
        states = _states(journal, result.run_id)
    assert result.status == "canceled"
    assert states["vm-0000"] == states["vm-0001"] == "completed"
    assert set(list(states.values())[2:]) == {"ready"}


def test_cancel_before_start_touches_nothing(tmp_path: Path) -> None:
    """A run canceled before its first wave leaves every wave pending and records the run."""
    plan = make_plan([2, 2])
    cancel = CancelToken()
    cancel.cancel()
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(), adapters=estate.adapters(), settings=fast_settings(),
                        cancel=cancel).start(plan)
    assert result.status == "canceled" and result.waves == {1: "pending", 2: "pending"} and estate.effects == []


def test_wave_methods_mix(tmp_path: Path) -> None:
    """Waves of different methods use their own playbooks and phase maps."""
    plan = make_plan([2, 2])
    live = WavePlan(id=2, vms=plan.waves[1].vms, method="live")
    mixed = RunPlan(waves=[plan.waves[0], live], vms=plan.vms)
    calls: list[str] = []

    def phase(name: str) -> PhaseFn:
        def fn(ctx: PhaseContext) -> Mapping[str, Any]:
            calls.append(f"{ctx.vm.id}:{name}")
            return {"power_state": "poweredOff", "target_id": f"moved-{ctx.vm.id}"}  # the typed outputs live needs
        return fn

    phases = {**registry(), "live": {p: phase(p) for p in ("precheck", "build_relocate_spec", "relocate", "verify")}}
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, phases, adapters=NoopEstate(plan.vms).adapters(),
                        settings=fast_settings(limits=SERIAL)).start(mixed)
    assert result.status == "completed"
    assert [c for c in calls if c.startswith("vm-0003")] == [
        f"vm-0003:{p}" for p in ("precheck", "build_relocate_spec", "relocate", "verify")]
    assert not [c for c in calls if c.startswith(("vm-0000", "vm-0001"))]
