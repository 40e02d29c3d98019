"""Shared by the re-platform modules: our tag keys, client tokens, error mapping by code, retry with backoff."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.exceptions

from adapters.aws.session import aws_client, map_aws_error
from adapters.aws.settings import AwsSettings
from migrate.core.errors import AdapterError
from migrate.core.faults import is_transient

__all__ = [
    "TAG_KEY",
    "TAG_RUN",
    "TAG_SOURCE",
    "TAG_TEST",
    "TAG_UPLOAD",
    "TAG_WAVE",
    "AwsClients",
    "RetryPolicy",
    "aws_error",
    "client_token",
    "endpoint_of",
    "make_clients",
    "resource_tags",
    "tag_list",
]

TAG_SOURCE = "migrate:source-instance-uuid"   # the source VM's vCenter instanceUuid
TAG_RUN = "migrate:run-id"
TAG_WAVE = "migrate:wave"
TAG_KEY = "migrate:idempotency-key"           # finds what an interrupted phase already made
TAG_UPLOAD = "migrate:upload"                 # on snapshots: "complete:<aggregated sha256>" once sealed
TAG_TEST = "migrate:test"                     # on a test migration's image and instance: "true"


T = TypeVar("T")


@dataclass(frozen=True)
class AwsClients:
    """The two boto3 clients re-platforming needs (both thread-safe for concurrent calls)."""

    ec2: Any
    ebs: Any


def make_clients(settings: AwsSettings) -> AwsClients:
    """EC2 and EBS clients from the aws driver's settings; a bad profile is an AdapterError, not a traceback."""
    try:
        return AwsClients(ec2=aws_client(settings, "ec2"), ebs=aws_client(settings, "ebs"))
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error(exc, "client", settings.endpoint_url) from None


def endpoint_of(client: Any) -> str | None:
    """The endpoint a client talks to, for error messages."""
    url: str | None = getattr(getattr(client, "meta", None), "endpoint_url", None)
    return url


def aws_error(exc: Exception, op: str, endpoint: str | None) -> AdapterError:
    """AdapterError from a botocore failure, by error code / exception type (never message text)."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return AdapterError("aws", op, f"{code} (HTTP {status})", code=code, endpoint=endpoint,
                            retryable=is_transient(exc))
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return AdapterError("aws", op, "the AWS profile named in site.yaml (aws.profile) does not exist",
                            code="ProfileNotFound", endpoint=endpoint)
    mapped = map_aws_error(exc, op, endpoint)
    mapped.retryable = is_transient(exc)
    mapped.code = type(exc).__name__
    return mapped


@dataclass(frozen=True)
class RetryPolicy:
    """Per-call retries on top of botocore's own: attempts, exponential backoff with jitter."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0

    def call(self, fn: Callable[[], T], op: str, endpoint: str | None,
             extra_retryable: Iterable[str] = ()) -> T:
        """Run `fn`; retry retryable failures; raise the mapped AdapterError when out of attempts."""
        also = frozenset(extra_retryable)
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                error = aws_error(exc, op, endpoint)
                if attempt == self.attempts or not (error.retryable or error.code in also):
                    raise error from None
            delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            time.sleep(delay * (0.5 + random.random() / 2))   # noqa: S311 - jitter, not security
        raise AssertionError("unreachable")


def client_token(key: str, op: str) -> str:
    """A deterministic ClientToken (64 chars max for EC2) for one operation of one idempotency key."""
    return hashlib.sha256(f"{op}\0{key}".encode()).hexdigest()[:64]


def resource_tags(source_uuid: str, key: str, *, run_id: str | None = None, wave: str | None = None,
                  extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our tags for anything we create: source instanceUuid, idempotency key, run id and wave."""
    tags = dict(extra or {})
    tags.update({TAG_SOURCE: source_uuid, TAG_KEY: key})
    if run_id is not None:
        tags[TAG_RUN] = run_id
    if wave is not None:
        tags[TAG_WAVE] = wave
    return tags


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """{'k': 'v'} -> [{'Key': 'k', 'Value': 'v'}] in key order."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
