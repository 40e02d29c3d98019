"""Reconcile without providers: drift found from plain facts, and the journal rebuilt per VM state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.core.errors import InputError
from migrate.core.ports import Adapters
from migrate.engine.journal import Journal
from migrate.engine.lifecycle import VmState
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from migrate.engine.playbook import load_playbook
from migrate.engine.reconcile import JournalView, compare, observe, provider_run_ids
from migrate.engine.reconcile_repair import decide, write_run
from migrate.reconcile import _choose_run_id

NIC = {"mac": "00:50:56:00:00:01", "target_network": "seg-web"}
DISK = {"key": 2000, "target_datastore": "WorkloadDatastore", "capacity_bytes": 2**20, "controller": "pvscsi:0",
        "unit": 0}
RP = {"instance_type": "m5.large", "nics": [{"subnet_id": "subnet-1", "security_group_ids": ["sg-1"]}]}


def _vm(vm_id: str, power: str, *, replatform: bool = False) -> VmFacts:
    facts: dict[str, Any] = {"name": vm_id, "power_state": power, "cpus": 2, "memory_mb": 2048, "folder": vm_id,
                             "nics": [NIC], "disks": [DISK]}
    if replatform:
        facts["replatform"] = RP
    return VmFacts(id=vm_id, name=vm_id, facts=facts)


class Unused:
    """The rest of a port's verbs: present (the engine checks the port an adapter offers), failing if called."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def unused(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"{name} is not used by reconcile")
        return unused


class Source(Unused):
    """Marks, power and disk files of source VMs."""

    name = "onprem"

    def __init__(self, vms: dict[str, dict[str, Any] | None]) -> None:
        self.vms = vms

    def migration_marks(self, vm_ids: Any) -> dict[str, dict[str, Any] | None]:
        return {v: self.vms.get(v) for v in vm_ids}

    def describe_vm(self, vm_id: str) -> dict[str, Any]:
        return {"disks": [{"key": 2000, "file": f"[ds] {vm_id}/{vm_id}.vmdk", "files": [f"[ds] {vm_id}/{vm_id}.vmdk"]}]}


class Target(Unused):
    """Target VMs by source, described as the cold verify phase reads them."""

    name = "cloud"

    def __init__(self, records: dict[str, list[dict[str, Any]]], files: set[str] | None = None) -> None:
        self.records, self.files = records, files or set()

    def source_records(self) -> dict[str, list[dict[str, Any]]]:
        return self.records

    def find_all_vms(self, source_id: str) -> list[str]:
        return [t["id"] for t in self.records.get(source_id, [])]

    def is_tagged(self, target_id: str, source_id: str) -> bool:
        return True

    def describe_vm(self, target_id: str) -> dict[str, Any]:
        source = next(s for s, ts in self.records.items() if any(t["id"] == target_id for t in ts))
        power = next(t["power_state"] for t in self.records[source] if t["id"] == target_id)
        return {"name": source, "cpus": 2, "memory_mb": 2048, "power_state": power,
                "nics": [{"mac": NIC["mac"], "network_name": "seg-web"}],
                "disks": [{"file": f"[WorkloadDatastore] {source}/{source}.vmdk"}]}

    def file_checksum(self, path: str) -> tuple[str, int] | None:
        return ("x", 1) if path in self.files else None


class Cloud(Unused):
    """Tagged AWS resources; instances described as the replatform verify phase reads them."""

    name = "aws"

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources = resources

    def tagged_resources(self, run_id: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.resources if run_id is None or r["run_id"] == run_id]

    def instances_of(self, source_id: str) -> list[dict[str, Any]]:
        return [{"instance_id": r["id"], "state": r["state"], "run_id": r["run_id"]} for r in self.resources
                if r["kind"] == "instance" and r["source_id"] == source_id]

    def describe_instance(self, instance_id: str) -> dict[str, Any]:
        r = next(r for r in self.resources if r["id"] == instance_id)
        return {"state": r["state"], "instance_type": "m5.large", "source_id": r["source_id"], "run_id": r["run_id"],
                "wave": r["wave"], "subnet_id": "subnet-1", "private_ip": "10.0.0.5",
                "nics": [{"subnet_id": "subnet-1", "security_group_ids": ["sg-1"], "private_ip": "10.0.0.5"}]}


def _res(kind: str, rid: str, source: str, run: str, state: str = "available", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "id": rid, "state": state, "source_id": source, "run_id": run, "wave": "2", "key": None,
            "sealed": extra.get("sealed", False)}


def _src(power: str, marked: bool = False, run: str = "run-a") -> dict[str, Any]:
    mark = {"name": "x", "note": f"{run}: cloud/vm-1"} if marked else None
    return {"name": "x (migrated)" if marked else "x", "power_state": power, "mark": mark, "marked": marked}


@pytest.fixture
def world() -> tuple[RunPlan, Adapters]:
    plan = RunPlan(waves=[WavePlan(id=1, vms=["done", "half", "fresh", "dup", "off"]),
                          WavePlan(id=2, vms=["rp-done", "rp-half", "rp-fresh"], method="replatform")],
                   vms=[_vm("done", "poweredOn"), _vm("half", "poweredOn"), _vm("fresh", "poweredOn"),
                        _vm("dup", "poweredOff"), _vm("off", "poweredOff"),
                        _vm("rp-done", "poweredOn", replatform=True), _vm("rp-half", "poweredOn", replatform=True),
                        _vm("rp-fresh", "poweredOff", replatform=True)])
    source = Source({"done": _src("poweredOff", marked=True), "half": _src("poweredOff"), "fresh": _src("poweredOn"),
                     "dup": _src("poweredOff"), "off": _src("poweredOff"),
                     "rp-done": _src("poweredOff", marked=True), "rp-half": _src("poweredOff"),
                     "rp-fresh": _src("poweredOff")})
    target = Target({"done": [{"id": "vm-1", "power_state": "poweredOn", "tagged": True}],
                     "dup": [{"id": "vm-2", "power_state": "poweredOff", "tagged": True},
                             {"id": "vm-3", "power_state": "poweredOff", "tagged": False}]},
                    files={"[WorkloadDatastore] off/off.vmdk"})
    cloud = Cloud([_res("instance", "i-1", "rp-done", "run-a", "running"),
                   _res("snapshot", "snap-1", "rp-done", "run-a", sealed=True),
                   _res("image", "ami-1", "rp-done", "run-a"), _res("snapshot", "snap-2", "rp-half", "run-a")])
    return plan, Adapters(source=source, target=target, replatformer=cloud)  # type: ignore[arg-type]


def test_lost_journal_drift_and_run_id(world: tuple[RunPlan, Adapters]) -> None:
    """Without a journal every trace of the run is drift; the run id comes from AWS tags and mark notes."""
    plan, adapters = world
    reality = observe(plan, adapters)
    kinds = {(d.vm, d.kind) for d in compare(plan, None, reality)}
    assert {("done", "target_not_in_journal"), ("done", "marked_not_in_journal"), ("half", "source_powered_off"),
            ("dup", "duplicate_targets"), ("rp-done", "aws_not_in_journal"), ("rp-half", "aws_not_in_journal")} <= kinds
    assert not {k for k in kinds if k[0] in ("fresh", "rp-fresh")}
    found = provider_run_ids(plan, reality)
    assert set(found) == {"run-a"}
    assert _choose_run_id(plan, found, None) == "run-a"
    with pytest.raises(InputError):
        _choose_run_id(plan, found, "run-b")
    with pytest.raises(InputError):
        _choose_run_id(plan, {"run-a": [], "run-b": []}, None)


def test_repair_states_and_original_power(world: tuple[RunPlan, Adapters], tmp_path: Path) -> None:
    """Each VM gets the state reality shows; a source the run powered off keeps its ORIGINAL power state."""
    plan, adapters = world
    reality = observe(plan, adapters)
    decisions = decide(plan, "run-a", adapters, reality, None, compare(plan, None, reality))
    states = {d.vm: d.state for d in decisions}
    assert states == {"done": "completed", "half": "cutting_over", "fresh": "pending", "dup": "failed",
                      "off": "cutting_over", "rp-done": "completed", "rp-half": "cutting_over", "rp-fresh": "pending"}
    books = {m: load_playbook(m).model_dump(mode="json") for m in ("cold", "replatform")}
    with Journal(tmp_path / "j.db") as jr:
        run_id, waves = write_run(jr, plan, books, "run-a", decisions)
        assert (run_id, waves) == ("run-a", {1: "running", 2: "running"})
        view = JournalView.load(jr, run_id, plan)
        assert {k: e.state for k, e in view.vms.items()} == states
        half = view.finished("vm", "half")
        assert half["precheck"]["power_state"] == "poweredOn"       # discovery, not today's poweredOff
        assert list(half) == ["precheck", "power_off_source"]
        assert "copy_disks" in view.finished("vm", "done") and view.vms["dup"].error is not None
        assert jr.open_run(run_id).status == "interrupted"
        for entity in view.vms.values():
            VmState(entity.state)  # every state is one the machine knows
    # the rebuilt journal agrees with reality, but for the duplicate
    again = compare(plan, view, reality)
    assert {d.vm for d in again} <= {"dup"}, again
