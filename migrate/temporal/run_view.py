"""A Temporal run as the rest of the tool sees a run: the local engine's status model, and a run journal.

`temporal_status` reads the run's input from its history and the waves' and VMs' states from queries (or
from its result once it has ended) and gives migrate.run.run_status's model. `import_run` copies an ended
run into a run journal (plan, playbooks, each VM's and wave's final state, every phase's outputs), so
`migrate rollback` and `migrate report` work on it exactly as on a local run.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from migrate.core.config import EngineConfig
from migrate.core.errors import InputError, OperationalError, Problem
from migrate.engine.journal import CycleRecord, Journal
from migrate.engine.methods import get_method
from migrate.engine.plan import RunPlan
from migrate.engine.run_state import RetryScope
from migrate.run import replicating_vms, replication_status
from migrate.temporal.client import connect, query_state, wave_of
from migrate.temporal.messages import RunInput, VmResult, WaveResult
from migrate.temporal.workflows import run_workflow_id, vm_workflow_id, wave_workflow_id

__all__ = ["TemporalRun", "decide_approvals", "import_run", "read_run", "request_cutover", "resume_input",
           "shape_status", "temporal_status"]

_RUN_TYPE = "MigrateRun"


@dataclass
class TemporalRun:
    """What Temporal holds of one run."""

    inp: RunInput
    status: str                       # the run's status (running, completed, partial, failed, canceled...)
    running: bool
    waves: dict[int, WaveResult]
    vms: dict[str, VmResult]
    started: str | None
    closed: str | None


async def _latest_run(client: Client) -> str:
    async for found in client.list_workflows(f"WorkflowType = '{_RUN_TYPE}'"):
        return found.id.removeprefix("migrate-run-")
    raise InputError.single("--run-id", "", "no run on this Temporal namespace yet")


async def _run_input(client: Client, handle: WorkflowHandle[Any, Any]) -> RunInput:
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await client.data_converter.decode(payloads, [RunInput])
            return decoded[0]  # type: ignore[no-any-return]
    raise OperationalError(f"workflow {handle.id} has no start event")


async def read_run(client: Client, engine: EngineConfig, run_id: str | None) -> TemporalRun:
    """The latest run (or `run_id`) from its workflows; InputError when Temporal has no such run."""
    run_id = run_id or await _latest_run(client)
    handle = client.get_workflow_handle(run_workflow_id(run_id))
    try:
        described = await handle.describe()
    except RPCError as exc:
        raise InputError.single("--run-id", run_id, f"no run {run_id!r} on Temporal at {engine.address}: "
                                                    f"{exc.message}") from None
    inp = await _run_input(client, handle)
    running = described.status == WorkflowExecutionStatus.RUNNING
    waves: dict[int, WaveResult] = {}
    if running:
        state = await query_state(client, handle.id, dict) or {}
        waves = {int(k): wave_of(v) for k, v in state.get("waves", {}).items()}
        for wave_id, wave in list(waves.items()):
            if wave.state == "running":
                found = await query_state(client, wave_workflow_id(run_id, wave_id), WaveResult)
                waves[wave_id] = found or wave
    result: dict[str, Any] = {}
    if described.status == WorkflowExecutionStatus.COMPLETED:
        result = await handle.result()
        waves = {int(k): wave_of(v) for k, v in result.get("detail", {}).items()}
    vms: dict[str, VmResult] = {}
    for wave in waves.values():
        for vm in wave.vms:
            if running and vm.state == "ready":
                vm = await query_state(client, vm_workflow_id(run_id, vm.id), VmResult) or vm
            vms[vm.id] = vm
    status = result.get("status") or (described.status.name.lower() if described.status else "unknown")
    return TemporalRun(inp=inp, status=status, running=running, waves=waves, vms=vms,
                       started=described.start_time.isoformat() if described.start_time else None,
                       closed=described.close_time.isoformat() if described.close_time else None)


def shape_status(run: TemporalRun) -> dict[str, Any]:
    """The local engine's status model (migrate.run.run_status) of a Temporal run."""
    inp, waves, vms = run.inp, run.waves, run.vms
    plan = RunPlan.model_validate(inp.plan)
    rows = []
    for wave in plan.waves:
        method = get_method(wave.method)
        for vm_id in wave.vms:
            vm = vms.get(vm_id)
            target = None
            for phase, outputs in (vm.outputs.items() if vm else ()):
                target = method.target_in(phase, outputs) or target
            rows.append({"id": vm_id, "name": plan.vm_index[vm_id].name, "wave": wave.id,
                         "state": vm.state if vm else "pending", "phase": vm.phase if vm else None,
                         "error": vm.error if vm else None, "target_id": target, "pending_cleanup": []})
            if method.replicates:
                rows[-1]["replication"] = _replication(vm_id, vm)
            if vm is not None and vm.waiting:
                rows[-1]["waiting_for_approval"] = sorted(vm.waiting.values())
    wave_rows = []
    for wave in plan.waves:
        counts = Counter(str(row["state"]) for row in rows if row["wave"] == wave.id)
        found = waves.get(wave.id)
        wave_rows.append({"id": wave.id, "name": wave.name, "method": wave.method,
                          "state": found.state if found else "pending", "vms": dict(sorted(counts.items())),
                          "hosts_added": int((found.steps.get("ensure_capacity") or {}).get("hosts_to_add") or 0)
                          if found else 0})
        if found is not None and found.waiting:
            wave_rows[-1]["waiting_for_approval"] = sorted(found.waiting.values())
    return {"run_id": inp.run_id, "status": run.status, "plan_digest": None, "created_at": run.started,
            "updated_at": run.closed, "waves": wave_rows, "vms": rows, "engine": "temporal",
            "workflow_id": run_workflow_id(inp.run_id)}


def _replication(vm_id: str, vm: VmResult | None) -> dict[str, Any]:
    """A replicating VM's figures, as the local status gives them (migrate.run.replication_status)."""
    cycles = [CycleRecord(vm=vm_id, cycle=int(c["cycle"]), at=datetime.fromisoformat(str(c["at"])),
                          data={k: v for k, v in c.items() if k not in ("cycle", "at")})
              for c in (vm.cycles if vm else [])]
    downtime = next((o["downtime_s"] for o in (vm.outputs.values() if vm else ()) if o.get("downtime_s") is not None),
                    None)
    return replication_status(cycles, float(downtime) if downtime is not None else None,
                              bool(vm and vm.cutover_requested))


def temporal_status(engine: EngineConfig, run_id: str | None = None) -> dict[str, Any]:
    """What the workflows say about a run (the latest when `run_id` is None), in the local status model."""
    async def read() -> dict[str, Any]:
        return shape_status(await read_run(await connect(engine), engine, run_id))

    return asyncio.run(read())


def _ended_run(engine: EngineConfig, run_id: str, advice: str) -> TemporalRun:
    """The run, which must have ended (else InputError with `advice`)."""

    async def read() -> TemporalRun:
        return await read_run(await connect(engine), engine, run_id)

    run = asyncio.run(read())
    if run.running:
        raise InputError.single("--run-id", run_id, f"run {run_id} is still running on Temporal: {advice}")
    return run


def _playbooks(inp: RunInput) -> dict[str, dict[str, Any]]:
    """Each method's playbook as the run used it (its phases in order and its hooks), as journal data."""
    return {method: {"version": 1, "name": method, "method": method, "phases": [p.name for p in specs],
                     "hooks": inp.hooks.get(method, {})} for method, specs in inp.phases.items()}


def import_run(engine: EngineConfig, run_id: str, journal: str | Path) -> dict[str, Any]:
    """Copy an ended Temporal run into `journal` (unless it holds the run already: a rollback there goes on from
    its own records); what was imported. A run still going is bad input: it must end first."""

    run = _ended_run(engine, run_id, "wait for it, or Ctrl-C its `migrate run` client (it drains), then try again")
    plan = RunPlan.model_validate(run.inp.plan)
    with Journal(journal) as jr:
        if any(r.run_id == run_id for r in jr.runs()):
            return {"run_id": run_id, "journal": str(journal), "imported": False}
        jr.create_run(plan, _playbooks(run.inp), run_id)
        for wave in plan.waves:
            found = run.waves.get(wave.id)
            if found is not None and found.state != "pending":
                jr.record_transition(run_id, "wave", str(wave.id), "temporal", "pending", found.state,
                                     {"reason": found.reason, **({"steps": found.steps} if found.steps else {})})
            for step, outputs in (found.steps if found else {}).items():
                jr.step_started(run_id, "wave", str(wave.id), step, attempt=1)
                jr.step_finished(run_id, "wave", str(wave.id), step, 1, outputs)
        for vm_id, vm in run.vms.items():
            for phase, outputs in vm.outputs.items():
                jr.step_started(run_id, "vm", vm_id, phase, attempt=1)
                jr.step_finished(run_id, "vm", vm_id, phase, 1, outputs)
            if vm.state != "pending":
                jr.record_transition(run_id, "vm", vm_id, "temporal", "pending", vm.state,
                                     {"error": vm.error} if vm.error else None)
        counts = Counter(vm.state for vm in run.vms.values())
        counts["pending"] += len(plan.vms) - len(run.vms)
        jr.set_run_status(run_id, run.status, {"vms": dict(+counts), "engine": "temporal",
                                               "workflow_id": run_workflow_id(run_id)})
    return {"run_id": run_id, "journal": str(journal), "imported": True, "vms": dict(+counts)}


def request_cutover(engine: EngineConfig, run_id: str, *, waves: Sequence[int] = (),
                    vms: Sequence[str] = ()) -> dict[str, Any]:
    """Ask a running Temporal run to cut these waves or VMs over now (signals to its workflow). Bad input (exit 2,
    nothing asked): as for the local engine (migrate.run.request_cutover), or a run that is not running."""
    if not waves and not vms:
        raise InputError.single("command line", "--wave/--vm", "name at least one wave or VM to cut over")

    async def ask() -> dict[str, Any]:
        client = await connect(engine)
        run = await read_run(client, engine, run_id)
        if not run.running:
            raise InputError.single("--run-id", run_id, f"run {run_id} is not running ({run.status})")
        plan = RunPlan.model_validate(run.inp.plan)
        _, named, problems = replicating_vms(plan, run.vms, waves, vms, "cutover")
        if problems:
            raise InputError(problems)
        wave_of = {vm_id: wave.id for wave in plan.waves for vm_id in wave.vms}
        handle = client.get_workflow_handle(run_workflow_id(run_id))
        for wave_id in waves:
            await handle.signal("cutover", [str(wave_id), "wave", str(wave_id)])
        for vm_id in named:
            await handle.signal("cutover", [str(wave_of[vm_id]), "vm", vm_id])
        return {"run_id": run_id, "waves": list(waves), "vms": named}

    return asyncio.run(ask())


def decide_approvals(engine: EngineConfig, run_id: str, *, waves: Sequence[int] = (), vms: Sequence[str] = (),
                     approve: bool = True, by: str = "") -> dict[str, Any]:
    """Approve (or refuse) the approval hooks a running Temporal run waits on: those of `waves` and `vms` (ids or
    names), or every one when none is named. Bad input (exit 2): nothing waits, or an unknown wave or VM."""

    async def decide() -> dict[str, Any]:
        client = await connect(engine)
        run = await read_run(client, engine, run_id)
        plan = RunPlan.model_validate(run.inp.plan)
        names = {vm.name: vm.id for vm in plan.vms}
        problems = [Problem("--wave", str(w), f"the run has no wave {w}") for w in waves
                    if w not in {wave.id for wave in plan.waves}]
        problems += [Problem("--vm", v, f"{v!r} is not a VM of the run") for v in vms
                     if v not in plan.vm_index and v not in names]
        if problems:
            raise InputError(problems)
        chosen_vms = {names.get(v, v) for v in vms}
        waiting: list[tuple[int, str, str]] = []           # (wave, key, prompt)
        for wave_id, wave in run.waves.items():
            if not vms and (not waves or wave_id in waves):
                waiting += [(wave_id, key, prompt) for key, prompt in wave.waiting.items()]
        wave_of = {vm_id: wave.id for wave in plan.waves for vm_id in wave.vms}
        for vm_id, vm in run.vms.items():
            if (not vms and not waves) or vm_id in chosen_vms or (not vms and wave_of[vm_id] in waves):
                waiting += [(wave_of[vm_id], key, prompt) for key, prompt in vm.waiting.items()]
        if not run.running or not waiting:
            raise InputError.single("--run-id", run_id, f"nothing of run {run_id} waits for an approval"
                                                        f"{'' if run.running else f' (it is {run.status})'}")
        handle = client.get_workflow_handle(run_workflow_id(run_id))
        for wave_id, key, _ in waiting:
            await handle.signal("approve", [str(wave_id), key, "yes" if approve else "no", by])
        return {"run_id": run_id, "approved": approve, "by": by,
                "decided": [{"wave": wave_id, "key": key, "prompt": prompt} for wave_id, key, prompt in waiting]}

    return asyncio.run(decide())


def resume_input(engine: EngineConfig, run_id: str, scope: RetryScope | None) -> RunInput:
    """The input of a new execution of an ended run: its waves as they were left, and the failed or skipped VMs
    `scope` covers to run again (from their failed phase). Bad input: a run still going, or one with nothing left."""

    run = _ended_run(engine, run_id, "it goes on by itself (follow it with `migrate run ... --engine temporal "
                                     "--run-id`)")
    plan = RunPlan.model_validate(run.inp.plan)
    problems: list[Problem] = []
    if scope is not None:
        problems += [Problem("--vm", vm_id, "not in this run") for vm_id in sorted(scope.vms or ())
                     if vm_id not in plan.vm_index]
        problems += [Problem("--wave", str(w), "not in this run") for w in sorted(scope.waves or ())
                     if w not in {wave.id for wave in plan.waves}]
    if problems:
        raise InputError(problems)
    wave_of = {vm_id: wave.id for wave in plan.waves for vm_id in wave.vms}
    retry = [vm.id for vm in run.vms.values() if scope is not None and vm.state in ("failed", "skipped")
             and (scope.vms is None or vm.id in scope.vms) and (scope.waves is None or wave_of[vm.id] in scope.waves)]
    if run.status == "completed" or (run.status == "partial" and not retry):
        raise InputError.single("--run-id", run_id, f"run {run_id} is {run.status}: nothing to resume"
                                                    f"{'' if scope else ' (--retry-failed takes failed VMs again)'}")
    return replace(run.inp, before={str(k): v for k, v in run.waves.items()}, retry=retry)
