"""`migrate capacity plan|apply|release` on the lab: JSON output, dry-run, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from adapters.vcenter.connection import VCenterSession
from migrate.cli.capacity_cmd import capacity
from migrate.core.config import SiteConfig
from migrate.core.log import configure_logging
from migrate.core.models.inventory import Inventory
from migrate.lab.manager import LabInfo

from .conftest import BASE_HOSTS, cluster_host_names, live_hosts, site_with

SECRET = "esxi-Secret-7f3a9"   # a test value that must never be printed


@click.group()
def root() -> None:
    """Like `migrate`: logs on stderr (JSON), so stdout holds only the result."""
    configure_logging("info", json_logs=True)


root.add_command(capacity)


def run(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(root, ["capacity", *args], catch_exceptions=False)
    assert SECRET not in result.stdout + result.stderr
    try:
        data = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    return result.exit_code, data, result.stderr


def test_plan_and_dry_run_change_nothing(cap_lab: LabInfo, cap_inventory: tuple[Inventory, Path], ec2: Any) -> None:
    """plan --json: the lab's 3 hosts need 1 more (policy minimum 3 + 1 spare); apply --dry-run allocates nothing."""
    _, inventory = cap_inventory
    before = len(ec2.describe_hosts()["Hosts"])
    code, data, _ = run("plan", "--config", str(cap_lab.site_config), "--inventory", str(inventory), "--json")
    assert code == 0
    assert data["hosts_to_add"] == 1 and data["waves"][0]["binding"] == "policy_minimum"
    assert len(data["hosts"]) == BASE_HOSTS and data["host_type"] == "i4i.metal"
    code, data, _ = run("apply", "--config", str(cap_lab.site_config), "--inventory", str(inventory), "--dry-run",
                        "--json")
    assert code == 0
    assert data["dry_run"] and data["allocated"] == 1 and data["added"] == 0
    assert len(ec2.describe_hosts()["Hosts"]) == before


def test_apply_then_release(cap_lab: LabInfo, cap_site: SiteConfig, cap_cloud: VCenterSession,
                            cap_inventory: tuple[Inventory, Path], ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """apply adds the host moto allocated (ESXi password never printed); release --plan-tag gives it back."""
    _, inventory = cap_inventory
    config = str(cap_lab.site_config)
    monkeypatch.setenv("CAP_TEST_ESXI_PASSWORD", SECRET)
    code, data, err = run("apply", "--config", config, "--inventory", str(inventory), "--plan-tag", "cli-test",
                          "--esxi-password-env", "CAP_TEST_ESXI_PASSWORD", "--json")
    try:
        assert code == 0, err
        (wave,) = data["waves"]
        assert data["allocated"] == 1 and wave["added"] == [wave["allocated"][0]["name"]]
        assert wave["allocated"][0]["name"] in cluster_host_names(cap_cloud, cap_site)
        assert len(live_hosts(ec2, "cli-test")) == 1
    finally:
        code, data, err = run("release", "--config", config, "--plan-tag", "cli-test", "--json")
    assert code == 0, err
    assert len(data["released"]) == 1 and len(data["removed_from_cluster"]) == 1
    assert live_hosts(ec2, "cli-test") == []
    assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS


def test_bad_input_exits_2(cap_lab: LabInfo, cap_inventory: tuple[Inventory, Path], tmp_path: Path) -> None:
    """Unknown host type, malformed plan file, bad numbers: exit 2 naming the option or file and field."""
    _, inventory = cap_inventory
    config = str(cap_lab.site_config)
    code, data, _ = run("plan", "--config", config, "--inventory", str(inventory), "--host-type", "i3.metal",
                        "--json")
    assert code == 2 and data["problems"][0]["field"] == "--host-type"
    plan = tmp_path / "plan.yaml"
    plan.write_text("waves:\n  - id: 1\n    vms: not-a-list\n")
    code, data, _ = run("apply", "--config", config, "--inventory", str(inventory), "--plan", str(plan), "--json")
    assert code == 2 and data["problems"][0] == {"file": str(plan), "field": "waves[0].vms",
                                                 "message": "must be a list of VM ids"}
    code, data, _ = run("apply", "--config", config, "--inventory", str(inventory), "--spare", "-1",
                        "--provisioner", "evs", "--json")
    fields = {p["field"] for p in data["problems"]}
    assert code == 2 and fields == {"--spare", "--evs-environment", "--evs-key-name"}


def test_provider_error_exits_1(cap_lab: LabInfo, cap_inventory: tuple[Inventory, Path], tmp_path: Path) -> None:
    """The EC2 endpoint is down: exit 1 naming it, no traceback."""
    _, inventory = cap_inventory
    config = site_with(cap_lab, tmp_path, endpoint_url="https://127.0.0.1:9")
    code, data, err = run("apply", "--config", str(config), "--inventory", str(inventory), "--json")
    assert code == 1
    assert data["error"] == "AdapterError" and "127.0.0.1:9" in data["message"]
    assert "Traceback" not in err
