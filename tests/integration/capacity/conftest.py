"""A lab of our own for the capacity tests: they add hosts to the cloud cluster, which the session lab's
other tests expect to hold exactly 3 hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from adapters.aws.session import aws_client
from adapters.aws.settings import aws_settings
from adapters.vcenter.collector import read_view, wait_for_task
from adapters.vcenter.connection import VCenterSession, connect
from adapters.vcenter.hosts import find_cluster, read_hosts
from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.core.models.inventory import Inventory
from migrate.discovery import discover
from migrate.lab.manager import LabInfo, lab_down, lab_up

BASE_HOSTS = 3   # Cluster-1 of the lab


@pytest.fixture(scope="package")
def cap_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    directory = tmp_path_factory.mktemp("caplab")
    info = lab_up(directory, vms=10, seed=7)
    try:
        yield info
    finally:
        lab_down(directory)


@pytest.fixture(scope="package")
def cap_site(cap_lab: LabInfo) -> SiteConfig:
    return load_site_config(cap_lab.site_config)


@pytest.fixture(scope="package")
def cap_cloud(cap_site: SiteConfig) -> Iterator[VCenterSession]:
    assert cap_site.target is not None
    with connect(cap_site.target) as session:
        yield session


@pytest.fixture(scope="package")
def cap_inventory(cap_lab: LabInfo) -> tuple[Inventory, Path]:
    out = cap_lab.directory / "inventory.json"
    inventory, _ = discover(cap_lab.site_config, out=out, utilisation=False)
    return inventory, out


@pytest.fixture
def ec2(cap_site: SiteConfig) -> Any:
    assert aws_settings(cap_site.replatformer) is not None
    return aws_client(aws_settings(cap_site.replatformer), "ec2")


def live_hosts(ec2: Any, plan_tag: str) -> list[dict[str, Any]]:
    """Dedicated hosts in moto carrying the plan tag and not released (checked with boto3 directly)."""
    hosts = ec2.describe_hosts()["Hosts"]
    return [h for h in hosts if h["State"] != "released"
            and {"Key": "migrate:plan", "Value": plan_tag} in h.get("Tags", [])]


def cluster_host_names(session: VCenterSession, site: SiteConfig) -> list[str]:
    """Host names in the cloud cluster, through pyvmomi."""
    assert site.target is not None and site.target.cluster
    return [h.name for h in read_hosts(session, find_cluster(session, site.target.datacenter, site.target.cluster))]


def create_placed_vm(session: VCenterSession, site: SiteConfig, name: str, cpus: int, memory_mb: int) -> None:
    """A VM already in the cloud cluster (what earlier waves placed)."""
    assert site.target is not None
    si = session.si
    cluster = find_cluster(session, site.target.datacenter, site.target.cluster or "")
    pool = next(obj for obj, _ in read_view(si, vim.ResourcePool, ["name"], root=cluster))
    folder = next(obj for obj, p in read_view(si, vim.Folder, ["name"]) if p.get("name") == site.target.folder)
    spec = vim.vm.ConfigSpec(name=name, numCPUs=cpus, memoryMB=memory_mb, guestId="otherGuest64",
                             files=vim.vm.FileInfo(vmPathName=f"[{site.target.datastore}]"))
    # name the host: vcsim picks a random one from the cluster's `host` list otherwise, which keeps hosts
    # removed by Destroy_Task (stale references) and then fails the request
    first = read_hosts(session, cluster)[0]
    host = vim.HostSystem(first.moref, si._stub)
    wait_for_task(si, folder.CreateVM_Task(config=spec, pool=pool, host=host), "create placed VM")


def add_disconnected_host(session: VCenterSession, site: SiteConfig, name: str) -> None:
    """Put a host into the cluster that never connects (vcsim: asConnected=False, no ReconnectHost_Task)."""
    assert site.target is not None
    cluster = find_cluster(session, site.target.datacenter, site.target.cluster or "")
    spec = vim.host.ConnectSpec(hostName=name, force=True)
    wait_for_task(session.si, cluster.AddHost_Task(spec=spec, asConnected=False), "add disconnected host")


def site_with(lab: LabInfo, tmp_path: Path, **aws_changes: object) -> Path:
    """A copy of the lab's site.yaml with absolute paths and some `aws` fields changed."""
    doc = yaml.safe_load(lab.site_config.read_text())
    for role in ("source", "target"):
        doc[role]["tls"]["ca_file"] = str(lab.directory / "tls" / "ca.pem")
        doc[role]["password_file"] = str(lab.directory / doc[role]["password_file"])
    doc["replatformer"]["credentials_file"] = str(lab.directory / "secrets" / "aws-credentials")
    doc["replatformer"]["ca_bundle"] = str(lab.directory / "tls" / "ca.pem")
    doc["replatformer"].update(aws_changes)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
