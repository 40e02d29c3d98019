"""The provider-free parts of migrate/capacity.py: inputs from engine facts, tags, settings, the journal recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.capacity.base import client_token
from migrate.capacity import CapacitySettings, idempotency_key, journal_recorder, plan_tag_for, vm_sizes_from_facts
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


def test_settings_problems_name_the_options() -> None:
    """Every bad knob is listed by its CLI option."""
    bad = CapacitySettings(spare_hosts=-1, min_hosts=0, vcpu_per_core=0, provisioner="evs", connect_timeout_s=0)
    fields = {p.field for p in bad.problems()}
    assert fields == {"--spare", "--min-hosts", "--ratio", "--evs-environment", "--evs-key-name", "--connect-timeout"}
    assert CapacitySettings().problems() == []
    assert CapacitySettings().policy().minimum == 3 and CapacitySettings(min_hosts=5).policy().minimum == 5


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
