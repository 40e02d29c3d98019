"""site.yaml's replatformer.test_networks: the isolated subnets test launches use, checked like `networks`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws.settings import AwsSettings
from migrate.config import load_site_config
from migrate.core.errors import InputError
from migrate.schemas import schema_text

PRODUCTION = {"pg-app": {"subnet_id": "subnet-0a1b", "security_group_ids": ["sg-01"]}}


def _site(tmp_path: Path, **replatformer: Any) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({
        "version": 1,
        "source": {"name": "onprem", "url": "https://127.0.0.1:1/sdk", "username": "u", "password_env": "PW",
                   "datacenter": "dc"},
        "replatformer": {"driver": "aws", "region": "us-east-1", "networks": PRODUCTION, **replatformer}}))
    return path


def test_test_networks_load_like_networks(tmp_path: Path) -> None:
    """A well-formed entry loads into the same mapping model as `networks`; none at all is the default."""
    config = load_site_config(_site(tmp_path, test_networks={
        "pg-app": {"subnet_id": "subnet-0fff", "security_group_ids": ["sg-0e"]}}), env={"PW": "x"})
    assert isinstance(config.replatformer, AwsSettings)
    assert config.replatformer.test_networks["pg-app"].subnet_id == "subnet-0fff"
    assert AwsSettings(region="us-east-1").test_networks == {}


@pytest.mark.parametrize(("entry", "field"), [
    ({"subnet_id": "10.10.250.0/24"}, "replatformer.test_networks.pg-app.subnet_id"),
    ({"subnet_id": "subnet-0fff", "security_group_ids": ["default"]},
     "replatformer.test_networks.pg-app.security_group_ids"),
    ({"subnet_id": "subnet-0fff", "route": "none"}, "replatformer.test_networks.pg-app.route"),
])
def test_bad_test_network_names_the_field(tmp_path: Path, entry: dict[str, Any], field: str) -> None:
    """A bad subnet id, group id or unknown key is bad input naming replatformer.test_networks.<port group>."""
    with pytest.raises(InputError) as info:
        load_site_config(_site(tmp_path, test_networks={"pg-app": entry}))
    assert [p.field for p in info.value.problems] == [field]


def test_a_production_subnet_is_not_a_test_subnet(tmp_path: Path) -> None:
    """A test subnet that is also a `networks` subnet is refused: test launches must stay isolated."""
    with pytest.raises(InputError) as info:
        load_site_config(_site(tmp_path, test_networks={"pg-web": {"subnet_id": "subnet-0a1b"}}))
    (problem,) = info.value.problems
    assert problem.field == "replatformer.test_networks" and "pg-web (subnet-0a1b)" in problem.message


def test_shipped_schema_documents_test_networks() -> None:
    """The shipped site schema describes test_networks with the same entries as networks."""
    schema = json.loads(schema_text("site"))
    field = schema["$defs"]["AwsSettings"]["properties"]["test_networks"]
    assert "isolated" in field["description"] and "test" in field["description"]
    assert field["additionalProperties"] == {"$ref": "#/$defs/AwsNetworkMapping"}
