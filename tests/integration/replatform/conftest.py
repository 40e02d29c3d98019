"""A lab of its own for re-platform tests (they power VMs off and launch instances), with a VPC on moto."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws.common import AwsClients, make_clients
from adapters.aws.ebs_blocks import BLOCK_SIZE, is_zero, iter_blocks
from adapters.aws.settings import aws_settings
from adapters.vcenter.connection import connect
from adapters.vcenter.datastore_http import DatastoreFiles
from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.lab.manager import LabInfo
from tests.helpers import CliResult, run_cli
from tests.integration.conftest import site_copy
from tests.integration.migration.conftest import estate, start_lab, vms_by_uuid

# The lab's VM IPs are 10.10.<100|110|120|130>.x by port group: one /24 subnet each keeps them valid.
SUBNET_OF = {"pg-infra": "10.10.100.0/24", "pg-web": "10.10.110.0/24", "pg-app": "10.10.120.0/24",
             "pg-db": "10.10.130.0/24"}
KEEP_IP = {"pg-infra": False, "pg-web": False, "pg-app": True, "pg-db": True}


@dataclass
class World:
    """The lab, its AWS side and the files the tests run the CLI with."""

    lab: LabInfo
    work: Path
    site_file: Path                  # the lab's site.yaml plus aws.networks
    site: SiteConfig
    inventory: Path
    clients: AwsClients
    vpc: dict[str, Any]
    vms: dict[str, dict[str, Any]]   # estate.json's VMs by name

    def site_variant(self, name: str, change: Any) -> Path:
        """A copy of site_file changed by `change(doc)`."""
        doc = yaml.safe_load(self.site_file.read_text())
        change(doc)
        path = self.work / f"site-{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def plan(self, name: str, vm_names: list[str], **wave: Any) -> Path:
        """plan.yaml with one replatform wave of the named VMs."""
        doc = {"version": 1, "waves": [{"id": 1, "name": name, "method": "replatform",
                                        "vms": [self.vms[n]["instance_uuid"] for n in vm_names], **wave}]}
        path = self.work / f"plan-{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def cli(self, *args: str | Path, site: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 180) -> CliResult:
        return run_cli(*args, "--config", site or self.site_file, env=env, timeout=timeout)

    def run(self, plan: Path, journal: Path, *extra: str | Path, site: Path | None = None,
            env: dict[str, str] | None = None) -> CliResult:
        return self.cli("run", plan, "--inventory", self.inventory, "--journal", journal, "--no-capacity", "--json",
                        *extra, site=site, env=env)

    def source_vms(self) -> dict[str, dict[str, Any]]:
        """The source vCenter's VMs by instanceUuid (name, power state...)."""
        with connect(self.site.source) as vc:
            return {uuid: found[0] for uuid, found in vms_by_uuid(vc).items()}

    def source_blocks(self, vm_name: str) -> list[dict[int, bytes]]:
        """Each disk of a seeded VM as {block index: sha256} of its non-zero 512 KiB blocks (from the datastore)."""
        assert self.site.source.datacenter
        out = []
        with connect(self.site.source) as vc:
            files = DatastoreFiles(vc)
            try:
                for disk in self.vms[vm_name]["disks"]:
                    chunks = files.download(self.site.source.datacenter, disk["datastore"], disk["path"])
                    out.append({i: hashlib.sha256(b).digest() for i, b in iter_blocks(chunks, disk["seeded_bytes"])
                                if not is_zero(b)})
            finally:
                files.close()
        return out


@pytest.fixture(scope="package")
def rlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "replatform", 10, 11)


@pytest.fixture(scope="package")
def world(rlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(rlab, tmp_path_factory.mktemp("replatform-work"))


def build_world(rlab: LabInfo, work: Path) -> World:
    """A VPC with one subnet per lab port group and a security group on moto; site.yaml maps pg-* to them;
    the lab discovered into inventory.json."""
    base = site_copy(rlab, work)
    site = load_site_config(base)
    assert aws_settings(site.replatformer) is not None
    clients = make_clients(aws_settings(site.replatformer))
    ec2 = clients.ec2
    vpc_id = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnets = {pg: ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
               for pg, cidr in SUBNET_OF.items()}
    group = ec2.create_security_group(GroupName="replatformed", Description="re-platformed", VpcId=vpc_id)["GroupId"]
    doc = yaml.safe_load(base.read_text())
    doc["replatformer"]["networks"] = {
        pg: {"subnet_id": subnet, "security_group_ids": [group], "keep_private_ip": KEEP_IP[pg]}
        for pg, subnet in subnets.items()}
    site_file = work / "site.yaml"
    site_file.write_text(yaml.safe_dump(doc))
    inventory = work / "inventory.json"
    found = run_cli("discover", "--config", site_file, "--out", inventory)
    assert found.code == 0, found
    return World(lab=rlab, work=work, site_file=site_file, site=load_site_config(site_file), inventory=inventory,
                 clients=clients, vpc={"vpc_id": vpc_id, "subnets": subnets, "security_group": group},
                 vms={vm["name"]: vm for vm in estate(rlab)["vms"]})


def block_count(disk: dict[str, Any]) -> int:
    return -(-int(disk["seeded_bytes"]) // BLOCK_SIZE)
