"""The shape of site.yaml that the engine reads, and what every driver's settings model builds on.

Each provider role's section (`source`, `target`, `replatformer`, the capacity `provisioner`) is
validated by the settings model of the driver it names (`driver:`, see migrate.core.drivers); this
module knows only their common base. Reading site.yaml (with the drivers) is migrate.config's job.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SerializeAsAny

from migrate.core.errors import InputError, Problem
from migrate.core.models.base import StrictModel
from migrate.core.redact import register_secret

__all__ = [
    "CapacityConfig",
    "DriverSettings",
    "Mappings",
    "Placement",
    "SiteConfig",
    "file_problems",
    "password_file_problems",
    "read_secret",
]

SITE_CONFIG_VERSION: Literal[1] = 1
MAX_CLUSTER_HOSTS = 1000        # min_hosts and spare_hosts of one cluster (vSphere allows 96 hosts)
MAX_VCPU_PER_CORE = 64.0        # CPU overcommit
SHOWN_PATH = 120                # characters of a bad path shown in a message


@dataclass(frozen=True)
class Placement:
    """Where a target puts new VMs (each None: the target's default)."""

    cluster: str | None = None
    folder: str | None = None
    resource_pool: str | None = None
    datastore: str | None = None


class DriverSettings(StrictModel):
    """A role's section of site.yaml; each driver subclasses it with `driver: Literal["<its name>"]`."""

    driver: str = Field(..., description="the driver that implements this role (migrate.drivers entry points)")

    def relative_to(self, base: Path) -> Self:
        """A copy with every relative file path resolved against `base` (the site.yaml's folder)."""
        return self

    def file_problems(self, file: str, field: str, env: dict[str, str]) -> list[Problem]:
        """What is wrong outside the file: unset variables, missing or open password files ..."""
        return []

    def placement(self) -> Placement:
        """Where this target puts new VMs (target role)."""
        return Placement()


class CapacityConfig(StrictModel):
    """Bare-metal capacity of the target cluster: what `migrate run` and `migrate capacity` add per wave."""

    host_type: str = Field("i4i.metal", description="EC2 bare-metal instance type of new hosts")
    provisioner: Literal["ec2", "evs"] = Field("ec2", description="ec2: dedicated hosts; evs: Elastic VMware Service")
    min_hosts: int | None = Field(None, ge=1, le=MAX_CLUSTER_HOSTS,
                                  description="cluster minimum (default: the vSAN policy's)")
    spare_hosts: int = Field(1, ge=0, le=MAX_CLUSTER_HOSTS, description="hosts kept free for failures (N+1)")
    vcpu_per_core: float = Field(4.0, gt=0, le=MAX_VCPU_PER_CORE, allow_inf_nan=False,
                                 description="CPU overcommit: vCPUs per physical core")
    memory_max_util: float = Field(0.7, gt=0, le=1, allow_inf_nan=False,
                                   description="highest memory use allowed per host")
    availability_zone: str | None = Field(None, description="EC2 zone of new hosts (default: the region's first)")
    host_domain: str = Field("sddc.internal", description="DNS suffix of new hosts' names in the cloud vCenter")
    evs_environment_id: str | None = None
    evs_key_name: str | None = None
    esxi_username: str = "root"
    esxi_password_env: str | None = Field(None, description="environment variable holding new hosts' root password")


class Mappings(StrictModel):
    """Source name -> target name, for port groups and datastores."""

    networks: dict[str, str] = Field(default_factory=dict)
    datastores: dict[str, str] = Field(default_factory=dict)


class SiteConfig(StrictModel):
    """The whole site.yaml, each role's section already validated by its driver's settings model."""

    version: Literal[1] = SITE_CONFIG_VERSION
    source: SerializeAsAny[DriverSettings]
    target: SerializeAsAny[DriverSettings] | None = None
    replatformer: SerializeAsAny[DriverSettings] | None = Field(
        None, description="where re-platformed VMs go (`aws:` is read as `replatformer:` with the aws driver)")
    mappings: Mappings = Field(default_factory=Mappings)
    capacity: CapacityConfig | None = Field(None, description="grow the target cluster per wave (default settings "
                                                              "when absent; `migrate run --no-capacity` skips it)")

    def relative_to(self, base: Path) -> SiteConfig:
        """Resolve every relative file path against `base` (the site.yaml's folder)."""
        return self.model_copy(update={
            "source": self.source.relative_to(base),
            "target": self.target.relative_to(base) if self.target else None,
            "replatformer": self.replatformer.relative_to(base) if self.replatformer else None,
        })


def shown(path: Path) -> str:
    """A path as a message shows it (long ones cut)."""
    text = str(path)
    return text if len(text) <= SHOWN_PATH else f"{text[:SHOWN_PATH]}... ({len(text)} characters)"


def file_problems(path: Path, file: str, field: str) -> tuple[list[Problem], os.stat_result | None]:
    """The path's stat, or the Problem of a path the OS refuses (too long, a file as a folder, a loop, ...)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return [Problem(file, field, f"no such file: {shown(path)}")], None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [Problem(file, field, f"cannot use {shown(path)}: {reason}")], None
    if not stat.S_ISREG(info.st_mode):
        return [Problem(file, field, f"not a regular file: {shown(path)}")], None
    return [], info


def password_file_problems(path: Path, file: str, field: str) -> list[Problem]:
    """file_problems, and a password file readable by group or others is a problem too."""
    problems, info = file_problems(path, file, field)
    if info is not None and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [Problem(file, field, f"{shown(path)} is readable by group or others; chmod 600 it")]
    return problems


def read_secret(env_name: str | None, path: Path | None, field: str, env: dict[str, str] | None = None) -> str:
    """A secret from an environment variable or a file (`field` names them in errors), registered for redaction."""
    environ = os.environ if env is None else env
    if env_name:
        secret = environ.get(env_name)
        if secret is None:
            raise InputError.single("site config", f"{field}_env", f"environment variable {env_name} is not set")
    else:
        assert path is not None
        try:
            secret = path.read_text().rstrip("\r\n")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InputError.single(shown(path), f"{field}_file", f"cannot read password: {reason}") from None
    register_secret(secret)
    return secret
