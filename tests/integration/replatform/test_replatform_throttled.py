"""A re-platform wave whose AWS calls are throttled a third of the time completes by retries alone, every
EBS block equal to the source's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.aws.ebs_verify import iter_snapshot_blocks
from adapters.aws.settings import aws_settings
from migrate.engine.journal import Journal
from tests.integration.replatform.conftest import World
from tests.integration.throttle import ThrottlingProxy

WAVE = ["reporting-db-01", "shop-app-01"]   # not used by the other re-platform tests
RATE = 0.35


@pytest.fixture(scope="module")
def throttled(world: World) -> Iterator[tuple[ThrottlingProxy, Path]]:
    endpoint = aws_settings(world.site.replatformer).endpoint_url
    assert endpoint
    tls = world.lab.directory / "tls"
    proxy = ThrottlingProxy(endpoint, cert_file=tls / "server.pem", key_file=tls / "server-key.pem",
                            ca_file=tls / "ca.pem", rate=RATE, seed=3)
    try:
        yield proxy, world.site_variant("throttled", lambda doc: doc["replatformer"].update(endpoint_url=proxy.url))
    finally:
        proxy.close()


def test_throttled_replatform_wave_completes_with_every_block_equal(
        world: World, throttled: tuple[ThrottlingProxy, Path]) -> None:
    """Every VM completes without a resume; throttling was met (and retried); snapshots equal the source disks."""
    proxy, site = throttled
    journal = world.work / "throttled.db"
    result = world.run(world.plan("throttled", WAVE), journal, site=site)
    assert result.code == 0, result
    assert result.json()["vms"] == {"completed": len(WAVE)}
    assert proxy.throttled >= 10, (proxy.throttled, proxy.forwarded)
    with Journal(journal, create=False) as jr:
        run_id = jr.open_run().run_id
        uploads = {s.entity_id: s.outputs for s in jr.steps(run_id, "vm")
                   if s.step == "upload_disks" and s.status == "finished"}
    for name in WAVE:
        vm = world.vms[name]
        disks = uploads[vm["instance_uuid"]]["disks"]
        for disk, want in zip(disks, world.source_blocks(name), strict=True):
            got = {i: hashlib.sha256(data).digest()
                   for i, data in iter_snapshot_blocks(world.clients.ebs, disk["snapshot_id"])}
            assert got == want, (name, disk["key"])
