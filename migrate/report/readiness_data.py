"""The report's readiness section: each planned VM's verdict for its wave's method, and the rules' findings.

From plan.yaml's `readiness` notes (`migrate plan` writes them); where the plan has none, or its notes do not
cover a VM's method (a reviewer changed the wave's method since), computed from the inventory with the same
catalog (migrate.engine.readiness_notes). Without notes and without an inventory there is no section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from migrate.core.models.inventory import Inventory
from migrate.engine.readiness_context import Context
from migrate.engine.readiness_notes import plan_readiness, vm_readiness
from migrate.report.model import ReadinessFinding, ReadinessVerdict, ReadinessVm, ReportReadiness
from planners.plan_model import Plan, Readiness

__all__ = ["report_readiness"]

_ORDER: dict[str, int] = {"not_ready": 0, "ready_with_warnings": 1, "not_assessed": 2, "ready": 3}


class _Verdicts:
    """Verdicts from one set of notes (indexed by VM id once)."""

    def __init__(self, notes: Readiness) -> None:
        self.notes = notes
        self.index = {n.id: n for n in notes.vms}

    def of(self, vm_id: str, method: str) -> tuple[ReadinessVerdict, list[ReadinessFinding]]:
        verdict, found = vm_readiness(self.notes, vm_id, method, index=self.index)
        return verdict, [ReadinessFinding(rule=f.rule, status=f.status, message=f.message) for f in found]

    def name(self, vm_id: str) -> str | None:
        note = self.index.get(vm_id)
        return note.name if note is not None else None


def report_readiness(plan: Plan, inventory: Inventory | None, names: Mapping[str, str]) -> ReportReadiness | None:
    """The section for `plan` (`names`: VM id -> the name the report shows)."""
    if plan.readiness is None and inventory is None:
        return None
    noted = _Verdicts(plan.readiness) if plan.readiness is not None else None
    known = {vm.id for vm in inventory.vms if not vm.template} if inventory is not None else set()
    computed: _Verdicts | None = None
    used: set[str] = set()
    counts: dict[ReadinessVerdict, int] = {"ready": 0, "ready_with_warnings": 0, "not_ready": 0, "not_assessed": 0}
    rows: list[ReadinessVm] = []
    for wave in plan.waves:
        for vm_id in wave.vms:
            verdict: ReadinessVerdict = "not_assessed"
            found: list[ReadinessFinding] = []
            if noted is not None:
                verdict, found = noted.of(vm_id, wave.method)
                if verdict != "not_assessed":
                    used.add("plan")
            if verdict == "not_assessed" and vm_id in known and inventory is not None:
                if computed is None:
                    computed = _Verdicts(plan_readiness(plan, Context.of(inventory)))
                verdict, found = computed.of(vm_id, wave.method)
                if verdict != "not_assessed":
                    used.add("inventory")
            counts[verdict] += 1
            if verdict != "ready":
                name = names.get(vm_id, vm_id)
                if name == vm_id and noted is not None:   # no inventory nor vm_names: the note knows the name
                    name = noted.name(vm_id) or vm_id
                rows.append(ReadinessVm(id=vm_id, name=name, wave=wave.id, method=wave.method, verdict=verdict,
                                        findings=found))
    rows.sort(key=lambda r: (_ORDER[r.verdict], r.wave, r.name, r.id))
    source: Literal["plan", "inventory", "plan and inventory"] = (
        "plan and inventory" if len(used) == 2 else "inventory" if used == {"inventory"} else "plan")
    skipped = {**(noted.notes.not_assessed if noted is not None and "plan" in used else {}),
               **(computed.notes.not_assessed if computed is not None else {})}
    return ReportReadiness(source=source, counts=counts, not_assessed=skipped, vms=rows)
