"""The lab's moto follows the EBS direct APIs' StartSnapshot contract for what warm re-platforming needs:
`ParentSnapshotId` (a child starts as its completed parent), `ClientToken` (a retried start returns the same
snapshot) and the errors of a bad parent; ListChangedBlocks sees blocks new in the second snapshot."""

from __future__ import annotations

import hashlib
import uuid

import botocore.exceptions
import pytest

from adapters.aws.common import AwsClients, make_clients
from adapters.aws.ebs_blocks import BLOCK_SIZE
from adapters.aws.ebs_verify import iter_snapshot_blocks
from adapters.aws.settings import aws_settings
from migrate.core.config import SiteConfig


@pytest.fixture(scope="module")
def clients(site: SiteConfig) -> AwsClients:
    settings = aws_settings(site.replatformer)
    assert settings is not None
    return make_clients(settings)


def _start(clients: AwsClients, parent: str | None = None, token: str | None = None, size: int = 1) -> str:
    extra = {"ParentSnapshotId": parent} if parent else {}
    snapshot_id: str = clients.ebs.start_snapshot(VolumeSize=size, ClientToken=token or uuid.uuid4().hex,
                                                  **extra)["SnapshotId"]
    return snapshot_id


def _put(clients: AwsClients, snapshot_id: str, index: int, fill: int) -> None:
    data = bytes([fill]) * BLOCK_SIZE
    import base64
    clients.ebs.put_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index, BlockData=data, DataLength=BLOCK_SIZE,
                                   Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                                   ChecksumAlgorithm="SHA256")


def _blocks(clients: AwsClients, snapshot_id: str) -> dict[int, int]:
    """{index: the byte each block is filled with}."""
    return {i: data[0] for i, data in iter_snapshot_blocks(clients.ebs, snapshot_id)}


def test_a_child_starts_as_its_parent_and_keeps_its_data_when_the_parent_goes(clients: AwsClients) -> None:
    parent = _start(clients)
    _put(clients, parent, 0, 1)
    _put(clients, parent, 3, 2)
    clients.ebs.complete_snapshot(SnapshotId=parent, ChangedBlocksCount=2)
    child = _start(clients, parent)
    _put(clients, child, 3, 9)
    _put(clients, child, 5, 4)
    clients.ebs.complete_snapshot(SnapshotId=child, ChangedBlocksCount=2)
    assert _blocks(clients, parent) == {0: 1, 3: 2}
    assert _blocks(clients, child) == {0: 1, 3: 9, 5: 4}
    changed = clients.ebs.list_changed_blocks(FirstSnapshotId=parent, SecondSnapshotId=child)["ChangedBlocks"]
    assert sorted(b["BlockIndex"] for b in changed) == [3, 5]
    clients.ec2.delete_snapshot(SnapshotId=parent)
    assert _blocks(clients, child) == {0: 1, 3: 9, 5: 4}


def test_a_retried_start_with_the_same_token_returns_the_same_snapshot(clients: AwsClients) -> None:
    token = uuid.uuid4().hex
    assert _start(clients, token=token) == _start(clients, token=token)


def test_a_bad_parent_is_refused(clients: AwsClients) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        _start(clients, "snap-0000000000000000f")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    pending = _start(clients)
    with pytest.raises(botocore.exceptions.ClientError) as unfinished:
        _start(clients, pending)
    assert unfinished.value.response["Error"]["Code"] == "ValidationException"
    _put(clients, pending, 0, 1)
    clients.ebs.complete_snapshot(SnapshotId=pending, ChangedBlocksCount=1)
    bigger = _start(clients, size=2)
    clients.ebs.complete_snapshot(SnapshotId=bigger, ChangedBlocksCount=0)
    with pytest.raises(botocore.exceptions.ClientError) as smaller:
        _start(clients, bigger, size=1)
    assert smaller.value.response["Error"]["Code"] == "ValidationException"
