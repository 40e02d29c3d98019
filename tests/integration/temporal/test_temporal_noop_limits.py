"""The wave's limits hold across workers: the wave workflow admits the VMs, not each worker.

The noop estate writes its effects in one order for all processes (an flock around each call), so the order
of a VM's `power_off` (before its copy starts) and its `copy` (when its copy ends) in effects.jsonl brackets
its copy: if three copies ever overlapped, three `power_off` lines would come before their `copy` lines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from migrate.lab.temporal_server import TemporalServer
from tests.integration.temporal.conftest import Workers, effects, engine, migrate, most_at_once, noop_files

pytestmark = pytest.mark.lab


def test_concurrency_2_holds_across_two_workers(temporal: TemporalServer, workers: Workers, tmp_path: Path) -> None:
    """Two workers, `--concurrency 2`, a 5-VM wave: never more than 2 VMs between power-off and copied."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-limits"), copy_seconds=0.5)
    workers.start(site)
    workers.start(site)
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", "3", "--concurrency", "2",
                     "--json", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["vms"] == {"completed": 5}
    changes = effects(tmp_path)
    assert Counter(e["effect"] for e in changes)["copy"] == 5
    assert most_at_once(changes, "power_off", "copy") == 2, [(e["effect"], e["vm"]) for e in changes]
    assert most_at_once(changes, "power_off", "mark") <= 2, [(e["effect"], e["vm"]) for e in changes]
