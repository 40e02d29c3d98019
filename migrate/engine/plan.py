"""What the engine runs: waves in order, each a list of VMs, plus the per-VM facts the limits need.

`RunPlan` is the engine's own, small view of a plan (plan.yaml is adapted to it by the caller). Its
digest covers *what* moves and *how* (waves, VMs, facts, methods and the playbooks' contents), not
*when* or *how fast*: a resume may change windows, policies and limits, never the work itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from migrate.core.models.base import FrozenModel
from migrate.engine.validation import Loc, raise_problems

__all__ = ["PLAN_VERSION", "Policy", "RunPlan", "VmFacts", "WavePlan", "WaveWindow", "plan_digest"]

PLAN_VERSION: Literal[1] = 1
Policy = Literal["continue", "pause", "stop"]



class WaveWindow(FrozenModel):
    """A cutover window: the wave starts no earlier than `start` and starts no VM after `end`."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> WaveWindow:
        if self.start >= self.end:
            raise ValueError(f"start ({self.start.isoformat()}) must be before end ({self.end.isoformat()})")
        return self

    def contains(self, moment: datetime) -> bool:
        """True if `moment` is inside the window."""
        return self.start <= moment < self.end


class VmFacts(FrozenModel):
    """One VM as the engine sees it: its id, the keys its concurrency limits use, and facts for its phases."""

    id: str = Field(..., min_length=1, description="stable id (vCenter instanceUuid)")
    name: str = ""
    source_host: str | None = None
    datastores: list[str] = Field(default_factory=list)
    target_cluster: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict, description="plain data the phases read (hardware, NICs...)")

    @property
    def source(self) -> str | None:
        """The name of the source (site.yaml `sources`) the VM comes from; None with a single source."""
        value = self.facts.get("source")
        return value if isinstance(value, str) else None


class WavePlan(FrozenModel):
    """One wave: its VMs in order, the method that moves them, its window and its failure policy."""

    id: int = Field(..., ge=1)
    name: str = ""
    vms: list[str]
    method: str = Field("cold", description="the migration method (migrate.engine.methods)")
    window: WaveWindow | None = None
    policy: Policy = Field("continue", description="when a VM fails: continue, pause the wave, or stop the run")
    # replicating methods (warm): seconds between precopy cycles or `adaptive`, and per-VM cutover times;
    # like the window, not part of the digest (a resume may change when, not what)
    precopy_interval: float | Literal["adaptive"] = Field(3600.0, description="seconds, or adaptive")
    cutover_at: dict[str, AwareDatetime] = Field(default_factory=dict, description="VM id -> cutover time")


class RunPlan(FrozenModel):
    """Waves in execution order and the facts of every VM they move."""

    version: Literal[1] = PLAN_VERSION
    waves: list[WavePlan] = Field(..., min_length=1)
    vms: list[VmFacts]

    @model_validator(mode="after")
    def _consistent(self) -> RunPlan:
        problems: list[tuple[Loc, str]] = []
        facts: dict[str, int] = {}
        for i, vm in enumerate(self.vms):
            if vm.id in facts:
                problems.append((("vms", i, "id"), f"VM {vm.id!r} is listed twice (also vms[{facts[vm.id]}])"))
            facts.setdefault(vm.id, i)
        waves: dict[int, int] = {}
        placed: dict[str, int] = {}
        for w, wave in enumerate(self.waves):
            if wave.id in waves:
                problems.append((("waves", w, "id"), f"wave id {wave.id} is used twice (also waves[{waves[wave.id]}])"))
            waves.setdefault(wave.id, w)
            for v, vm_id in enumerate(wave.vms):
                if vm_id not in facts:
                    problems.append((("waves", w, "vms", v), f"unknown VM {vm_id!r}: no entry in `vms`"))
                if vm_id in placed:
                    problems.append((("waves", w, "vms", v), f"VM {vm_id!r} is already in wave {placed[vm_id]}"))
                placed.setdefault(vm_id, wave.id)
        problems.extend((("vms", i, "id"), f"VM {vm_id!r} is in no wave")
                        for vm_id, i in facts.items() if vm_id not in placed)
        raise_problems(type(self).__name__, problems)
        return self

    @cached_property
    def vm_index(self) -> dict[str, VmFacts]:
        """VM facts by id."""
        return {vm.id: vm for vm in self.vms}

    def wave(self, wave_id: int) -> WavePlan:
        """The wave with this id."""
        for wave in self.waves:
            if wave.id == wave_id:
                return wave
        raise KeyError(wave_id)


def plan_digest(plan: RunPlan, playbooks: Mapping[str, Any]) -> str:
    """sha256 of what a run does: waves (ids, order, VMs, method), VM facts and the playbooks' contents."""
    content = {
        "version": plan.version,
        "waves": [{"id": w.id, "vms": w.vms, "method": w.method} for w in plan.waves],
        "vms": [vm.model_dump(mode="json") for vm in plan.vms],
        "playbooks": {method: playbooks[method] for method in sorted(playbooks)},
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
