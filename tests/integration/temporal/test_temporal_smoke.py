"""The Temporal engine on the noop estate, through the CLI as a user runs it: two workers move every VM once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from migrate.lab.temporal_server import TemporalServer
from tests.integration.temporal.conftest import Workers, effects, engine, migrate, noop_files

pytestmark = pytest.mark.lab


def test_two_workers_move_every_vm_once_and_status_matches(temporal: TemporalServer, workers: Workers,
                                                           tmp_path: Path) -> None:
    """`migrate run --engine temporal` completes; each VM created once; `status --engine temporal` agrees."""
    plan, site = noop_files(tmp_path, engine(temporal, "smoke"))
    workers.start(site)
    workers.start(site)
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and data["vms"] == {"completed": 11}
    created = Counter(e["vm"] for e in effects(tmp_path) if e["effect"] == "create")
    assert len(created) == 11 and set(created.values()) == {1}
    status = migrate("status", "--engine", "temporal", "--config", site, "--run-id", data["run_id"], "--json",
                     cwd=tmp_path)
    assert status.returncode == 0, status.stderr[-3000:]
    shown = json.loads(status.stdout)
    assert shown["status"] == "completed"
    assert {vm["state"] for vm in shown["vms"]} == {"completed"} and all(vm["target_id"] for vm in shown["vms"])
