"""TLS trust for vCenter connections: CA file, pinned thumbprint, or (only when asked) no verification."""

from __future__ import annotations

import hashlib
import socket
import ssl
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from adapters.vcenter.settings import TlsSettings
from migrate.core.errors import AdapterError

__all__ = ["requests_session", "ssl_context"]

_PROBE_TIMEOUT_S = 15


def _fingerprint(der: bytes, like: str) -> str:
    """Colon-less lower-case digest of `der` with the algorithm implied by the pin's length."""
    algorithm = {40: hashlib.sha1, 64: hashlib.sha256}[len(like)]
    return algorithm(der).hexdigest()


def _pinned_context(host: str, port: int, thumbprint: str) -> ssl.SSLContext:
    """Trust exactly the certificate whose fingerprint is pinned, and nothing else.

    The server's certificate is fetched once and compared with the pin; it then becomes the only
    trust anchor (partial-chain verification), so every later connection must present the same one.
    """
    pin = thumbprint.replace(":", "").lower()
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S) as raw, \
                probe.wrap_socket(raw, server_hostname=host) as tls_sock:
            der = tls_sock.getpeercert(binary_form=True)
    except OSError as exc:
        raise AdapterError("vcenter", "connect", f"cannot reach the vCenter ({exc.strerror or type(exc).__name__})",
                           retryable=True, endpoint=where) from None
    if der is None or _fingerprint(der, pin) != pin:
        raise AdapterError("vcenter", "connect", "server certificate does not match tls.thumbprint", endpoint=where)
    context = ssl.create_default_context(cadata=ssl.DER_cert_to_PEM_cert(der))
    context.check_hostname = False          # the pin, not the name, identifies the server
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def ssl_context(tls: TlsSettings, host: str, port: int) -> ssl.SSLContext:
    """The context for pyvmomi: CA verification by default, a pinned certificate, or none if asked."""
    if tls.thumbprint:
        return _pinned_context(host, port, tls.thumbprint)
    if tls.verify:
        return ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(*args, **kwargs)


class _ExplicitTrustSession(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE override a session's `verify`; pass it per request instead."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def requests_session(tls: TlsSettings) -> requests.Session:
    """A requests session that trusts exactly what `tls` says."""
    session = _ExplicitTrustSession()
    if tls.thumbprint:
        session.verify = False
        session.mount("https://", _PinnedAdapter(tls.thumbprint.replace(":", "").lower()))
    elif not tls.verify:
        session.verify = False
    elif tls.ca_file:
        session.verify = str(tls.ca_file)
    return session
