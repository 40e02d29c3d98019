"""Datastore files over HTTP (/folder/<path>?dcPath=..&dsName=..): streamed, constant memory, hashed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from urllib.parse import quote

import requests

from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.tls import requests_session
from migrate.core.errors import AdapterError
from migrate.core.faults import RETRYABLE_HTTP, is_transient

__all__ = ["DatastoreFiles", "split_datastore_path"]

CHUNK = 1024 * 1024


def split_datastore_path(path: str) -> tuple[str, str]:
    """'[ds-01] vm/vm.vmdk' -> ('ds-01', 'vm/vm.vmdk')."""
    if not path.startswith("[") or "]" not in path:
        raise ValueError(f"not a datastore path: {path!r}")
    datastore, rest = path[1:].split("]", 1)
    return datastore, rest.strip()


class DatastoreFiles:
    """Upload and download datastore files with the SOAP session's cookie."""

    def __init__(self, vc: VCenterSession, timeout: float = 120.0) -> None:
        self._base = vc.base_url
        self._where = vc.endpoint.host
        self._timeout = timeout
        self._http = requests_session(vc.endpoint.tls)
        self._http.cookies.set("vmware_soap_session", vc.session_cookie)

    def _url(self, datacenter: str, datastore: str, path: str) -> str:
        return (f"{self._base}/folder/{quote(path)}?dcPath={quote(datacenter, safe='')}"
                f"&dsName={quote(datastore, safe='')}")

    def _check(self, response: requests.Response, op: str, path: str) -> None:
        if response.status_code >= 400:
            raise AdapterError("vcenter-datastore", op, f"HTTP {response.status_code} for {path}",
                               retryable=response.status_code in RETRYABLE_HTTP, endpoint=self._where,
                               code=f"HTTP {response.status_code}")

    def upload(self, datacenter: str, datastore: str, path: str, chunks: Iterable[bytes]) -> str:
        """Stream `chunks` into the file; return the sha256 of what was sent."""
        digest = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for chunk in chunks:
                digest.update(chunk)
                yield chunk

        try:
            response = self._http.put(self._url(datacenter, datastore, path), data=hashed(),
                                      timeout=self._timeout)
        except requests.RequestException as exc:
            raise AdapterError("vcenter-datastore", "upload", f"{type(exc).__name__} for {path}",
                               retryable=is_transient(exc), endpoint=self._where, code=type(exc).__name__) from None
        self._check(response, "upload", path)
        return digest.hexdigest()

    def download(self, datacenter: str, datastore: str, path: str) -> Iterator[bytes]:
        """Yield the file's bytes in chunks."""
        try:
            with self._http.get(self._url(datacenter, datastore, path), stream=True,
                                timeout=self._timeout) as response:
                self._check(response, "download", path)
                yield from response.iter_content(CHUNK)
        except requests.RequestException as exc:
            raise AdapterError("vcenter-datastore", "download", f"{type(exc).__name__} for {path}",
                               retryable=is_transient(exc), endpoint=self._where, code=type(exc).__name__) from None

    def sha256(self, datacenter: str, datastore: str, path: str) -> tuple[str, int]:
        """sha256 and size of a datastore file, streamed."""
        digest = hashlib.sha256()
        size = 0
        for chunk in self.download(datacenter, datastore, path):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def close(self) -> None:
        self._http.close()
