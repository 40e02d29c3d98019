"""`migrate worker`: run the Temporal engine's workflows and phases (for `migrate run --engine temporal`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from migrate.cli.output import command_errors

__all__ = ["address_option", "engine_option", "namespace_option", "temporal_engine", "worker"]

Command = TypeVar("Command", bound=Callable[..., Any])


def engine_option(temporal_help: str) -> Callable[[Command], Command]:
    """`--engine local|temporal`; `temporal_help` says what the command does with a Temporal run."""
    return click.option("--engine", type=click.Choice(["local", "temporal"]), default="local", show_default=True,
                        help=temporal_help)


address_option = click.option("--address", help="host:port of Temporal (default: site.yaml `engine.address`, "
                                                "else 127.0.0.1:7233).")
namespace_option = click.option("--namespace", help="Temporal namespace (default: site.yaml `engine.namespace`, "
                                                    "else default).")


def temporal_engine(config_path: Path | None, address: str | None, namespace: str | None) -> Any:
    """The Temporal to read: site.yaml's `engine` (when given) with the command line's address and namespace."""
    from migrate.config import load_site_config
    from migrate.core.config import EngineConfig
    from migrate.temporal.run import engine_of

    if config_path is not None:
        return engine_of(load_site_config(config_path), address=address, namespace=namespace)
    return EngineConfig().model_copy(update={k: v for k, v in {"address": address, "namespace": namespace}.items()
                                             if v})


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="site.yaml: this worker's drivers (the vCenters and AWS it reaches) and `engine`.")
@click.option("--task-queue", "queues", multiple=True, metavar="QUEUE",
              help="A task queue to poll; repeatable (default: `engine.task_queue` and `engine.data_task_queue`). "
                   "On the control queue the worker also runs the workflows.")
@click.option("--max-activities", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Phases this process runs at once.")
@address_option
@namespace_option
@command_errors
def worker(config_path: Path, queues: tuple[str, ...], max_activities: int, address: str | None,
           namespace: str | None) -> None:
    """Run workflows and phases of Temporal runs until Ctrl-C or SIGTERM.

    Start any number, on any machines: a worker near each on-prem vCenter polling that site's data queue
    does the copying, control phases go to any worker. A worker stopped (or killed) mid-phase loses
    nothing: the phase runs again on another worker after its heartbeat timeout and finds what is done.
    Exit codes: 0 stopped, 1 Temporal unreachable, 2 bad site.yaml.
    """
    from migrate.config import load_site_config
    from migrate.temporal.run import engine_of
    from migrate.temporal.worker import run_worker

    site = load_site_config(config_path)
    engine = engine_of(site, address=address, namespace=namespace)
    chosen = list(dict.fromkeys(queues or (engine.task_queue, engine.data_queue)))
    click.echo(f"worker: Temporal {engine.address} namespace {engine.namespace}, queues {', '.join(chosen)}, "
               f"{max_activities} phases at once (Ctrl-C to stop)", err=True)
    run_worker(site.model_copy(update={"engine": engine}), queues=chosen, max_activities=max_activities)
