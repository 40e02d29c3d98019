"""`migrate plan`: plan migration waves from an inventory (or a graph) and constraints, write plan.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.hint_options import hint_options, parse_hint_options
from migrate.cli.output import Reporter, command_errors, json_option
from migrate.core.errors import InputError, Problem

__all__ = ["load_planning_graph", "plan", "render_plan_summary", "source_options"]

_PathType = click.Path(dir_okay=False, path_type=Path)


def source_options(func: Any) -> Any:
    """--inventory [--flows] [--links] [--hints ...] | --graph: where the dependency graph comes from."""
    func = hint_options(func)
    for option in reversed([
        click.option("--inventory", "inventory_path", type=_PathType,
                     help="inventory.json from `migrate discover` or `migrate import`."),
        click.option("--flows", "flows_path", type=_PathType, help="Observed traffic (flows.csv), with --inventory."),
        click.option("--links", "links_path", type=_PathType, help="Declared links (links.yaml), with --inventory."),
        click.option("--graph", "graph_path", type=_PathType,
                     help="A graph from `migrate graph` (.json) or any GraphML, instead of --inventory."),
    ]):
        func = option(func)
    return func


def load_planning_graph(inventory_path: Path | None, flows_path: Path | None, links_path: Path | None,
                        graph_path: Path | None, problems: list[Problem], *, hints: str | None = None,
                        hint_weights: tuple[str, ...] = (), hint_max_group: int = 50,
                        loaded: dict[str, Any] | None = None) -> tuple[Any, dict[str, str | None]]:
    """The dependency graph and its source file names (and hints used); problems are appended, (None, ...) when it
    cannot load. `loaded` receives the inputs read (`inventory`, `flows`, `links`)."""
    from migrate.inventory import load_inventory
    from planners import build_graph, load_flows, load_links, read_graph

    source: dict[str, str | None] = {"inventory": str(inventory_path) if inventory_path else None,
                                     "flows": str(flows_path) if flows_path else None,
                                     "links": str(links_path) if links_path else None,
                                     "graph": str(graph_path) if graph_path else None}
    if (inventory_path is None) == (graph_path is None):
        problems.append(Problem("--inventory", "--inventory/--graph", "give exactly one of --inventory or --graph"))
        return None, source
    hint_config = parse_hint_options(hints, hint_weights, hint_max_group, problems)
    if hint_config is not None:
        source["hints"] = hint_config.describe()
    if graph_path is not None:
        for name, value in (("--flows", flows_path), ("--links", links_path), ("--hints", hints)):
            if value is not None:
                problems.append(Problem(name, name, "goes with --inventory, not --graph (the graph already has them)"))
        try:
            return read_graph(graph_path), source
        except InputError as exc:
            problems.extend(exc.problems)
            return None, source
    loaded = {} if loaded is None else loaded
    for key, path, loader in (("inventory", inventory_path, load_inventory), ("flows", flows_path, load_flows),
                              ("links", links_path, load_links)):
        if path is not None:
            try:
                loaded[key] = loader(path)
            except InputError as exc:
                problems.extend(exc.problems)
    if "inventory" not in loaded or len(loaded) < sum(p is not None for p in (inventory_path, flows_path, links_path)):
        return None, source
    try:
        return build_graph(loaded["inventory"], loaded.get("flows"), loaded.get("links"), hints=hint_config), source
    except InputError as exc:
        problems.extend(exc.problems)
        return None, source


def _window(wave: dict[str, Any]) -> str:
    window = wave.get("window")
    return f"  {window['start']} .. {window['end']}" if window else ""


def render_plan_summary(data: dict[str, Any]) -> str:
    """The plan as a few lines for people."""
    m = data["metrics"]
    lines = [f"plan: {data['vms']} VMs in {m['waves']} waves (lower bound {m['lower_bound']}) -> {data['out']}"]
    for wave in data["waves"]:
        size = wave["size"]
        lines.append(f"  {wave['name']}: {size['vms']:>5} VMs {size['gb']:>10.0f} GB {size['vcpu']:>6} vCPU"
                     f"{_window(wave)}")
    lines.append(f"cut: {m['cut_weight']:.1f} of {m['total_weight']:.1f} ({100 * m['cut_fraction']:.1f}%) of the "
                 f"dependency weight crosses waves; exposure {m['exposure']:.3f} waves per unit of weight")
    if data["excluded"]:
        lines.append(f"excluded: {len(data['excluded'])} VMs ("
                     + ", ".join(f"{e.get('name') or e['id']}: {e['reason']}" for e in data["excluded"][:5])
                     + (", ..." if len(data["excluded"]) > 5 else "") + ")")
    lines.append(f"conflicts: none; violations: {m['violations']}")
    lines.append(_readiness_line(data.get("readiness")))
    lines += [f"warning: {w}" for w in data["warnings"]]
    return "\n".join(lines)


def _readiness_line(readiness: dict[str, Any] | None) -> str:
    from migrate.engine.readiness_notes import summary_line

    if readiness is None:
        return "readiness: not assessed (no inventory: the plan was made from --graph)"
    line = summary_line(readiness["summary"])
    if readiness["vms"]:
        line += f" ({readiness['vms']} VM(s) with notes in the plan's `readiness`)"
    if readiness["not_assessed"]:
        line += f"\n  not assessed: {', '.join(readiness['not_assessed'])} (`migrate assess` with the target's facts)"
    return line


@click.command()
@source_options
@click.option("--constraints", "constraints_path", type=_PathType,
              help="Constraints file (YAML): capacity, ramp, precedence, pins, windows, keep-apart, policy rules, "
                   "seed.")
@click.option("--max-vms", type=int, help="VMs per wave (overrides the constraints file).")
@click.option("--max-gb", type=float, help="Disk GiB per wave (overrides the constraints file).")
@click.option("--ramp", help="VM caps of the first waves, e.g. 5,15 (overrides the constraints file).")
@click.option("--seed", type=int, help="Seed of the planner's choices (overrides the constraints file).")
@click.option("--out", "out_path", type=_PathType, required=True, help="Where to write plan.yaml.")
@json_option
@command_errors
def plan(inventory_path: Path | None, flows_path: Path | None, links_path: Path | None, graph_path: Path | None,
         hints: str | None, hint_weights: tuple[str, ...], hint_max_group: int, constraints_path: Path | None,
         max_vms: int | None, max_gb: float | None, ramp: str | None, seed: int | None, out_path: Path,
         as_json: bool) -> None:
    """Plan migration waves: fewest waves, least traffic cut between them, every constraint kept."""
    from planners.plan_io import load_constraints, merge_constraints, parse_ramp, plan_document, write_plan
    from planners.plan_model import Constraints
    from planners.waves import plan_waves

    problems: list[Problem] = []
    constraints = Constraints()
    if constraints_path is not None:
        try:
            constraints = load_constraints(constraints_path)
        except InputError as exc:
            problems.extend(exc.problems)
    ramp_caps: list[int] | None = None
    if ramp is not None:
        try:
            ramp_caps = parse_ramp(ramp)
        except InputError as exc:
            problems.extend(exc.problems)
    try:
        constraints = merge_constraints(constraints, max_vms=max_vms, max_gb=max_gb, ramp=ramp_caps, seed=seed)
    except InputError as exc:
        problems.extend(exc.problems)
    loaded: dict[str, Any] = {}
    graph, source = load_planning_graph(inventory_path, flows_path, links_path, graph_path, problems, hints=hints,
                                        hint_weights=hint_weights, hint_max_group=hint_max_group, loaded=loaded)
    if problems or graph is None:
        raise InputError(problems)
    source["constraints"] = str(constraints_path) if constraints_path else None
    graph_file = source["graph"] or source["inventory"] or "graph"
    result = plan_waves(graph, constraints, constraints_file=str(constraints_path or "constraints"),
                        graph_file=graph_file, source=source)
    if "inventory" in loaded:
        from migrate.engine.readiness_context import Context
        from migrate.engine.readiness_notes import with_readiness

        result = with_readiness(result, Context.of(loaded["inventory"]))
    write_plan(result, out_path)
    document = plan_document(result)
    notes = result.readiness
    data = {"out": str(out_path), "vms": sum(len(w.vms) for w in result.waves), "metrics": document["metrics"],
            "waves": [{k: w[k] for k in ("id", "name", "size", "window") if k in w} for w in document["waves"]],
            "excluded": document["excluded"], "warnings": document["warnings"],
            "readiness": None if notes is None else {"summary": notes.summary, "vms": len(notes.vms),
                                                     "not_assessed": notes.not_assessed}}
    Reporter(as_json).result(data, render_plan_summary)
