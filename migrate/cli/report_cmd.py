"""`migrate report`: one self-contained HTML file reviewing a plan and, with a journal, its run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from migrate.cli.output import command_errors, json_option
from migrate.core.errors import InputError

__all__ = ["render_report_summary", "report"]

_PathType = click.Path(dir_okay=False, path_type=Path)


def render_report_summary(data: dict[str, Any]) -> str:
    """One or two lines for people."""
    s = data["summary"]
    line = (f"report: {s['estate']['vms']} VMs, {s['plan']['waves']} waves, graph of {data['nodes']} nodes "
            f"({data['level']} level) -> {data['out']} ({data['bytes'] / 1e6:.2f} MB)")
    if s.get("run"):
        states = ", ".join(f"{k} {v}" for k, v in s["run"]["states"].items())
        line += f"\nrun {s['run']['run_id']}: {s['run']['status']} ({states})"
    return line


@click.command()
@click.option("--plan", "plan_path", type=_PathType, required=True, help="plan.yaml from `migrate plan`.")
@click.option("--inventory", "inventory_path", type=_PathType,
              help="inventory.json (default: the one the plan names, if any).")
@click.option("--flows", "flows_path", type=_PathType, help="Observed traffic (flows.csv) for the graph's edges.")
@click.option("--journal", "journal_path", type=_PathType, help="A run journal (run.db): adds what happened.")
@click.option("--run-id", help="The run of the journal to report (default: the latest).")
@click.option("--out", "out_path", type=_PathType, required=True,
              help="Where to write the report: .html (one self-contained file) or .json (the same content as data).")
@click.option("--title", help="The report's title.")
@click.option("--timestamp", is_flag=True, help="Stamp the report with the time it was made (else none: two reports "
                                                "of the same inputs are byte-identical).")
@json_option
@command_errors
def report(plan_path: Path, inventory_path: Path | None, flows_path: Path | None, journal_path: Path | None,
           run_id: str | None, out_path: Path, title: str | None, timestamp: bool, as_json: bool) -> None:
    """Write the report: summary, dependency graph by wave, wave timeline, one row per VM (one HTML file).

    With --json the report's data goes to stdout too (the same content as the file, for dashboards).
    """
    from migrate.core.fileio import atomic_write
    from migrate.report.data import build_report
    from migrate.report.html import render_html, report_json

    if run_id is not None and journal_path is None:
        raise InputError.single("--run-id", "--run-id", "goes with --journal")
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if timestamp else None
    built = build_report(plan_path, inventory=inventory_path, flows=flows_path, journal=journal_path, run_id=run_id,
                         title=title, generated_at=stamp)
    data_text = report_json(built)
    text = data_text if out_path.suffix.lower() == ".json" else render_html(built)
    atomic_write(out_path, text)
    if as_json:
        click.echo(data_text, nl=False)
        return
    data = {"summary": built.summary.model_dump(mode="json"), "nodes": len(built.graph.nodes),
            "level": built.graph.level, "out": str(out_path), "bytes": len(text.encode())}
    click.echo(render_report_summary(data))
