"""Inputs for report tests: a 40-VM lab inventory and flows, its plan, and a noop run of it in a journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from adapters.lab.estate import make_estate
from adapters.noop.estate import NoopEstate
from migrate.cli.plan_cmd import plan as plan_command
from migrate.core.errors import AdapterError
from migrate.engine import Runner
from migrate.engine.context import PhaseContext
from migrate.engine.journal import Journal
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from migrate.inventory import save_inventory
from migrate.lab.flows import flows_csv
from tests.unit.test_engine_helpers import fast_settings, registry
from tests.unit.test_graph_lab import lab_inventory

__all__ = ["lab_files", "noop_run", "run_plan_of"]


def lab_files(directory: Path, vms: int = 40, *, max_vms: int = 15, method: str = "noop") -> dict[str, Path]:
    """inventory.json, flows.csv and plan.yaml (its waves' method set to `method`) in `directory`."""
    estate = make_estate(vms, 1)
    files = {"inventory": directory / "inventory.json", "flows": directory / "flows.csv",
             "plan": directory / "plan.yaml"}
    save_inventory(lab_inventory(estate), files["inventory"])
    files["flows"].write_text(flows_csv(estate))
    result = CliRunner().invoke(plan_command, ["--inventory", str(files["inventory"]), "--flows", str(files["flows"]),
                                               "--max-vms", str(max_vms), "--out", str(files["plan"])])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(files["plan"].read_text())
    for wave in doc["waves"]:
        wave["method"] = method
    files["plan"].write_text(yaml.safe_dump(doc, sort_keys=False))
    return files


def run_plan_of(plan_file: Path) -> RunPlan:
    """The engine's plan for plan.yaml's waves (noop facts)."""
    doc: dict[str, Any] = yaml.safe_load(plan_file.read_text())
    facts = [VmFacts(id=vm, name=name, facts={"power_state": "poweredOn" if i % 4 else "poweredOff"})
             for wave in doc["waves"] for i, (vm, name) in enumerate(zip(wave["vms"], wave["vm_names"], strict=True))]
    waves = [WavePlan(id=w["id"], name=w["name"], vms=w["vms"], method=w["method"]) for w in doc["waves"]]
    return RunPlan(waves=waves, vms=facts)


def noop_run(plan_file: Path, journal: Path, *, fail: str | None = None, run_id: str = "r1") -> RunPlan:
    """Run plan.yaml with the noop method into `journal`; VM `fail` fails in `copy_disks` with an AdapterError."""
    plan = run_plan_of(plan_file)
    estate = NoopEstate(plan.vms)

    def copy_disks(ctx: PhaseContext) -> Any:
        if ctx.vm.id == fail:
            raise AdapterError("vcenter", "CopyDatastoreFile_Task", "disk copy refused: no space", retryable=False)
        return registry()["noop"]["copy_disks"](ctx)

    phases = registry(overrides={"copy_disks": copy_disks})
    with Journal(journal) as jr:
        Runner(jr, phases, adapters=estate.adapters(), settings=fast_settings()).start(plan, run_id=run_id)
    return plan
