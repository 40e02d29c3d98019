"""--hints, --hint-weight, --hint-max-group: the dependency-hint options of graph, plan and validate."""

from __future__ import annotations

from typing import Any

import click

from migrate.core.errors import InputError, Problem

__all__ = ["hint_options", "parse_hint_options", "render_hints"]

# planners.hints.DEFAULT_HINT_WEIGHTS and DEFAULT_MAX_GROUP (a test keeps them equal; planners load lazily)
_DEFAULTS = "annotation=40, folder=20, name=20, pool=10, vapp=20"
_MAX_GROUP = 50


def hint_options(func: Any) -> Any:
    """Add the three hint options to a command (parameters hints, hint_weights, hint_max_group)."""
    for option in reversed([
        click.option("--hints", "hints", metavar="KINDS",
                     help="Soft edges between VMs sharing a VM folder, resource pool, vApp, name stem or annotation "
                          "app: a comma list of folder,pool,vapp,name,annotation, or all. Flows outweigh them."),
        click.option("--hint-weight", "hint_weights", metavar="KIND=W", multiple=True,
                     help=f"Weight of a hint kind in MiB of traffic, repeatable (defaults {_DEFAULTS}; "
                          "scaled below the lightest flow when flows are given)."),
        click.option("--hint-max-group", type=int, default=_MAX_GROUP, show_default=True,
                     help="A folder, pool, name or annotation group of more VMs than this gets no hints (reported)."),
    ]):
        func = option(func)
    return func


def parse_hint_options(hints: str | None, hint_weights: tuple[str, ...], hint_max_group: int,
                       problems: list[Problem]) -> Any:
    """planners.hints.HintOptions, or None without --hints; problems are appended."""
    from planners.hints import parse_hints

    if hints is None and hint_weights:
        problems.append(Problem("--hint-weight", "--hint-weight", "goes with --hints"))
        return None
    try:
        return parse_hints(hints, hint_weights, hint_max_group)
    except InputError as exc:
        problems.extend(exc.problems)
        return None


def render_hints(report: dict[str, Any] | None) -> list[str]:
    """The graph summary's hint lines."""
    if not report:
        return []
    kinds = ", ".join(f"{kind} {report['edges_by_kind'][kind]} edges ({report['groups_by_kind'][kind]} groups, "
                      f"weight {weight:g})" for kind, weight in report["weights"].items())
    lines = [f"hints: {kinds}"]
    if report["scale"] < 1:
        lines.append(f"hints scaled x{report['scale']:.3g}: flows outweigh them (lightest flow "
                     f"{report['lightest_flow']:g} MiB)")
    pairs = report["skipped_pairs"]
    if pairs["must_move"] or pairs["flow"]:
        lines.append(f"hint pairs left out: {pairs['must_move']} already must move together, "
                     f"{pairs['flow']} have observed flows")
    if report["skipped_group_count"]:
        shown = "; ".join(f"{s['kind']} {s['key']} ({s['size']} VMs: {s['reason']})"
                          for s in report["skipped_groups"][:5])
        more = f"; and {report['skipped_group_count'] - 5} more" if report["skipped_group_count"] > 5 else ""
        lines.append(f"hint groups skipped: {report['skipped_group_count']}: {shown}{more}")
    return lines
