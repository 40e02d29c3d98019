"""Settings of the host provisioner drivers (site.yaml `capacity.provisioner`): `ec2` and `evs`.

    capacity:
      provisioner: {driver: evs, environment_id: env-0123456789, key_name: ops-key}
      # or, as before provisioner drivers: provisioner: evs, evs_environment_id: ..., evs_key_name: ...

Both reach AWS with the account of their `aws` field, by default the site's `replatformer` section when it
is the aws driver's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field

from adapters.aws.settings import AwsSettings
from migrate.core.capacity_ports import ProvisionerSettings
from migrate.core.config import SiteConfig
from migrate.core.errors import InputError, Problem

__all__ = ["AwsProvisionerSettings", "Ec2ProvisionerSettings", "EvsProvisionerSettings"]


class AwsProvisionerSettings(ProvisionerSettings):
    """A provisioner of AWS hosts: the account they come from."""

    aws: AwsSettings | None = Field(None, description="the AWS account (default: the site's replatformer section "
                                                      "when its driver is aws)")

    def for_site(self, site: SiteConfig) -> Self:
        if self.aws is None and isinstance(site.replatformer, AwsSettings):
            return self.model_copy(update={"aws": site.replatformer})
        return self

    def complete(self) -> bool:
        return self.aws is not None

    def account(self) -> AwsSettings:
        """The AWS account; InputError when there is none."""
        if self.aws is None:
            raise InputError.single("site.yaml", "capacity.provisioner.aws", "an AWS account is needed to provision "
                                    "hosts: give one here or a replatformer section with driver: aws")
        return self.aws

    def relative_to(self, base: Path) -> Self:
        return self if self.aws is None else self.model_copy(update={"aws": self.aws.relative_to(base)})

    def file_problems(self, file: str, field: str, env: dict[str, str]) -> list[Problem]:
        problems = super().file_problems(file, field, env)
        return problems + (self.aws.file_problems(file, f"{field}.aws", env) if self.aws else [])


class Ec2ProvisionerSettings(AwsProvisionerSettings):
    """EC2 dedicated hosts of a bare-metal instance type."""

    driver: Literal["ec2"] = "ec2"
    availability_zone: str | None = Field(None, description="EC2 zone of new hosts (default: the region's first)")


class EvsProvisionerSettings(AwsProvisionerSettings):
    """Hosts of one Amazon Elastic VMware Service environment."""

    driver: Literal["evs"] = "evs"
    # both needed to add hosts, checked then (a site.yaml without them still serves every other command)
    environment_id: str | None = Field(None, min_length=1,
                                       validation_alias=AliasChoices("environment_id", "evs_environment_id"),
                                       description="the EVS environment to grow (env-...)")
    key_name: str | None = Field(None, min_length=1, validation_alias=AliasChoices("key_name", "evs_key_name"),
                                 description="EC2 key pair of new hosts")

    def missing(self) -> list[Problem]:
        options = {"environment_id": "--evs-environment", "key_name": "--evs-key-name"}
        return [Problem("site.yaml", f"capacity.provisioner.{name}", f"needed to add EVS hosts (or {option})")
                for name, option in options.items() if getattr(self, name) is None]

    def environment(self) -> tuple[str, str]:
        """The environment id and key pair; InputError naming each one missing."""
        if self.environment_id is None or self.key_name is None:
            raise InputError(self.missing())
        return self.environment_id, self.key_name
    esx_version: str | None = Field(None, description="ESX version of new hosts (default: the environment's)")
