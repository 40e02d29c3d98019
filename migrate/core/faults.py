"""One retry classification for every provider call, by exception type and fault code (never message text).

- TRANSIENT: the network or the service hiccuped (connection reset or refused, remote disconnect, timeout,
  TLS EOF, a body cut short or unparsable because it was cut, HTTP 429/5xx, throttling codes, a busy
  object): the same call may succeed later, so it is retried with backoff until a deadline.
- SESSION: the session expired or was lost; log in again, then retry.
- ANSWER: the provider's real answer (not found, invalid argument, permission, a bad certificate): fail.

This module judges what the standard library, requests and urllib3 raise. A provider SDK's own errors
(vSphere faults, botocore codes) are judged by the classifier its adapters register here at import
(adapters/faults.py), so `classify`, `is_transient` and `call_with_retry` stay one for every provider.

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

import requests
import urllib3.exceptions

from migrate.core.errors import AdapterError
from migrate.core.log import get_logger

__all__ = [
    "LOGIN_BACKOFF",
    "RETRYABLE_HTTP",
    "Backoff",
    "FaultClassifier",
    "FaultKind",
    "call_with_retry",
    "classify",
    "is_transient",
    "register_classifier",
    "tls_cut",
    "wrapped_errors",
]

T = TypeVar("T")
_log = get_logger(__name__)


class FaultKind(StrEnum):
    """What a failed provider call means for retrying it."""

    TRANSIENT = "transient"
    SESSION = "session"
    ANSWER = "answer"


# A provider SDK's verdict on an exception: its kind, or None when the exception is not one of the SDK's.
FaultClassifier = Callable[[BaseException], FaultKind | None]

# HTTP statuses worth another try: throttled, or the server (or a proxy before it) briefly unwell.
RETRYABLE_HTTP = frozenset({408, 429, 500, 502, 503, 504})

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
)

_classifiers: tuple[FaultClassifier, ...] = ()


def register_classifier(classifier: FaultClassifier) -> None:
    """Plug a provider SDK's classification in (its adapters do, at import); registering it again does nothing."""
    global _classifiers
    if classifier not in _classifiers:
        _classifiers = (*_classifiers, classifier)


def wrapped_errors(exc: BaseException) -> list[BaseException]:
    """The errors `exc` wraps: its cause or context, and the reason urllib3 and requests carry in their args."""
    found = [e for e in (exc.__cause__, exc.__context__) if e is not None]
    found += [a for a in exc.args if isinstance(a, BaseException)]
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        found.append(reason)
    return found


def tls_cut(exc: BaseException, depth: int = 0) -> bool:
    """True if a TLS error is, somewhere inside, a connection cut (EOF, reset) rather than a refused certificate."""
    if isinstance(exc, ssl.SSLCertVerificationError) or depth > 6:
        return False
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError | ConnectionError):
        return True
    return any(tls_cut(inner, depth + 1) for inner in wrapped_errors(exc))


def classify(exc: BaseException) -> FaultKind:
    """TRANSIENT, SESSION or ANSWER for an exception a provider call raised."""
    if isinstance(exc, AdapterError):
        return FaultKind.TRANSIENT if exc.retryable else FaultKind.ANSWER
    if isinstance(exc, ssl.SSLCertVerificationError):
        return FaultKind.ANSWER
    if isinstance(exc, requests.exceptions.SSLError):
        # a bad certificate or a pinned thumbprint that does not match is an answer; a handshake cut short is not
        return FaultKind.TRANSIENT if tls_cut(exc) else FaultKind.ANSWER
    for classifier in _classifiers:
        kind = classifier(exc)
        if kind is not None:
            return kind
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
