"""What one execution of a run shares between the runner, its waves and its VM workers."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrate.core.log import get_logger
from migrate.core.ports import Adapters
from migrate.engine.context import PhaseRegistry
from migrate.engine.hooks import Approver
from migrate.engine.journal import Journal, error_info
from migrate.engine.lifecycle import Lifecycle, VmModel, VmState, WaveModel, WaveState, vm_lifecycle, wave_lifecycle
from migrate.engine.limits import Limits
from migrate.engine.methods import Stage, get_method
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from migrate.engine.playbook import Playbook
from migrate.engine.timing import CancelToken, Clock, RetryPolicy, SystemClock

__all__ = ["Estimate", "RetryScope", "RunSettings", "RunState", "WaveStep", "WaveStepContext"]

# (wave, ids of the VMs it still has to move) -> estimated seconds
Estimate = Callable[[WavePlan, list[str]], float]


@dataclass(frozen=True)
class WaveStepContext:
    """What a wave step (e.g. ensure capacity) gets: the wave, its VMs' facts, the journal (None in a dry-run),
    and the run's clock and cancel token (waits use the one and stop on the other)."""

    run_id: str
    wave: WavePlan
    vms: list[VmFacts]
    journal: Journal | None
    dry_run: bool = False
    earlier: list[list[VmFacts]] = field(default_factory=list)  # VMs of the waves before, in plan order
    clock: Clock = field(default_factory=SystemClock)
    cancel: CancelToken = field(default_factory=CancelToken)


# A wave-level step run (journaled, retried) after the wave's pre-hooks and before its VM prechecks; its
# failure fails the wave before any VM is touched. In a dry-run it is called with dry_run=True: read only.
WaveStep = Callable[[WaveStepContext], Mapping[str, Any]]


@dataclass(frozen=True)
class RetryScope:
    """The failed work `resume --retry-failed` takes again: every failed VM, or only those of named VMs/waves."""

    vms: frozenset[str] | None = None
    waves: frozenset[int] | None = None

    def covers(self, vm: VmModel) -> bool:
        """True if `vm` (failed or skipped) is to be retried."""
        return (self.vms is None or vm.id in self.vms) and (self.waves is None or vm.wave in self.waves)


@dataclass
class RunSettings:
    """How a run executes: limits, retries, clock, window estimate, approvals, jitter seed."""

    limits: Limits = field(default_factory=Limits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=SystemClock)
    estimate: Estimate | None = None
    approver: Approver | None = None
    seed: int | None = None
    poll_seconds: float = 0.5
    wave_steps: tuple[tuple[str, WaveStep], ...] = ()
    # (kind, id, trigger, new state) after each transition is journaled: progress displays (any thread)
    observer: Callable[[str, str, str, str], None] | None = None


class RunState:
    """Models, machines, finished-step outputs and settings of one execution of a run."""

    def __init__(self, journal: Journal, run_id: str, plan: RunPlan, playbooks: Mapping[str, Playbook],
                 phases: Mapping[str, PhaseRegistry], adapters: Adapters, settings: RunSettings,
                 cancel: CancelToken, retry_failed: RetryScope | None = None) -> None:
        self.journal = journal
        self.run_id = run_id
        self.plan = plan
        self.playbooks = playbooks
        self.phases = phases
        self.adapters = adapters
        self.settings = settings
        self.cancel = cancel
        self.retry_failed = retry_failed
        self.log = get_logger("migrate.engine").bind(run_id=run_id)
        self.rng = random.Random(settings.seed)  # noqa: S311 - jitter, not security
        self.rng_lock = threading.Lock()
        self.vm_machine: Lifecycle[VmModel, VmState] = vm_lifecycle(self._record)
        self.wave_machine: Lifecycle[WaveModel, WaveState] = wave_lifecycle(self._record)
        self.vms: dict[str, VmModel] = {}
        self.waves: dict[int, WaveModel] = {}
        self.done: dict[tuple[str, str], dict[str, Any]] = {}
        self.attempts: dict[tuple[str, str, str], int] = {}
        self._stages: dict[tuple[str, Stage], list[str]] = {}
        self._load()

    def _record(self, kind: str, model: Any, trigger: str, src: Any, dst: Any, data: Mapping[str, Any]) -> None:
        """The machines' callback: journal the transition (before the model changes)."""
        self.journal.record_transition(self.run_id, kind, str(model.id), trigger, src.value, dst.value, data,
                                       wait=False)
        if self.settings.observer is not None:
            self.settings.observer(kind, str(model.id), trigger, dst.value)

    def _load(self) -> None:
        """Models in the states the journal holds, and the outputs of every finished step."""
        for record in self.journal.entities(self.run_id, "wave", self.plan):
            self.waves[record.wave] = self.wave_machine.add(WaveModel(id=record.wave), WaveState(record.state))
            self.done[("wave", record.id)] = {}
        for record in self.journal.entities(self.run_id, "vm", self.plan):
            model = VmModel(id=record.id, wave=record.wave, phase=record.phase, error=record.error)
            self.vms[record.id] = self.vm_machine.add(model, VmState(record.state))
            self.done[("vm", record.id)] = {}
        for step in self.journal.steps(self.run_id):
            self.attempts[(step.kind, step.entity_id, step.step)] = step.attempt
            if step.status == "finished":
                self.done[(step.kind, step.entity_id)][step.step] = step.outputs or {}

    def fire_vm(self, vm: VmModel, trigger: str, error: BaseException | None = None, **data: Any) -> None:
        """Move a VM (journaled first); a failure's error is kept on the model and in the journal."""
        info = error_info(error) if error is not None else None
        if info is not None:
            data["error"] = info
        self.vm_machine.fire(vm, trigger, **data)
        vm.error = info if trigger == "fail" else (None if trigger == "retry" else vm.error)

    def fire_wave(self, wave: WaveModel, trigger: str, error: BaseException | None = None, **data: Any) -> None:
        """Move a wave (journaled first)."""
        if error is not None:
            data["error"] = error_info(error)
        self.wave_machine.fire(wave, trigger, **data)
        wave.reason = data.get("reason")

    def stage_phases(self, wave: WavePlan, stage: Stage) -> list[str]:
        """The playbook's phases of `stage` for the wave's method, in order."""
        key = (wave.method, stage)
        if key not in self._stages:
            method = get_method(wave.method)
            self._stages[key] = [p for p in self.playbooks[wave.method].phases if method.phase(p).stage is stage]
        return self._stages[key]

    def jitter(self, retry: int) -> float:
        """Backoff before retry number `retry`."""
        with self.rng_lock:
            return self.settings.retry.delay(retry, self.rng)

    @property
    def transitions(self) -> int:
        """Transitions made by this execution."""
        return self.vm_machine.transitions + self.wave_machine.transitions
