"""One wave: window gate, wave hooks, VM prechecks, then VMs concurrently under limits, then the policy verdict.

Inside a wave, a dispatcher admits VMs in plan order (VMs caught mid-cutover by a crash first) as
soon as every slot they need is free (limits.py), each on a worker thread. A failed VM fails alone;
then the wave's policy decides: `continue` (the others go on; the wave ends `partial`), `pause` (no new
VM starts; the wave ends `paused`, resumable) or `stop` (no new VM starts, the ones not started are
skipped, the wave ends `failed` and the run stops). A cancel starts nothing new and leaves the wave
`canceled` (resumable); in-flight VMs finish, or stop at their next phase boundary if asked to.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from migrate.core.errors import OperationalError
from migrate.engine.lifecycle import TERMINAL_VM_STATES, VmModel, VmState, WaveModel, WaveState
from migrate.engine.limits import Limiter, SlotLease
from migrate.engine.methods import get_method
from migrate.engine.plan import WavePlan
from migrate.engine.run_state import RunState, WaveStep, WaveStepContext
from migrate.engine.steps import StepFailed, VmOutcome, drive_vm, precheck_vm, run_hooks, run_step
from migrate.engine.timing import Interrupted

__all__ = ["WindowError", "run_wave"]

_IN_FLIGHT = (VmState.REPLICATING, VmState.CUTTING_OVER, VmState.VERIFYING)


class WindowError(OperationalError):
    """A wave cannot run in its cutover window."""


def run_wave(rs: RunState, plan: WavePlan) -> WaveState:
    """Run (or continue) one wave; returns the state it ends in."""
    wave = rs.waves[plan.id]
    log = rs.log.bind(wave=plan.id)
    vms = [rs.vms[vm_id] for vm_id in plan.vms]
    if wave.state in (WaveState.FAILED, WaveState.PARTIAL):
        again, retry = _to_retry(rs, wave, vms)
        if not again:
            return wave.state
        for vm in retry:
            rs.fire_vm(vm, "retry", reason="retry requested")
        rs.fire_wave(wave, "retry", reason="retry requested")
    elif wave.state in (WaveState.PAUSED, WaveState.CANCELED):
        rs.fire_wave(wave, "resume", reason="resumed")
    elif wave.state is WaveState.PENDING:
        rs.fire_wave(wave, "start")
    elif wave.state is WaveState.COMPLETED:
        return wave.state
    if wave.state is WaveState.PRECHECKING:
        verdict = _precheck_stage(rs, plan, wave, vms, log)
        if verdict is not None:
            return verdict
    return _running_stage(rs, plan, wave, vms, log)


def _to_retry(rs: RunState, wave: WaveModel, vms: list[VmModel]) -> tuple[bool, list[VmModel]]:
    """Whether a failed or partial wave runs again, and the VMs it retries: those the retry scope covers, or
    every skipped one when the wave failed before any VM started (a wave step or pre-hook failed)."""
    if wave.state is WaveState.FAILED and all(vm.state in (VmState.SKIPPED, VmState.PENDING) for vm in vms):
        return True, [vm for vm in vms if vm.state is VmState.SKIPPED]
    scope = rs.retry_failed
    retry = [] if scope is None else [vm for vm in vms if vm.state in (VmState.FAILED, VmState.SKIPPED)
                                      and scope.covers(vm)]
    return bool(retry), retry


def _window_gate(rs: RunState, plan: WavePlan, vms: list[VmModel], log: Any) -> str | None:
    """Wait for the window; a reason to cancel if it cannot fit or a cancel came while waiting."""
    window = plan.window
    if window is None or get_method(plan.method).replicates:
        return None   # a replicating method starts now: its window schedules the cutover (engine.replication)
    clock = rs.settings.clock
    left = [vm.id for vm in vms if vm.state not in TERMINAL_VM_STATES]
    estimate = rs.settings.estimate(plan, left) if rs.settings.estimate else 0.0
    now = clock.now()
    start = max(now, window.start)
    if start + timedelta(seconds=estimate) > window.end:
        return (f"window {window.start.isoformat()} - {window.end.isoformat()} is too short: the wave would start "
                f"at {start.isoformat()} and needs an estimated {estimate:.0f} s")
    while now < window.start:
        log.info("waiting for the cutover window", start=window.start.isoformat())
        if clock.sleep((window.start - now).total_seconds(), rs.cancel.requested):
            return rs.cancel.reason or "canceled"
        now = clock.now()
    return None


def _precheck_stage(rs: RunState, plan: WavePlan, wave: WaveModel, vms: list[VmModel], log: Any) -> WaveState | None:
    """Window, wave pre-hooks and VM prechecks; a final state, or None to go on running."""
    if rs.cancel.is_requested:
        rs.fire_wave(wave, "cancel", reason=rs.cancel.reason)
        return wave.state
    why = _window_gate(rs, plan, vms, log)
    if why is not None:
        rs.fire_wave(wave, "cancel", WindowError(why) if not rs.cancel.is_requested else None, reason=why)
        log.warning("wave not started", why=why)
        return wave.state
    hooks = rs.playbooks[plan.method].hooks.wave
    try:
        run_hooks(rs, "wave", str(plan.id), "pre", hooks.pre, _variables(rs, plan), log)
    except StepFailed as failed:
        _skip_rest(rs, vms, f"wave {plan.id} pre-hook {failed.step} failed")
        rs.fire_wave(wave, "fail", failed.cause, reason=f"pre-hook {failed.step} failed")
        return wave.state
    except Interrupted:
        rs.fire_wave(wave, "cancel", reason=rs.cancel.reason)
        return wave.state
    failed_step = _wave_steps(rs, plan, log)
    if isinstance(failed_step, StepFailed):
        _skip_rest(rs, vms, f"wave {plan.id} {failed_step.step} failed: {failed_step.cause}")
        rs.fire_wave(wave, "fail", failed_step.cause, reason=f"{failed_step.step} failed")
        return wave.state
    if failed_step is not None:
        rs.fire_wave(wave, "cancel", reason=rs.cancel.reason)
        return wave.state
    pending = [vm for vm in vms if vm.state is VmState.PENDING]

    def check(vm: VmModel) -> VmOutcome:
        return "not_started" if rs.cancel.is_requested else precheck_vm(rs, vm)

    outcomes = _parallel(pending, check, rs.settings.limits.total)
    if rs.cancel.is_requested:
        rs.fire_wave(wave, "cancel", reason=rs.cancel.reason)
        return wave.state
    failures = sum(1 for outcome in outcomes if outcome == "failed")
    if failures and plan.policy == "pause":
        rs.fire_wave(wave, "pause", reason=f"{failures} VM(s) failed prechecks (policy pause)")
        return wave.state
    if failures and plan.policy == "stop":
        _skip_rest(rs, vms, f"wave {plan.id} stopped: {failures} VM(s) failed prechecks")
        rs.fire_wave(wave, "fail", reason=f"{failures} VM(s) failed prechecks (policy stop)")
        return wave.state
    rs.fire_wave(wave, "run")
    return None


def _wave_steps(rs: RunState, plan: WavePlan, log: Any) -> StepFailed | Interrupted | None:
    """Run the settings' wave steps (ensure capacity...) as journaled wave steps; the first failure, if any."""
    for name, fn in rs.settings.wave_steps:
        def body(attempt: int, key: str, fn: WaveStep = fn) -> Mapping[str, Any]:
            return fn(WaveStepContext(run_id=rs.run_id, wave=plan, vms=[rs.plan.vm_index[v] for v in plan.vms],
                                      journal=rs.journal, clock=rs.settings.clock, cancel=rs.cancel))

        try:
            outputs = run_step(rs, "wave", str(plan.id), name, {"wave": plan.id}, body, log)
        except StepFailed as failed:
            log.error("wave step failed", step=name, error=str(failed.cause))
            return failed
        except Interrupted as stop:
            return stop
        log.info("wave step done", step=name, outputs=dict(outputs))
    return None


def _variables(rs: RunState, plan: WavePlan) -> dict[str, str]:
    return {"run_id": rs.run_id, "wave": str(plan.id)}


def _skip_rest(rs: RunState, vms: list[VmModel], reason: str) -> None:
    """Skip every VM of the wave that has not started its cutover."""
    for vm in vms:
        if vm.state in (VmState.PENDING, VmState.PRECHECKED, VmState.READY):
            rs.fire_vm(vm, "skip", reason=reason)


class _Dispatcher:
    """Worker threads that each take the next VM whose slots are free, in order, until none is left."""

    def __init__(self, rs: RunState, plan: WavePlan, vms: list[VmModel]) -> None:
        self.rs = rs
        self.plan = plan
        self.limiter = Limiter(rs.settings.limits)
        self.cond = threading.Condition()
        self.in_flight = 0
        self.waiting = 0
        self.halt: str | None = None
        self.abort: BaseException | None = None
        self.workers: list[threading.Thread] = []
        # VMs waiting, grouped by the slots they need (few groups, so picking stays cheap); VMs that a
        # crash caught mid-cutover go first.
        ordered = sorted(enumerate(vms), key=lambda iv: (iv[1].state not in _IN_FLIGHT, iv[0]))
        self.queues: dict[tuple[str, ...], deque[tuple[int, VmModel]]] = {}
        for rank, (_, vm) in enumerate(ordered):
            if vm.state not in TERMINAL_VM_STATES:
                keys = rs.settings.limits.keys(rs.plan.vm_index[vm.id])
                self.queues.setdefault(keys, deque()).append((rank, vm))
        # Heads of the queues by rank: picking tries them in plan order.
        self.heads = [(queue[0][0], keys) for keys, queue in self.queues.items()]
        heapq.heapify(self.heads)

    def stop_admitting(self) -> str | None:
        """Why no new VM may start now, or None."""
        if self.abort is not None:
            return "abort"
        if self.halt is not None:
            return self.halt
        if self.rs.cancel.is_requested:
            return "cancel"
        window = self.plan.window
        if window is not None and self.rs.settings.clock.now() >= window.end:
            return "window"
        return None

    def _pick(self) -> tuple[VmModel, tuple[str, ...]] | None:
        """The first waiting VM (in rank order) whose slots are all free, with its slots taken."""
        if self.limiter.global_full():
            return None
        blocked: list[tuple[int, tuple[str, ...]]] = []
        picked = None
        while self.heads:
            rank, keys = heapq.heappop(self.heads)
            if not self.limiter.try_acquire(keys):
                blocked.append((rank, keys))
                continue
            queue = self.queues[keys]
            _, vm = queue.popleft()
            if queue:
                heapq.heappush(self.heads, (queue[0][0], keys))
            else:
                del self.queues[keys]
            picked = (vm, keys)
            break
        for head in blocked:
            heapq.heappush(self.heads, head)
        return picked

    def _worker(self) -> None:
        poll = self.rs.settings.poll_seconds
        with self.cond:
            while self.heads and self.stop_admitting() is None:
                picked = self._pick()
                if picked is None:
                    self.waiting += 1
                    self.cond.wait(timeout=poll)
                    self.waiting -= 1
                    continue
                vm, keys = picked
                self.in_flight += 1
                lease = SlotLease(self.limiter, keys, self.cond, self._spare_worker,
                                  lambda: self.rs.cancel.is_requested, poll)
                self.cond.release()
                outcome: VmOutcome | BaseException
                try:
                    outcome = drive_vm(self.rs, vm, lease)
                except BaseException as exc:  # a broken journal: stop the wave, keep what is recorded
                    outcome = exc
                finally:
                    self.cond.acquire()
                    lease.finish()
                    self.in_flight -= 1
                self._outcome(vm, outcome)
                if self.waiting:
                    self.cond.notify_all()

    def _start_worker(self) -> None:
        worker = threading.Thread(target=self._worker, name=f"wave-{self.plan.id}-{len(self.workers)}", daemon=True)
        self.workers.append(worker)
        worker.start()

    def _spare_worker(self) -> None:
        """A VM gave its slots back while it waits between replication cycles (its worker stays with it): one
        more worker, if a VM waits to start and no worker is free to take it. Runs under `cond`."""
        if self.heads and not self.waiting and self.stop_admitting() is None:
            self._start_worker()

    def run(self) -> str | None:
        """Run until every VM is done or nothing more may start; why it stopped early, or None."""
        waiting = sum(len(queue) for queue in self.queues.values())
        with self.cond:
            for _ in range(min(self.rs.settings.limits.total, waiting)):
                self._start_worker()
        while True:   # replicating VMs may start more workers while these run
            with self.cond:
                alive = [worker for worker in self.workers if worker.is_alive()]
            if not alive:
                break
            for worker in alive:
                worker.join()
        reason = self.stop_admitting()
        # A policy verdict stands even when the failed VM was the last one; a cancel or a closed window
        # only matters if VMs are left.
        if reason in ("abort", "pause", "stop") or (reason is not None and self.queues):
            return reason
        return None

    def _outcome(self, vm: VmModel, outcome: VmOutcome | BaseException) -> None:
        if isinstance(outcome, BaseException):
            self.abort = self.abort or outcome
        elif outcome == "failed" and self.plan.policy in ("pause", "stop") and self.halt is None:
            self.halt = self.plan.policy
            self.rs.log.warning("wave halts after a failed VM", wave=self.plan.id, vm=vm.id,
                                policy=self.plan.policy)


def _parallel(items: list[VmModel], fn: Callable[[VmModel], VmOutcome], workers: int) -> list[VmOutcome]:
    """fn over items on up to `workers` threads that pull the next item themselves; results in order."""
    results: list[VmOutcome] = ["not_started"] * len(items)
    indexes = iter(range(len(items)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None or errors:
                return
            try:
                results[index] = fn(items[index])
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(items)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _running_stage(rs: RunState, plan: WavePlan, wave: WaveModel, vms: list[VmModel], log: Any) -> WaveState:
    """VMs concurrently under the limits, then the wave's verdict."""
    for vm in vms:  # cleared to go: each now waits for its slots
        if vm.state is VmState.PRECHECKED:
            rs.fire_vm(vm, "make_ready")
    dispatcher = _Dispatcher(rs, plan, vms)
    stopped = dispatcher.run()
    if dispatcher.abort is not None:
        raise dispatcher.abort
    if stopped == "pause":
        rs.fire_wave(wave, "pause", reason="a VM failed (policy pause)")
        return wave.state
    if stopped == "stop":
        _skip_rest(rs, vms, f"wave {plan.id} stopped after a VM failed (policy stop)")
        rs.fire_wave(wave, "fail", reason="a VM failed (policy stop)")
        return wave.state
    unfinished = [vm for vm in vms if vm.state not in TERMINAL_VM_STATES]
    if stopped == "cancel" or (unfinished and rs.cancel.is_requested):
        rs.fire_wave(wave, "cancel", reason=rs.cancel.reason)
        return wave.state
    if stopped == "window" or unfinished:
        rs.fire_wave(wave, "pause", reason=f"cutover window ended with {len(unfinished)} VM(s) not done")
        return wave.state
    try:
        run_hooks(rs, "wave", str(plan.id), "post", rs.playbooks[plan.method].hooks.wave.post,
                  _variables(rs, plan), log)
    except StepFailed as failed:
        rs.fire_wave(wave, "fail", failed.cause, reason=f"post-hook {failed.step} failed")
        return wave.state
    except Interrupted:
        rs.fire_wave(wave, "cancel", reason=rs.cancel.reason)
        return wave.state
    states = [vm.state for vm in vms]
    done = states.count(VmState.COMPLETED)
    if done == len(states):
        rs.fire_wave(wave, "complete")
    elif done == 0 and VmState.FAILED in states:
        rs.fire_wave(wave, "fail", reason="no VM completed")
    else:
        rs.fire_wave(wave, "finish_partial", reason=f"{done} of {len(states)} VMs completed")
    log.info("wave ended", state=wave.state.value, completed=done, vms=len(states))
    return wave.state
