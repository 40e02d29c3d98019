"""The Temporal engine's failures a user meets first, through the CLI: Temporal unreachable, an unknown run, a
queue no worker polls, a worker without the method's driver. Each ends (no hang) with the exit code and a
message that names what is wrong."""

from __future__ import annotations

import json
import socket
from pathlib import Path

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


def test_data_queue_no_worker_polls_fails_each_vm_naming_the_queue(temporal: TemporalServer, workers: Workers,
                                                                   tmp_path: Path) -> None:
    """A data queue nobody polls, queue_timeout_s 3: the run ends, exit 1, each VM's error names the queue."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-noqueue", data_task_queue="noop-noqueue-nobody",
                                             queue_timeout_s=3))
    workers.start(site, "--task-queue", "noop-noqueue")
    wait_polling(temporal, "noop-noqueue")
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", WAVE, "--run-id",
                     "noqueue", "--json", cwd=tmp_path, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and data["vms"] == {"failed": 3}
    assert set(data["failed"]) == WAVE_VMS
    assert all("'noop-noqueue-nobody'" in error["message"] for error in data["failed"].values()), data["failed"]
    assert not [e for e in effects(tmp_path) if e["effect"] in ("copy", "create")]
    status = migrate("status", "--engine", "temporal", "--config", site, "--run-id", "noqueue", "--json",
                     cwd=tmp_path, timeout=60)
    assert status.returncode == 0, status.stderr[-3000:]
    shown = json.loads(status.stdout)
    assert shown["status"] == "failed"
    assert {vm["state"] for vm in shown["vms"]} == {"failed"} and {vm["phase"] for vm in shown["vms"]} == {"copy_disks"}
    assert all("'noop-noqueue-nobody'" in vm["error"]["message"] for vm in shown["vms"])


def test_worker_without_the_target_section_fails_vms_naming_worker_and_role(temporal: TemporalServer,
                                                                           workers: Workers,
                                                                           tmp_path: Path) -> None:
    """A lone worker whose site.yaml has no `target:`: it starts, each VM fails naming the worker and the role."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-notarget"))
    worker_site = edit_site(site, tmp_path / "worker-site.yaml", drop=("target",))
    workers.start(worker_site)
    wait_polling(temporal, "noop-notarget", "noop-notarget-data")
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", WAVE, "--json",
                     cwd=tmp_path, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and set(data["failed"]) == WAVE_VMS
    for error in data["failed"].values():
        assert "no driver for target" in error["message"], error
        assert socket.gethostname() in error["message"], f"the worker is not named: {error}"
    assert effects(tmp_path) == []
