"""What the Temporal workflows and activities pass each other: plain dataclasses (JSON in Temporal's history).

The client resolves everything that depends on the installed methods (each wave's phases in order, their
stages, which ones move disk bytes) before the run starts, so the workflows need no method registry and
any worker can run them; only the phase activities need the method and the drivers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EngineSettings",
    "HookTask",
    "PhaseSpec",
    "PhaseTask",
    "RunInput",
    "VmInput",
    "VmResult",
    "WaveInput",
    "WaveResult",
    "WaveStepTask",
]

Json = dict[str, Any]


@dataclass
class EngineSettings:
    """How the workflows schedule work: queues, retries, limits and timeouts."""

    task_queue: str
    data_queue: str
    data_queues: dict[str, str] = field(default_factory=dict)   # source name -> its own data queue
    retry: Json = field(default_factory=dict)        # migrate.engine.timing.RetryPolicy
    limits: Json = field(default_factory=dict)       # migrate.engine.limits.Limits
    heartbeat_s: float = 30.0       # a phase whose worker sent no heartbeat for this long runs again elsewhere
    queue_timeout_s: float = 600.0  # a phase no worker took from its queue for this long fails its VM
    phase_timeout_s: float = 7 * 24 * 3600.0
    wave_steps: list[str] = field(default_factory=list)   # e.g. ensure_capacity (run by the worker's site)


@dataclass
class PhaseSpec:
    """One phase of a wave's playbook as the workflows need it."""

    name: str
    stage: str              # migrate.engine.methods.Stage value
    moves_data: bool        # goes to the data queue (a worker near the source)
    precopy: bool = False   # a precopy loop the VM workflow drives itself, one cycle activity at a time


@dataclass
class RunInput:
    """One run: the run plan (RunPlan as JSON), each method's phases, hooks and the settings."""

    run_id: str
    plan: Json
    phases: dict[str, list[PhaseSpec]]
    hooks: dict[str, Json]           # method -> playbook hooks (migrate.engine.playbook.Hooks as JSON)
    settings: EngineSettings
    before: dict[str, WaveResult] = field(default_factory=dict)   # resuming: each wave as the last execution left it
    retry: list[str] = field(default_factory=list)                # resuming: failed or skipped VMs to run again


@dataclass
class WaveInput:
    """One wave and the facts of its VMs."""

    run_id: str
    wave: Json                       # WavePlan
    vms: list[Json]                  # VmFacts, in plan order
    phases: list[PhaseSpec]
    hooks: Json
    settings: EngineSettings
    requested: list[list[str]] = field(default_factory=list)   # cutover requests: [scope (vm|wave), id]
    before: WaveResult | None = None                           # resuming: the wave as it was left
    retry: list[str] = field(default_factory=list)


@dataclass
class VmInput:
    """One VM past its prechecks: the phases left and the outputs of those done."""

    run_id: str
    wave: Json
    vm: Json
    phases: list[PhaseSpec]
    hooks: Json
    prior: dict[str, Json]
    settings: EngineSettings
    cycles: list[Json] = field(default_factory=list)       # a replicating VM's finished cycles
    requested: list[list[str]] = field(default_factory=list)   # cutover requests: [scope (vm|wave), id]


@dataclass
class PhaseTask:
    """Phases of one VM, for one activity."""

    run_id: str
    wave: Json
    vm: Json
    phases: list[str]               # consecutive phases of one stage and queue, run in order by one activity
    prior: dict[str, Json]
    cycles: list[Json] = field(default_factory=list)
    cycle: int | None = None        # with the cycle activity: the cycle to run (of phases[0])


@dataclass
class HookTask:
    """One playbook hook (wave or VM, pre or post)."""

    hook: Json
    variables: dict[str, str]


@dataclass
class WaveStepTask:
    """One wave step (ensure_capacity) of one wave."""

    run_id: str
    step: str
    wave: Json
    vms: list[Json]


@dataclass
class VmResult:
    """Where one VM ended: its state, last phase, error and every phase's outputs."""

    id: str
    state: str
    phase: str | None = None
    error: Json | None = None
    outputs: dict[str, Json] = field(default_factory=dict)
    cycles: list[Json] = field(default_factory=list)
    cutover_requested: bool = False
    waiting: dict[str, str] = field(default_factory=dict)      # approvals waiting: key -> prompt


@dataclass
class WaveResult:
    """Where one wave ended, and its VMs."""

    id: int
    state: str
    reason: str | None = None
    vms: list[VmResult] = field(default_factory=list)
    steps: dict[str, Json] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)      # approvals waiting: key -> prompt
