"""A third-party plugin (tests/plugins/migrate-example, installed into the venv) adds the `archive` method and the
`dirtarget` driver through entry points alone, and archives a wave of the lab's VMs into a directory."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from adapters.vcenter.collector import read_view
from adapters.vcenter.connection import VCenterSession
from migrate.core.drivers import Role, driver_registry
from migrate.core.errors import InputError
from migrate.engine.methods import registry
from migrate.engine.playbook import load_playbook
from migrate.lab.manager import LabInfo
from tests.helpers import CliResult

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_NAMES = re.compile(rb"archive|dirtarget|migrate_example")
PHASES = ["precheck", "export_disks", "write_manifest", "verify"]

try:
    distribution("migrate-example")
except PackageNotFoundError:
    pytestmark = pytest.mark.skip(reason="the example plugin is not installed: `bash scripts/dev.sh test` installs it "
                                         "(pip install --no-deps tests/plugins/migrate-example)")


def migrate(*args: str | Path, cwd: Path) -> CliResult:
    """The installed `migrate` console script, as a user runs it (piped: JSON logs, no progress bar)."""
    command = [str(Path(sys.executable).parent / "migrate"), *map(str, args)]
    return CliResult(subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300, check=False))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_vms(onprem: VCenterSession) -> dict[str, tuple[str, str]]:
    """instanceUuid -> (name, power state) of every source VM."""
    return {p["config.instanceUuid"]: (p["name"], str(p["runtime.powerState"]))
            for _, p in read_view(onprem.si, vim.VirtualMachine, ["name", "config.instanceUuid", "runtime.powerState"])}


def datastore_file(lab: LabInfo, path: str) -> Path:
    """Where the lab's on-prem simulator keeps '[ds] dir/file'."""
    datastore, rel = path[1:].split("] ", 1)
    return lab.directory / "datastores" / "onprem" / datastore / rel


def test_installed_not_imported_by_path() -> None:
    """The plugin is imported from where pip installed it, not from the checkout's tests/plugins."""
    import migrate_example

    installed = Path(str(distribution("migrate-example").locate_file("migrate_example/__init__.py")))
    assert Path(migrate_example.__file__).resolve() == installed.resolve()
    assert not installed.resolve().is_relative_to(ROOT / "tests"), installed


def test_entry_points_find_the_method_and_the_driver() -> None:
    """The method and the driver are entry points of the plugin, loaded by the project's own registries."""
    methods = {e.name: e.value for e in entry_points(group="migrate.methods")}
    drivers = {e.name: e.value for e in entry_points(group="migrate.drivers")}
    assert methods["archive"] == "migrate_example.method:ARCHIVE"
    assert drivers["dirtarget"] == "migrate_example.driver:DIRTARGET"
    method = registry()["archive"]
    assert [p.name for p in method.phases] == PHASES
    assert method.roles == {Role.SOURCE, Role.TARGET} and not method.grows_cluster
    assert [step.name for step in method.rollback] == ["remove_archive"]
    assert driver_registry()["dirtarget"].roles == {Role.TARGET}


def test_the_method_ships_its_own_playbook() -> None:
    """The engine loads the method's default playbook from the plugin's package data, by method or resource."""
    book = load_playbook("archive")
    assert (book.name, book.method, book.phases) == ("archive", "archive", PHASES)
    assert load_playbook(registry()["archive"].playbook_name) == book
    with pytest.raises(InputError, match="has no file"):
        load_playbook("migrate_example:playbooks/absent.yaml")


def test_the_project_does_not_know_the_plugin() -> None:
    """Nothing under migrate/, planners/ or adapters/ names the plugin, its method or its driver."""
    found = []
    for top in ("migrate", "planners", "adapters"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(path.read_bytes().splitlines(), 1)
                          if PLUGIN_NAMES.search(line)]
    assert not found, found


def _choose(vms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A few VMs: powered off and on, one with several disks."""
    by_name = sorted(vms, key=lambda vm: vm["name"])
    off = [vm for vm in by_name if not vm["powered_on"]][:1]
    multi = [vm for vm in by_name if vm["powered_on"] and len(vm["disks"]) > 1][:1]
    rest = [vm for vm in by_name if vm["powered_on"] and vm not in multi][:2]
    chosen = off + multi + rest
    assert off and multi and len(chosen) == 4, [vm["name"] for vm in chosen]
    return chosen


@pytest.fixture(scope="module")
def archived(lab: LabInfo, manifest: dict[str, Any], onprem: VCenterSession,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """discover -> plan.yaml (one `archive` wave) -> site.yaml (dirtarget) -> check, dry-run, run, status."""
    work = tmp_path_factory.mktemp("plugin-archive")
    (work / "archive").mkdir()
    site = yaml.safe_load(lab.site_config.read_text())
    source = site["source"]
    source["tls"]["ca_file"] = str(lab.directory / source["tls"]["ca_file"])
    source["password_file"] = str(lab.directory / source["password_file"])
    (work / "site.yaml").write_text(yaml.safe_dump({"version": 1, "source": source,
                                                    "target": {"driver": "dirtarget", "path": "archive"}}))
    chosen = _choose(manifest["vms"])
    (work / "plan.yaml").write_text("version: 1\nwaves:\n  - id: 1\n    name: archive-1\n    method: archive\n"
                                    "    vms: [" + ", ".join(vm["name"] for vm in chosen) + "]\n")
    done: dict[str, Any] = {"work": work, "chosen": chosen, "before": source_vms(onprem)}
    done["discover"] = migrate("discover", "--config", "site.yaml", "--out", "inventory.json", cwd=work)
    done["check"] = migrate("check", "--config", "site.yaml", "--json", cwd=work)
    run = ("run", "plan.yaml", "--config", "site.yaml", "--inventory", "inventory.json", "--journal", "run.db")
    done["dry_run"] = migrate(*run, "--dry-run", "--json", cwd=work)
    done["archive_after_dry_run"] = sorted(p.name for p in (work / "archive").iterdir())
    done["run"] = migrate(*run, "--json", cwd=work)
    done["status"] = migrate("status", "--journal", "run.db", "--json", cwd=work)
    done["after"] = source_vms(onprem)
    return done


def test_check_and_dry_run_change_nothing(archived: dict[str, Any]) -> None:
    """`migrate check` reaches the dirtarget; the dry-run lists the plugin's phases per VM and writes nothing."""
    assert archived["discover"].code == 0, archived["discover"]
    check = archived["check"]
    assert check.code == 0, check
    assert check.json()["target"]["driver"] == "dirtarget"
    dry = archived["dry_run"]
    assert dry.code == 0, dry
    phases: dict[str, list[str]] = {}
    for action in dry.json():
        if action["action"] == "phase":
            phases.setdefault(action["vm"], []).append(action["phase"])
    assert phases == {vm["instance_uuid"]: PHASES for vm in archived["chosen"]}
    assert archived["archive_after_dry_run"] == []


def test_run_and_status_complete_every_vm(archived: dict[str, Any]) -> None:
    """`migrate run` completes the wave; `migrate status` shows every VM completed by the archive method."""
    run = archived["run"]
    assert run.code == 0, run
    assert run.json()["vms"] == {"completed": len(archived["chosen"])}
    status = archived["status"]
    assert status.code == 0, status
    data = status.json()
    assert [(w["method"], w["state"]) for w in data["waves"]] == [("archive", "completed")]
    assert {vm["name"]: vm["state"] for vm in data["vms"]} == {vm["name"]: "completed" for vm in archived["chosen"]}


def test_every_vm_is_archived_once_byte_for_byte(archived: dict[str, Any], lab: LabInfo) -> None:
    """One folder per VM, with its manifest and every disk file equal to the source's in the lab's datastore."""
    root = archived["work"] / "archive"
    assert sorted(p.name for p in root.iterdir()) == sorted(vm["name"] for vm in archived["chosen"])
    inventory = {vm["id"]: vm for vm in json.loads((archived["work"] / "inventory.json").read_text())["vms"]}
    for vm in archived["chosen"]:
        folder = root / vm["name"]
        record = json.loads((folder / "manifest.json").read_text())
        assert record["source_id"] == vm["instance_uuid"] and (folder / ".source").read_text() == vm["instance_uuid"]
        assert (record["hardware"]["cpus"], record["hardware"]["memory_mb"]) == (vm["cpus"], vm["memory_mb"])
        assert [n["mac"] for n in record["nics"]] == [n["mac"] for n in inventory[vm["instance_uuid"]]["nics"]]
        files = [f for disk in record["disks"] for f in disk["files"]]
        expected = [".source", "manifest.json", *(f["file"] for f in files)]
        assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
        for f in files:
            assert sha256(folder / f["file"]) == f["sha256"] == sha256(datastore_file(lab, f["source"])), f
        for disk in vm["disks"]:   # the seeded contents: what the lab wrote into the source's disks
            assert sha256(folder / Path(disk["path"]).name) == disk["sha256"], disk


def test_the_sources_are_untouched(archived: dict[str, Any]) -> None:
    """Archiving only reads the source: every VM keeps its name and power state."""
    assert archived["after"] == archived["before"]
    assert any(archived["before"][vm["instance_uuid"]][1] == "poweredOff" for vm in archived["chosen"])


def test_rollback_removes_the_archives(archived: dict[str, Any]) -> None:
    """`migrate rollback` deletes every VM's folder and leaves the sources as they are."""
    work = archived["work"]
    result = migrate("rollback", "--config", "site.yaml", "--journal", "run.db", "--json", cwd=work)
    assert result.code == 0, result
    assert sorted(result.json()["rolled_back"]) == sorted(vm["instance_uuid"] for vm in archived["chosen"])
    assert list((work / "archive").iterdir()) == []
    status = migrate("status", "--journal", "run.db", "--json", cwd=work).json()
    assert {vm["state"] for vm in status["vms"]} == {"rolled_back"}
