"""The Temporal engine's failures a user meets first, through the CLI: Temporal unreachable, an unknown run, a
queue no worker polls, a worker without the method's driver. Each ends (no hang) with the exit code and a
message that names what is wrong."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from migrate.lab.temporal_server import TemporalServer
from tests.integration.temporal.conftest import (
    Workers,
    edit_site,
    effects,
    engine,
    migrate,
    noop_files,
    wait_polling,
)

pytestmark = pytest.mark.lab

WAVE = "2"   # three VMs: infra-dns-01, infra-dns-02, infra-ldap-01
WAVE_VMS = {"uuid-infra-dns-01", "uuid-infra-dns-02", "uuid-infra-ldap-01"}


def closed_address() -> str:
    """host:port on loopback where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def error_line(stderr: str) -> str:
    """The `error:` line of a command's stderr."""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert lines, stderr[-3000:]
    return lines[0]


def test_run_with_temporal_unreachable_exits_1_naming_the_address(tmp_path: Path) -> None:
    """`run --engine temporal` with engine.address a closed port: exit 1, the error names it, no effect."""
    address = closed_address()
    plan, site = noop_files(tmp_path, {"address": address, "task_queue": "noop-closed"})
    result = migrate("run", plan, "--config", site, "--engine", "temporal", cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr[-3000:]
    line = error_line(result.stderr)
    assert address in line and "unreachable" in line
    assert effects(tmp_path) == []


def test_worker_with_temporal_unreachable_exits_1_naming_the_address(tmp_path: Path) -> None:
    """`migrate worker` against a closed port: exit 1 (not a hang), the error line names the address."""
    address = closed_address()
    _, site = noop_files(tmp_path, {"address": address, "task_queue": "noop-closed-worker"})
    result = migrate("worker", "--config", site, cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr[-3000:]
    line = error_line(result.stderr)
    assert address in line and "unreachable" in line


def test_status_of_an_unknown_run_exits_2_naming_the_run(temporal: TemporalServer, tmp_path: Path) -> None:
    """`status --engine temporal --run-id nosuch`: exit 2, the problem names the run (text and --json)."""
    _, site = noop_files(tmp_path, engine(temporal, "noop-nosuch"))
    result = migrate("status", "--engine", "temporal", "--config", site, "--run-id", "nosuch", cwd=tmp_path,
                     timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "nosuch" in result.stderr and "--run-id" in result.stderr
    as_json = migrate("status", "--engine", "temporal", "--address", temporal.address, "--run-id", "nosuch",
                      "--json", cwd=tmp_path, timeout=60)
    assert as_json.returncode == 2, as_json.stderr[-3000:]
    problems = json.loads(as_json.stdout)["problems"]
    assert [p["file"] for p in problems] == ["--run-id"] and "'nosuch'" in problems[0]["message"]


def test_data_queue_no_worker_polls_refuses_to_start_naming_the_queue(temporal: TemporalServer, workers: Workers,
                                                                      tmp_path: Path) -> None:
    """A data queue nobody polls: `run` waits a little for a worker, then exit 1 naming the queue; nothing ran."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-noqueue", data_task_queue="noop-noqueue-nobody",
                                             queue_timeout_s=3))
    workers.start(site, "--task-queue", "noop-noqueue")
    wait_polling(temporal, "noop-noqueue")
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", WAVE, "--run-id",
                     "noqueue", cwd=tmp_path, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "'noop-noqueue-nobody'" in error_line(result.stderr) and "nothing was started" in result.stderr
    assert effects(tmp_path) == []
    status = migrate("status", "--engine", "temporal", "--config", site, "--run-id", "noqueue", cwd=tmp_path,
                     timeout=60)
    assert status.returncode == 2, status.stderr[-3000:]


def test_data_queue_whose_workers_left_fails_each_vm_naming_the_queue(temporal: TemporalServer, workers: Workers,
                                                                      tmp_path: Path) -> None:
    """The data queue's only worker is gone (Temporal still lists it a while), queue_timeout_s 3: the run ends,
    exit 1, each VM's error names the queue, nothing is copied or created."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-left", data_task_queue="noop-left-data",
                                             queue_timeout_s=3))
    workers.start(site, "--task-queue", "noop-left")
    leaving = workers.start(site, "--task-queue", "noop-left-data")
    wait_polling(temporal, "noop-left", "noop-left-data")
    workers.kill(leaving)
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", WAVE, "--run-id",
                     "left", "--json", cwd=tmp_path, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and data["vms"] == {"failed": 3}
    assert set(data["failed"]) == WAVE_VMS
    assert all("'noop-left-data'" in error["message"] for error in data["failed"].values()), data["failed"]
    assert not [e for e in effects(tmp_path) if e["effect"] in ("copy", "create")]
    status = migrate("status", "--engine", "temporal", "--config", site, "--run-id", "left", "--json",
                     cwd=tmp_path, timeout=60)
    assert status.returncode == 0, status.stderr[-3000:]
    shown = json.loads(status.stdout)
    assert shown["status"] == "failed"
    assert {vm["state"] for vm in shown["vms"]} == {"failed"} and {vm["phase"] for vm in shown["vms"]} == {"copy_disks"}
    assert all("'noop-left-data'" in vm["error"]["message"] for vm in shown["vms"])


def test_control_queue_no_worker_polls_ends_the_run_naming_the_queue(temporal: TemporalServer,
                                                                     tmp_path: Path) -> None:
    """No worker polls engine.task_queue, queue_timeout_s 3: `run` ends with exit 1 naming the queue, no effect
    (it waits for a worker at most queue_timeout_s, here 3 s)."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-noctl", queue_timeout_s=3))
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", WAVE, cwd=tmp_path,
                     timeout=15)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "'noop-noctl'" in error_line(result.stderr)
    assert effects(tmp_path) == []


def run_with_a_worker_without_target(temporal: TemporalServer, workers: Workers, tmp_path: Path,
                                     queue: str) -> dict[str, Any]:
    """Wave 2 with one worker whose site.yaml has no `target:` (it starts: the section is optional); the result."""
    plan, site = noop_files(tmp_path, engine(temporal, queue))
    workers.start(edit_site(site, tmp_path / "worker-site.yaml", drop=("target",)))
    wait_polling(temporal, queue, f"{queue}-data")
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", WAVE, "--json",
                     cwd=tmp_path, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["status"] == "failed" and set(data["failed"]) == WAVE_VMS, data
    assert effects(tmp_path) == []
    return data


def test_worker_without_the_target_section_fails_each_vm_naming_the_worker_and_role(
        temporal: TemporalServer, workers: Workers, tmp_path: Path) -> None:
    """A lone worker whose site.yaml has no `target:`: after its quick retries each VM fails in precheck, the
    message naming the worker (its host) and "no driver for target", so the user knows which one to fix."""
    data = run_with_a_worker_without_target(temporal, workers, tmp_path, "noop-notarget")
    for error in data["failed"].values():
        assert error["type"] == "WorkerSetup" and "no driver for target" in error["message"], error
        assert socket.gethostname() in error["message"], error
