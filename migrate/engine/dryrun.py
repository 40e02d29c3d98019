"""Dry-run: the ordered list of actions a run would take, per wave and VM, with no side effects.

It walks the same machines as a real run (every transition is checked by them) in plan order, one VM
after another (a real run interleaves VMs of a wave under the limits). Given phase functions, the
precheck phases run too (with `ctx.dry_run` set: they must only read); a VM whose prechecks fail
shows its failure and no further action. The output has no times or random ids, so two dry-runs of
the same plan and playbooks are equal and their JSON can be diffed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from migrate.core.errors import InputError, Problem
from migrate.core.log import get_logger
from migrate.core.ports import Adapters
from migrate.core.redact import redact
from migrate.engine.context import PhaseContext, PhaseRegistry
from migrate.engine.journal import error_info, step_key
from migrate.engine.lifecycle import VmModel, WaveModel, vm_lifecycle, wave_lifecycle
from migrate.engine.methods import Stage, get_method
from migrate.engine.plan import RunPlan, WavePlan
from migrate.engine.playbook import Hook, Playbook
from migrate.engine.run_state import WaveStep, WaveStepContext
from migrate.engine.timing import CancelToken, SystemClock

__all__ = ["DRY_RUN_ID", "plan_actions"]

DRY_RUN_ID = "dry-run"


class _Walk:
    """Collects actions while walking the machines."""

    def __init__(self, plan: RunPlan, books: Mapping[str, Playbook], prechecks: Mapping[str, PhaseRegistry] | None,
                 adapters: Adapters, wave_steps: Sequence[tuple[str, WaveStep]] = ()) -> None:
        self.plan = plan
        self.wave_steps = wave_steps
        self.books = books
        self.prechecks = prechecks
        self.adapters = adapters
        self.actions: list[dict[str, Any]] = []
        self.vm_machine = vm_lifecycle(self._transition)
        self.wave_machine = wave_lifecycle(self._transition)
        self.log = get_logger("migrate.engine.dryrun").bind(run_id=DRY_RUN_ID)

    def _add(self, **action: Any) -> None:
        self.actions.append({"seq": len(self.actions) + 1, **action})

    def _transition(self, kind: str, model: Any, trigger: str, src: Enum, dst: Enum, data: Mapping[str, Any]) -> None:
        wave, vm = (model.wave, model.id) if kind == "vm" else (model.id, None)
        self._add(wave=wave, vm=vm, action="transition", kind=kind, trigger=trigger, src=src.value, dst=dst.value,
                  **({"data": redact(dict(data))} if data else {}))

    def _hooks(self, wave: WavePlan, vm: str | None, when: str, hooks: list[Hook]) -> None:
        for index, hook in enumerate(hooks):
            self._add(wave=wave.id, vm=vm, action="hook", scope="vm" if vm else "wave", when=when,
                      step=f"hook:{when}:{index}:{hook.kind}", hook=hook.model_dump(mode="json", exclude_none=True))

    def _phase(self, wave: WavePlan, vm: VmModel, phase: str, prior: dict[str, Any]) -> dict[str, Any] | None:
        facts = self.plan.vm_index[vm.id]
        action: dict[str, Any] = {
            "wave": wave.id, "vm": vm.id, "action": "phase", "phase": phase,
            "stage": get_method(wave.method).phase(phase).stage.value, "key": step_key(DRY_RUN_ID, "vm", vm.id, phase),
            "inputs": redact({"vm": facts.model_dump(mode="json"), "wave": wave.id, "method": wave.method}),
        }
        fn = (self.prechecks or {}).get(wave.method, {}).get(phase)
        if fn is None or action["stage"] != Stage.PRECHECK.value:
            self._add(**action)
            return None
        ctx = PhaseContext(run_id=DRY_RUN_ID, wave=wave, vm=facts, phase=phase, attempt=1, key=action["key"],
                           adapters=self.adapters, prior=prior, log=self.log.bind(wave=wave.id, vm=vm.id, phase=phase),
                           clock=SystemClock(), cancel=CancelToken(), dry_run=True)
        try:
            outputs = dict(fn(ctx))
        except Exception as exc:  # a failed precheck, as in a real run
            error = error_info(exc)
            self._add(**action, error=error)
            return error
        prior[phase] = outputs
        self._add(**action, outputs=redact(outputs))
        return None

    def wave(self, wave: WavePlan) -> None:
        book = self.books[wave.method]
        method = get_method(wave.method)
        stages = {s: [p for p in book.phases if method.phase(p).stage is s] for s in Stage}
        model = self.wave_machine.add(WaveModel(id=wave.id))
        self.wave_machine.fire(model, "start")
        if wave.window is not None:
            self._add(wave=wave.id, vm=None, action="window", start=wave.window.start.isoformat(),
                      end=wave.window.end.isoformat())
        self._hooks(wave, None, "pre", book.hooks.wave.pre)
        for name, fn in self.wave_steps:
            before = self.plan.waves[:self.plan.waves.index(wave)]
            ctx = WaveStepContext(run_id=DRY_RUN_ID, wave=wave, vms=[self.plan.vm_index[v] for v in wave.vms],
                                  journal=None, dry_run=True,
                                  earlier=[[self.plan.vm_index[v] for v in w.vms] for w in before])
            try:
                self._add(wave=wave.id, vm=None, action="wave_step", step=name, outputs=redact(dict(fn(ctx))))
            except Exception as exc:  # a real run fails the wave here
                self._add(wave=wave.id, vm=None, action="wave_step", step=name, error=error_info(exc))
        vms = [self.vm_machine.add(VmModel(id=vm_id, wave=wave.id)) for vm_id in wave.vms]
        priors: dict[str, dict[str, Any]] = {vm.id: {} for vm in vms}
        for vm in vms:
            error = None
            for phase in stages[Stage.PRECHECK]:
                error = self._phase(wave, vm, phase, priors[vm.id])
                if error is not None:
                    self.vm_machine.fire(vm, "fail", error=error, phase=phase)
                    break
            if error is None:
                self.vm_machine.fire(vm, "pass_prechecks")
        failed = sum(1 for vm in vms if vm.state.value == "failed")
        if failed and wave.policy != "continue":
            trigger = "pause" if wave.policy == "pause" else "fail"
            if trigger == "fail":
                for vm in vms:
                    if vm.state.value == "prechecked":
                        self.vm_machine.fire(vm, "skip", reason=f"wave {wave.id} stopped (policy stop)")
            self.wave_machine.fire(model, trigger, reason=f"{failed} VM(s) failed prechecks (policy {wave.policy})")
            self._add(wave=wave.id, vm=None, action="note",
                      message=f"a real run stops here (policy {wave.policy}); the dry-run goes on to list later waves")
            return
        self.wave_machine.fire(model, "run")
        for vm in vms:
            if vm.state.value != "prechecked":
                continue
            self.vm_machine.fire(vm, "make_ready")
            self._hooks(wave, vm.id, "pre", book.hooks.vm.pre)
            if stages[Stage.REPLICATE]:
                self.vm_machine.fire(vm, "start_replication")
                for phase in stages[Stage.REPLICATE]:
                    self._phase(wave, vm, phase, priors[vm.id])
            self.vm_machine.fire(vm, "start_cutover")
            for phase in stages[Stage.CUTOVER]:
                self._phase(wave, vm, phase, priors[vm.id])
            self.vm_machine.fire(vm, "start_verify")
            for phase in stages[Stage.VERIFY]:
                self._phase(wave, vm, phase, priors[vm.id])
            self._hooks(wave, vm.id, "post", book.hooks.vm.post)
            self.vm_machine.fire(vm, "complete")
        self._hooks(wave, None, "post", book.hooks.wave.post)
        done = sum(1 for vm in vms if vm.state.value == "completed")
        self.wave_machine.fire(model, "complete" if done == len(vms) else "finish_partial" if done else "fail")


def plan_actions(plan: RunPlan, playbook: Playbook | Mapping[str, Playbook], *,
                 prechecks: Mapping[str, PhaseRegistry] | None = None, adapters: Adapters | None = None,
                 wave_steps: Sequence[tuple[str, WaveStep]] = ()) -> list[dict[str, Any]]:
    """The actions a run of `plan` would take, in order (one playbook for all waves, or one per method)."""
    books: dict[str, Playbook] = {playbook.method: playbook} if isinstance(playbook, Playbook) else dict(playbook)
    missing = sorted({w.method for w in plan.waves} - set(books))
    if missing:
        raise InputError([Problem("playbooks", method, f"no playbook for method {method!r}") for method in missing])
    walk = _Walk(plan, books, prechecks, adapters or Adapters(), wave_steps)
    for wave in plan.waves:
        walk.wave(wave)
    return walk.actions
