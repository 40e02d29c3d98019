"""`migrate cutover`: ask a replicating run to cut waves or VMs over now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from migrate.cli.output import Reporter, command_errors, json_option
from migrate.cli.run_cmd import journal_option, run_id_option
from migrate.cli.worker_cmd import address_option, engine_option, namespace_option, temporal_engine
from migrate.core.errors import InputError

__all__ = ["cutover"]


def _render(data: dict[str, Any]) -> str:
    asked = [f"wave {w}" for w in data["waves"]] + list(data["vms"])
    return (f"run {data['run_id']}: cutover requested for {', '.join(asked)}; the running run starts it after the "
            "VMs' current cycle (a stopped run, when resumed)")


@click.command()
@journal_option
@run_id_option
@click.option("--wave", "waves", multiple=True, type=int, help="Cut every VM of this wave over; repeatable.")
@click.option("--vm", "vms", multiple=True, help="Cut this VM (instanceUuid or name) over; repeatable.")
@engine_option("temporal: signal a running `migrate run --engine temporal` (--run-id; Temporal from --config's "
              "`engine` or --address).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="With --engine temporal: site.yaml, for its `engine` section.")
@address_option
@namespace_option
@json_option
@command_errors
def cutover(journal_path: Path, run_id: str | None, waves: tuple[int, ...], vms: tuple[str, ...], engine: str,
            config_path: Path | None, address: str | None, namespace: str | None, as_json: bool) -> None:
    """Ask a run whose waves replicate (method warm) to cut these waves or VMs over now.

    The request is journaled: the running run (or a later `migrate resume`) shuts the sources down,
    copies the last changes and starts the targets, without waiting for the wave's window or the VMs'
    `cutover_at`. Exit 2, recording nothing, for an unknown wave or VM or one that is not replicating.
    """
    from migrate import run as api

    if engine == "temporal":
        from migrate.temporal.run_view import request_cutover

        if run_id is None:
            raise InputError.single("--run-id", "", "name the Temporal run")
        Reporter(as_json).result(request_cutover(temporal_engine(config_path, address, namespace), run_id,
                                                 waves=waves, vms=vms), _render)
        return
    Reporter(as_json).result(api.request_cutover(journal_path, waves=waves, vms=vms, run_id=run_id), _render)
