"""One retry classification for every provider call, by exception type and fault code (never message text).

- TRANSIENT: the network or the service hiccuped (connection reset or refused, remote disconnect, timeout,
  TLS EOF, a body cut short or unparsable because it was cut, HTTP 429/5xx, throttling codes, a busy
  object): the same call may succeed later, so it is retried with backoff until a deadline.
- SESSION: the session expired or was lost; log in again, then retry.
- ANSWER: the provider's real answer (not found, invalid argument, permission, a bad certificate): fail.

`call_with_retry` runs a call under this classification. Calls that change something are retried only
where the request provably did not take effect (SESSION: refused before it ran); otherwise the error
goes up as a retryable AdapterError and the engine re-runs the idempotent phase that made the call.
"""

from __future__ import annotations

import errno
import http.client
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar
from xml.parsers.expat import ExpatError

import botocore.exceptions
import botocore.parsers
import requests
import urllib3.exceptions
from pyVmomi import vim, vmodl

from migrate.core.errors import AdapterError
from migrate.core.log import get_logger

__all__ = [
    "LOGIN_BACKOFF",
    "RETRYABLE_HTTP",
    "THROTTLING_CODES",
    "VSPHERE_TRANSIENT",
    "Backoff",
    "FaultKind",
    "call_with_retry",
    "classify",
    "is_provider_fault",
    "is_transient",
    "provider_error",
]

T = TypeVar("T")
_log = get_logger(__name__)


class FaultKind(StrEnum):
    """What a failed provider call means for retrying it."""

    TRANSIENT = "transient"
    SESSION = "session"
    ANSWER = "answer"


# HTTP statuses worth another try: throttled, or the server (or a proxy before it) briefly unwell.
RETRYABLE_HTTP = frozenset({408, 429, 500, 502, 503, 504})

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

# Network errnos that say nothing about the request itself.
_TRANSIENT_ERRNOS = frozenset({
    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT, errno.ENETUNREACH,
    errno.EHOSTUNREACH, errno.ENETDOWN, errno.ENETRESET, errno.EHOSTDOWN, errno.ENOTCONN, errno.EAGAIN,
    socket.EAI_AGAIN,                     # a name server that did not answer in time
})

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,                      # reset, refused, aborted, broken pipe, RemoteDisconnected
    TimeoutError,
    ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError,
    # a body cut short or a garbled status line; not the base class, which pyVmomi raises for any status
    # but 200/500 (a wrong /sdk path's 404 is an answer)
    http.client.IncompleteRead, http.client.BadStatusLine, http.client.ImproperConnectionState,
    ExpatError,                           # a SOAP body cut short
    urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError, urllib3.exceptions.NewConnectionError,
    requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
    botocore.parsers.ResponseParserError, botocore.exceptions.IncompleteReadError,
)

# vSphere faults after which the same call may succeed: a busy object, an unreachable host, a server hiccup.
VSPHERE_TRANSIENT: tuple[type, ...] = (
    vim.fault.TaskInProgress, vim.fault.ResourceInUse, vim.fault.Timedout, vmodl.fault.HostCommunication,
    vmodl.fault.SystemError, vmodl.fault.RequestCanceled,
)
_VSPHERE_SESSION: tuple[type, ...] = (vim.fault.NotAuthenticated,)


def _wrapped(exc: BaseException) -> list[BaseException]:
    """The errors `exc` wraps: its cause or context, and the reason urllib3 and requests carry in their args."""
    found = [e for e in (exc.__cause__, exc.__context__) if e is not None]
    found += [a for a in exc.args if isinstance(a, BaseException)]
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        found.append(reason)
    return found


def _tls_cut(exc: BaseException, depth: int = 0) -> bool:
    """True if a TLS error is, somewhere inside, a connection cut (EOF, reset) rather than a refused certificate."""
    if isinstance(exc, ssl.SSLCertVerificationError) or depth > 6:
        return False
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError | ConnectionError):
        return True
    return any(_tls_cut(inner, depth + 1) for inner in _wrapped(exc))


def classify(exc: BaseException) -> FaultKind:
    """TRANSIENT, SESSION or ANSWER for an exception a provider call raised."""
    if isinstance(exc, AdapterError):
        return FaultKind.TRANSIENT if exc.retryable else FaultKind.ANSWER
    if isinstance(exc, ssl.SSLCertVerificationError):
        return FaultKind.ANSWER
    if isinstance(exc, requests.exceptions.SSLError | botocore.exceptions.SSLError):
        # a bad certificate or a pinned thumbprint that does not match is an answer; a handshake cut short is not
        return FaultKind.TRANSIENT if _tls_cut(exc) else FaultKind.ANSWER
    if isinstance(exc, _VSPHERE_SESSION):
        return FaultKind.SESSION
    if type(exc) is vim.fault.HostConnectFault:
        # pyVim wraps whatever failed at connect time in a plain HostConnectFault: judge the wrapped error.
        # (Its subclasses - SSLVerifyFault, AlreadyBeingManaged, NotSupportedHost... - are AddHost's answers.)
        inner = [e for e in _wrapped(exc) if not isinstance(e, vim.fault.HostConnectFault)]
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
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return FaultKind.TRANSIENT if exc.response.status_code in RETRYABLE_HTTP else FaultKind.ANSWER
    if isinstance(exc, _TRANSIENT_TYPES):
        return FaultKind.TRANSIENT
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return FaultKind.TRANSIENT
    return FaultKind.ANSWER


def is_transient(exc: BaseException) -> bool:
    """True when the same call may succeed if tried again (a session fault counts: log in again first)."""
    return classify(exc) is not FaultKind.ANSWER


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, bounded by a per-operation deadline."""

    base: float = 0.2
    factor: float = 2.0
    max_delay: float = 10.0
    deadline: float = 120.0

    def delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (1 = the first), jittered to [50%, 100%]."""
        raw = min(self.max_delay, self.base * self.factor ** (retry - 1))
        return raw * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


# Logging in for a one-shot command (discover, check): a typo in a URL should not take minutes to report.
LOGIN_BACKOFF = Backoff(deadline=30.0)


def call_with_retry(fn: Callable[[], T], *, backoff: Backoff, idempotent: bool = True,
                    on_session: Callable[[], None] | None = None,
                    sleep: Callable[[float], None] = time.sleep, what: str | None = None) -> T:
    """`fn()` retried under the classification until `backoff.deadline`; the last error is raised as is.

    SESSION faults call `on_session` (forget the session, so the next try logs in again) and are always
    retried. TRANSIENT faults are retried only for an `idempotent` call. An AdapterError still failing at the
    deadline is marked `exhausted`, and one that comes exhausted (from a call retried inside this one) is not
    retried again here: nested retries must not multiply their deadlines. With `what`, each retry is logged.
    """
    started = time.monotonic()
    retry = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            kind = classify(exc)
            if kind is FaultKind.SESSION and on_session is not None:
                on_session()
            if kind is FaultKind.ANSWER or (kind is FaultKind.TRANSIENT and not idempotent) \
                    or (isinstance(exc, AdapterError) and exc.exhausted):
                raise
            retry += 1
            wait = backoff.delay(retry)
            if time.monotonic() - started + wait > backoff.deadline:
                if isinstance(exc, AdapterError):
                    exc.exhausted = True
                raise
            if what is not None:
                _log.warning("retrying", call=what, retry=retry, delay=round(wait, 2), fault=type(exc).__name__,
                             kind=kind.value)
            sleep(wait)


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
