"""The noop driver: site.yaml picks it by `driver: noop` for both roles and `migrate run` moves a plan's VMs
through the noop method's phases with no provider at all, through the CLI as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from adapters.noop.driver import NoopSettings
from migrate.config import load_site_config
from migrate.core.drivers import Role, driver_registry
from migrate.core.errors import InputError
from tests.unit.fuzz_bases import bases

MIGRATE = [sys.executable, "-m", "migrate"]


def _files(tmp_path: Path, site_extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    base = bases()
    (tmp_path / "inventory.json").write_text(json.dumps(base.inventory))
    plan = dict(base.plan)
    plan["waves"] = [{k: v for k, v in w.items() if k != "window"} | {"method": "noop"} for w in plan["waves"]]
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    vms = base.inventory["vms"]
    site = {"version": 1, "source": {"driver": "noop", "effects_file": "effects.jsonl"},
            "target": {"driver": "noop", "effects_file": "effects.jsonl"},
            "mappings": {"networks": {n.get("network") or "": "seg" for vm in vms for n in vm["nics"]},
                         "datastores": {d["datastore"]: "ds" for vm in vms for d in vm["disks"]}},
            **(site_extra or {})}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    return tmp_path / "plan.yaml", tmp_path / "site.yaml"


def _migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MIGRATE, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_registered_with_both_roles_and_its_own_settings(tmp_path: Path) -> None:
    """Found through the migrate.drivers entry points; its section is validated by its own model."""
    driver = driver_registry()["noop"]
    assert driver.roles == {Role.SOURCE, Role.TARGET} and driver.settings is NoopSettings
    _, site_file = _files(tmp_path)
    site = load_site_config(site_file)
    assert isinstance(site.source, NoopSettings) and site.source.effects_file == tmp_path / "effects.jsonl"


def test_a_bad_section_names_its_field(tmp_path: Path) -> None:
    """A field the driver does not know, a bad value and an unknown driver are each named."""
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"version": 1, "source": {"driver": "noop", "latency": -1, "colour": "red"},
                                    "target": {"driver": "nosuch"}}))
    try:
        load_site_config(site)
    except InputError as exc:
        fields = {p.field: p.message for p in exc.problems}
    else:
        raise AssertionError("accepted")
    assert set(fields) == {"source.latency", "source.colour", "target.driver"}
    assert "unknown driver 'nosuch'" in fields["target.driver"] and "noop" in fields["target.driver"]


def test_cli_run_moves_every_vm_once_and_resume_changes_nothing(tmp_path: Path) -> None:
    """`migrate run` on the noop driver: every VM completed, one create per VM in the effects file."""
    plan, site = _files(tmp_path)
    ran = _migrate("run", str(plan), "--config", str(site), "--inventory", "inventory.json", "--journal", "run.db",
                   "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    status = json.loads(_migrate("status", "--journal", "run.db", "--json", cwd=tmp_path).stdout)
    vms = {vm["id"] for w in bases().plan["waves"] for vm in [{"id": v} for v in w["vms"]]}
    assert {v["id"] for v in status["vms"] if v["state"] == "completed"} == vms
    effects = [json.loads(line) for line in (tmp_path / "effects.jsonl").read_text().splitlines()]
    created = [e["vm"] for e in effects if e["effect"] == "create"]
    assert sorted(created) == sorted(vms)
    again = _migrate("resume", "--config", str(site), "--journal", "run.db", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len((tmp_path / "effects.jsonl").read_text().splitlines()) == len(effects)


def test_a_method_needing_a_vcenter_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """A cold wave on the noop driver fails its prechecks' port check cleanly, not with a traceback."""
    plan, site = _files(tmp_path)
    doc = yaml.safe_load(plan.read_text())
    doc["waves"] = [dict(doc["waves"][0], method="cold")]
    plan.write_text(yaml.safe_dump(doc, sort_keys=False))
    ran = _migrate("run", str(plan), "--config", str(site), "--inventory", "inventory.json", "--journal", "run.db",
                   "--no-capacity", cwd=tmp_path)
    assert ran.returncode in (1, 2) and "Traceback" not in ran.stderr, ran.stderr
