"""Assemble the report's content from plan.yaml, the inventory, flows and a run journal (no provider calls).

    from migrate.report import build_report, write_report
    report = build_report("plan.yaml", inventory="inventory.json", journal="run.db")
    write_report(report, "report.html")

Every input problem is collected and raised together as InputError naming its file: an unreadable
plan, a missing inventory (given, or named by the plan), a bad flows file, a journal of another plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx

from migrate.core.errors import InputError, Problem
from migrate.core.models.inventory import Inventory
from migrate.inventory import load_inventory
from migrate.report.layout import AGGREGATE_ABOVE, LayoutVm, layout_graph
from migrate.report.model import (
    EstateSummary,
    Failure,
    PlanSummary,
    Report,
    ReportSources,
    ReportVm,
    ReportWave,
    Span,
    Summary,
    Violation,
)
from migrate.report.readiness_data import report_readiness
from migrate.report.run_data import RunFacts, read_run
from planners.evaluate import evaluate
from planners.flows import FlowTable, load_flows
from planners.graph import build_graph
from planners.plan_io import load_plan
from planners.plan_model import Plan

__all__ = ["build_report", "estate_summary", "plan_inventory_path"]


def plan_inventory_path(plan_path: Path, plan: Plan) -> Path | None:
    """The inventory the plan names (`source.inventory`), resolved like `migrate run` does, or None."""
    named = plan.source.inventory if plan.source else None
    if not named:
        return None
    candidate = Path(named)
    if not candidate.is_absolute() and not candidate.exists():
        candidate = plan_path.parent / candidate
    return candidate


def estate_summary(inventory: Inventory | None, plan: Plan) -> EstateSummary:
    """VMs, vCPU, memory and storage of the estate (the inventory's, else the plan's wave sizes)."""
    if inventory is not None:
        vms = inventory.vms
        return EstateSummary(vms=len(vms), vcpu=sum(v.cpus for v in vms), memory_mb=sum(v.memory_mb for v in vms),
                             storage_gb=round(sum(v.storage_bytes for v in vms) / 2**30, 1),
                             powered_on=sum(v.power_state == "poweredOn" for v in vms),
                             sources=[inventory.provenance.source], from_inventory=True)
    sizes = [w.size for w in plan.waves if w.size is not None]
    return EstateSummary(vms=sum(len(w.vms) for w in plan.waves) + len(plan.excluded),
                         vcpu=sum(s.vcpu for s in sizes), memory_mb=sum(s.memory_mb for s in sizes),
                         storage_gb=round(sum(s.gb for s in sizes), 1), from_inventory=False)


def _plan_summary(plan: Plan, graph: nx.Graph | None, plan_path: Path) -> PlanSummary:
    count = sum(len(w.vms) for w in plan.waves)
    base: dict[str, Any] = {"waves": len(plan.waves), "vms": count, "excluded": len(plan.excluded)}
    if graph is not None:
        m = evaluate(plan, graph, constraints_file=str(plan_path), prefix="constraints.")
        return PlanSummary(**base, lower_bound=m.lower_bound, cut_weight=m.cut_weight, total_weight=m.total_weight,
                           cut_fraction=m.cut_fraction, exposure=m.exposure, violations=m.violations,
                           violation_list=[Violation(field=v.field, message=v.message) for v in m.violation_list],
                           metrics_from="evaluated")
    if plan.metrics is not None:
        m = plan.metrics
        return PlanSummary(**base, lower_bound=m.lower_bound, cut_weight=m.cut_weight, total_weight=m.total_weight,
                           cut_fraction=m.cut_fraction, exposure=m.exposure, violations=m.violations,
                           metrics_from="plan")
    return PlanSummary(**base, metrics_from="none")


def _node_facts(graph: nx.Graph | None, inventory: Inventory | None) -> dict[str, dict[str, Any]]:
    """name, app, gb, vcpu, memory_mb per VM id, from the graph (which has them all) or the inventory."""
    if graph is not None:
        return {str(n): dict(data) for n, data in graph.nodes(data=True)}
    if inventory is None:
        return {}
    return {vm.id: {"name": vm.name, "gb": round(vm.storage_bytes / 2**30, 3), "vcpu": vm.cpus,
                    "memory_mb": vm.memory_mb} for vm in inventory.vms}


def _vm_rows(plan: Plan, facts: Mapping[str, Mapping[str, Any]], run: RunFacts | None) -> list[ReportVm]:
    rows = []
    for wave in plan.waves:
        names = wave.vm_names if wave.vm_names is not None and len(wave.vm_names) == len(wave.vms) else None
        for i, vm_id in enumerate(wave.vms):
            node = facts.get(vm_id, {})
            name = str(node.get("name") or (names[i] if names else vm_id))
            row: dict[str, Any] = {"id": vm_id, "name": name, "app": node.get("app"), "wave": wave.id,
                                   "method": wave.method, "state": "planned",
                                   "gb": float(node.get("gb") or 0.0), "vcpu": int(node.get("vcpu") or 0),
                                   "memory_mb": int(node.get("memory_mb") or 0)}
            vm_run = run.vms.get(vm_id) if run is not None else None
            if vm_run is not None:
                row.update(state=vm_run.state, phase=vm_run.phase, target_id=vm_run.target_id, error=vm_run.error,
                           prechecks=vm_run.prechecks, phases=vm_run.phases, downtime_s=vm_run.downtime_s,
                           note=vm_run.note)
            rows.append(ReportVm(**row))
    for entry in plan.excluded:
        node = facts.get(entry.id, {})
        rows.append(ReportVm(id=entry.id, name=str(node.get("name") or entry.name or entry.id), app=node.get("app"),
                             state="excluded", gb=float(node.get("gb") or 0.0), vcpu=int(node.get("vcpu") or 0),
                             memory_mb=int(node.get("memory_mb") or 0), note=f"excluded: {entry.reason}"))
    return rows


def _wave_rows(plan: Plan, rows: list[ReportVm], run: RunFacts | None) -> list[ReportWave]:
    waves = []
    for wave in plan.waves:
        mine = [r for r in rows if r.wave == wave.id]
        item: dict[str, Any] = {
            "id": wave.id, "name": wave.name, "method": wave.method, "vms": len(wave.vms),
            "gb": round(sum(r.gb for r in mine), 1) if not wave.size else wave.size.gb,
            "vcpu": sum(r.vcpu for r in mine) if not wave.size else wave.size.vcpu,
            "memory_mb": sum(r.memory_mb for r in mine) if not wave.size else wave.size.memory_mb,
            "window": Span(start=_utc(wave.window.start), end=_utc(wave.window.end)) if wave.window else None}
        if run is not None and wave.id in run.waves:
            item.update(run.waves[wave.id])
        waves.append(ReportWave(**item))
    return waves


def _utc(moment: datetime) -> str:
    return str(moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def _load(plan_path: Path, inventory_path: Path | None, flows_path: Path | None
          ) -> tuple[Plan, Inventory | None, FlowTable | None, Path | None]:
    problems: list[Problem] = []
    plan = inventory = flows = None
    try:
        plan = load_plan(plan_path)
    except InputError as exc:
        problems.extend(exc.problems)
    if inventory_path is None and plan is not None:
        inventory_path = plan_inventory_path(plan_path, plan)
        if inventory_path is not None and not inventory_path.exists():
            problems.append(Problem(str(inventory_path), "", f"no such inventory (named by {plan_path}: "
                                    "source.inventory): pass --inventory"))
            inventory_path = None
    if inventory_path is not None:
        try:
            inventory = load_inventory(inventory_path)
        except InputError as exc:
            problems.extend(exc.problems)
    if flows_path is not None:
        if inventory_path is None and plan is not None:
            problems.append(Problem("--flows", "--flows", "goes with an inventory (--inventory, or the plan's own)"))
        try:
            flows = load_flows(flows_path)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems or plan is None:
        raise InputError(problems)
    return plan, inventory, flows, inventory_path


def build_report(plan: str | Path, *, inventory: str | Path | None = None, flows: str | Path | None = None,
                 journal: str | Path | None = None, run_id: str | None = None, title: str | None = None,
                 generated_at: str | None = None, aggregate_above: int = AGGREGATE_ABOVE) -> Report:
    """The report of a plan (and, with `journal`, of its latest or named run)."""
    plan_path = Path(plan)
    loaded, inv, table, inventory_path = _load(plan_path, Path(inventory) if inventory else None,
                                               Path(flows) if flows else None)
    graph = build_graph(inv, table) if inv is not None else None
    run = read_run(Path(journal), loaded, run_id) if journal is not None else None
    rows = _vm_rows(loaded, _node_facts(graph, inv), run)
    failures = [Failure(vm=r.id, name=r.name, wave=r.wave or 0, phase=r.phase, error=r.error)
                for r in rows if r.state == "failed"]
    summary = Summary(estate=estate_summary(inv, loaded), plan=_plan_summary(loaded, graph, plan_path),
                      run=run.summary if run else None, failures=failures)
    placed = [LayoutVm(id=r.id, name=r.name, app=r.app, wave=r.wave) for r in rows]
    if graph is not None:
        seen = {r.id for r in rows}
        placed += [LayoutVm(id=str(n), name=str(d.get("name") or n), app=d.get("app"), wave=None)
                   for n, d in sorted(graph.nodes(data=True), key=lambda item: str(item[0])) if str(n) not in seen]
    view = layout_graph(placed, graph, aggregate_above=aggregate_above)
    sources = ReportSources(plan=str(plan_path), inventory=str(inventory_path) if inventory_path else None,
                            flows=str(flows) if flows else None, journal=str(journal) if journal else None,
                            run_id=run.summary.run_id if run else None)
    readiness = report_readiness(loaded, inv, {r.id: r.name for r in rows})
    return Report(title=title or f"Migration report: {plan_path.name}", generated_at=generated_at, sources=sources,
                  summary=summary, waves=_wave_rows(loaded, rows, run), vms=rows, readiness=readiness, graph=view)
