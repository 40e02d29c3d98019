"""The live view of a run on a terminal: a bar per wave, the VMs in flight (phase, bytes, rate, ETA), failures.

`live_board()` draws a ProgressBoard with rich's Live display while a run (or `follow`, reading the journal
read-only) feeds it progress events. Commands use it only when stdout is a terminal and not --json.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from migrate.core.log import get_logger
from migrate.core.redact import redact_text
from migrate.engine.journal import Journal
from migrate.engine.progress import ProgressListener, RunStarted, journal_events
from migrate.progress import BoardView, ProgressBoard, VmLine, WaveLine

__all__ = ["follow", "live_board", "render", "use_live_view"]

log = get_logger(__name__)

MAX_WAVES = 8        # wave bars shown around the current wave
MAX_VMS = 15         # VMs in flight shown
MAX_FAILURES = 8     # latest failures shown
_FINAL = frozenset({"completed", "partial", "failed", "canceled", "paused", "interrupted", "rolled_back"})
_STYLE = {"completed": "green", "partial": "yellow", "failed": "red", "canceled": "yellow", "paused": "yellow",
          "interrupted": "yellow", "running": "cyan", "prechecking": "cyan"}


def use_live_view(as_json: bool) -> bool:
    """The live view is for people: stdout a terminal, no --json."""
    return not as_json and sys.stdout.isatty()


def size(n: float) -> str:
    """Bytes in binary units: 512 B, 1.5 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def duration(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def render(view: BoardView) -> RenderableType:
    """The whole view: a header line, the wave bars, the VMs in flight, the latest failures."""
    parts: list[RenderableType] = [_header(view)]
    if view.waves:
        parts.append(_waves(view))
    if view.in_flight:
        parts.append(_vms(view.in_flight))
    if view.failures:
        parts.append(_failures(view))
    return Group(*parts)


def _header(view: BoardView) -> Text:
    total = sum(w.total for w in view.waves)
    done = sum(w.done for w in view.waves)
    failed = sum(w.failed for w in view.waves)
    text = Text.assemble(("run ", "bold"), (view.run_id or "...", "bold"), ": ",
                         (view.status, _STYLE.get(view.status, "")), f"  {done}/{total} VM(s) done")
    if failed:
        text.append(f", {failed} failed", style="red")
    text.append(f"  {duration(view.elapsed)}", style="dim")
    return text


def _shown_waves(view: BoardView) -> tuple[list[WaveLine], str | None]:
    """At most MAX_WAVES bars around the current wave (or the first unfinished one), and a note of the rest."""
    waves = list(view.waves)
    if len(waves) <= MAX_WAVES:
        return waves, None
    ids = [w.id for w in waves]
    unfinished = [i for i, w in enumerate(waves) if w.state not in _FINAL]
    focus = ids.index(view.current) if view.current in ids else (unfinished[0] if unfinished else len(waves) - 1)
    start = min(max(0, focus - 2), len(waves) - MAX_WAVES)
    after = len(waves) - start - MAX_WAVES
    return waves[start:start + MAX_WAVES], f"... {start} wave(s) before, {after} after"


def _waves(view: BoardView) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, max_width=36, overflow="ellipsis")
    grid.add_column(width=30)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    shown, note = _shown_waves(view)
    for wave in shown:
        label = f"wave {wave.id}" + (f" {wave.name}" if wave.name and wave.name != f"wave {wave.id}" else "")
        state = Text(wave.state, style=_STYLE.get(wave.state, "dim"))
        if wave.failed:
            state.append(f"  {wave.failed} failed", style="red")
        grid.add_row(f"{label} ({wave.method})", ProgressBar(total=max(wave.total, 1), completed=wave.done, width=30),
                     f"{wave.done}/{wave.total}", state)
    if note:
        grid.add_row(Text(note, style="dim"), "", "", "")
    return grid


def _vms(flying: tuple[VmLine, ...]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=f"in flight: {len(flying)}",
                  title_justify="left", title_style="bold")
    table.add_column("VM", no_wrap=True, max_width=32, overflow="ellipsis")
    table.add_column("wave", justify="right")
    table.add_column("phase", no_wrap=True)
    table.add_column("copied", justify="right", no_wrap=True)
    table.add_column("rate", justify="right", no_wrap=True)
    table.add_column("ETA", justify="right", no_wrap=True)
    for vm in flying[:MAX_VMS]:
        phase = (vm.phase or "") + (f" (try {vm.attempt})" if vm.attempt > 1 else "")
        table.add_row(vm.name, str(vm.wave), phase, _copied(vm), f"{size(vm.rate)}/s" if vm.rate is not None else "",
                      duration(vm.eta) if vm.eta is not None else "")
    if len(flying) > MAX_VMS:
        table.add_row(Text(f"... and {len(flying) - MAX_VMS} more", style="dim"), "", "", "", "", "")
    return table


def _copied(vm: VmLine) -> str:
    if vm.done is None:
        return ""
    if not vm.total:
        return size(vm.done)
    return f"{size(vm.done)} / {size(vm.total)} {100 * vm.done // vm.total:3d}%"


def _failures(view: BoardView) -> Text:
    shown = view.failures[-MAX_FAILURES:]
    text = Text(f"failed: {len(view.failures)}", style="bold red")
    if len(view.failures) > len(shown):
        text.append(f" (latest {len(shown)})", style="red")
    for failure in shown:
        where = f"wave {failure.wave}" + (f", {failure.phase}" if failure.phase else "")
        text.append(f"\n  x {failure.name} ({where}): ", style="red")
        text.append(redact_text(failure.error or "failed"))
    return text


@contextmanager
def live_board(console: Console | None = None, *, refresh_per_second: float = 4.0) -> Iterator[ProgressBoard]:
    """A board drawn live on `console` (stdout) until the block ends, its last frame left on screen.

    Log lines written to stderr meanwhile are printed above the view when stderr is the terminal too (else
    they stay on stderr).
    """
    board = ProgressBoard()
    with Live(console=console or Console(), get_renderable=lambda: render(board.snapshot()),
              refresh_per_second=refresh_per_second, redirect_stderr=sys.stderr.isatty()):
        yield board


def follow(journal: Path, run_id: str | None, interval: float, listener: ProgressListener, *,
           sleep: Callable[[float], None] = time.sleep) -> str:
    """Feed `listener` what the journal (read-only) holds of a run every `interval` seconds, until the run is no
    longer running or no process runs it any more (killed: `migrate resume` continues it); the run's id."""
    with Journal(journal, create=False, read_only=True) as jr:
        while True:
            events = journal_events(jr, run_id)
            for event in events:
                listener(event)
            snapshot = events[0]
            assert isinstance(snapshot, RunStarted)
            run_id = snapshot.run_id   # stay on this run if another one starts in the journal
            if snapshot.status != "running":
                return run_id
            if not jr.runner_active():
                log.warning("no process is running this run any more (killed?); `migrate resume` continues it",
                            run_id=run_id)
                return run_id
            sleep(interval)
