"""TLS trust for vCenter connections: CA file, pinned thumbprint, or (only when asked) no verification."""

from __future__ import annotations

import ssl
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from migrate.config import TlsSettings

__all__ = ["requests_session", "ssl_context", "thumbprint_for_pyvmomi"]


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """Verification on by default; a pinned thumbprint or `verify: false` turns chain checks off."""
    if tls.verify and tls.thumbprint is None:
        return ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def thumbprint_for_pyvmomi(tls: TlsSettings) -> str | None:
    """pyvmomi compares the colon-less hex digest (SHA-1/256/512 chosen by length)."""
    return tls.thumbprint.replace(":", "").lower() if tls.thumbprint else None


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
