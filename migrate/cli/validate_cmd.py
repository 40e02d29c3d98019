"""`migrate validate`: re-check a (hand-edited) plan.yaml against the graph and the constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.cli.plan_cmd import load_planning_graph, source_options
from migrate.core.errors import InputError, Problem

__all__ = ["render_metrics", "validate"]


def render_metrics(data: dict[str, Any]) -> str:
    """The metrics of a valid plan as a few lines for people."""
    m = data["metrics"]
    lines = [f"{data['plan']}: valid: {m['waves']} waves (lower bound {m['lower_bound']}), largest "
             f"{m['max_wave_vms']} VMs / {m['max_wave_gb']:.0f} GB"]
    for wave in m["per_wave"]:
        lines.append(f"  wave {wave['wave']}: {wave['vms']:>5} VMs {wave['gb']:>10.0f} GB, "
                     f"cut {wave['cut_weight']:.1f}")
    lines.append(f"cut: {m['cut_weight']:.1f} of {m['total_weight']:.1f} ({100 * m['cut_fraction']:.1f}%); "
                 f"exposure {m['exposure']:.3f}")
    return "\n".join(lines)


@click.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
@source_options
@click.option("--constraints", "constraints_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Check against this constraints file instead of the plan's own `constraints`.")
@json_option
@command_errors
def validate(plan_path: Path, inventory_path: Path | None, flows_path: Path | None, links_path: Path | None,
             graph_path: Path | None, hints: str | None, hint_weights: tuple[str, ...], hint_max_group: int,
             constraints_path: Path | None, as_json: bool) -> None:
    """Re-check an edited plan: every VM once, must-move groups, keep-apart, capacity, ramp, precedence, windows."""
    from planners.evaluate import evaluate
    from planners.plan_io import load_constraints, load_plan

    problems: list[Problem] = []
    plan = constraints = None
    try:
        plan = load_plan(plan_path)
    except InputError as exc:
        problems.extend(exc.problems)
    if constraints_path is not None:
        try:
            constraints = load_constraints(constraints_path)
        except InputError as exc:
            problems.extend(exc.problems)
    graph, _ = load_planning_graph(inventory_path, flows_path, links_path, graph_path, problems, hints=hints,
                                   hint_weights=hint_weights, hint_max_group=hint_max_group)
    if problems or graph is None or plan is None:
        raise InputError(problems)
    graph_file = str(graph_path or inventory_path)
    if constraints is None:
        metrics = evaluate(plan, graph, constraints_file=str(plan_path), prefix="constraints.", graph_file=graph_file)
    else:
        metrics = evaluate(plan, graph, constraints, constraints_file=str(constraints_path), graph_file=graph_file)
    if metrics.violations:
        raise InputError(Problem(str(plan_path), v.field, v.message) for v in metrics.violation_list)
    Reporter(as_json).result({"plan": str(plan_path), "valid": True, "metrics": metrics.model_dump(mode="json")},
                             render_metrics)
