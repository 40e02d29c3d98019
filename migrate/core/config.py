"""The shape of site.yaml that the engine reads, and what every driver's settings model builds on.

Each provider role's section (`source`, `target`, `replatformer`, the capacity `provisioner`) is
validated by the settings model of the driver it names (`driver:`, see migrate.core.drivers); this
module knows only their common base. Reading site.yaml (with the drivers) is migrate.config's job.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    AliasChoices,
    Field,
    GetJsonSchemaHandler,
    SerializeAsAny,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue

from migrate.core.drivers import DEFAULT_DRIVERS, Driver, Role, driver_names, driver_registry, get_driver
from migrate.core.errors import InputError, Problem
from migrate.core.fileio import validation_problems
from migrate.core.models.base import StrictModel
from migrate.core.redact import register_secret

__all__ = [
    "CapacityConfig",
    "DriverSettings",
    "EngineConfig",
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
MAX_SOURCES = 64                # site.yaml `sources`


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

    def source_name(self) -> str:
        """This section's name among a site's sources (site.yaml `sources`): its `name`, else its driver's."""
        return str(getattr(self, "name", "") or self.driver)

    def serves(self, source: str) -> bool:
        """Whether VMs an inventory says come from `source` (`Vm.source`) are read through this section."""
        return source == self.source_name()


PROVISIONER = "capacity.provisioner"   # the host provisioner driver's section of site.yaml
# Fields of `capacity` from before provisioner drivers: with `provisioner: <driver name>` they go to that
# driver's section (those it has), so older site.yaml files keep working.
LEGACY_PROVISIONER_FIELDS = ("availability_zone", "host_domain", "evs_environment_id", "evs_key_name",
                             "esxi_username", "esxi_password_env")


class _ProvisionerSchema:
    """The JSON Schema of `capacity.provisioner`: an installed provisioner driver's name, or its section."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        drivers = [driver_registry()[name] for name in driver_names(Role.HOST_PROVISIONER)]
        models = tuple(d.settings for d in drivers)
        if not models:
            return handler(core_schema)
        union: Any = models[0] if len(models) == 1 else Annotated[Union[models], Field(discriminator="driver")]  # noqa: UP007
        section = handler(TypeAdapter(union).core_schema)
        return {"anyOf": [{"type": "string", "enum": [d.name for d in drivers]}, section],
                "description": "the host provisioner driver (migrate.drivers entry points): its name, or its section "
                               "with `driver:` and its settings"}


def _provisioner_driver(name: Any) -> Driver:
    if not isinstance(name, str):
        raise ValueError("driver must be a host provisioner driver's name")
    try:
        return get_driver(name, Role.HOST_PROVISIONER)
    except InputError as exc:
        raise ValueError(exc.problems[0].message) from None


def _by_field(model: type[DriverSettings], values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` that `model` has a field for (by name or alias), keyed by field name."""
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        keys = [name, *(alias.choices if isinstance(alias, AliasChoices) else [alias] if alias else [])]
        for key in keys:
            if isinstance(key, str) and key in values:
                found[name] = values[key]
                break
    return found


def _default_provisioner() -> DriverSettings:
    name = DEFAULT_DRIVERS[Role.HOST_PROVISIONER]
    return get_driver(name, Role.HOST_PROVISIONER).settings.model_validate({"driver": name})


class CapacityConfig(StrictModel):
    """Bare-metal capacity of the target cluster: what `migrate run` and `migrate capacity` add per wave."""

    host_type: str = Field("i4i.metal", description="EC2 bare-metal instance type of new hosts")
    provisioner: Annotated[SerializeAsAny[DriverSettings], _ProvisionerSchema()] = Field(
        default_factory=_default_provisioner)
    min_hosts: int | None = Field(None, ge=1, le=MAX_CLUSTER_HOSTS,
                                  description="cluster minimum (default: the vSAN policy's)")
    spare_hosts: int = Field(1, ge=0, le=MAX_CLUSTER_HOSTS, description="hosts kept free for failures (N+1)")
    vcpu_per_core: float = Field(4.0, gt=0, le=MAX_VCPU_PER_CORE, allow_inf_nan=False,
                                 description="CPU overcommit: vCPUs per physical core")
    memory_max_util: float = Field(0.7, gt=0, le=1, allow_inf_nan=False,
                                   description="highest memory use allowed per host")
    availability_zone: str | None = Field(None, description="EC2 zone of new hosts (default: the region's first); "
                                                            "with `provisioner: ec2` only")
    host_domain: str | None = Field(None, description="DNS suffix of new hosts' names in the cloud vCenter "
                                                      "(default sddc.internal); with `provisioner: <name>` only")
    evs_environment_id: str | None = Field(None, description="with `provisioner: evs` only")
    evs_key_name: str | None = Field(None, description="with `provisioner: evs` only")
    esxi_username: str | None = Field(None, description="with `provisioner: <name>` only (default root)")
    esxi_password_env: str | None = Field(None, description="environment variable holding new hosts' root "
                                                            "password; with `provisioner: <name>` only")

    @model_validator(mode="before")
    @classmethod
    def _legacy_fields(cls, data: Any) -> Any:
        """`provisioner: <name>` (or none) and the fields of before provisioner drivers: that driver's section."""
        if not isinstance(data, Mapping):
            return data
        value = data.get("provisioner", DEFAULT_DRIVERS[Role.HOST_PROVISIONER])
        legacy = {k: data[k] for k in LEGACY_PROVISIONER_FIELDS if data.get(k) is not None}
        if isinstance(value, str):
            try:
                model = _provisioner_driver(value).settings
            except ValueError:
                model = None   # reported by the provisioner's validation
            section = {"driver": value, **(_by_field(model, legacy) if model else {})}
            return {**data, "provisioner": section}
        if legacy and not isinstance(value, DriverSettings):
            raise ValueError(f"{', '.join(legacy)}: give them inside provisioner (with its driver)")
        return data

    @field_validator("provisioner", mode="before")
    @classmethod
    def _provisioner_section(cls, value: Any) -> Any:
        """The section validated by its driver's settings model."""
        if isinstance(value, DriverSettings):
            return value
        if not isinstance(value, Mapping):
            raise ValueError("must be a host provisioner driver's name or a mapping with its `driver:`")
        driver = _provisioner_driver(value.get("driver", DEFAULT_DRIVERS[Role.HOST_PROVISIONER]))
        return driver.settings.model_validate({**value, "driver": driver.name})

    def with_provisioner(self, driver: str | None = None, **fields: Any) -> DriverSettings:
        """The provisioner's settings (or `driver`'s, when it is another) with `fields` (named as the fields of
        before provisioner drivers, or as the driver's own) overriding those it has; InputError (file
        `capacity.provisioner`) naming each bad field."""
        name = driver or self.provisioner.driver
        try:
            model = _provisioner_driver(name).settings
        except ValueError as exc:
            raise InputError.single(PROVISIONER, "driver", str(exc)) from None
        base = self.provisioner.model_dump(exclude_unset=True) if model is type(self.provisioner) else {}
        return validation_problems(model, {**base, **_by_field(model, fields), "driver": name}, PROVISIONER)


class Mappings(StrictModel):
    """Source name -> target name, for port groups and datastores."""

    networks: dict[str, str] = Field(default_factory=dict)
    datastores: dict[str, str] = Field(default_factory=dict)
    test_networks: dict[str, str] = Field(
        default_factory=dict, description="source port group -> an isolated target network for test migrations "
                                          "(`migrate test`); the VM's own networks are never used for a test copy")


class EngineConfig(StrictModel):
    """Where `migrate run --engine temporal` and `migrate worker` find Temporal, and their task queues."""

    address: str = Field("127.0.0.1:7233", min_length=1, max_length=255,
                         description="host:port of the Temporal frontend")
    namespace: str = Field("default", min_length=1, max_length=255)
    task_queue: str = Field("migrate", min_length=1, max_length=255,
                            description="the queue of the workflows and the control phases (any worker)")
    data_task_queue: str | None = Field(
        None, min_length=1, max_length=255,
        description="the queue of the phases that move disk bytes: workers placed near the source vCenter poll "
                    "it (default: task_queue)")
    data_task_queues: dict[str, str] = Field(
        default_factory=dict, max_length=MAX_SOURCES,
        description="source name (site.yaml `sources`) -> the queue of its VMs' disk-moving phases, polled by workers "
                    "near that vCenter (sources not listed: data_task_queue)")
    tls: bool = Field(False, description="connect with TLS (a Temporal cluster; the dev server speaks plain gRPC)")
    queue_timeout_s: float = Field(600.0, ge=1, le=7 * 86400, allow_inf_nan=False,
                                   description="a phase no worker takes from its queue within this fails its VM")
    heartbeat_timeout_s: float = Field(30.0, ge=1, le=3600, allow_inf_nan=False,
                                       description="a phase whose worker went silent this long runs on another one")

    @property
    def data_queue(self) -> str:
        """The queue disk-moving phases go to (of VMs of sources without their own)."""
        return self.data_task_queue or self.task_queue

    @property
    def data_queues(self) -> list[str]:
        """Every queue disk-moving phases may go to."""
        return list(dict.fromkeys([self.data_queue, *self.data_task_queues.values()]))


class SiteConfig(StrictModel):
    """The whole site.yaml, each role's section already validated by its driver's settings model."""

    version: Literal[1] = SITE_CONFIG_VERSION
    source: SerializeAsAny[DriverSettings]
    sources: list[SerializeAsAny[DriverSettings]] = Field(
        default_factory=list, max_length=MAX_SOURCES,
        description="several sources (on-prem vCenters), each with its own `name`: discovered in parallel into one "
                    "inventory, each VM run through the one it came from (give either source or sources)")
    target: SerializeAsAny[DriverSettings] | None = None
    replatformer: SerializeAsAny[DriverSettings] | None = Field(
        None, description="where re-platformed VMs go (`aws:` is read as `replatformer:` with the aws driver)")
    mappings: Mappings = Field(default_factory=Mappings)
    capacity: CapacityConfig | None = Field(None, description="grow the target cluster per wave (default settings "
                                                              "when absent; `migrate run --no-capacity` skips it)")
    engine: EngineConfig | None = Field(None, description="the Temporal engine (`migrate run --engine temporal`, "
                                                          "`migrate worker`)")

    @model_validator(mode="after")
    def _sources_named_apart(self) -> Self:
        names = [section.source_name() for section in self.sources]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"sources: each needs its own name; {', '.join(twice)} is given more than once")
        unknown = sorted(set(self.engine.data_task_queues) - set(self.source_sections)) if self.engine else []
        if unknown:
            raise ValueError(f"engine.data_task_queues: {', '.join(unknown)} names no source "
                             f"(sources: {', '.join(self.source_sections)})")
        return self

    @property
    def source_sections(self) -> dict[str, DriverSettings]:
        """Every source by name (one, `source`, unless site.yaml lists `sources`)."""
        return {section.source_name(): section for section in self.sources or [self.source]}

    def source_of(self, vm_source: str | None) -> str | None:
        """The name of the source serving VMs an inventory says come from `vm_source` (None: none does)."""
        if vm_source is None:
            return None
        return next((name for name, section in self.source_sections.items() if section.serves(vm_source)), None)

    def relative_to(self, base: Path) -> SiteConfig:
        """Resolve every relative file path against `base` (the site.yaml's folder)."""
        capacity = self.capacity
        if capacity is not None:
            capacity = capacity.model_copy(update={"provisioner": capacity.provisioner.relative_to(base)})
        return self.model_copy(update={
            "source": self.source.relative_to(base),
            "sources": [section.relative_to(base) for section in self.sources],
            "target": self.target.relative_to(base) if self.target else None,
            "replatformer": self.replatformer.relative_to(base) if self.replatformer else None,
            "capacity": capacity,
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
