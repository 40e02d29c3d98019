"""vSphere and AWS errors in the one retry classification (migrate.core.faults), and the helpers that need
those SDKs' types.

Importing this module registers the classifier below with migrate.core.faults: after that `classify`,
`is_transient` and `call_with_retry` there judge pyVmomi faults and botocore errors too. Every adapter
that calls pyVmomi or boto3 imports it (directly or through its SDK's client module).
"""

from __future__ import annotations

import http.client
from xml.parsers.expat import ExpatError

import botocore.exceptions
import botocore.parsers
import requests
from pyVmomi import vim, vmodl

from migrate.core.errors import AdapterError
from migrate.core.faults import (
    RETRYABLE_HTTP,
    FaultKind,
    classify,
    is_transient,
    register_classifier,
    tls_cut,
    wrapped_errors,
)

__all__ = [
    "THROTTLING_CODES",
    "VSPHERE_TRANSIENT",
    "is_provider_fault",
    "provider_error",
    "sdk_fault_kind",
]

# AWS error codes of throttling and of transient server trouble (any HTTP 5xx counts too).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "RequestLimitExceeded", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "BandwidthLimitExceeded",
    "RequestThrottled",
})
_AWS_TRANSIENT_CODES = THROTTLING_CODES | frozenset({
    "InternalError", "InternalServerException", "InternalFailure", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
    "InsufficientInstanceCapacity", "IDPCommunicationError",
})
_BOTO_TRANSIENT: tuple[type[BaseException], ...] = (
    botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
    botocore.parsers.ResponseParserError, botocore.exceptions.IncompleteReadError,
)

# vSphere faults after which the same call may succeed: a busy object, an unreachable host, a server hiccup.
VSPHERE_TRANSIENT: tuple[type, ...] = (
    vim.fault.TaskInProgress, vim.fault.ResourceInUse, vim.fault.Timedout, vmodl.fault.HostCommunication,
    vmodl.fault.SystemError, vmodl.fault.RequestCanceled,
)
_VSPHERE_SESSION: tuple[type, ...] = (vim.fault.NotAuthenticated,)


def sdk_fault_kind(exc: BaseException) -> FaultKind | None:
    """The kind of a pyVmomi fault or a botocore error; None for anything else (migrate.core.faults judges it)."""
    if isinstance(exc, botocore.exceptions.SSLError):
        # a bad certificate is an answer; a handshake cut short is not
        return FaultKind.TRANSIENT if tls_cut(exc) else FaultKind.ANSWER
    if isinstance(exc, _VSPHERE_SESSION):
        return FaultKind.SESSION
    if type(exc) is vim.fault.HostConnectFault:
        # pyVim wraps whatever failed at connect time in a plain HostConnectFault: judge the wrapped error.
        # (Its subclasses - SSLVerifyFault, AlreadyBeingManaged, NotSupportedHost... - are AddHost's answers.)
        inner = [e for e in wrapped_errors(exc) if not isinstance(e, vim.fault.HostConnectFault)]
        return classify(inner[0]) if inner else FaultKind.ANSWER
    if isinstance(exc, VSPHERE_TRANSIENT):
        return FaultKind.TRANSIENT
    if isinstance(exc, vmodl.MethodFault):
        return FaultKind.ANSWER
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        code = str(error.get("Code", ""))
        return FaultKind.TRANSIENT if code in _AWS_TRANSIENT_CODES or status in RETRYABLE_HTTP else FaultKind.ANSWER
    if isinstance(exc, _BOTO_TRANSIENT):
        return FaultKind.TRANSIENT
    return None


register_classifier(sdk_fault_kind)


def is_provider_fault(exc: BaseException) -> bool:
    """True for what a provider or the network raised (a fault, an error code, a transport error), as opposed
    to a programming error of ours (KeyError, TypeError...), which must not be dressed up as a provider's."""
    return isinstance(exc, vmodl.MethodFault | botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError
                      | requests.RequestException | OSError | http.client.HTTPException | ExpatError) \
        or classify(exc) is not FaultKind.ANSWER


def provider_error(exc: BaseException, provider: str, op: str, endpoint: str | None = None) -> AdapterError:
    """An AdapterError for any exception a provider call raised: retryable when the classification says so."""
    if isinstance(exc, AdapterError):
        return exc
    name = type(exc).__name__.rsplit(".", 1)[-1]
    message = getattr(exc, "msg", None) or str(exc) or name
    return AdapterError(provider, op, f"{name}: {message}", retryable=is_transient(exc), endpoint=endpoint,
                        code=name)
