"""Child process for the crash test: upload a generated disk, journal each accepted block, kill -9 itself
after K blocks (a real SIGKILL mid-upload, with other blocks still in flight).

Usage: python -m tests.integration.aws.crash_upload SITE_YAML JOURNAL KEY BLOCKS K
"""

from __future__ import annotations

import os
import random
import signal
import sys

from adapters.aws.common import make_clients, resource_tags
from adapters.aws.ebs import upload_snapshot
from adapters.aws.ebs_blocks import BLOCK_SIZE
from adapters.aws.settings import aws_settings
from migrate.config import load_site_config


def disk_blocks(key: str, blocks: int) -> list[bytes]:
    """The generated disk: deterministic per key, about 30% zero blocks."""
    rng = random.Random(key)
    return [bytes(BLOCK_SIZE) if rng.random() < 0.3 else rng.randbytes(BLOCK_SIZE) for _ in range(blocks)]


def main(site_yaml: str, journal: str, key: str, blocks: int, kill_after: int) -> None:
    site = load_site_config(site_yaml)
    assert aws_settings(site.replatformer) is not None
    clients = make_clients(aws_settings(site.replatformer))
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    written = 0

    def journal_block(index: int, checksum: str) -> None:
        nonlocal written
        os.write(fd, f"{index} {checksum}\n".encode())
        os.fsync(fd)
        written += 1
        if written == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    upload_snapshot(clients, iter(disk_blocks(key, blocks)), blocks * BLOCK_SIZE, key=key,
                    tags=resource_tags(f"crash-{key}", key), workers=4, on_block=journal_block)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
