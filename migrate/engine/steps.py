"""Running one journaled step (a phase or a hook) with retries; driving one VM through its lifecycle."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from migrate.core.errors import AdapterError, OperationalError
from migrate.engine.context import PhaseContext
from migrate.engine.hooks import hook_step, run_hook
from migrate.engine.journal import RedactedJson, error_info, redacted_json
from migrate.engine.lifecycle import VmModel, VmState
from migrate.engine.limits import SlotLease
from migrate.engine.methods import Phase, Stage, get_method
from migrate.engine.playbook import Hook
from migrate.engine.replication import JournalReplication
from migrate.engine.run_state import RunState
from migrate.engine.timing import Interrupted

__all__ = ["StepFailed", "VmOutcome", "drive_vm", "precheck_vm", "run_hooks", "run_step", "typed_outputs"]

VmOutcome = Literal["prechecked", "completed", "failed", "interrupted", "not_started"]


class StepFailed(Exception):
    """A step failed for good (after its retries); `cause` is the last error."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step
        self.cause = cause


def run_step(rs: RunState, kind: str, entity_id: str, step: str, inputs: Mapping[str, Any] | RedactedJson | None,
             body: Callable[[int, str], Mapping[str, Any]], log: Any, *,
             durable_start: bool = True) -> Mapping[str, Any]:
    """Run `body(attempt, key)` as journaled step `step`, unless it already finished in this run.

    With `durable_start` the start record (and everything before it) is committed before the body runs:
    steps that may change something need that, read-only ones (prechecks) do not. Retryable
    AdapterErrors are retried with backoff up to the policy's attempts; a cancel that asks to stop at
    the next phase boundary raises Interrupted before the step (or a retry) starts.
    """
    done: dict[str, Mapping[str, Any]] = rs.done[(kind, entity_id)]
    if step in done:
        return done[step]
    journal, run_id = rs.journal, rs.run_id
    tries = rs.settings.retry.attempts
    for attempt_here in range(1, tries + 1):
        if rs.cancel.is_interrupt:
            raise Interrupted(f"stopped before {step}")
        attempt = rs.attempts.get((kind, entity_id, step), 0) + 1
        rs.attempts[(kind, entity_id, step)] = attempt
        key, _ = journal.step_started(run_id, kind, entity_id, step, inputs, attempt=attempt, wait=durable_start)
        try:
            outputs = body(attempt, key)
            if not isinstance(outputs, Mapping):
                raise OperationalError(f"{step} returned {type(outputs).__name__}, not a mapping of outputs")
        except Interrupted:
            raise  # left `started`: resume runs it again
        except AdapterError as exc:
            journal.step_failed(run_id, kind, entity_id, step, attempt, error_info(exc), wait=False)
            # an error its adapter already retried to a deadline (the endpoint stayed down) gets one more try
            if not exc.retryable or attempt_here == tries or (exc.exhausted and attempt_here >= 2):
                raise StepFailed(step, exc) from exc
            delay = rs.jitter(attempt_here)
            log.warning("retrying", step=step, attempt=attempt, delay=round(delay, 3), error=str(exc))
            if rs.settings.clock.sleep(delay, rs.cancel.interrupt):
                raise Interrupted(f"stopped while waiting to retry {step}") from exc
            continue
        except Exception as exc:
            journal.step_failed(run_id, kind, entity_id, step, attempt, error_info(exc), wait=False)
            raise StepFailed(step, exc) from exc
        result = dict(outputs)
        journal.step_finished(run_id, kind, entity_id, step, attempt, result, wait=False)
        done[step] = result
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def run_hooks(rs: RunState, kind: str, entity_id: str, when: str, hooks: list[Hook], variables: Mapping[str, str],
              log: Any) -> None:
    """Run hooks in order as steps; a failing non-blocking hook is journaled and logged, nothing more."""
    for index, hook in enumerate(hooks):
        step = hook_step(when, index, hook)

        def body(attempt: int, key: str, hook: Hook = hook) -> Mapping[str, Any]:
            return run_hook(hook, variables, clock=rs.settings.clock, cancel=rs.cancel,
                            approver=rs.settings.approver)

        try:
            run_step(rs, kind, entity_id, step, {"hook": hook.model_dump(exclude_none=True)}, body, log)
        except StepFailed as failed:
            if hook.blocking:
                raise
            log.warning("non-blocking hook failed", step=step, error=str(failed.cause))


def _phase_runner(rs: RunState, vm: VmModel, log: Any, lease: SlotLease | None = None) -> Callable[[str], None]:
    """A function running one phase of `vm` as a step."""
    wave = rs.plan.wave(vm.wave)
    facts = rs.plan.vm_index[vm.id]
    registry = rs.phases[wave.method]
    method = get_method(wave.method)
    # The VM's facts are in the run's plan (digest-checked) and prior outputs in earlier steps: reference them.
    inputs = redacted_json({"vm": vm.id, "wave": wave.id, "method": wave.method})
    prior = rs.done[("vm", vm.id)]
    replication = JournalReplication(rs.journal, rs.run_id, wave, vm.id, rs.settings.clock,
                                     list(rs.playbooks[wave.method].hooks.vm.post), lease)

    def run_phase(phase: str) -> None:
        fn, declared = registry[phase], method.phase(phase)
        vm.phase = phase

        def body(attempt: int, key: str) -> Mapping[str, Any]:
            ctx = PhaseContext(run_id=rs.run_id, wave=wave, vm=facts, phase=phase, attempt=attempt, key=key,
                               adapters=rs.adapters, prior=prior, log=log, clock=rs.settings.clock, cancel=rs.cancel,
                               replication=replication)
            return typed_outputs(declared, fn(ctx))

        run_step(rs, "vm", vm.id, phase, inputs, body, log, durable_start=not declared.changes_nothing)

    return run_phase


def typed_outputs(phase: Phase, outputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A phase's outputs, checked against the output type it declares it provides (as JSON data)."""
    if phase.provides is None:
        return outputs
    try:
        return phase.provides.model_validate(dict(outputs)).model_dump(mode="json")
    except ValidationError as exc:
        raise OperationalError(f"phase {phase.name!r} did not return the {phase.provides.__name__} it provides: "
                               f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def _target_variables(rs: RunState, vm: VmModel) -> dict[str, str]:
    """`target_id` and `target_ip` for post hooks, from what the verify phase found ("" when unknown)."""
    verified = rs.done[("vm", vm.id)].get("verify", {})
    target = verified.get("target_id") or verified.get("instance_id") or ""
    return {"target_id": str(target), "target_ip": str(verified.get("private_ip") or verified.get("ip") or "")}


def _vm_log(rs: RunState, vm: VmModel) -> Any:
    return rs.log.bind(wave=vm.wave, vm=vm.id)


def precheck_vm(rs: RunState, vm: VmModel, log: Any = None) -> VmOutcome:
    """Run a pending VM's precheck phases; it ends `prechecked` or `failed`."""
    log = log or _vm_log(rs, vm)
    wave = rs.plan.wave(vm.wave)
    run_phase = _phase_runner(rs, vm, log)
    try:
        for phase in rs.stage_phases(wave, Stage.PRECHECK):
            run_phase(phase)
        rs.fire_vm(vm, "pass_prechecks")
    except StepFailed as failed:
        rs.fire_vm(vm, "fail", failed.cause, phase=failed.step)
        log.error("precheck failed", phase=failed.step, error=str(failed.cause))
        return "failed"
    except Interrupted:
        return "interrupted"
    return "prechecked"


def drive_vm(rs: RunState, vm: VmModel, lease: SlotLease | None = None) -> VmOutcome:
    """Take a VM from wherever it is (pending to verifying) to `completed` or `failed`, or stop at a boundary;
    `lease`: the slots it holds, which a replicating VM gives back while it waits between cycles."""
    log = _vm_log(rs, vm)
    wave = rs.plan.wave(vm.wave)
    hooks = rs.playbooks[wave.method].hooks.vm
    facts = rs.plan.vm_index[vm.id]
    variables = {"run_id": rs.run_id, "wave": str(wave.id), "vm": vm.id, "vm_name": facts.name or vm.id}
    run_phase = _phase_runner(rs, vm, log, lease)
    if vm.state is VmState.PENDING:
        outcome = precheck_vm(rs, vm, log)
        if outcome != "prechecked":
            return outcome
    try:
        if vm.state is VmState.PRECHECKED:
            rs.fire_vm(vm, "make_ready")
        if vm.state is VmState.READY:
            run_hooks(rs, "vm", vm.id, "pre", hooks.pre, variables, log)
            if rs.cancel.is_interrupt:
                raise Interrupted("stopped before cutover")
            replicate = rs.stage_phases(wave, Stage.REPLICATE)
            rs.fire_vm(vm, "start_replication" if replicate else "start_cutover")
        if vm.state is VmState.REPLICATING:
            for phase in rs.stage_phases(wave, Stage.REPLICATE):
                run_phase(phase)
            rs.fire_vm(vm, "start_cutover")
        if vm.state is VmState.CUTTING_OVER:
            for phase in rs.stage_phases(wave, Stage.CUTOVER):
                run_phase(phase)
            rs.fire_vm(vm, "start_verify")
        if vm.state is VmState.VERIFYING:
            for phase in rs.stage_phases(wave, Stage.VERIFY):
                run_phase(phase)
            run_hooks(rs, "vm", vm.id, "post", hooks.post, {**variables, **_target_variables(rs, vm)}, log)
            rs.fire_vm(vm, "complete")
    except StepFailed as failed:
        rs.fire_vm(vm, "fail", failed.cause, phase=failed.step)
        log.error("vm failed", phase=failed.step, error=str(failed.cause))
        return "failed"
    except Interrupted as stop:
        log.info("vm stopped at a phase boundary", state=vm.state.value, why=str(stop))
        return "interrupted"
    log.info("vm completed")
    return "completed"
