"""`MigrateVm`: one VM past its prechecks, as a Temporal workflow (a child of its wave's workflow).

It runs the VM's pre-hooks, then its phases in playbook order as activities (disk-moving ones on the data
queue), then its post-hooks. A precopy phase (warm) is driven here, not in an activity: each cycle is one
activity, the wait for the next cycle a durable timer. The wave's limits bound the full copy (cycle 0) and
the cutover: the VM gives its slots back after the full copy and takes them again for its cutover (signal
`slots` to the parent, which answers `slots_granted`); the precopy deltas in between are bounded by the
workers' --max-activities. So a VM signals its wave three times, whatever the number of cycles: the wave
workflow's history stays within Temporal's limits for large, long warm waves. The cutover is due when
its `cutover_at` passes, its wave's window opens, or `migrate cutover` asks (signal `cutover`), as on the
local engine (migrate.engine.replication.cutover_reason).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from migrate.engine.plan import WavePlan
from migrate.engine.replication import cutover_reason, next_cycle_after
from migrate.temporal.messages import Json, PhaseSpec, PhaseTask, VmInput, VmResult
from migrate.temporal.workflow_steps import (
    Approvals,
    HookFailed,
    error_of,
    failed_phase,
    phase_activity,
    phase_groups,
    queue_of,
    run_hooks,
    tell,
)

__all__ = ["VmWorkflow"]

_STAGE_STATE = {"replicate": "replicating", "cutover": "cutting_over", "verify": "verifying"}


@workflow.defn(name="MigrateVm")
class VmWorkflow:
    """One VM past its prechecks: pre-hooks, its phases (a precopy loop too), post-hooks."""

    def __init__(self) -> None:
        self.result: VmResult | None = None
        self.requests: set[tuple[str, str]] = set()
        self.asked = False
        self.granted = True      # the wave admitted the VM with its slots
        self.approvals = Approvals()

    @workflow.signal
    def cutover(self, request: list[str]) -> None:
        """`migrate cutover` asked for this VM (["vm", id]) or its wave (["wave", id])."""
        self.requests.add((request[0], request[1]))
        self.asked = True
        if self.result is not None:
            self.result.cutover_requested = True

    @workflow.signal
    def approve(self, decision: list[str]) -> None:
        """`migrate approve`: [key, "yes"|"no", by whom]."""
        self.approvals.decide(decision[0], decision[1] == "yes", decision[2])

    @workflow.signal
    def slots_granted(self) -> None:
        self.granted = True

    @workflow.query
    def state(self) -> VmResult | None:
        return self.result

    @workflow.run
    async def run(self, inp: VmInput) -> VmResult:
        vm_id = str(inp.vm["id"])
        result = self.result = VmResult(id=vm_id, state="ready", outputs=dict(inp.prior), cycles=list(inp.cycles))
        self.requests |= {(scope, entity) for scope, entity in inp.requested}
        result.cutover_requested = bool(self.requests)
        result.waiting = self.approvals.waiting     # the approvals it waits on, as they come and go
        variables = {"run_id": inp.run_id, "wave": str(inp.wave["id"]), "vm": vm_id,
                     "vm_name": str(inp.vm.get("name") or vm_id)}
        settings = inp.settings
        try:
            await run_hooks(settings, inp.hooks.get("vm", {}).get("pre", []), variables, approvals=self.approvals,
                            scope=f"vm:{vm_id}:pre")
        except HookFailed as failed:
            return self._fail("hook:pre", failed.error)
        left = [s for s in inp.phases if s.stage in _STAGE_STATE and s.name not in result.outputs]
        for group in phase_groups(left):
            first = group[0]
            result.state, result.phase = _STAGE_STATE[first.stage], first.name
            try:
                if first.precopy:
                    done = {first.name: await self._precopy(inp, first)}
                else:
                    done, recorded = await phase_activity(settings, group, PhaseTask(
                        run_id=inp.run_id, wave=inp.wave, vm=inp.vm, phases=[s.name for s in group],
                        prior=result.outputs, cycles=result.cycles))
                    result.cycles = [*result.cycles, *recorded]   # the final cycle
            except ActivityError as exc:
                where, before = failed_phase(exc)
                result.outputs = {**result.outputs, **before}
                queue = queue_of(settings, first, inp.vm)
                return self._fail(where or first.name, error_of(exc, queue, settings))
            result.outputs = {**result.outputs, **done}
        verified = result.outputs.get("verify", {})
        variables["target_id"] = str(verified.get("target_id") or verified.get("instance_id") or "")
        variables["target_ip"] = str(verified.get("private_ip") or verified.get("ip") or "")
        try:
            await run_hooks(settings, inp.hooks.get("vm", {}).get("post", []), variables, approvals=self.approvals,
                            scope=f"vm:{vm_id}:post")
        except HookFailed as failed:
            return self._fail("hook:post", failed.error)
        result.state = "completed"
        return result

    async def _precopy(self, inp: VmInput, spec: PhaseSpec) -> Json:
        """The initial full copy, then a cycle each precopy interval until the cutover is due."""
        assert self.result is not None
        wave, vm_id = WavePlan.model_validate(inp.wave), str(inp.vm["id"])
        while True:
            cycles = self.result.cycles
            if cycles:
                self.asked = False    # (before the check: a request arriving from now on ends the wait below)
                why = cutover_reason(wave, vm_id, workflow.now(), self.requests)
                if why is not None:
                    await self._hold()     # the cutover phases run with the slots held
                    return {"cycles": len(cycles), "bytes": sum(int(c.get("bytes") or 0) for c in cycles),
                            "cutover": why}
                last = cycles[-1]
                next_at = datetime.fromisoformat(str(last["at"])) + timedelta(
                    seconds=next_cycle_after(wave.precopy_interval, float(last["seconds"])))
                now = workflow.now()
                if now < next_at:
                    await self._release()
                    wake = min(t for t in (next_at, wave.window.start if wave.window else None,
                                           wave.cutover_at.get(vm_id)) if t is not None and t > now)
                    with contextlib.suppress(TimeoutError):   # the next cycle is due
                        await workflow.wait_condition(lambda: self.asked, timeout=(wake - now).total_seconds())
                    continue
            number = int(cycles[-1]["cycle"]) + 1 if cycles else 0
            if number == 0:
                await self._hold()
            done, _ = await phase_activity(inp.settings, [spec], PhaseTask(
                run_id=inp.run_id, wave=inp.wave, vm=inp.vm, phases=[spec.name], prior=self.result.outputs,
                cycles=cycles, cycle=number))
            self.result.cycles = [*cycles, done[spec.name]]

    async def _release(self) -> None:
        """Give the VM's slots back to its wave while it waits between cycles."""
        parent = workflow.info().parent
        if self.granted and parent is not None:
            self.granted = False
            await tell(parent.workflow_id, "slots", [str(self.result.id if self.result else ""), "free"])

    async def _hold(self) -> None:
        """Take the VM's slots again (the wave grants them when they are free)."""
        parent = workflow.info().parent
        if self.granted or parent is None:
            return
        await tell(parent.workflow_id, "slots", [str(self.result.id if self.result else ""), "want"])
        await workflow.wait_condition(lambda: self.granted)

    def _fail(self, phase: str, error: Json) -> VmResult:
        assert self.result is not None
        self.result.state, self.result.phase, self.result.error = "failed", phase, error
        workflow.logger.warning("vm %s failed in %s: %s", self.result.id, phase, error.get("message"))
        return self.result
