"""`migrate lab up` is idempotent, `lab down` leaves nothing behind, `--bare` scales with the stock model."""

from __future__ import annotations

import os
from pathlib import Path

from pyVmomi import vim

from adapters.vcenter.collector import read_view
from adapters.vcenter.connection import connect
from migrate.config import load_site_config
from migrate.lab.manager import LabInfo, lab_status
from tests.helpers import run_cli


def test_up_is_idempotent(lab: LabInfo) -> None:
    """A second `lab up` with the same settings finds the running lab and restarts nothing."""
    result = run_cli("lab", "up", "--dir", lab.directory, "--vms", str(lab.vms), "--seed", str(lab.seed), "--json")
    assert result.code == 0, result
    body = result.json()
    assert [p["pid"] for p in body["processes"]] == [p.pid for p in lab.processes]
    assert body["running"] is True


def test_up_with_other_settings_is_refused(lab: LabInfo) -> None:
    """Asking for a different lab in a running lab's folder is bad input, and the lab keeps running."""
    result = run_cli("lab", "up", "--dir", lab.directory, "--vms", str(lab.vms + 5))
    assert result.code == 2, result
    assert "lab down" in result.stderr
    current = lab_status(lab.directory)
    assert current is not None and current.running()


def test_status_reports_the_estate(lab: LabInfo) -> None:
    """`lab status` lists endpoints and what the estate holds."""
    result = run_cli("lab", "status", "--dir", lab.directory)
    assert result.code == 0, result
    assert f"{lab.vms} VMs" in result.stdout and "2 DRS rules" in result.stdout


def test_bare_lab_up_and_down(tmp_path: Path) -> None:
    """A bare lab holds the stock model's VMs; `lab down` stops every process and removes every file."""
    lab_dir = tmp_path / "bare"
    result = run_cli("lab", "up", "--dir", lab_dir, "--bare", "--vms", "120", "--json")
    assert result.code == 0, result
    body = result.json()
    pids = [p["pid"] for p in body["processes"]]
    config = load_site_config(lab_dir / "site.yaml")
    with connect(config.source) as session:
        assert len(list(read_view(session.si, vim.VirtualMachine, ["name"]))) == 120
    assert not (lab_dir / "flows.csv").exists()

    down = run_cli("lab", "down", "--dir", lab_dir)
    assert down.code == 0, down
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert not lab_dir.exists()
    again = run_cli("lab", "down", "--dir", lab_dir)
    assert again.code == 0 and "no lab" in again.stdout


def test_stale_state_is_replaced(tmp_path: Path) -> None:
    """If the lab's processes died (e.g. a reboot), `lab up` cleans up and starts a fresh lab."""
    lab_dir = tmp_path / "stale"
    first = run_cli("lab", "up", "--dir", lab_dir, "--vms", "10", "--json")
    assert first.code == 0, first
    for proc in first.json()["processes"]:
        os.kill(proc["pid"], 9)
    second = run_cli("lab", "up", "--dir", lab_dir, "--vms", "10", "--json")
    try:
        assert second.code == 0, second
        assert second.json()["running"] is True
        assert {p["pid"] for p in second.json()["processes"]}.isdisjoint(p["pid"] for p in first.json()["processes"])
    finally:
        run_cli("lab", "down", "--dir", lab_dir)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
