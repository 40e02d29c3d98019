"""What the AWS host provisioners share: client tokens, error mapping, a host type's specs.

The port they implement (HostProvisioner, ProvisionedHost, the tags) is migrate.core.capacity_ports.
"""

from __future__ import annotations

import hashlib
from typing import Any

import botocore.exceptions

from adapters.aws.instance_types import instance_type_record
from adapters.aws.session import map_aws_error
from migrate.core.capacity_ports import TAG_KEY, TAG_PLAN, TAG_WAVE, HostProvisioner, ProvisionedHost
from migrate.core.errors import AdapterError, InputError
from migrate.core.faults import is_transient

__all__ = [
    "TAG_KEY",
    "TAG_NAME",
    "TAG_PLAN",
    "TAG_WAVE",
    "HostProvisioner",
    "ProvisionedHost",
    "aws_failure",
    "client_token",
    "describe_host_type",
]

TAG_NAME = "Name"


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


def describe_host_type(ec2: Any, host_type: str, provider: str) -> dict[str, Any]:
    """`host_type`'s specs from EC2 DescribeInstanceTypes (an InstanceType record); InputError when the
    region has no such type."""
    endpoint = ec2.meta.endpoint_url
    try:
        items = ec2.describe_instance_types(InstanceTypes=[host_type]).get("InstanceTypes", [])
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidInstanceType":
            raise aws_failure(exc, provider, "describe_instance_types", endpoint) from None
        items = []
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_failure(exc, provider, "describe_instance_types", endpoint) from None
    if not items:
        raise InputError.single("capacity", "host_type", f"{host_type!r} is not an EC2 instance type in "
                                                         f"{ec2.meta.region_name}")
    return instance_type_record(items[0])
