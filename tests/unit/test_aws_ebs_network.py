"""site.yaml's aws.networks: port group -> EC2 subnet/security groups/private-IP policy, checked before launch."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from adapters.aws.instances import NicPlacement, place_nics
from adapters.aws.settings import AwsNetworkMapping, AwsSettings, aws_network_problems
from migrate.core.errors import InputError
from migrate.schemas import schema_text

AWS = AwsSettings(region="us-east-1", networks={
    "pg-app": AwsNetworkMapping(subnet_id="subnet-0a1b", security_group_ids=["sg-01"], keep_private_ip=True),
    "pg-web": AwsNetworkMapping(subnet_id="subnet-0c2d"),
})


def test_mapping_fields_are_checked() -> None:
    """Subnet ids look like subnet-..., group ids like sg-...; keep_private_ip defaults to false."""
    assert AwsNetworkMapping(subnet_id="subnet-00ff").keep_private_ip is False
    with pytest.raises(ValidationError):
        AwsNetworkMapping(subnet_id="10.0.0.0/24")
    with pytest.raises(ValidationError, match="sg-"):
        AwsNetworkMapping(subnet_id="subnet-00ff", security_group_ids=["default"])


def test_every_unmapped_port_group_is_a_problem() -> None:
    """Each missing port group is named once with its field; mapped ones and no-aws configs behave."""
    problems = aws_network_problems(AWS, "db-01", ["pg-app", "pg-db", "pg-db", "pg-infra"])
    assert [p.field for p in problems] == ["replatformer.networks.pg-db", "replatformer.networks.pg-infra"]
    assert "db-01" in problems[0].message and problems[0].file == "site.yaml"
    assert aws_network_problems(AWS, "web-01", ["pg-web"]) == []
    assert len(aws_network_problems(None, "web-01", ["pg-web"])) == 1


def test_place_nics_keeps_ip_only_when_mapped_so() -> None:
    """keep_private_ip carries the VM's IP; otherwise EC2 picks one; unmapped NICs stop before launch."""
    assert place_nics(AWS, "vm", [("pg-app", "10.0.1.5"), ("pg-web", "10.0.2.5")]) == [
        NicPlacement("pg-app", "subnet-0a1b", ("sg-01",), "10.0.1.5"), NicPlacement("pg-web", "subnet-0c2d")]
    with pytest.raises(InputError) as info:
        place_nics(AWS, "vm", [("pg-db", "10.0.3.5")])
    assert info.value.problems[0].field == "replatformer.networks.pg-db"
    with pytest.raises(InputError, match="no known IP"):
        place_nics(AWS, "vm", [("pg-app", None)])


def test_shipped_schema_documents_networks() -> None:
    """The shipped site schema describes aws.networks and its entries."""
    schema = json.loads(schema_text("site"))
    networks = schema["$defs"]["AwsSettings"]["properties"]["networks"]
    assert "port group" in networks["description"]
    entry = schema["$defs"]["AwsNetworkMapping"]["properties"]
    assert set(entry) == {"subnet_id", "security_group_ids", "keep_private_ip"}
    assert all(field.get("description") for field in entry.values())
