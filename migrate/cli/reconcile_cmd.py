"""`migrate reconcile`: compare a run journal with what exists on the providers; `--repair` rebuilds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.cli.run_cmd import DEFAULT_JOURNAL

__all__ = ["reconcile"]


def _render(data: dict[str, Any]) -> str:
    state = data["journal_state"]
    lines = [f"journal {data['journal']}: {state}" + (f" ({data['damage']})" if data.get("damage") else "")]
    if data.get("run_id"):
        lines[0] += f", run {data['run_id']}"
    drift = data["drift"]
    lines.append(f"{len(drift)} drift(s)" if drift else "no drift: the journal agrees with what exists")
    for item in drift:
        who = f"wave {item['wave']} {item['name']} ({item['vm']}): " if item.get("vm") else ""
        lines.append(f"  {who}{item['kind']}: {item['message']}")
    repair = data.get("repair")
    if repair is not None and not repair.get("written"):
        lines.append(f"repair: {repair['reason']}")
    elif repair is not None:
        counts = ", ".join(f"{n} {s}" for s, n in repair["vms"].items())
        lines.append(f"repaired: wrote {repair['journal']} (run {repair['run_id']}, id from {repair['run_id_from']}): "
                     f"{counts}")
        if repair.get("moved_aside"):
            lines.append(f"  the previous journal is now {repair['moved_aside']}")
        for vm in data["vms"]:
            lines.append(f"    {vm['name']:<28} {vm['state']:<13} {vm['why']}")
        if repair.get("failed"):
            lines.append(f"  {len(repair['failed'])} VM(s) recorded failed: fix what the reason says, then "
                         "`migrate resume --retry-failed`")
        lines.append(f"next: migrate resume --config {data['config']} --journal {repair['journal']}")
    return "\n".join(lines)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="site.yaml: the source and target vCenters (and AWS for re-platform waves).")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_JOURNAL,
              show_default=True, help="The run journal to check (or to rebuild with --repair).")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False, path_type=Path),
              help="plan.yaml the run was started from: required when the journal is missing or damaged.")
@click.option("--inventory", "inventory_path", type=click.Path(dir_okay=False, path_type=Path),
              help="inventory.json (default: the one the plan was made from).")
@click.option("--run-id", help="The run of the journal (default: the latest); with --repair of a lost journal, the "
                               "id for the rebuilt run when the providers name none.")
@click.option("--repair", is_flag=True, help="Rebuild a journal that `migrate resume` can finish the run from.")
@json_option
@command_errors
def reconcile(config_path: Path, journal_path: Path, plan_path: Path | None, inventory_path: Path | None,
              run_id: str | None, repair: bool, as_json: bool) -> None:
    """Compare a run journal with what exists: target VMs, source marks and power, AWS resources of the run.

    Lists every drift per VM (completed without a target, a target the journal does not know, two
    targets for one source, a source marked while the journal says pending, AWS resources of the run
    the journal does not hold, ...). With --repair, writes a journal that `migrate resume` finishes the
    run from without doing anything twice (a lost or damaged journal needs --plan); a damaged journal
    is moved aside to J.damaged-<time>, a healthy one that agrees with what exists is left untouched.

    Exit codes: 0 no drift (or repaired), 1 drift (or VMs the repair had to record failed), 2 bad input.
    """
    from migrate.reconcile import reconcile as api

    result = api(config_path, journal_path, plan=plan_path, inventory=inventory_path, run_id=run_id, repair=repair)
    Reporter(as_json).result({**result.to_dict(), "config": str(config_path)}, _render)
    if result.exit_code:
        raise SystemExit(result.exit_code)
