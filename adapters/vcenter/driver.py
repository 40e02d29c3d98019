"""The vcenter driver: a vCenter as the source (on-prem) or the target (the cloud SDDC) of a migration."""

from __future__ import annotations

from typing import Any

from adapters.vcenter.check import check_vcenter
from adapters.vcenter.cluster import open_host_cluster
from adapters.vcenter.settings import VCenterEndpoint
from adapters.vcenter.source import VCenterSource
from adapters.vcenter.target import VCenterTarget
from migrate.core.drivers import ConnectOptions, Driver, Role

__all__ = ["VCENTER"]


def _connect(role: Role, settings: VCenterEndpoint, options: ConnectOptions) -> Any:
    if role is Role.SOURCE:
        return VCenterSource(settings, shutdown_grace=options.shutdown_grace)
    return VCenterTarget(settings)


VCENTER = Driver(
    name="vcenter",
    description="VMware vCenter through the vSphere API (pyvmomi) and the vAPI REST endpoint",
    roles=frozenset({Role.SOURCE, Role.TARGET}),
    settings=VCenterEndpoint,
    connect=_connect,
    check=check_vcenter,
    host_cluster=open_host_cluster,
)
