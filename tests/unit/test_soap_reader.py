"""The raw PropertyCollector client against a scripted SOAP server: paging tokens, faults, bad bodies.

vcsim never pages (it ignores maxObjects) and a real vCenter does, so the token path is exercised
here against a loopback HTTP server that answers like vCenter does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.vcenter.settings import TlsSettings
from adapters.vcenter.soap_reader import SoapEndpoint, SoapReader, split_objects
from adapters.vcenter.vm_extract import MARKER_PATHS, VM_PATHS
from adapters.vcenter.vm_markers import full_read_digests, marker_context, read_markers
from adapters.vcenter.vm_scan import vms_with_events
from migrate.core.errors import AdapterError
from migrate.core.faults import Backoff

ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>")


def objects(*names: str) -> str:
    return "".join(
        f'<objects><obj type="VirtualMachine">vm-{n}</obj><propSet><name>name</name>'
        f'<val xsi:type="xsd:string">{n}</val></propSet><propSet><name>config.hardware.numCPU</name>'
        f'<val xsi:type="xsd:int">{len(n)}</val></propSet></objects>' for n in names)


class Script:
    """What the fake vCenter answers, by SOAP method (a list: one answer per call, in turn); records every
    request body."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.answers: dict[str, tuple[int, str] | list[tuple[int, str]]] = {}

    def answer(self, method: str) -> tuple[int, str]:
        planned = self.answers[method]
        return planned.pop(0) if isinstance(planned, list) else planned


@pytest.fixture
def server() -> Iterator[tuple[Script, SoapReader]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            script.requests.append(body)
            method = next(m for m in script.answers if f"<{m} " in body)
            status, text = script.answer(method)
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    endpoint = SoapEndpoint(url=f"http://127.0.0.1:{httpd.server_port}/sdk", where="fake-vc",
                            tls=TlsSettings(verify=False), cookie="abc", action='"urn:vim25/8.0"',
                            property_collector="propertyCollector", view_manager="ViewManager",
                            root_folder="group-d1")
    try:
        reader = SoapReader(endpoint, chunk=1000)
        reader.backoff = Backoff(base=0.01, max_delay=0.05, deadline=0.5)   # retried, briefly, before it fails
        yield script, reader
    finally:
        httpd.shutdown()


def test_follows_paging_tokens(server: tuple[Script, SoapReader]) -> None:
    """A first page with a token is followed by ContinueRetrievePropertiesEx until no token is left."""
    script, reader = server
    script.answers["RetrievePropertiesEx"] = (200, ENVELOPE.format(
        '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>page-2</token>'
        f"{objects('a', 'bb')}</returnval></RetrievePropertiesExResponse>"))
    script.answers["ContinueRetrievePropertiesEx"] = (200, ENVELOPE.format(
        '<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
        f"{objects('ccc')}</returnval></ContinueRetrievePropertiesExResponse>"))
    items = reader.read("VirtualMachine", ["name", "config.hardware.numCPU"],
                        [("VirtualMachine", f"vm-{n}") for n in ("a", "bb", "ccc")])
    assert items == [("vm-a", {"name": "a", "config.hardware.numCPU": 1}),
                     ("vm-bb", {"name": "bb", "config.hardware.numCPU": 2}),
                     ("vm-ccc", {"name": "ccc", "config.hardware.numCPU": 3})]
    assert "<token>page-2</token>" in script.requests[1]
    assert '<_this type="PropertyCollector">propertyCollector</_this>' in script.requests[0]


def test_soap_fault_maps_to_adapter_error_by_type(server: tuple[Script, SoapReader]) -> None:
    """A NotAuthenticated fault becomes a non-retryable AdapterError naming the fault and endpoint."""
    script, reader = server
    script.answers["RetrievePropertiesEx"] = (500, ENVELOPE.format(
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated."
        '</faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated">'
        "</NotAuthenticatedFault></detail></soapenv:Fault>"))
    with pytest.raises(AdapterError) as exc:
        reader.read("VirtualMachine", ["name"], [("VirtualMachine", "vm-1")])
    assert exc.value.code == "NotAuthenticated" and exc.value.endpoint == "fake-vc"
    assert not exc.value.retryable


def test_retryable_fault_and_non_xml_body(server: tuple[Script, SoapReader]) -> None:
    """HostCommunication is retryable; a proxy's HTML error page is a clear retryable error, not a crash."""
    script, reader = server
    script.answers["RetrievePropertiesEx"] = (500, ENVELOPE.format(
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>lost host</faultstring>"
        '<detail><HostCommunicationFault xmlns="urn:vim25" xsi:type="HostCommunication"/></detail></soapenv:Fault>'))
    with pytest.raises(AdapterError) as exc:
        reader.read("VirtualMachine", ["name"], [("VirtualMachine", "vm-1")])
    assert exc.value.retryable
    script.answers["RetrievePropertiesEx"] = (502, "<html><body>Bad Gateway</body>")
    with pytest.raises(AdapterError, match="HTTP 502") as exc:
        reader.read("VirtualMachine", ["name"], [("VirtualMachine", "vm-1")])
    assert exc.value.retryable


def test_container_view_listing_is_created_and_destroyed(server: tuple[Script, SoapReader]) -> None:
    """objects() creates a container view, reads its members with their types, and destroys it."""
    script, reader = server
    script.answers["CreateContainerView"] = (200, ENVELOPE.format(
        '<CreateContainerViewResponse xmlns="urn:vim25"><returnval type="ContainerView">session[1]v</returnval>'
        "</CreateContainerViewResponse>"))
    script.answers["RetrievePropertiesEx"] = (200, ENVELOPE.format(
        '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="ContainerView">session[1]v'
        '</obj><propSet><name>view</name><val xsi:type="ArrayOfManagedObjectReference">'
        '<ManagedObjectReference type="Network">network-1</ManagedObjectReference>'
        '<ManagedObjectReference type="DistributedVirtualPortgroup">dvportgroup-2</ManagedObjectReference>'
        "</val></propSet></objects></returnval></RetrievePropertiesExResponse>"))
    script.answers["DestroyView"] = (200, ENVELOPE.format('<DestroyViewResponse xmlns="urn:vim25"/>'))
    assert reader.objects("Network") == [("Network", "network-1"), ("DistributedVirtualPortgroup", "dvportgroup-2")]
    assert any("<DestroyView " in r and "session[1]v" in r for r in script.requests)


def marker_objects(*names: str, extra: bool = False) -> str:
    """VMs with the marker properties name and customValue; `extra` adds a heavier property in between."""
    between = ('<propSet><name>config.hardware</name><val xsi:type="VirtualHardware"><numCPU>2</numCPU>'
               "</val></propSet>") if extra else ""
    return "".join(
        f'<objects><obj type="VirtualMachine">vm-{n}</obj><propSet><name>name</name>'
        f'<val xsi:type="xsd:string">{n}</val></propSet>{between}<propSet><name>customValue</name>'
        f'<val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>1</key>'
        f"<value>{n}-owner</value></CustomFieldValue></val></propSet></objects>" for n in names)


def page(method: str, body: str, token: str | None = None) -> str:
    first = f"<token>{token}</token>" if token else ""
    return ENVELOPE.format(f'<{method}Response xmlns="urn:vim25"><returnval>{first}{body}</returnval>'
                           f"</{method}Response>")


def test_raw_pages_split_per_object_and_digest_like_a_full_read(server: tuple[Script, SoapReader]) -> None:
    """The marker pass is fetched page by page (token first, as the schema orders it), cut per VM without a
    tree, parsed only for the VMs asked, and digests like the same VMs' marker propSets in a full read."""
    script, reader = server
    script.answers["CreateContainerView"] = (200, ENVELOPE.format(
        '<CreateContainerViewResponse xmlns="urn:vim25"><returnval type="ContainerView">v1</returnval>'
        "</CreateContainerViewResponse>"))
    script.answers["DestroyView"] = (200, ENVELOPE.format('<DestroyViewResponse xmlns="urn:vim25"/>'))
    script.answers["RetrievePropertiesEx"] = (200, page("RetrievePropertiesEx", marker_objects("a", "b&amp;"), "t2"))
    script.answers["ContinueRetrievePropertiesEx"] = (200, page("ContinueRetrievePropertiesEx", marker_objects("c")))
    context = marker_context({"1": "owner"})
    markers = read_markers(reader, context)
    assert markers.refs == ["vm-a", "vm-b&", "vm-c"]
    assert "<token>t2</token>" in script.requests[-2]
    facts = markers.facts(["vm-b&", "vm-c"])
    assert facts.keys() == {"vm-b&", "vm-c"}
    assert facts["vm-c"]["name"] == "c" and facts["vm-c"]["custom_values"] == [("1", "c-owner")]
    full = page("RetrievePropertiesEx", marker_objects("a", "b&amp;", "c", extra=True)).encode()
    assert full_read_digests(full, context) == markers.digests
    assert full_read_digests(full, marker_context({"1": "renamed"})).keys() == markers.digests.keys()
    assert full_read_digests(full, marker_context({"1": "renamed"}))["vm-a"] != markers.digests["vm-a"]
    changed = page("RetrievePropertiesEx", marker_objects("a", "b&amp;").replace("a-owner", "x")).encode()
    assert full_read_digests(changed, context)["vm-a"] != markers.digests["vm-a"]
    assert full_read_digests(changed, context)["vm-b&"] == markers.digests["vm-b&"]


def test_unexpected_layout_is_not_split() -> None:
    """Objects with attributes (another server's layout) are not cut by bytes: the caller parses instead."""
    odd = page("RetrievePropertiesEx", marker_objects("a").replace("<objects>", '<objects xsi:type="ObjectContent">'))
    assert split_objects(odd.encode()) is None
    second = marker_objects("b").replace("<objects>", '<objects xsi:type="ObjectContent">')
    assert split_objects(page("RetrievePropertiesEx", marker_objects("a") + second).encode()) is None
    empty = split_objects(page("RetrievePropertiesEx", "").encode())
    assert empty is not None and not empty.objects


def test_marker_paths_follow_the_full_reads_order() -> None:
    """A full scan's marker propSets come in VM_PATHS order: MARKER_PATHS must be in the same relative order
    for its digests to equal the marker pass's (else every VM is parsed once more, never a wrong result)."""
    assert [path for path in VM_PATHS if path in MARKER_PATHS] == list(MARKER_PATHS)


def event(kind: str, created: str, body: str) -> str:
    return (f'<returnval xsi:type="{kind}"><key>1</key><chainId>1</chainId><createdTime>{created}</createdTime>'
            f"{body}</returnval>")


def test_events_name_vms_since_a_time(server: tuple[Script, SoapReader]) -> None:
    """Events are cut from the response bytes: every moref element of type VirtualMachine (vm, entity,
    arguments; escaped ids too) of events no older than the margin; an older one shows the history
    reaches back (so the answer is complete)."""
    script, reader = server
    answer = '<{0}Response xmlns="urn:vim25">{1}</{0}Response>'
    script.answers["CreateCollectorForEvents"] = (200, ENVELOPE.format(answer.format(
        "CreateCollectorForEvents", '<returnval type="EventHistoryCollector">session[1]c1</returnval>')))
    for method in ("RewindCollector", "DestroyCollector"):
        script.answers[method] = (200, ENVELOPE.format(answer.format(method, "")))
    page = "".join((
        event("UserLoginSessionEvent", "2026-01-01T00:00:05.5Z", '<vm><vm type="VirtualMachine">vm-old</vm></vm>'),
        event("VmReconfiguredEvent", "2026-01-01T00:00:20.123456789Z",
              '<vm><name>a</name><vm type="VirtualMachine">vm-1</vm></vm>'
              '<host><host type="HostSystem">h-1</host></host>'),
        event("EventEx", "2026-01-01T00:00:30Z", '<arguments><key>target</key><value xsi:type="ManagedObjectReference" '
              'type="VirtualMachine">vm-a&amp;b</value></arguments><objectId>vm-9</objectId>'),
        # vCenter writes the moref's type before xsi:type; other attributes may follow
        event("TaskEvent", "2026-01-01T00:00:31Z", '<info><result type="VirtualMachine" '
              'xsi:type="ManagedObjectReference">vm-7</result></info><vm><vm type="VirtualMachine" '
              'serverGuid="abc">vm-8</vm></vm><fullFormattedMessage>type="VirtualMachine">vm-x</fullFormattedMessage>'),
    ))
    script.answers["ReadNextEvents"] = [(200, ENVELOPE.format(answer.format("ReadNextEvents", page))),
                                        (200, ENVELOPE.format(answer.format("ReadNextEvents", "")))]
    since = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert vms_with_events(reader, since) == {"vm-1", "vm-a&b", "vm-7", "vm-8"}
