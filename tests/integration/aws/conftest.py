"""Fixtures for re-platform tests on the lab's moto server: clients, a VPC with subnets per port group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.aws.common import AwsClients, make_clients
from adapters.aws.settings import AwsNetworkMapping, AwsSettings, aws_settings
from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.datastore_http import DatastoreFiles
from migrate.core.config import SiteConfig

# The lab's VM IPs are 10.10.<100|110|120|130>.x by port group; one /24 subnet each keeps them valid.
SUBNET_OF = {"pg-web": "10.10.110.0/24", "pg-app": "10.10.120.0/24", "pg-db": "10.10.130.0/24"}
KEEP_IP = {"pg-web": False, "pg-app": True, "pg-db": True}   # pg-infra is left unmapped on purpose


@pytest.fixture(scope="session")
def aws_clients(site: SiteConfig) -> AwsClients:
    assert aws_settings(site.replatformer) is not None
    return make_clients(aws_settings(site.replatformer))


@pytest.fixture(scope="session")
def vpc(aws_clients: AwsClients) -> dict[str, Any]:
    """A VPC, one subnet per mapped port group and a security group, made with boto3 in moto."""
    ec2 = aws_clients.ec2
    vpc_id = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnets = {pg: ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
               for pg, cidr in SUBNET_OF.items()}
    group = ec2.create_security_group(GroupName="migrate-replatform", Description="re-platformed VMs",
                                      VpcId=vpc_id)["GroupId"]
    return {"vpc_id": vpc_id, "subnets": subnets, "security_group": group}


@pytest.fixture(scope="session")
def aws_mapped(site: SiteConfig, vpc: dict[str, Any]) -> AwsSettings:
    """The lab's AWS settings plus aws.networks for pg-web, pg-app and pg-db."""
    assert aws_settings(site.replatformer) is not None
    networks = {pg: AwsNetworkMapping(subnet_id=subnet, security_group_ids=[vpc["security_group"]],
                                      keep_private_ip=KEEP_IP[pg]) for pg, subnet in vpc["subnets"].items()}
    return aws_settings(site.replatformer).model_copy(update={"networks": networks})


@pytest.fixture(scope="session")
def datastore_files(onprem: VCenterSession) -> Iterator[DatastoreFiles]:
    files = DatastoreFiles(onprem)
    try:
        yield files
    finally:
        files.close()


@pytest.fixture(scope="session")
def db_vm(manifest: dict[str, Any]) -> dict[str, Any]:
    """The first seeded VM with two disks (root + data) on a mapped port group."""
    return next(vm for vm in manifest["vms"] if len(vm["disks"]) == 2 and vm["portgroup"] in SUBNET_OF)
