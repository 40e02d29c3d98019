"""Sessions that end under a running client: the SOAP client and the vAPI REST client log in again by themselves,
and a call through a connection reset at random still returns the right answer."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from adapters.vcenter.client import VCenterClient
from adapters.vcenter.collector import read_view
from adapters.vcenter.connection import VCenterSession
from adapters.vcenter.rest import RestClient, TaggingClient
from migrate.core.config import SiteConfig
from tests.integration.chaos import ChaosProxy


def test_rest_client_logs_in_again_after_its_session_ends(onprem: VCenterSession) -> None:
    """The REST session deleted on the server (as its idle timer would): the next read logs in again."""
    rest = RestClient(onprem)
    try:
        tagging = TaggingClient(rest)
        before = sorted(c["id"] for c in tagging.categories())
        rest._http.delete(rest._base + "/com/vmware/cis/session", timeout=10)
        assert rest._http.get(rest._base + "/com/vmware/cis/tagging/category", timeout=10).status_code == 401
        assert sorted(c["id"] for c in tagging.categories()) == before
    finally:
        rest.close()


def test_soap_client_logs_in_again_after_its_session_ends(site: SiteConfig) -> None:
    """Logged out behind its back (an expired session): the next call gets NotAuthenticated, logs in, answers."""
    client = VCenterClient(site.source)
    try:
        first = client.call("about", lambda si: si.content.about.instanceUuid)
        client.si.content.sessionManager.Logout()
        with pytest.raises(vim.fault.NotAuthenticated):
            client.si.CurrentTime()
        assert client.call("about", lambda si: si.content.about.instanceUuid) == first
        names = client.call("list vms", lambda si: sorted(p["name"] for _, p in read_view(si, vim.VirtualMachine,
                                                                                            ["name"])))
        assert names
    finally:
        client.close()


def test_reads_through_a_lossy_link_return_the_same_answer(site: SiteConfig) -> None:
    """Half the connections reset at random: every read still returns what a clean link returns."""
    assert site.source.host
    host, port = site.source.host.rsplit(":", 1)
    proxy = ChaosProxy((host, int(port)), reset_rate=0.5, seed=4, max_bytes=8 * 1024)
    clean = VCenterClient(site.source)
    url = site.source.url.replace(site.source.host, f"127.0.0.1:{proxy.port}")
    lossy = VCenterClient(site.source.model_copy(update={"url": url}))
    try:
        def names(si: object) -> list[str]:
            return sorted(str(p["name"]) for _, p in read_view(si, vim.VirtualMachine, ["name", "config.hardware"]))

        want = clean.call("list vms", names)
        for _ in range(5):
            assert lossy.call("list vms", names) == want
        assert proxy.stats.resets > 0
    finally:
        lossy.close()
        clean.close()
        proxy.close()
