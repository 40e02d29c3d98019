"""The host provisioner drivers: `ec2` (EC2 dedicated hosts) and `evs` (Amazon Elastic VMware Service hosts)."""

from __future__ import annotations

from typing import Any

from adapters.capacity.ec2 import Ec2HostProvisioner
from adapters.capacity.evs import EvsHostProvisioner
from adapters.capacity.settings import Ec2ProvisionerSettings, EvsProvisionerSettings
from migrate.core.drivers import ConnectOptions, Driver, Role

__all__ = ["EC2", "EVS"]


def _ec2(role: Role, settings: Ec2ProvisionerSettings, options: ConnectOptions) -> Ec2HostProvisioner:
    return Ec2HostProvisioner.from_settings(settings)


def _evs(role: Role, settings: EvsProvisionerSettings, options: ConnectOptions) -> EvsHostProvisioner:
    return EvsHostProvisioner.from_settings(settings)


def _check_ec2(settings: Ec2ProvisionerSettings) -> dict[str, Any]:
    provisioner = Ec2HostProvisioner.from_settings(settings)
    try:
        zone = provisioner.availability_zone()
    finally:
        provisioner.close()
    return {"availability_zone": zone, "summary": f"EC2 dedicated hosts in {zone}"}


def _check_evs(settings: EvsProvisionerSettings) -> dict[str, Any]:
    provisioner = EvsHostProvisioner.from_settings(settings)
    try:
        hosts = provisioner.find({})
    finally:
        provisioner.close()
    return {"environment_id": settings.environment_id, "hosts": len(hosts),
            "summary": f"EVS environment {settings.environment_id}, {len(hosts)} host(s) of ours"}


EC2 = Driver(
    name="ec2",
    description="EC2 dedicated hosts of a bare-metal instance type as new hosts of the target cluster",
    roles=frozenset({Role.HOST_PROVISIONER}),
    settings=Ec2ProvisionerSettings,
    connect=_ec2,
    check=_check_ec2,
)

EVS = Driver(
    name="evs",
    description="Amazon Elastic VMware Service hosts as new hosts of the target cluster",
    roles=frozenset({Role.HOST_PROVISIONER}),
    settings=EvsProvisionerSettings,
    connect=_evs,
    check=_check_evs,
)
