"""The client side of the Temporal engine: connect, start (or re-attach to) a run and follow it.

`start_temporal_run` waits until workers poll the run's queues, starts workflow `migrate-run-<run id>` on
the control task queue and waits for its result while reporting how many VMs are done (the checks before
it are migrate.temporal.run's). Starting it again with the same run id re-attaches to the running workflow
(a killed client loses nothing). Ctrl-C once asks the run to start nothing new (VMs in flight finish);
twice stops waiting and leaves the run to the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from migrate.core.config import EngineConfig
from migrate.core.errors import InputError, OperationalError, Problem
from migrate.engine.methods import Stage, get_method
from migrate.engine.plan import RunPlan
from migrate.engine.playbook import Playbook
from migrate.engine.run_state import RunSettings
from migrate.engine.timing import CancelToken
from migrate.temporal.codec import data_converter, runtime
from migrate.temporal.messages import EngineSettings, PhaseSpec, RunInput, VmResult, WaveResult
from migrate.temporal.workflows import RunWorkflow, WaveWorkflow, run_workflow_id, wave_workflow_id

__all__ = ["check_plan", "connect", "engine_settings", "phase_specs", "run_input", "start_temporal_run", "wave_of"]

CONNECT_TIMEOUT_S = 10.0
POLL_S = 1.0
WORKER_WAIT_S = 30.0   # how long a new run waits for a worker on each of its queues
MAX_INPUT_BYTES = 2 * 2**20 - 2**16   # Temporal's blob limit (2 MiB by default), less a margin


async def connect(engine: EngineConfig) -> Client:
    """A client of `engine`'s Temporal; OperationalError naming the address when it cannot be reached."""
    try:
        return await asyncio.wait_for(Client.connect(engine.address, namespace=engine.namespace, tls=engine.tls,
                                                     data_converter=data_converter(), runtime=runtime()),
                                      CONNECT_TIMEOUT_S)
    except (RuntimeError, OSError, RPCError, TimeoutError) as exc:
        why = str(exc) or f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
        raise OperationalError(f"Temporal at {engine.address} (namespace {engine.namespace}) is unreachable: "
                               f"{why.splitlines()[0][:300]}") from None


def phase_specs(book: Playbook) -> list[PhaseSpec]:
    """The playbook's phases as the workflows need them (stage, queue, whether they change anything)."""
    method = get_method(book.method)
    return [PhaseSpec(name=name, stage=method.phase(name).stage.value, moves_data=method.phase(name).moves_data,
                      precopy=method.phase(name).cycle is not None) for name in book.phases]


def check_plan(plan: RunPlan, books: Mapping[str, Playbook]) -> None:
    """What the Temporal engine cannot run yet, as bad input before anything starts."""
    problems = []
    for method in sorted({w.method for w in plan.waves}):
        found = get_method(method)
        if any(p.stage is Stage.REPLICATE and p.name in books[method].phases and p.cycle is None and p.moves_data
               for p in found.phases):
            problems.append(Problem("plan", "waves.method", f"method {method!r} replicates in a phase without "
                                                            "cycles: the Temporal engine cannot drive it, use the "
                                                            "local engine"))
    if problems:
        raise InputError(problems)


def engine_settings(engine: EngineConfig, settings: RunSettings, wave_steps: list[str], *,
                    queue_timeout_s: float = 600.0, heartbeat_s: float = 30.0) -> EngineSettings:
    return EngineSettings(task_queue=engine.task_queue, data_queue=engine.data_queue,
                          data_queues=dict(engine.data_task_queues),
                          retry=settings.retry.model_dump(mode="json"), limits=settings.limits.model_dump(mode="json"),
                          heartbeat_s=heartbeat_s, queue_timeout_s=queue_timeout_s, wave_steps=wave_steps)


def run_input(run_id: str, plan: RunPlan, books: Mapping[str, Playbook], settings: EngineSettings) -> RunInput:
    """The run workflow's input."""
    return RunInput(run_id=run_id, plan=plan.model_dump(mode="json"),
                    phases={method: phase_specs(book) for method, book in books.items()},
                    hooks={method: book.hooks.model_dump(mode="json", exclude_none=True)
                           for method, book in books.items()},
                    settings=settings)


async def query_state(client: Client, workflow_id: str, result_type: type[Any]) -> Any:
    try:
        return await client.get_workflow_handle(workflow_id).query("state", result_type=result_type)
    except RPCError:
        return None


def wave_of(data: WaveResult | dict[str, Any]) -> WaveResult:
    """A wave's result as a query or a result gives it (dataclass, or its JSON)."""
    if isinstance(data, WaveResult):
        return data
    vms = [VmResult(**vm) if isinstance(vm, dict) else vm for vm in data.get("vms", [])]
    return WaveResult(**{**data, "vms": vms})


async def _done_count(client: Client, run_id: str, handle: WorkflowHandle[Any, Any]) -> int:
    """VMs that reached a final state so far (two small queries; 0 while no worker answers)."""
    try:
        done, current = await handle.query(RunWorkflow.progress)
        if current is not None:
            done += await client.get_workflow_handle(wave_workflow_id(run_id, current)).query(WaveWorkflow.progress)
    except RPCError:
        return 0
    return int(done)


async def _polled(client: Client, queue: str, kind: TaskQueueType.ValueType) -> bool:
    """True if a worker polls `queue` (Temporal lists a poller for a few minutes after it went away)."""
    found = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind))
    return bool(found.pollers)


async def _wait_for_workers(client: Client, engine: EngineConfig, cancel: CancelToken) -> None:
    """Before a new run starts: a worker polls the control queue (else the run would wait, silent, for one) and
    the data queue (else every VM would fail once its source is off); OperationalError after WORKER_WAIT_S."""
    needed = [(engine.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
              *((queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) for queue in engine.data_queues)]
    deadline = time.monotonic() + min(WORKER_WAIT_S, engine.queue_timeout_s)
    for queue, kind in needed:
        while not await _polled(client, queue, kind):
            if time.monotonic() >= deadline or cancel.is_requested:
                raise OperationalError(f"no worker polls task queue {queue!r} on Temporal at {engine.address}: "
                                       f"start `migrate worker --config site.yaml --task-queue {queue}`; "
                                       "nothing was started")
            await asyncio.sleep(POLL_S)


async def follow(client: Client, engine: EngineConfig, inp: RunInput, *, cancel: CancelToken,
                 on_done: Callable[[int], None] | None = None, resume: bool = False) -> dict[str, Any]:
    """Start (or re-attach to) the run's workflow and wait for its result; a run that has ended is bad input,
    unless this is its resumption (`resume`: a new execution of the run's workflow)."""
    try:
        ended = (await client.get_workflow_handle(run_workflow_id(inp.run_id)).describe()).status
    except RPCError:
        ended = None   # no such run yet
    if resume:
        ended = None
    if ended is not None and ended != WorkflowExecutionStatus.RUNNING:
        raise InputError.single("--run-id", inp.run_id, f"run {inp.run_id} has ended ({ended.name.lower()}): "
                                                        "see `migrate status --engine temporal`; a new run needs a "
                                                        "new id")
    if ended is None:
        size = sum(p.ByteSize() for p in await client.data_converter.encode([inp]))
        if size > MAX_INPUT_BYTES:
            raise InputError.single("plan", "waves", f"the run's plan is {size / 2**20:.1f} MiB compressed, over "
                                                     f"what one Temporal workflow input may hold "
                                                     f"({MAX_INPUT_BYTES / 2**20:.1f} MiB): run fewer waves at once "
                                                     "(--waves)")
        await _wait_for_workers(client, engine, cancel)
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
                       on_done: Callable[[int], None] | None = None, resume: bool = False) -> dict[str, Any]:
    """Run `inp` on Temporal and wait for it; the run's result (RunResult.to_dict's shape plus where it ran)."""
    began = time.perf_counter()

    async def main() -> dict[str, Any]:
        client = await connect(engine)
        return await follow(client, engine, inp, cancel=cancel or CancelToken(), on_done=on_done, resume=resume)

    result = asyncio.run(main())
    return {**result, "seconds": round(time.perf_counter() - began, 3), "engine": "temporal",
            "address": engine.address, "workflow_id": run_workflow_id(inp.run_id)}
