"""The aws driver: native EC2 instances as the replatformer (EBS direct APIs, AMIs, instances), and the
catalog a re-platform plan is fixed from (EC2 instance types, site.yaml's port group -> subnet mapping)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.aws.instance_types import fetch_instance_types
from adapters.aws.replatformer import AwsReplatformer
from adapters.aws.session import check_aws
from adapters.aws.settings import AwsNetworkMapping, AwsSettings
from migrate.core.drivers import ConnectOptions, Driver, Role
from migrate.core.ports import NetworkPlacement

__all__ = ["AWS", "AwsCatalog"]


class AwsCatalog:
    """migrate.core.ports.ReplatformCatalog of site.yaml's aws replatformer: DescribeInstanceTypes in its
    region and its `networks` mapping (read-only; the EC2 API is asked only for instance types)."""

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings

    @property
    def region(self) -> str:
        return self.settings.region

    def instance_types(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        if names is not None and not names:
            return []   # fetch_instance_types reads no names as every current-generation type
        return fetch_instance_types(self.settings, None if names is None else list(names))

    def network_of(self, portgroup: str) -> NetworkPlacement | None:
        return _placement(self.settings.networks.get(portgroup))

    def test_network_of(self, portgroup: str) -> NetworkPlacement | None:
        return _placement(self.settings.test_networks.get(portgroup))


def _placement(mapping: AwsNetworkMapping | None) -> NetworkPlacement | None:
    if mapping is None:
        return None
    return NetworkPlacement(subnet_id=mapping.subnet_id, security_group_ids=tuple(mapping.security_group_ids),
                            keep_private_ip=mapping.keep_private_ip)


def _connect(role: Role, settings: AwsSettings, options: ConnectOptions) -> AwsReplatformer:
    return AwsReplatformer(settings, progress=options.block_progress)


AWS = Driver(
    name="aws",
    description="AWS: re-platform VMs to native EC2 instances (EBS direct APIs, AMI import, launch)",
    roles=frozenset({Role.REPLATFORMER}),
    settings=AwsSettings,
    connect=_connect,
    check=check_aws,
    catalog=AwsCatalog,
)
