"""Readiness notes of a plan: each planned VM against the readiness catalog, for the method its wave gives it.

`plan_readiness` computes plan.yaml's `readiness` section (planners.plan_model.Readiness, plain data the plan
writer only serialises): a wave that sets `method` has its VMs assessed for that method; a wave that does not
(`migrate plan` leaves the choice to reviewers) for every method of the catalog. Only VMs with findings get a
note, sorted by name then id, so the section stays small and diffs stay quiet: one `verdict` when every method
agrees, and a fact the inventory lacks (tools status, CBT, ...) as its rule id under `unknown`, its message once
in the section's `unknown_facts` (with the VMs it concerns). `vm_readiness` reads a VM's verdict and findings for
a method back from the notes (the report), in either form.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal

from migrate.engine.readiness import METHODS, Status
from migrate.engine.readiness_assess import VmAssessment, assess
from migrate.engine.readiness_context import Context
from planners.plan_model import Plan, Readiness, ReadinessFinding, ReadinessVerdict, UnknownFact, VmReadiness

__all__ = ["VERDICTS", "assessed_methods", "note_verdicts", "plan_readiness", "summary_line", "vm_readiness",
           "with_readiness"]

VERDICTS: tuple[ReadinessVerdict, ...] = ("ready", "ready_with_warnings", "not_ready")
_LABEL = {"not_ready": "not ready", "ready_with_warnings": "with warnings", "ready": "ready"}


def assessed_methods(plan: Plan, ids: dict[str, str]) -> dict[str, list[str]]:
    """VM id -> the catalog methods to assess it for: its wave's method when the wave sets one (a method the
    catalog does not know, e.g. noop: none), else every method. `ids` maps the plan's VM references to ids."""
    methods: dict[str, list[str]] = {}
    for wave in plan.waves:
        pinned = "method" in wave.model_fields_set
        wanted = ([wave.method] if wave.method in METHODS else []) if pinned else list(METHODS)
        for ref in wave.vms:
            if ref in ids:
                methods[ids[ref]] = wanted
    return methods


def _findings(item: VmAssessment, methods: list[str]) -> list[ReadinessFinding]:
    """Each distinct finding once, with the methods it concerns when not all of `methods`."""
    seen: dict[tuple[str, Status, str], list[str]] = {}
    for method in methods:
        for f in item.methods[method].findings:
            seen.setdefault((f.rule, f.status, f.message), []).append(method)
    return [ReadinessFinding(rule=rule, status=status, message=message, methods=None if len(on) == len(methods) else on)
            for (rule, status, message), on in seen.items()]


def _on(finding: ReadinessFinding, methods: list[str]) -> tuple[str, ...]:
    """The methods a finding of a VM assessed for `methods` concerns."""
    return tuple(methods) if finding.methods is None else tuple(finding.methods)


def _unknown_facts(found: list[tuple[list[str], list[ReadinessFinding]]], union: list[str]
                   ) -> dict[str, UnknownFact]:
    """Rule id -> its most frequent unknown message (ties: the first in sort order), the methods that message
    concerned on any VM, and the VMs with the rule's facts unknown (any message)."""
    messages: dict[str, Counter[str]] = {}
    vms: Counter[str] = Counter()
    for _, findings in found:
        unknown = [f for f in findings if f.status == "unknown"]
        vms.update({f.rule for f in unknown})
        for rule, message in {(f.rule, f.message) for f in unknown}:
            messages.setdefault(rule, Counter())[message] += 1
    facts = {}
    for rule in sorted(messages):
        message = min(messages[rule], key=lambda m: (-messages[rule][m], m))
        on = {m for methods, findings in found for f in findings
              if f.status == "unknown" and f.rule == rule and f.message == message for m in _on(f, methods)}
        facts[rule] = UnknownFact(vms=vms[rule], message=message,
                                  methods=None if on >= set(union) else [m for m in union if m in on])
    return facts


def _note(item: VmAssessment, methods: list[str], findings: list[ReadinessFinding], union: list[str],
          facts: dict[str, UnknownFact]) -> VmReadiness:
    """The VM's note: one verdict when every method of `union` was assessed and agrees; an unknown finding with
    its rule's usual message and methods as a rule id under `unknown`, any other finding in full."""
    unknown: list[str] = []
    kept: list[ReadinessFinding] = []
    for f in findings:
        fact = facts.get(f.rule)
        if (f.status == "unknown" and fact is not None and f.message == fact.message
                and _on(f, methods) == tuple(m for m in methods if fact.methods is None or m in fact.methods)):
            if f.rule not in unknown:
                unknown.append(f.rule)
        else:
            kept.append(f)
    verdicts = {m: item.methods[m].verdict for m in methods}
    one = len(set(verdicts.values())) == 1 and set(methods) == set(union)
    return VmReadiness(id=item.id, name=item.name, verdict=verdicts[methods[0]] if one else None,
                       verdicts=None if one else verdicts, unknown=unknown, findings=kept)


def plan_readiness(plan: Plan, context: Context) -> Readiness:
    """The readiness notes of `plan`'s VMs (those of the context's inventory; templates are never assessed)."""
    inventory = context.inventory
    ids = {vm.name: vm.id for vm in inventory.vms} | {vm.id: vm.id for vm in inventory.vms}
    per_vm = assessed_methods(plan, ids)
    union = [m for m in METHODS if any(m in wanted for wanted in per_vm.values())]
    result = assess(context, methods=union, planned={vm: ",".join(wanted) for vm, wanted in per_vm.items()})
    # (assess's `planned` limits it to the plan's VMs; its planned_method is not used here)
    summary: dict[str, dict[ReadinessVerdict, int]] = {m: dict.fromkeys(VERDICTS, 0) for m in union}
    found = []
    for item in result.vms:
        methods = per_vm[item.id]
        for method in methods:
            summary[method][item.methods[method].verdict] += 1
        findings = _findings(item, methods)
        if findings:
            found.append((item, methods, findings))
    facts = _unknown_facts([(methods, findings) for _, methods, findings in found], union)
    notes = [_note(item, methods, findings, union, facts) for item, methods, findings in found]
    notes.sort(key=lambda note: (note.name or "", note.id))
    return Readiness(methods=union, summary=summary, not_assessed=result.not_assessed, unknown_facts=facts,
                     vms=notes)


def with_readiness(plan: Plan, context: Context) -> Plan:
    """`plan` with its readiness notes (re)computed."""
    return plan.model_copy(update={"readiness": plan_readiness(plan, context)})


def note_verdicts(readiness: Readiness, note: VmReadiness) -> dict[str, ReadinessVerdict]:
    """Method -> verdict of a note, whichever form it has (`verdict`: the same for every method of the section)."""
    if note.verdicts is not None:
        return note.verdicts
    return dict.fromkeys(readiness.methods, note.verdict) if note.verdict is not None else {}


def vm_readiness(readiness: Readiness, vm_id: str, method: str, *, index: Mapping[str, VmReadiness] | None = None
                 ) -> tuple[ReadinessVerdict | Literal["not_assessed"], list[ReadinessFinding]]:
    """A VM's verdict for `method` and the findings that concern it (its unknown facts with their section
    message, after its other findings), from the notes; `not_assessed` when the notes do not cover that method for
    the VM (the plan was edited since, or the catalog has no such method). `index`: the notes by VM id, for many
    look-ups."""
    note = (index if index is not None else {n.id: n for n in readiness.vms}).get(vm_id)
    if note is None:
        return ("ready" if method in readiness.methods else "not_assessed"), []
    verdicts = note_verdicts(readiness, note)
    verdict = verdicts.get(method)
    if verdict is None:
        return "not_assessed", []
    found = [f for f in note.findings if f.methods is None or method in f.methods]
    for rule in note.unknown:
        fact = readiness.unknown_facts.get(rule)
        if fact is None:   # an edited plan: the rule id alone
            found.append(ReadinessFinding(rule=rule, status="unknown", message="facts unknown"))
        elif fact.methods is None or method in fact.methods:
            on = [m for m in verdicts if fact.methods is None or m in fact.methods]
            found.append(ReadinessFinding(rule=rule, status="unknown", message=fact.message,
                                          methods=None if len(on) == len(verdicts) else on))
    return verdict, found


def summary_line(summary: dict[str, dict[str, int]], methods: Iterable[str] | None = None) -> str:
    """'readiness: cold 1 not ready, 2 with warnings, 5 ready; warm ...' (methods in the summary's order)."""
    parts = []
    for method in methods if methods is not None else summary:
        counts = summary.get(method, {})
        shown = ", ".join(f"{counts.get(v, 0)} {_LABEL[v]}" for v in ("not_ready", "ready_with_warnings", "ready"))
        parts.append(f"{method} {shown}")
    return "readiness: " + ("; ".join(parts) if parts else "nothing assessed")
