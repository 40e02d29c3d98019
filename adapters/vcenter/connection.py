"""Log in to a vCenter over SOAP (pyvmomi) with the site config's TLS trust; map failures to AdapterError."""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyVim import connect as pyvim_connect
from pyVmomi import vim, vmodl

from adapters.vcenter.collector import fault_name
from adapters.vcenter.settings import VCenterEndpoint, resolve_password
from adapters.vcenter.tls import ssl_context
from migrate.core.errors import AdapterError
from migrate.core.faults import is_transient
from migrate.core.log import get_logger

__all__ = ["VCenterSession", "connect"]

CONNECT_TIMEOUT_S = 15
log = get_logger(__name__)


@dataclass
class VCenterSession:
    """A logged-in SOAP session plus what the other vCenter clients (REST, datastore HTTP) need."""

    endpoint: VCenterEndpoint
    si: Any
    password: str

    @property
    def about(self) -> Any:
        return self.si.content.about

    @property
    def session_cookie(self) -> str:
        """The vmware_soap_session cookie value, for datastore HTTP requests."""
        cookie: str = self.si._stub.cookie
        return cookie.split("=", 1)[1].split(";", 1)[0].strip('"')

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.endpoint.url)
        return f"{parts.scheme}://{parts.netloc}"

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the session may already be gone
            self.si.content.sessionManager.Logout()

    def __enter__(self) -> VCenterSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _connect_error(exc: Exception, where: str) -> AdapterError:
    """What a failed login means, by type: pyVim wraps what failed at connect time in HostConnectFault."""
    inner = (exc.__cause__ or exc.__context__ or exc) if isinstance(exc, vim.fault.HostConnectFault) else exc
    if isinstance(inner, ssl.SSLCertVerificationError):
        return AdapterError("vcenter", "connect", f"TLS certificate not trusted ({inner.verify_message}); "
                            "set tls.ca_file or tls.thumbprint", endpoint=where, code="SSLCertVerificationError")
    if is_transient(exc):
        reason = inner.strerror if isinstance(inner, OSError) and inner.strerror else type(inner).__name__
        return AdapterError("vcenter", "connect", f"cannot reach the vCenter ({reason})", retryable=True,
                            endpoint=where, code=type(inner).__name__)
    if isinstance(exc, vmodl.MethodFault):
        return AdapterError("vcenter", "login", f"{fault_name(exc)}: {exc.msg}", endpoint=where, code=fault_name(exc))
    return AdapterError("vcenter", "connect", f"{type(exc).__name__}: {exc}", endpoint=where)


def connect(endpoint: VCenterEndpoint, password: str | None = None) -> VCenterSession:
    """Log in to `endpoint`; raise AdapterError naming the endpoint (never the password) on failure."""
    if password is None:
        password = resolve_password(endpoint)
    parts = urlsplit(endpoint.url)
    where = parts.netloc
    log.debug("vcenter login", endpoint=where, username=endpoint.username, tls_verify=endpoint.tls.verify,
              pinned=endpoint.tls.thumbprint is not None)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    context = ssl_context(endpoint.tls, parts.hostname or "", port) if parts.scheme == "https" else None
    try:
        si = pyvim_connect.SmartConnect(
            protocol=parts.scheme,
            host=parts.hostname,
            port=port,
            path=parts.path or "/sdk",
            user=endpoint.username,
            pwd=password,
            sslContext=context,
            httpConnectionTimeout=CONNECT_TIMEOUT_S,
        )
        api_version = si.content.about.apiVersion   # a call too: a reset here is classified like the login's
    except vim.fault.InvalidLogin:
        raise AdapterError("vcenter", "login", f"invalid user name or password for {endpoint.username!r}",
                           endpoint=where) from None
    except Exception as exc:
        raise _connect_error(exc, where) from None
    log.debug("vcenter session open", endpoint=where, api_version=api_version)
    return VCenterSession(endpoint=endpoint, si=si, password=password)
