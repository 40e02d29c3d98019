"""The host-provisioner interface: get bare-metal hosts from a cloud, find them again by tag, give them back.

Rules for implementations (like migrate/core/ports.py):

- `allocate(count, host_type, tags, idempotency_key)` returns `count` hosts for that key. Hosts already
  allocated under the same key count toward `count`: a repeat (after a crash, a retry, a resume)
  allocates nothing more and returns the same hosts. Providers that honour client tokens get one
  derived from the key too, so a repeat whose look-up missed fresh hosts is still deduplicated.
- `find(tags)` returns every live (not released) host carrying all of `tags`.
- `release(host_ids)` gives hosts back; releasing a host that is already gone is not an error.
- failures raise migrate.core.errors.AdapterError mapped from the provider's error code (`code`), never
  from message text; retryable when trying again may help (throttling, unreachable endpoint).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import botocore.exceptions

from adapters.aws.session import map_aws_error
from adapters.faults import is_transient
from migrate.core.errors import AdapterError

__all__ = [
    "TAG_KEY",
    "TAG_NAME",
    "TAG_PLAN",
    "TAG_WAVE",
    "HostProvisioner",
    "ProvisionedHost",
    "aws_failure",
    "client_token",
]

TAG_PLAN = "migrate:plan"     # the plan (or run) the host was added for
TAG_WAVE = "migrate:wave"     # the wave that needed it
TAG_KEY = "migrate:key"       # the idempotency key of the allocation
TAG_NAME = "Name"



@dataclass(frozen=True)
class ProvisionedHost:
    """One bare-metal host as the provider sees it, plus the DNS name the cloud vCenter will know it by.

    `ready`: it can be added to vCenter now; `failed`: it never will be (the provider says why in `detail`).
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


@runtime_checkable
class HostProvisioner(Protocol):
    """Bare-metal hosts from one provider (EC2 dedicated hosts, Amazon EVS hosts)."""

    kind: str

    def supported_host_types(self) -> list[str] | None:
        """The host types this provider can give, or None when EC2's DescribeInstanceTypes decides."""
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


def client_token(idempotency_key: str, part: str | int, length: int = 64) -> str:
    """A provider client token (printable ASCII, at most `length`) derived from the key and a part number."""
    digest = hashlib.sha256(f"{idempotency_key}#{part}".encode()).hexdigest()
    return f"migrate-{digest}"[:length]


def aws_failure(exc: Exception, provider: str, op: str, endpoint: str | None) -> AdapterError:
    """AdapterError for a botocore failure, carrying the error code (and the service's message as the reason)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "").strip()
        return AdapterError(provider, op, f"{code}: {message}" if message else code, retryable=is_transient(exc),
                            endpoint=endpoint, code=code)
    mapped = map_aws_error(exc, op, endpoint)
    return AdapterError(provider, op, str(mapped).split(": ", 1)[-1], retryable=mapped.retryable, endpoint=endpoint,
                        code=type(exc).__name__)
