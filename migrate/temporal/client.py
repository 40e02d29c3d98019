"""The client side of the Temporal engine: connect, start (or re-attach to) a run, follow it, read its status.

`start_temporal_run` checks the run as the local engine does (playbooks against the installed methods,
preflight, capacity settings), then starts workflow `migrate-run-<run id>` on the control task queue and
waits for its result while reporting how many VMs are done. Starting it again with the same run id
re-attaches to the running workflow (a killed client loses nothing). Ctrl-C once asks the run to start
nothing new (VMs in flight finish); twice stops waiting and leaves the run to the workers.

`temporal_status` gives the local engine's status model (migrate.run.run_status) from the workflows:
the run's input from its history, the waves' and VMs' states from queries, or from its result once it
has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from migrate.core.config import EngineConfig
from migrate.core.errors import InputError, OperationalError, Problem
from migrate.engine.methods import get_method
from migrate.engine.plan import RunPlan
from migrate.engine.playbook import Playbook
from migrate.engine.run_state import RunSettings
from migrate.engine.timing import CancelToken
from migrate.temporal.messages import EngineSettings, PhaseSpec, RunInput, VmResult, WaveResult
from migrate.temporal.workflows import RunWorkflow, run_workflow_id, vm_workflow_id, wave_workflow_id

__all__ = ["connect", "engine_settings", "run_input", "start_temporal_run", "temporal_status"]

CONNECT_TIMEOUT_S = 10.0
POLL_S = 1.0
_RUN_TYPE = "MigrateRun"


async def connect(engine: EngineConfig) -> Client:
    """A client of `engine`'s Temporal; OperationalError naming the address when it cannot be reached."""
    try:
        return await asyncio.wait_for(Client.connect(engine.address, namespace=engine.namespace, tls=engine.tls),
                                      CONNECT_TIMEOUT_S)
    except (RuntimeError, OSError, RPCError, TimeoutError) as exc:
        why = str(exc) or f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
        raise OperationalError(f"Temporal at {engine.address} (namespace {engine.namespace}) is unreachable: "
                               f"{why.splitlines()[0][:300]}") from None


def phase_specs(book: Playbook) -> list[PhaseSpec]:
    """The playbook's phases as the workflows need them (stage, queue, whether they change anything)."""
    method = get_method(book.method)
    return [PhaseSpec(name=name, stage=method.phase(name).stage.value, moves_data=method.phase(name).moves_data,
                      changes_nothing=method.phase(name).changes_nothing) for name in book.phases]


def check_plan(plan: RunPlan, books: Mapping[str, Playbook]) -> None:
    """What the Temporal engine cannot run yet, as bad input before anything starts."""
    problems = []
    for method in sorted({w.method for w in plan.waves}):
        if get_method(method).replicates:
            problems.append(Problem("plan", "waves.method", f"method {method!r} replicates (warm): the Temporal "
                                                            "engine does not run it yet, use the local engine"))
        hooks = books[method].hooks
        if any(h.approval is not None for group in (hooks.wave, hooks.vm) for h in (*group.pre, *group.post)):
            problems.append(Problem(books[method].name, "hooks", "approval hooks need the local engine "
                                                                 "(the Temporal engine has no approval signal yet)"))
    if problems:
        raise InputError(problems)


def engine_settings(engine: EngineConfig, settings: RunSettings, wave_steps: list[str], *,
                    queue_timeout_s: float = 600.0, heartbeat_s: float = 30.0) -> EngineSettings:
    return EngineSettings(task_queue=engine.task_queue, data_queue=engine.data_queue,
                          retry=settings.retry.model_dump(mode="json"), limits=settings.limits.model_dump(mode="json"),
                          heartbeat_s=heartbeat_s, queue_timeout_s=queue_timeout_s, wave_steps=wave_steps)


def run_input(run_id: str, plan: RunPlan, books: Mapping[str, Playbook], settings: EngineSettings) -> RunInput:
    """The run workflow's input."""
    return RunInput(run_id=run_id, plan=plan.model_dump(mode="json"),
                    phases={method: phase_specs(book) for method, book in books.items()},
                    hooks={method: book.hooks.model_dump(mode="json", exclude_none=True)
                           for method, book in books.items()},
                    settings=settings)


def _wave(data: WaveResult | dict[str, Any]) -> WaveResult:
    """A wave's result as a query or a result gives it (dataclass, or its JSON)."""
    if isinstance(data, WaveResult):
        return data
    vms = [VmResult(**vm) if isinstance(vm, dict) else vm for vm in data.get("vms", [])]
    return WaveResult(**{**data, "vms": vms})


def _finished(wave: WaveResult) -> int:
    return sum(1 for vm in wave.vms if vm.state in ("completed", "failed", "skipped"))


async def _done_count(client: Client, run_id: str, handle: WorkflowHandle[Any, Any]) -> int:
    """VMs that reached a final state so far (queries; 0 while no worker answers)."""
    try:
        state = await handle.query(RunWorkflow.state)
    except RPCError:
        return 0
    waves = {int(k): _wave(v) for k, v in state["waves"].items()}
    current = state.get("current_wave")
    if current is not None:
        found = await _query(client, wave_workflow_id(run_id, current), WaveResult)
        if found is not None:
            waves[int(current)] = found
    return sum(_finished(wave) for wave in waves.values())


async def follow(client: Client, engine: EngineConfig, inp: RunInput, *, cancel: CancelToken,
                 on_done: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Start (or re-attach to) the run's workflow and wait for its result; a run that has ended is bad input."""
    try:
        ended = (await client.get_workflow_handle(run_workflow_id(inp.run_id)).describe()).status
    except RPCError:
        ended = None   # no such run yet
    if ended is not None and ended != WorkflowExecutionStatus.RUNNING:
        raise InputError.single("--run-id", inp.run_id, f"run {inp.run_id} has ended ({ended.name.lower()}): "
                                                        "see `migrate status --engine temporal`; a new run needs a "
                                                        "new id")
    handle = await client.start_workflow(RunWorkflow.run, inp, id=run_workflow_id(inp.run_id),
                                         task_queue=engine.task_queue,
                                         id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    result_task = asyncio.ensure_future(handle.result())
    signaled = False
    try:
        while True:
            done, _ = await asyncio.wait({result_task}, timeout=POLL_S)
            if done:
                return dict(result_task.result())
            if cancel.is_interrupt:
                return {"run_id": inp.run_id, "status": "detached", "waves": {}, "vms": {}, "failed": {},
                        "seconds": 0.0, "transitions": 0, "journal_records": 0}
            if cancel.is_requested and not signaled:
                await handle.signal(RunWorkflow.cancel, cancel.reason or "canceled")
                signaled = True
            if on_done is not None:
                on_done(await _done_count(client, inp.run_id, handle))
    finally:   # nothing of the client may outlive the event loop (its core would abort at exit)
        if not result_task.done():
            result_task.cancel()
            with contextlib.suppress(BaseException):
                await result_task


def start_temporal_run(engine: EngineConfig, inp: RunInput, *, cancel: CancelToken | None = None,
                       on_done: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run `inp` on Temporal and wait for it; the run's result (RunResult.to_dict's shape plus where it ran)."""
    began = time.perf_counter()

    async def main() -> dict[str, Any]:
        client = await connect(engine)
        return await follow(client, engine, inp, cancel=cancel or CancelToken(), on_done=on_done)

    result = asyncio.run(main())
    return {**result, "seconds": round(time.perf_counter() - began, 3), "engine": "temporal",
            "address": engine.address, "workflow_id": run_workflow_id(inp.run_id)}


# -- status ------------------------------------------------------------------------------------------------

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


async def _query(client: Client, workflow_id: str, result_type: type[Any]) -> Any:
    try:
        return await client.get_workflow_handle(workflow_id).query("state", result_type=result_type)
    except RPCError:
        return None


async def _status(engine: EngineConfig, run_id: str | None) -> dict[str, Any]:
    client = await connect(engine)
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
        state = await _query(client, handle.id, dict) or {}
        waves = {int(k): _wave(v) for k, v in state.get("waves", {}).items()}
        for wave_id, wave in list(waves.items()):
            if wave.state == "running":
                found = await _query(client, wave_workflow_id(run_id, wave_id), WaveResult)
                waves[wave_id] = found or wave
    result: dict[str, Any] = {}
    if described.status == WorkflowExecutionStatus.COMPLETED:
        result = await handle.result()
        waves = {int(k): _wave(v) for k, v in result.get("detail", {}).items()}
    vms: dict[str, VmResult] = {}
    for wave in waves.values():
        for vm in wave.vms:
            if running and vm.state == "ready":
                vm = await _query(client, vm_workflow_id(run_id, vm.id), VmResult) or vm
            vms[vm.id] = vm
    status = result.get("status") or (described.status.name.lower() if described.status else "unknown")
    return shape_status(inp, waves, vms, status=status,
                        started=described.start_time.isoformat() if described.start_time else None,
                        closed=described.close_time.isoformat() if described.close_time else None)


def shape_status(inp: RunInput, waves: Mapping[int, WaveResult], vms: Mapping[str, VmResult], *, status: str,
                 started: str | None, closed: str | None) -> dict[str, Any]:
    """The local engine's status model (migrate.run.run_status) of a Temporal run."""
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
    wave_rows = []
    for wave in plan.waves:
        counts = Counter(str(row["state"]) for row in rows if row["wave"] == wave.id)
        found = waves.get(wave.id)
        wave_rows.append({"id": wave.id, "name": wave.name, "method": wave.method,
                          "state": found.state if found else "pending", "vms": dict(sorted(counts.items())),
                          "hosts_added": int((found.steps.get("ensure_capacity") or {}).get("hosts_to_add") or 0)
                          if found else 0})
    return {"run_id": inp.run_id, "status": status, "plan_digest": None, "created_at": started,
            "updated_at": closed, "waves": wave_rows, "vms": rows, "engine": "temporal",
            "workflow_id": run_workflow_id(inp.run_id)}


def temporal_status(engine: EngineConfig, run_id: str | None = None) -> dict[str, Any]:
    """What the workflows say about a run (the latest when `run_id` is None), in the local status model."""
    return asyncio.run(_status(engine, run_id))

