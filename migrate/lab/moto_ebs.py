"""The lab's AWS server: moto, with the parts of the EBS direct APIs that warm re-platforming needs.

Run as `python -m migrate.lab.moto_ebs <moto.server options>` (what `migrate lab up` starts). moto 5.2
ignores `ParentSnapshotId` and `ClientToken` of StartSnapshot (its docstring says so), so every snapshot
starts empty and a retried start makes a second one. This module adds, following the EBS API reference
(https://docs.aws.amazon.com/ebs/latest/APIReference/API_StartSnapshot.html and ListChangedBlocks):
- `ParentSnapshotId`: the new snapshot starts as its completed parent (same blocks); blocks put into it
  replace the parent's. A parent that does not exist is `ResourceNotFoundException`; one not completed, or
  a `VolumeSize` smaller than the parent's, is `ValidationException`. The child stays whole when the
  parent is deleted later (EBS keeps what a later snapshot still references).
- `ClientToken`: StartSnapshot with a token already used returns the snapshot that token started.
- `ListChangedBlocks(FirstSnapshotId, SecondSnapshotId)`: blocks that differ in either direction (moto
  only walks the first snapshot's blocks, so blocks new in the second were missed).
Not modelled: snapshot timeouts, encryption, block-level throttling, `StartingBlockIndex`/paging.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.ebs.models import EBSBackend, EBSSnapshot
from moto.ebs.responses import EBSResponse

__all__ = ["install", "main"]

_lock = threading.Lock()
_tokens: dict[tuple[str, str, str], str] = {}     # (account, region, ClientToken) -> snapshot id


class _NotFound(JsonRESTError):
    code = 404

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class _Invalid(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


def _start_snapshot(response: EBSResponse) -> Any:
    """StartSnapshot with ParentSnapshotId and ClientToken (module docstring)."""
    backend: EBSBackend = response.ebs_backend
    token = response._get_param("ClientToken")
    parent_id = response._get_param("ParentSnapshotId")
    volume_size = int(response._get_param("VolumeSize"))
    with _lock:
        known = _tokens.get((backend.account_id, backend.region_name, token)) if token else None
        if known is not None and known in backend.snapshots:
            return _started(backend.snapshots[known])
        parent: EBSSnapshot | None = None
        if parent_id:
            parent = backend.snapshots.get(parent_id)
            if parent is None:
                raise _NotFound(f"The parent snapshot {parent_id} does not exist")
            if parent.status != "completed":
                raise _Invalid(f"The parent snapshot {parent_id} is {parent.status}, not completed")
            if volume_size < int(parent.volume_size):
                raise _Invalid(f"VolumeSize {volume_size} is smaller than the parent's {parent.volume_size} GiB")
        snapshot = backend.start_snapshot(volume_size=volume_size, tags=response._get_param("Tags"),
                                          description=response._get_param("Description"))
        if parent is not None:
            snapshot.blocks.update(parent.blocks)    # the same Block objects: the child holds the parent's data
        if token:
            _tokens[(backend.account_id, backend.region_name, token)] = snapshot.snapshot_id
    return _started(snapshot)


def _started(snapshot: EBSSnapshot) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"SnapshotId": snapshot.snapshot_id, "OwnerId": snapshot.account_id,
                         "Status": snapshot.status, "StartTime": snapshot.start_time,
                         "VolumeSize": snapshot.volume_size, "BlockSize": snapshot.block_size,
                         "Tags": snapshot.tags, "Description": snapshot.description})


def _list_changed_blocks(self: EBSBackend, first_snapshot_id: str,
                         second_snapshot_id: str) -> tuple[dict[int, tuple[str | None, str | None]], EBSSnapshot]:
    """Blocks that differ between the two snapshots, present in either (module docstring)."""
    first, second = self.snapshots[first_snapshot_id], self.snapshots[second_snapshot_id]
    changed: dict[int, tuple[str | None, str | None]] = {}
    for index in sorted(set(first.blocks) | set(second.blocks)):
        a, b = first.blocks.get(index), second.blocks.get(index)
        if a is None or b is None or (a is not b and a.block_data != b.block_data):
            changed[index] = (a.block_token if a else None, b.block_token if b else None)
    return changed, second


def install() -> None:
    """Patch moto's EBS backend and handler in this process (idempotent)."""
    EBSResponse.start_snapshot = _start_snapshot   # type: ignore[method-assign,assignment]
    EBSBackend.list_changed_blocks = _list_changed_blocks   # type: ignore[assignment,method-assign]


def main(argv: list[str] | None = None) -> None:
    """moto.server's command line, with the EBS additions installed."""
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
