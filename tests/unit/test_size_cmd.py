"""`migrate size` and `migrate instance-types` through click's runner, offline (instance-types.json).

The instance-types file holds what moto's DescribeInstanceTypes returned (tests/unit/test_sizing.py).
Inventory: 40 "web" VMs (4 vCPU, 16 GiB, 100 GiB) and 40 "db" VMs (4 vCPU, 64 GiB, 100 GiB).
Hand computation on i4i.metal (see test_sizing.py for the per-host numbers):
  web only: cpu 1, memory 655360/734003.2 -> 1, storage 8000/19557.77 -> 1, RAID-1 FTT=1 minimum 3, +1 = 4
  web + db: cpu 320/256 = 1.25 -> 2, memory 3276800/734003.2 = 4.46 -> 5, storage 16000/19557.77 = 0.82 -> 1;
            max(2, 5, 1, 3) + 1 = 6
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from migrate.cli.size_cmd import instance_types_group, size
from migrate.core.models.inventory import Disk, Guest, Inventory, Provenance, Vm
from migrate.inventory import save_inventory
from planners.instance_types import load_instance_types, save_instance_types
from tests.unit.test_sizing import MOTO_TYPES


def _vm(vm_id: str, cpus: int, memory_gib: int, disk_gib: int, template: bool = False) -> Vm:
    return Vm(id=vm_id, name=f"name-{vm_id}", cpus=cpus, memory_mb=memory_gib * 1024, firmware="efi",
              guest=Guest(guest_id="rhel9_64Guest"), template=template,
              disks=[Disk(key=2000, capacity_bytes=disk_gib * 2**30)])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    vms = [_vm(f"web-{i}", 4, 16, 100) for i in range(40)] + [_vm(f"db-{i}", 4, 64, 100) for i in range(40)]
    inventory = Inventory(provenance=Provenance(source="test", kind="rvtools", collected_at=datetime.now(UTC)), vms=vms)
    out = {"inventory": tmp_path / "inventory.json", "types": tmp_path / "instance-types.json",
           "plan": tmp_path / "plan.yaml"}
    save_inventory(inventory, out["inventory"])
    save_instance_types(MOTO_TYPES, out["types"], region="us-east-1")
    plan = {"version": 1, "name": "ignored", "waves": [
        {"id": "w1", "name": "web", "vms": [f"web-{i}" for i in range(40)]},
        {"id": "w2", "vms": [{"id": f"db-{i}", "name": f"name-db-{i}"} for i in range(40)]},
    ]}
    out["plan"].write_text(yaml.safe_dump(plan))
    return out


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(size, [str(a) for a in args])


def test_whole_inventory_one_wave(files: dict[str, Path]) -> None:
    """Without --plan the whole inventory is one wave: 80 VMs on i4i.metal need 6 hosts, memory-bound."""
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["hosts"] == 6 and data["vms_sized"] == 80 and data["vms_not_in_plan"] == 0
    (wave,) = data["waves"]
    assert wave["wave_id"] == "all" and wave["sizing"]["binding"] == "memory" and wave["sizing"]["memory"]["hosts"] == 5
    assert data["host_type"]["default_cores"] == 64 and data["host_type"]["instance_storage_gb"] == 30000


def test_plan_per_wave_and_cumulative(files: dict[str, Path]) -> None:
    """With --plan: wave w1 needs 4 hosts, after w2 the cluster needs 6 (add 2); existing hosts are counted."""
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--plan", files["plan"],
                 "--existing-hosts", "3", "--json")
    assert result.exit_code == 0, result.output
    waves = json.loads(result.output)["waves"]
    assert [(w["wave_id"], w["vms"], w["vms_cumulative"]) for w in waves] == [("w1", 40, 40), ("w2", 40, 80)]
    assert [(w["hosts_before"], w["hosts_to_add"], w["hosts_after"]) for w in waves] == [(3, 1, 4), (4, 2, 6)]


def test_human_output(files: dict[str, Path]) -> None:
    """People get the host spec, a row per wave and the formulas of the final cluster."""
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--plan", files["plan"])
    assert result.exit_code == 0, result.output
    assert "host type i4i.metal" in result.output and "64 cores, 1024 GiB, 30000 GB" in result.output
    assert "hosts = max(2, 5, 1, 3) + 1 spare = 6 i4i.metal (binding: memory)" in result.output
    assert "cluster: 6 x i4i.metal for 80 VMs" in result.output


def test_options_reach_the_formulas(files: dict[str, Path]) -> None:
    """--policy, --max-util, --spare and --host-type change the answer as the formulas say."""
    base: list[str | Path] = ["--inventory", files["inventory"], "--instance-types", files["types"], "--json"]
    # memory 3276800 / (1048576 * 0.9) = 3.47 -> 4; RAID-6 minimum 6 binds; + 2 spares = 8
    result = run(*base, "--max-util", "0.9", "--policy", "raid6-ftt2", "--spare", "2")
    data = json.loads(result.output)
    assert data["hosts"] == 8 and data["waves"][0]["sizing"]["binding"] == "policy_minimum"
    # i3en.metal: memory 3276800 / 550502.4 = 5.95 -> 6, + 1 = 7
    assert json.loads(run(*base, "--host-type", "i3en.metal").output)["hosts"] == 7


def test_rightsize(files: dict[str, Path]) -> None:
    """--rightsize picks an EC2 type per VM from its configured size (no utilisation in this inventory)."""
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--rightsize", "--json")
    assert result.exit_code == 0, result.output
    picks = {p["vm_id"]: p for p in json.loads(result.output)["rightsizing"]}
    assert len(picks) == 80
    assert picks["web-0"]["instance_type"] == "m7i.xlarge"        # 4 vCPU / 16 GiB
    assert picks["db-0"]["instance_type"] == "x2iedn.xlarge"      # 4 vCPU / 64 GiB: no m, c or r with 4 vCPU fits
    human = run("--inventory", files["inventory"], "--instance-types", files["types"], "--rightsize").output
    assert "EC2 right-sizing" in human and "-> m7i.xlarge (4 vCPU, 16384 MiB)" in human


def test_templates_count_for_storage_only(files: dict[str, Path], tmp_path: Path) -> None:
    """A template needs datastore space but no CPU or memory, and is not right-sized."""
    inventory = Inventory(provenance=Provenance(source="t", kind="rvtools", collected_at=datetime.now(UTC)),
                          vms=[_vm("t1", 64, 512, 100, template=True), _vm("v1", 2, 4, 100)])
    path = tmp_path / "inv.json"
    save_inventory(inventory, path)
    data = json.loads(run("--inventory", path, "--instance-types", files["types"], "--rightsize", "--json").output)
    sizing = data["waves"][0]["sizing"]
    assert (sizing["total_vcpus"], sizing["total_memory_mib"], sizing["total_storage_gib"]) == (2, 4096, 200.0)
    assert [p["vm_id"] for p in data["rightsizing"]] == ["v1"]


def test_unknown_host_type_lists_what_exists(files: dict[str, Path]) -> None:
    """i3.metal is not in the data: exit 2 naming --host-type and listing the bare-metal types that exist."""
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--host-type", "i3.metal")
    assert result.exit_code == 2
    assert "--host-type: 'i3.metal' is not in the data" in result.output
    assert "i3en.metal, i4i.metal" in result.output and "Traceback" not in result.output


def test_host_type_that_cannot_run_vsan(files: dict[str, Path]) -> None:
    """A bare-metal type without instance storage, or a virtual type, is exit 2 with the reason."""
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--host-type", "m7i.large",
                 "--json")
    assert result.exit_code == 2
    messages = [p["message"] for p in json.loads(result.stdout)["problems"]]
    assert "m7i.large is not a bare-metal type" in messages and any("no local instance storage" in m for m in messages)


def test_vm_in_plan_not_in_inventory(files: dict[str, Path], tmp_path: Path) -> None:
    """A plan naming an unknown VM (or one VM twice) is exit 2 naming waves[i].vms[j]."""
    plan = tmp_path / "bad-plan.yaml"
    plan.write_text("waves:\n  - id: w1\n    vms: [web-1, ghost-7]\n  - id: w2\n    vms: [web-1]\n  - id: w3\n")
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--plan", plan)
    assert result.exit_code == 2
    assert f"{plan}: waves[0].vms[1]: VM 'ghost-7' is not in the inventory" in result.output
    assert f"{plan}: waves[1].vms[0]: VM 'web-1' (name-web-1) is already in wave w1" in result.output
    assert f"{plan}: waves[2].vms: must be a list of VM ids" in result.output


def test_bad_options_all_listed(files: dict[str, Path]) -> None:
    """Ratio <= 0, bad fractions, an unknown policy and a negative spare are all listed in one exit 2."""
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--ratio", "0",
                 "--max-util", "1.5", "--policy", "raid0", "--spare", "-1", "--existing-hosts", "-2", "--json")
    assert result.exit_code == 2
    fields = {p["field"] for p in json.loads(result.stdout)["problems"]}
    assert fields == {"--ratio", "--max-util", "--policy", "--spare", "--existing-hosts"}
    negative = run("--inventory", files["inventory"], "--instance-types", files["types"], "--ratio", "-4")
    assert negative.exit_code == 2 and "command line: --ratio: must be > 0, got -4" in negative.output


def test_needs_exactly_one_source_of_instance_types(files: dict[str, Path], tmp_path: Path) -> None:
    """Neither or both of --config and --instance-types is exit 2; a missing inventory is named too."""
    result = run("--inventory", tmp_path / "nope.json")
    assert result.exit_code == 2
    assert "--config/--instance-types" in result.output and "nope.json: no such file" in result.output
    both = run("--inventory", files["inventory"], "--instance-types", files["types"], "--config", tmp_path / "s.yaml")
    assert both.exit_code == 2 and "give exactly one" in both.output


def test_bad_instance_types_file(files: dict[str, Path], tmp_path: Path) -> None:
    """A malformed instance-types.json is exit 2 naming the bad field."""
    bad = tmp_path / "types.json"
    bad.write_text(json.dumps({"version": 1, "instance_types": [{"name": "x.metal", "vcpus": "many"}]}))
    result = run("--inventory", files["inventory"], "--instance-types", bad)
    assert result.exit_code == 2
    assert "instance_types[0].vcpus" in result.output and "instance_types[0].memory_mib" in result.output


def test_instance_types_file_round_trip(files: dict[str, Path]) -> None:
    """save_instance_types writes a versioned file that load_instance_types reads back unchanged."""
    loaded = load_instance_types(files["types"])
    assert loaded.version == 1 and loaded.region == "us-east-1"
    assert [t.name for t in loaded.instance_types] == sorted(r["name"] for r in MOTO_TYPES)
    assert json.loads(files["types"].read_text())["instance_types"][0]["name"] == "c7g.large"


def test_fetch_needs_aws_section(tmp_path: Path) -> None:
    """`instance-types fetch` with a site.yaml without an AWS replatformer is exit 2 naming the field."""
    site = tmp_path / "site.yaml"
    site.write_text("version: 1\nsource:\n  name: onprem\n  url: https://vc.example/sdk\n  username: u\n"
                    "  password_env: VC_PASSWORD\n")
    result = CliRunner().invoke(instance_types_group, ["fetch", "--config", str(site), "--out",
                                                       str(tmp_path / "t.json")], env={"VC_PASSWORD": "x"})
    assert result.exit_code == 2 and f"{site}: replatformer: needs an AWS account" in result.output
    assert not (tmp_path / "t.json").exists()


def test_replatformed_waves_need_no_cluster_hosts_but_are_rightsized(files: dict[str, Path]) -> None:
    """A wave whose method leaves vCenter (replatform, warm_replatform) adds nothing to the cloud cluster; its VMs
    are still right-sized for EC2; an unknown method is named."""
    doc = yaml.safe_load(files["plan"].read_text())
    doc["waves"][1]["method"] = "warm_replatform"
    files["plan"].write_text(yaml.safe_dump(doc))
    result = run("--inventory", files["inventory"], "--instance-types", files["types"], "--plan", files["plan"],
                 "--rightsize", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(w["wave_id"], w["vms"]) for w in data["waves"]] == [("w1", 40), ("w2", 0)]
    assert (data["vms_sized"], data["vms_off_cluster"], len(data["rightsizing"])) == (40, 40, 80)
    assert "40 VMs re-platformed to EC2 are not on it" in run(
        "--inventory", files["inventory"], "--instance-types", files["types"], "--plan", files["plan"]).output
    doc["waves"][1]["method"] = "teleport"
    files["plan"].write_text(yaml.safe_dump(doc))
    bad = run("--inventory", files["inventory"], "--instance-types", files["types"], "--plan", files["plan"])
    assert bad.exit_code == 2 and "waves[1].method" in bad.output and "teleport" in bad.output, bad.output
