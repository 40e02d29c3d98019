"""Run and resume: waves in plan order, each through wave_runner, everything journaled.

`start` records a new run (plan, playbooks and digest) and runs it; `resume` continues the latest (or
a named) run from the journal alone: completed VMs are skipped, phases that started but did not
finish run again (they are idempotent), paused and canceled waves start again from their prechecks.
A run stops at the first wave that ends paused, canceled or failed; a failed wave (policy `stop`, a
failed wave hook) stays failed unless resume is asked to retry failed VMs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migrate.core.errors import InputError, Problem
from migrate.core.ports import Adapters
from migrate.engine.context import PhaseRegistry
from migrate.engine.journal import Journal
from migrate.engine.lifecycle import WaveState
from migrate.engine.methods import registry
from migrate.engine.plan import RunPlan
from migrate.engine.playbook import Playbook, load_playbook
from migrate.engine.progress import ProgressListener, RunFinished, RunProgress, WaveFinished, WaveStarted
from migrate.engine.rollback import RollbackResult, RollbackSteps, rollback_vms
from migrate.engine.run_state import RetryScope, RunSettings, RunState
from migrate.engine.timing import CancelToken
from migrate.engine.wave_runner import run_wave

__all__ = ["RunResult", "Runner", "check_run", "phase_functions", "run_status"]


@dataclass
class RunResult:
    """What one execution (start or resume) of a run ended with."""

    run_id: str
    status: str
    waves: dict[int, str]
    vms: dict[str, int]
    transitions: int
    records: int
    seconds: float
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json output."""
        return {"run_id": self.run_id, "status": self.status, "waves": {str(k): v for k, v in self.waves.items()},
                "vms": self.vms, "transitions": self.transitions, "journal_records": self.records,
                "seconds": round(self.seconds, 3), "failed": self.failed}


def run_status(wave_states: list[WaveState], *, canceled: bool = False) -> str:
    """A run's status from its waves' states in plan order, once an execution has ended."""
    for state in wave_states:
        if state in (WaveState.PAUSED, WaveState.CANCELED, WaveState.FAILED):
            return str(state.value)
        if state not in (WaveState.COMPLETED, WaveState.PARTIAL):
            return "canceled" if canceled else "interrupted"
    return "partial" if WaveState.PARTIAL in wave_states else "completed"


def _check_scope(scope: RetryScope, plan: RunPlan) -> None:
    """Every VM and wave a retry names is in the run: else InputError, before anything runs."""
    problems = [Problem("--vm", vm_id, "not in this run") for vm_id in sorted(scope.vms or ())
                if vm_id not in plan.vm_index]
    known = {w.id for w in plan.waves}
    problems += [Problem("--wave", str(w), "not in this run") for w in sorted(scope.waves or ()) if w not in known]
    if problems:
        raise InputError(problems)


def phase_functions() -> dict[str, PhaseRegistry]:
    """Phase name -> function, for every installed method."""
    return {name: method.functions for name, method in registry().items()}


def check_run(plan: RunPlan, books: Mapping[str, Playbook], phases: Mapping[str, PhaseRegistry]) -> None:
    """Every wave's method has a playbook of that method and every phase has a function: before any change."""
    problems = []
    for method in sorted({w.method for w in plan.waves}):
        book = books.get(method)
        if book is None:
            problems.append(Problem("playbooks", method, f"no playbook for method {method!r}"))
            continue
        if book.method != method:
            problems.append(Problem(book.name, "method", f"playbook is for {book.method!r}, used for {method!r}"))
        registry = phases.get(method, {})
        problems.extend(Problem(book.name, f"phases[{i}]", f"phase {phase!r} of method {method!r} is not "
                                                           "implemented in this build")
                        for i, phase in enumerate(book.phases) if phase not in registry)
    if problems:
        raise InputError(problems)


class Runner:
    """Executes runs recorded in a journal with the given phase implementations and adapters."""

    def __init__(self, journal: Journal, phases: Mapping[str, PhaseRegistry] | None = None, *,
                 adapters: Adapters | None = None, settings: RunSettings | None = None,
                 cancel: CancelToken | None = None, rollbacks: Mapping[str, RollbackSteps] | None = None,
                 progress: ProgressListener | None = None) -> None:
        self.journal = journal
        # The installed methods' phase functions and rollbacks; tests may put others in their place.
        self.phases = phase_functions() if phases is None else phases
        self.rollbacks = {name: m.rollback for name, m in registry().items() if m.rollback} \
            if rollbacks is None else rollbacks
        self.adapters = adapters or Adapters()
        self.settings = settings or RunSettings()
        self.cancel = cancel or CancelToken()
        self.progress = progress  # gets the runs' progress events (a live view), from any thread

    def start(self, plan: RunPlan, playbooks: Mapping[str, Playbook] | None = None,
              run_id: str | None = None) -> RunResult:
        """Record a new run of `plan` and execute it (playbooks by method; default: migrate/playbooks/<method>.yaml)."""
        books = dict(playbooks or {})
        for wave in plan.waves:
            if wave.method not in books:
                books[wave.method] = load_playbook(wave.method)
        self._check(plan, books)
        self.journal.acquire_runner_lock()
        try:
            record = self.journal.create_run(plan, {m: b.model_dump(mode="json") for m, b in books.items()}, run_id)
        except BaseException:
            self.journal.release_runner_lock()
            raise
        return self._execute(record.run_id, plan, books, retry_failed=None)

    def resume(self, run_id: str | None = None, *, plan: RunPlan | None = None,
               retry_failed: bool | RetryScope = False) -> RunResult:
        """Continue a run from the journal; `plan` must be the run's plan, but may bring new windows and policies.

        `retry_failed` also retries failed VMs (True: all of them; a RetryScope: those it covers). A wave that
        failed before any VM started (a wave step such as capacity, or a pre-hook) is retried either way.
        """
        self.journal.acquire_runner_lock()
        try:
            record = self.journal.open_run(run_id, plan=plan)
            books = {m: Playbook.model_validate(data) for m, data in record.playbooks.items()}
            self._check(record.plan, books)
            scope = RetryScope() if retry_failed is True else retry_failed or None
            if scope is not None:
                _check_scope(scope, plan or record.plan)
        except BaseException:
            self.journal.release_runner_lock()
            raise
        return self._execute(record.run_id, plan or record.plan, books, retry_failed=scope)

    def rollback(self, run_id: str | None = None, *, vms: list[str] | None = None,
                 waves: list[int] | None = None) -> RollbackResult:
        """Roll back VMs of a run (by id, or every VM of `waves`, or the whole run), journaled."""
        self.journal.acquire_runner_lock()
        try:
            record = self.journal.open_run(run_id)
            plan = record.plan
            books = {m: Playbook.model_validate(data) for m, data in record.playbooks.items()}
            problems = [Problem("--vm", vm_id, "not in this run") for vm_id in vms or [] if vm_id not in plan.vm_index]
            known = {w.id for w in plan.waves}
            problems += [Problem("--wave", str(w), "not in this run") for w in waves or [] if w not in known]
            if problems:
                raise InputError(problems)
            selected = [v for w in plan.waves if not waves or w.id in waves for v in w.vms
                        if not vms or v in vms]
            rs = RunState(self.journal, record.run_id, plan, books, self.phases, self.adapters, self.settings,
                          self.cancel)
            result = rollback_vms(rs, list(reversed(selected)), self.rollbacks)
            counts = Counter(vm.state.value for vm in rs.vms.values())
            whole = all(vm.state.value in ("rolled_back", "skipped", "pending") for vm in rs.vms.values())
            self.journal.set_run_status(record.run_id, "rolled_back" if whole else record.status,
                                        {"vms": dict(counts)})
        finally:
            self.journal.release_runner_lock()
        return result

    def _check(self, plan: RunPlan, books: Mapping[str, Playbook]) -> None:
        check_run(plan, books, self.phases)

    def _execute(self, run_id: str, plan: RunPlan, books: Mapping[str, Playbook], *,
                 retry_failed: RetryScope | None) -> RunResult:
        began = time.perf_counter()
        records_before = self.journal.records
        events = RunProgress(self.progress, plan)
        try:
            rs = RunState(self.journal, run_id, plan, books, events.phases(self.phases), self.adapters,
                          events.settings(self.settings), self.cancel, retry_failed=retry_failed)
            events.run_started(rs)
            rs.log.info("run starting", waves=len(plan.waves), vms=len(plan.vms))
            self.journal.set_run_status(run_id, "running")
            try:
                for wave in plan.waves:
                    if self.cancel.is_requested and rs.waves[wave.id].state is WaveState.PENDING:
                        break
                    events.emit(WaveStarted(wave.id))
                    state = run_wave(rs, wave)
                    events.emit(WaveFinished(wave.id, state.value))
                    if state not in (WaveState.COMPLETED, WaveState.PARTIAL):
                        break
            finally:
                status = run_status([rs.waves[w.id].state for w in plan.waves], canceled=self.cancel.is_requested)
                vm_counts = Counter(vm.state.value for vm in rs.vms.values())
                self.journal.set_run_status(run_id, status, {"vms": dict(vm_counts)})
        finally:
            self.journal.release_runner_lock()
        result = RunResult(
            run_id=run_id, status=status, waves={w.id: rs.waves[w.id].state.value for w in plan.waves},
            vms=dict(sorted(vm_counts.items())), transitions=rs.transitions,
            records=self.journal.records - records_before, seconds=time.perf_counter() - began,
            failed={vm.id: vm.error or {} for vm in rs.vms.values() if vm.state.value == "failed"})
        rs.log.info("run ended", status=status, vms=result.vms, seconds=round(result.seconds, 3))
        events.emit(RunFinished(run_id, status))
        return result
