"""Pure block arithmetic for EBS snapshots: 512 KiB blocks from a byte stream, zero test, checksums."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator, Mapping

from migrate.core.errors import OperationalError

__all__ = [
    "BLOCK_SIZE",
    "GIB",
    "ZERO_BLOCK",
    "b64_sha256",
    "block_count",
    "is_zero",
    "iter_blocks",
    "linear_checksum",
    "volume_size_gib",
]

BLOCK_SIZE = 512 * 1024          # the EBS direct APIs' fixed block size
GIB = 1024 ** 3
ZERO_BLOCK = bytes(BLOCK_SIZE)


def block_count(size_bytes: int) -> int:
    """How many blocks hold `size_bytes` (the last one zero-padded)."""
    return -(-size_bytes // BLOCK_SIZE)


def volume_size_gib(size_bytes: int, requested: int | None = None) -> int:
    """Smallest whole GiB (at least 1) holding the data, or `requested` when it is big enough."""
    needed = max(1, -(-size_bytes // GIB))
    if requested is None:
        return needed
    if requested < needed:
        raise ValueError(f"volume of {requested} GiB cannot hold {size_bytes} bytes (needs {needed} GiB)")
    return requested


def is_zero(block: bytes) -> bool:
    """True for an all-zero block (a memcmp against a shared zero block)."""
    return block == ZERO_BLOCK if len(block) == BLOCK_SIZE else not block.strip(b"\0")


def iter_blocks(chunks: Iterable[bytes], size_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(index, 512 KiB block) from chunks of any size; the last block zero-padded.

    Raises OperationalError when the stream is shorter or longer than `size_bytes` (a truncated or
    changed source must not become a silently different disk).
    """
    buffer = bytearray()
    index = 0
    seen = 0
    for chunk in chunks:
        if not chunk:
            continue
        seen += len(chunk)
        if seen > size_bytes:
            raise OperationalError(f"source stream is longer than the expected {size_bytes} bytes")
        if not buffer and len(chunk) % BLOCK_SIZE == 0:     # aligned chunk: no copy into the buffer
            for start in range(0, len(chunk), BLOCK_SIZE):
                yield index, chunk[start:start + BLOCK_SIZE]
                index += 1
            continue
        buffer += chunk
        while len(buffer) >= BLOCK_SIZE:
            yield index, bytes(buffer[:BLOCK_SIZE])
            del buffer[:BLOCK_SIZE]
            index += 1
    if seen != size_bytes:
        raise OperationalError(f"source stream ended after {seen} of {size_bytes} bytes")
    if buffer:
        yield index, bytes(buffer) + bytes(BLOCK_SIZE - len(buffer))


def b64_sha256(digest: bytes) -> str:
    """The Base64 form the EBS APIs want for a raw sha256 digest."""
    return base64.b64encode(digest).decode("ascii")


def linear_checksum(digests: Mapping[int, bytes]) -> str:
    """CompleteSnapshot's LINEAR aggregate: sha256 over the raw block digests in block-index order, Base64.

    The AWS docs say "concatenate the checksums in ascending block index order and hash"; awslabs/coldsnap
    (AWS's own uploader) concatenates the raw 32-byte digests, which is what this does.
    """
    total = hashlib.sha256()
    for index in sorted(digests):
        total.update(digests[index])
    return b64_sha256(total.digest())
