"""Block arithmetic for EBS snapshots: splitting any chunking into 512 KiB blocks, zeros, checksums."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

from adapters.aws.ebs_blocks import (
    BLOCK_SIZE,
    GIB,
    block_count,
    is_zero,
    iter_blocks,
    linear_checksum,
    volume_size_gib,
)
from migrate.core.errors import OperationalError


def _chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        out.append(data[at:at + size])
        at += size
    out.append(data[at:])
    return out


@pytest.mark.parametrize("chunking", [[BLOCK_SIZE] * 5, [1024 * 1024] * 2, [1, 7, 300_000, BLOCK_SIZE + 3],
                                      [3 * BLOCK_SIZE], []])
def test_blocks_are_the_same_whatever_the_chunking(chunking: list[int]) -> None:
    """Any chunk sizes yield the same 512 KiB blocks; the last one is zero-padded."""
    data = random.Random(1).randbytes(5 * BLOCK_SIZE + 1000)
    blocks = list(iter_blocks(_chunked(data, chunking), len(data)))
    assert [i for i, _ in blocks] == list(range(6)) == list(range(block_count(len(data))))
    assert all(len(b) == BLOCK_SIZE for _, b in blocks)
    assert b"".join(b for _, b in blocks) == data + bytes(6 * BLOCK_SIZE - len(data))


def test_stream_length_must_match() -> None:
    """A short or long stream is an error, never a silently different disk."""
    with pytest.raises(OperationalError, match="ended after"):
        list(iter_blocks([b"x" * 10], 11))
    with pytest.raises(OperationalError, match="longer"):
        list(iter_blocks([b"x" * 12], 11))


def test_zero_detection() -> None:
    """All-zero full and partial blocks are zero; one set byte anywhere is not."""
    assert is_zero(bytes(BLOCK_SIZE)) and is_zero(bytes(10))
    for position in (0, BLOCK_SIZE // 2, BLOCK_SIZE - 1):
        block = bytearray(BLOCK_SIZE)
        block[position] = 1
        assert not is_zero(bytes(block))


def test_linear_checksum_is_sha256_of_raw_digests_in_index_order() -> None:
    """The CompleteSnapshot aggregate hashes the raw block digests in ascending block index order."""
    digests = {7: hashlib.sha256(b"b").digest(), 2: hashlib.sha256(b"a").digest()}
    expected = base64.b64encode(hashlib.sha256(digests[2] + digests[7]).digest()).decode()
    assert linear_checksum(digests) == expected
    assert linear_checksum({}) == base64.b64encode(hashlib.sha256(b"").digest()).decode()


def test_volume_size_rounds_up_to_gib() -> None:
    """VolumeSize is whole GiB, at least 1; a requested size smaller than the data is refused."""
    assert (volume_size_gib(1), volume_size_gib(GIB), volume_size_gib(GIB + 1)) == (1, 1, 2)
    assert volume_size_gib(10, 40) == 40
    with pytest.raises(ValueError, match="cannot hold"):
        volume_size_gib(3 * GIB, 2)
