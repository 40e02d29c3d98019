"""Read an EBS snapshot back block by block and prove it holds what was sent (moto checks nothing itself)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from adapters.aws.common import TAG_UPLOAD, AwsClients, RetryPolicy, aws_error, endpoint_of
from adapters.aws.ebs_blocks import ZERO_BLOCK, is_zero, linear_checksum

__all__ = ["SnapshotVerification", "iter_snapshot_blocks", "list_snapshot_blocks", "seal_of", "snapshot_info",
           "verify_snapshot"]

ZERO_DIGEST = hashlib.sha256(ZERO_BLOCK).digest()
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class SnapshotVerification:
    """The outcome of reading a snapshot back; `ok` is what image registration requires."""

    snapshot_id: str
    state: str                        # EC2 snapshot state (pending, completed, error...)
    sealed_checksum: str | None       # from our `migrate:upload` tag, set after CompleteSnapshot succeeded
    expected_checksum: str            # LINEAR aggregate of the source's non-zero blocks
    volume_size_gib: int
    blocks_checked: int
    missing: tuple[int, ...] = ()     # non-zero in the source, absent from the snapshot
    unexpected: tuple[int, ...] = ()  # in the snapshot, zero or absent in the source
    mismatched: tuple[int, ...] = ()  # present in both, different sha256
    chain: bool = False               # a child snapshot: its seal covers only the blocks put into it

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """Every reason the snapshot must not become an image (empty when it is sound)."""
        found = []
        if self.state != "completed":
            found.append(f"state is {self.state}, not completed")
        if self.sealed_checksum is None:
            found.append("upload was never completed (no migrate:upload tag)")
        elif not self.chain and self.sealed_checksum != self.expected_checksum:
            found.append("sealed checksum differs from the source's")
        for label, blocks in (("missing", self.missing), ("unexpected", self.unexpected),
                              ("mismatched", self.mismatched)):
            if blocks:
                found.append(f"{len(blocks)} {label} block(s), first {list(blocks[:5])}")
        return found


def snapshot_info(ec2: Any, snapshot_id: str) -> dict[str, Any]:
    """DescribeSnapshots for one id, as a dict with plain tags ({key: value})."""
    try:
        snapshot: dict[str, Any] = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    except Exception as exc:
        raise aws_error(exc, "describe_snapshots", endpoint_of(ec2)) from None
    snapshot["TagMap"] = {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}
    return snapshot


def seal_of(info: Mapping[str, Any]) -> str | None:
    """The aggregate checksum a snapshot (snapshot_info) was sealed with: our `migrate:upload` tag; None if unsealed."""
    seal = str(info["TagMap"].get(TAG_UPLOAD, ""))
    return seal.removeprefix("complete:") if seal.startswith("complete:") else None


def list_snapshot_blocks(ebs: Any, snapshot_id: str, retry: RetryPolicy | None = None) -> dict[int, str]:
    """Every written block of the snapshot: {block index: block token}, following NextToken."""
    retry = retry or RetryPolicy()
    blocks: dict[int, str] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"SnapshotId": snapshot_id, "MaxResults": 10000}
        if token:
            kwargs["NextToken"] = token
        page = retry.call(lambda args=kwargs: ebs.list_snapshot_blocks(**args),  # type: ignore[misc]
                          "list_snapshot_blocks", endpoint_of(ebs))
        for item in page.get("Blocks", []):
            blocks[int(item["BlockIndex"])] = str(item["BlockToken"])
        token = page.get("NextToken")
        if not token:
            return blocks


def _read_block(ebs: Any, snapshot_id: str, index: int, token: str, retry: RetryPolicy) -> bytes:
    def get() -> bytes:
        response = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index, BlockToken=token)
        with response["BlockData"] as body:
            data: bytes = body.read()
        return data
    return retry.call(get, "get_snapshot_block", endpoint_of(ebs))


def _bounded_map(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], limit: int) -> Iterator[R]:
    """pool.map with at most `limit` calls in flight (results in completion order)."""
    pending: set[Future[R]] = set()
    for item in items:
        if len(pending) >= limit:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in finished)
        pending.add(pool.submit(fn, item))
    for future in pending:
        yield future.result()


def iter_snapshot_blocks(ebs: Any, snapshot_id: str) -> Iterator[tuple[int, bytes]]:
    """(index, data) of every written block in index order, one at a time (for read-back and restore)."""
    retry = RetryPolicy()
    blocks = list_snapshot_blocks(ebs, snapshot_id, retry)
    for index in sorted(blocks):
        yield index, _read_block(ebs, snapshot_id, index, blocks[index], retry)


def verify_snapshot(clients: AwsClients, snapshot_id: str, expected: Mapping[int, bytes], *,
                    workers: int = 8, retry: RetryPolicy | None = None, chain: bool = False) -> SnapshotVerification:
    """Compare the snapshot with `expected` ({index: raw sha256} of the source's non-zero blocks).

    Lists every block (paginated), reads each back in parallel (at most 2 x `workers` in flight) and
    hashes it; the block set must equal the expected set and every digest must match. With `chain` (the
    last of a line of child snapshots) a listed block the source holds as zeros may exist if it reads back
    as zeros (a later cycle wrote zeros over data), and the seal need not cover the whole disk.
    """
    retry = retry or RetryPolicy()
    info = snapshot_info(clients.ec2, snapshot_id)
    listed = list_snapshot_blocks(clients.ebs, snapshot_id, retry)
    wanted = sorted(listed) if chain else sorted(set(listed) & set(expected))

    def digest(index: int) -> tuple[int, bytes]:
        data = _read_block(clients.ebs, snapshot_id, index, listed[index], retry)
        return index, hashlib.sha256(data).digest() if index in expected or not is_zero(data) else ZERO_DIGEST

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ebs-verify") as pool:
        read = dict(_bounded_map(pool, digest, wanted, 2 * workers))
    extra = sorted(set(listed) - set(expected))
    return SnapshotVerification(
        snapshot_id=snapshot_id, state=str(info.get("State", "unknown")), sealed_checksum=seal_of(info),
        expected_checksum=linear_checksum(expected), volume_size_gib=int(info.get("VolumeSize", 0)),
        blocks_checked=len(read), missing=tuple(sorted(set(expected) - set(listed))),
        unexpected=tuple(i for i in extra if not chain or read[i] != ZERO_DIGEST),
        mismatched=tuple(sorted(i for i in expected if i in read and read[i] != expected[i])), chain=chain)
