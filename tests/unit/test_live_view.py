"""The live run view: progress events from the runner and the journal, the board, rate/ETA, the rendering."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from migrate.cli.live_view import duration, follow, render, size
from migrate.core.errors import InputError
from migrate.engine import Journal, Runner, RunPlan
from migrate.engine.context import PhaseContext, PhaseFn
from migrate.engine.methods import get_method
from migrate.engine.progress import (
    EBS_BLOCK,
    NO_PROGRESS,
    BytesCopied,
    PhaseFinished,
    PhaseStarted,
    ProgressEvent,
    RunFinished,
    RunStarted,
    VmChanged,
    VmInfo,
    WaveChanged,
    WaveFinished,
    WaveInfo,
    WaveStarted,
    _VmEmitter,
    journal_events,
)
from migrate.progress import ProgressBoard, Rate, eta
from tests.unit.test_engine_helpers import _quiet_logs, fast_settings, make_plan, open_journal, wait_for

__all__ = ["_quiet_logs", "fake_phases"]


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_phases(on_phase: Callable[[PhaseContext], None] | None = None) -> dict[str, dict[str, PhaseFn]]:
    """Every phase of the noop method as a function that only returns outputs valid for all of them."""
    def phase(ctx: PhaseContext) -> Mapping[str, Any]:
        if on_phase is not None:
            on_phase(ctx)
        return {"power_state": "poweredOn", "target_id": f"t-{ctx.vm.id}"}

    return {"noop": {p.name: phase for p in get_method("noop").phases}}


def _snapshot(waves: list[tuple[int, list[str]]]) -> RunStarted:
    return RunStarted("r1", "running", tuple(
        WaveInfo(w, f"wave {w}", "cold", "pending", tuple(VmInfo(v, f"name-{v}", "pending") for v in vms))
        for w, vms in waves))


def test_rate_is_a_moving_average_and_eta_follows_it() -> None:
    """The rate spans about the window (an older burst drops out), a stall lowers it, a restart resets it."""
    rate = Rate(window=10.0)
    assert rate.per_second() is None
    rate.add(0.0, 0)
    rate.add(1.0, 1000)   # a fast first second...
    for t in range(2, 22):
        rate.add(float(t), 1000 + (t - 1) * 100)   # ...then 100 B/s
    assert rate.per_second() == 100.0
    assert rate.per_second(now=31.0) == 50.0       # no bytes for 10 s: half the rate over the window
    assert eta(3000, 5000, 100.0) == 20.0
    assert eta(3000, None, 100.0) is None and eta(3000, 5000, 0.0) is None and eta(3000, 5000, None) is None
    assert eta(6000, 5000, 100.0) == 0.0
    rate.add(22.0, 10)                             # a retried copy starts over
    assert rate.per_second() is None


def test_byte_counts_are_throttled_and_the_last_one_flushed() -> None:
    """Many counts within the interval send one event; the held-back last count comes on flush; a final count
    (done == total) always goes at once."""
    ticks = Ticks()
    seen: list[ProgressEvent] = []
    meter = _VmEmitter(seen.append, 1, "vm-1", interval=0.25, clock=ticks)
    for n in range(1, 101):
        meter.bytes(n * 10, 10_000)
    assert seen == [BytesCopied(1, "vm-1", 10, 10_000)]
    meter.flush()
    assert seen[-1] == BytesCopied(1, "vm-1", 1000, 10_000) and len(seen) == 2
    meter.flush()
    assert len(seen) == 2
    meter.bytes(10_000, 10_000)
    assert seen[-1] == BytesCopied(1, "vm-1", 10_000, 10_000)
    ticks.now += 0.3
    meter.bytes(20, None)
    assert seen[-1] == BytesCopied(1, "vm-1", 20, None)
    NO_PROGRESS.bytes(5, 10)   # the no-listener reporter takes any call and does nothing


def _events() -> list[ProgressEvent]:
    return [
        _snapshot([(1, ["a", "b", "c", "d"]), (2, ["e", "f"])]),
        WaveStarted(1), WaveChanged(1, "running"),
        VmChanged(1, "a", "cutting_over"), PhaseStarted(1, "a", "copy_disks"),
        VmChanged(1, "b", "cutting_over"), PhaseStarted(1, "b", "create_target_vm", attempt=2),
        PhaseStarted(1, "c", "precheck"), PhaseFinished(1, "c", "precheck", "source VM has an RDM disk"),
        VmChanged(1, "c", "failed"),
        VmChanged(1, "d", "completed"),
        BytesCopied(1, "a", 0, 4 * 1024 ** 3),
    ]


def test_board_and_view_render_waves_vms_in_flight_and_failures() -> None:
    """From a sequence of events: a bar per wave with VMs done, the VMs in flight with phase, bytes, rate and
    ETA, the failure with its phase and error."""
    ticks = Ticks()
    board = ProgressBoard(clock=ticks)
    for event in _events():
        board(event)
    ticks.now += 10
    board(BytesCopied(1, "a", 1024 ** 3, 4 * 1024 ** 3))   # 1 GiB in 10 s
    view = board.snapshot()
    assert [(w.id, w.done, w.failed, w.state) for w in view.waves] == [(1, 2, 1, "running"), (2, 0, 0, "pending")]
    assert [(vm.name, vm.phase) for vm in view.in_flight] == [("name-a", "copy_disks"), ("name-b", "create_target_vm")]
    first = view.in_flight[0]
    assert first.rate is not None and abs(first.rate - 1024 ** 3 / 10) < 1
    assert first.eta is not None and abs(first.eta - 30) < 0.01
    assert [(f.name, f.phase, f.error) for f in view.failures] == [("name-c", "precheck", "source VM has an RDM disk")]

    console = Console(record=True, width=120, color_system=None)
    console.print(render(view))
    text = console.export_text()
    assert "run r1: running  2/6 VM(s) done, 1 failed  0:10" in text
    assert "wave 1 (cold)" in text and "2/4" in text and "1 failed" in text and "wave 2 (cold)" in text
    assert "━" in text   # the bars
    row = next(line for line in text.splitlines() if "name-a" in line)
    assert "copy_disks" in row and "1.0 GiB / 4.0 GiB  25%" in row and "102.4 MiB/s" in row and "0:30" in row
    assert "create_target_vm (try 2)" in text
    assert "x name-c (wave 1, precheck): source VM has an RDM disk" in text


def test_board_follows_finishes_and_retries() -> None:
    """Finished VMs leave the table, a retried failed VM counts as not done again, the run's end shows."""
    board = ProgressBoard(clock=Ticks())
    for event in _events():
        board(event)
    board(VmChanged(1, "a", "completed"))
    board(VmChanged(1, "c", "pending"))            # resume --retry-failed
    board(PhaseFinished(1, "b", "create_target_vm"))
    view = board.snapshot()
    assert [vm.name for vm in view.in_flight] == ["name-b"]       # still cutting over
    assert (view.waves[0].done, view.waves[0].failed) == (2, 0)
    board(WaveFinished(1, "partial"))
    board(RunFinished("r1", "partial"))
    view = board.snapshot()
    assert view.status == "partial" and view.waves[0].state == "partial"


def test_many_waves_show_the_ones_around_the_current_wave() -> None:
    """With more waves than fit, the bars shown are those around the current wave, with a note of the rest."""
    board = ProgressBoard(clock=Ticks())
    board(_snapshot([(w, [f"v{w}"]) for w in range(1, 21)]))
    board(WaveStarted(12))
    console = Console(record=True, width=120, color_system=None)
    console.print(render(board.snapshot()))
    text = console.export_text()
    assert "wave 10 " in text and "wave 17 " in text and "wave 9 " not in text and "wave 18 " not in text
    assert "... 9 wave(s) before, 3 after" in text


def test_sizes_and_durations_read_well() -> None:
    """Binary units and clock-style durations."""
    assert [size(n) for n in (0, 512, 1536, 5 * 1024 ** 3)] == ["0 B", "512 B", "1.5 KiB", "5.0 GiB"]
    assert [duration(s) for s in (0, 59.6, 61, 3725)] == ["0:00", "1:00", "1:01", "1:02:05"]


def test_runner_emits_events_and_phases_report_bytes(tmp_path: Path) -> None:
    """The runner sends the run, wave, VM and phase events; a phase's byte counts reach the listener; without a
    listener the phase gets the no-op reporter."""
    seen: list[ProgressEvent] = []
    lock = threading.Lock()
    reporters = []

    def listener(event: ProgressEvent) -> None:
        with lock:
            seen.append(event)

    def copy(ctx: PhaseContext) -> None:
        reporters.append(ctx.progress)
        if ctx.phase == "copy_disks":
            ctx.progress.bytes(100, 300)
            ctx.progress.bytes(300, 300)

    plan = make_plan([2, 1])
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, fake_phases(copy), settings=fast_settings(), progress=listener).start(plan)
    assert result.status == "completed"
    assert isinstance(seen[0], RunStarted) and [w.id for w in seen[0].waves] == [1, 2]
    assert seen[-1] == RunFinished(result.run_id, "completed")
    assert [e for e in seen if isinstance(e, WaveStarted | WaveFinished)] == [
        WaveStarted(1), WaveFinished(1, "completed"), WaveStarted(2), WaveFinished(2, "completed")]
    assert WaveChanged(1, "running") in seen and VmChanged(2, "vm-0002", "completed") in seen
    assert BytesCopied(1, "vm-0000", 300, 300) in seen
    phases = 3 * len(get_method("noop").phases)
    assert sum(isinstance(e, PhaseStarted) for e in seen) == sum(isinstance(e, PhaseFinished) for e in seen) == phases
    assert NO_PROGRESS not in reporters

    reporters.clear()
    with open_journal(tmp_path / "k.db") as journal:
        Runner(journal, fake_phases(copy), settings=fast_settings()).start(plan)
    assert set(reporters) == {NO_PROGRESS}


def test_a_failing_listener_does_not_fail_the_run(tmp_path: Path) -> None:
    """A display that raises is dropped; the run completes."""
    def broken(event: ProgressEvent) -> None:
        raise RuntimeError("display broke")

    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, fake_phases(), settings=fast_settings(), progress=broken).start(make_plan([3]))
    assert result.status == "completed" and result.vms == {"completed": 3}


@contextmanager
def _run_in_background(tmp_path: Path, plan: RunPlan,
                       on_phase: Callable[[PhaseContext, Journal, threading.Event], None],
                       ) -> Iterator[tuple[Journal, Journal]]:
    """Run `plan` in a thread, its phases calling `on_phase` (which may wait on the event, set at the end);
    yield the run's journal and a read-only reader of it."""
    release = threading.Event()
    journal = Journal(tmp_path / "j.db")
    runner = Runner(journal, fake_phases(lambda ctx: on_phase(ctx, journal, release)), settings=fast_settings())
    worker = threading.Thread(target=runner.start, args=(plan,), kwargs={"run_id": "r1"})
    worker.start()
    try:
        with Journal(tmp_path / "j.db", create=False, read_only=True) as reader:
            yield journal, reader
    finally:
        release.set()
        worker.join()
        journal.close()


def _wait_for_events(reader: Journal, seen: Callable[[list[ProgressEvent]], bool]) -> None:
    """Until the journal's events of run r1 satisfy `seen` (the run may not be recorded yet)."""
    def ready() -> bool:
        try:
            return seen(journal_events(reader, "r1"))
        except InputError:
            return False
    wait_for(ready)


def test_journal_events_show_a_running_run_with_its_recorded_blocks(tmp_path: Path) -> None:
    """Read back while a run goes on: the snapshot has the VM in flight and its phase, and the EBS blocks the
    journal has for it as bytes of its disks' capacity; `follow` ends with the run."""
    plan = make_plan([2])
    disk = {"key": 2000, "capacity_bytes": 8 * EBS_BLOCK}
    plan = plan.model_copy(update={"vms": [vm.model_copy(update={"facts": {**vm.facts, "disks": [disk]}})
                                           for vm in plan.vms]})
    def upload(ctx: PhaseContext, journal: Journal, release: threading.Event) -> None:
        if ctx.phase == "copy_disks" and ctx.vm.id == "vm-0000":
            journal.record_blocks(ctx.run_id, ctx.vm.id, "2000", "snap-1", [0, 1, 2])
            release.wait(10)

    with _run_in_background(tmp_path, plan, upload) as (_, reader):
        _wait_for_events(reader, lambda events: any(isinstance(e, BytesCopied) for e in events))
        events = journal_events(reader)
    snapshot = events[0]
    assert isinstance(snapshot, RunStarted) and snapshot.status == "running"
    vm = snapshot.waves[0].vms[0]
    assert (vm.state, vm.phase) == ("cutting_over", "copy_disks")
    assert BytesCopied(1, "vm-0000", 3 * EBS_BLOCK, 8 * EBS_BLOCK) in events

    board = ProgressBoard()
    assert follow(tmp_path / "j.db", None, 0.1, board) == "r1"
    view = board.snapshot()
    assert view.status == "completed" and view.waves[0].done == 2 and not view.in_flight


def test_follow_ends_when_no_process_runs_the_run_any_more(tmp_path: Path) -> None:
    """A run left `running` by a killed runner (its journal lock is free) ends `follow`, not loops forever."""
    def hang(ctx: PhaseContext, journal: Journal, release: threading.Event) -> None:
        if ctx.phase == "copy_disks":
            release.wait(10)

    with _run_in_background(tmp_path, make_plan([1]), hang) as (journal, reader):
        _wait_for_events(reader, lambda events: isinstance(events[0], RunStarted)
                         and any(vm.phase == "copy_disks" for vm in events[0].waves[0].vms))
        assert reader.runner_active()
        journal.release_runner_lock()   # what kill -9 does to the lock; the run stays `running`
        assert not reader.runner_active()
        sleeps: list[float] = []
        assert follow(tmp_path / "j.db", None, 0.1, ProgressBoard(), sleep=sleeps.append) == "r1"
        assert sleeps == []
