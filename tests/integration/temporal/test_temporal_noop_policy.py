"""A wave's failure policy on the Temporal engine, through the CLI: `--policy stop` stops the wave at its first
failed VM, skips the rest of it and starts no later wave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.lab.temporal_server import TemporalServer
from tests.integration.temporal.conftest import Workers, effects, engine, migrate, noop_files

pytestmark = pytest.mark.lab

FAILING = "uuid-infra-dns-01"   # the first VM of wave 2
REST = {"uuid-infra-dns-02", "uuid-infra-ldap-01"}
WAVE3 = {"uuid-reporting-db-01", "uuid-reporting-web-01", "uuid-shop-app-01", "uuid-shop-db-01", "uuid-shop-web-01"}


def test_policy_stop_fails_the_wave_skips_the_rest_and_starts_no_later_wave(temporal: TemporalServer,
                                                                           workers: Workers, tmp_path: Path) -> None:
    """A VM failing verify under `--policy stop`: its wave fails, the rest skipped, wave 3 never starts."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-stop"))
    # two target VMs already made for FAILING (a duplicate): its verify fails, "2 target VMs for source"
    (tmp_path / "effects.jsonl").write_text("".join(
        json.dumps({"effect": "create", "vm": FAILING, "target": f"vm-{n}", "name": "dup"}) + "\n" for n in (1, 2)))
    workers.start(site)
    workers.start(site)
    result = migrate("run", plan, "--config", site, "--engine", "temporal", "--waves", "2,3", "--policy", "stop",
                     "--concurrency", "1", "--run-id", "stop", "--json", cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and data["waves"] == {"2": "failed", "3": "pending"}, data
    assert set(data["failed"]) == {FAILING} and "2 target VMs" in data["failed"][FAILING]["message"]
    assert data["vms"] == {"failed": 1, "skipped": 2, "pending": 5}, data["vms"]
    touched = {e["vm"] for e in effects(tmp_path)}
    assert touched == {FAILING}, f"VMs after the failed one were started: {touched - {FAILING}}"
    status = migrate("status", "--engine", "temporal", "--config", site, "--run-id", "stop", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr[-3000:]
    shown = json.loads(status.stdout)
    assert shown["status"] == "failed"
    assert [(w["id"], w["state"]) for w in shown["waves"]] == [(2, "failed"), (3, "pending")]
    states = {vm["id"]: vm["state"] for vm in shown["vms"]}
    assert states == {FAILING: "failed"} | dict.fromkeys(REST, "skipped") | dict.fromkeys(WAVE3, "pending"), states
