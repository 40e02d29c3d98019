"""Approval hooks on the Temporal engine: the run waits (durably) until `migrate approve` answers; a refusal
fails what it guarded, alone; `migrate resume --engine temporal --retry-failed` takes that VM again."""

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


def _playbook(directory: Path, *, wave_hook: bool) -> Path:
    book = directory / "noop.yaml"
    text = Path(shipped_playbooks.__file__).with_name("noop.yaml").read_text().replace(
        "vm: {pre: [], post: []}", 'vm: {pre: [{approval: {prompt: "Move ${vm_name}?"}}], post: []}')
    if wave_hook:
        text = text.replace("wave: {pre: [], post: []}",
                            'wave: {pre: [{approval: {prompt: "Start wave ${wave}?"}}], post: []}')
    book.write_text(text)
    return book


def test_wave_and_vm_approvals_wait_for_migrate_approve(temporal: TemporalServer, workers: Workers,
                                                        tmp_path: Path) -> None:
    """The wave waits for its approval (nothing moves), then each VM for its own; the refused VM fails alone."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-approve"))
    book = _playbook(tmp_path, wave_hook=True)
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


def _background(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "migrate", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def test_resume_retry_failed_takes_the_refused_vm_again(temporal: TemporalServer, workers: Workers,
                                                        tmp_path: Path) -> None:
    """A VM refused at its approval fails the run (partial); `resume --engine temporal --retry-failed --vm` runs
    it again (its approval asked again), the others stay done: completed, each VM created once."""
    plan, site = noop_files(tmp_path, engine(temporal, "noop-retry"))
    book = _playbook(tmp_path, wave_hook=False)
    workers.start(site)
    first = _background("run", plan, "--config", site, "--engine", "temporal", "--run-id", "retry", "--playbook",
                        book, "--waves", WAVE, "--json", cwd=tmp_path)
    try:
        _waiting(site, "retry", tmp_path, "vms", 3)
        assert migrate("approve", "--config", site, "--run-id", "retry", "--vm", "infra-dns-02", "--reject",
                       cwd=tmp_path).returncode == 0
        assert migrate("approve", "--config", site, "--run-id", "retry", cwd=tmp_path).returncode == 0
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1 and json.loads(out)["vms"] == {"completed": 2, "failed": 1}, err[-3000:]
    plain = migrate("resume", "--config", site, "--engine", "temporal", "--run-id", "retry", cwd=tmp_path)
    assert plain.returncode == 2 and "--retry-failed" in plain.stderr, plain.stderr[-2000:]
    again = _background("resume", "--config", site, "--engine", "temporal", "--run-id", "retry", "--retry-failed",
                        "--vm", "infra-dns-02", "--json", cwd=tmp_path)
    try:
        data = _waiting(site, "retry", tmp_path, "vms", 1)
        assert [row["name"] for row in data["vms"] if row.get("waiting_for_approval")] == ["infra-dns-02"]
        assert migrate("approve", "--config", site, "--run-id", "retry", cwd=tmp_path).returncode == 0
        out, err = again.communicate(timeout=120)
    finally:
        if again.poll() is None:
            again.kill()
    assert again.returncode == 0, err[-3000:]
    assert json.loads(out)["status"] == "completed" and json.loads(out)["vms"] == {"completed": 3}
    created = [e["vm"] for e in effects(tmp_path) if e["effect"] == "create"]
    assert sorted(created) == sorted(["uuid-infra-dns-01", "uuid-infra-dns-02", "uuid-infra-ldap-01"])
    done = migrate("resume", "--config", site, "--engine", "temporal", "--run-id", "retry", "--retry-failed",
                   cwd=tmp_path)
    assert done.returncode == 2 and "nothing to resume" in done.stderr
