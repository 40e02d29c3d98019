"""Instance-type specs from a real moto server (DescribeInstanceTypes over HTTP), then sizing on them.

The test starts and stops its own moto server on 127.0.0.1 (a free port); boto3 is not mocked.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from adapters.aws.instance_types import fetch_instance_types
from adapters.aws.settings import AwsSettings
from migrate.cli.size_cmd import instance_types_group, size
from migrate.core.errors import AdapterError, InputError
from migrate.core.models.inventory import Guest, Inventory, Provenance, Vm
from migrate.inventory import save_inventory
from planners.instance_types import InstanceType, load_instance_types, save_instance_types
from planners.rightsizing import rightsize_vm
from planners.sizing import VmSize, size_hosts
from tests.unit.test_size_cmd import _vm

_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def aws(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsSettings]:
    credentials = tmp_path_factory.mktemp("aws") / "credentials"
    credentials.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    with pytest.MonkeyPatch.context() as patch:
        for name in _AWS_ENV:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_CONFIG_FILE", str(credentials.parent / "no-config"))
        yield AwsSettings(region="us-east-1", endpoint_url=moto_endpoint, credentials_file=credentials)


@pytest.fixture(scope="module")
def catalog(aws: AwsSettings) -> list[dict[str, Any]]:
    return fetch_instance_types(aws)


def _by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in records}


def test_metal_hosts_as_the_api_says(catalog: list[dict[str, Any]]) -> None:
    """i4i.metal and i3en.metal come back with cores, memory and NVMe instance storage; i3.metal does not exist."""
    types = _by_name(catalog)
    i4i, i3en = types["i4i.metal"], types["i3en.metal"]
    assert (i4i["vcpus"], i4i["default_cores"], i4i["threads_per_core"], i4i["memory_mib"]) == (128, 64, 2, 1048576)
    assert (i4i["instance_storage_gb"], i4i["storage_disks"], i4i["storage_nvme"]) == (
        30000, [{"count": 8, "size_gb": 3750, "type": "ssd"}], "required")
    assert i4i["bare_metal"] and i4i["current_generation"] and i4i["architectures"] == ["x86_64"]
    assert (i4i["network_performance"], i4i["ena_support"]) == ("75 Gigabit", "required")
    assert (i3en["default_cores"], i3en["memory_mib"], i3en["instance_storage_gb"]) == (48, 786432, 60000)
    assert "i3.metal" not in types


def test_general_purpose_types(catalog: list[dict[str, Any]]) -> None:
    """Every record is current generation; m7i.large and m7g.large carry architecture and boot modes."""
    types = _by_name(catalog)
    assert len(catalog) > 500 and all(r["current_generation"] for r in catalog)
    assert [r["name"] for r in catalog] == sorted(types)
    m7i, m7g = types["m7i.large"], types["m7g.large"]
    assert (m7i["vcpus"], m7i["memory_mib"], m7i["architectures"], m7i["hypervisor"]) == (2, 8192, ["x86_64"], "nitro")
    assert "uefi" in m7i["boot_modes"] and m7g["architectures"] == ["arm64"] and m7g["boot_modes"] == ["uefi"]
    assert not m7i["bare_metal"] and m7i["instance_storage_gb"] is None


def test_named_fetch_and_unknown_name(aws: AwsSettings) -> None:
    """Named types come back alone; a name the region lacks (i3.metal) is bad input, not an outage."""
    records = fetch_instance_types(aws, ["i4i.metal", "m7i.large"])
    assert [r["name"] for r in records] == ["i4i.metal", "m7i.large"]
    with pytest.raises(InputError, match=r"i3\.metal"):
        fetch_instance_types(aws, ["i3.metal"])


def test_unreachable_endpoint_is_adapter_error(aws: AwsSettings) -> None:
    """A closed port maps to a retryable AdapterError naming the operation."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = aws.model_copy(update={"endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(AdapterError) as info:
        fetch_instance_types(dead, ["i4i.metal"])
    assert info.value.retryable and info.value.op == "describe_instance_types"


def test_saved_catalog_sizes_and_rightsizes(catalog: list[dict[str, Any]], tmp_path: Path) -> None:
    """The fetched specs survive the file round trip and drive sizing and right-sizing offline."""
    path = tmp_path / "instance-types.json"
    save_instance_types(catalog, path, region="us-east-1")
    types = load_instance_types(path).instance_types
    assert len(types) == len(catalog)
    host = next(t for t in types if t.name == "i4i.metal")
    sizing = size_hosts([VmSize(f"v{i}", 4, 16384, 100.0) for i in range(40)], host)
    assert (sizing.capacity.cores, sizing.hosts, sizing.binding) == (64, 4, "policy_minimum")
    vm = Vm(id="a", name="a", cpus=4, memory_mb=16384, firmware="efi", guest=Guest(guest_id="rhel9_64Guest"))
    pick = rightsize_vm(vm, types)
    chosen = next(t for t in types if t.name == pick.instance_type)
    assert (chosen.family, chosen.vcpus, chosen.memory_mib, chosen.bare_metal) == ("m", 4, 16384, False)
    assert "uefi" in chosen.boot_modes and "x86_64" in chosen.architectures
    arm = rightsize_vm(vm.model_copy(update={"guest": Guest(guest_id="arm-ubuntu-64")}), types)
    assert isinstance(arm.instance_type, str)
    assert InstanceType.model_validate(_by_name(catalog)[arm.instance_type]).architectures == ["arm64"]


def _inventory(tmp_path: Path, vms: list[Vm]) -> Path:
    path = tmp_path / "inventory.json"
    save_inventory(Inventory(provenance=Provenance(source="t", kind="rvtools", collected_at=datetime.now(UTC)),
                             vms=vms), path)
    return path


def _site(tmp_path: Path, aws: AwsSettings) -> Path:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({
        "version": 1,
        "source": {"name": "onprem", "url": "https://vc.example/sdk", "username": "u", "password_env": "VC_PASSWORD"},
        "aws": {"region": aws.region, "endpoint_url": aws.endpoint_url, "credentials_file": str(aws.credentials_file)},
    }))
    return site


def test_cli_fetch_then_size_offline(aws: AwsSettings, tmp_path: Path) -> None:
    """`instance-types fetch --type` writes the file; `size --instance-types` then works without AWS."""
    site, out = _site(tmp_path, aws), tmp_path / "instance-types.json"
    env = {"VC_PASSWORD": "x"}
    result = CliRunner().invoke(instance_types_group, ["fetch", "--config", str(site), "--out", str(out), "--type",
                                                       "i4i.metal", "--type", "i3en.metal", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"out": str(out), "region": "us-east-1", "count": 2,
                                         "bare_metal": ["i3en.metal", "i4i.metal"]}
    inventory = _inventory(tmp_path, [_vm(f"v{i}", 8, 8, 50) for i in range(200)])
    sized = CliRunner().invoke(size, ["--inventory", str(inventory), "--instance-types", str(out), "--host-type",
                                      "i3en.metal", "--json"])
    assert sized.exit_code == 0, sized.output
    assert json.loads(sized.stdout)["hosts"] == 10     # cpu 1600 / (48 * 4) = 8.33 -> 9, + 1 spare


def test_cli_size_live_from_config(aws: AwsSettings, tmp_path: Path) -> None:
    """`size --config` asks EC2 directly; i3.metal is exit 2 naming --host-type and listing i4i.metal."""
    site, inventory = _site(tmp_path, aws), _inventory(tmp_path, [_vm(f"v{i}", 4, 16, 100) for i in range(40)])
    env = {"VC_PASSWORD": "x"}
    ok = CliRunner().invoke(size, ["--inventory", str(inventory), "--config", str(site), "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["hosts"] == 4 and data["instance_types_source"].startswith("EC2 us-east-1 at http://127.0.0.1:")
    bad = CliRunner().invoke(size, ["--inventory", str(inventory), "--config", str(site), "--host-type", "i3.metal"],
                             env=env)
    assert bad.exit_code == 2
    assert "--host-type: 'i3.metal' is not in the data" in bad.output and "i4i.metal" in bad.output
