"""The execution engine: VM and wave lifecycles, playbooks, the crash-safe journal, the runner, dry-run."""

from migrate.engine.context import PhaseContext, PhaseFn, PhaseRegistry, wait_operation
from migrate.engine.dryrun import plan_actions
from migrate.engine.journal import Journal
from migrate.engine.lifecycle import VM_TRANSITIONS, WAVE_TRANSITIONS, VmState, WaveState
from migrate.engine.limits import Limits
from migrate.engine.methods import Method, Phase, Stage, get_method, registry
from migrate.engine.plan import RunPlan, VmFacts, WavePlan, WaveWindow
from migrate.engine.playbook import Playbook, load_playbook, playbook_schema
from migrate.engine.run_state import RunSettings
from migrate.engine.runner import Runner, RunResult
from migrate.engine.timing import CancelToken, RetryPolicy, handle_sigint

__all__ = [
    "VM_TRANSITIONS",
    "WAVE_TRANSITIONS",
    "CancelToken",
    "Journal",
    "Limits",
    "Method",
    "Phase",
    "PhaseContext",
    "PhaseFn",
    "PhaseRegistry",
    "Playbook",
    "RetryPolicy",
    "RunPlan",
    "RunResult",
    "RunSettings",
    "Runner",
    "Stage",
    "VmFacts",
    "VmState",
    "WavePlan",
    "WaveState",
    "WaveWindow",
    "get_method",
    "handle_sigint",
    "load_playbook",
    "plan_actions",
    "playbook_schema",
    "registry",
    "wait_operation",
]
