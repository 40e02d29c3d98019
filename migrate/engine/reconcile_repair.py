"""Rebuild a run journal from what exists, so that `migrate resume` finishes the run and does nothing twice.

Per VM (`decide`), from the facts migrate.engine.reconcile read:

- a VM the journal knows and reality agrees with (no drift): kept as the journal has it, with its
  finished steps and their outputs;
- the source is gone, or several targets (instances) record it: `failed`, with the reason (fix it by
  hand, then `migrate resume --retry-failed`);
- cold, one target VM records the source: `completed` when the target verifies (the cold `verify`
  phase itself: one VM, tagged, hardware, NICs, disks, power) and the source is marked and off; else
  `cutting_over` with `precheck`, `power_off_source` (when the source is off), `copy_disks` and
  `create_target_vm` finished, so resume only runs the idempotent tag / power-on / verify / mark phases
  and never copies disks again under a target that may be running;
- replatform, a live instance of the run: `completed` when it verifies and the source is marked and off;
- touched otherwise (marked, powered off since discovery, AWS resources of the run, disk files already
  on the target): `cutting_over` with `precheck` and `power_off_source` finished: the idempotent cutover
  phases find what exists (copied files by checksum, snapshots / image / instance by idempotency key);
- untouched: `pending` (prechecked afresh by the resumed run).

`precheck`'s recorded power state is the source's ORIGINAL one (the journal's when it had it, else the
plan's inventory facts at discovery), never the current one: a source the first attempt powered off
must still get its target powered on. Waves: completed when all their VMs are, `running` when any VM
has moved (their pre-hooks and capacity step ran), else pending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migrate.core.errors import OperationalError
from migrate.core.log import get_logger
from migrate.core.ports import Adapters
from migrate.engine.cold import COLD, cold_target, disk_source, target_file
from migrate.engine.context import PhaseContext
from migrate.engine.journal import Journal, step_key
from migrate.engine.methods import Stage, registry
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from migrate.engine.reconcile import DEAD_INSTANCE_STATES, Drift, JournalView, Reality
from migrate.engine.replatform import REPLATFORM

__all__ = ["VmDecision", "decide", "wave_state", "write_run"]

REASON = "reconciled"
# the transitions a rebuilt VM goes through, in order; a replicating method's (warm) replicate in between
_TRIGGERS = {"prechecked": "pass_prechecks", "ready": "make_ready", "replicating": "start_replication",
             "cutting_over": "start_cutover", "verifying": "start_verify", "completed": "complete"}


def _chain(method: str) -> list[str]:
    """The states a VM of `method` passes through, pending to completed."""
    declared = registry().get(method)
    middle = ["replicating"] if declared is not None and declared.replicates else []
    return ["pending", "prechecked", "ready", *middle, "cutting_over", "verifying", "completed"]


@dataclass
class VmDecision:
    """The state a rebuilt journal records for one VM, the finished steps with outputs, and why."""

    vm: str
    name: str
    wave: int
    method: str
    state: str
    why: str
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    started: list[str] = field(default_factory=list)  # left started, as a crash leaves the phase it was in

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"id": self.vm, "name": self.name, "wave": self.wave, "method": self.method, "state": self.state,
                "why": self.why, "steps": [name for name, _ in self.steps], "started": self.started,
                **({"error": self.error} if self.error else {})}


class _Vm:
    """Decision helpers for one VM."""

    def __init__(self, plan: RunPlan, wave: WavePlan, vm: VmFacts, run_id: str, adapters: Adapters,
                 reality: Reality, journal: JournalView | None) -> None:
        self.plan, self.wave, self.vm, self.run_id = plan, wave, vm, run_id
        self.adapters, self.reality = adapters, reality
        self.old = journal.finished("vm", vm.id) if journal is not None else {}
        self.source = reality.sources.get(vm.id)
        self.log = get_logger("migrate.reconcile").bind(run_id=run_id, wave=wave.id, vm=vm.id)

    def decision(self, state: str, why: str, steps: list[tuple[str, dict[str, Any]]] | None = None,
                 error: str | None = None) -> VmDecision:
        info = {"type": "ReconcileError", "message": error, "retryable": False} if error else None
        return VmDecision(vm=self.vm.id, name=self.vm.name, wave=self.wave.id, method=self.wave.method, state=state,
                          why=why, steps=steps or [], error=info)

    @property
    def original_power(self) -> str:
        """The source's power state before the run touched it: the journal's precheck, else discovery."""
        recorded = self.old.get("precheck", {}).get("power_state")
        return str(recorded or self.vm.facts.get("power_state") or "poweredOff")

    @property
    def source_off(self) -> bool:
        return self.source is not None and self.source["power_state"] != "poweredOn"

    def first_steps(self) -> list[tuple[str, dict[str, Any]]]:
        """`precheck` with the ORIGINAL power state, and `power_off_source` if the source is off."""
        precheck = self.old.get("precheck") or {"power_state": self.original_power, "name": self.vm.name,
                                                "checks": [], REASON: True}
        if self.wave.method == "replatform" and "instance_type" not in precheck:
            precheck = {**precheck, "instance_type": self.vm.facts.get("replatform", {}).get("instance_type")}
        steps: list[tuple[str, dict[str, Any]]] = [("precheck", dict(precheck))]
        if self.source_off:
            steps.append(("power_off_source", self.old.get("power_off_source")
                          or {"powered_off": self.original_power == "poweredOn", REASON: True}))
        return steps

    def touched(self) -> bool:
        """Did the run visibly start on this VM (mark, power, journal)?"""
        assert self.source is not None
        moved = self.original_power == "poweredOn" and self.source_off
        return bool(self.source["mark"]) or moved or any(p != "precheck" for p in self.old)

    def context(self, phase: str, prior: Mapping[str, Mapping[str, Any]]) -> PhaseContext:
        return PhaseContext(run_id=self.run_id, wave=self.wave, vm=self.vm, phase=phase, attempt=1,
                            key=step_key(self.run_id, "vm", self.vm.id, phase), adapters=self.adapters,
                            prior=prior, log=self.log)


def _cold_copies(one: _Vm) -> dict[str, Any]:
    """`copy_disks` outputs for a VM whose target exists: the journal's, else the files the copy wrote."""
    if "copy_disks" in one.old:
        return one.old["copy_disks"]
    source = disk_source(one.adapters.source, "cold")
    targets = {int(d["key"]): str(d["target_datastore"]) for d in one.vm.facts.get("disks", [])}
    folder = str(one.vm.facts["folder"])
    disks = []
    for disk in source.describe_vm(one.vm.id)["disks"]:
        datastore = targets.get(int(disk["key"]))
        if datastore is None:
            continue
        files = [{"source": path, "target": target_file(path, datastore, folder), "sha256": None, "bytes": None,
                  "copied": False} for path in disk["files"]]
        disks.append({"key": disk["key"], "file": target_file(disk["file"], datastore, folder), "files": files})
    return {"disks": disks, REASON: True}


def _cold_files_exist(one: _Vm) -> bool:
    """Did a copy start (the first file of a disk is on the target)? Checked only for VMs that look untouched."""
    source = disk_source(one.adapters.source, "cold")
    target = cold_target(one.adapters.target)
    targets = {int(d["key"]): str(d["target_datastore"]) for d in one.vm.facts.get("disks", [])}
    for disk in source.describe_vm(one.vm.id)["disks"]:
        datastore = targets.get(int(disk["key"]))
        if datastore and disk["files"] and \
                target.file_checksum(target_file(disk["files"][0], datastore, str(one.vm.facts["folder"]))) is not None:
            return True
    return False


def _decide_cold(one: _Vm) -> VmDecision:
    targets = one.reality.targets.get(one.vm.id, [])
    if len(targets) > 1:
        ids = ", ".join(t["id"] for t in targets)
        return one.decision("failed", "several targets", one.first_steps(),
                            f"{len(targets)} target VMs record this source ({ids}): delete the extra ones, then "
                            "`migrate resume --retry-failed`")
    if not targets:
        if one.touched() or (one.source_off and _cold_files_exist(one)):
            return one.decision("cutting_over", "the run had started: no target VM yet", one.first_steps())
        return one.decision("pending", "untouched")
    target = targets[0]
    steps = one.first_steps()
    steps.append(("copy_disks", _cold_copies(one)))
    steps.append(("create_target_vm", one.old.get("create_target_vm")
                  or {"target_id": target["id"], "created": False, REASON: True}))
    prior = dict(steps)
    try:
        verified = dict(COLD.phase("verify").run(one.context("verify", prior)))
    except OperationalError as exc:
        return one.decision("cutting_over", f"target {target['id']} exists, does not verify yet ({exc})", steps)
    if not (one.source is not None and one.source["marked"] and one.source_off):
        return one.decision("cutting_over", f"target {target['id']} verifies; the source is not marked and off yet",
                            steps)
    steps += [("tag_target", {"tagged": False, REASON: True}), ("power_on_target", {"powered_on": False, REASON: True}),
              ("verify", verified), ("mark_source_migrated", {"marked": True, REASON: True})]
    return one.decision("completed", f"target {target['id']} verifies and the source is marked", steps)


def _decide_replatform(one: _Vm) -> VmDecision:
    ours = one.reality.resources_of(one.vm.id, one.run_id)
    live = [r for r in ours if r["kind"] == "instance" and r["state"] not in DEAD_INSTANCE_STATES]
    if len(live) > 1:
        ids = ", ".join(r["id"] for r in live)
        return one.decision("failed", "several instances", one.first_steps(),
                            f"{len(live)} live instances of the run carry this source ({ids}): terminate the extra "
                            "ones, then `migrate resume --retry-failed`")
    if not ours and not one.touched():
        return one.decision("pending", "untouched")
    steps = one.first_steps()
    if not live or not (one.source is not None and one.source["marked"] and one.source_off):
        decision = one.decision("cutting_over", "the run had started: its phases find what exists by idempotency "
                                "key", steps)
        if ours:  # what the lost journal had as the phase in progress: the resumed upload finds its snapshots
            decision.started = ["upload_disks"]
        return decision
    instance = live[0]["id"]
    launched = one.old.get("launch_instance") or {"instance_id": instance, REASON: True}
    try:
        prior = {**dict(steps), "launch_instance": launched}
        verified = dict(REPLATFORM.phase("verify").run(one.context("verify", prior)))
    except OperationalError as exc:
        return one.decision("cutting_over", f"instance {instance} exists, does not verify yet ({exc})", steps)
    snapshots = sorted(r["id"] for r in ours if r["kind"] == "snapshot" and r["sealed"])
    images = sorted(r["id"] for r in ours if r["kind"] == "image")
    steps += [("upload_disks", one.old.get("upload_disks") or {"disks": [{"snapshot_id": s} for s in snapshots],
                                                                REASON: True}),
              ("register_image", one.old.get("register_image") or {"image_id": images[0] if images else None,
                                                                    REASON: True}),
              ("launch_instance", launched), ("wait_ready", {"instance_id": instance, REASON: True}),
              ("verify", verified), ("mark_source_migrated", {"marked": True, REASON: True})]
    return one.decision("completed", f"instance {instance} verifies and the source is marked", steps)


def decide(plan: RunPlan, run_id: str, adapters: Adapters, reality: Reality, journal: JournalView | None,
           drift: list[Drift]) -> list[VmDecision]:
    """The state to record for every VM of the plan, in plan order (module docstring)."""
    drifted = {d.vm for d in drift}
    decisions = []
    for wave in plan.waves:
        for vm_id in wave.vms:
            vm = plan.vm_index[vm_id]
            one = _Vm(plan, wave, vm, run_id, adapters, reality, journal)
            if journal is not None and vm_id not in drifted:
                record = journal.vms.get(vm_id)
                decisions.append(one.decision(journal.state(vm_id), "the journal agrees with what exists",
                                              list(one.old.items())))
                decisions[-1].error = record.error if record else None
                decisions[-1].started = [s.step for s in journal.steps if s.kind == "vm" and s.entity_id == vm_id
                                         and s.status != "finished" and s.step not in one.old]
            elif one.source is None:
                decisions.append(one.decision("failed", "source missing", [],
                                              "the source VM is not on the source vCenter"))
            elif wave.method == "cold":
                decisions.append(_decide_cold(one))
            elif wave.method == "replatform":
                decisions.append(_decide_replatform(one))
            else:  # live, noop: only the journal knows; without it the resumed run prechecks again
                decisions.append(one.decision(journal.state(vm_id) if journal else "pending",
                                              f"method {wave.method} is not reconciled", list(one.old.items())))
    return decisions


def wave_state(decisions: list[VmDecision]) -> str:
    """completed when every VM is, running once any VM moved, else pending."""
    states = {d.state for d in decisions}
    if states == {"completed"}:
        return "completed"
    return "pending" if states == {"pending"} else "running"


# -- writing -------------------------------------------------------------------------------------------

def _stage(method: str, step: str) -> int:
    """Where in the method's chain of states `step` runs."""
    declared = registry().get(method)
    stage = declared.phase(step).stage if declared is not None and declared.has_phase(step) else None
    chain = _chain(method)
    if stage is Stage.PRECHECK:
        return 0
    if stage is Stage.REPLICATE:
        return chain.index("replicating")
    if stage is Stage.CUTOVER or step.startswith("hook:pre"):
        return chain.index("cutting_over")
    return chain.index("verifying") if stage is Stage.VERIFY or step.startswith("hook:post") else len(chain) - 1


def _write_vm(jr: Journal, run_id: str, decision: VmDecision) -> None:
    inputs = {"vm": decision.vm, "wave": decision.wave, "method": decision.method, REASON: True}
    chain = _chain(decision.method)
    if decision.state in chain:
        reach = chain.index(decision.state)
    else:  # failed, rolled_back, skipped: as far as its steps went, then the final trigger
        stages = [_stage(decision.method, s) for s, _ in decision.steps]
        reach = min(max(stages, default=0), chain.index("verifying")) if decision.state != "skipped" else 0
        if decision.state == "rolled_back":   # rolled back from replicating on, at least
            reach = max(reach, chain.index("replicating" if "replicating" in chain else "cutting_over"))
    at = 0

    def forward(upto: int) -> None:
        nonlocal at
        while at < upto:
            src, dst = chain[at], chain[at + 1]
            jr.record_transition(run_id, "vm", decision.vm, _TRIGGERS[dst], src, dst, {"reason": REASON}, wait=False)
            at += 1

    for step, outputs in sorted(decision.steps, key=lambda s: min(_stage(decision.method, s[0]), reach)):
        forward(min(_stage(decision.method, step), reach))
        _, attempt = jr.step_started(run_id, "vm", decision.vm, step, inputs, attempt=1, wait=False)
        jr.step_finished(run_id, "vm", decision.vm, step, attempt, outputs, wait=False)
    for step in decision.started:
        forward(min(_stage(decision.method, step), reach))
        jr.step_started(run_id, "vm", decision.vm, step, inputs, attempt=1, wait=False)
    forward(reach)
    current = chain[at]
    final = {"failed": "fail", "rolled_back": "rollback", "skipped": "skip"}.get(decision.state)
    if final is not None:
        data: dict[str, Any] = {"reason": REASON}
        if decision.error:
            data["error"] = decision.error
        jr.record_transition(run_id, "vm", decision.vm, final, current, decision.state, data, wait=False)


def _write_wave(jr: Journal, run_id: str, wave: int, state: str, steps: Mapping[str, Mapping[str, Any]]) -> None:
    if state == "pending":
        return
    jr.record_transition(run_id, "wave", str(wave), "start", "pending", "prechecking", {"reason": REASON}, wait=False)
    for step, outputs in steps.items():
        _, attempt = jr.step_started(run_id, "wave", str(wave), step, {"wave": wave, REASON: True}, attempt=1,
                                     wait=False)
        jr.step_finished(run_id, "wave", str(wave), step, attempt, dict(outputs), wait=False)
    jr.record_transition(run_id, "wave", str(wave), "run", "prechecking", "running", {"reason": REASON}, wait=False)
    if state == "completed":
        jr.record_transition(run_id, "wave", str(wave), "complete", "running", "completed", {"reason": REASON},
                             wait=False)


def write_run(jr: Journal, plan: RunPlan, playbooks: Mapping[str, Any], run_id: str | None,
              decisions: list[VmDecision], journal: JournalView | None = None,
              old: Journal | None = None) -> tuple[str, dict[int, str]]:
    """Record a run of `plan` holding `decisions` (and the old journal's wave steps, EBS block progress and
    replication cycles);
    returns the run id and each wave's state."""
    record = jr.create_run(plan, playbooks, run_id)
    run_id = record.run_id
    by_wave: dict[int, list[VmDecision]] = {}
    for decision in decisions:
        by_wave.setdefault(decision.wave, []).append(decision)
    waves = {}
    for wave in plan.waves:
        waves[wave.id] = wave_state(by_wave.get(wave.id, []))
        steps = journal.finished("wave", str(wave.id)) if journal is not None else {}
        _write_wave(jr, run_id, wave.id, waves[wave.id], steps)
        for decision in by_wave.get(wave.id, []):
            _write_vm(jr, run_id, decision)
            if old is not None and journal is not None and decision.method == "replatform":
                for disk in decision_disks(plan.vm_index[decision.vm]):
                    for snapshot, blocks in old.blocks_done(journal.run_id, decision.vm, disk).items():
                        jr.record_blocks(run_id, decision.vm, disk, snapshot, sorted(blocks))
            if old is not None and journal is not None and "replicating" in _chain(decision.method):
                for cycle in old.cycles(journal.run_id, decision.vm):   # the next cycle goes on from their ids
                    jr.record_cycle(run_id, decision.vm, cycle.cycle, cycle.data)
    states = list(waves.values())
    status = "completed" if set(states) == {"completed"} else "interrupted"
    counts: dict[str, int] = {}
    for decision in decisions:
        counts[decision.state] = counts.get(decision.state, 0) + 1
    jr.set_run_status(run_id, status, {"vms": counts, REASON: True})
    jr.flush()
    return run_id, waves


def decision_disks(vm: VmFacts) -> list[str]:
    """The parts (disk keys) a re-platformed VM records EBS block progress under."""
    return [str(d["key"]) for d in vm.facts.get("disks", [])]
