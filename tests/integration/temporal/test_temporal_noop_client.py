"""The `migrate run --engine temporal` client is only a follower: killed, it re-attaches with the same --run-id;
Ctrl-C once drains the run (nothing new starts, VMs in flight finish) and ends it `canceled`."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from migrate.lab.temporal_server import TemporalServer
from tests.integration.temporal.conftest import Clients, Workers, effects, engine, migrate, noop_files, wait_until

pytestmark = pytest.mark.lab


async def _executions(address: str, workflow_id: str) -> int:
    client = await Client.connect(address)
    return len([found async for found in client.list_workflows(f"WorkflowId = '{workflow_id}'")])


def creates(directory: Path) -> Counter[str]:
    """Target VMs created per source VM, from the estate's effects."""
    return Counter(e["vm"] for e in effects(directory) if e["effect"] == "create")


def test_killed_client_reattaches_with_the_same_run_id(temporal: TemporalServer, workers: Workers, clients: Clients,
                                                       tmp_path: Path) -> None:
    """kill -9 of `run --engine temporal` mid-run; the same command follows that workflow to its end, then exits 2."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-reattach"), copy_seconds=0.5)
    workers.start(site)
    workers.start(site)
    command = ("run", plan, "--config", site, "--engine", "temporal", "--run-id", "reattach", "--json")
    first = clients.start(*command, cwd=tmp_path, name="first")
    wait_until(lambda: bool(creates(tmp_path)) or first.poll() is not None, 60, "the first target VM")
    first.kill()
    first.wait(10)
    created_before = sum(creates(tmp_path).values())
    assert created_before < 11, "the run ended before the client was killed: nothing to re-attach to"
    again = migrate(*command, cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    data = json.loads(again.stdout)
    assert data["run_id"] == "reattach" and data["status"] == "completed" and data["vms"] == {"completed": 11}
    created = creates(tmp_path)
    assert len(created) == 11 and set(created.values()) == {1}, created
    assert asyncio.run(_executions(temporal.address, "migrate-run-reattach")) == 1, "a second run workflow started"
    ended = migrate(*command, cwd=tmp_path, timeout=60)
    assert ended.returncode == 2 and "reattach" in ended.stderr and "has ended" in ended.stderr, ended.stderr[-3000:]
    assert asyncio.run(_executions(temporal.address, "migrate-run-reattach")) == 1, "the ended run started again"


def test_one_sigint_drains_the_run_and_ends_it_canceled(temporal: TemporalServer, workers: Workers,
                                                        clients: Clients, tmp_path: Path) -> None:
    """SIGINT once to the client: VMs in flight finish, no other starts, the run ends `canceled`, exit 130."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-drain"), copy_seconds=1.0)
    workers.start(site)
    client = clients.start("run", plan, "--config", site, "--engine", "temporal", "--run-id", "drain", "--waves",
                           "3,4", "--concurrency", "1", "--json", cwd=tmp_path, name="client")
    wait_until(lambda: any(e["effect"] == "power_off" for e in effects(tmp_path)) or client.poll() is not None, 60,
               "the first VM's cutover")
    client.send_signal(signal.SIGINT)
    assert client.wait(60) == 130, (tmp_path / "client.err").read_text()[-3000:]
    data = json.loads((tmp_path / "client.out").read_text())
    assert data["status"] == "canceled" and data["waves"] == {"3": "canceled", "4": "pending"}, data
    started = {e["vm"] for e in effects(tmp_path)}
    marked = {e["vm"] for e in effects(tmp_path) if e["effect"] == "mark"}
    assert started and started == marked, f"a started VM did not finish: {started - marked}"
    wave3 = {"uuid-reporting-db-01", "uuid-reporting-web-01", "uuid-shop-app-01", "uuid-shop-db-01",
             "uuid-shop-web-01"}
    assert started < wave3, f"the drain started every VM or one of wave 4: {started}"
    created = creates(tmp_path)
    assert set(created) == started and set(created.values()) == {1}, created
    status = migrate("status", "--engine", "temporal", "--config", site, "--run-id", "drain", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr[-3000:]
    shown = json.loads(status.stdout)
    assert shown["status"] == "canceled"
    states = {vm["id"]: vm["state"] for vm in shown["vms"]}
    assert {vm for vm, state in states.items() if state == "completed"} == started, states
    assert {states[vm] for vm in states if vm not in started} <= {"pending", "prechecked"}, states
    assert states["uuid-shop-db-02"] == "pending"
