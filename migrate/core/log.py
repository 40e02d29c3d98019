"""structlog set-up: console output on a terminal, JSON otherwise, secrets always masked."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from migrate.core.redact import redact

__all__ = ["bind_run", "configure_logging", "get_logger"]


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    redacted: MutableMapping[str, Any] = redact(dict(event_dict))
    return redacted


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (test runners and progress displays swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", *, json_logs: bool | None = None) -> None:
    """Send logs to stderr; JSON lines when stderr is not a terminal (or when asked)."""
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; `name` shows which module spoke."""
    return structlog.get_logger(name) if name else structlog.get_logger()


def bind_run(run_id: str, **extra: Any) -> None:
    """Bind `run_id` (and e.g. wave, vm) to every log line of this context."""
    structlog.contextvars.bind_contextvars(run_id=run_id, **extra)
