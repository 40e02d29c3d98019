"""The ports the capacity step drives: a host provisioner (bare-metal hosts from a cloud) and the target's
cluster (its hosts and placed VMs, adding and removing hosts), with the plain data they exchange.

Rules for implementations (as in migrate/core/ports.py):

- `HostProvisioner.allocate(count, host_type, tags, idempotency_key)` returns `count` hosts for that key.
  Hosts already allocated under the same key count toward `count`: a repeat (after a crash, a retry, a
  resume) allocates nothing more and returns the same hosts. Providers that honour client tokens get one
  derived from the key too, so a repeat whose look-up missed fresh hosts is still deduplicated.
- `find(tags)` returns every live (not released) host carrying all of `tags`; `release(host_ids)` gives
  hosts back, and releasing a host that is already gone is not an error.
- `HostCluster.add_host` adds a host that is not in the cluster by name and does nothing for one that is;
  the caller waits for it to connect (`host`), then `admit_host` makes it ready for VMs.
- failures raise migrate.core.errors.AdapterError mapped from the provider's error code, never from
  message text; retryable when trying again may help. A host type the provider does not know is an
  InputError.

Host provisioner drivers (role HOST_PROVISIONER) validate `capacity.provisioner` of site.yaml with a
`ProvisionerSettings` subclass. A target driver offers its cluster as `Driver.host_cluster`: a callable
(target settings) -> HostCluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import Field

from migrate.core.config import DriverSettings, read_secret
from migrate.core.errors import Problem

if TYPE_CHECKING:
    from migrate.core.config import SiteConfig

__all__ = [
    "TAG_KEY",
    "TAG_PLAN",
    "TAG_WAVE",
    "ClusterInfo",
    "HostCluster",
    "HostInfo",
    "HostLogin",
    "HostProvisioner",
    "PlacedVm",
    "ProvisionedHost",
    "ProvisionerSettings",
]

TAG_PLAN = "migrate:plan"     # the plan (or run) the host was added for
TAG_WAVE = "migrate:wave"     # the wave that needed it
TAG_KEY = "migrate:key"       # the idempotency key of the allocation


# -- host provisioner --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProvisionedHost:
    """One bare-metal host as the provider sees it, plus the DNS name the cloud vCenter will know it by.

    `ready`: it can be added to the cluster now; `failed`: it never will be (the provider says why in `detail`).
    """

    id: str
    name: str
    host_type: str
    state: str
    ready: bool
    failed: bool = False
    zone: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HostLogin:
    """How the cluster's manager logs in to a new host: user, password, expected thumbprints by host name.

    Without an expected thumbprint, the one the host presents is refused unless `trust_on_first_use`.
    """

    username: str = "root"
    password: str | None = field(default=None, repr=False)
    thumbprints: Mapping[str, str] = field(default_factory=dict)
    trust_on_first_use: bool = False
    force: bool = False


@runtime_checkable
class HostProvisioner(Protocol):
    """Bare-metal hosts from one provider (EC2 dedicated hosts, Amazon EVS hosts)."""

    kind: str

    def supported_host_types(self) -> list[str] | None:
        """The host types this provider can give, or None when `host_type_specs` alone decides."""
        ...

    def host_type_specs(self, host_type: str) -> Mapping[str, Any]:
        """The type's specs as a planners.instance_types.InstanceType record; InputError when unknown."""
        ...

    def allocate(self, count: int, host_type: str, tags: Mapping[str, str],
                 idempotency_key: str) -> list[ProvisionedHost]:
        """`count` hosts of `host_type` carrying `tags` for this key (see the module docstring)."""
        ...

    def find(self, tags: Mapping[str, str]) -> list[ProvisionedHost]:
        """Every live host carrying all of `tags`, sorted by name."""
        ...

    def release(self, host_ids: Sequence[str]) -> list[str]:
        """Give the hosts back; returns the ids released."""
        ...

    def host_login(self, host: ProvisionedHost) -> HostLogin:
        """How the cluster logs in to `host` (the provider set up its credentials)."""
        ...

    def close(self) -> None:
        """Let go of connections."""
        ...


class ProvisionerSettings(DriverSettings):
    """What every host provisioner driver's section (`capacity.provisioner`) has; drivers add their own fields."""

    host_domain: str = Field("sddc.internal", description="DNS suffix of new hosts' names in the cloud vCenter")
    esxi_username: str = Field("root", description="user the cloud vCenter logs in to new hosts with")
    esxi_password_env: str | None = Field(None, description="environment variable holding new hosts' root password")
    trust_host_thumbprint: bool = Field(False, description="accept the certificate a new host presents "
                                                           "(trust on first use)")

    def for_site(self, site: SiteConfig) -> Self:
        """These settings with what they leave out taken from the rest of the site (e.g. its cloud account)."""
        return self

    def complete(self) -> bool:
        """Whether these settings (after `for_site`) say where hosts come from (e.g. an account to ask)."""
        return True

    def missing(self) -> list[Problem]:
        """What adding hosts needs that these settings leave out (checked when hosts are to be added)."""
        return []

    def file_problems(self, file: str, field: str, env: dict[str, str]) -> list[Problem]:
        if self.esxi_password_env and self.esxi_password_env not in env:
            return [Problem(file, f"{field}.esxi_password_env",
                            f"environment variable {self.esxi_password_env} is not set")]
        return []

    def login(self) -> HostLogin:
        """How the cluster logs in to new hosts (the password read now, and registered for redaction)."""
        password = read_secret(self.esxi_password_env, None, "esxi_password") if self.esxi_password_env else None
        return HostLogin(username=self.esxi_username, password=password, trust_on_first_use=self.trust_host_thumbprint)


# -- the target's cluster ----------------------------------------------------------------------------

@dataclass(frozen=True)
class HostInfo:
    """One host of the cluster; `usable` = connected and not in maintenance mode."""

    moref: str
    name: str
    connection_state: str
    in_maintenance: bool
    cores: int
    threads: int
    memory_mib: int

    @property
    def usable(self) -> bool:
        return self.connection_state == "connected" and not self.in_maintenance


@dataclass(frozen=True)
class PlacedVm:
    """One VM in the cluster: configured and reserved CPU/memory, provisioned storage."""

    moref: str
    name: str
    instance_uuid: str | None
    vcpus: int
    memory_mb: int
    storage_gb: float
    cpu_reservation_mhz: int
    memory_reservation_mb: int
    powered_on: bool
    template: bool


@dataclass(frozen=True)
class ClusterInfo:
    """A cluster's hosts and VMs as plain data."""

    datacenter: str | None
    name: str
    moref: str
    hosts: list[HostInfo]
    vms: list[PlacedVm]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for host, record in zip(self.hosts, data["hosts"], strict=True):
            record["usable"] = host.usable
        return data


@runtime_checkable
class HostCluster(Protocol):
    """The target cluster whose hosts the capacity step manages."""

    kind: str

    def read(self) -> ClusterInfo:
        """The cluster's hosts (state, cores, memory) and VMs (sizes, reservations, storage)."""
        ...

    def host(self, name: str) -> HostInfo | None:
        """Host `name` of the cluster as it is now, or None when it is not in the cluster."""
        ...

    def add_host(self, name: str, login: HostLogin, timeout: float) -> bool:
        """Put host `name` into the cluster unless it is there already; True if it was added now."""
        ...

    def reconnect_host(self, name: str) -> None:
        """Ask a disconnected host to connect again (best effort: some managers cannot)."""
        ...

    def admit_host(self, name: str, timeout: float) -> HostInfo:
        """Make a connected host ready for VMs: out of maintenance mode, on the cluster's switches and
        shared datastores."""
        ...

    def remove_host(self, name: str, timeout: float) -> bool:
        """Take host `name` out of the cluster (maintenance mode first); False if it is not there."""
        ...

    def close(self) -> None:
        """Let go of the session."""
        ...
