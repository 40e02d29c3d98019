"""Progress bars on a terminal, silence when piped (logs still say what happens)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["progress_bar", "progress_status"]


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable; draws a bar on stderr only when it is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda _n: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def progress_status(description: str, *, enabled: bool | None = None) -> Iterator[Callable[[str], None]]:
    """Yield an `update(phase)` callable showing a spinner with the current phase on a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda _phase: None
        return
    with Console(stderr=True).status(description) as status:
        yield lambda phase: status.update(f"{description}: {phase}")
