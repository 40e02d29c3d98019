"""Smaller engine parts: run plans, limits, operations polling, Ctrl-C handling, adapter interfaces."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from adapters.noop.estate import NoopEstate
from migrate.core.errors import AdapterError, InputError
from migrate.core.fileio import validation_problems
from migrate.core.ports import MigrationTarget, OperationState, OperationStatus, SourceInventory
from migrate.engine import CancelToken, Limits, RunPlan, VmFacts, WavePlan, handle_sigint
from migrate.engine.context import PhaseContext, wait_operation
from migrate.engine.limits import Limiter
from migrate.engine.plan import plan_digest
from tests.unit.test_engine_helpers import FakeClock, make_plan


def test_run_plan_problems_are_listed_by_field() -> None:
    """Unknown VMs, VMs in two waves, duplicate ids and VMs in no wave are each reported at their field."""
    data = {"waves": [{"id": 1, "vms": ["a", "ghost"]}, {"id": 1, "vms": ["a"]}],
            "vms": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}
    with pytest.raises(InputError) as caught:
        validation_problems(RunPlan, data, "plan.yaml")
    found = {(p.field, p.message.split(":")[0]) for p in caught.value.problems}
    assert found == {
        ("vms[2].id", "VM 'a' is listed twice (also vms[0])"),
        ("waves[1].id", "wave id 1 is used twice (also waves[0])"),
        ("waves[0].vms[1]", "unknown VM 'ghost'"),
        ("waves[1].vms[0]", "VM 'a' is already in wave 1"),
        ("vms[1].id", "VM 'b' is in no wave"),
    }
    with pytest.raises(InputError, match=r"waves\[0\].window: .*start .* must be before end"):
        validation_problems(RunPlan, {"waves": [{"id": 1, "vms": [], "window": {
            "start": "2030-01-02T00:00:00Z", "end": "2030-01-01T00:00:00Z"}}], "vms": []}, "plan.yaml")


def test_plan_digest_is_stable_and_sensitive() -> None:
    """Equal plans have equal digests; a different VM order, method or playbook changes it."""
    plan = make_plan([2, 2])
    assert plan_digest(plan, {"noop": {"a": 1}}) == plan_digest(make_plan([2, 2]), {"noop": {"a": 1}})
    assert plan_digest(plan, {"noop": {"a": 1}}) != plan_digest(plan, {"noop": {"a": 2}})
    assert plan_digest(plan, {}) != plan_digest(make_plan([2, 2], method="cold"), {})
    assert plan_digest(plan, {}) != plan_digest(make_plan([1, 3]), {})


def test_limit_keys_and_all_or_nothing() -> None:
    """A VM needs global, host, each datastore and cluster slots; it gets all of them or none."""
    limits = Limits(total=3, per_source_host=1, per_datastore=2, per_target_cluster=None,
                    overrides={"datastore:ds-b": 1})
    vm = VmFacts(id="x", source_host="esx-1", datastores=["ds-b", "ds-a", "ds-b"], target_cluster="c")
    keys = limits.keys(vm)
    assert keys == ("global", "host:esx-1", "datastore:ds-a", "datastore:ds-b", "cluster:c")
    assert [limits.capacity(k) for k in keys] == [3, 1, 2, 1, None]
    limiter = Limiter(limits)
    assert limiter.try_acquire(keys)
    other = limits.keys(VmFacts(id="y", source_host="esx-2", datastores=["ds-a", "ds-b"]))
    assert not limiter.try_acquire(other), "ds-b is full"
    assert dict(limiter.in_use) == {k: 1 for k in keys}, "nothing taken by the refused VM"
    limiter.release(keys)
    assert limiter.try_acquire(other) and not limiter.global_full()


class _Op:
    def __init__(self, states: list[OperationStatus]) -> None:
        self.id = "task-1"
        self.states = states

    def poll(self) -> OperationStatus:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def _ctx(clock: FakeClock) -> PhaseContext:
    plan = make_plan([1])
    return PhaseContext(run_id="r", wave=plan.waves[0], vm=plan.vms[0], phase="p", attempt=1, key="k",
                        adapters=NoopEstate(plan.vms).adapters(), prior={}, log=None, clock=clock)


def test_wait_operation() -> None:
    """Polling returns the result, raises the operation's error, and gives up (retryable) after the timeout."""
    clock = FakeClock()
    running = OperationStatus(OperationState.RUNNING, 10)
    done = _Op([running, running, OperationStatus(OperationState.SUCCESS, 100, "vm-42")])
    assert wait_operation(done, _ctx(clock), provider="p", what="create", poll_seconds=2) == "vm-42"
    assert clock.slept == [2, 2]
    failed = _Op([OperationStatus(OperationState.ERROR, error=AdapterError("p", "create", "name in use"))])
    with pytest.raises(AdapterError, match="name in use"):
        wait_operation(failed, _ctx(clock), provider="p", what="create")
    with pytest.raises(AdapterError) as caught:
        wait_operation(_Op([running]), _ctx(clock), provider="p", what="create", poll_seconds=10, timeout=30)
    assert caught.value.retryable and "still running after 30 s" in str(caught.value)


def test_ctrl_c_drains_then_stops_then_aborts() -> None:
    """First SIGINT drains, the second stops at the next boundary, the third raises KeyboardInterrupt."""
    token = CancelToken()
    before = signal.getsignal(signal.SIGINT)
    with handle_sigint(token):
        os.kill(os.getpid(), signal.SIGINT)
        assert token.is_requested and not token.is_interrupt
        os.kill(os.getpid(), signal.SIGINT)
        assert token.is_interrupt and token.reason == "interrupted (SIGINT)"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_sigint_handler_is_skipped_off_the_main_thread() -> None:
    """handle_sigint can be entered from a worker thread (signals only reach the main thread)."""
    seen: list[Any] = []

    def work() -> None:
        with handle_sigint(CancelToken()):
            seen.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [True]


def test_noop_estate_implements_the_adapter_interfaces() -> None:
    """The fake estate's two sides satisfy SourceInventory and MigrationTarget, and not each other's."""
    estate = NoopEstate([VmFacts(id="a")])
    assert isinstance(estate.source, SourceInventory) and isinstance(estate.target, MigrationTarget)
    assert not isinstance(estate.source, MigrationTarget) and not isinstance(estate.target, SourceInventory)
    assert estate.adapters().replatformer is None


def test_noop_estate_persists_effects(tmp_path: Any) -> None:
    """Effects survive reopening the estate file; create_vm makes a new VM each time it is called."""
    path = tmp_path / "effects.jsonl"
    estate = NoopEstate([VmFacts(id="a")], path)
    first = estate.target.create_vm("a", {"name": "a"}).poll().result
    estate.source.power_off_vm("a")
    estate.close()
    again = NoopEstate([VmFacts(id="a")], path)
    assert again.target.find_vm("a") == first and again.source.vm_power_state("a") == "poweredOff"
    second = again.target.create_vm("a", {"name": "a"}).poll().result
    assert second != first and again.target.ex_find_all("a") == [first, second]
    again.close()


def test_wave_plan_defaults() -> None:
    """A wave defaults to the cold method and the continue policy."""
    wave = WavePlan(id=1, vms=[])
    assert (wave.method, wave.policy, wave.window) == ("cold", "continue", None)
