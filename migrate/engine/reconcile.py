"""Reconcile a run journal with what exists on the providers: the drift of every VM of a run.

Provider-free: what exists is read through the read-only ledgers of migrate.core.ports (`MarkLedger` on the
source, `TargetLedger` on the target vCenter, `CloudLedger` on AWS) into a plain `Reality`, and compared
with a `JournalView` (what a journal says about one run: VM and wave states, finished and started steps
with their outputs). `compare` lists every disagreement as a `Drift`; migrate.engine.reconcile_repair
rebuilds a journal from the same facts.

What is compared, per VM of the plan:
- cold: the target VMs recording the source (extraConfig `migrate.sourceInstanceUuid`) against the
  journal's state and its `create_target_vm` output; the source's migrated mark and power state;
- replatform: the instances, images and snapshots tagged with the source against the journal's run,
  state and the ids its `upload_disks`, `register_image` and `launch_instance` outputs hold;
- every method: the source VM still exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrate.core.errors import OperationalError
from migrate.core.ports import Adapters, CloudLedger, MarkLedger, TargetLedger
from migrate.engine.journal import EntityRecord, Journal, StepRecord
from migrate.engine.plan import RunPlan, VmFacts

__all__ = ["DEAD_INSTANCE_STATES", "Drift", "JournalView", "Reality", "compare", "known_resource_ids", "observe",
           "provider_run_ids"]

DEAD_INSTANCE_STATES = frozenset({"terminated", "shutting-down"})
# The phase whose effect each AWS resource kind is (a started, unfinished phase explains its leftovers).
_MADE_BY = {"snapshot": "upload_disks", "image": "register_image", "instance": "launch_instance"}


@dataclass(frozen=True)
class Drift:
    """One disagreement between the journal and what exists."""

    kind: str
    message: str
    vm: str | None = None
    name: str | None = None
    wave: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"kind": self.kind, "message": self.message, "vm": self.vm, "name": self.name, "wave": self.wave}


@dataclass
class Reality:
    """What the providers show about the plan's VMs (plain data, read-only lookups)."""

    sources: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    targets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)

    def resources_of(self, vm_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """AWS resources tagged with this source (and run, when given)."""
        return [r for r in self.resources if r["source_id"] == vm_id and (run_id is None or r["run_id"] == run_id)]

    def live_instances(self, vm_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """Instances of this source (and run) that are not terminated or terminating."""
        return [r for r in self.resources_of(vm_id, run_id)
                if r["kind"] == "instance" and r["state"] not in DEAD_INSTANCE_STATES]


@dataclass
class JournalView:
    """What a journal says about one run: states, and the steps with their outputs."""

    run_id: str
    status: str
    vms: dict[str, EntityRecord]
    waves: dict[int, EntityRecord]
    steps: list[StepRecord]

    @classmethod
    def load(cls, journal: Journal, run_id: str, plan: RunPlan) -> JournalView:
        """Read one run of an open journal."""
        return cls(run_id=run_id, status=journal.open_run(run_id).status,
                   vms={e.id: e for e in journal.entities(run_id, "vm", plan)},
                   waves={e.wave: e for e in journal.entities(run_id, "wave", plan)},
                   steps=journal.steps(run_id))

    def state(self, vm_id: str) -> str:
        """The VM's state (pending when the journal has none)."""
        record = self.vms.get(vm_id)
        return record.state if record else "pending"

    def finished(self, kind: str, entity_id: str) -> dict[str, dict[str, Any]]:
        """Outputs of the entity's finished steps, by step name, in start order."""
        return {s.step: dict(s.outputs or {}) for s in self.steps
                if s.kind == kind and s.entity_id == entity_id and s.status == "finished"}

    def unfinished(self, kind: str, entity_id: str) -> set[str]:
        """Steps of the entity whose latest attempt started (or failed) and did not finish."""
        return {s.step for s in self.steps if s.kind == kind and s.entity_id == entity_id and s.status != "finished"}


def observe(plan: RunPlan, adapters: Adapters) -> Reality:
    """Read what exists for the plan's VMs: source marks and power, target VMs, tagged AWS resources."""
    ids = [vm.id for vm in plan.vms]
    methods = {wave.method for wave in plan.waves}
    reality = Reality()
    by_source: dict[str | None, list[str]] = {}
    for vm in plan.vms:
        by_source.setdefault(vm.source, []).append(vm.id)
    for name, vm_ids in by_source.items():
        source = adapters.for_source(name).source
        if not isinstance(source, MarkLedger):
            raise OperationalError("reconcile needs a source that can report migrated marks (site.yaml `source`)")
        reality.sources.update(source.migration_marks(vm_ids))
    if methods & {"cold", "live"}:
        if not isinstance(adapters.target, TargetLedger):
            raise OperationalError("reconcile needs the target vCenter (site.yaml `target`)")
        wanted = set(ids)
        reality.targets = {k: v for k, v in adapters.target.source_records().items() if k in wanted}
    if "replatform" in methods:
        if not isinstance(adapters.replatformer, CloudLedger):
            raise OperationalError("reconcile of re-platform waves needs AWS (site.yaml `replatformer`, driver aws)")
        wanted = set(ids)
        reality.resources = [r for r in adapters.replatformer.tagged_resources() if r["source_id"] in wanted]
    return reality


def provider_run_ids(plan: RunPlan, reality: Reality) -> dict[str, list[str]]:
    """Run ids the providers name for the plan's VMs (AWS run tags, source mark notes): id -> evidence."""
    found: dict[str, list[str]] = {}
    for resource in reality.resources:
        if resource["run_id"]:
            found.setdefault(resource["run_id"], []).append(f"aws {resource['kind']} {resource['id']}")
    for vm in plan.vms:
        source = reality.sources.get(vm.id)
        note = str(((source or {}).get("mark") or {}).get("note") or "")
        if ": " in note:  # "<run id>: <target>/<id>" (mark_source_migrated)
            found.setdefault(note.split(": ", 1)[0], []).append(f"migrated mark of {vm.name}")
    return found


def known_resource_ids(finished: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """AWS ids the journal's finished re-platform phases recorded."""
    ids = {str(d.get("snapshot_id")) for d in finished.get("upload_disks", {}).get("disks", []) or []}
    ids.add(str(finished.get("register_image", {}).get("image_id")))
    ids.add(str(finished.get("launch_instance", {}).get("instance_id")))
    return ids - {"None"}


class _Findings:
    def __init__(self, vm: VmFacts, wave: int, lost: bool) -> None:
        self.vm, self.wave, self.lost = vm, wave, lost
        self.items: list[Drift] = []

    def label(self, state: str) -> str:
        """The journal's state for a message ('no journal' when it is lost)."""
        return "no journal" if self.lost else state

    def add(self, kind: str, message: str) -> None:
        self.items.append(Drift(kind, message, vm=self.vm.id, name=self.vm.name, wave=self.wave))


def _ids(items: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(item["id"]) for item in items]


def _source_drift(out: _Findings, state: str, finished: Mapping[str, Any], unfinished: set[str],
                  source: Mapping[str, Any] | None) -> None:
    if source is None:
        out.add("source_missing", "the source VM (this instanceUuid) is not on the source vCenter")
        return
    if state == "completed":
        if not source["marked"]:
            out.add("completed_not_marked", f"the journal says completed, but the source {source['name']!r} "
                                            "does not carry the migrated mark")
        if source["power_state"] == "poweredOn":
            out.add("source_running", "the journal says completed, but the source is powered on")
    elif state == "rolled_back":
        if source["mark"]:
            out.add("marked_after_rollback", f"the journal says rolled back, but the source {source['name']!r} "
                                             "is marked migrated")
    elif source["mark"] and "mark_source_migrated" not in finished and "mark_source_migrated" not in unfinished:
        out.add("marked_not_in_journal", f"the source is marked migrated ({source['name']!r}), the journal "
                                         f"says {out.label(state)}")


def _power_drift(out: _Findings, state: str, finished: Mapping[str, Any], unfinished: set[str],
                 source: Mapping[str, Any] | None) -> None:
    """A source powered off that the journal did not power off (the run's lost progress, or someone else)."""
    if source is None or state in ("completed", "rolled_back") or source["mark"]:
        return
    touched = "power_off_source" in finished or "power_off_source" in unfinished
    if not touched and out.vm.facts.get("power_state") == "poweredOn" and source["power_state"] != "poweredOn":
        out.add("source_powered_off", f"the source is {source['power_state']} (poweredOn at discovery); the journal "
                                      "has not powered it off")


def _cold_drift(out: _Findings, state: str, finished: Mapping[str, Any], unfinished: set[str],
                targets: list[dict[str, Any]]) -> None:
    ids = _ids(targets)
    recorded = finished.get("create_target_vm", {}).get("target_id")
    if len(targets) > 1:
        out.add("duplicate_targets", f"{len(targets)} target VMs record this source: {', '.join(ids)}")
    if state == "completed":
        if not targets:
            out.add("completed_without_target", f"the journal says completed (target {recorded}), but no target VM "
                                                "records this source")
        elif not any(t["tagged"] for t in targets):
            out.add("target_not_tagged", f"target {', '.join(ids)} lacks the migrate-source tag")
    elif state == "rolled_back":
        if targets:
            out.add("target_after_rollback", f"the journal says rolled back, but target VM(s) {', '.join(ids)} "
                                             "record this source")
        return
    elif targets and recorded is None and "create_target_vm" not in unfinished:
        out.add("target_not_in_journal", f"target VM {', '.join(ids)} records this source; the journal "
                                         f"({out.label(state)}) has not created one")
    elif recorded is not None and not targets:
        out.add("target_missing", f"the journal created target {recorded}, which no longer exists")
    if recorded is not None and targets and str(recorded) not in ids:
        out.add("target_differs", f"the journal created target {recorded}; the target VM(s) recording this "
                                  f"source are {', '.join(ids)}")


def _replatform_drift(out: _Findings, state: str, finished: Mapping[str, Any], unfinished: set[str],
                      run_id: str | None, reality: Reality) -> None:
    vm_id = out.vm.id
    live = reality.live_instances(vm_id)
    if len(live) > 1:
        out.add("duplicate_instances", f"{len(live)} live instances carry this source: {', '.join(_ids(live))}")
    if run_id is None:
        return
    ours = reality.resources_of(vm_id, run_id)
    others = [r for r in reality.resources_of(vm_id) if r["run_id"] != run_id
              and (r["kind"] != "instance" or r["state"] not in DEAD_INSTANCE_STATES)]
    for resource in others:
        out.add("aws_other_run", f"{resource['kind']} {resource['id']} of run {resource['run_id'] or '(none)'} "
                                 f"carries this source (the journal's run is {run_id})")
    recorded = finished.get("launch_instance", {}).get("instance_id")
    mine = [r for r in ours if r["kind"] == "instance" and r["state"] not in DEAD_INSTANCE_STATES]
    if state == "completed":
        if not mine:
            out.add("completed_without_instance", f"the journal says completed (instance {recorded}), but no live "
                                                  "instance of the run carries this source")
        return
    if state == "rolled_back":
        left = [r for r in ours if r["kind"] != "instance" or r["state"] not in DEAD_INSTANCE_STATES]
        if left:
            out.add("aws_after_rollback", "the journal says rolled back, but these remain: "
                                          + ", ".join(f"{r['kind']} {r['id']}" for r in left))
        return
    known = known_resource_ids(finished)
    # a phase that started and did not finish explains what it and the phases after it left (resume finds them)
    order = list(_MADE_BY.values())
    first_open = min((order.index(p) for p in unfinished if p in order), default=len(order))
    for resource in ours:
        made_by = _MADE_BY.get(resource["kind"])
        dead = resource["kind"] == "instance" and resource["state"] in DEAD_INSTANCE_STATES
        if made_by is None or dead or resource["id"] in known or order.index(made_by) >= first_open:
            continue
        out.add("aws_not_in_journal", f"{resource['kind']} {resource['id']} of the run carries this source; the "
                                      f"journal ({out.label(state)}) does not record it")
    if recorded is not None and str(recorded) not in _ids(mine):
        out.add("instance_missing", f"the journal launched instance {recorded}, which is not live")


def compare(plan: RunPlan, journal: JournalView | None, reality: Reality) -> list[Drift]:
    """Every disagreement, per VM in plan order (`journal` None: a lost journal, which knows nothing)."""
    drift: list[Drift] = []
    run_id = journal.run_id if journal is not None else None
    for wave in plan.waves:
        for vm_id in wave.vms:
            out = _Findings(plan.vm_index[vm_id], wave.id, journal is None)
            state = journal.state(vm_id) if journal else "pending"  # a lost journal knows nothing
            finished = journal.finished("vm", vm_id) if journal else {}
            unfinished = journal.unfinished("vm", vm_id) if journal else set()
            source = reality.sources.get(vm_id)
            _source_drift(out, state, finished, unfinished, source)
            _power_drift(out, state, finished, unfinished, source)
            if wave.method == "cold":
                _cold_drift(out, state, finished, unfinished, reality.targets.get(vm_id, []))
            elif wave.method == "replatform":
                _replatform_drift(out, state, finished, unfinished, run_id, reality)
                if run_id is None and reality.resources_of(vm_id):
                    out.add("aws_not_in_journal", "AWS resources carry this source: " + ", ".join(
                        f"{r['kind']} {r['id']} (run {r['run_id']})" for r in reality.resources_of(vm_id)))
            drift.extend(out.items)
    return drift
