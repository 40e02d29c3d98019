"""The lab's guest-write workload: validation, pacing, seeding, extents, and VMs that stop taking writes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrate.cli.main import cli
from migrate.core.errors import InputError
from migrate.lab.churn import GuestWriteRefused, merge_extents, run_churn

BLOCK = 64 * 1024


class FakeLab:
    """Two running VMs and a stopped one; each write moves the fake clock by one write's share of the rate."""

    def __init__(self, step: float, refuse_after: dict[str, int] | None = None) -> None:
        self.now = 0.0
        self.step = step
        self.refuse_after = refuse_after or {}
        self.writes: list[tuple[str, int, int, bytes]] = []

    def clock(self) -> float:
        return self.now

    def vms(self) -> list[dict[str, Any]]:
        def disk(key: int, size: int) -> dict[str, Any]:
            return {"key": key, "file": f"[ds] d{key}.vmdk", "capacity": 10 * 2**30, "size": size}
        return [
            {"moref": "vm-1", "name": "app-01", "powerState": "poweredOn", "disks": [disk(2000, 1 << 20)]},
            {"moref": "vm-2", "name": "db-01", "powerState": "poweredOn",
             "disks": [disk(2000, 2 << 20), disk(2001, 1000)]},            # 2001: smaller than a block
            {"moref": "vm-3", "name": "old-01", "powerState": "poweredOff", "disks": [disk(2000, 1 << 20)]},
        ]

    def write(self, moref: str, key: int, offset: int, data: bytes) -> dict[str, Any]:
        if sum(1 for w in self.writes if w[0] == moref) >= self.refuse_after.get(moref, 1 << 30):
            raise GuestWriteRefused(409, f"{moref} is poweredOff: its guest writes nothing")
        self.writes.append((moref, key, offset, data))
        self.now += self.step
        return {"file": f"[ds] {moref}-{key}.vmdk"}


def test_merge_extents() -> None:
    """Overlapping and adjacent extents join; the result is sorted."""
    assert merge_extents([(10, 5), (0, 5), (5, 2), (20, 1), (12, 10), (40, 0)]) == [(0, 7), (10, 12)]


def test_paced_seeded_block_aligned() -> None:
    """1 MiB/s for 2 s writes 2 MiB in 64 KiB blocks, aligned and inside each disk's data; seeds repeat."""
    lab = FakeLab(step=BLOCK / 2**20)
    result = run_churn(lab, vms=None, mib_per_s=1, seconds=2, seed=4, clock=lab.clock)
    assert result.writes == 32 and result.bytes == 2 * 2**20
    assert {w[0] for w in lab.writes} == {"vm-1", "vm-2"}                 # powered-on VMs only
    sizes = {("vm-1", 2000): 1 << 20, ("vm-2", 2000): 2 << 20}
    for moref, key, offset, data in lab.writes:
        assert len(data) == BLOCK and offset % BLOCK == 0 and offset + BLOCK <= sizes[moref, key]
    for disk in result.disks:
        assert disk.extents == merge_extents(disk.written) and disk.writes == len(disk.written)
        assert disk.files == {f"[ds] {disk.moref}-{disk.key}.vmdk"}
    report = result.to_dict()
    assert report["vms"]["app-01"]["bytes"] + report["vms"]["db-01"]["bytes"] == report["bytes"]

    again = FakeLab(step=BLOCK / 2**20)
    run_churn(again, vms=None, mib_per_s=1, seconds=2, seed=4, clock=again.clock)
    assert again.writes == lab.writes
    other = FakeLab(step=BLOCK / 2**20)
    run_churn(other, vms=None, mib_per_s=1, seconds=2, seed=5, clock=other.clock)
    assert other.writes != lab.writes


def test_named_vms_and_their_problems() -> None:
    """Only the named VMs are written; unknown and powered-off names are all listed in one InputError."""
    lab = FakeLab(step=BLOCK / 2**20)
    run_churn(lab, vms=["db-01"], mib_per_s=1, seconds=1, clock=lab.clock)
    assert {w[0] for w in lab.writes} == {"vm-2"}
    with pytest.raises(InputError) as exc:
        run_churn(lab, vms=["nope", "old-01", "app-01", "nope"], mib_per_s=1, seconds=1, clock=lab.clock)
    messages = [p.message for p in exc.value.problems]
    assert len(messages) == 2 and "'nope'" in messages[0] and "poweredOff" in messages[1]
    with pytest.raises(InputError):
        run_churn(lab, vms=None, mib_per_s=0, seconds=1, clock=lab.clock)


def test_a_vm_that_stops_drops_out() -> None:
    """A VM powered off mid-run (409) takes no more writes; the others go on; the result says why."""
    lab = FakeLab(step=BLOCK / 2**20, refuse_after={"vm-1": 3})
    result = run_churn(lab, vms=None, mib_per_s=1, seconds=2, seed=2, clock=lab.clock)
    assert sum(1 for w in lab.writes if w[0] == "vm-1") == 3
    assert "poweredOff" in result.stopped["app-01"] and result.writes == len(lab.writes)


def test_stop_event_ends_early() -> None:
    """A set stop event ends the workload before its time is up."""
    stop = threading.Event()
    stop.set()
    lab = FakeLab(step=0.0)
    assert run_churn(lab, vms=None, mib_per_s=1, seconds=60, stop=stop, clock=lab.clock).writes == 0


def test_cli_without_a_lab_exits_1(tmp_path: Path) -> None:
    """`migrate lab churn` where no lab runs fails operationally (exit 1) with a hint."""
    result = CliRunner().invoke(cli, ["lab", "churn", "--dir", str(tmp_path), "--mib-per-s", "1"])
    assert result.exit_code == 1 and "migrate lab up" in result.stderr
