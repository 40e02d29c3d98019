"""VM and wave lifecycles: states as Enums, transitions as module-level tables, one Machine per kind.

Declared the way the `transitions` README does it, driven the way Forklift drives its itinerary: one
`Machine` per kind drives every model of that kind. Callbacks only journal and log: the machine-level
`before_state_change` callback hands each transition to a recorder (the journal) *before* the model's
state changes, so a transition the journal could not record does not happen in memory either.

A VM's progress through the phases of its method is the `phase` field while it is `cutting_over` or
`verifying` (and `pending` for prechecks); the journal records every phase start and finish.

Measured with transitions 0.9.3 (2 cores): `Machine.add_model` binds about forty partials per model
(triggers, `may_` checks, `is_` tests) and checks membership in a list: 2-4.5 s for 10,000 models
(noisy machine), with `auto_transitions` on or off. `ManyModelMachine.add_model` registers a model
without binding methods (2-10 us per model); triggers go through `Lifecycle.fire`, which calls the
machine's own `Event.trigger` (20-40 us each), so invalid triggers still raise MachineError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from transitions import EventData, Machine, MachineError

from migrate.core.log import get_logger

__all__ = [
    "TERMINAL_VM_STATES",
    "TERMINAL_WAVE_STATES",
    "VM_TRANSITIONS",
    "WAVE_TRANSITIONS",
    "Lifecycle",
    "MachineError",
    "ManyModelMachine",
    "Recorder",
    "VmModel",
    "VmState",
    "WaveModel",
    "WaveState",
    "valid_triggers",
    "vm_lifecycle",
    "wave_lifecycle",
]



class VmState(Enum):
    """Where one VM is in its migration."""

    PENDING = "pending"
    PRECHECKED = "prechecked"
    READY = "ready"
    REPLICATING = "replicating"
    CUTTING_OVER = "cutting_over"
    VERIFYING = "verifying"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"


class WaveState(Enum):
    """Where one wave is."""

    PENDING = "pending"
    PRECHECKING = "prechecking"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELED = "canceled"


_V = VmState
_W = WaveState
_VM_ACTIVE = [_V.PENDING, _V.PRECHECKED, _V.READY, _V.REPLICATING, _V.CUTTING_OVER, _V.VERIFYING]

VM_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "pass_prechecks", "source": _V.PENDING, "dest": _V.PRECHECKED},
    {"trigger": "make_ready", "source": _V.PRECHECKED, "dest": _V.READY},
    # Methods that replicate while the source runs (warm) copy in `replicating` until their cutover is due.
    {"trigger": "start_replication", "source": _V.READY, "dest": _V.REPLICATING},
    {"trigger": "start_cutover", "source": [_V.READY, _V.REPLICATING], "dest": _V.CUTTING_OVER},
    {"trigger": "start_verify", "source": _V.CUTTING_OVER, "dest": _V.VERIFYING},
    {"trigger": "complete", "source": _V.VERIFYING, "dest": _V.COMPLETED},
    {"trigger": "fail", "source": _VM_ACTIVE, "dest": _V.FAILED},
    # Nothing has changed before cutover: such a VM is skipped, not rolled back.
    {"trigger": "skip", "source": [_V.PENDING, _V.PRECHECKED, _V.READY], "dest": _V.SKIPPED},
    {"trigger": "rollback", "source": [_V.REPLICATING, _V.CUTTING_OVER, _V.VERIFYING, _V.COMPLETED, _V.FAILED],
     "dest": _V.ROLLED_BACK},
    # A retried VM starts over; phases it already finished in this run are not run again.
    {"trigger": "retry", "source": [_V.FAILED, _V.SKIPPED], "dest": _V.PENDING},
]

WAVE_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "start", "source": _W.PENDING, "dest": _W.PRECHECKING},
    {"trigger": "run", "source": _W.PRECHECKING, "dest": _W.RUNNING},
    {"trigger": "complete", "source": _W.RUNNING, "dest": _W.COMPLETED},
    {"trigger": "finish_partial", "source": _W.RUNNING, "dest": _W.PARTIAL},
    {"trigger": "fail", "source": [_W.PRECHECKING, _W.RUNNING], "dest": _W.FAILED},
    {"trigger": "pause", "source": [_W.PRECHECKING, _W.RUNNING], "dest": _W.PAUSED},
    {"trigger": "cancel", "source": [_W.PENDING, _W.PRECHECKING, _W.RUNNING, _W.PAUSED], "dest": _W.CANCELED},
    # A paused or canceled wave starts again with its prechecks (its window is checked again).
    {"trigger": "resume", "source": [_W.PAUSED, _W.CANCELED], "dest": _W.PRECHECKING},
    # Only on request (resume with retry_failed): a failed or partial wave retries its failed VMs.
    {"trigger": "retry", "source": [_W.FAILED, _W.PARTIAL], "dest": _W.PRECHECKING},
]

TERMINAL_VM_STATES = frozenset({_V.COMPLETED, _V.FAILED, _V.ROLLED_BACK, _V.SKIPPED})
# Waves in these states do not run again unless asked (partial and failed take `retry`).
TERMINAL_WAVE_STATES = frozenset({_W.COMPLETED, _W.PARTIAL, _W.FAILED})


@dataclass(eq=False)
class VmModel:
    """The state of one VM in a run (driven by the VM machine)."""

    id: str
    wave: int
    state: VmState = VmState.PENDING
    phase: str | None = None
    error: dict[str, Any] | None = None


@dataclass(eq=False)
class WaveModel:
    """The state of one wave in a run (driven by the wave machine)."""

    id: int
    state: WaveState = WaveState.PENDING
    reason: str | None = None


S = TypeVar("S", bound=Enum)
M = TypeVar("M", VmModel, WaveModel)
# (kind, model, trigger, source, dest, data) -> None; raising aborts the transition.
Recorder = Callable[[str, Any, str, Enum, Enum, Mapping[str, Any]], None]


class ManyModelMachine(Machine):
    """A Machine that registers models in O(1) and binds no per-model methods (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        self._model_ids: set[int] = set()
        super().__init__(**kwargs)

    def add_model(self, model: Any, initial: Any = None) -> None:
        """Register `model` (or a list of them) in `initial` (default: the machine's initial state)."""
        for mod in model if isinstance(model, list) else [model]:
            if id(mod) in self._model_ids:
                continue
            state: Any = self.initial if initial is None else initial
            self.set_state(state, model=mod)
            self.models.append(mod)
            self._model_ids.add(id(mod))

    def remove_model(self, model: Any) -> None:
        """Forget `model` (or a list of them)."""
        gone = {id(m) for m in (model if isinstance(model, list) else [model])}
        self.models = [m for m in self.models if id(m) not in gone]
        self._model_ids -= gone


class Lifecycle(Generic[M, S]):
    """One machine of one kind (`vm` or `wave`) driving many models; every transition goes to `recorder`."""

    def __init__(self, kind: str, states: type[S], table: list[dict[str, Any]], initial: S,
                 recorder: Recorder | None = None) -> None:
        self.kind = kind
        self.states = states
        self._recorder = recorder
        self.machine = ManyModelMachine(
            model=None, states=states, transitions=table, initial=initial, auto_transitions=False,
            send_event=True, before_state_change=[self._on_transition], ignore_invalid_triggers=False,
        )
        self.transitions = 0
        # A concrete logger (a lazy proxy would build one per call): filtered levels cost nothing.
        self._log = get_logger("migrate.engine.lifecycle").bind(machine=kind)

    def _on_transition(self, event: EventData) -> None:
        """Journal, then log, each transition before the model's state changes."""
        transition, model = event.transition, event.model
        assert transition is not None and transition.dest is not None and event.event is not None
        src = self.states[transition.source]
        dst = self.states[transition.dest]
        trigger = event.event.name
        if self._recorder is not None:
            self._recorder(self.kind, model, trigger, src, dst, event.kwargs)
        self.transitions += 1
        self._log.debug("transition", kind=self.kind, id=getattr(model, "id", None), trigger=trigger,
                        src=src.value, dst=dst.value)

    def add(self, model: M, state: S | None = None) -> M:
        """Register `model` in `state` (default: the initial state) and return it."""
        self.machine.add_model(model, initial=state)
        return model

    def fire(self, model: M, trigger: str, **data: Any) -> None:
        """Run `trigger` on `model`; MachineError if it is not valid from the model's state."""
        event = self.machine.events.get(trigger)
        if event is None:
            raise MachineError(f"{self.kind} machine has no trigger {trigger!r}")
        if not event.trigger(model, **data):
            raise MachineError(f"{self.kind} {model.id}: {trigger} did not change state {model.state.value}")


def valid_triggers(machine: Machine, state: Enum) -> set[str]:
    """The triggers of `machine` that are valid from `state`."""
    return {name for name, event in machine.events.items() if state.name in event.transitions}


def vm_lifecycle(recorder: Recorder | None = None) -> Lifecycle[VmModel, VmState]:
    """The VM machine of one runner."""
    return Lifecycle("vm", VmState, VM_TRANSITIONS, VmState.PENDING, recorder)


def wave_lifecycle(recorder: Recorder | None = None) -> Lifecycle[WaveModel, WaveState]:
    """The wave machine of one runner."""
    return Lifecycle("wave", WaveState, WAVE_TRANSITIONS, WaveState.PENDING, recorder)
