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
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

from migrate.engine.lifecycle import WaveState
from migrate.engine.limits import Limiter, Limits
from migrate.engine.plan import VmFacts, WavePlan, WaveWindow
from migrate.engine.runner import run_status
from migrate.temporal.activities import WAVE_STEP_ACTIVITY
from migrate.temporal.messages import (
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
from migrate.temporal.vm_workflow import VmWorkflow
from migrate.temporal.workflow_steps import (
    Approvals,
    HookFailed,
    error_of,
    failed_phase,
    phase_activity,
    phase_groups,
    retry_policy,
    run_hooks,
    run_workflow_id,
    tell,
    vm_workflow_id,
    wave_workflow_id,
)

__all__ = ["RunWorkflow", "VmWorkflow", "WaveWorkflow", "run_workflow_id", "vm_workflow_id", "wave_workflow_id"]

_FINAL = frozenset({"completed", "failed", "skipped"})


@workflow.defn(name="MigrateWave")
class WaveWorkflow:
    """One wave: window, pre-hooks, wave steps, prechecks, the VMs under limits, post-hooks, the verdict."""

    def __init__(self) -> None:
        self.result: WaveResult | None = None
        self.vms: dict[str, VmResult] = {}
        self.canceled: str | None = None
        self.run_id = ""
        self.requests: list[list[str]] = []        # cutover requests, forwarded to the VMs
        self.started: set[str] = set()             # VMs whose workflow has started
        self.limiter: Limiter | None = None
        self.keys: dict[str, tuple[str, ...]] = {}
        self.held: set[str] = set()                # VMs holding their slots
        self.wants: list[str] = []                 # replicating VMs waiting for their slots again
        self.tick = 0                              # bumped by every event the dispatcher waits for
        self.approvals = Approvals()

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Start nothing new; VMs in flight finish."""
        self.canceled = self.canceled or reason or "canceled"
        self.tick += 1

    @workflow.signal
    async def cutover(self, request: list[str]) -> None:
        """`migrate cutover` (["vm", id] or ["wave", id]): kept for VMs not started, passed to those running."""
        self.requests.append(request)
        targets = [request[1]] if request[0] == "vm" else sorted(self.started)
        for vm_id in targets:
            if vm_id in self.started and self.vms[vm_id].state not in ("completed", "failed", "skipped"):
                await tell(vm_workflow_id(self.run_id, vm_id), VmWorkflow.cutover, request)

    @workflow.signal
    async def approve(self, decision: list[str]) -> None:
        """`migrate approve`: [key, "yes"|"no", by whom]; a VM's key (vm:<id>:...) goes to that VM."""
        key, verdict, by = decision
        if key.startswith("vm:"):
            vm_id = key.split(":")[1]
            if vm_id in self.started:
                await tell(vm_workflow_id(self.run_id, vm_id), VmWorkflow.approve, decision)
            return
        self.approvals.decide(key, verdict == "yes", by)

    @workflow.signal
    def slots(self, ask: list[str]) -> None:
        """A replicating VM gives its slots back (["vm", "free"]) or wants them again (["vm", "want"])."""
        vm_id, what = ask
        if what == "free" and vm_id in self.held and self.limiter is not None:
            self.limiter.release(self.keys[vm_id])
            self.held.discard(vm_id)
        elif what == "want" and vm_id not in self.wants:
            self.wants.append(vm_id)
        self.tick += 1

    @workflow.query
    def progress(self) -> int:
        """VMs of the wave in a final state (what the client's progress bar counts)."""
        return sum(1 for vm in self.vms.values() if vm.state in _FINAL)

    @workflow.query
    def state(self) -> WaveResult | None:
        if self.result is not None:
            self.result.vms = list(self.vms.values())
        return self.result

    @workflow.run
    async def run(self, inp: WaveInput) -> WaveResult:
        plan = WavePlan.model_validate(inp.wave)
        self.run_id, self.requests = inp.run_id, [list(r) for r in inp.requested]
        self.result = WaveResult(id=plan.id, state="prechecking", waiting=self.approvals.waiting)
        self.vms = {str(vm["id"]): VmResult(id=str(vm["id"]), state="pending") for vm in inp.vms}
        if inp.before is not None:
            self.vms.update(_resumed(inp.before, set(inp.retry), inp.phases))
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
        if plan.window is not None and not any(spec.precopy for spec in inp.phases):
            # (a replicating wave starts now: its window schedules the cutover, see vm_workflow)
            why = await self._window(plan.window)
            if why is not None:
                return "canceled", why
        variables = {"run_id": inp.run_id, "wave": str(plan.id)}
        try:   # (a resumed wave ran its pre-hooks already)
            await run_hooks(inp.settings, [] if inp.before is not None else inp.hooks.get("wave", {}).get("pre", []),
                            variables, approvals=self.approvals, scope=f"wave:{plan.id}:pre")
        except HookFailed as failed:
            self._skip_rest(f"wave {plan.id} pre-hook failed")
            return "failed", f"pre-hook failed: {failed.error.get('message')}"
        for step in inp.settings.wave_steps:
            try:
                assert self.result is not None
                self.result.steps[step] = await workflow.execute_activity(
                    WAVE_STEP_ACTIVITY, WaveStepTask(run_id=inp.run_id, step=step, wave=inp.wave, vms=inp.vms),
                    task_queue=inp.settings.task_queue, result_type=dict, start_to_close_timeout=timedelta(hours=12),
                    schedule_to_start_timeout=timedelta(seconds=inp.settings.queue_timeout_s),
                    retry_policy=retry_policy(inp.settings))
            except ActivityError as exc:
                error = error_of(exc, inp.settings.task_queue, inp.settings)
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
                for group in phase_groups(specs):
                    record.phase = group[0].name
                    try:
                        done, _ = await phase_activity(inp.settings, group, PhaseTask(
                            run_id=inp.run_id, wave=wave_of_vm(inp.wave, str(vm["id"])), vm=vm,
                            phases=[s.name for s in group], prior=record.outputs))
                    except ActivityError as exc:
                        failed, before = failed_phase(exc)
                        record.outputs.update(before)
                        record.state, record.phase = "failed", failed or group[0].name
                        record.error = error_of(exc, inp.settings.task_queue, inp.settings)
                        return
                    record.outputs.update(done)
                record.state = "prechecked"

        checking = [vm for vm in inp.vms if self.vms[str(vm["id"])].state == "pending"]
        await asyncio.gather(*(check(vm) for vm in checking))
        if self.canceled:
            return "canceled", self.canceled
        failures = sum(1 for vm in checking if self.vms[str(vm["id"])].state == "failed")
        if failures and plan.policy == "pause":
            return "paused", f"{failures} VM(s) failed prechecks (policy pause)"
        if failures and plan.policy == "stop":
            self._skip_rest(f"wave {plan.id} stopped: {failures} VM(s) failed prechecks")
            return "failed", f"{failures} VM(s) failed prechecks (policy stop)"
        return None

    async def _dispatch(self, inp: WaveInput, plan: WavePlan) -> tuple[str, str] | None:
        """Start a VM child as soon as all its slots are free, in plan order, after giving replicating VMs theirs
        back; stop admitting on a cancel, the window's end or a policy halt. A verdict if VMs were left."""
        limits = Limits.model_validate(inp.settings.limits)
        self.limiter = limiter = Limiter(limits)
        facts = {str(vm["id"]): VmFacts.model_validate(vm) for vm in inp.vms}
        self.keys = {vm_id: limits.keys(vm) for vm_id, vm in facts.items()}
        waiting = [vm_id for vm_id, vm in self.vms.items() if vm.state == "prechecked"]
        running: set[asyncio.Task[None]] = set()
        halt: list[str] = []

        async def drive(vm_id: str) -> None:
            record = self.vms[vm_id]
            record.state = "ready"
            child = VmInput(run_id=inp.run_id, wave=wave_of_vm(inp.wave, vm_id),
                            vm=facts[vm_id].model_dump(mode="json"), phases=inp.phases, hooks=inp.hooks,
                            prior=record.outputs, settings=inp.settings, requested=self.requests,
                            cycles=record.cycles)
            try:
                self.started.add(vm_id)
                done: VmResult = await workflow.execute_child_workflow(
                    VmWorkflow.run, child, id=vm_workflow_id(inp.run_id, vm_id), task_queue=inp.settings.task_queue)
            except ChildWorkflowError as exc:   # the VM's workflow itself failed (not one of its phases)
                done = VmResult(id=vm_id, state="failed", phase=record.phase, outputs=record.outputs,
                                error={"type": "WorkflowFailed", "message": str(exc.cause or exc)})
            finally:
                if vm_id in self.held:
                    limiter.release(self.keys[vm_id])
                    self.held.discard(vm_id)
                if vm_id in self.wants:
                    self.wants.remove(vm_id)
                self.tick += 1
            self.vms[vm_id] = done
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

        while True:
            for vm_id in [v for v in self.wants if limiter.try_acquire(self.keys[v])]:
                self.wants.remove(vm_id)
                self.held.add(vm_id)
                await tell(vm_workflow_id(inp.run_id, vm_id), VmWorkflow.slots_granted)
            if stop_reason() is None:
                for vm_id in [v for v in waiting if limiter.try_acquire(self.keys[v])]:
                    waiting.remove(vm_id)
                    self.held.add(vm_id)
                    task = asyncio.create_task(drive(vm_id))
                    running.add(task)
                    task.add_done_callback(running.discard)
            if not running and (not waiting or stop_reason() is not None):
                break
            until_end = (plan.window.end - workflow.now()).total_seconds() if plan.window is not None else 0.0
            with contextlib.suppress(TimeoutError):   # the window's end: nothing more may start
                await workflow.wait_condition(self._changed(), timeout=until_end if until_end > 0 and waiting else None)
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

    def _changed(self) -> Callable[[], bool]:
        """A wait condition: something the dispatcher waits for happened since now."""
        seen = self.tick
        return lambda: self.tick != seen

    async def _after_vms(self, inp: WaveInput, plan: WavePlan) -> tuple[str, str]:
        """Post-hooks, then the verdict from the VMs' states."""
        try:
            await run_hooks(inp.settings, inp.hooks.get("wave", {}).get("post", []),
                            {"run_id": inp.run_id, "wave": str(plan.id)}, approvals=self.approvals,
                            scope=f"wave:{plan.id}:post")
        except HookFailed as failed:
            return "failed", f"post-hook failed: {failed.error.get('message')}"
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


def wave_of_vm(wave: Json, vm_id: str) -> Json:
    """The wave as one VM's workflow and phases need it: without the list of its VMs and the others' cutover
    times (each VM's inputs would otherwise grow with the wave, and the wave's history with its square)."""
    cutover_at = wave.get("cutover_at") or {}
    return {**wave, "vms": [], "cutover_at": {vm_id: cutover_at[vm_id]} if vm_id in cutover_at else {}}


def _resumed(before: WaveResult, retry: set[str], phases: list[PhaseSpec]) -> dict[str, VmResult]:
    """The VMs of a wave a run resumes: completed ones stay, failed and skipped ones stay unless `retry` names them,
    the others go on from their last finished phase (their prechecks again if those did not all finish)."""
    prechecks = {p.name for p in phases if p.stage == "precheck"}
    found: dict[str, VmResult] = {}
    for vm in before.vms:
        if vm.state == "completed" or (vm.state in ("failed", "skipped") and vm.id not in retry):
            found[vm.id] = vm
            continue
        checked = prechecks <= set(vm.outputs)
        found[vm.id] = VmResult(id=vm.id, state="prechecked" if checked else "pending", phase=vm.phase,
                                outputs=dict(vm.outputs) if checked else {}, cycles=list(vm.cycles))
    return found


@workflow.defn(name="MigrateRun")
class RunWorkflow:
    """One run: its waves in plan order, each a child workflow."""

    def __init__(self) -> None:
        self.waves: dict[int, WaveResult] = {}
        self.current: int | None = None
        self.canceled: str | None = None
        self.run_id = ""
        self.requests: dict[int, list[list[str]]] = {}

    @workflow.signal
    async def cutover(self, request: list[str]) -> None:
        """`migrate cutover`: [wave id, scope (vm|wave), vm or wave id]; kept for a wave not started yet."""
        wave_id, asked = int(request[0]), [request[1], request[2]]
        self.requests.setdefault(wave_id, []).append(asked)
        if self.current == wave_id:
            await tell(wave_workflow_id(self.run_id, wave_id), WaveWorkflow.cutover, asked)

    @workflow.signal
    async def approve(self, decision: list[str]) -> None:
        """`migrate approve`: [wave id, key, "yes"|"no", by whom], for the wave running now."""
        if self.current == int(decision[0]):
            await tell(wave_workflow_id(self.run_id, self.current), WaveWorkflow.approve, decision[1:])

    @workflow.signal
    async def cancel(self, reason: str) -> None:
        """Start nothing new (the wave running now admits no more VMs); VMs in flight finish."""
        self.canceled = self.canceled or reason or "canceled"
        if self.current is not None:
            await tell(wave_workflow_id(self.run_id, self.current), WaveWorkflow.cancel, self.canceled)

    @workflow.query
    def progress(self) -> tuple[int, int | None]:
        """VMs in a final state in the waves that ended, and the wave running now."""
        return sum(1 for wave in self.waves.values() for vm in wave.vms if vm.state in _FINAL), self.current

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
            before = inp.before.get(str(wave_id))
            retry = [vm_id for vm_id in wave["vms"] if vm_id in inp.retry]
            if before is not None and (before.state == "completed" or (before.state == "partial" and not retry)):
                self.waves[wave_id] = before    # resuming: this wave is done
                continue
            self.current = wave_id
            self.waves[wave_id] = WaveResult(id=wave_id, state="running")
            result: WaveResult = await workflow.execute_child_workflow(
                WaveWorkflow.run, WaveInput(run_id=inp.run_id, wave=wave, vms=[facts[v] for v in wave["vms"]],
                                            phases=inp.phases[method], hooks=inp.hooks.get(method, {}),
                                            settings=inp.settings, requested=self.requests.get(wave_id, []),
                                            before=before, retry=retry),
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
