"""The `migrate` command: a thin layer over the library verbs."""

from __future__ import annotations

import faulthandler
import logging
import os
import sys

import click

from migrate import __version__
from migrate.cli.approve_cmd import approve
from migrate.cli.assess_cmd import assess
from migrate.cli.capacity_cmd import capacity
from migrate.cli.check_cmd import check
from migrate.cli.cutover_cmd import cutover
from migrate.cli.discover_cmd import discover_command
from migrate.cli.graph_cmd import graph
from migrate.cli.import_cmd import import_group
from migrate.cli.lab_cmd import lab
from migrate.cli.plan_cmd import plan
from migrate.cli.plugins_cmd import plugins
from migrate.cli.reconcile_cmd import reconcile
from migrate.cli.report_cmd import report
from migrate.cli.run_cmd import resume, rollback, run, status
from migrate.cli.schema_cmd import schema
from migrate.cli.size_cmd import instance_types_group, size
from migrate.cli.test_cmd import test_command
from migrate.cli.validate_cmd import validate
from migrate.cli.worker_cmd import worker

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="migrate")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              show_default=True, envvar="MIGRATE_LOG_LEVEL", help="Log detail on stderr.")
@click.option("--log-json/--no-log-json", default=None,
              help="Force JSON (or console) logs; default is JSON when stderr is not a terminal.")
def cli(log_level: str, log_json: bool | None) -> None:
    """Plan and run VMware migrations to the cloud: discover, graph, plan waves, run, re-platform.

    Every command takes --json for machine output on stdout. Exit codes: 0 success,
    1 operational failure (unreachable endpoint, failed task), 2 bad input (every problem listed).
    """
    from migrate.core.log import configure_logging

    configure_logging(log_level, json_logs=log_json)


cli.add_command(lab)
cli.add_command(check)
cli.add_command(discover_command)
cli.add_command(import_group)
cli.add_command(graph)
cli.add_command(plan)
cli.add_command(assess)
cli.add_command(validate)
cli.add_command(run)
cli.add_command(resume)
cli.add_command(cutover)
cli.add_command(approve)
cli.add_command(test_command)
cli.add_command(status)
cli.add_command(rollback)
cli.add_command(reconcile)
cli.add_command(size)
cli.add_command(instance_types_group)
cli.add_command(capacity)
cli.add_command(schema)
cli.add_command(plugins)
cli.add_command(report)
cli.add_command(worker)


def main() -> None:
    faulthandler.enable()   # a fatal signal (SIGSEGV, SIGBUS...) leaves a Python traceback on stderr
    code: int | str | None = 0
    try:
        cli(prog_name="migrate")
    except SystemExit as exc:
        code = exc.code
    if "temporalio.bridge" in sys.modules:
        # The Temporal SDK's core threads can abort CPython's finalization (temporalio/sdk-python#300: "Fatal
        # Python error: PyGILState_Release"), turning exit 0/1/2 into 134: leave without it, output flushed.
        if isinstance(code, str):    # what SystemExit would print
            print(code, file=sys.stderr)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))
    raise SystemExit(code)
