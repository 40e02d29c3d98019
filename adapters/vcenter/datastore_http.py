"""Datastore files over HTTP (/folder/<path>?dcPath=..&dsName=..): streamed, constant memory, hashed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any
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

        self._request("PUT", "upload", datacenter, datastore, path, data=hashed())
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

    def _request(self, method: str, op: str, datacenter: str, datastore: str, path: str,
                 **kwargs: Any) -> requests.Response:
        try:
            response = self._http.request(method, self._url(datacenter, datastore, path), timeout=self._timeout,
                                          **kwargs)
        except requests.RequestException as exc:
            raise AdapterError("vcenter-datastore", op, f"{type(exc).__name__} for {path}",
                               retryable=is_transient(exc), endpoint=self._where, code=type(exc).__name__) from None
        self._check(response, op, path)
        return response

    def read_range(self, datacenter: str, datastore: str, path: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (an HTTP Range request; short only at the file's end)."""
        if length <= 0:
            return b""
        with self._request("GET", "read range", datacenter, datastore, path, stream=True,
                           headers={"Range": f"bytes={offset}-{offset + length - 1}"}) as response:
            if response.status_code != 206:   # it would send the whole file, for every range
                raise AdapterError("vcenter-datastore", "read range", f"HTTP {response.status_code} for {path}: the "
                                   "server ignores Range requests", endpoint=self._where, code="RangeIgnored")
            data = response.content
            start, _, rest = response.headers.get("Content-Range", "").removeprefix("bytes ").partition("-")
            end, _, total = rest.partition("/")
        whole = start.isdigit() and end.isdigit() and int(start) == offset and len(data) == int(end) - offset + 1
        if not whole or (len(data) != length and not (total.isdigit() and int(end) + 1 == int(total))):
            raise AdapterError("vcenter-datastore", "read range", f"{path}: asked for {length} bytes at {offset}, got "
                               f"{len(data)} (Content-Range {start}-{rest})", retryable=True, endpoint=self._where,
                               code="ShortRange")
        return data

    def write_range(self, datacenter: str, datastore: str, path: str, offset: int, data: bytes, total: int) -> None:
        """Write `data` at `offset` of the file in place (PUT with Content-Range), the file then `total` long
        at least. Only a datastore that honours Content-Range may be given this (see `ranged_write_problems`
        of the target): one that does not replaces the whole file with `data`."""
        if not data:
            raise ValueError("write_range needs at least one byte")
        end = offset + len(data) - 1
        self._request("PUT", "write range", datacenter, datastore, path, data=data,
                      headers={"Content-Range": f"bytes {offset}-{end}/{max(total, end + 1)}"})

    def size(self, datacenter: str, datastore: str, path: str) -> int | None:
        """The file's size (HEAD), None if it does not exist."""
        try:
            response = self._request("HEAD", "file size", datacenter, datastore, path)
        except AdapterError as exc:
            if exc.code == "HTTP 404":
                return None
            raise
        return int(response.headers.get("Content-Length", "0"))

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
