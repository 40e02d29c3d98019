"""The VM and wave lifecycle tables: every valid transition works, every other one is refused."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from enum import Enum
from typing import Any

import pytest
from transitions import Machine

from migrate.engine.lifecycle import (
    TERMINAL_VM_STATES,
    VM_TRANSITIONS,
    WAVE_TRANSITIONS,
    Lifecycle,
    MachineError,
    VmModel,
    VmState,
    WaveModel,
    WaveState,
    valid_triggers,
    vm_lifecycle,
    wave_lifecycle,
)


def _expected(table: list[dict[str, Any]]) -> dict[tuple[Enum, str], Enum]:
    out: dict[tuple[Enum, str], Enum] = {}
    for row in table:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            out[(source, row["trigger"])] = row["dest"]
    return out


VM_EXPECTED = _expected(VM_TRANSITIONS)
WAVE_EXPECTED = _expected(WAVE_TRANSITIONS)
VM_TRIGGERS = sorted({row["trigger"] for row in VM_TRANSITIONS})
WAVE_TRIGGERS = sorted({row["trigger"] for row in WAVE_TRANSITIONS})


class Recorder:
    """Collects what the machine hands to its recorder."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str, str, dict[str, Any]]] = []

    def __call__(self, kind: str, model: Any, trigger: str, src: Enum, dst: Enum, data: Mapping[str, Any]) -> None:
        assert model.state is src, "recorded before the model changes"
        self.calls.append((kind, str(model.id), trigger, src.value, dst.value, dict(data)))


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(VmState, VM_TRIGGERS)),
                         ids=lambda v: getattr(v, "value", v))
def test_vm_transition_table(state: VmState, trigger: str) -> None:
    """Each (VM state, trigger) pair moves exactly as the table says, or is refused and changes nothing."""
    recorder = Recorder()
    machine = vm_lifecycle(recorder)
    vm = machine.add(VmModel(id="vm-1", wave=1), state)
    expected = VM_EXPECTED.get((state, trigger))
    if expected is None:
        with pytest.raises(MachineError):
            machine.fire(vm, trigger)
        assert vm.state is state
        assert recorder.calls == []
    else:
        machine.fire(vm, trigger, reason="test")
        assert vm.state is expected
        assert recorder.calls == [("vm", "vm-1", trigger, state.value, expected.value, {"reason": "test"})]


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(WaveState, WAVE_TRIGGERS)),
                         ids=lambda v: getattr(v, "value", v))
def test_wave_transition_table(state: WaveState, trigger: str) -> None:
    """Each (wave state, trigger) pair moves exactly as the table says, or is refused and changes nothing."""
    recorder = Recorder()
    machine = wave_lifecycle(recorder)
    wave = machine.add(WaveModel(id=3), state)
    expected = WAVE_EXPECTED.get((state, trigger))
    if expected is None:
        with pytest.raises(MachineError):
            machine.fire(wave, trigger)
        assert wave.state is state and recorder.calls == []
    else:
        machine.fire(wave, trigger)
        assert wave.state is expected
        assert recorder.calls == [("wave", "3", trigger, state.value, expected.value, {})]


def test_terminal_vm_states_have_no_way_forward() -> None:
    """From a terminal VM state only rollback or retry is possible, never progress."""
    machine = vm_lifecycle()
    for state in TERMINAL_VM_STATES:
        assert valid_triggers(machine.machine, state) <= {"rollback", "retry"}
    assert valid_triggers(machine.machine, VmState.COMPLETED) == {"rollback"}


def test_happy_path_is_the_documented_lifecycle() -> None:
    """pending -> prechecked -> ready -> cutting_over -> verifying -> completed."""
    machine = vm_lifecycle()
    vm = machine.add(VmModel(id="vm-1", wave=1))
    seen = [vm.state]
    for trigger in ("pass_prechecks", "make_ready", "start_cutover", "start_verify", "complete"):
        machine.fire(vm, trigger)
        seen.append(vm.state)
    assert [s.value for s in seen] == ["pending", "prechecked", "ready", "cutting_over", "verifying", "completed"]
    assert machine.transitions == 5


def test_unknown_trigger_is_refused() -> None:
    """A trigger that is in no table raises MachineError."""
    machine = vm_lifecycle()
    vm = machine.add(VmModel(id="vm-1", wave=1))
    with pytest.raises(MachineError, match="no trigger"):
        machine.fire(vm, "teleport")


def test_failing_recorder_keeps_the_old_state() -> None:
    """If the journal cannot record a transition, the model does not move either."""
    def broken(*args: Any) -> None:
        raise OSError("disk full")

    machine = vm_lifecycle(broken)
    vm = machine.add(VmModel(id="vm-1", wave=1))
    with pytest.raises(OSError, match="disk full"):
        machine.fire(vm, "pass_prechecks")
    assert vm.state is VmState.PENDING
    assert machine.transitions == 0


def _register_seconds(machine: Machine, count: int) -> float:
    models = [VmModel(id=f"vm-{i}", wave=1) for i in range(count)]
    began = time.perf_counter()
    for model in models:
        machine.add_model(model)
    return time.perf_counter() - began


def test_one_machine_drives_many_models() -> None:
    """Models register once each, move independently, and can be removed."""
    machine: Lifecycle[VmModel, VmState] = vm_lifecycle()
    models = [VmModel(id=f"vm-{i}", wave=1) for i in range(10_000)]
    for model in models:
        machine.add(model)
    machine.add(models[0])
    assert len(machine.machine.models) == 10_000
    machine.fire(models[1], "fail")
    assert models[1].state is VmState.FAILED and models[2].state is VmState.PENDING
    machine.machine.remove_model(models[:10])
    assert len(machine.machine.models) == 9_990


def test_registering_models_is_much_cheaper_than_stock() -> None:
    """Our machine registers models at least 5x faster than transitions' own add_model (same run)."""
    stock = Machine(model=None, states=VmState, transitions=VM_TRANSITIONS, initial=VmState.PENDING,
                    auto_transitions=False)
    ratio = _register_seconds(stock, 3_000) / _register_seconds(vm_lifecycle().machine, 3_000)
    assert ratio > 5, f"only {ratio:.1f}x faster than Machine.add_model"
