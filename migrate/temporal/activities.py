"""The Temporal activities: one phase of one VM, one playbook hook, one wave step, each run by a worker.

A phase runs exactly as the local engine runs it (the same `Method` phase function, the same PhaseContext,
the same typed outputs) on a thread of the worker, while the activity heartbeats every few seconds with
the bytes the phase reported so far. A worker killed mid-phase stops heartbeating: Temporal gives the
phase to another worker after the heartbeat timeout, and the phase, idempotent like every phase, first
finds what is already done (copied files whose checksum matches, the VM created for this source...).

Errors become Temporal's: a retryable AdapterError is retried under the run's retry policy (the same
backoff as the local engine's), any other error fails the VM alone, with the error kept as the
activity failure's details (the journal's error record).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from migrate.core.drivers import Role
from migrate.core.errors import AdapterError
from migrate.core.log import get_logger
from migrate.core.ports import Adapters
from migrate.engine.context import PhaseContext
from migrate.engine.hooks import run_hook
from migrate.engine.journal import error_info, step_key
from migrate.engine.methods import Method, registry
from migrate.engine.plan import VmFacts, WavePlan
from migrate.engine.playbook import Hook
from migrate.engine.progress import VmProgress
from migrate.engine.run_state import WaveStep, WaveStepContext
from migrate.engine.steps import typed_outputs
from migrate.engine.timing import CancelToken, SystemClock
from migrate.temporal.heartbeat_ledger import HeartbeatLedger
from migrate.temporal.messages import HookTask, Json, PhaseTask, WaveStepTask
from migrate.temporal.task_replication import TaskReplication

__all__ = ["CYCLE_ACTIVITY", "HOOK_ACTIVITY", "PHASE_ACTIVITY", "WAVE_STEP_ACTIVITY", "Activities",
           "HeartbeatProgress"]

PHASE_ACTIVITY = "migrate.phase"
CYCLE_ACTIVITY = "migrate.cycle"
HOOK_ACTIVITY = "migrate.hook"
WAVE_STEP_ACTIVITY = "migrate.wave_step"
T = TypeVar("T")
WORKER_SETUP_RETRY = timedelta(seconds=1)
_ROLE_SECTION = {Role.SOURCE: "source", Role.TARGET: "target", Role.REPLATFORMER: "replatformer"}


class HeartbeatProgress(VmProgress):
    """A phase's byte progress, sent with the activity's next heartbeat."""

    __slots__ = ("done", "total")

    def __init__(self) -> None:
        self.done = 0
        self.total: int | None = None

    def bytes(self, done: int, total: int | None = None) -> None:
        self.done, self.total = done, total

    def details(self) -> Json:
        return {"bytes": self.done, "total": self.total}


def _failure(exc: BaseException, phase: str | None = None, done: Json | None = None) -> ApplicationError:
    """The Temporal error of a phase's exception: retryable only for a retryable AdapterError; its details are
    the error record and, for a phase of a group, which one failed and the outputs of those before it."""
    retryable = isinstance(exc, AdapterError) and exc.retryable
    return ApplicationError(str(exc), error_info(exc), {"phase": phase, "done": dict(done or {})},
                            type=type(exc).__name__, non_retryable=not retryable)


def _missing(what: str) -> ApplicationError:
    """This worker cannot run the task (a fault of its set-up, not of the VM): soon tried again, by another
    worker if one can run it; the VM fails, naming this worker and what it lacks, once the retries are spent."""
    message = f"worker {socket.gethostname()}:{os.getpid()} {what}"
    return ApplicationError(message, {"type": "WorkerSetup", "message": message, "retryable": True},
                            type="WorkerSetup", next_retry_delay=WORKER_SETUP_RETRY)


class Activities:
    """The activities of one worker: its adapters (opened from its site.yaml) and wave steps."""

    def __init__(self, adapters: Adapters, wave_steps: Mapping[str, WaveStep], *, threads: int,
                 ledger: HeartbeatLedger | None = None, heartbeat_every: float = 1.0) -> None:
        self.adapters = adapters
        self.ledger = ledger or HeartbeatLedger()
        self.wave_steps = dict(wave_steps)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="phase")
        self.heartbeat_every = heartbeat_every
        self.log = get_logger("migrate.temporal")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _in_thread(self, fn: Callable[[CancelToken, Callable[[], None]], T],
                         details: Callable[[], Json]) -> T:
        """`fn(cancel, beat_now)` on a worker thread, heartbeating every `heartbeat_every` s and whenever it calls
        `beat_now()` (a phase of a group finished); a cancel of the activity asks `fn` to stop."""
        cancel = CancelToken()
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def beat_now() -> None:
            loop.call_soon_threadsafe(wake.set)

        future = loop.run_in_executor(self.executor, fn, cancel, beat_now)
        try:
            while True:
                waiter: asyncio.Future[Any] = asyncio.ensure_future(wake.wait())
                done, _ = await asyncio.wait({future, waiter}, timeout=self.heartbeat_every,
                                             return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                wake.clear()
                if future in done:
                    return future.result()
                activity.heartbeat(details())
        except asyncio.CancelledError:
            cancel.cancel(reason="activity canceled")
            raise

    def _method(self, name: str) -> Method:
        method = registry().get(name)
        if method is None:
            raise _missing(f"has no method {name!r} installed (methods: {', '.join(sorted(registry()))})")
        missing = sorted(_ROLE_SECTION[role] for role in method.roles
                         if role in _ROLE_SECTION and getattr(self.adapters, _ROLE_SECTION[role]) is None)
        if missing:
            raise _missing(f"has no driver for {', '.join(missing)} (its site.yaml lacks the section) that "
                           f"method {name!r} needs")
        return method

    @activity.defn(name=PHASE_ACTIVITY)
    async def phase(self, task: PhaseTask) -> Json:
        """Run consecutive phases of one VM (one queue, one stage): each one's outputs (typed as the phase
        declares) and the cycles they recorded. Each finished phase rides on the heartbeats, so the activity
        retried (on another worker) goes on after the last one its heartbeats carried."""
        return await self._run(task, cycle=False)

    @activity.defn(name=CYCLE_ACTIVITY)
    async def cycle(self, task: PhaseTask) -> Json:
        """Run replication cycle `task.cycle` of a precopy phase: the cycle's record (as outputs and cycles)."""
        return await self._run(task, cycle=True)

    async def _run(self, task: PhaseTask, *, cycle: bool) -> Json:
        wave, vm = WavePlan.model_validate(task.wave), VmFacts.model_validate(task.vm)
        method = self._method(wave.method)
        for name in task.phases:
            if not method.has_phase(name) or (cycle and method.phase(name).cycle is None):
                raise _missing(f"has method {wave.method!r} without a phase {name!r}"
                               f"{' with cycles' if cycle else ''} (another version?)")
        info = activity.info()
        progress = HeartbeatProgress()
        beat = self.ledger.begin(task.run_id, vm.id, info.heartbeat_details)
        replication = TaskReplication(task.cycles, self.ledger, info.heartbeat_details)
        done: dict[str, Json] = {name: dict(outputs) for details in info.heartbeat_details[-1:]
                                 if isinstance(details, dict) for name, outputs in details.get("done", {}).items()}
        log = self.log.bind(run_id=task.run_id, wave=wave.id, vm=vm.id, attempt=info.attempt)

        def body(cancel: CancelToken, beat_now: Callable[[], None]) -> Json:
            for name in task.phases:
                if name in done:
                    continue
                declared = method.phase(name)
                ctx = PhaseContext(run_id=task.run_id, wave=wave, vm=vm, phase=name, attempt=info.attempt,
                                   key=step_key(task.run_id, "vm", vm.id, name), adapters=self.adapters,
                                   prior={**task.prior, **done}, log=log.bind(phase=name), clock=SystemClock(),
                                   cancel=cancel, progress=progress, replication=replication)
                try:
                    if cycle:
                        assert declared.cycle is not None and task.cycle is not None
                        declared.cycle(ctx, task.cycle)
                        done[name] = next(dict(c) for c in replication.cycles() if int(c["cycle"]) == task.cycle)
                    else:
                        done[name] = dict(typed_outputs(declared, declared.run(ctx)))
                except Exception as exc:
                    log.warning("phase failed", phase=name, error=str(exc))
                    raise _failure(exc, name, done) from exc
                beat_now()
            return {"outputs": done, "cycles": replication.recorded}

        try:
            return await self._in_thread(body, lambda: {**progress.details(), **beat.details(),
                                                        **replication.details(), "done": dict(done)})
        finally:
            self.ledger.end(task.run_id, vm.id)

    @activity.defn(name=HOOK_ACTIVITY)
    async def hook(self, task: HookTask) -> Json:
        """Run one playbook hook (http, tcp, command or wait)."""
        hook = Hook.model_validate(task.hook)

        def body(cancel: CancelToken, beat_now: Callable[[], None]) -> Json:
            try:
                return dict(run_hook(hook, task.variables, clock=SystemClock(), cancel=cancel, approver=None))
            except Exception as exc:
                raise _failure(exc) from exc

        return await self._in_thread(body, dict)

    @activity.defn(name=WAVE_STEP_ACTIVITY)
    async def wave_step(self, task: WaveStepTask) -> Json:
        """Run one wave step (ensure_capacity) with this worker's site; its outputs."""
        step = self.wave_steps.get(task.step)
        if step is None:
            raise _missing(f"has no wave step {task.step!r} (its site.yaml has no `capacity` it can grow with)")
        wave = WavePlan.model_validate(task.wave)
        vms = [VmFacts.model_validate(v) for v in task.vms]

        def body(cancel: CancelToken, beat_now: Callable[[], None]) -> Json:
            try:
                return dict(step(WaveStepContext(run_id=task.run_id, wave=wave, vms=vms, journal=None,
                                                 cancel=cancel)))
            except Exception as exc:
                raise _failure(exc) from exc

        return await self._in_thread(body, dict)

    def all(self) -> list[Callable[..., Any]]:
        """The activity functions to register."""
        return [self.phase, self.cycle, self.hook, self.wave_step]
