"""The one retry classification with the vSphere and AWS classifier plugged in (adapters.faults): transient,
session or the provider's answer, by type and code; retried calls."""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
from xml.parsers.expat import ExpatError

import botocore.exceptions
import pytest
import requests
from pyVmomi import vim, vmodl

from adapters.faults import is_provider_fault, provider_error
from migrate.core.errors import AdapterError
from migrate.core.faults import Backoff, FaultKind, call_with_retry, classify


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "x"},
                                            "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


def _wrapped(inner: BaseException) -> vim.fault.HostConnectFault:
    """A HostConnectFault raised while handling `inner`, as pyVim's SmartConnect does."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise vim.fault.HostConnectFault(msg=str(exc))  # noqa: B904 - pyVim raises it just so
    except vim.fault.HostConnectFault as fault:
        return fault


@pytest.mark.parametrize("exc", [
    ConnectionResetError(errno.ECONNRESET, "reset"), http.client.RemoteDisconnected("gone"),
    http.client.IncompleteRead(b"par"), ExpatError("no element found"), ssl.SSLEOFError(8, "EOF"), TimeoutError(),
    requests.exceptions.ChunkedEncodingError(), requests.ConnectionError(), OSError(errno.EHOSTUNREACH, "x"),
    vim.fault.TaskInProgress(), vmodl.fault.HostCommunication(), vmodl.fault.SystemError(reason="busy"),
    _client_error("RequestLimitExceeded", 503), _client_error("ThrottlingException", 429),
    _client_error("SomethingNew", 502), botocore.exceptions.EndpointConnectionError(endpoint_url="https://x"),
    _wrapped(ConnectionResetError(errno.ECONNRESET, "reset")),
    AdapterError("aws", "op", "x", retryable=True),
    socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution"),
    requests.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")),
])
def test_transient_faults(exc: BaseException) -> None:
    """Resets, cut bodies, TLS EOFs, timeouts, busy objects, throttling and 5xx are worth another try."""
    assert classify(exc) is FaultKind.TRANSIENT


@pytest.mark.parametrize("exc", [
    vim.fault.InvalidLogin(), vim.fault.NotFound(), vmodl.fault.InvalidArgument(), vim.fault.NoPermission(),
    vmodl.fault.ManagedObjectNotFound(), _client_error("InvalidAMIID.NotFound", 400),
    _client_error("UnauthorizedOperation", 403), ssl.SSLCertVerificationError(1, "bad cert"),
    _wrapped(ssl.SSLCertVerificationError(1, "bad cert")), OSError(errno.ENOENT, "no file"), ValueError("x"),
    AdapterError("vcenter", "op", "x"),
    requests.exceptions.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")),
    http.client.HTTPException("404 Not Found"), vim.fault.SSLVerifyFault(), vim.fault.HostConnectFault(),
    _client_error("RequestExpired", 400),
])
def test_answers_are_not_retried(exc: BaseException) -> None:
    """The provider's real answers (and our own bugs) fail at once."""
    assert classify(exc) is FaultKind.ANSWER


def test_an_expired_session_is_a_session_fault() -> None:
    """NotAuthenticated: log in again, then retry."""
    assert classify(vim.fault.NotAuthenticated()) is FaultKind.SESSION


def _flaky(failures: list[BaseException]) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"
    return calls, fn


FAST = Backoff(base=0.0, max_delay=0.0, deadline=5.0)


def test_idempotent_calls_are_retried_until_they_succeed() -> None:
    """Two resets then success: three calls, the result returned."""
    calls, fn = _flaky([ConnectionResetError(), http.client.IncompleteRead(b"")])
    assert call_with_retry(fn, backoff=FAST) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 3


def test_a_call_that_changes_something_is_not_retried_on_a_reset_but_is_after_an_expired_session() -> None:
    """A reset may have hit after the server acted: up to the phase. NotAuthenticated means it never ran."""
    calls, fn = _flaky([ConnectionResetError()])
    with pytest.raises(ConnectionResetError):
        call_with_retry(fn, backoff=FAST, idempotent=False)  # type: ignore[arg-type]
    dropped: list[int] = []
    calls, fn = _flaky([vim.fault.NotAuthenticated()])
    assert call_with_retry(fn, backoff=FAST, idempotent=False, on_session=lambda: dropped.append(1)) == "ok"  # type: ignore[arg-type]
    assert dropped == [1] and len(calls) == 2


def test_answers_stop_at_once_and_the_deadline_bounds_retries() -> None:
    """A NotFound is raised after one call; endless resets stop at the deadline."""
    calls, fn = _flaky([vim.fault.NotFound()])
    with pytest.raises(vim.fault.NotFound):
        call_with_retry(fn, backoff=FAST)  # type: ignore[arg-type]
    assert len(calls) == 1
    slept: list[float] = []
    calls, fn = _flaky([ConnectionResetError()] * 1000)
    with pytest.raises(ConnectionResetError):
        call_with_retry(fn, backoff=Backoff(base=1.0, max_delay=1.0, deadline=0.0),  # type: ignore[arg-type]
                        sleep=slept.append)
    assert len(calls) == 1 and slept == []


def test_our_own_bugs_are_not_provider_faults() -> None:
    """A KeyError from our code is not dressed up as a vCenter's answer; a reset and a fault are provider faults."""
    assert not is_provider_fault(KeyError("disks"))
    assert is_provider_fault(ConnectionResetError()) and is_provider_fault(vim.fault.NotFound())


def test_provider_error_keeps_the_classification() -> None:
    """A raw reset becomes a retryable AdapterError; a vSphere answer a final one, its type as the code."""
    assert provider_error(ConnectionResetError(), "vcenter", "ensure capacity").retryable
    answer = provider_error(vim.fault.NotFound(msg="no host"), "vcenter", "ensure capacity")
    assert not answer.retryable and answer.code == "NotFound"
