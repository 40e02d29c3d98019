"""What `migrate lab up` writes into site.yaml's replatformer section from the AWS networks it made."""

from __future__ import annotations

from adapters.aws.settings import AwsSettings
from adapters.lab.aws_network import LabNetworks
from adapters.lab.estate import NETWORK_MAP
from migrate.lab.manager import _replatform_networks

NETWORKS = LabNetworks(vpc_id="vpc-01", subnets={s: f"subnet-0{i}" for i, s in enumerate(sorted(
    set(NETWORK_MAP.values())), start=1)}, security_group_id="sg-0a", test_subnet_id="subnet-0f",
    test_security_group_id="sg-0b")


def test_every_port_group_and_segment_lands_in_its_segment_subnet() -> None:
    """On-prem port groups and cloud segments alike map to their segment's subnet; test ones to the test subnet."""
    production, test = _replatform_networks(NETWORKS, bare=False)
    assert set(production) == set(test) == set(NETWORK_MAP) | set(NETWORK_MAP.values())
    for portgroup, segment in NETWORK_MAP.items():
        assert production[portgroup] == production[segment] == {
            "subnet_id": NETWORKS.subnets[segment], "security_group_ids": ["sg-0a"]}
    assert {(t["subnet_id"], tuple(t["security_group_ids"])) for t in test.values()} == {("subnet-0f", ("sg-0b",))}
    settings = AwsSettings(region="us-east-1", networks=production, test_networks=test)   # loads as written
    assert settings.networks["pg-db"].keep_private_ip is False


def test_bare_lab_maps_the_stock_port_groups() -> None:
    """A bare lab's stock port groups (all seg-app) are mapped too."""
    bare = LabNetworks(vpc_id="vpc-01", subnets={"seg-app": "subnet-0a"}, security_group_id="sg-0a",
                       test_subnet_id="subnet-0f", test_security_group_id="sg-0b")
    production, _ = _replatform_networks(bare, bare=True)
    assert {pg: m["subnet_id"] for pg, m in production.items()} == {
        "DC0_DVPG0": "subnet-0a", "VM Network": "subnet-0a", "seg-app": "subnet-0a"}
