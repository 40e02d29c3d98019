"""kill -9 of `migrate worker` processes in the middle of disk uploads, and of the `migrate run` client, on the
Temporal engine: the run finishes on the surviving workers, every VM exactly once, and no block is put again
that the upload's last heartbeat had recorded (puts counted in moto's own request log)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from temporalio.service import RPCError

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_SOURCE
from adapters.aws.ebs_verify import iter_snapshot_blocks
from adapters.aws.settings import aws_settings
from migrate.core.config import EngineConfig
from migrate.lab.temporal_server import TemporalServer
from migrate.temporal.client import connect
from migrate.temporal.heartbeat_ledger import from_ranges
from migrate.temporal.workflows import vm_workflow_id
from tests.integration.migration.conftest import start_lab
from tests.integration.relay import Relay
from tests.integration.replatform.conftest import World, build_world
from tests.integration.temporal.conftest import Workers, engine

pytestmark = pytest.mark.lab
RATE = 512 * 1024                # bytes/s towards moto: about one 512 KiB block a second
KILLS = int(os.environ.get("MIGRATE_TEMPORAL_KILLS", "2"))   # workers killed mid-upload (a campaign: more)
PUT = re.compile(r"PUT /snapshots/(snap-[0-9a-f]+)/blocks/(\d+) HTTP")


@pytest.fixture(scope="module")
def cworld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for lab in start_lab(tmp_path_factory, "temporal-crash", 10, 17):
        yield build_world(lab, tmp_path_factory.mktemp("temporal-crash-work"))


def _heartbeats(address: str, run_id: str, vm_ids: list[str]) -> list[tuple[int, dict[str, set[int]]]]:
    """(worker pid, blocks by snapshot) of each running phase whose last heartbeat recorded blocks."""

    async def read() -> list[tuple[int, dict[str, set[int]]]]:
        client = await connect(EngineConfig(address=address))   # the engine's own converter (zlib)
        found = []
        for vm_id in vm_ids:
            try:
                described = await client.get_workflow_handle(vm_workflow_id(run_id, vm_id)).describe()
            except RPCError:   # not started yet
                continue
            for pending in described.raw_description.pending_activities:
                if not pending.heartbeat_details.payloads or not pending.last_worker_identity:
                    continue
                details = (await client.data_converter.decode(pending.heartbeat_details.payloads))[-1]
                blocks = {str(target): from_ranges(runs) for _, target, runs in details.get("blocks", [])}
                if any(blocks.values()):
                    pid = int(pending.last_worker_identity.rsplit("@", 1)[0].rsplit(":", 1)[1])
                    found.append((pid, blocks))
        return found

    return asyncio.run(read())


def _client(world: World, plan: Path, site: Path, run_id: str, out: Path) -> subprocess.Popen[bytes]:
    args = ["run", plan, "--config", site, "--inventory", world.inventory, "--no-capacity", "--engine", "temporal",
            "--run-id", run_id, "--json"]
    return subprocess.Popen([sys.executable, "-m", "migrate", *map(str, args)], stdout=out.open("wb"),
                            stderr=out.with_suffix(".err").open("wb"), cwd=world.work)


def _puts(log: Path, offset: int) -> Counter[tuple[str, int]]:
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return Counter((snapshot, int(index)) for snapshot, index in PUT.findall(text))


def test_kill9_workers_mid_upload_and_the_client_then_the_run_finishes(
        cworld: World, temporal: TemporalServer, workers: Workers) -> None:
    """Workers killed mid-upload hand their phase to a survivor, which puts only blocks its last heartbeat did
    not record; the killed client re-attaches; every VM has one instance and snapshots equal the source."""
    world = cworld
    names = sorted(world.vms, key=lambda n: -sum(d["seeded_bytes"] for d in world.vms[n]["disks"]))[:max(2, KILLS)]
    uuids = [world.vms[n]["instance_uuid"] for n in names]
    settings = aws_settings(world.site.replatformer)
    assert settings is not None and settings.endpoint_url
    moto = urlsplit(settings.endpoint_url)
    relay = Relay((moto.hostname or "127.0.0.1", moto.port or 443), upstream_rate=RATE)

    def slow_site(doc: dict[str, Any]) -> None:
        doc["engine"] = engine(temporal, "tcrash", heartbeat_timeout_s=3, queue_timeout_s=300)
        doc["replatformer"]["endpoint_url"] = f"https://127.0.0.1:{relay.port}"

    slow = world.site_variant("temporal-slow", slow_site)
    plan = world.plan("tcrash", names)
    moto_log = world.lab.directory / "logs" / "moto.log"
    offset = moto_log.stat().st_size
    run_id = f"tcrash-{os.getpid()}"
    seen: dict[str, set[int]] = {}
    try:
        live = [workers.start(slow, log=world.work / f"worker-{i}.log") for i in range(2)]
        client = _client(world, plan, slow, run_id, world.work / "client-1.json")
        for kill in range(KILLS):
            deadline, victim = time.monotonic() + 120, None
            while victim is None and time.monotonic() < deadline:
                pids = {proc.pid: proc for proc in live}
                for pid, blocks in _heartbeats(temporal.address, run_id, uuids):
                    if pid in pids:
                        victim = pids[pid]
                        for snapshot, indexes in blocks.items():
                            seen.setdefault(snapshot, set()).update(indexes)
                        break
                time.sleep(0.2)
            assert victim is not None, f"no upload heartbeat to kill in (kill {kill})"
            workers.kill(victim)
            live = [proc for proc in live if proc is not victim]
            live.append(workers.start(slow, log=world.work / f"worker-r{kill}.log"))
            if kill == 0:    # and the client: the run goes on without it; the same command re-attaches
                client.send_signal(signal.SIGKILL)
                client.wait(10)
                client = _client(world, plan, slow, run_id, world.work / "client-2.json")
        assert client.wait(300) == 0, (world.work / "client-2.err").read_text()[-4000:]
    finally:
        relay.close()
    result = json.loads((world.work / "client-2.json").read_text())
    assert result["status"] == "completed" and result["vms"] == {"completed": len(names)}, result
    for uuid in uuids:
        assert len(list_leftovers(world.clients.ec2, {TAG_SOURCE: uuid}).instances) == 1, uuid
    puts = _puts(moto_log, offset)
    outputs = {vm["id"]: vm["outputs"] for vm in result["detail"]["1"]["vms"]}
    resumed = 0
    for name, uuid in zip(names, uuids, strict=True):
        for disk, want in zip(outputs[uuid]["upload_disks"]["disks"], world.source_blocks(name), strict=True):
            snapshot = disk["snapshot_id"]
            heartbeated = seen.get(snapshot, set())
            twice = {index for (snap, index), count in puts.items() if snap == snapshot and count > 1}
            assert not twice & heartbeated, (snapshot, sorted(twice & heartbeated))
            assert disk["blocks_resumed"] >= len(heartbeated), disk
            resumed += disk["blocks_resumed"]
            got = {i: hashlib.sha256(b).digest() for i, b in iter_snapshot_blocks(world.clients.ebs, snapshot)}
            assert got == want, snapshot
    assert seen and resumed > 0
    again = sum(count - 1 for count in puts.values())
    print(f"\n{KILLS} worker kills mid-upload and a client kill: {resumed} blocks resumed from heartbeats, "
          f"{again} put again (after the last heartbeat)")

