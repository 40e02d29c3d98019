"""Library verb `reconcile`: compare a run journal with what exists; with `repair`, rebuild a journal to resume from.

    from migrate.reconcile import reconcile
    result = reconcile("site.yaml", "run.db")                          # drift, per VM
    result = reconcile("site.yaml", "run.db", plan="plan.yaml", repair=True)   # after losing run.db

The journal is `healthy` (opens, holds the run), `missing` (no file), `empty` (no run) or `damaged`
(does not open or read). Without a healthy journal, `plan` is required (the VMs to look for) and is
turned into a RunPlan exactly as `migrate run` does it. A repair never overwrites a healthy journal that
agrees with what exists; otherwise the new journal is written next to J, the old file (with its -wal and
-shm) is moved aside to `J.damaged-<time>` (or `J.replaced-<time>` when it was healthy) and the new one
takes its place, all under J's runner lock (no run or resume can use J meanwhile).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.core.errors import InputError, OperationalError, Problem
from migrate.engine.journal import Journal
from migrate.engine.plan import RunPlan, plan_digest
from migrate.engine.playbook import load_playbook
from migrate.engine.reconcile import Drift, JournalView, Reality, compare, observe, provider_run_ids
from migrate.engine.reconcile_repair import VmDecision, decide, write_run
from migrate.run import load_run_plan, open_adapters

__all__ = ["ReconcileResult", "reconcile"]


@dataclass
class ReconcileResult:
    """What reconcile found (and, with repair, wrote)."""

    journal: str
    journal_state: str
    run_id: str | None
    drift: list[Drift]
    vms: list[dict[str, Any]] = field(default_factory=list)
    damage: str | None = None
    repair: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0: no drift (or repaired into a journal resume can finish); 1: drift (or VMs left failed)."""
        if self.repair is not None:
            return 1 if self.repair.get("failed") else 0
        return 1 if self.drift else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"journal": self.journal, "journal_state": self.journal_state, "damage": self.damage,
                "run_id": self.run_id, "drift": [d.to_dict() for d in self.drift], "vms": self.vms,
                "repair": self.repair}


@dataclass
class _Loaded:
    state: str
    damage: str | None = None
    view: JournalView | None = None
    plan: RunPlan | None = None
    playbooks: dict[str, Any] | None = None


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _open_journal(path: Path, run_id: str | None) -> _Loaded:
    """The journal's condition and, when healthy, the run's view, plan and playbooks."""
    if not path.exists():
        return _Loaded("missing")
    others: list[str] | None = None
    try:
        with Journal(path, create=False) as jr:
            runs = jr.runs()
            if not runs:
                return _Loaded("empty")
            if run_id is not None and run_id not in {r.run_id for r in runs}:
                others = [r.run_id for r in runs]
            else:
                record = jr.open_run(run_id)
                view = JournalView.load(jr, record.run_id, record.plan)
                return _Loaded("healthy", view=view, plan=record.plan, playbooks=dict(record.playbooks))
    except InputError as exc:  # a damaged journal names the file and the damage
        return _Loaded("damaged", damage="; ".join(str(p) for p in exc.problems))
    except (OperationalError, sqlite3.Error, ValidationError, ValueError, KeyError) as exc:
        return _Loaded("damaged", damage=f"{type(exc).__name__}: {exc}")
    raise InputError.single(str(path), "run_id", f"no run {run_id!r} in this journal (runs: {', '.join(others)})")


@contextlib.contextmanager
def _runner_lock(path: Path, *, hold: bool) -> Iterator[bool]:
    """J's runner lock (the one `migrate run` takes); yields False when a run holds it and `hold` is False."""
    if not hold and not Path(f"{path}.lock").exists():  # no run ever took it: nothing to ask, nothing to create
        yield True
        return
    if hold:
        path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if hold:
                raise OperationalError(f"{path} is in use by a running migration ({holder}): stop it first") from None
            yield False
            return
        try:
            if hold:
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()} (reconcile)\n")
                handle.flush()
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _plan_from_file(plan: str | Path, site: str | Path | SiteConfig, inventory: str | Path | None
                    ) -> tuple[RunPlan, dict[str, Any]]:
    """The RunPlan and default playbooks, built as `migrate run` builds them."""
    run_plan, _ = load_run_plan(plan, site, inventory=inventory)
    books: dict[str, Any] = {m: load_playbook(m).model_dump(mode="json") for m in sorted({w.method for w in
                                                                                       run_plan.waves})}
    return run_plan, books


def _choose_run_id(plan: RunPlan, found: dict[str, list[str]], given: str | None) -> str | None:
    """The provider's run id when it names one; else --run-id; else None (a new id)."""
    if given is not None:
        if found and given not in found:
            raise InputError.single("--run-id", "", f"the providers name run(s) {', '.join(sorted(found))} for this "
                                    f"plan's VMs, not {given!r}")
        return given
    if len(found) > 1:
        listing = "; ".join(f"{run} ({', '.join(sorted(ev)[:3])})" for run, ev in sorted(found.items()))
        raise InputError.single("--run-id", "", f"the providers name several runs for this plan's VMs: {listing}; "
                                "pick one with --run-id")
    return next(iter(found), None)


def _move_aside(path: Path, suffix: str) -> Path | None:
    """Move J (and its -wal, -shm) to J.<suffix>; the new main path, or None when there was nothing."""
    if not path.exists():
        for extra in ("-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)  # orphans of a deleted journal would join the new one
        return None
    aside = path.with_name(f"{path.name}.{suffix}")
    for extra in ("-wal", "-shm"):
        if Path(f"{path}{extra}").exists():
            os.replace(f"{path}{extra}", f"{aside}{extra}")
    os.replace(path, aside)
    return aside


def _write(path: Path, plan: RunPlan, books: dict[str, Any], run_id: str, decisions: list[VmDecision],
           view: JournalView | None) -> tuple[str, dict[int, str], Path]:
    """Write the rebuilt run to a new file beside J (closed, so complete): run id, wave states, the file."""
    temp = path.with_name(f"{path.name}.repair-{_stamp()}-{os.getpid()}")
    try:
        old = Journal(path, create=False) if view is not None else None
        try:
            with Journal(temp) as jr:
                new_id, waves = write_run(jr, plan, books, run_id, decisions, view, old)
        finally:
            if old is not None:
                old.close()
    except BaseException:
        for extra in ("", "-wal", "-shm"):
            Path(f"{temp}{extra}").unlink(missing_ok=True)
        raise
    return new_id, waves, temp


def reconcile(site: str | Path | SiteConfig, journal: str | Path, *, plan: str | Path | None = None,
              inventory: str | Path | None = None, run_id: str | None = None, repair: bool = False
              ) -> ReconcileResult:
    """Compare journal `journal` with what exists; with `repair`, rebuild it (module docstring)."""
    path = Path(journal)
    config = site if isinstance(site, SiteConfig) else load_site_config(site)
    if plan is None and not path.exists():
        raise InputError([Problem("--plan", "", f"the journal {path} does not exist: --plan (the plan the run was "
                                  "started from) is needed to know the run's VMs")])
    with _runner_lock(path, hold=repair) as free:
        loaded = _open_journal(path, run_id)
        if loaded.state == "healthy":
            assert loaded.plan is not None and loaded.playbooks is not None and loaded.view is not None
            run_plan, books = loaded.plan, loaded.playbooks
            if plan is not None:
                given, _ = _plan_from_file(plan, site, inventory)
                if plan_digest(given, books) != plan_digest(run_plan, books):
                    raise InputError.single(str(plan), "", f"this is not the plan of run {loaded.view.run_id} in "
                                            f"{path}: reconcile it without --plan, or name its own plan")
        elif plan is None:
            why = _condition(loaded)
            raise InputError([Problem("--plan", "", f"the journal {path} {why}: --plan (the plan the run was "
                                      "started from) is needed to know the run's VMs")])
        else:
            run_plan, books = _plan_from_file(plan, site, inventory)
        view = loaded.view
        with open_adapters(config) as adapters:
            reality = observe(run_plan, adapters)
            drift = compare(run_plan, view, reality)
            if loaded.state != "healthy":
                drift.insert(0, Drift(f"journal_{loaded.state}", f"the journal {path} {_condition(loaded)}"))
            result = ReconcileResult(journal=str(path), journal_state=loaded.state, damage=loaded.damage,
                                     run_id=view.run_id if view else None, drift=drift)
            if not free:
                result.drift.insert(0, Drift("run_in_progress", f"a migration is running from {path}: what it is "
                                             "doing now may show as drift"))
            found = provider_run_ids(run_plan, reality)
            if not repair:
                result.vms = _vm_rows(run_plan, view, reality)
                return result
            if loaded.state == "healthy" and not drift:
                result.repair = {"written": False, "reason": f"{path} is healthy and agrees with what exists: "
                                 "nothing to repair (left untouched)"}
                return result
            chosen = (view.run_id if view is not None else _choose_run_id(run_plan, found, run_id)
                      or f"run-{_stamp()}-{secrets.token_hex(3)}")
            decisions = decide(run_plan, chosen, adapters, reality, view, drift)
        new_id, waves, temp = _write(path, run_plan, books, chosen, decisions, view)
        aside = _move_aside(path, f"{'replaced' if loaded.state == 'healthy' else loaded.state}-{_stamp()}")
        os.replace(temp, path)
        for extra in ("-wal", "-shm"):
            if Path(f"{temp}{extra}").exists():
                os.replace(f"{temp}{extra}", f"{path}{extra}")
    counts: dict[str, int] = {}
    for decision in decisions:
        counts[decision.state] = counts.get(decision.state, 0) + 1
    result.run_id = new_id
    result.vms = [d.to_dict() for d in decisions]
    result.repair = {"written": True, "journal": str(path), "moved_aside": str(aside) if aside else None,
                     "run_id": new_id, "run_id_from": ("journal" if view is not None else "providers" if found
                                                       else "--run-id" if run_id else "new"),
                     "vms": dict(sorted(counts.items())), "waves": {str(k): v for k, v in waves.items()},
                     "failed": [d.vm for d in decisions if d.state == "failed"]}
    return result


def _condition(loaded: _Loaded) -> str:
    return {"missing": "does not exist", "empty": "holds no run"}.get(loaded.state, f"is damaged ({loaded.damage})")


def _vm_rows(plan: RunPlan, view: JournalView | None, reality: Reality) -> list[dict[str, Any]]:
    """Per VM: the journal's state next to what exists (for the report)."""
    rows = []
    for wave in plan.waves:
        for vm_id in wave.vms:
            source = reality.sources.get(vm_id)
            row: dict[str, Any] = {"id": vm_id, "name": plan.vm_index[vm_id].name, "wave": wave.id,
                                   "method": wave.method, "journal": view.state(vm_id) if view else None,
                                   "source": None if source is None else {"name": source["name"],
                                                                           "power_state": source["power_state"],
                                                                           "marked": source["marked"]}}
            if wave.method == "cold":
                row["targets"] = [t["id"] for t in reality.targets.get(vm_id, [])]
            elif wave.method == "replatform":
                row["aws"] = [f"{r['kind']} {r['id']} (run {r['run_id']})" for r in reality.resources_of(vm_id)]
            rows.append(row)
    return rows

