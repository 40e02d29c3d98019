"""kill -9 of `migrate run` in the middle of a disk upload, then `migrate resume`: only the blocks the
journal's side file does not record are put again (counted in moto's own request log)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_SOURCE
from adapters.aws.ebs_verify import iter_snapshot_blocks
from adapters.aws.settings import aws_settings
from migrate.engine.journal import Journal
from tests.integration.relay import Relay
from tests.integration.replatform.conftest import World

pytestmark = pytest.mark.lab
VM = "shop-db-02"                # two disks of 5 and 6 blocks (4 and 5 of them non-zero)
RATE = 512 * 1024                # bytes/s towards moto: about one 512 KiB block a second
PUT = re.compile(r"PUT /snapshots/(snap-[0-9a-f]+)/blocks/(\d+) HTTP")


def _recorded(journal: Path) -> dict[str, set[int]]:
    """Blocks the journal holds, by snapshot (read while the run may still be writing: WAL)."""
    found: dict[str, set[int]] = defaultdict(set)
    if not journal.exists():
        return found
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        try:
            rows = conn.execute("SELECT target, blocks FROM blocks").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return found
    for target, blocks in rows:
        found[target].update(json.loads(blocks))
    return found


def _puts(log: Path, offset: int) -> dict[str, list[int]]:
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    found: dict[str, list[int]] = defaultdict(list)
    for snapshot, index in PUT.findall(text):
        found[snapshot].append(int(index))
    return found


def _quiet(log: Path, for_seconds: float = 0.5, timeout: float = 10) -> int:
    """Wait until moto's log stops growing (requests of the killed process drained); its size."""
    deadline = time.monotonic() + timeout
    size = log.stat().st_size
    while time.monotonic() < deadline:
        time.sleep(for_seconds)
        now = log.stat().st_size
        if now == size:
            return size
        size = now
    return size


def _kill_mid_upload(world: World, plan: Path, journal: Path, site: Path, log: Path) -> None:
    """Run `migrate run`, SIGKILL it once its side file records a block."""
    args = ["run", plan, "--config", site, "--inventory", world.inventory, "--journal", journal, "--no-capacity"]
    with log.open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "migrate", *map(str, args)], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "MIGRATE_LOG_LEVEL": "info"})
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if any(_recorded(journal).values()):
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"run ended before the kill: {log.read_text()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL


def test_kill_9_mid_upload_then_resume_puts_only_missing_blocks(world: World) -> None:
    """The resumed upload finds its snapshot by tag, puts exactly the non-zero blocks not recorded before
    the kill (no block twice), and the snapshots then equal the source disks block for block."""
    assert aws_settings(world.site.replatformer) is not None and aws_settings(world.site.replatformer).endpoint_url
    uuid = world.vms[VM]["instance_uuid"]
    plan, journal = world.plan("crash", [VM]), world.work / "crash.db"
    moto = urlsplit(aws_settings(world.site.replatformer).endpoint_url)
    proxy = Relay((moto.hostname or "127.0.0.1", moto.port or 443), upstream_rate=RATE)
    slow = world.site_variant("slow", lambda doc: doc["replatformer"].update(endpoint_url=f"https://127.0.0.1:{proxy.port}"))
    moto_log = world.lab.directory / "logs" / "moto.log"
    try:
        _kill_mid_upload(world, plan, journal, slow, world.work / "crash.log")
    finally:
        proxy.close()
    offset = _quiet(moto_log)
    recorded = _recorded(journal)

    resumed = world.cli("resume", "--journal", journal, "--no-capacity", "--json")
    assert resumed.code == 0, resumed
    puts = _puts(moto_log, offset)
    with Journal(journal, create=False) as jr:
        steps = {s.step: s.outputs for s in jr.steps(jr.open_run().run_id, "vm", uuid) if s.status == "finished"}
    disks: list[dict[str, Any]] = steps["upload_disks"]["disks"]
    source = world.source_blocks(VM)
    total = sum(len(blocks) for blocks in source)
    sent = 0
    for disk, want in zip(disks, source, strict=True):
        snapshot = disk["snapshot_id"]
        done = recorded.get(snapshot, set())
        # a disk sealed before the kill puts nothing (its last batch may be unrecorded)
        missing: set[int] = set() if disk["resumed"] == "sealed" else set(want) - done
        assert sorted(puts.get(snapshot, [])) == sorted(missing), disk       # each missing block once
        assert (disk["blocks_sent"], disk["blocks_resumed"]) == (len(missing), len(want) - len(missing))
        got = {i: hashlib.sha256(data).digest() for i, data in iter_snapshot_blocks(world.clients.ebs, snapshot)}
        assert got == want
        sent += disk["blocks_sent"]
    assert disks[0]["resumed"] == "blocks" and recorded
    assert 0 < sent < total
    print(f"\nresume after kill -9: {sent} of {total} non-zero blocks put again "
          f"({total - sent} recorded before the kill)")
    assert world.cli("rollback", "--journal", journal, "--json").code == 0
    assert list_leftovers(world.clients.ec2, {TAG_SOURCE: uuid}).empty()
