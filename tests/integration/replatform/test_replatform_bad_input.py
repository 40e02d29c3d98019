"""Bad input stops `migrate run` before any change: a port group without a subnet mapping and an instance
type EC2 does not have are listed (exit 2); missing AWS credentials are a clear error (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.aws.cleanup import list_leftovers
from adapters.aws.common import TAG_SOURCE
from planners.plan_model import Wave
from tests.integration.replatform.conftest import World

pytestmark = pytest.mark.lab
WEB, APP = "shop-web-01", "crm-app-01"          # pg-web, pg-app; not used by the other replatform tests
# The per-VM override needs `instance_types` on planners.plan_model.Wave (see the replatform report).
HAS_OVERRIDE = "instance_types" in Wave.model_fields


def _untouched(world: World, journal: Path, before: dict[str, dict[str, object]]) -> None:
    """No journal, nothing on AWS for the VMs, sources as they were."""
    assert not journal.exists()
    now = world.source_vms()
    for name in (WEB, APP):
        uuid = world.vms[name]["instance_uuid"]
        assert list_leftovers(world.clients.ec2, {TAG_SOURCE: uuid}).empty()
        assert (now[uuid]["name"], now[uuid]["runtime.powerState"]) == (
            before[uuid]["name"], before[uuid]["runtime.powerState"]) == (name, "poweredOn")


def test_missing_subnet_mapping_and_unknown_type_exit_2(world: World) -> None:
    """pg-web unmapped (and, with the plan override, an unknown instance type): every problem named, exit 2."""
    before = world.source_vms()
    site = world.site_variant("no-web", lambda doc: doc["replatformer"]["networks"].pop("pg-web"))
    extra = {"instance_types": {APP: "m9z.huge"}} if HAS_OVERRIDE else {}
    journal = world.work / "bad-input.db"
    result = world.run(world.plan("bad-input", [WEB, APP], **extra), journal, site=site)
    assert result.code == 2, result
    assert "replatformer.networks.pg-web" in result.output and WEB in result.output
    if HAS_OVERRIDE:
        assert "waves[0].instance_types.crm-app-01" in result.output and "m9z.huge" in result.output
    _untouched(world, journal, before)


def test_missing_aws_credentials_are_a_clear_error(world: World) -> None:
    """No credentials anywhere in the chain: exit 1 naming the cause, before anything is touched."""
    before = world.source_vms()
    empty = world.work / "empty-credentials"
    empty.write_text("")
    site = world.site_variant("no-creds", lambda doc: doc["replatformer"].update(credentials_file=str(empty)))
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(world.work / "no-aws-config")}
    journal = world.work / "no-creds.db"
    result = world.run(world.plan("no-creds", [WEB]), journal, site=site, env=env)
    assert result.code == 1, result
    assert "no AWS credentials found" in result.output
    assert "Traceback" not in result.output
    _untouched(world, journal, before)
