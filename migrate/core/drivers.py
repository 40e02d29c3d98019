"""Drivers, libcloud style: a driver implements provider roles (source, target, replatformer, host
provisioner) and validates its own section of site.yaml with its own settings model.

Drivers are found through the entry-point group `migrate.drivers` (the built-in ones register the same
way as a third-party package's), so a new target is a package, not a change to this one:

    [project.entry-points."migrate.drivers"]
    vcenter = "adapters.vcenter.driver:VCENTER"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from migrate.core.errors import InputError, OperationalError
from migrate.core.plugins import PluginRegistry

if TYPE_CHECKING:
    from migrate.core.block_progress import BlockProgress
    from migrate.core.capacity_ports import HostCluster
    from migrate.core.config import DriverSettings
    from migrate.core.ports import ReplatformCatalog

__all__ = ["DEFAULT_DRIVERS", "ENTRY_POINT_GROUP", "ConnectOptions", "Driver", "Role", "driver_names",
           "driver_registry", "get_driver"]

ENTRY_POINT_GROUP = "migrate.drivers"


class Role(StrEnum):
    """A provider role: what a method needs from the site and what a driver implements."""

    SOURCE = "source"
    TARGET = "target"
    REPLATFORMER = "replatformer"
    HOST_PROVISIONER = "host_provisioner"


# The driver a role's section of site.yaml uses when it names none (today's, so older files keep working).
DEFAULT_DRIVERS: Mapping[Role, str] = {Role.SOURCE: "vcenter", Role.TARGET: "vcenter", Role.REPLATFORMER: "aws",
                                       Role.HOST_PROVISIONER: "ec2"}


@dataclass(frozen=True)
class ConnectOptions:
    """What the engine gives a driver when it opens a role's adapter."""

    shutdown_grace: float = 120.0                   # seconds a guest shutdown may take (source role)
    block_progress: BlockProgress | None = None      # where block copies record their progress (journal)


@dataclass(frozen=True)
class Driver:
    """One provider driver: its roles, its settings model, and how to open an adapter for a role.

    `connect(role, settings, options)` returns the role's adapter (it implements the role's port in
    migrate.core.ports and has `close()`); it logs in lazily, so opening is cheap and offline.
    `check(settings)` logs in and returns what the provider says about itself (`summary`: one line).
    `catalog(settings)` (replatformer drivers) returns what a re-platform plan is fixed from: the instance
    types on offer and each port group's network placement (migrate.core.ports.ReplatformCatalog).
    `host_cluster(settings)` (target drivers) opens the cluster whose hosts the capacity step manages
    (migrate.core.capacity_ports.HostCluster; it logs in lazily and has `close()`).
    """

    name: str
    description: str
    roles: frozenset[Role]
    settings: type[DriverSettings]
    connect: Callable[[Role, Any, ConnectOptions], Any]
    check: Callable[[Any], dict[str, Any]] | None = None   # `migrate check`: log in, say what answers (read-only)
    catalog: Callable[[Any], ReplatformCatalog] | None = None   # replatformer: what plans are fixed from
    host_cluster: Callable[[Any], HostCluster] | None = None    # target: the cluster capacity adds hosts to
    extra: Mapping[str, Any] = field(default_factory=dict)   # ex_ verbs a driver offers beyond its ports

    def __post_init__(self) -> None:
        if not self.roles:
            raise OperationalError(f"driver {self.name}: declares no role")


_plugins = PluginRegistry(ENTRY_POINT_GROUP, Driver, lambda d: d.name)


def driver_registry() -> Mapping[str, Driver]:
    """Every installed driver by name (entry points of `migrate.drivers`, loaded once)."""
    return _plugins()


def driver_names(role: Role | None = None) -> list[str]:
    """The installed drivers' names (those implementing `role`, when given), sorted."""
    return sorted(name for name, d in driver_registry().items() if role is None or role in d.roles)


def get_driver(name: str, role: Role, *, file: str = "site.yaml", field_name: str = "driver") -> Driver:
    """The installed driver `name` for `role`; InputError naming the known ones if there is none."""
    driver = driver_registry().get(name)
    if driver is None or role not in driver.roles:
        known = ", ".join(driver_names(role)) or "none installed"
        what = "unknown driver" if driver is None else f"driver {name!r} does not implement the {role} role:"
        raise InputError.single(file, field_name, f"{what} {name!r} (known {role} drivers: {known})"
                                if driver is None else f"{what} known {role} drivers: {known}")
    return driver
