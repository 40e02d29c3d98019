"""Dry-run: the ordered, stable list of actions, walking the same machines and prechecks without side effects."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from adapters.noop.estate import NoopEstate
from migrate.core.errors import InputError, OperationalError
from migrate.engine import Playbook, RunPlan, VmFacts, WavePlan, load_playbook, plan_actions
from migrate.engine.context import PhaseContext
from migrate.engine.noop import NOOP
from tests.unit.test_engine_helpers import _quiet_logs, make_plan

__all__ = ["_quiet_logs"]


def _summary(actions: list[dict[str, Any]]) -> list[str]:
    out = []
    for a in actions:
        who = a["vm"] or f"wave{a['wave']}"
        detail = a.get("trigger") or a.get("phase") or a.get("step") or a["action"]
        out.append(f"{who}:{detail}")
    return out


def test_actions_are_ordered_per_wave_and_vm() -> None:
    """Wave start, prechecks of each VM, wave run, then each VM's cutover and verification, then wave end."""
    plan = make_plan([2])
    book = Playbook.model_validate({**load_playbook("noop").model_dump(mode="json"),
                                    "hooks": {"wave": {"pre": [{"approval": {"prompt": "go?"}}]},
                                              "vm": {"post": [{"wait": {"seconds": 1}}]}}})
    summary = _summary(plan_actions(plan, book))
    cutover = ["power_off_source", "copy_disks", "create_target_vm", "tag_target", "power_on_target"]
    per_vm = (["make_ready", "start_cutover", *cutover, "start_verify", "verify", "mark_source_migrated",
               "hook:post:0:wait", "complete"])
    assert summary == [
        "wave1:start", "wave1:hook:pre:0:approval",
        "vm-0000:precheck", "vm-0000:pass_prechecks", "vm-0001:precheck", "vm-0001:pass_prechecks",
        "wave1:run",
        *[f"vm-0000:{x}" for x in per_vm], *[f"vm-0001:{x}" for x in per_vm],
        "wave1:complete",
    ]


def test_two_dry_runs_are_identical_and_json() -> None:
    """The same plan gives byte-identical JSON twice (no times, no random ids)."""
    plan = make_plan([3, 2])
    first = json.dumps(plan_actions(plan, load_playbook("noop")), sort_keys=True)
    second = json.dumps(plan_actions(make_plan([3, 2]), {"noop": load_playbook("noop")}), sort_keys=True)
    assert first == second
    actions = json.loads(first)
    assert [a["seq"] for a in actions] == list(range(1, len(actions) + 1))
    keys = [a["key"] for a in actions if a["action"] == "phase"]
    assert keys[0] == "dry-run:vm-0000:precheck" and len(keys) == len(set(keys)) == 5 * 8


def test_prechecks_run_read_only_and_show_outputs() -> None:
    """With phase functions, prechecks run (and only they): outputs shown, the estate untouched."""
    plan = make_plan([5])
    estate = NoopEstate(plan.vms)
    seen: list[bool] = []

    def precheck(ctx: PhaseContext) -> Mapping[str, Any]:
        seen.append(ctx.dry_run)
        if ctx.vm.id == "vm-0002":
            raise OperationalError("USB device attached")
        return NOOP.functions["precheck"](ctx)

    actions = plan_actions(plan, load_playbook("noop"), prechecks={"noop": {**NOOP.functions, "precheck": precheck}},
                           adapters=estate.adapters())
    assert estate.effects == [] and seen == [True] * 5
    prechecks = {a["vm"]: a for a in actions if a.get("phase") == "precheck"}
    assert prechecks["vm-0004"]["outputs"] == {"power_state": "poweredOff"}
    assert prechecks["vm-0002"]["error"]["message"] == "USB device attached"
    assert not [a for a in actions if a["vm"] == "vm-0002" and a.get("stage") == "cutover"]
    assert [a["trigger"] for a in actions if a["vm"] == "vm-0002" and a["action"] == "transition"] == ["fail"]
    assert [a for a in actions if a["vm"] is None and a["action"] == "transition"][-1]["trigger"] == "finish_partial"


def test_policy_stop_is_shown_and_later_waves_listed() -> None:
    """Under stop, a failed precheck shows the wave failing and a note; later waves are still listed."""
    plan = make_plan([2, 1], policy="stop")

    def precheck(ctx: PhaseContext) -> Mapping[str, Any]:
        if ctx.vm.id == "vm-0000":
            raise OperationalError("name collision on target")
        return {}

    actions = plan_actions(plan, load_playbook("noop"), prechecks={"noop": {"precheck": precheck}})
    wave1 = [a for a in actions if a["wave"] == 1]
    assert [a["trigger"] for a in wave1 if a["action"] == "transition" and a["kind"] == "wave"] == ["start", "fail"]
    assert any(a["action"] == "note" and "policy stop" in a["message"] for a in wave1)
    assert ("vm-0001", "skip") in [(a["vm"], a.get("trigger")) for a in wave1]
    assert [a for a in actions if a["wave"] == 2][-1]["trigger"] == "complete"


def test_inputs_are_redacted_and_windows_listed() -> None:
    """Secrets in VM facts never show; a wave's window is listed with the wave."""
    vm = VmFacts(id="vm-1", facts={"console_password": "s3cret!", "os": "linux"})
    plan = RunPlan(waves=[WavePlan(id=1, vms=["vm-1"], method="noop",
                                   window={"start": "2030-01-01T20:00:00Z", "end": "2030-01-02T04:00:00Z"})],
                   vms=[vm])
    actions = plan_actions(plan, load_playbook("noop"))
    assert "s3cret!" not in json.dumps(actions)
    assert actions[1] == {"seq": 2, "wave": 1, "vm": None, "action": "window",
                          "start": "2030-01-01T20:00:00+00:00", "end": "2030-01-02T04:00:00+00:00"}


def test_missing_playbook_is_bad_input() -> None:
    """A wave whose method has no playbook is refused."""
    with pytest.raises(InputError, match="no playbook for method 'cold'"):
        plan_actions(make_plan([1], method="cold"), load_playbook("noop"))
