"""Roll VMs of a run back: remove what the run created on the target, restore the source; journaled steps.

A method's rollback is an ordered list of RollbackSteps (name, function, scope). Each runs as the journaled
step `rollback:<name>` with the usual retries, so a rollback interrupted by a crash continues where it
stopped. Scopes: `target` steps may be left pending when the target cannot be reached (their failure
stays in the journal, `migrate status` lists it, a later rollback retries it; once one fails so, the
target steps of the VMs after it are left pending untried); `source` steps always
run; `after_target` steps (powering the source back on) wait until every target step has finished, so
a source never runs next to a target copy that may still be up.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrate.core.errors import AdapterError
from migrate.engine.context import PhaseContext, PhaseFn
from migrate.engine.journal import error_info, redacted_json
from migrate.engine.lifecycle import VmModel, VmState
from migrate.engine.methods import RollbackStep
from migrate.engine.run_state import RunState
from migrate.engine.steps import StepFailed, run_step
from migrate.engine.timing import Interrupted

__all__ = ["ROLLBACK_STATES", "RollbackResult", "RollbackSteps", "cleanup_left", "pending_cleanup", "rollback_vms"]

RollbackSteps = Sequence[RollbackStep]
# States a VM can be rolled back from (rolled_back again: to retry its pending cleanup).
ROLLBACK_STATES = frozenset({VmState.REPLICATING, VmState.CUTTING_OVER, VmState.VERIFYING, VmState.COMPLETED,
                             VmState.FAILED, VmState.ROLLED_BACK})


@dataclass
class RollbackResult:
    """What a rollback did, per VM."""

    run_id: str
    rolled_back: list[str] = field(default_factory=list)
    pending_cleanup: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    hosts_released: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every selected VM was rolled back (pending cleanups allowed)."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json output."""
        return {"run_id": self.run_id, "rolled_back": self.rolled_back, "pending_cleanup": self.pending_cleanup,
                "failed": self.failed, "not_applicable": self.not_applicable, "hosts_released": self.hosts_released}


def pending_cleanup(rs: RunState, vm: VmModel, steps: RollbackSteps) -> list[str]:
    """Rollback steps of a rolled-back VM that wait for the target (unfinished)."""
    if vm.state is not VmState.ROLLED_BACK:
        return []
    return cleanup_left(steps, rs.done[("vm", vm.id)])


def cleanup_left(steps: RollbackSteps, done: Container[str]) -> list[str]:
    """The rollback steps not among the `done` steps that wait for the target (tried and failed, or untried)."""
    return [step.name for step in steps if step.scope != "source" and f"rollback:{step.name}" not in done]


def _rollback_one(rs: RunState, vm: VmModel, steps: RollbackSteps, result: RollbackResult, target_down: bool) -> bool:
    """Roll one VM back; True when the target is unreachable (found so now, or `target_down` already): its
    target steps are then left pending without waiting out the target's login deadline again."""
    wave = rs.plan.wave(vm.wave)
    facts = rs.plan.vm_index[vm.id]
    prior = rs.done[("vm", vm.id)]
    log = rs.log.bind(wave=vm.wave, vm=vm.id)
    inputs = redacted_json({"vm": vm.id, "wave": wave.id, "method": wave.method, "rollback": True})
    pending: list[str] = []
    for rollback_step in steps:
        name, fn, scope = rollback_step.name, rollback_step.run, rollback_step.scope
        step = f"rollback:{name}"
        if (scope == "after_target" and pending) or (scope == "target" and target_down):
            pending.append(name)
            continue

        def body(attempt: int, key: str, fn: PhaseFn = fn, step: str = step) -> Mapping[str, Any]:
            ctx = PhaseContext(run_id=rs.run_id, wave=wave, vm=facts, phase=step, attempt=attempt, key=key,
                               adapters=rs.adapters, prior=prior, log=log, clock=rs.settings.clock, cancel=rs.cancel)
            return fn(ctx)

        try:
            run_step(rs, "vm", vm.id, step, inputs, body, log)
        except StepFailed as failed:
            if scope == "target" and isinstance(failed.cause, AdapterError) and failed.cause.retryable:
                log.warning("target unreachable: its cleanup stays pending for this and the next VMs", step=step,
                            error=str(failed.cause))
                pending.append(name)
                target_down = True
                continue
            result.failed[vm.id] = {"step": step, **error_info(failed.cause)}
            log.error("rollback failed", step=step, error=str(failed.cause))
            return target_down
    if vm.state is not VmState.ROLLED_BACK:
        rs.fire_vm(vm, "rollback", pending_cleanup=pending)
    result.rolled_back.append(vm.id)
    if pending:
        result.pending_cleanup[vm.id] = pending
    log.info("vm rolled back", pending_cleanup=pending)
    return target_down


def rollback_vms(rs: RunState, vm_ids: Sequence[str], steps: Mapping[str, RollbackSteps]) -> RollbackResult:
    """Roll back each VM in order (one at a time: rollback is the careful path, not the fast one). Once the
    target proves unreachable, the later VMs' target steps wait for the next rollback: their sources come
    back at once rather than after the target's retries each."""
    result = RollbackResult(rs.run_id)
    target_down = False
    for vm_id in vm_ids:
        vm = rs.vms[vm_id]
        method = rs.plan.wave(vm.wave).method
        if vm.state not in ROLLBACK_STATES:
            result.not_applicable[vm_id] = f"{vm.state.value}: nothing was changed"
            continue
        if method not in steps:
            result.failed[vm_id] = {"step": "rollback", "message": f"method {method!r} has no rollback"}
            continue
        try:
            target_down = _rollback_one(rs, vm, steps[method], result, target_down)
        except Interrupted:
            break
    return result
