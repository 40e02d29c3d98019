"""`migrate report`: one self-contained HTML file reviewing a plan and, with a journal, its run."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from migrate.cli.output import command_errors, json_option
from migrate.cli.worker_cmd import address_option, engine_option, namespace_option
from migrate.core.errors import InputError

__all__ = ["render_report_summary", "report"]

_PathType = click.Path(dir_okay=False, path_type=Path)


def render_report_summary(data: dict[str, Any]) -> str:
    """One or two lines for people."""
    s = data["summary"]
    line = (f"report: {s['estate']['vms']} VMs, {s['plan']['waves']} waves, graph of {data['nodes']} nodes "
            f"({data['level']} level) -> {data['out']} ({data['bytes'] / 1e6:.2f} MB)")
    readiness = data.get("readiness")
    if readiness is not None:
        counts = readiness["counts"]
        line += (f"\nreadiness ({readiness['source']}): {counts['not_ready']} not ready, "
                 f"{counts['ready_with_warnings']} with warnings, {counts['ready']} ready"
                 + (f", {counts['not_assessed']} not assessed" if counts["not_assessed"] else ""))
    if s.get("run"):
        states = ", ".join(f"{k} {v}" for k, v in s["run"]["states"].items())
        line += f"\nrun {s['run']['run_id']}: {s['run']['status']} ({states})"
    return line


def _build(plan: Path, inventory: Path | None, flows: Path | None, journal: Path | None, run_id: str | None,
           title: str | None, timestamp: bool) -> Any:
    from migrate.report.data import build_report

    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if timestamp else None
    return build_report(plan, inventory=inventory, flows=flows, journal=journal, run_id=run_id, title=title,
                        generated_at=stamp)


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
@engine_option("temporal: report an ended run of `migrate run --engine temporal` (--run-id; Temporal from "
              "--config's `engine` or --address).")
@click.option("--config", "config_path", type=_PathType, help="With --engine temporal: site.yaml, for `engine`.")
@address_option
@namespace_option
@json_option
@command_errors
def report(plan_path: Path, inventory_path: Path | None, flows_path: Path | None, journal_path: Path | None,
           run_id: str | None, out_path: Path, title: str | None, timestamp: bool, engine: str,
           config_path: Path | None, address: str | None, namespace: str | None, as_json: bool) -> None:
    """Write the report: summary, dependency graph by wave, wave timeline, one row per VM (one HTML file).

    With --json the report's data goes to stdout too (the same content as the file, for dashboards).
    """
    from migrate.core.fileio import atomic_write
    from migrate.report.html import render_html, report_json

    if engine == "temporal":
        if run_id is None or journal_path is not None:
            raise InputError.single("--run-id", "--engine", "--engine temporal reports the run --run-id names "
                                                            "(no --journal)")
        with tempfile.TemporaryDirectory(prefix="migrate-report-") as tmp:
            journal = Path(tmp) / "run.db"
            from migrate.cli.worker_cmd import temporal_engine
            from migrate.temporal.run_view import import_run

            import_run(temporal_engine(config_path, address, namespace), run_id, journal)
            built = _build(plan_path, inventory_path, flows_path, journal, run_id, title, timestamp)
    else:
        if run_id is not None and journal_path is None:
            raise InputError.single("--run-id", "--run-id", "goes with --journal")
        built = _build(plan_path, inventory_path, flows_path, journal_path, run_id, title, timestamp)
    data_text = report_json(built)
    text = data_text if out_path.suffix.lower() == ".json" else render_html(built)
    atomic_write(out_path, text)
    if as_json:
        click.echo(data_text, nl=False)
        return
    data = {"summary": built.summary.model_dump(mode="json"), "nodes": len(built.graph.nodes),
            "level": built.graph.level, "out": str(out_path), "bytes": len(text.encode()),
            "readiness": built.readiness.model_dump(mode="json", include={"source", "counts"})
            if built.readiness is not None else None}
    click.echo(render_report_summary(data))
