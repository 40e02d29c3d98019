"""vAPI REST client for the parts SOAP does not cover (the tagging service)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import requests

from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.tls import requests_session
from migrate.core.errors import AdapterError
from migrate.core.faults import RETRYABLE_HTTP, Backoff, call_with_retry, is_transient

__all__ = ["RestClient", "TaggingClient"]

_SESSION_HEADER = "vmware-api-session-id"


class RestClient:
    """A logged-in /rest session on the same vCenter as a SOAP session.

    Calls go through the retry classification (migrate.core.faults): reads and the idempotent actions are
    retried on transient faults; a 401 (the REST session expired, which happens on its own idle timer)
    logs in again and retries once, for any call: the server refused it before acting.
    """

    def __init__(self, vc: VCenterSession, timeout: float = 30.0, backoff: Backoff | None = None) -> None:
        self._base = vc.base_url + "/rest"
        self._where = vc.endpoint.host
        self._timeout = timeout
        self._credentials = (vc.endpoint.username, vc.password)
        self._backoff = backoff or Backoff()
        self._http = requests_session(vc.endpoint.tls)
        self._lock = threading.Lock()     # threads share the client: one of them logs in again, once
        self._generation = 0
        self._login(0)

    def _login(self, expired: int) -> None:
        """Log in, unless another thread already replaced session `expired`."""
        with self._lock:
            if self._generation != expired:
                return
            response = call_with_retry(lambda: self._once("POST", "/com/vmware/cis/session", "login",
                                                          auth=self._credentials), backoff=self._backoff)
            self._http.headers[_SESSION_HEADER] = response["value"]
            self._generation += 1

    def _once(self, method: str, path: str, op: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, self._base + path, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise AdapterError("vcenter-rest", op, f"cannot reach the vAPI endpoint ({type(exc).__name__} {exc})",
                               retryable=is_transient(exc), endpoint=self._where, code=type(exc).__name__) from None
        if response.status_code == 401:
            raise AdapterError("vcenter-rest", op, "not authorised", endpoint=self._where, code="HTTP 401")
        if response.status_code >= 400:
            raise AdapterError("vcenter-rest", op, f"HTTP {response.status_code}", endpoint=self._where,
                               retryable=response.status_code in RETRYABLE_HTTP, code=f"HTTP {response.status_code}")
        return response.json() if response.content else None

    def _send(self, method: str, path: str, op: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        def attempt() -> Any:
            return call_with_retry(lambda: self._once(method, path, op, **kwargs), backoff=self._backoff,
                                   idempotent=idempotent)

        generation = self._generation
        try:
            return attempt()
        except AdapterError as exc:
            if exc.code != "HTTP 401":
                raise
        self._login(generation)      # the REST session expired: once more with a new one
        try:
            return attempt()
        except AdapterError as exc:
            if exc.code == "HTTP 401":   # expired again at once (another thread's login raced): the step retries
                exc.retryable = True
            raise

    def get(self, path: str, op: str, **params: str) -> Any:
        return self._send("GET", path, op, params=params or None)

    def post(self, path: str, op: str, body: Any = None, **params: str) -> Any:
        """POST an action that is safe to repeat (a query, an attach)."""
        return self._send("POST", path, op, json=body, params=params or None)

    def create(self, path: str, op: str, body: Any) -> Any:
        """POST a create: not repeated on a transient fault (the server may have acted before the reply was lost)."""
        return self._send("POST", path, op, idempotent=False, json=body)

    def close(self) -> None:
        with contextlib.suppress(requests.RequestException):
            self._http.delete(self._base + "/com/vmware/cis/session", timeout=self._timeout)
        self._http.close()


class TaggingClient:
    """Categories, tags and tag associations (com.vmware.cis.tagging)."""

    _CATEGORY = "/com/vmware/cis/tagging/category"
    _TAG = "/com/vmware/cis/tagging/tag"
    _ASSOC = "/com/vmware/cis/tagging/tag-association"

    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    def create_category(self, name: str, *, cardinality: str = "SINGLE",
                        types: tuple[str, ...] = ("VirtualMachine",)) -> str:
        spec = {"create_spec": {"name": name, "description": "", "cardinality": cardinality,
                                "associable_types": list(types)}}
        return str(self._rest.create(self._CATEGORY, "create category", spec)["value"])

    def create_tag(self, category_id: str, name: str) -> str:
        spec = {"create_spec": {"name": name, "description": "", "category_id": category_id}}
        return str(self._rest.create(self._TAG, "create tag", spec)["value"])

    def attach(self, tag_id: str, object_ids: list[tuple[str, str]]) -> None:
        """Attach one tag to many objects given as (type, moref value)."""
        body = {"object_ids": [{"type": t, "id": i} for t, i in object_ids]}
        self._rest.post(f"{self._ASSOC}/id:{tag_id}", "attach tag", body,
                        **{"~action": "attach-tag-to-multiple-objects"})

    def categories(self) -> list[dict[str, Any]]:
        ids = self._rest.get(self._CATEGORY, "list categories")["value"] or []
        return [self._rest.get(f"{self._CATEGORY}/id:{i}", "get category")["value"] for i in ids]

    def tags(self) -> list[dict[str, Any]]:
        ids = self._rest.get(self._TAG, "list tags")["value"] or []
        return [self._rest.get(f"{self._TAG}/id:{i}", "get tag")["value"] for i in ids]

    def attached_tags(self, object_ids: list[tuple[str, str]]) -> dict[str, list[str]]:
        """moref value -> tag ids, for many objects in one call."""
        body = {"object_ids": [{"type": t, "id": i} for t, i in object_ids]}
        result = self._rest.post(self._ASSOC, "list attached tags", body,
                                 **{"~action": "list-attached-tags-on-objects"})["value"] or []
        return {item["object_id"]["id"]: list(item.get("tag_ids") or []) for item in result}

    def close(self) -> None:
        """Log out of the REST session."""
        self._rest.close()
