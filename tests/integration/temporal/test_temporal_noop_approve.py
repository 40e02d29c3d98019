"""Approval hooks on the Temporal engine: the run waits (durably) until `migrate approve` answers; a refusal
fails what it guarded, alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from migrate import playbooks as shipped_playbooks
from migrate.lab.temporal_server import TemporalServer
from tests.integration.temporal.conftest import Workers, effects, engine, migrate, noop_files

pytestmark = pytest.mark.lab
WAVE = "2"   # three VMs: infra-dns-01, infra-dns-02, infra-ldap-01


def _waiting(site: Path, run_id: str, cwd: Path, kind: str, count: int, timeout: float = 60) -> dict[str, Any]:
    """The run's status once `count` waves (kind "waves") or VMs ("vms") wait for an approval."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = migrate("status", "--engine", "temporal", "--config", site, "--run-id", run_id, "--json", cwd=cwd)
        if shown.returncode == 0:
            data: dict[str, Any] = json.loads(shown.stdout)
            if sum(1 for row in data[kind] if row.get("waiting_for_approval")) >= count:
                return data
        time.sleep(0.5)
    raise AssertionError(f"no {count} {kind} waiting for an approval in {timeout} s")


def test_wave_and_vm_approvals_wait_for_migrate_approve(temporal: TemporalServer, workers: Workers,
                                                        tmp_path: Path) -> None:
    """The wave waits for its approval (nothing moves), then each VM for its own; the refused VM fails alone."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-approve"))
    book = tmp_path / "noop.yaml"
    book.write_text(Path(shipped_playbooks.__file__).with_name("noop.yaml").read_text().replace(
        "wave: {pre: [], post: []}", 'wave: {pre: [{approval: {prompt: "Start wave ${wave}?"}}], post: []}').replace(
        "vm: {pre: [], post: []}", 'vm: {pre: [{approval: {prompt: "Move ${vm_name}?"}}], post: []}'))
    workers.start(site)
    client = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config", str(site), "--engine",
                               "temporal", "--run-id", "approve", "--playbook", str(book), "--waves", WAVE, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        data = _waiting(site, "approve", tmp_path, "waves", 1)
        assert data["waves"][0]["waiting_for_approval"] == ["Start wave 2?"]
        assert not [e for e in effects(tmp_path) if e["effect"] != "power_off"] and not effects(tmp_path)
        nothing = migrate("approve", "--config", site, "--run-id", "approve", "--vm", "infra-dns-01", cwd=tmp_path)
        assert nothing.returncode == 2, nothing.stderr       # the VMs do not wait yet: the wave does
        said = migrate("approve", "--config", site, "--run-id", "approve", "--wave", WAVE, "--json", cwd=tmp_path)
        assert said.returncode == 0, said.stderr[-2000:]
        assert [d["prompt"] for d in json.loads(said.stdout)["decided"]] == ["Start wave 2?"]
        data = _waiting(site, "approve", tmp_path, "vms", 3)
        assert {row["name"]: row["waiting_for_approval"] for row in data["vms"]} == {
            name: [f"Move {name}?"] for name in ("infra-dns-01", "infra-dns-02", "infra-ldap-01")}
        refused = migrate("approve", "--config", site, "--run-id", "approve", "--vm", "infra-dns-02", "--reject",
                          cwd=tmp_path)
        assert refused.returncode == 0, refused.stderr[-2000:]
        rest = migrate("approve", "--config", site, "--run-id", "approve", cwd=tmp_path)
        assert rest.returncode == 0, rest.stderr[-2000:]
        out, err = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 1, err[-3000:]
    result = json.loads(out)
    assert "status" in result, (result, err[-3000:])
    assert result["status"] == "partial" and result["vms"] == {"completed": 2, "failed": 1}, result
    (failed,) = result["failed"].values()
    assert "not approved" in failed["message"] and "Move infra-dns-02?" in failed["message"]
    moved = {e["vm"] for e in effects(tmp_path) if e["effect"] == "create"}
    assert moved == {"uuid-infra-dns-01", "uuid-infra-ldap-01"}
