"""Fixtures of the Temporal engine's tests: a dev server on loopback, `migrate worker` processes, noop estates."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from migrate.lab.temporal_server import TemporalServer, engine_section, launch_temporal, temporal_binary, wait_serving
from tests.unit.fuzz_bases import bases

MIGRATE = [sys.executable, "-m", "migrate"]


@pytest.fixture(scope="package")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """One dev server for the package's tests (each test uses its own run ids and task queues)."""
    directory = tmp_path_factory.mktemp("temporal")
    server = launch_temporal(directory, temporal_binary())
    try:
        wait_serving(server)
        yield server
    finally:
        server.process.stop()


@dataclass
class Workers:
    """`migrate worker` processes started by a test; stopped (SIGKILL) at its end."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, site: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        out = (log or site.parent / f"worker-{len(self.processes)}.log").open("wb")
        proc = subprocess.Popen([*MIGRATE, "worker", "--config", str(site), *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=site.parent, start_new_session=True)
        self.processes.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.processes:
            self.kill(proc)


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    try:
        yield started
    finally:
        started.stop_all()


def engine(server: TemporalServer, queue: str, **extra: Any) -> dict[str, Any]:
    """site.yaml `engine` on `server` with the control queue `queue` and the data queue `queue`-data."""
    return {**engine_section(server.address), "task_queue": queue, "data_task_queue": f"{queue}-data", **extra}


def noop_files(directory: Path, engine_doc: dict[str, Any], *, copy_seconds: float = 0.0) -> tuple[Path, Path]:
    """plan.yaml (every wave `noop`), inventory.json and site.yaml (noop driver, shared effects file)."""
    base = bases()
    (directory / "inventory.json").write_text(json.dumps(base.inventory))
    plan = dict(base.plan)
    plan["waves"] = [{k: v for k, v in w.items() if k != "window"} | {"method": "noop"} for w in plan["waves"]]
    plan["source"] = {**plan.get("source", {}), "inventory": "inventory.json"}
    (directory / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    vms = base.inventory["vms"]
    noop = {"driver": "noop", "effects_file": "effects.jsonl", "copy_seconds": copy_seconds}
    site = {"version": 1, "source": noop, "target": noop, "engine": engine_doc,
            "mappings": {"networks": {n.get("network") or "": "seg" for vm in vms for n in vm["nics"]},
                         "datastores": {d["datastore"]: "ds" for vm in vms for d in vm["disks"]}}}
    (directory / "site.yaml").write_text(yaml.safe_dump(site))
    return directory / "plan.yaml", directory / "site.yaml"


def effects(directory: Path) -> list[dict[str, Any]]:
    path = directory / "effects.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def migrate(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MIGRATE, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# -- for test_temporal_noop_*.py: clients in the background, site.yaml edits, effects' order --------------------

@dataclass
class Clients:
    """`migrate` commands started in the background by a test (own session, output in files); killed at its end."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str | Path, cwd: Path, name: str) -> subprocess.Popen[bytes]:
        with (cwd / f"{name}.out").open("wb") as out, (cwd / f"{name}.err").open("wb") as err:
            proc = subprocess.Popen([*MIGRATE, *map(str, args)], stdout=out, stderr=err, cwd=cwd,
                                    start_new_session=True)
        self.processes.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def clients() -> Iterator[Clients]:
    started = Clients()
    try:
        yield started
    finally:
        started.stop_all()


def edit_site(site: Path, path: Path | None = None, *, drop: tuple[str, ...] = (), **changes: Any) -> Path:
    """site.yaml with top-level sections dropped or replaced, written to `path` (default: in place)."""
    doc = yaml.safe_load(site.read_text())
    for key in drop:
        doc.pop(key, None)
    doc.update(changes)
    out = path or site
    out.write_text(yaml.safe_dump(doc))
    return out


def effect_lines(directory: Path) -> int:
    """Whole lines in the effects file so far."""
    path = directory / "effects.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def most_at_once(changes: list[dict[str, Any]], first: str, last: str) -> int:
    """The most VMs between their `first` and `last` effect at one point of the effects file (its lines are in
    the order the estate made them, under one lock): a lower bound of the VMs in that stretch at one time."""
    open_, most = set(), 0
    for change in changes:
        if change["effect"] == first:
            open_.add(change["vm"])
            most = max(most, len(open_))
        elif change["effect"] == last:
            open_.discard(change["vm"])
    return most


async def _pollers(address: str, queue: str) -> int:
    client = await Client.connect(address)
    found = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
    return len(found.pollers)


def wait_polling(server: TemporalServer, *queues: str, workers: int = 1, timeout: float = 30) -> None:
    """Wait until `workers` pollers take activities from each of `queues` (Temporal's own task-queue view)."""
    for queue in queues:
        wait_until(lambda q=queue: asyncio.run(_pollers(server.address, q)) >= workers, timeout,
                   f"{workers} worker(s) polling {queue}")
