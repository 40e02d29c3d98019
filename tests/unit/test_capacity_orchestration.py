"""The provider-free parts of capacity: inputs from engine facts, tags, settings, site.yaml's `capacity` section
(its provisioner as a driver's section), the journal recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.aws.settings import AwsSettings
from adapters.capacity.base import client_token
from adapters.capacity.settings import Ec2ProvisionerSettings, EvsProvisionerSettings
from migrate.core.config import CapacityConfig, DriverSettings, SiteConfig
from migrate.core.errors import InputError
from migrate.core.fileio import validation_problems
from migrate.engine.capacity_journal import journal_recorder
from migrate.engine.capacity_plan import CapacitySettings, idempotency_key, plan_tag_for, vm_sizes_from_facts
from migrate.engine.journal import Journal
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from planners.sizing import VmSize


def test_vm_sizes_from_facts() -> None:
    """cpus/vcpus, memory_mb, storage_gb or inventory-style disks; templates count storage only."""
    facts = [VmFacts(id="a", name="web", facts={"cpus": 4, "memory_mb": 8192, "storage_gb": 40}),
             VmFacts(id="b", facts={"vcpus": 2, "memory_mb": 2048,
                                    "disks": [{"capacity_bytes": 2**30}, {"capacity_bytes": 3 * 2**30}]}),
             VmFacts(id="c", facts={"cpus": 8, "memory_mb": 4096, "storage_gb": 10, "template": True}),
             VmFacts(id="d")]
    assert vm_sizes_from_facts(facts) == [VmSize("a", 4, 8192, 40.0, "web"), VmSize("b", 2, 2048, 4.0, ""),
                                          VmSize("c", 0, 0, 10.0, ""), VmSize("d", 0, 0, 0.0, "")]


def test_plan_tag_and_keys_are_stable() -> None:
    """The plan tag depends on wave ids and VM ids only (not order inside a wave); keys and tokens are stable."""
    one = [("1", [VmSize("a", 1, 1, 1.0), VmSize("b", 1, 1, 1.0)])]
    same = [("1", [VmSize("b", 9, 9, 9.0), VmSize("a", 1, 1, 1.0)])]
    other = [("2", [VmSize("a", 1, 1, 1.0), VmSize("b", 1, 1, 1.0)])]
    assert plan_tag_for(one) == plan_tag_for(same) != plan_tag_for(other)
    assert plan_tag_for(one).startswith("plan-")
    assert idempotency_key("run-1", "3") == "run-1:wave-3:capacity"
    token = client_token(idempotency_key("run-1", "3"), 0)
    assert token == client_token("run-1:wave-3:capacity", 0) != client_token("run-1:wave-3:capacity", 1)
    assert len(token) <= 64 and token.isascii()


def test_settings_problems_name_the_fields() -> None:
    """Every bad knob is listed by its field."""
    bad = CapacitySettings(spare_hosts=-1, min_hosts=0, vcpu_per_core=0, connect_timeout_s=0)
    assert {p.field for p in bad.problems()} == {"spare_hosts", "min_hosts", "vcpu_per_core", "connect_timeout_s"}
    assert CapacitySettings().problems() == []
    assert CapacitySettings().policy().minimum == 3 and CapacitySettings(min_hosts=5).policy().minimum == 5
    assert CapacitySettings.from_config(CapacityConfig.model_validate({"spare_hosts": 0})).spare_hosts == 0


def test_provisioner_by_name_takes_the_fields_from_before_drivers() -> None:
    """`provisioner: evs` with the flat evs_* fields (site.yaml as it was) is the evs driver's section; fields of
    another driver are left out; no provisioner is ec2."""
    old = CapacityConfig.model_validate({"provisioner": "evs", "evs_environment_id": "env-1", "evs_key_name": "k",
                                         "availability_zone": "us-east-1a", "host_domain": "corp.internal"})
    assert old.provisioner == EvsProvisionerSettings(environment_id="env-1", key_name="k", host_domain="corp.internal")
    assert CapacityConfig().provisioner == Ec2ProvisionerSettings()
    zone = CapacityConfig.model_validate({"availability_zone": "us-east-1b"}).provisioner
    assert isinstance(zone, Ec2ProvisionerSettings) and zone.availability_zone == "us-east-1b"


def test_provisioner_section_is_validated_by_its_driver() -> None:
    """The mapping form is its driver's settings; bad or misplaced fields are named under capacity."""
    new = CapacityConfig.model_validate({"provisioner": {"driver": "evs", "environment_id": "env-1", "key_name": "k",
                                                         "aws": {"region": "eu-west-1"}}})
    assert isinstance(new.provisioner, EvsProvisionerSettings)
    assert new.provisioner.aws == AwsSettings(region="eu-west-1")
    bare = CapacityConfig.model_validate({"provisioner": "evs"})   # loads: the ids are needed to add hosts only
    assert isinstance(bare.provisioner, EvsProvisionerSettings)
    with pytest.raises(InputError) as missing:
        bare.provisioner.environment()
    assert {p.field for p in missing.value.problems} == {"capacity.provisioner.environment_id",
                                                         "capacity.provisioner.key_name"}
    cases = [({"provisioner": {"driver": "ec2", "bogus": 1}}, {"provisioner.bogus"}),
             ({"provisioner": {"driver": "ec2"}, "availability_zone": "z"}, {"(top level)"}),
             ({"provisioner": "xen"}, {"provisioner"}), ({"provisioner": 3}, {"provisioner"})]
    for data, fields in cases:
        with pytest.raises(InputError) as caught:
            validation_problems(CapacityConfig, data, "site.yaml")
        assert {p.field for p in caught.value.problems} == fields, data


def test_with_provisioner_overrides_by_old_or_new_names() -> None:
    """The CLI's overrides (named as before drivers) replace the section's fields; another driver starts afresh."""
    config = CapacityConfig.model_validate({"provisioner": {"driver": "evs", "environment_id": "env-1",
                                                            "key_name": "k", "esxi_username": "admin"}})
    same = config.with_provisioner(None, evs_key_name="k2")
    assert isinstance(same, EvsProvisionerSettings) and (same.key_name, same.esxi_username) == ("k2", "admin")
    other = config.with_provisioner("ec2", evs_key_name="ignored", availability_zone="z")
    assert other == Ec2ProvisionerSettings(availability_zone="z")
    with pytest.raises(InputError) as caught:
        config.with_provisioner("xen")
    assert caught.value.problems[0].field == "driver"


def test_provisioner_account_defaults_to_the_aws_replatformer() -> None:
    """No `aws` in the section: the site's aws replatformer is the account; none anywhere is bad input."""
    aws = AwsSettings(region="us-east-1")
    site = SiteConfig.model_validate({"source": DriverSettings(driver="vcenter"), "replatformer": aws})
    assert Ec2ProvisionerSettings().for_site(site).account() == aws
    with pytest.raises(InputError, match="AWS account"):
        Ec2ProvisionerSettings().account()
    assert Ec2ProvisionerSettings(esxi_password_env="NOPE_UNSET").file_problems("f", "capacity.provisioner", {})[0] \
        .field == "capacity.provisioner.esxi_password_env"


def test_journal_recorder_makes_the_allocation_durable(tmp_path: Path) -> None:
    """allocating -> capacity_allocate started (inputs), allocated -> finished (host ids), added -> its own step;
    a reader opening the file afterwards sees them (the writes waited for the commit)."""
    plan = RunPlan(waves=[WavePlan(id=1, vms=["a"])], vms=[VmFacts(id="a")])
    path = tmp_path / "journal.db"
    with Journal(path) as journal:
        run = journal.create_run(plan, {}).run_id
        record = journal_recorder(journal, run, "1")
        record("allocating", {"key": "k", "count": 2})
        with Journal(path, create=False) as reader:
            (step,) = reader.steps(run, "wave", "1")
            assert (step.step, step.status, step.inputs) == ("capacity_allocate", "started", {"key": "k", "count": 2})
        record("allocated", {"key": "k", "host_ids": ["h-1", "h-2"]})
        record("added", {"names": ["h-1.x", "h-2.x"], "added_now": ["h-1.x"]})
        with pytest.raises(ValueError, match="unknown capacity event"):
            record("bogus", {})
    with Journal(path, create=False) as reader:
        steps = {s.step: s for s in reader.steps(run, "wave", "1")}
    assert steps["capacity_allocate"].status == "finished"
    assert steps["capacity_allocate"].outputs["host_ids"] == ["h-1", "h-2"]
    assert steps["capacity_add_hosts"].outputs["added_now"] == ["h-1.x"]
