"""The live view through the real CLI: drawn under a pseudo-terminal, absent when stdout is piped.

`migrate status --watch` follows a run going on in this process (its journal read-only, as another process
would); `migrate run` moves a small plan on the noop driver (no provider at all).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from migrate.core.errors import InputError
from migrate.engine import Journal, Runner
from migrate.engine.context import PhaseContext
from migrate.engine.methods import get_method
from migrate.engine.progress import EBS_BLOCK
from tests.helpers import run_cli
from tests.unit.test_engine_helpers import _quiet_logs, fast_settings, make_plan, wait_for
from tests.unit.test_live_view import fake_phases

__all__ = ["_quiet_logs"]

MIGRATE = [sys.executable, "-m", "migrate"]
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def plain(text: str) -> str:
    """Terminal output without its escape sequences."""
    return _ESCAPES.sub("", text)


class PtyProcess:
    """The CLI with stdout on a 160x50 pseudo-terminal (stderr to a file, so logs stay out of the view)."""

    def __init__(self, *args: str | Path, cwd: Path | None = None) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50"}
        for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            env.pop(name, None)
        self.stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read and closed in finish
        self.proc = subprocess.Popen([*MIGRATE, *map(str, args)], stdin=subprocess.DEVNULL, stdout=slave,
                                     stderr=self.stderr, cwd=cwd, env=env)
        os.close(slave)
        self.master = master
        self.output = b""
        self.closed = False

    def _read(self, wait: float) -> None:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:      # EIO: every writer of the terminal is gone
            data = b""
        if data:
            self.output += data
        else:
            self.closed = True

    @property
    def text(self) -> str:
        return plain(self.output.decode(errors="replace"))

    def read_until(self, done: Callable[[str], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.text):
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"not seen in time; output so far:\n{self.text[-3000:]}")
            self._read(0.1)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Exit code, output (escapes removed) and stderr, once the command has ended."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._read(0.1)
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        self.stderr.seek(0)
        errors = self.stderr.read()
        self.stderr.close()
        return code, self.text, errors


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, threading.Event]]:
    """A run going on in this process: every VM's copy_disks records 3 EBS blocks of its 8, then waits."""
    release = threading.Event()
    plan = make_plan([3, 2])
    disk = {"key": 2000, "capacity_bytes": 8 * EBS_BLOCK}
    plan = plan.model_copy(update={"vms": [vm.model_copy(update={"facts": {**vm.facts, "disks": [disk]}})
                                           for vm in plan.vms]})
    path = tmp_path / "run.db"
    journal = Journal(path)

    def copy(ctx: PhaseContext) -> None:
        if ctx.phase == "copy_disks":
            journal.record_blocks(ctx.run_id, ctx.vm.id, "2000", "snap-1", [0, 1, 2])
            release.wait(60)

    runner = Runner(journal, fake_phases(copy), settings=fast_settings())
    worker = threading.Thread(target=runner.start, args=(plan,), kwargs={"run_id": "r1"}, daemon=True)
    worker.start()

    def recorded() -> bool:
        try:
            with Journal(path, create=False, read_only=True) as reader:
                return reader.open_run("r1") is not None
        except InputError:
            return False

    wait_for(recorded)
    try:
        yield path, release
    finally:
        release.set()
        worker.join(60)
        journal.close()


def test_status_watch_draws_the_live_view_on_a_terminal_and_nothing_of_it_piped(
        running: tuple[Path, threading.Event]) -> None:
    """On a terminal: the wave bars, the VMs in flight with their phase and the bytes the journal has, until the
    run ends. Piped, the same command waits for the end and prints the plain status only."""
    journal, release = running
    tty = PtyProcess("status", "--watch", "--interval", "0.2", "--journal", journal)
    piped = subprocess.Popen([*MIGRATE, "status", "--watch", "--interval", "0.2", "--journal", str(journal)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tty.read_until(lambda text: "copy_disks" in text and "1.5 MiB / 4.0 MiB" in text)
    finally:
        release.set()
    code, text, errors = tty.finish()
    out, err = piped.communicate(timeout=120)
    assert code == 0, errors
    assert "wave 1 (noop)" in text and "━" in text and "in flight:" in text
    assert "run r1: completed  5/5 VM(s) done" in text          # the last frame stays
    assert piped.returncode == 0, err
    assert out.startswith("run r1: completed\n") and "wave 1 wave 1 (noop): completed" in out
    for mark in ("━", "in flight", "1.5 MiB", "\x1b["):
        assert mark not in out


def test_status_interval_without_watch_is_bad_input(tmp_path: Path) -> None:
    """--interval means nothing without --watch: exit 2 naming it."""
    result = run_cli("status", "--interval", "2", "--journal", tmp_path / "run.db")
    assert result.code == 2 and "--interval" in result.stderr


def _noop_files(tmp_path: Path) -> tuple[Path, Path]:
    """plan.yaml (noop waves) + inventory.json + site.yaml on the noop driver, slowed so the view has frames."""
    pytest.importorskip("adapters.noop.driver", reason="the noop driver is not in this build")
    from tests.unit.fuzz_bases import bases

    base = bases()
    (tmp_path / "inventory.json").write_text(json.dumps(base.inventory))
    doc: dict[str, Any] = dict(base.plan)
    doc["waves"] = [{k: v for k, v in w.items() if k != "window"} | {"method": "noop"} for w in doc["waves"]]
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    vms = base.inventory["vms"]
    noop = {"driver": "noop", "effects_file": "effects.jsonl", "latency": 0.05}
    site = {"version": 1, "source": noop, "target": noop,
            "mappings": {"networks": {n.get("network") or "": "seg" for vm in vms for n in vm["nics"]},
                         "datastores": {d["datastore"]: "ds" for vm in vms for d in vm["disks"]}}}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    return tmp_path / "plan.yaml", tmp_path / "site.yaml"


def test_run_draws_the_live_view_on_a_terminal_and_nothing_of_it_piped(tmp_path: Path) -> None:
    """`migrate run` on a terminal shows the wave bars and the VMs in flight with their phase, then its result;
    piped it prints the result only."""
    plan, site = _noop_files(tmp_path)
    args: list[str | Path] = ["run", plan, "--config", site, "--inventory", "inventory.json"]
    tty = PtyProcess(*args, "--journal", "tty.db", cwd=tmp_path)
    code, text, errors = tty.finish()
    assert code == 0, errors + text[-3000:]
    assert "━" in text and "in flight:" in text
    phases = [p.name for p in get_method("noop").phases]
    assert any(re.search(rf"\s\d+\s+{name}\s", text) for name in phases), text[-3000:]   # a VM row in a frame
    assert re.search(r"wave 1 .*\(noop\)", text)
    assert "Journal: tty.db" in text

    (tmp_path / "effects.jsonl").unlink()
    result = run_cli(*args, "--journal", "piped.db", cwd=tmp_path)
    assert result.code == 0, result
    assert result.stdout.startswith("run ") and "Journal: piped.db" in result.stdout
    for mark in ("━", "in flight", "\x1b[", *phases):
        assert mark not in result.stdout
