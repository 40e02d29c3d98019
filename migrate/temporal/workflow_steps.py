"""What the Temporal workflows share: their ids, the run's retry policy as Temporal's, scheduling a phase or a
hook as an activity, and a failed activity's error record (the journal's shape)."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

from migrate.engine.timing import RetryPolicy as EngineRetry
from migrate.temporal.activities import CYCLE_ACTIVITY, HOOK_ACTIVITY, PHASE_ACTIVITY
from migrate.temporal.messages import EngineSettings, HookTask, Json, PhaseSpec, PhaseTask

__all__ = [
    "Approvals",
    "HookFailed",
    "error_of",
    "failed_phase",
    "phase_activity",
    "phase_groups",
    "queue_of",
    "retry_policy",
    "run_hooks",
    "run_workflow_id",
    "tell",
    "vm_workflow_id",
    "wave_workflow_id",
]


def run_workflow_id(run_id: str) -> str:
    """The id of a run's workflow (a run id names one run on a namespace)."""
    return f"migrate-run-{run_id}"


def wave_workflow_id(run_id: str, wave: int) -> str:
    return f"{run_workflow_id(run_id)}-wave-{wave}"


def vm_workflow_id(run_id: str, vm_id: str) -> str:
    return f"{run_workflow_id(run_id)}-vm-{vm_id}"


def retry_policy(settings: EngineSettings) -> RetryPolicy:
    """The run's retry policy (migrate.engine.timing.RetryPolicy) as Temporal's."""
    policy = EngineRetry.model_validate(settings.retry)
    return RetryPolicy(initial_interval=timedelta(seconds=max(policy.base_delay, 0.001)),
                       backoff_coefficient=policy.factor, maximum_interval=timedelta(seconds=max(policy.max_delay,
                                                                                                 0.001)),
                       maximum_attempts=policy.attempts)


def error_of(exc: BaseException, queue: str, settings: EngineSettings) -> Json:
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


async def phase_activity(settings: EngineSettings, specs: list[PhaseSpec], task: PhaseTask) -> tuple[Json, list[Json]]:
    """Run `task.phases` (consecutive, one stage and queue: `specs`) as one activity on their queue, or with
    `task.cycle` one replication cycle of one: the outputs by phase and the replication cycles recorded."""
    queue = queue_of(settings, specs[0], task.vm)
    result: Json = await workflow.execute_activity(
        CYCLE_ACTIVITY if task.cycle is not None else PHASE_ACTIVITY, task, task_queue=queue, result_type=dict,
        start_to_close_timeout=timedelta(seconds=settings.phase_timeout_s),
        schedule_to_start_timeout=timedelta(seconds=settings.queue_timeout_s),
        heartbeat_timeout=timedelta(seconds=settings.heartbeat_s), retry_policy=retry_policy(settings))
    return dict(result["outputs"]), list(result.get("cycles") or [])


def queue_of(settings: EngineSettings, spec: PhaseSpec, vm: Json) -> str:
    """The task queue of a phase of a VM: a disk-moving one goes to the data queue of the VM's source."""
    if not spec.moves_data:
        return settings.task_queue
    source = (vm.get("facts") or {}).get("source")
    return settings.data_queues.get(source, settings.data_queue) if isinstance(source, str) else settings.data_queue


def phase_groups(specs: list[PhaseSpec]) -> list[list[PhaseSpec]]:
    """Consecutive phases of one stage and one queue, each group one activity (fewer round trips through
    Temporal per VM); a precopy phase is a group of its own (the VM workflow drives its cycles)."""
    groups: list[list[PhaseSpec]] = []
    for spec in specs:
        last = groups[-1][-1] if groups else None
        if last is not None and not spec.precopy and not last.precopy and (last.stage, last.moves_data) == (
                spec.stage, spec.moves_data):
            groups[-1].append(spec)
        else:
            groups.append([spec])
    return groups


def failed_phase(exc: BaseException) -> tuple[str | None, Json]:
    """Which phase of a group failed and the outputs of those before it (from the activity's failure)."""
    cause = exc.cause if isinstance(exc, ActivityError) else exc
    if isinstance(cause, ApplicationError) and len(cause.details) > 1 and isinstance(cause.details[1], dict):
        return cause.details[1].get("phase"), dict(cause.details[1].get("done") or {})
    return None, {}


async def tell(workflow_id: str, signal: Any, arg: Any = None) -> bool:
    """Signal another workflow of the run; False when it has closed meanwhile (nothing left to tell it)."""
    handle = workflow.get_external_workflow_handle(workflow_id)
    try:
        await (handle.signal(signal) if arg is None else handle.signal(signal, arg))
    except FailureError as exc:
        workflow.logger.info("not signaled (%s closed?): %s", workflow_id, exc)
        return False
    return True


class HookFailed(Exception):
    """A blocking hook failed, or a person refused an approval: `error` is its error record."""

    def __init__(self, error: Json) -> None:
        super().__init__(error.get("message"))
        self.error = error


@dataclass
class Approvals:
    """Approval hooks of one workflow waiting for a person (`migrate approve`: a signal), by key."""

    waiting: dict[str, str] = field(default_factory=dict)              # key -> prompt
    decided: dict[str, tuple[bool, str]] = field(default_factory=dict)  # key -> (approved, by whom)

    def decide(self, key: str, approved: bool, by: str) -> None:
        if key in self.waiting:
            self.decided[key] = (approved, by)

    async def ask(self, key: str, prompt: str) -> tuple[bool, str]:
        """Wait (durably, for as long as it takes) for a decision on `key`."""
        self.waiting[key] = prompt
        await workflow.wait_condition(lambda: key in self.decided)
        del self.waiting[key]
        return self.decided[key]


async def run_hooks(settings: EngineSettings, hooks: list[Json], variables: dict[str, str], *,
                    approvals: Approvals, scope: str) -> None:
    """Run hooks in order: an approval waits for `migrate approve` (key `scope:index`), the others are activities.
    A blocking hook's failure (or a refusal) raises HookFailed; a non-blocking one is logged."""
    for index, hook in enumerate(hooks):
        try:
            if hook.get("approval") is not None:
                prompt = string.Template(str(hook["approval"]["prompt"])).safe_substitute(variables)
                approved, by = await approvals.ask(f"{scope}:{index}", prompt)
                if not approved:
                    raise HookFailed({"type": "HookError", "message": f"not approved ({by}): {prompt}"})
                continue
            await workflow.execute_activity(
                HOOK_ACTIVITY, HookTask(hook=hook, variables=variables), task_queue=settings.task_queue,
                result_type=dict, start_to_close_timeout=timedelta(hours=24),
                schedule_to_start_timeout=timedelta(seconds=settings.queue_timeout_s),
                retry_policy=retry_policy(settings))
        except (ActivityError, HookFailed) as exc:
            error = exc.error if isinstance(exc, HookFailed) else error_of(exc, settings.task_queue, settings)
            if hook.get("blocking", True):
                raise HookFailed(error) from None
            workflow.logger.warning("non-blocking hook failed: %s", error)
