"""`migrate approve`: answer the approval hooks a run of the Temporal engine waits on."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.cli.worker_cmd import address_option, namespace_option, temporal_engine

__all__ = ["approve"]


def _render(data: dict[str, Any]) -> str:
    verb = "approved" if data["approved"] else "refused"
    return "\n".join([f"run {data['run_id']}: {verb} by {data['by']}:"] +
                     [f"  wave {d['wave']}: {d['prompt']}" for d in data["decided"]])


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="site.yaml, for its `engine` section (or --address).")
@click.option("--run-id", required=True, help="The Temporal run (`migrate status --engine temporal` lists it).")
@click.option("--wave", "waves", multiple=True, type=int, help="Only this wave's approvals; repeatable.")
@click.option("--vm", "vms", multiple=True, help="Only this VM's (instanceUuid or name); repeatable.")
@click.option("--reject", is_flag=True, help="Refuse instead: a blocking approval then fails its wave or VM.")
@address_option
@namespace_option
@json_option
@command_errors
def approve(config_path: Path | None, run_id: str, waves: tuple[int, ...], vms: tuple[str, ...], reject: bool,
            address: str | None, namespace: str | None, as_json: bool) -> None:
    """Approve (or --reject) what a run of `migrate run --engine temporal` waits on: its playbook's approval hooks.

    Without --wave or --vm every approval the run waits on now is answered; `migrate status --engine temporal`
    shows them (waiting_for_approval). The decision is recorded in the run's history with who gave it.
    Exit 2 when nothing waits for an approval.
    """
    from migrate.temporal.run_view import decide_approvals

    data = decide_approvals(temporal_engine(config_path, address, namespace), run_id, waves=waves, vms=vms,
                            approve=not reject, by=getpass.getuser())
    Reporter(as_json).result(data, _render)
