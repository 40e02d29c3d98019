"""Crash (kill -9) mid-upload then resume puts only the missing blocks; bad input and credential failures
stop before anything is launched."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_KEY, TAG_SOURCE, AwsClients, RetryPolicy, make_clients, resource_tags
from adapters.aws.ebs import ResumePoint, find_pending_snapshot, upload_snapshot
from adapters.aws.ebs_blocks import BLOCK_SIZE
from adapters.aws.ebs_verify import iter_snapshot_blocks, verify_snapshot
from adapters.aws.images import ImageRecord
from adapters.aws.instances import NicPlacement, launch_instance, place_nics
from adapters.aws.settings import AwsSettings, aws_settings
from migrate.core.errors import AdapterError, InputError
from migrate.lab.manager import LabInfo
from tests.integration.aws.crash_upload import disk_blocks

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[3]
_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
            "AWS_SHARED_CREDENTIALS_FILE")


def _count_puts(clients: AwsClients) -> list[int]:
    seen: list[int] = []
    clients.ebs.meta.events.register("provide-client-params.ebs.PutSnapshotBlock",
                                     lambda params, **_: seen.append(int(params["BlockIndex"])))
    return seen


def test_kill_9_mid_upload_then_resume_sends_only_missing_blocks(lab: LabInfo, site: Any, tmp_path: Path) -> None:
    """A child uploading with 4 workers SIGKILLs itself after 6 journaled blocks; the resume finds the
    snapshot by tag, puts exactly the blocks not journaled, and the snapshot then equals the disk."""
    key, blocks = f"crash-{uuid.uuid4()}", 32
    journal = tmp_path / "journal"
    child = subprocess.run([sys.executable, "-m", "tests.integration.aws.crash_upload", str(lab.site_config),
                            str(journal), key, str(blocks), "6"], cwd=ROOT, capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    done = frozenset(int(line.split()[0]) for line in journal.read_text().splitlines())
    assert len(done) == 6

    disk = disk_blocks(key, blocks)
    nonzero = {i for i, b in enumerate(disk) if any(b)}
    clients = make_clients(aws_settings(site.replatformer))
    snapshot_id = find_pending_snapshot(clients.ec2, key)
    assert snapshot_id is not None
    puts = _count_puts(clients)
    result = upload_snapshot(clients, iter(disk), blocks * BLOCK_SIZE, key=key, tags=resource_tags(f"crash-{key}", key),
                             resume=ResumePoint(snapshot_id, done), workers=4)
    assert sorted(puts) == sorted(nonzero - done)
    assert (result.blocks_resumed, result.blocks_sent, result.written_blocks) == (6, len(nonzero) - 6, len(nonzero))
    assert verify_snapshot(clients, snapshot_id, result.block_sha256).ok
    rebuilt = dict(iter_snapshot_blocks(clients.ebs, snapshot_id))
    assert hashlib.sha256(b"".join(rebuilt.get(i, bytes(BLOCK_SIZE)) for i in range(blocks))).digest() == \
        hashlib.sha256(b"".join(disk)).digest()


def _fake_image(aws_clients: AwsClients) -> ImageRecord:
    """A registered (empty) AMI so launch checks run against a real image id."""
    image_id = aws_clients.ec2.register_image(Name=f"bad-input-{uuid.uuid4()}", RootDeviceName="/dev/xvda")["ImageId"]
    return ImageRecord(image_id=image_id, name="bad-input", state="available", architecture="x86_64",
                       boot_mode="uefi", root_snapshot_id="snap-0")


def _nothing_launched(aws_clients: AwsClients, key: str) -> bool:
    return list_leftovers(aws_clients.ec2, {TAG_KEY: key}).empty()


def test_unknown_instance_type_is_input_error(aws_clients: AwsClients, aws_mapped: AwsSettings,
                                              db_vm: dict[str, Any]) -> None:
    """An instance type EC2 does not offer is bad input naming the plan field; nothing is launched."""
    key = f"bad-type-{uuid.uuid4()}"
    nics = place_nics(aws_mapped, db_vm["name"], [(db_vm["portgroup"], db_vm["ip"])])
    with pytest.raises(InputError) as info:
        launch_instance(aws_clients, vm=db_vm["name"], image=_fake_image(aws_clients), instance_type="m7z.huge",
                        nics=nics, key=key, tags=resource_tags("u-bad", key))
    assert [p.field for p in info.value.problems] == [f"{db_vm['name']}.instance_type"]
    assert _nothing_launched(aws_clients, key)


def test_missing_mapping_and_bad_network_are_input_errors(aws_clients: AwsClients, aws_mapped: AwsSettings,
                                                          manifest: dict[str, Any], vpc: dict[str, Any]) -> None:
    """An unmapped port group, a subnet that does not exist and a kept IP outside its subnet are all
    reported (file and field) before anything is launched."""
    infra = next(vm for vm in manifest["vms"] if vm["portgroup"] == "pg-infra")
    with pytest.raises(InputError) as info:
        place_nics(aws_mapped, infra["name"], [(infra["portgroup"], infra["ip"])])
    assert info.value.problems[0].field == "replatformer.networks.pg-infra"

    key = f"bad-net-{uuid.uuid4()}"
    nics = [NicPlacement("pg-app", "subnet-0123456789abcdef0", (vpc["security_group"],)),
            NicPlacement("pg-db", vpc["subnets"]["pg-db"], ("sg-0123456789abcdef0",), "192.168.1.5")]
    with pytest.raises(InputError) as bad:
        launch_instance(aws_clients, vm="vm-x", image=_fake_image(aws_clients), instance_type="m7i.large",
                        nics=nics, key=key, tags=resource_tags("u-bad", key))
    fields = sorted(p.field for p in bad.value.problems)
    assert fields == ["replatformer.networks.pg-app.subnet_id", "replatformer.networks.pg-db.keep_private_ip",
                      "replatformer.networks.pg-db.security_group_ids"]
    assert _nothing_launched(aws_clients, key)


def test_credential_failures_are_clear_adapter_errors(aws_mapped: AwsSettings, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile missing from the credentials file, or no credentials at all, is an AdapterError before
    any snapshot exists. (moto accepts any key pair, so a wrong key is not rejected by the lab.)"""
    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AdapterError) as missing_profile:
        make_clients(aws_mapped.model_copy(update={"profile": "nope"}))
    assert (missing_profile.value.code, missing_profile.value.retryable) == ("ProfileNotFound", False)

    empty = tmp_path / "credentials"
    empty.write_text("")
    clients = make_clients(aws_mapped.model_copy(update={"credentials_file": empty}))
    key = f"no-creds-{uuid.uuid4()}"
    with pytest.raises(AdapterError) as no_creds:
        upload_snapshot(clients, iter([b"x" * BLOCK_SIZE]), BLOCK_SIZE, key=key, tags=resource_tags("u-bad", key))
    assert (no_creds.value.op, no_creds.value.code, no_creds.value.retryable) == (
        "start_snapshot", "NoCredentialsError", False)
    assert "credentials" in str(no_creds.value)


def test_provider_errors_map_by_code(aws_clients: AwsClients) -> None:
    """What moto rejects maps by error code: unknown snapshot -> not retryable, code kept."""
    with pytest.raises(AdapterError) as info:
        verify_snapshot(aws_clients, "snap-0123456789abcdef0", {})
    assert (info.value.code, info.value.retryable, info.value.op) == (
        "InvalidSnapshot.NotFound", False, "describe_snapshots")
    assert list_leftovers(aws_clients.ec2, {TAG_SOURCE: "never-used"}).empty()


def test_block_put_retries_then_maps_5xx(site: Any) -> None:
    """moto answers a put to an unknown snapshot with HTTP 500: retried per block, then a retryable error."""
    clients = make_clients(aws_settings(site.replatformer))
    calls = []
    clients.ebs.meta.events.register("before-call.ebs.PutSnapshotBlock", lambda **_: calls.append(1))
    with pytest.raises(AdapterError) as info:
        upload_snapshot(clients, iter([b"x" * BLOCK_SIZE]), BLOCK_SIZE, key="k", tags={},
                        resume=ResumePoint("snap-0123456789abcdef0"), retry=RetryPolicy(attempts=3, base_delay=0.01))
    assert (info.value.op, info.value.retryable, len(calls)) == ("put_snapshot_block", True, 3)
