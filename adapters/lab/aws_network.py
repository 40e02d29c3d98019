"""The lab's AWS networks in moto: what re-platformed (and test-launched) VMs land in.

`ensure_lab_networks` makes, with boto3 against the lab's endpoint, one VPC (10.10.0.0/16) holding

- one subnet per cloud segment the lab maps to, 10.10.<vlan>.0/24: the CIDR of the on-prem port group
  that maps to it, so a mapping may keep a VM's IP (`keep_private_ip`);
- a security group `migrate-lab` for those subnets (ingress from the VPC, egress anywhere);
- one isolated test subnet 10.10.250.0/24 for test launches: its own route table (the local route only,
  no internet or peering route), a network ACL that admits traffic only from and to the test subnet
  itself, and a security group `migrate-lab-test` that admits only its own members and reaches only them.

Idempotent: each resource is looked up first (by its `migrate:lab` tag, or by group name in the VPC), so
a second call returns the same ids and creates nothing. What moto does not model: it stores the route
table, network ACL and group rules but enforces none of them (no packets flow in the lab).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from adapters.aws.session import aws_client, map_aws_error
from adapters.aws.settings import AwsSettings

__all__ = ["LAB_TAG", "LAB_VPC_CIDR", "TEST_SUBNET_CIDR", "LabNetworks", "ensure_lab_networks"]

LAB_TAG = "migrate:lab"                # value: which lab resource this is (vpc, segment:<name>, test-subnet, ...)
LAB_VPC_CIDR = "10.10.0.0/16"
TEST_SUBNET_CIDR = "10.10.250.0/24"
SECURITY_GROUP = "migrate-lab"
TEST_SECURITY_GROUP = "migrate-lab-test"


@dataclass(frozen=True)
class LabNetworks:
    """Ids of the lab's AWS networks: segment -> subnet, the workloads' group, the isolated test subnet and group."""

    vpc_id: str
    subnets: dict[str, str] = field(default_factory=dict)
    security_group_id: str = ""
    test_subnet_id: str = ""
    test_security_group_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"vpc_id": self.vpc_id, "subnets": dict(self.subnets), "security_group_id": self.security_group_id,
                "test_subnet_id": self.test_subnet_id, "test_security_group_id": self.test_security_group_id}


def ensure_lab_networks(settings: AwsSettings, segments: Mapping[str, int], *,
                        zone: str | None = None) -> LabNetworks:
    """Find or create the lab's VPC, one subnet per segment (name -> VLAN, the subnet's third octet), the
    isolated test subnet and both security groups; AdapterError when the endpoint fails."""
    bad = {name: vlan for name, vlan in segments.items() if not 0 <= vlan <= 249}
    if bad:
        raise ValueError(f"segment VLANs must be 0..249 (250 is the test subnet): {bad}")
    ec2 = aws_client(settings, "ec2")
    try:
        zone = zone or ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
        vpc_id = _vpc(ec2)
        subnets = {name: _subnet(ec2, vpc_id, f"segment:{name}", f"10.10.{vlan}.0/24", zone, name)
                   for name, vlan in sorted(segments.items())}
        group = _group(ec2, vpc_id, SECURITY_GROUP, "re-platformed lab VMs: traffic from the lab VPC",
                       ingress_cidr=LAB_VPC_CIDR)
        test_subnet = _subnet(ec2, vpc_id, "test-subnet", TEST_SUBNET_CIDR, zone, "isolated test subnet")
        _isolate(ec2, vpc_id, test_subnet)
        test_group = _group(ec2, vpc_id, TEST_SECURITY_GROUP, "test launches: only each other, nothing else",
                            ingress_cidr=None)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise map_aws_error(exc, "lab networks", settings.endpoint_url) from None
    return LabNetworks(vpc_id=vpc_id, subnets=subnets, security_group_id=group, test_subnet_id=test_subnet,
                       test_security_group_id=test_group)


def _tags(role: str, name: str) -> list[dict[str, Any]]:
    return [{"Key": LAB_TAG, "Value": role}, {"Key": "Name", "Value": f"migrate-lab {name}"}]


def _spec(resource: str, role: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": _tags(role, name)}]


def _tagged(role: str, vpc_id: str | None = None) -> list[dict[str, Any]]:
    filters = [{"Name": f"tag:{LAB_TAG}", "Values": [role]}]
    return filters + ([{"Name": "vpc-id", "Values": [vpc_id]}] if vpc_id else [])


def _vpc(ec2: Any) -> str:
    found = ec2.describe_vpcs(Filters=_tagged("vpc"))["Vpcs"]
    if found:
        return str(found[0]["VpcId"])
    vpc_id = str(ec2.create_vpc(CidrBlock=LAB_VPC_CIDR, TagSpecifications=_spec("vpc", "vpc", "vpc"))["Vpc"]["VpcId"])
    ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return vpc_id


def _subnet(ec2: Any, vpc_id: str, role: str, cidr: str, zone: str, name: str) -> str:
    found = ec2.describe_subnets(Filters=_tagged(role, vpc_id))["Subnets"]
    if found:
        return str(found[0]["SubnetId"])
    return str(ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone,
                                 TagSpecifications=_spec("subnet", role, name))["Subnet"]["SubnetId"])


def _group(ec2: Any, vpc_id: str, name: str, description: str, *, ingress_cidr: str | None) -> str:
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]},
                                                  {"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    if found:
        return str(found[0]["GroupId"])
    group_id = str(ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id,
                                             TagSpecifications=_spec("security-group", name, name))["GroupId"])
    if ingress_cidr is not None:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": ingress_cidr, "Description": "the lab VPC"}]}])
        return group_id
    # Isolated: members reach each other only (the default egress rule, anywhere, is taken away).
    own = [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=own)
    ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=own)
    return group_id


def _isolate(ec2: Any, vpc_id: str, subnet_id: str) -> None:
    """The test subnet's own route table (local route only) and a network ACL admitting only itself."""
    tables = ec2.describe_route_tables(Filters=_tagged("test-route-table", vpc_id))["RouteTables"]
    table = tables[0] if tables else ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_spec(
        "route-table", "test-route-table", "isolated test routes"))["RouteTable"]
    if not any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
        ec2.associate_route_table(RouteTableId=table["RouteTableId"], SubnetId=subnet_id)
    acls = ec2.describe_network_acls(Filters=_tagged("test-network-acl", vpc_id))["NetworkAcls"]
    if acls:
        acl_id = acls[0]["NetworkAclId"]
    else:
        acl_id = ec2.create_network_acl(VpcId=vpc_id, TagSpecifications=_spec(
            "network-acl", "test-network-acl", "isolated test ACL"))["NetworkAcl"]["NetworkAclId"]
        for egress in (False, True):   # a new ACL denies everything else (its `*` rule)
            ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=100, Protocol="-1", RuleAction="allow",
                                         Egress=egress, CidrBlock=TEST_SUBNET_CIDR)
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    for acl in current["NetworkAcls"]:
        for association in acl.get("Associations", []):
            if association.get("SubnetId") == subnet_id and acl["NetworkAclId"] != acl_id:
                ec2.replace_network_acl_association(AssociationId=association["NetworkAclAssociationId"],
                                                    NetworkAclId=acl_id)
