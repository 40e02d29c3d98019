"""`migrate lab up` makes the AWS networks re-platforming needs in moto and maps them in site.yaml."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws import aws_client
from adapters.aws.settings import aws_settings
from adapters.lab.aws_network import LAB_TAG, TEST_SUBNET_CIDR, ensure_lab_networks
from adapters.lab.estate import CLOUD, NETWORK_MAP
from migrate.core.config import SiteConfig
from migrate.lab.manager import LabInfo
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def ec2(site: SiteConfig) -> Any:
    return aws_client(aws_settings(site.replatformer), "ec2")


def _lab_vpcs(ec2: Any) -> list[str]:
    return [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": f"tag:{LAB_TAG}", "Values": ["vpc"]}])["Vpcs"]]


def test_site_maps_every_port_group_to_an_existing_subnet(site: SiteConfig, ec2: Any) -> None:
    """networks maps every on-prem port group and cloud segment to its segment's subnet in the lab VPC (the
    VMs' /24, so an IP could be kept), with the lab security group; all of them exist in moto."""
    aws = aws_settings(site.replatformer)
    assert set(aws.networks) == set(NETWORK_MAP) | set(NETWORK_MAP.values())
    (vpc_id,) = _lab_vpcs(ec2)
    subnet_ids = {m.subnet_id for m in aws.networks.values()}
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=sorted(subnet_ids))["Subnets"]}
    assert len(subnets) == len(set(NETWORK_MAP.values()))          # one subnet per segment
    for portgroup, segment in NETWORK_MAP.items():
        mapping = aws.networks[portgroup]
        assert mapping == aws.networks[segment]
        subnet = subnets[mapping.subnet_id]
        assert subnet["VpcId"] == vpc_id
        assert subnet["CidrBlock"] == f"10.10.{CLOUD.portgroups[segment]}.0/24"
    groups = {g for m in aws.networks.values() for g in m.security_group_ids}
    found = ec2.describe_security_groups(GroupIds=sorted(groups))["SecurityGroups"]
    assert len(found) == 1 and found[0]["VpcId"] == vpc_id


def test_test_networks_are_one_isolated_subnet(site: SiteConfig, ec2: Any) -> None:
    """test_networks sends every port group to the isolated test subnet: its own route table (local route
    only), an ACL that admits only the subnet itself, and a group that reaches only its own members."""
    aws = aws_settings(site.replatformer)
    assert set(aws.test_networks) == set(aws.networks)
    (subnet_id,) = {m.subnet_id for m in aws.test_networks.values()}
    (group_id,) = {g for m in aws.test_networks.values() for g in m.security_group_ids}
    assert subnet_id not in {m.subnet_id for m in aws.networks.values()}
    subnet = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    assert subnet["CidrBlock"] == TEST_SUBNET_CIDR and subnet["VpcId"] == _lab_vpcs(ec2)[0]
    by_subnet = [{"Name": "association.subnet-id", "Values": [subnet_id]}]
    (table,) = ec2.describe_route_tables(Filters=by_subnet)["RouteTables"]
    assert [r["GatewayId"] for r in table["Routes"]] == ["local"]
    (acl,) = ec2.describe_network_acls(Filters=by_subnet)["NetworkAcls"]
    assert {e["CidrBlock"] for e in acl["Entries"] if e["RuleAction"] == "allow"} == {TEST_SUBNET_CIDR}
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    for rules in (group["IpPermissions"], group["IpPermissionsEgress"]):
        assert [pair["GroupId"] for rule in rules for pair in rule["UserIdGroupPairs"]] == [group_id]
        assert not any(rule["IpRanges"] for rule in rules)


def test_lab_up_twice_makes_no_second_vpc(lab: LabInfo, site: SiteConfig, ec2: Any) -> None:
    """`lab up` on the running lab, and the set-up itself run again, find the networks instead of adding any."""
    before = yaml.safe_load(lab.site_config.read_text())["replatformer"]
    vpcs, subnets = _lab_vpcs(ec2), len(ec2.describe_subnets()["Subnets"])
    result = run_cli("lab", "up", "--dir", lab.directory, "--vms", str(lab.vms), "--seed", str(lab.seed), "--json")
    assert result.code == 0, result
    assert result.json()["aws_networks"]["vpc_id"] == vpcs[0]
    again = ensure_lab_networks(aws_settings(site.replatformer),
                                {s: CLOUD.portgroups[s] for s in set(NETWORK_MAP.values())})
    assert again.vpc_id == vpcs[0] and again.subnets["seg-app"] == before["networks"]["pg-app"]["subnet_id"]
    assert again.test_subnet_id == before["test_networks"]["pg-app"]["subnet_id"]
    assert _lab_vpcs(ec2) == vpcs and len(ec2.describe_subnets()["Subnets"]) == subnets
    assert yaml.safe_load(lab.site_config.read_text())["replatformer"] == before


def test_replatform_dry_run_resolves_subnets(lab: LabInfo, manifest: dict[str, Any], tmp_path: Path) -> None:
    """A dry-run of a replatform wave with the lab's own site.yaml (no hand-written settings) places each
    NIC in its segment's subnet."""
    doc = yaml.safe_load(lab.site_config.read_text())["replatformer"]["networks"]
    picks = {}
    for vm in manifest["vms"]:
        picks.setdefault(vm["portgroup"], vm)
    chosen = [picks[pg] for pg in sorted(picks)[:2]]
    inventory, plan = tmp_path / "inventory.json", tmp_path / "plan.yaml"
    found = run_cli("discover", "--config", lab.site_config, "--out", inventory, "--no-utilisation")
    assert found.code == 0, found
    plan.write_text(yaml.safe_dump({"version": 1, "waves": [
        {"id": 1, "name": "to-ec2", "method": "replatform", "vms": [vm["instance_uuid"] for vm in chosen]}]}))
    result = run_cli("run", plan, "--config", lab.site_config, "--inventory", inventory, "--dry-run", "--json",
                     timeout=180)
    assert result.code == 0, result
    placed: dict[str, list[dict[str, Any]]] = {}
    for event in json.loads(result.stdout):
        if event.get("action") == "phase" and event.get("vm"):
            facts = event["inputs"]["vm"]["facts"]
            placed[facts["name"]] = facts["replatform"]["nics"]
    assert set(placed) == {vm["name"] for vm in chosen}
    for vm in chosen:
        (nic,) = placed[vm["name"]]
        assert nic["portgroup"] == vm["portgroup"]
        assert nic["subnet_id"] == doc[vm["portgroup"]]["subnet_id"]
        assert nic["security_group_ids"] == doc[vm["portgroup"]]["security_group_ids"]
        assert ipaddress.ip_address(vm["ip"]) in ipaddress.ip_network(
            f"10.10.{CLOUD.portgroups[NETWORK_MAP[vm['portgroup']]]}.0/24")
