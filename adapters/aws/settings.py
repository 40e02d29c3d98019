"""Settings of the aws driver: the AWS account that re-platformed VMs (and new bare-metal hosts) go to."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from migrate.core.config import DriverSettings, file_problems
from migrate.core.errors import InputError, Problem
from migrate.core.models.base import StrictModel

__all__ = ["AwsNetworkMapping", "AwsSettings", "aws_network_problems", "aws_settings"]


class AwsNetworkMapping(StrictModel):
    """Where a NIC on one VMware port group lands when its VM is re-platformed to a native EC2 instance."""

    subnet_id: str = Field(..., pattern=r"^subnet-[0-9a-f]+$", description="EC2 subnet for NICs on this port group")
    security_group_ids: list[str] = Field(
        default_factory=list, description="security groups for those NICs (empty: the VPC's default group)")
    keep_private_ip: bool = Field(
        False, description="launch with the VM's current IP as the NIC's private IP (it must lie in the subnet)")

    @field_validator("security_group_ids")
    @classmethod
    def _group_ids(cls, value: list[str]) -> list[str]:
        bad = [g for g in value if not g.startswith("sg-")]
        if bad:
            raise ValueError(f"not security group ids (sg-...): {', '.join(bad)}")
        return value


class AwsSettings(DriverSettings):
    """AWS account access. Credentials come from the standard chain unless a profile/file is named."""

    driver: Literal["aws"] = "aws"
    region: str = Field(..., min_length=1)
    endpoint_url: str | None = Field(None, description="override the service endpoint (e.g. the lab's moto)")
    profile: str | None = None
    credentials_file: Path | None = Field(None, description="shared credentials file to use instead of ~/.aws")
    ca_bundle: Path | None = Field(None, description="PEM bundle to verify the endpoint's TLS certificate")
    networks: dict[str, AwsNetworkMapping] = Field(
        default_factory=dict,
        description="VMware port group name -> EC2 subnet, security groups and private-IP policy, used when "
                    "re-platforming to native EC2; every NIC's port group needs an entry")
    test_networks: dict[str, AwsNetworkMapping] = Field(
        default_factory=dict,
        description="VMware port group name -> the isolated EC2 subnet and security groups that test "
                    "migrations launch re-platformed VMs into (same shape as `networks`), kept apart from the "
                    "production subnets so a test instance never meets its running source; `migrate lab up` "
                    "writes one isolated test subnet for every lab port group")

    @field_validator("test_networks")
    @classmethod
    def _test_networks_isolated(cls, value: dict[str, AwsNetworkMapping],
                                info: ValidationInfo) -> dict[str, AwsNetworkMapping]:
        production = {m.subnet_id for m in (info.data.get("networks") or {}).values()}
        shared = sorted({f"{pg} ({m.subnet_id})" for pg, m in value.items() if m.subnet_id in production})
        if shared:
            raise ValueError(f"a test subnet must not be a production subnet of `networks`: {', '.join(shared)}")
        return value

    def relative_to(self, base: Path) -> AwsSettings:
        update = {name: base / value for name in ("credentials_file", "ca_bundle")
                  if (value := getattr(self, name)) is not None and not value.is_absolute()}
        return self.model_copy(update=update)

    def file_problems(self, file: str, field: str, env: dict[str, str]) -> list[Problem]:
        problems: list[Problem] = []
        for name in ("credentials_file", "ca_bundle"):
            value = getattr(self, name)
            if value is not None:
                problems.extend(file_problems(value, file, f"{field}.{name}")[0])
        return problems


def aws_settings(settings: DriverSettings | None, file: str = "site.yaml") -> AwsSettings:
    """`settings` (site.yaml `replatformer`) as AWS settings; InputError when there are none or another driver's."""
    if isinstance(settings, AwsSettings):
        return settings
    found = "no replatformer (or aws) section" if settings is None else f"driver {settings.driver!r}"
    raise InputError.single(file, "replatformer", f"needs an AWS account (driver: aws), found {found}")


def aws_network_problems(aws: AwsSettings | None, vm: str, portgroups: Iterable[str],
                         file: str = "site.yaml") -> list[Problem]:
    """One Problem per NIC port group of `vm` that has no `networks` entry (checked before any launch)."""
    mapped = aws.networks if aws else {}
    return [Problem(file, f"replatformer.networks.{pg}", f"VM {vm}: no EC2 subnet mapped for port group {pg!r}")
            for pg in dict.fromkeys(portgroups) if pg not in mapped]
