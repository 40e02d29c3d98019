"""How every command reports: JSON on stdout with --json, human text otherwise; errors on stderr."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from migrate.core.errors import EXIT_OPERATIONAL, InputError, MigrateError
from migrate.core.redact import redact, redact_text

__all__ = ["Reporter", "command_errors", "json_option"]

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


class Reporter:
    """Prints a command's result either as JSON or through a human formatter."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def result(self, data: Any, human: Callable[[Any], str] | None = None) -> None:
        if self.as_json:
            click.echo(json.dumps(redact(data), indent=2, default=str))
        elif human is not None:
            click.echo(redact_text(human(data)))


def _report_error(exc: MigrateError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(redact(exc.to_dict()), indent=2))
    if isinstance(exc, InputError):
        click.echo(f"error: {len(exc.problems)} problem(s) in the input:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {redact_text(str(problem))}", err=True)
    else:
        click.echo(f"error: {redact_text(str(exc))}", err=True)


def command_errors(func: F) -> F:
    """Turn MigrateError into its exit code and a clean message; no tracebacks unless MIGRATE_DEBUG=1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except MigrateError as exc:
            _report_error(exc, as_json)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("MIGRATE_DEBUG") == "1":
                traceback.print_exc()
            message = redact_text(f"{type(exc).__name__}: {exc}")
            if as_json:
                click.echo(json.dumps({"error": "InternalError", "message": message}))
            click.echo(f"internal error: {message} (set MIGRATE_DEBUG=1 for a traceback)", err=True)
            sys.exit(EXIT_OPERATIONAL)

    return wrapper  # type: ignore[return-value]
