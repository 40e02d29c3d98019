"""Assess every VM of an inventory against every method: ready, ready with warnings, or not ready.

The result (`Assessment`) is what `migrate assess --json` prints; its JSON Schema ships as assess.schema.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import Field

from migrate.core.models.base import StrictModel
from migrate.engine.readiness import METHODS, RULES, Hit, Status
from migrate.engine.readiness_context import Context, context_hits
from migrate.engine.readiness_rules import vm_hits

__all__ = ["ASSESS_VERSION", "Assessment", "Finding", "MethodVerdict", "RuleInfo", "Verdict", "VmAssessment",
           "assess", "verdict_of"]

ASSESS_VERSION: Literal[1] = 1
Verdict = Literal["ready", "ready_with_warnings", "not_ready"]


class Finding(StrictModel):
    rule: str = Field(..., description="rule id (the catalog's `rules[].id`; a precheck's `check` name)")
    status: Status = Field(..., description="block, warn, or unknown (a fact the rule reads is missing)")
    message: str


class MethodVerdict(StrictModel):
    verdict: Verdict
    findings: list[Finding] = Field(default_factory=list)


class VmAssessment(StrictModel):
    id: str
    name: str
    planned_method: str | None = Field(None, description="the method of the VM's wave in --plan")
    methods: dict[str, MethodVerdict]


class RuleInfo(StrictModel):
    id: str
    severity: Literal["block", "warn"] = Field(..., description="the worst the rule finds")
    methods: list[str]
    facts: list[str] = Field(..., description="inventory facts the rule reads")
    fix: str
    title: str


class Assessment(StrictModel):
    """The whole `migrate assess --json` document."""

    version: Literal[1] = ASSESS_VERSION
    inventory: str
    target_inventory: str | None = None
    config: str | None = None
    plan: str | None = None
    methods: list[str]
    rules: list[RuleInfo]
    not_assessed: dict[str, str] = Field(default_factory=dict, description="rule id -> the input it needs")
    summary: dict[str, dict[Verdict, int]] = Field(..., description="method -> verdict -> VMs")
    vms: list[VmAssessment]


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    statuses = {f.status for f in findings}
    return "not_ready" if "block" in statuses else "ready_with_warnings" if statuses else "ready"


def _per_method(hits: list[Hit], methods: Iterable[str]) -> dict[str, MethodVerdict]:
    verdicts = {}
    for method in methods:
        found = [Finding(rule=h.rule, status=h.status, message=h.message) for h in hits
                 if method in (h.methods or RULES[h.rule].methods)]
        verdicts[method] = MethodVerdict(verdict=verdict_of(found), findings=found)
    return verdicts


def assess(context: Context, *, methods: Iterable[str] = METHODS, planned: Mapping[str, str] | None = None,
           inventory_file: str = "", target_file: str | None = None, config_file: str | None = None,
           plan_file: str | None = None) -> Assessment:
    """Every VM of the context's inventory (those of `planned` only, when given) against `methods`."""
    methods = list(methods)
    free = {d.name: d.free_bytes for d in context.inventory.datastores}
    skipped = context.not_assessed()
    vms = []
    for vm in context.inventory.vms:
        if vm.template or (planned is not None and vm.id not in planned):
            continue
        hits = [h for h in vm_hits(vm) + context_hits(vm, context, free) if h.rule not in skipped]
        vms.append(VmAssessment(id=vm.id, name=vm.name, planned_method=(planned or {}).get(vm.id),
                                methods=_per_method(hits, methods)))
    summary: dict[str, dict[Verdict, int]] = {m: {"ready": 0, "ready_with_warnings": 0, "not_ready": 0}
                                              for m in methods}
    for item in vms:
        for method, result in item.methods.items():
            summary[method][result.verdict] += 1
    rules = [RuleInfo(id=r.id, severity=r.severity, methods=list(r.methods), facts=list(r.facts), fix=r.fix,
                      title=r.title) for r in RULES.values()]
    return Assessment(inventory=inventory_file, target_inventory=target_file, config=config_file, plan=plan_file,
                      methods=methods, rules=rules, not_assessed=skipped, summary=summary, vms=vms)
