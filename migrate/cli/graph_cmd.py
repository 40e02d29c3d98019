"""`migrate graph`: build the dependency graph from an inventory, observed flows and declared links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.hint_options import hint_options, parse_hint_options, render_hints
from migrate.cli.output import Reporter, command_errors, json_option
from migrate.core.errors import InputError, Problem

__all__ = ["graph", "render_graph_summary"]

_DEFAULT_APP_WEIGHT = 100.0   # planners.graph.DEFAULT_APP_WEIGHT (imported lazily to keep --help fast)


def _size(count: int) -> str:
    for power, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if count >= 2**power:
            return f"{count / 2**power:.1f} {unit}"
    return f"{count} B"


def _endpoints(label: str, info: dict[str, Any]) -> list[str]:
    if not info["count"]:
        return []
    shown = ", ".join(f"{e['endpoint']} ({e['rows']} rows, {_size(int(e['bytes']))})" for e in info["top"][:5])
    more = f", and {info['count'] - 5} more" if info["count"] > 5 else ""
    return [f"{label} endpoints: {info['count']} ({info['rows']} rows, {_size(info['bytes'])}): {shown}{more}"]


def render_graph_summary(data: dict[str, Any]) -> str:
    """The summary as a few lines for people."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in data["edges_by_kind"].items()) or "none"
    lines = [f"graph: {data['nodes']} VMs, {data['edges']} edges ({kinds}), {data['components']} connected "
             f"components -> {data['out']}"]
    largest = data["largest_group"]
    if largest:
        names = ", ".join(largest["names"][:8]) + (", ..." if largest["size"] > 8 else "")
        lines.append(f"must move together: {data['must_move_groups']} groups ({data['vms_in_groups']} VMs); "
                     f"largest {largest['size']} VMs, {largest['gb']:.0f} GB: {names}")
    else:
        lines.append("must move together: no groups")
    if data["heaviest_cross_app"]:
        links = "; ".join(f"{e['a']} ({e['a_app']}) - {e['b']} ({e['b_app']}) {e['weight']:.1f}"
                          for e in data["heaviest_cross_app"][:3])
        lines.append(f"heaviest cross-app links (weight, MiB): {links}")
    lines += render_hints(data.get("hints"))
    lines.append(f"keep-apart pairs: {data['keep_apart']}")
    for conflict in data["conflicts"]:
        lines.append(f"CONFLICT: {conflict['a_name']} and {conflict['b_name']} must stay apart "
                     f"({conflict['reason']}) but must move together ({'; '.join(conflict['joined_by'])})")
    lines += _endpoints("unknown", data["unknown_endpoints"])
    lines += _endpoints("ambiguous", data["ambiguous_endpoints"])
    lines += [f"warning: {w}" for w in data["warnings"]]
    return "\n".join(lines)


@click.command()
@click.option("--inventory", "inventory_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="inventory.json from `migrate discover` or `migrate import`.")
@click.option("--flows", "flows_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Observed traffic, flows.csv (src,dst[,dst_port,protocol,bytes,connections]).")
@click.option("--links", "links_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Declared links and keep-apart pairs (links.yaml).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the graph: .json (exact) or .graphml (yEd, Gephi).")
@click.option("--app-weight", type=click.FloatRange(min=0), default=_DEFAULT_APP_WEIGHT, show_default=True,
              help="Cost, in MiB of traffic, of separating one VM from the rest of its app tag (0: no app edges).")
@hint_options
@json_option
@command_errors
def graph(inventory_path: Path, flows_path: Path | None, links_path: Path | None, out_path: Path,
          app_weight: float, hints: str | None, hint_weights: tuple[str, ...], hint_max_group: int,
          as_json: bool) -> None:
    """Build the dependency graph: flows, app tags, DRS rules, shared disks, vApps, declared links, hints."""
    from migrate.inventory import load_inventory
    from planners import build_graph, graph_summary, load_flows, load_links, write_graph
    from planners.links import MAX_LINK_WEIGHT

    problems: list[Problem] = []
    if not 0 <= app_weight <= MAX_LINK_WEIGHT:   # also NaN and inf
        problems.append(Problem("--app-weight", "--app-weight", f"must be from 0 to {MAX_LINK_WEIGHT:g}"))
    if out_path.suffix.lower() not in (".json", ".graphml"):
        problems.append(Problem(str(out_path), "--out", "use a .json or .graphml file name"))
    hint_config = parse_hint_options(hints, hint_weights, hint_max_group, problems)
    loaded: dict[str, Any] = {}
    loaders = [("inventory", inventory_path, load_inventory), ("flows", flows_path, load_flows),
               ("links", links_path, load_links)]
    for key, path, loader in loaders:
        if path is None:
            continue
        try:
            loaded[key] = loader(path)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    built = build_graph(loaded["inventory"], loaded.get("flows"), loaded.get("links"), app_weight=app_weight,
                        hints=hint_config)
    fmt = write_graph(built, out_path)
    data = {"out": str(out_path), "format": fmt, **graph_summary(built)}
    Reporter(as_json).result(data, render_graph_summary)
