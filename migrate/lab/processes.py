"""Start lab servers as detached processes and stop exactly those (guarding against PID reuse)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from migrate.core.errors import LabError

__all__ = ["ManagedProcess", "free_port", "start_process", "wait_for_file", "wait_for_port"]


@dataclass(frozen=True)
class ManagedProcess:
    """A server the lab started: enough to find it again and to be sure it is still ours."""

    name: str
    pid: int
    start_ticks: int
    log: str

    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start_ticks

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; a no-op when the process is gone or not ours."""
        if not self.alive():
            return
        os.killpg(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
        _reap(self.pid)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time): differs if the PID was reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":   # a zombie child of ours: dead
        _reap(pid)
        return None
    return int(fields[19])


def start_process(name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
                  cwd: Path | None = None) -> ManagedProcess:
    """Start `cmd` in its own session, output to `log`, so it outlives the CLI that started it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)
    ticks = _start_ticks(proc.pid)
    if ticks is None:
        raise LabError(f"{name} exited at once; see {log}")
    return ManagedProcess(name=name, pid=proc.pid, start_ticks=ticks, log=str(log))


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_file(path: Path, proc: ManagedProcess, timeout: float) -> str:
    """Wait until `proc` writes `path`; fail early if it dies."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not proc.alive():
            raise LabError(f"{proc.name} stopped while starting; last lines of {proc.log}:\n{_tail(proc.log)}")
        if time.monotonic() > deadline:
            raise LabError(f"{proc.name} did not start within {timeout:.0f} s; see {proc.log}")
        time.sleep(0.05)
    return path.read_text().strip()


def wait_for_port(port: int, proc: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if not proc.alive():
            raise LabError(f"{proc.name} stopped while starting; last lines of {proc.log}:\n{_tail(proc.log)}")
        if time.monotonic() > deadline:
            raise LabError(f"{proc.name} did not listen on port {port} within {timeout:.0f} s; see {proc.log}")
        time.sleep(0.05)


def _tail(log: str, lines: int = 10) -> str:
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
