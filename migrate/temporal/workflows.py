"""The Temporal workflows: one per run, a child per wave, a child per VM, with the local engine's semantics.

- `MigrateRun` runs the waves in plan order and stops at the first that ends paused, canceled or failed
  (migrate.engine.runner.run_status gives the run's status).
- `MigrateWave` waits for its window (a durable timer), runs its pre-hooks and wave steps (ensure_capacity),
  prechecks its VMs (activities, at most `limits.total` at once), applies the failure policy, then starts
  one `MigrateVm` child per VM under the limits per wave, source host, datastore and target cluster: the
  wave workflow is the one place that admits VMs, so the limits hold across all the workers.
- `MigrateVm` runs the VM's pre-hooks, its cutover and verify phases as activities (disk-moving phases on
  the data queue, the others on the control queue), then its post-hooks.

Signals: `cancel` on a run (or a wave) starts nothing new; VMs in flight finish (Ctrl-C's drain). Queries:
`state` on each workflow (its states, phases, errors and outputs: what `migrate status` shows).
Workflow code is deterministic: time is `workflow.now()`, waits are timers, nothing else is read.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

from migrate.engine.lifecycle import WaveState
from migrate.engine.limits import Limiter, Limits
from migrate.engine.plan import VmFacts, WavePlan, WaveWindow
from migrate.engine.runner import run_status
from migrate.engine.timing import RetryPolicy as EngineRetry
from migrate.temporal.activities import HOOK_ACTIVITY, PHASE_ACTIVITY, WAVE_STEP_ACTIVITY
from migrate.temporal.messages import (
    EngineSettings,
    HookTask,
    Json,
    PhaseSpec,
    PhaseTask,
    RunInput,
    VmInput,
    VmResult,
    WaveInput,
    WaveResult,
    WaveStepTask,
)

__all__ = ["RunWorkflow", "VmWorkflow", "WaveWorkflow", "run_workflow_id", "vm_workflow_id", "wave_workflow_id"]

_TERMINAL = frozenset({"completed", "failed", "skipped", "rolled_back"})
_STAGE_STATE = {"cutover": "cutting_over", "verify": "verifying"}


def run_workflow_id(run_id: str) -> str:
    return f"migrate-run-{run_id}"


def wave_workflow_id(run_id: str, wave: int) -> str:
    return f"{run_workflow_id(run_id)}-wave-{wave}"


def vm_workflow_id(run_id: str, vm_id: str) -> str:
    return f"{run_workflow_id(run_id)}-vm-{vm_id}"


def _retry(settings: EngineSettings) -> RetryPolicy:
    """The run's retry policy (migrate.engine.timing.RetryPolicy) as Temporal's."""
    policy = EngineRetry.model_validate(settings.retry)
    return RetryPolicy(initial_interval=timedelta(seconds=max(policy.base_delay, 0.001)),
                       backoff_coefficient=policy.factor, maximum_interval=timedelta(seconds=max(policy.max_delay,
                                                                                                 0.001)),
                       maximum_attempts=policy.attempts)


def _error_of(exc: BaseException, queue: str, settings: EngineSettings) -> Json:
    """A failed activity's error record (the journal's shape): the phase's own, or why no worker ran it."""
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    if isinstance(cause, ActivityTimeout) and cause.type is TimeoutType.SCHEDULE_TO_START:
        return {"type": "NoWorker", "message": f"no worker took the phase from task queue {queue!r} within "
                                               f"{settings.queue_timeout_s:.0f} s (is a `migrate worker "
                                               f"--task-queue {queue}` running?)"}
    if isinstance(cause, ApplicationError):
        if cause.details and isinstance(cause.details[0], dict):
            return dict(cause.details[0])
        return {"type": cause.type or "ApplicationError", "message": cause.message}
    return {"type": type(cause).__name__, "message": str(cause)}


async def _phase(settings: EngineSettings, spec: PhaseSpec, task: PhaseTask) -> Json:
    queue = settings.data_queue if spec.moves_data else settings.task_queue
    result: Json = await workflow.execute_activity(
        PHASE_ACTIVITY, task, task_queue=queue, result_type=dict,
        start_to_close_timeout=timedelta(seconds=settings.phase_timeout_s),
        schedule_to_start_timeout=timedelta(seconds=settings.queue_timeout_s),
        heartbeat_timeout=timedelta(seconds=settings.heartbeat_s), retry_policy=_retry(settings))
    return result


async def _hooks(settings: EngineSettings, hooks: list[Json], variables: dict[str, str]) -> None:
    """Run hooks in order; a blocking hook's failure raises (ActivityError), a non-blocking one is logged."""
    for hook in hooks:
        try:
            await workflow.execute_activity(
                HOOK_ACTIVITY, HookTask(hook=hook, variables=variables), task_queue=settings.task_queue,
                result_type=dict, start_to_close_timeout=timedelta(hours=24),
                schedule_to_start_timeout=timedelta(seconds=settings.queue_timeout_s), retry_policy=_retry(settings))
        except ActivityError as exc:
            if hook.get("blocking", True):
                raise
            workflow.logger.warning("non-blocking hook failed: %s", _error_of(exc, settings.task_queue, settings))


@workflow.defn(name="MigrateVm")
class VmWorkflow:
    """One VM past its prechecks: pre-hooks, cutover and verify phases, post-hooks."""

    def __init__(self) -> None:
        self.result: VmResult | None = None

    @workflow.run
    async def run(self, inp: VmInput) -> VmResult:
        vm_id = str(inp.vm["id"])
        result = self.result = VmResult(id=vm_id, state="ready", outputs=dict(inp.prior))
        variables = {"run_id": inp.run_id, "wave": str(inp.wave["id"]), "vm": vm_id,
                     "vm_name": str(inp.vm.get("name") or vm_id)}
        settings = inp.settings
        try:
            await _hooks(settings, inp.hooks.get("vm", {}).get("pre", []), variables)
        except ActivityError as exc:
            return self._fail("hook:pre", _error_of(exc, settings.task_queue, settings))
        for spec in inp.phases:
            if spec.stage not in _STAGE_STATE or spec.name in result.outputs:
                continue
            result.state, result.phase = _STAGE_STATE[spec.stage], spec.name
            task = PhaseTask(run_id=inp.run_id, wave=inp.wave, vm=inp.vm, phase=spec.name, prior=result.outputs)
            try:
                result.outputs = {**result.outputs, spec.name: await _phase(settings, spec, task)}
            except ActivityError as exc:
                queue = settings.data_queue if spec.moves_data else settings.task_queue
                return self._fail(spec.name, _error_of(exc, queue, settings))
        verified = result.outputs.get("verify", {})
        variables["target_id"] = str(verified.get("target_id") or verified.get("instance_id") or "")
        variables["target_ip"] = str(verified.get("private_ip") or verified.get("ip") or "")
        try:
            await _hooks(settings, inp.hooks.get("vm", {}).get("post", []), variables)
        except ActivityError as exc:
            return self._fail("hook:post", _error_of(exc, settings.task_queue, settings))
        result.state = "completed"
        return result

    def _fail(self, phase: str, error: Json) -> VmResult:
        assert self.result is not None
        self.result.state, self.result.phase, self.result.error = "failed", phase, error
        workflow.logger.warning("vm %s failed in %s: %s", self.result.id, phase, error.get("message"))
        return self.result

    @workflow.query
    def state(self) -> VmResult | None:
        return self.result


@workflow.defn(name="MigrateWave")
class WaveWorkflow:
    """One wave: window, pre-hooks, wave steps, prechecks, the VMs under limits, post-hooks, the verdict."""

    def __init__(self) -> None:
        self.result: WaveResult | None = None
        self.vms: dict[str, VmResult] = {}
        self.canceled: str | None = None

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Start nothing new; VMs in flight finish."""
        self.canceled = self.canceled or reason or "canceled"

    @workflow.query
    def state(self) -> WaveResult | None:
        if self.result is not None:
            self.result.vms = list(self.vms.values())
        return self.result

    @workflow.run
    async def run(self, inp: WaveInput) -> WaveResult:
        plan = WavePlan.model_validate(inp.wave)
        self.result = WaveResult(id=plan.id, state="prechecking")
        self.vms = {str(vm["id"]): VmResult(id=str(vm["id"]), state="pending") for vm in inp.vms}
        verdict = await self._before_vms(inp, plan)
        if verdict is None:
            verdict = await self._prechecks(inp, plan)
        if verdict is None:
            self.result.state = "running"
            verdict = await self._dispatch(inp, plan)
        if verdict is None:
            verdict = await self._after_vms(inp, plan)
        self.result.state, self.result.reason = verdict
        self.result.vms = list(self.vms.values())
        return self.result

    async def _before_vms(self, inp: WaveInput, plan: WavePlan) -> tuple[str, str] | None:
        """The window, the wave's pre-hooks and wave steps: a final verdict if the wave cannot start."""
        if self.canceled:
            return "canceled", self.canceled
        if plan.window is not None:
            why = await self._window(plan.window)
            if why is not None:
                return "canceled", why
        variables = {"run_id": inp.run_id, "wave": str(plan.id)}
        try:
            await _hooks(inp.settings, inp.hooks.get("wave", {}).get("pre", []), variables)
        except ActivityError as exc:
            self._skip_rest(f"wave {plan.id} pre-hook failed")
            return "failed", f"pre-hook failed: {_error_of(exc, inp.settings.task_queue, inp.settings)['message']}"
        for step in inp.settings.wave_steps:
            try:
                assert self.result is not None
                self.result.steps[step] = await workflow.execute_activity(
                    WAVE_STEP_ACTIVITY, WaveStepTask(run_id=inp.run_id, step=step, wave=inp.wave, vms=inp.vms),
                    task_queue=inp.settings.task_queue, result_type=dict, start_to_close_timeout=timedelta(hours=12),
                    schedule_to_start_timeout=timedelta(seconds=inp.settings.queue_timeout_s),
                    retry_policy=_retry(inp.settings))
            except ActivityError as exc:
                error = _error_of(exc, inp.settings.task_queue, inp.settings)
                self._skip_rest(f"wave {plan.id} {step} failed: {error['message']}")
                return "failed", f"{step} failed: {error['message']}"
        return None

    async def _window(self, window: WaveWindow) -> str | None:
        """Wait (a durable timer) for the window to open; why the wave cannot run in it, or None."""
        now = workflow.now()
        if now >= window.end:
            return f"window {window.start.isoformat()} - {window.end.isoformat()} has ended"
        if now < window.start:
            try:
                await workflow.wait_condition(lambda: self.canceled is not None,
                                              timeout=(window.start - now).total_seconds())
            except TimeoutError:
                return None
            return self.canceled
        return None

    async def _prechecks(self, inp: WaveInput, plan: WavePlan) -> tuple[str, str] | None:
        """Each pending VM's precheck phases (at most `limits.total` VMs at once); the policy's verdict."""
        specs = [s for s in inp.phases if s.stage == "precheck"]
        gate = asyncio.Semaphore(Limits.model_validate(inp.settings.limits).total)

        async def check(vm: Json) -> None:
            async with gate:
                record = self.vms[str(vm["id"])]
                if self.canceled:
                    return
                for spec in specs:
                    record.phase = spec.name
                    try:
                        record.outputs[spec.name] = await _phase(inp.settings, spec, PhaseTask(
                            run_id=inp.run_id, wave=inp.wave, vm=vm, phase=spec.name, prior=record.outputs))
                    except ActivityError as exc:
                        record.state, record.error = "failed", _error_of(exc, inp.settings.task_queue, inp.settings)
                        return
                record.state = "prechecked"

        await asyncio.gather(*(check(vm) for vm in inp.vms))
        if self.canceled:
            return "canceled", self.canceled
        failures = sum(1 for vm in self.vms.values() if vm.state == "failed")
        if failures and plan.policy == "pause":
            return "paused", f"{failures} VM(s) failed prechecks (policy pause)"
        if failures and plan.policy == "stop":
            self._skip_rest(f"wave {plan.id} stopped: {failures} VM(s) failed prechecks")
            return "failed", f"{failures} VM(s) failed prechecks (policy stop)"
        return None

    async def _dispatch(self, inp: WaveInput, plan: WavePlan) -> tuple[str, str] | None:
        """Start a VM child as soon as all its slots are free, in plan order; stop admitting on a cancel, the
        window's end or a policy halt. A verdict if VMs were left, else None."""
        limits = Limits.model_validate(inp.settings.limits)
        limiter = Limiter(limits)
        facts = {str(vm["id"]): VmFacts.model_validate(vm) for vm in inp.vms}
        waiting = [vm_id for vm_id, vm in self.vms.items() if vm.state == "prechecked"]
        running: set[asyncio.Task[None]] = set()
        halt: list[str] = []

        async def drive(vm_id: str, keys: tuple[str, ...]) -> None:
            record = self.vms[vm_id]
            record.state = "ready"
            try:
                child = VmInput(run_id=inp.run_id, wave=inp.wave, vm=facts[vm_id].model_dump(mode="json"),
                                phases=inp.phases, hooks=inp.hooks, prior=record.outputs, settings=inp.settings)
                done: VmResult = await workflow.execute_child_workflow(
                    VmWorkflow.run, child,
                    id=vm_workflow_id(inp.run_id, vm_id), task_queue=inp.settings.task_queue)
                self.vms[vm_id] = done
            finally:
                limiter.release(keys)
            if done.state == "failed" and plan.policy in ("pause", "stop") and not halt:
                halt.append(plan.policy)

        def stop_reason() -> str | None:
            if halt:
                return halt[0]
            if self.canceled:
                return "cancel"
            if plan.window is not None and workflow.now() >= plan.window.end:
                return "window"
            return None

        while waiting and stop_reason() is None:
            admitted = [vm_id for vm_id in waiting if limiter.try_acquire(limits.keys(facts[vm_id]))]
            for vm_id in admitted:
                waiting.remove(vm_id)
                task = asyncio.create_task(drive(vm_id, limits.keys(facts[vm_id])))
                running.add(task)
                task.add_done_callback(running.discard)
            if waiting:
                await workflow.wait_condition(_fewer(running, stop_reason))
        if running:
            await asyncio.gather(*running)
        reason = stop_reason()
        if reason == "pause":
            return "paused", "a VM failed (policy pause)"
        if reason == "stop":
            self._skip_rest(f"wave {plan.id} stopped after a VM failed (policy stop)")
            return "failed", "a VM failed (policy stop)"
        if waiting and reason == "cancel":
            return "canceled", self.canceled or "canceled"
        if waiting:
            return "paused", f"cutover window ended with {len(waiting)} VM(s) not done"
        return None

    async def _after_vms(self, inp: WaveInput, plan: WavePlan) -> tuple[str, str]:
        """Post-hooks, then the verdict from the VMs' states."""
        try:
            await _hooks(inp.settings, inp.hooks.get("wave", {}).get("post", []),
                         {"run_id": inp.run_id, "wave": str(plan.id)})
        except ActivityError as exc:
            return "failed", f"post-hook failed: {_error_of(exc, inp.settings.task_queue, inp.settings)['message']}"
        states = [vm.state for vm in self.vms.values()]
        done = states.count("completed")
        if done == len(states):
            return "completed", ""
        if done == 0 and "failed" in states:
            return "failed", "no VM completed"
        return "partial", f"{done} of {len(states)} VMs completed"

    def _skip_rest(self, reason: str) -> None:
        for record in self.vms.values():
            if record.state in ("pending", "prechecked", "ready"):
                record.state, record.error = "skipped", {"type": "Skipped", "message": reason}


def _fewer(running: set[asyncio.Task[None]], stop_reason: Callable[[], str | None]) -> Callable[[], bool]:
    """A wait condition: one of the VMs running now has finished, or admitting must stop."""
    count = len(running)
    return lambda: len(running) < count or stop_reason() is not None


@workflow.defn(name="MigrateRun")
class RunWorkflow:
    """One run: its waves in plan order, each a child workflow."""

    def __init__(self) -> None:
        self.waves: dict[int, WaveResult] = {}
        self.current: int | None = None
        self.canceled: str | None = None
        self.run_id = ""

    @workflow.signal
    async def cancel(self, reason: str) -> None:
        """Start nothing new (the wave running now admits no more VMs); VMs in flight finish."""
        self.canceled = self.canceled or reason or "canceled"
        if self.current is not None:
            await workflow.get_external_workflow_handle(wave_workflow_id(self.run_id, self.current)).signal(
                WaveWorkflow.cancel, self.canceled)

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "current_wave": self.current, "canceled": self.canceled,
                "waves": {str(k): v for k, v in self.waves.items()}}

    @workflow.run
    async def run(self, inp: RunInput) -> dict[str, Any]:
        self.run_id = inp.run_id
        began = workflow.now()
        facts = {str(vm["id"]): vm for vm in inp.plan["vms"]}
        for wave in inp.plan["waves"]:
            wave_id = int(wave["id"])
            if self.canceled:
                break
            method = str(wave.get("method", "cold"))
            self.current = wave_id
            self.waves[wave_id] = WaveResult(id=wave_id, state="running")
            result: WaveResult = await workflow.execute_child_workflow(
                WaveWorkflow.run, WaveInput(run_id=inp.run_id, wave=wave, vms=[facts[v] for v in wave["vms"]],
                                            phases=inp.phases[method], hooks=inp.hooks.get(method, {}),
                                            settings=inp.settings),
                id=wave_workflow_id(inp.run_id, wave_id), task_queue=inp.settings.task_queue)
            self.waves[wave_id] = result
            self.current = None
            if result.state not in ("completed", "partial"):
                break
        states = [WaveState(self.waves[int(w["id"])].state) if int(w["id"]) in self.waves else WaveState.PENDING
                  for w in inp.plan["waves"]]
        vms = [vm for result in self.waves.values() for vm in result.vms]
        counts = Counter(vm.state for vm in vms)
        counts["pending"] += len(facts) - len(vms)
        return {"run_id": inp.run_id, "status": run_status(states, canceled=self.canceled is not None),
                "waves": {str(w["id"]): s.value for w, s in zip(inp.plan["waves"], states, strict=True)},
                "vms": dict(sorted((k, n) for k, n in counts.items() if n)),
                "transitions": 0, "journal_records": 0,
                "seconds": round((workflow.now() - began).total_seconds(), 3),
                "failed": {vm.id: vm.error or {} for vm in vms if vm.state == "failed"},
                "detail": {str(k): v for k, v in self.waves.items()}}
