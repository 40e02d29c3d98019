"""What a run journal says for the report: per VM state, phases with their times, errors, prechecks, downtime.

Read-only (the journal stays as it was). A journal whose run was started from another plan than the
report's plan.yaml is bad input naming the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrate.core.errors import InputError
from migrate.engine.journal import Journal, StepRecord
from migrate.report.model import PhaseSpan, Prechecks, ReportError, RunSummary, Span
from migrate.run import run_status
from planners.plan_model import Plan

__all__ = ["DOWNTIME_PHASES", "RunFacts", "VmRun", "iso", "read_run"]

# Per method: the phase that takes the source down and the one after which the workload is up again.
DOWNTIME_PHASES: dict[str, tuple[str, str]] = {
    "cold": ("power_off_source", "power_on_target"),
    "noop": ("power_off_source", "power_on_target"),
    "replatform": ("power_off_source", "wait_ready"),
    "warm": ("power_off_source", "power_on_target"),
    "warm_replatform": ("power_off_source", "wait_ready"),
}


def iso(ts: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds (`2025-03-01T20:00:00.000Z`)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class VmRun:
    """One VM as the journal has it."""

    state: str
    phase: str | None
    target_id: str | None
    error: ReportError | None
    note: str | None
    phases: list[PhaseSpan] = field(default_factory=list)
    prechecks: Prechecks = field(default_factory=Prechecks)
    downtime_s: float | None = None


@dataclass
class RunFacts:
    """The run: its summary, each wave's state and actual span, each VM's run."""

    summary: RunSummary
    waves: dict[int, dict[str, Any]]
    vms: dict[str, VmRun]


def _error(info: Mapping[str, Any] | None) -> ReportError | None:
    if not info:
        return None
    return ReportError(type=info.get("type"), message=str(info.get("message") or ""), provider=info.get("provider"),
                       op=info.get("op"), retryable=bool(info.get("retryable")))


def _check_same_plan(journal: Path, run_id: str, run_waves: list[tuple[int, str, list[str]]], plan: Plan) -> None:
    """Every wave of the run must be the plan's wave of that id, with the same VMs and method."""
    planned = {w.id: w for w in plan.waves}
    problems = []
    for wave_id, method, vms in run_waves:
        wave = planned.get(wave_id)
        if wave is None:
            problems.append(f"wave {wave_id} is not in the plan")
        elif sorted(wave.vms) != sorted(vms):
            moved = sorted(set(wave.vms) ^ set(vms))
            problems.append(f"wave {wave_id} has other VMs ({len(moved)} differ, e.g. {moved[0]})")
        elif wave.method != method:
            problems.append(f"wave {wave_id} runs {method}, the plan says {wave.method}")
    if problems:
        raise InputError.single(str(journal), f"run {run_id}", "was started from another plan than this plan.yaml: "
                                + "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5
                                                             else ""))


def _prechecks(step: StepRecord | None) -> Prechecks:
    if step is None:
        return Prechecks()
    checks = (step.outputs or {}).get("checks") if isinstance(step.outputs, dict) else None
    if isinstance(checks, list):
        found = [(c.get("status"), f"{c.get('check')}: {c.get('message')}") for c in checks if isinstance(c, dict)]
        return Prechecks(blocking=[text for status, text in found if status == "block"],
                         warnings=[text for status, text in found if status == "warn"])
    message = str((step.error or {}).get("message") or "")
    if step.status == "failed" and message.startswith("precheck: "):
        return Prechecks(blocking=message.removeprefix("precheck: ").split("; "))
    return Prechecks()


def _downtime(method: str, steps: dict[str, StepRecord]) -> float | None:
    phases = DOWNTIME_PHASES.get(method)
    if phases is None:
        return None
    down, up = steps.get(phases[0]), steps.get(phases[1])
    if down is None or up is None or up.finished_at is None or up.status != "finished":
        return None
    if isinstance(down.outputs, dict) and down.outputs.get("powered_off") is False:
        return None  # the source was off already: the move took nothing down
    return round(up.finished_at - down.started_at, 3)


def _span(steps: list[StepRecord]) -> Span | None:
    if not steps:
        return None
    start = min(s.started_at for s in steps)
    ends = [s.finished_at for s in steps if s.finished_at is not None]
    open_ = any(s.finished_at is None for s in steps)
    return Span(start=iso(start), end=None if open_ or not ends else iso(max(ends)))


def read_run(journal: str | Path, plan: Plan, run_id: str | None = None) -> RunFacts:
    """The latest (or named) run of `journal`, checked to be a run of `plan`."""
    path = Path(journal)
    status = run_status(path, run_id=run_id)
    with Journal(path, create=False, read_only=True) as jr:
        record = jr.open_run(status["run_id"])
        steps = jr.steps(record.run_id)
    _check_same_plan(path, record.run_id, [(w.id, str(w.method), list(w.vms)) for w in record.plan.waves], plan)
    methods = {w.id: str(w.method) for w in record.plan.waves}
    by_vm: dict[str, dict[str, StepRecord]] = {}
    by_wave: dict[int, list[StepRecord]] = {}
    wave_of = {vm["id"]: vm["wave"] for vm in status["vms"]}
    for step in steps:
        if step.kind == "vm":
            by_vm.setdefault(step.entity_id, {})[step.step] = step
            if step.entity_id in wave_of:
                by_wave.setdefault(wave_of[step.entity_id], []).append(step)
        elif step.kind == "wave" and step.entity_id.isdecimal():
            by_wave.setdefault(int(step.entity_id), []).append(step)
    vms: dict[str, VmRun] = {}
    for vm in status["vms"]:
        own = by_vm.get(vm["id"], {})
        spans = [PhaseSpan.model_validate({"phase": s.step, "status": s.status, "attempt": s.attempt,
                                           "start": iso(s.started_at),
                                           "end": iso(s.finished_at) if s.finished_at is not None else None})
                 for s in sorted(own.values(), key=lambda s: (s.started_at, s.step))]
        cleanup = vm.get("pending_cleanup") or []
        vms[vm["id"]] = VmRun(state=vm["state"], phase=vm["phase"], target_id=vm["target_id"],
                              error=_error(vm["error"]), phases=spans, prechecks=_prechecks(own.get("precheck")),
                              downtime_s=_downtime(methods.get(vm["wave"], ""), own),
                              note=f"cleanup pending: {', '.join(cleanup)}" if cleanup else None)
    waves: dict[int, dict[str, Any]] = {}
    for wave in status["waves"]:
        span = _span(by_wave.get(wave["id"], []))
        waves[wave["id"]] = {"state": wave["state"], "states": wave["vms"], "hosts_added": wave["hosts_added"],
                             "actual": span}
    states: dict[str, int] = {}
    for vm in status["vms"]:
        states[vm["state"]] = states.get(vm["state"], 0) + 1
    summary = RunSummary(run_id=record.run_id, status=record.status, started_at=iso(record.created_at),
                         updated_at=iso(record.updated_at), states=dict(sorted(states.items())),
                         failed=states.get("failed", 0), hosts_added=sum(w["hosts_added"] for w in status["waves"]))
    return RunFacts(summary=summary, waves=waves, vms=vms)

