"""The provider-free half of the retry classification (migrate.core.faults) and how an SDK plugs into it."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import botocore.exceptions
import pytest
import requests

import adapters.faults
from migrate.core import faults
from migrate.core.faults import FaultKind, classify, is_transient, register_classifier


class _Busy(Exception):
    """An error of an SDK only this test knows."""


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    return response


def _boto_ssl(inner: BaseException) -> botocore.exceptions.SSLError:
    """A botocore SSLError raised while handling `inner`, as botocore's HTTP session does."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise botocore.exceptions.SSLError(endpoint_url="https://ec2", error=exc)  # noqa: B904 - as botocore
    except botocore.exceptions.SSLError as wrapped:
        return wrapped


def test_the_core_judges_http_statuses_without_any_sdk() -> None:
    """requests' HTTPError: 429 and 5xx are worth another try, a 404 is the server's answer."""
    assert is_transient(requests.HTTPError(response=_response(503)))
    assert is_transient(requests.HTTPError(response=_response(429)))
    assert classify(requests.HTTPError(response=_response(404))) is FaultKind.ANSWER


def test_a_registered_classifier_judges_its_sdk_errors_first() -> None:
    """An SDK's verdict wins over the generic rules for its own errors; None leaves others to them."""
    def busy(exc: BaseException) -> FaultKind | None:
        return FaultKind.TRANSIENT if isinstance(exc, _Busy) else None

    assert classify(_Busy()) is FaultKind.ANSWER
    register_classifier(busy)
    register_classifier(busy)
    assert classify(_Busy()) is FaultKind.TRANSIENT
    assert classify(ValueError("ours")) is FaultKind.ANSWER


@pytest.mark.parametrize(("inner", "kind"), [
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), FaultKind.TRANSIENT),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), FaultKind.ANSWER),
])
def test_a_botocore_tls_error_is_judged_by_what_it_wraps(inner: BaseException, kind: FaultKind) -> None:
    """A handshake cut short is retried; a refused certificate is not (adapters.faults, registered at import)."""
    assert adapters.faults.sdk_fault_kind(_boto_ssl(inner)) is kind
    assert classify(_boto_ssl(inner)) is kind


def test_the_core_imports_no_provider_sdk() -> None:
    """migrate.core.faults names neither pyVmomi nor botocore: the engine's hooks use it without any driver."""
    tree = ast.parse(Path(faults.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"pyVmomi", "pyVim", "botocore", "boto3", "adapters", "planners"}
