"""Stream a raw disk image into an EBS snapshot through the EBS direct APIs: parallel, bounded, resumable.

One reader (the caller's thread) cuts the stream into 512 KiB blocks and skips all-zero ones; a thread
pool hashes and puts the rest with per-block retries; at most `max_in_flight` blocks are buffered, so
memory stays constant whatever the disk size. `on_block` runs on the caller's thread after each block
is accepted, so the engine can journal it; a resumed upload passes that journal back as `done` and only
the missing blocks are put (the stream is still read, to hash every block for the aggregate checksum).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from adapters.aws.common import (
    TAG_KEY,
    TAG_UPLOAD,
    AwsClients,
    RetryPolicy,
    aws_error,
    client_token,
    endpoint_of,
    tag_list,
)
from adapters.aws.ebs_blocks import (
    b64_sha256,
    block_count,
    is_zero,
    iter_blocks,
    linear_checksum,
    volume_size_gib,
)
from migrate.core.errors import AdapterError

__all__ = ["BlockCallback", "ResumePoint", "UploadResult", "find_pending_snapshot", "put_blocks", "upload_blocks",
           "upload_snapshot"]

BlockCallback = Callable[[int, str], None]   # (block index, Base64 sha256) once the block is accepted
DEFAULT_TIMEOUT_MINUTES = 1440               # an unfinished snapshot survives a day of crash/resume


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted upload stopped: its snapshot and the blocks already accepted."""

    snapshot_id: str
    done: frozenset[int] = frozenset()


@dataclass
class UploadResult:
    """What `upload_snapshot` did; `block_sha256` (raw digests of every non-zero block) drives verification."""

    snapshot_id: str
    volume_size_gib: int
    total_blocks: int
    blocks_sent: int = 0           # put in this call
    blocks_resumed: int = 0        # already done by an earlier attempt, not put again
    zero_blocks: int = 0           # skipped: all zero
    bytes_sent: int = 0
    status: str = "pending"
    checksum: str = ""             # LINEAR aggregate, Base64 (what CompleteSnapshot was given)
    block_sha256: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def written_blocks(self) -> int:
        return len(self.block_sha256)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the journal (no per-block map: use `checksum` to compare)."""
        return {"snapshot_id": self.snapshot_id, "volume_size_gib": self.volume_size_gib,
                "total_blocks": self.total_blocks, "blocks_sent": self.blocks_sent,
                "blocks_resumed": self.blocks_resumed, "zero_blocks": self.zero_blocks,
                "bytes_sent": self.bytes_sent, "status": self.status, "checksum": self.checksum,
                "written_blocks": self.written_blocks}


def start_snapshot(ebs: Any, *, size_gib: int, key: str, tags: Mapping[str, str], description: str,
                   timeout_minutes: int, retry: RetryPolicy, parent_id: str | None = None) -> str:
    """StartSnapshot with a ClientToken derived from `key` (a retried start returns the same snapshot); with
    `parent_id` the snapshot starts as that completed snapshot (only the blocks put into it differ)."""
    all_tags = {**tags, TAG_KEY: key}
    extra = {"ParentSnapshotId": parent_id} if parent_id else {}
    response = retry.call(lambda: ebs.start_snapshot(
        VolumeSize=size_gib, ClientToken=client_token(key, "start_snapshot"), Tags=tag_list(all_tags),
        Description=description[:255], Timeout=timeout_minutes, **extra), "start_snapshot", endpoint_of(ebs))
    snapshot_id: str = response["SnapshotId"]
    return snapshot_id


def find_pending_snapshot(ec2: Any, key: str) -> str | None:
    """The snapshot an earlier attempt with `key` started and did not seal, if any (found by tag)."""
    try:
        snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": f"tag:{TAG_KEY}", "Values": [key]}])["Snapshots"]
    except Exception as exc:
        raise aws_error(exc, "describe_snapshots", endpoint_of(ec2)) from None
    open_ = [s for s in snapshots if not any(t["Key"] == TAG_UPLOAD for t in s.get("Tags", []))
             and s.get("State") != "error"]
    open_.sort(key=lambda s: s["StartTime"])
    return str(open_[-1]["SnapshotId"]) if open_ else None


def _put_block(ebs: Any, snapshot_id: str, index: int, block: bytes, retry: RetryPolicy) -> bytes:
    """Hash and put one block (hashlib releases the GIL, so workers hash in parallel); return its digest."""
    digest = hashlib.sha256(block).digest()
    checksum = b64_sha256(digest)
    retry.call(lambda: ebs.put_snapshot_block(
        SnapshotId=snapshot_id, BlockIndex=index, BlockData=block, DataLength=len(block),
        Checksum=checksum, ChecksumAlgorithm="SHA256"), "put_snapshot_block", endpoint_of(ebs),
        extra_retryable=("ResourceNotFoundException",))    # a just-started snapshot may not be visible yet
    return digest


def upload_snapshot(clients: AwsClients, chunks: Iterable[bytes], size_bytes: int, *, key: str,
                    tags: Mapping[str, str], volume_gib: int | None = None,
                    description: str = "", resume: ResumePoint | None = None,
                    on_block: BlockCallback | None = None, workers: int = 8, max_in_flight: int | None = None,
                    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES,
                    retry: RetryPolicy | None = None) -> UploadResult:
    """Stream `size_bytes` of `chunks` into a new (or resumed) EBS snapshot and seal it.

    `key` is the caller's idempotency key (ClientToken and the `migrate:idempotency-key` tag); `tags`
    should come from `resource_tags` (source instanceUuid, run id, wave). The sealed snapshot is then
    tagged `migrate:upload=complete:<checksum>`, which `verify_snapshot` requires.
    Raises AdapterError (mapped by code) when a block fails after its retries, OperationalError when
    the stream's length differs from `size_bytes`; whatever `on_block` raises stops the upload.
    """
    retry = retry or RetryPolicy()
    gib = volume_size_gib(size_bytes, volume_gib)
    snapshot_id = resume.snapshot_id if resume else start_snapshot(
        clients.ebs, size_gib=gib, key=key, tags=tags, description=description, timeout_minutes=timeout_minutes,
        retry=retry)
    result = UploadResult(snapshot_id=snapshot_id, volume_size_gib=gib, total_blocks=block_count(size_bytes))
    put_blocks(clients, result, iter_blocks(chunks, size_bytes), done=resume.done if resume else frozenset(),
               skip_zero=True, on_block=on_block, workers=workers, max_in_flight=max_in_flight, retry=retry)
    _complete(clients.ebs, clients.ec2, result, retry)
    return result


def upload_blocks(clients: AwsClients, blocks: Iterable[tuple[int, bytes]], *, snapshot_id: str, volume_gib: int,
                  total_blocks: int, done: frozenset[int] = frozenset(), skip_zero: bool = False,
                  on_block: BlockCallback | None = None, workers: int = 8,
                  retry: RetryPolicy | None = None) -> UploadResult:
    """Put these (index, 512 KiB block) into a started snapshot, except those in `done` (hashed only), then seal
    it. A child of a parent snapshot needs its zero blocks put too (they replace data); a first one can skip them."""
    retry = retry or RetryPolicy()
    result = UploadResult(snapshot_id=snapshot_id, volume_size_gib=volume_gib, total_blocks=total_blocks)
    put_blocks(clients, result, blocks, done=done, skip_zero=skip_zero, on_block=on_block, workers=workers, retry=retry)
    _complete(clients.ebs, clients.ec2, result, retry)
    return result


def put_blocks(clients: AwsClients, result: UploadResult, blocks: Iterable[tuple[int, bytes]], *,
               done: frozenset[int], skip_zero: bool, on_block: BlockCallback | None, workers: int,
               retry: RetryPolicy, max_in_flight: int | None = None) -> None:
    """Put the blocks into `result`'s snapshot with a bounded pool; counts and digests go into `result`."""
    ebs, snapshot_id = clients.ebs, result.snapshot_id
    limit = max(1, max_in_flight or 2 * workers)
    pending: dict[Future[bytes], tuple[int, int]] = {}

    def settle(block_until: int) -> None:
        while len(pending) > block_until:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                index, length = pending.pop(future)
                digest = future.result()            # raises the block's AdapterError
                result.block_sha256[index] = digest
                result.blocks_sent += 1
                result.bytes_sent += length
                if on_block is not None:
                    on_block(index, b64_sha256(digest))

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ebs-put")
    try:
        for index, block in blocks:
            if skip_zero and is_zero(block):
                result.zero_blocks += 1
                continue
            if index in done:
                result.block_sha256[index] = hashlib.sha256(block).digest()
                result.blocks_resumed += 1
                continue
            settle(limit - 1)
            pending[pool.submit(_put_block, ebs, snapshot_id, index, block, retry)] = (index, len(block))
        settle(0)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _complete(ebs: Any, ec2: Any, result: UploadResult, retry: RetryPolicy) -> None:
    result.checksum = linear_checksum(result.block_sha256)
    response = retry.call(lambda: ebs.complete_snapshot(
        SnapshotId=result.snapshot_id, ChangedBlocksCount=result.written_blocks, Checksum=result.checksum,
        ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR"), "complete_snapshot", endpoint_of(ebs))
    result.status = str(response.get("Status", "pending"))
    if result.status == "error":
        raise AdapterError("aws", "complete_snapshot", f"snapshot {result.snapshot_id} ended in error",
                           endpoint=endpoint_of(ebs), code="SnapshotError")
    retry.call(lambda: ec2.create_tags(Resources=[result.snapshot_id], Tags=[
        {"Key": TAG_UPLOAD, "Value": f"complete:{result.checksum}"}]), "create_tags", endpoint_of(ec2))

