"""The aws driver: native EC2 instances as the replatformer (EBS direct APIs, AMIs, instances)."""

from __future__ import annotations

from adapters.aws.replatformer import AwsReplatformer
from adapters.aws.session import check_aws
from adapters.aws.settings import AwsSettings
from migrate.core.drivers import ConnectOptions, Driver, Role

__all__ = ["AWS"]


def _connect(role: Role, settings: AwsSettings, options: ConnectOptions) -> AwsReplatformer:
    return AwsReplatformer(settings, progress=options.block_progress)


AWS = Driver(
    name="aws",
    description="AWS: re-platform VMs to native EC2 instances (EBS direct APIs, AMI import, launch)",
    roles=frozenset({Role.REPLATFORMER}),
    settings=AwsSettings,
    connect=_connect,
    check=check_aws,
)
