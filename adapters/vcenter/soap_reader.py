"""Bulk PropertyCollector reads over raw SOAP, parsed with lxml into plain Python values.

pyvmomi spends most of a large RetrievePropertiesEx in building typed objects; discovery needs
plain data anyway. This client sends the same RetrievePropertiesEx / ContinueRetrievePropertiesEx
requests with the pyvmomi session's cookie, splits large object sets into chunks fetched in
parallel (lxml parses without holding the GIL), follows paging tokens, and maps SOAP faults to
AdapterError by fault type.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, unescape

import requests
from lxml import etree

from adapters.faults import VSPHERE_TRANSIENT
from adapters.vcenter.collector import fault_name
from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.settings import TlsSettings
from adapters.vcenter.tls import requests_session
from migrate.core.errors import AdapterError
from migrate.core.faults import RETRYABLE_HTTP, Backoff, call_with_retry, is_transient

__all__ = ["Converter", "Moref", "RawObjects", "SoapEndpoint", "SoapReader", "as_list", "parse_objects",
           "parse_page", "split_objects", "to_value", "xsi_type"]

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_VIM_NS = "urn:vim25"
_INT_TYPES = {"int", "long", "short", "byte"}
_FLOAT_TYPES = {"double", "float"}
_RETRYABLE_FAULTS = frozenset(fault_name(t()) for t in VSPHERE_TRANSIENT)   # by name: the reader parses XML
_RETURNVAL, _OBJECTS, _OBJ, _PROPSET, _NAME, _VAL, _TOKEN = (
    f"{{{_VIM_NS}}}{name}" for name in ("returnval", "objects", "obj", "propSet", "name", "val", "token"))
_READ_SIZE = 1 << 20
_PARSER = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)
_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>'
)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xsi_type(element: Any) -> str | None:
    """The element's xsi:type without its prefix (e.g. `VirtualDisk`), or None."""
    xsi = element.get(_XSI_TYPE)
    return xsi.rsplit(":", 1)[-1] if xsi else None


Moref = tuple[str, str]   # (managed object type, id), e.g. ("VirtualMachine", "vm-42")

# Turns one object's raw <val> elements (by property path) into what the caller wants; it runs in the
# worker thread that parsed the response, so the elements never leave it.
Converter = Callable[[str, dict[str, Any]], Any]


def _plain(_: str, props: dict[str, Any]) -> dict[str, Any]:
    return {name: None if val is None else to_value(val) for name, val in props.items()}


def to_value(element: Any) -> Any:
    """An XML value as plain Python: scalars, lists (ArrayOf*), dicts (`_type` keeps xsi:type), moref ids."""
    xsi = element.get(_XSI_TYPE)
    kind = xsi.rsplit(":", 1)[-1] if xsi else None
    if kind == "ManagedObjectReference" or (kind is None and element.get("type") is not None and len(element) == 0):
        return element.text
    if kind is not None and kind.startswith("ArrayOf"):
        if kind == "ArrayOfManagedObjectReference":     # the containers' long VM lists: just the ids
            return [child.text for child in element]
        return [to_value(child) for child in element]
    if len(element) == 0:
        text = element.text or ""
        if kind in _INT_TYPES:
            return int(text)
        if kind == "boolean":
            return text == "true"
        if kind in _FLOAT_TYPES:
            return float(text)
        return text
    out: dict[str, Any] = {"_type": kind} if kind else {}
    for child in element:
        key = _local(child.tag)
        value = to_value(child)
        if key in out:
            existing = out[key]
            if isinstance(existing, list) and key in out.get("_lists", ()):
                existing.append(value)
            else:
                out[key] = [existing, value]
                out.setdefault("_lists", set()).add(key)
        else:
            out[key] = value
    out.pop("_lists", None)
    return out


def as_list(value: Any) -> list[Any]:
    """Repeated XML children come back as a list, a single one as the value itself: always a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _filter_spec(obj_type: str, paths: Sequence[str], objects: Sequence[tuple[str, str]]) -> str:
    """A FilterSpec naming each object explicitly (no traversal), for `paths` of `obj_type`."""
    prop = f"<propSet><type>{obj_type}</type>" + "".join(f"<pathSet>{escape(p)}</pathSet>" for p in paths)
    specs = "".join(f'<objectSet><obj type="{t}">{escape(v)}</obj><skip>false</skip></objectSet>' for t, v in objects)
    return f"<specSet>{prop}</propSet>{specs}</specSet>"


def _body(root: Any) -> Any:
    body = root.find(f"{{{_SOAP_NS}}}Body")
    return body[0]


def _objects_of(result: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, moref, {path: <val> element}) of each <objects> of a <returnval>."""
    for child in result:               # plain child iteration: find() per element is slow
        if child.tag != _OBJECTS:
            continue
        moref = kind = ""
        props: dict[str, Any] = {}
        for part in child:
            if part.tag == _PROPSET:
                name = val = None
                for field in part:
                    if field.tag == _NAME:
                        name = field.text
                    elif field.tag == _VAL:
                        val = field
                props[name or ""] = val
            elif part.tag == _OBJ:
                moref, kind = part.text or "", part.get("type") or ""
        yield kind, moref, props


_TOKEN_FIRST = re.compile(rb"<returnval>\s*<token>([^<]*)</token>")     # schema order: token, then objects
_TOKEN_LAST = re.compile(rb"<token>([^<]*)</token>\s*</returnval>")
_OPEN_OBJECTS, _CLOSE_OBJECTS, _OBJ_TYPE, _CLOSE_OBJ = b"<objects>", b"</objects>", b"<obj type=", b"</obj>"


def _page_token(page: bytes) -> str | None:
    match = _TOKEN_FIRST.search(page, 0, 4096) or _TOKEN_LAST.search(page, max(0, len(page) - 4096))
    return unescape(match[1].decode()) if match else None


@dataclass(frozen=True)
class RawObjects:
    """One response page cut into its objects without parsing it."""

    head: bytes                                  # everything before the first object (namespace declarations)
    tail: bytes                                  # everything after the last one
    # moref -> its <objects> element without the opening tag: <obj>, the propSet elements, </objects>
    objects: dict[str, bytes]

    def props(self, ref: str) -> memoryview:
        """The object's propSet elements, as sent (no copy)."""
        body = self.objects[ref]
        return memoryview(body)[body.index(_CLOSE_OBJ) + len(_CLOSE_OBJ):len(body) - len(_CLOSE_OBJECTS)]


def split_objects(page: bytes) -> RawObjects | None:
    """Cut a RetrievePropertiesEx(Continue) response into per-object bytes (C-level split, no tree).

    None when the page is not laid out as expected (attributes on <objects>, anything between two
    objects, an object twice): parse it instead.
    """
    pieces = page.split(_OPEN_OBJECTS)
    if page.count(b"<objects") != len(pieces) - 1:      # every one without attributes, or none is cut
        return None
    if len(pieces) == 1:
        return RawObjects(page, b"", {})
    last = pieces[-1]
    cut = last.rfind(_CLOSE_OBJECTS) + len(_CLOSE_OBJECTS)
    pieces[-1] = last[:cut]
    bodies = pieces[1:]
    refs = []
    for body in bodies:
        end = body.find(_CLOSE_OBJ)
        if end < 0 or not body.startswith(_OBJ_TYPE) or not body.endswith(_CLOSE_OBJECTS):
            return None
        refs.append(body[body.index(b">") + 1:end])
    names = b"\0".join(refs).decode()         # XML text holds no NUL: one decode (and unescape) for all
    objects = dict(zip((unescape(names) if "&" in names else names).split("\0"), bodies, strict=True))
    if len(objects) != len(bodies):
        return None
    return RawObjects(pieces[0], last[cut:], objects)


def parse_objects(raw: RawObjects, refs: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(moref, {path: <val> element}) of just the objects `refs` of a split page (one small parse)."""
    chosen = [_OPEN_OBJECTS + raw.objects[ref] for ref in refs if ref in raw.objects]
    if chosen:
        yield from parse_page(raw.head + b"".join(chosen) + raw.tail)


def parse_page(page: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    """(moref, {path: <val> element}) of every object of a raw response page."""
    result = _body(etree.fromstring(page, _PARSER)).find(_RETURNVAL)
    for _, ref, props in _objects_of(result if result is not None else ()):
        yield ref, props


@dataclass(frozen=True)
class SoapEndpoint:
    """Where and as whom to send raw SOAP: taken from a logged-in pyvmomi session."""

    url: str
    where: str
    tls: TlsSettings
    cookie: str
    action: str                       # SOAPAction header, e.g. "urn:vim25/6.5"
    property_collector: str
    view_manager: str
    root_folder: str
    event_manager: str = "EventManager"

    @classmethod
    def of(cls, vc: VCenterSession) -> SoapEndpoint:
        content = vc.si.content
        return cls(url=vc.base_url + "/sdk", where=vc.endpoint.host, tls=vc.endpoint.tls, cookie=vc.session_cookie,
                   action=vc.si._stub.versionId or '"urn:vim25/6.5"',
                   property_collector=content.propertyCollector._moId, view_manager=content.viewManager._moId,
                   root_folder=content.rootFolder._moId, event_manager=content.eventManager._moId)


class SoapReader:
    """Reads properties of many managed objects; one instance per vCenter session."""

    def __init__(self, endpoint: SoapEndpoint, *, workers: int = 4, chunk: int = 500, timeout: float = 300.0) -> None:
        self._url = endpoint.url
        self._where = endpoint.where
        self._tls = endpoint.tls
        self._cookie = endpoint.cookie
        self._action = endpoint.action
        self._collector: Moref = ("PropertyCollector", endpoint.property_collector)
        self._view_manager: Moref = ("ViewManager", endpoint.view_manager)
        self._root: Moref = ("Folder", endpoint.root_folder)
        self.event_manager: Moref = ("EventManager", endpoint.event_manager)
        self._workers = workers
        self._chunk = chunk
        self._timeout = timeout
        self._local = threading.local()
        self.backoff = Backoff()

    def _http(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "http", None)
        if session is None:
            session = requests_session(self._tls)
            session.cookies.set("vmware_soap_session", self._cookie)
            self._local.http = session
        return session

    def call(self, method: str, this: Moref, inner: str, *, idempotent: bool = True) -> Any:
        """Invoke `method` on managed object `this` with the XML `inner` parameters; the response element.

        A dropped connection, a cut response or a busy server is retried with backoff (migrate.core.faults),
        except for calls that move a cursor or make an object on the server (`idempotent=False`: a page
        read twice would skip one; a view made twice leaks one): those fail with a retryable error.
        """
        return call_with_retry(lambda: self._parse(method, self._post(method, this, inner)), backoff=self.backoff,
                               idempotent=idempotent, what=method)

    def _post(self, method: str, this: Moref, inner: str) -> tuple[int, bytes]:
        """(HTTP status, response body) of one SOAP call."""
        body = _ENVELOPE.format(body=f'<{method} xmlns="{_VIM_NS}"><_this type="{this[0]}">{escape(this[1])}</_this>'
                                     f"{inner}</{method}>")
        try:
            with self._http().post(self._url, data=body.encode(), timeout=self._timeout, stream=True, headers={
                    "Content-Type": "text/xml; charset=utf-8", "SOAPAction": self._action}) as response:
                # large reads: requests' default 10 KiB pieces cost a marker pass of 10,000 VMs ~5 ms of Python
                return response.status_code, b"".join(response.iter_content(_READ_SIZE))
        except requests.RequestException as exc:
            raise AdapterError("vcenter", method, f"cannot reach the vCenter ({type(exc).__name__})",
                               retryable=is_transient(exc), endpoint=self._where, code=type(exc).__name__) from None

    def _parse(self, method: str, reply: tuple[int, bytes]) -> Any:
        status, content = reply
        try:
            root = etree.fromstring(content, _PARSER)
        except etree.XMLSyntaxError:
            raise AdapterError("vcenter", method, f"HTTP {status} with a body that is not XML",
                               retryable=status in RETRYABLE_HTTP, endpoint=self._where) from None
        body_el = root.find(f"{{{_SOAP_NS}}}Body")
        fault = body_el.find(f"{{{_SOAP_NS}}}Fault") if body_el is not None else None
        if fault is not None:
            raise self._fault(method, fault)
        if body_el is None or len(body_el) == 0:
            raise AdapterError("vcenter", method, "empty SOAP response", retryable=True, endpoint=self._where)
        return body_el[0]

    def call_bytes(self, method: str, this: Moref, inner: str, *, idempotent: bool = True) -> bytes:
        """Like `call`, but the successful response's raw bytes, unparsed (faults still raise)."""
        def once() -> bytes:
            reply = self._post(method, this, inner)
            if reply[0] != 200 or not reply[1].lstrip().startswith(b"<"):
                self._parse(method, reply)     # raises the fault, or a non-XML body error
            return reply[1]

        return call_with_retry(once, backoff=self.backoff, idempotent=idempotent, what=method)

    def _fault(self, method: str, fault: Any) -> AdapterError:
        detail = fault.find("detail")
        name = "ServerFault"
        if detail is not None and len(detail):
            name = (detail[0].get(_XSI_TYPE) or _local(detail[0].tag)).rsplit(":", 1)[-1].removesuffix("Fault")
        message = fault.findtext("faultstring") or name
        return AdapterError("vcenter", method, f"{name}: {message}", retryable=name in _RETRYABLE_FAULTS,
                            endpoint=self._where, code=name)

    def _retrieve(self, spec: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(moref, {path: <val> element}) per object, following paging tokens."""
        for _, moref, props in self._retrieve_typed(spec):
            yield moref, props

    def _retrieve_typed(self, spec: str, raw: Callable[[bytes], None] | None = None,
                        ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(type, moref, {path: <val> element}) per object, following paging tokens.

        `raw` sees each page's response bytes (in the calling thread) before they are parsed.
        """
        method, inner = "RetrievePropertiesEx", spec + "<options></options>"
        while True:
            if raw is None:
                response = self.call(method, self._collector, inner, idempotent=method == "RetrievePropertiesEx")
            else:
                data = self.call_bytes(method, self._collector, inner, idempotent=method == "RetrievePropertiesEx")
                raw(data)
                response = _body(etree.fromstring(data, _PARSER))
            result = response.find(_RETURNVAL)
            if result is None:
                return
            yield from _objects_of(result)
            token = result.findtext(_TOKEN)
            if not token:
                return
            method, inner = "ContinueRetrievePropertiesEx", f"<token>{escape(token)}</token>"
            # a token may be used once: its call is not repeated (a lost reply fails the scan, retryably)

    def retrieve_pages(self, obj_type: str, paths: Sequence[str], *, through: Sequence[Moref] = (),
                       path: str = "vm", objects: Sequence[Moref] = ()) -> list[bytes]:
        """The raw response pages of `paths` of the objects of `obj_type`: all of them (one container view).

        With `through`, only the objects those containers list under `path` (hosts' `vm`, say): no view
        to build, and disjoint sets of containers can be read in parallel requests; with `objects`,
        just those. For callers that look at the bytes before (or instead of) parsing them: see
        split_objects.
        """
        if through:
            return self._pages(self._traversal_spec(obj_type, paths, through, path))
        if objects:
            return self._pages(_filter_spec(obj_type, paths, objects))
        view = self._container_view(obj_type)
        try:
            return self._pages(self._view_spec(view, {obj_type: paths}))
        finally:
            self.call("DestroyView", view, "")

    def _pages(self, spec: str) -> list[bytes]:
        pages = [self.call_bytes("RetrievePropertiesEx", self._collector, spec + "<options></options>")]
        while (token := _page_token(pages[-1])) is not None:
            pages.append(self.call_bytes("ContinueRetrievePropertiesEx", self._collector,
                                         f"<token>{escape(token)}</token>", idempotent=False))
        return pages

    @staticmethod
    def _traversal_spec(obj_type: str, paths: Sequence[str], containers: Sequence[Moref], path: str) -> str:
        """A FilterSpec over what each container lists under `path`, the containers themselves skipped."""
        def select(kind: str) -> str:
            return ('<selectSet xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="TraversalSpec">'
                    f"<name>through</name><type>{escape(kind)}</type><path>{escape(path)}</path>"
                    "<skip>false</skip></selectSet>")

        props = f"<propSet><type>{escape(obj_type)}</type>" + "".join(f"<pathSet>{escape(p)}</pathSet>" for p in paths)
        objects = "".join(f'<objectSet><obj type="{escape(kind)}">{escape(ref)}</obj><skip>true</skip>{select(kind)}'
                          "</objectSet>" for kind, ref in containers)
        return f"<specSet>{props}</propSet>{objects}</specSet>"

    def _container_view(self, *obj_types: str) -> Moref:
        spec = (f'<container type="{self._root[0]}">{escape(self._root[1])}</container>'
                + "".join(f"<type>{escape(t)}</type>" for t in obj_types) + "<recursive>true</recursive>")
        created = self.call("CreateContainerView", self._view_manager, spec, idempotent=False)
        return "ContainerView", created.findtext(f"{{{_VIM_NS}}}returnval") or ""

    @staticmethod
    def _view_spec(view: Moref, paths_by_type: Mapping[str, Sequence[str]]) -> str:
        """A FilterSpec over every object of a container view, with the paths each (super)type asks for."""
        traversal = ('<selectSet xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="TraversalSpec">'
                     "<name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet>")
        props = "".join(f"<propSet><type>{escape(t)}</type>" + "".join(f"<pathSet>{escape(p)}</pathSet>" for p in paths)
                        + "</propSet>" for t, paths in paths_by_type.items())
        return (f"<specSet>{props}<objectSet><obj type=\"ContainerView\">{escape(view[1])}</obj><skip>true</skip>"
                f"{traversal}</objectSet></specSet>")

    def objects(self, obj_type: str) -> list[Moref]:
        """(type, id) of every object of `obj_type` or its subtypes (one small call on a container view)."""
        view = self._container_view(obj_type)
        try:
            found = list(self._retrieve(_filter_spec(view[0], ["view"], [view])))
        finally:
            self.call("DestroyView", view, "")
        val = found[0][1].get("view") if found else None
        return [] if val is None else [(child.get("type") or obj_type, child.text or "") for child in val]

    def read_all(self, obj_type: str, paths: Sequence[str], convert: Converter = _plain) -> list[tuple[str, Any]]:
        """Like `read` of every object of `obj_type`, in one request that traverses a container view.

        For a few small properties of many objects this is the cheapest read: the server walks the
        view itself instead of decoding one ObjectSpec per object (vcsim: 10,000 VMs x 1 property
        0.1 s instead of 0.4 s); no parallel chunks, so it suits light passes, not the full read.
        """
        view = self._container_view(obj_type)
        try:
            spec = self._view_spec(view, {obj_type: paths})
            return [(ref, convert(ref, props)) for ref, props in self._retrieve(spec)]
        finally:
            self.call("DestroyView", view, "")

    def read_types(self, view_types: Sequence[str],
                   paths_by_type: Mapping[str, Sequence[str]]) -> list[tuple[str, str, dict[str, Any]]]:
        """(type, moref, plain properties) of every object of `view_types`, in one request.

        `paths_by_type` may name supertypes (ManagedEntity, ComputeResource...): each object gets the
        paths of every entry its type is or derives from. Many small object types cost one round trip.
        """
        view = self._container_view(*view_types)
        try:
            return [(kind, ref, _plain(ref, props))
                    for kind, ref, props in self._retrieve_typed(self._view_spec(view, paths_by_type))]
        finally:
            self.call("DestroyView", view, "")

    def read(self, obj_type: str, paths: Sequence[str], objects: Iterable[Moref] | None = None,
             convert: Converter = _plain, raw: Callable[[bytes], None] | None = None) -> list[tuple[str, Any]]:
        """(moref id, converted properties) of every object of `obj_type` (or of the given ones).

        Large sets are split into chunks fetched by parallel workers; `convert` and `raw` (which sees
        every response page's bytes) run in the worker.
        """
        refs = self.objects(obj_type) if objects is None else list(objects)
        chunks = [refs[i:i + self._chunk] for i in range(0, len(refs), self._chunk)]

        def fetch(chunk: list[Moref]) -> list[tuple[str, Any]]:
            spec = _filter_spec(obj_type, paths, chunk)
            return [(ref, convert(ref, props)) for _, ref, props in self._retrieve_typed(spec, raw)]

        if len(chunks) <= 1:
            return [item for chunk in chunks for item in fetch(chunk)]
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            return [item for part in pool.map(fetch, chunks) for item in part]

    def close(self) -> None:
        session = getattr(self._local, "http", None)
        if session is not None:
            session.close()
