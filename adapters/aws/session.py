"""boto3 clients built from site.yaml's `replatformer` section (driver aws), with TLS verification on."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from adapters.aws.settings import AwsSettings
from adapters.faults import sdk_fault_kind  # noqa: F401 - importing it plugs botocore's errors into is_transient
from migrate.core.errors import AdapterError
from migrate.core.faults import is_transient

__all__ = ["aws_client", "check_aws", "map_aws_error"]


def aws_client(settings: AwsSettings, service: str, *, max_pool_connections: int | None = None) -> Any:
    """A boto3 client for `service`; credentials from the standard chain or the named profile/file.

    `max_pool_connections` sizes the HTTP connection pool (botocore's default is 10): give it at least
    the number of threads that call the client at once (parallel EBS block puts, several VMs).
    """
    session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
    if settings.credentials_file:
        session._session.set_config_variable("credentials_file", str(settings.credentials_file))
    return session.client(
        service,
        endpoint_url=settings.endpoint_url,
        verify=str(settings.ca_bundle) if settings.ca_bundle else True,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=60,
                      max_pool_connections=max_pool_connections or 10),
    )


def map_aws_error(exc: Exception, op: str, endpoint: str | None) -> AdapterError:
    """Map a botocore failure to AdapterError by its error code, never its message text."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        return AdapterError("aws", op, code, retryable=is_transient(exc), endpoint=endpoint, code=code)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return AdapterError("aws", op, "no AWS credentials found (standard chain, profile or credentials_file)",
                            endpoint=endpoint)
    if isinstance(exc, botocore.exceptions.SSLError):
        return AdapterError("aws", op, "TLS certificate not trusted; set aws.ca_bundle", endpoint=endpoint)
    if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError):
        return AdapterError("aws", op, "cannot reach the endpoint", retryable=True, endpoint=endpoint)
    return AdapterError("aws", op, type(exc).__name__, endpoint=endpoint)


def check_aws(settings: AwsSettings) -> dict[str, Any]:
    """Prove the AWS side answers: caller identity and the region's availability zones."""
    endpoint = settings.endpoint_url or f"{settings.region}.amazonaws.com"
    try:
        identity = aws_client(settings, "sts").get_caller_identity()
        zones = aws_client(settings, "ec2").describe_availability_zones()["AvailabilityZones"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise map_aws_error(exc, "check", endpoint) from None
    names = sorted(z["ZoneName"] for z in zones)
    return {"account": identity.get("Account"), "region": settings.region, "availability_zones": names,
            "summary": f"region {settings.region}, account {identity.get('Account')}, {len(names)} zones"}
