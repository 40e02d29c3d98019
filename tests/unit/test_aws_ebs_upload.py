"""upload_snapshot / verify_snapshot bookkeeping with local bytes against moto's in-process EBS backend.

The real HTTP path (the lab's moto server) is covered in tests/integration/aws/; here the block logic:
zero skipping, resume sends only missing blocks, bounded read-ahead, read-back verification.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.aws.common import AwsClients, RetryPolicy, resource_tags
from adapters.aws.ebs import ResumePoint, find_pending_snapshot, upload_snapshot
from adapters.aws.ebs_blocks import BLOCK_SIZE
from adapters.aws.ebs_verify import iter_snapshot_blocks, verify_snapshot
from adapters.aws.images import register_image
from migrate.core.errors import OperationalError

TAGS = resource_tags("uuid-1", "run-1/vm-1", run_id="run-1", wave="1")


class Interrupted(Exception):
    """Raised by a test callback to simulate a crash mid-upload."""


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield AwsClients(ec2=boto3.client("ec2", region_name="us-east-1"),
                         ebs=boto3.client("ebs", region_name="us-east-1"))


def _disk(blocks: int, zero_share: float, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes(BLOCK_SIZE) if rng.random() < zero_share else rng.randbytes(BLOCK_SIZE) for _ in range(blocks)]


def _puts(clients: AwsClients) -> list[int]:
    """Block indexes of every PutSnapshotBlock the client sends (a botocore event hook; the server is real)."""
    seen: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(int(params["BlockIndex"]))
    clients.ebs.meta.events.register("provide-client-params.ebs.PutSnapshotBlock", record)
    return seen


def test_upload_skips_zero_blocks_and_reads_back(clients: AwsClients) -> None:
    """Only non-zero blocks are put; bytes sent = non-zero bytes; the read-back equals the source."""
    disk = _disk(24, 0.3)
    nonzero = {i for i, b in enumerate(disk) if any(b)}
    size = 24 * BLOCK_SIZE - 1000          # a last partial block, zero-padded
    data = b"".join(disk)[:size]
    puts = _puts(clients)
    result = upload_snapshot(clients, iter([data]), size, key="k", tags=TAGS, workers=4)
    assert set(puts) == set(result.block_sha256) == nonzero and len(puts) == len(nonzero)
    assert (result.blocks_sent, result.zero_blocks, result.bytes_sent) == (
        len(nonzero), 24 - len(nonzero), len(nonzero) * BLOCK_SIZE)
    assert result.status == "completed" and result.volume_size_gib == 1
    check = verify_snapshot(clients, result.snapshot_id, result.block_sha256)
    assert check.ok, check.problems()
    read = dict(iter_snapshot_blocks(clients.ebs, result.snapshot_id))
    assert sorted(read) == sorted(nonzero)
    rebuilt = b"".join(read.get(i, bytes(BLOCK_SIZE)) for i in range(24))
    assert rebuilt[:size] == data


def test_resume_sends_only_missing_blocks(clients: AwsClients) -> None:
    """Interrupted after K journaled blocks, the resumed upload puts exactly the others, once each."""
    disk = _disk(30, 0.3, seed=5)
    nonzero = {i for i, b in enumerate(disk) if any(b)}
    journal: list[int] = []

    def crash_after_five(index: int, checksum: str) -> None:
        journal.append(index)
        if len(journal) == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        upload_snapshot(clients, iter(disk), 30 * BLOCK_SIZE, key="k", tags=TAGS, workers=3,
                        on_block=crash_after_five)
    pending = find_pending_snapshot(clients.ec2, "k")
    assert pending is not None
    puts = _puts(clients)
    result = upload_snapshot(clients, iter(disk), 30 * BLOCK_SIZE, key="k", tags=TAGS, workers=3,
                             resume=ResumePoint(pending, frozenset(journal)))
    assert sorted(puts) == sorted(nonzero - set(journal))
    assert (result.snapshot_id, result.blocks_resumed, result.blocks_sent) == (
        pending, 5, len(nonzero) - 5)
    assert verify_snapshot(clients, pending, result.block_sha256).ok
    assert find_pending_snapshot(clients.ec2, "k") is None      # sealed now


def test_read_ahead_is_bounded(clients: AwsClients) -> None:
    """The reader never holds more than max_in_flight (+ the block in hand) unacknowledged blocks."""
    disk = _disk(40, 0.0, seed=7)
    acked: list[int] = []
    ahead: list[int] = []

    def chunks() -> Iterator[bytes]:
        for read, block in enumerate(disk):
            ahead.append(read - len(acked))
            yield block

    upload_snapshot(clients, chunks(), 40 * BLOCK_SIZE, key="k", tags=TAGS, workers=2, max_in_flight=3,
                    on_block=lambda index, checksum: acked.append(index))
    assert max(ahead) <= 4 and len(acked) == 40


def test_verification_catches_changed_and_extra_blocks(clients: AwsClients) -> None:
    """A block rewritten after upload is mismatched, a block where the source is zero is unexpected."""
    disk = _disk(8, 0.0, seed=9)
    disk[6] = bytes(BLOCK_SIZE)
    result = upload_snapshot(clients, iter(disk), 8 * BLOCK_SIZE, key="k", tags=TAGS)
    for index in (2, 6):
        clients.ebs.put_snapshot_block(SnapshotId=result.snapshot_id, BlockIndex=index, BlockData=b"x" * BLOCK_SIZE,
                                       DataLength=BLOCK_SIZE, Checksum="AA==", ChecksumAlgorithm="SHA256")
    check = verify_snapshot(clients, result.snapshot_id, result.block_sha256)
    assert (check.mismatched, check.unexpected, check.missing, check.ok) == ((2,), (6,), (), False)


def test_image_refused_from_interrupted_upload(clients: AwsClients) -> None:
    """An unsealed snapshot with missing blocks cannot become an AMI (moto itself calls it completed)."""
    disk = _disk(10, 0.0, seed=11)
    sent: list[int] = []

    def crash(index: int, checksum: str) -> None:
        sent.append(index)
        if len(sent) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        upload_snapshot(clients, iter(disk), 10 * BLOCK_SIZE, key="k", tags=TAGS, workers=1, on_block=crash)
    snapshot_id = find_pending_snapshot(clients.ec2, "k")
    assert snapshot_id is not None
    expected = {i: hashlib.sha256(b).digest() for i, b in enumerate(disk)}
    check = verify_snapshot(clients, snapshot_id, expected, retry=RetryPolicy(attempts=1))
    assert check.state == "completed" and check.sealed_checksum is None and len(check.missing) >= 6
    with pytest.raises(OperationalError, match="refusing to register"):
        register_image(clients, vm_name="vm-1", firmware="efi", guest_id="rhel8_64Guest", root=check, key="k",
                       tags=TAGS)
    assert clients.ec2.describe_images(Owners=["self"])["Images"] == []
