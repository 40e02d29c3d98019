"""Policy rules on the lab: discover the seeded estate (its VMs carry `env` tags, dev or prod), plan with the
environment rules through the CLI, and find every dev VM in the first waves, no wave mixing environments."""

from __future__ import annotations

from pathlib import Path

import yaml

from migrate.inventory import load_inventory
from migrate.lab.manager import LabInfo
from planners.plan_io import load_plan
from tests.helpers import run_cli


def test_dev_waves_come_first(lab: LabInfo, tmp_path: Path) -> None:
    """discover -> plan with environment_order and no_mixed_environments hard: dev waves, then prod waves."""
    inventory = tmp_path / "inventory.json"
    assert run_cli("discover", "--config", lab.site_config, "--out", inventory).code == 0
    env = {vm.id: (vm.tags.get("env") or ["?"])[0] for vm in load_inventory(inventory).vms}
    assert set(env.values()) == {"dev", "prod"}          # what the seeded lab tags
    constraints = tmp_path / "constraints.yaml"
    constraints.write_text(yaml.safe_dump({
        "version": 1,
        "classify": {"environment": {"tag": "env"}},
        "rules": {"environment_order": {"order": ["dev", "test", "prod"], "hard": True},
                  "no_mixed_environments": {"hard": True}, "dependencies_first": {"weight": 10},
                  "application_whole": {"weight": 100}}}))
    out = tmp_path / "plan.yaml"
    result = run_cli("plan", "--inventory", inventory, "--flows", lab.directory / "flows.csv", "--constraints",
                     constraints, "--max-vms", "12", "--out", out)
    assert result.code == 0, result
    plan = load_plan(out)
    waves = [{env[vm] for vm in wave.vms} for wave in plan.waves]
    dev = sum(1 for w in waves if w == {"dev"})
    assert dev >= 1 and waves == [{"dev"}] * dev + [{"prod"}] * (len(waves) - dev)
    assert plan.metrics is not None and plan.metrics.violations == 0 and plan.metrics.rules is not None
    assert plan.metrics.rules["environment_order"].violations == 0
    assert all(w.why is not None and w.why.rules for w in plan.waves)
