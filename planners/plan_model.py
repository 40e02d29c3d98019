"""The wave-planning formats: the constraints file and plan.yaml, as pydantic models (versioned, strict).

Constraints (`constraints.yaml`, also embedded in every plan under `constraints`):

```yaml
version: 1
max_vms: 50                 # VMs per wave
max_gb: 20000               # disk GiB per wave
ramp: [5, 15]               # wave 1 at most 5 VMs, wave 2 at most 15, then max_vms
precedence:                 # `before` moves in a strictly earlier wave than `after`
  - {before: app:ldap, after: app:shop, reason: "directory first"}
  - {before: crm-db-01, after: crm-app-01}
pins:
  - {vm: shop-db-01, wave: 2}
  - {vm: old-ftp-01, exclude: "retired in Q3"}
windows:                    # cutover windows, given to waves in order
  - {start: "2025-03-01T20:00:00Z", end: "2025-03-02T04:00:00Z"}
keep_apart:
  - {a: crm-web-01, b: crm-web-02, reason: "HA pair"}
classify: {environment: {tag: env}}        # see planners.rule_model
rules:                      # policy rules: hard, or a cost per violation
  environment_order: {order: [dev, test, prod], hard: true}
  dependencies_first: {weight: 50}
seed: 0
```

VM references are a VM id, an exact VM name, or `app:NAME` (every VM whose app is NAME).

plan.yaml's `readiness` section (`Readiness`) holds notes for reviewers: each planned VM some readiness rule
found something on, with its verdict (one, or per method), the rule ids whose facts are unknown (each explained
once in `unknown_facts`) and the other findings (migrate.engine.readiness_notes computes them; here they are plain
data). Nothing re-reads them: an edited or older plan without them loads.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from migrate.core.models.base import StrictModel
from migrate.core.models.inventory import MAX_VM_GB, MAX_VMS
from planners.rule_model import Classify, Rules

__all__ = [
    "MAX_SEED",
    "MAX_WAVES",
    "MAX_WAVE_GB",
    "PLAN_VERSION",
    "Constraints",
    "Excluded",
    "KeepApartRule",
    "Pin",
    "Plan",
    "PlanMetrics",
    "PlanSource",
    "PrecedenceRule",
    "Readiness",
    "ReadinessFinding",
    "ReadinessVerdict",
    "RuleOutcome",
    "UnknownFact",
    "Violation",
    "VmReadiness",
    "Wave",
    "WaveFlow",
    "WaveGroup",
    "WaveMetrics",
    "WaveSize",
    "WaveWhy",
    "Window",
]

PLAN_VERSION: Literal[1] = 1

MAX_WAVES = 10_000             # waves of one plan: wave numbers, pins, ramp and window lists
MAX_WAVE_GB = float(MAX_VM_GB)  # disk GiB per wave (1 EiB)
MAX_SEED = 2**63 - 1            # seeds from -2**63 to this
MAX_TOTAL = 2**53              # sums in a plan's sizes and metrics (exact as floats)

Total = Annotated[int, Field(ge=0, le=MAX_TOTAL)]
Amount = Annotated[float, Field(ge=0, le=MAX_TOTAL, allow_inf_nan=False)]
WaveNumber = Annotated[int, Field(ge=1, le=MAX_WAVES)]
VmCap = Annotated[int, Field(ge=1, le=MAX_VMS)]
Seed = Annotated[int, Field(ge=-MAX_SEED - 1, le=MAX_SEED)]


def _reference(value: str) -> str:
    value = value.strip()
    if not value or value == "app:":
        raise ValueError("must name a VM (id or name) or an application (app:NAME)")
    return value


Reference = Annotated[str, AfterValidator(_reference)]


# seconds between two precopy cycles of a replicating method, or `adaptive`
PrecopyInterval = Annotated[float, Field(ge=1, le=43200)] | Literal["adaptive"]


class Window(StrictModel):
    """A cutover window: ISO datetimes with a timezone, start before end."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start >= self.end:
            raise ValueError(f"start ({self.start.isoformat()}) must be before end ({self.end.isoformat()})")
        return self


class PrecedenceRule(StrictModel):
    """`before` moves in a strictly earlier wave than `after` (VM id, VM name or app:NAME)."""

    before: Reference
    after: Reference
    reason: str = ""


class Pin(StrictModel):
    """Puts one VM in a given wave (1-based), or excludes it from the migration with a reason."""

    vm: Reference
    wave: WaveNumber | None = None
    exclude: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Pin:
        if (self.wave is None) == (self.exclude is None):
            raise ValueError("give exactly one of `wave` (a wave number) or `exclude` (a reason)")
        if self.exclude is not None and not self.exclude.strip():
            raise ValueError("`exclude` needs a reason (e.g. \"retired\")")
        if self.vm.startswith("app:"):
            raise ValueError("pins name one VM (id or name), not an application")
        return self


class KeepApartRule(StrictModel):
    """Two VMs that must not move in the same wave."""

    a: Reference
    b: Reference
    reason: str = ""


class Constraints(StrictModel):
    """Everything the planner must respect, plus the seed that makes it deterministic."""

    version: Literal[1] = PLAN_VERSION
    max_vms: VmCap | None = Field(None, description="VMs per wave")
    max_gb: float | None = Field(None, gt=0, le=MAX_WAVE_GB, allow_inf_nan=False, description="disk GiB per wave")
    ramp: list[int] = Field(default_factory=list, max_length=MAX_WAVES,
                            description="VM caps of the first waves, e.g. [5, 15]")
    precedence: list[PrecedenceRule] = Field(default_factory=list)
    pins: list[Pin] = Field(default_factory=list)
    windows: list[Window] = Field(default_factory=list, max_length=MAX_WAVES,
                                  description="cutover windows, given to waves in order")
    keep_apart: list[KeepApartRule] = Field(default_factory=list)
    classify: Classify | None = Field(None, description="where environment, criticality and application come "
                                                        "from (default: tags env, criticality, app)")
    rules: Rules | None = Field(None, description="policy rules, each hard or with a weight")
    seed: Seed = 0

    @field_validator("ramp")
    @classmethod
    def _caps_in_range(cls, value: list[int]) -> list[int]:
        bad = [i for i, cap in enumerate(value) if not 1 <= cap <= MAX_VMS]
        if bad:
            raise ValueError(f"every ramp cap must be at least 1 and at most {MAX_VMS} (entries {bad[:10]})")
        return value


class WaveSize(StrictModel):
    """What a wave moves."""

    vms: Total
    gb: Amount
    vcpu: Total
    memory_mb: Total


class WaveGroup(StrictModel):
    """A must-move-together group inside a wave and the hard ties that make it one."""

    vms: list[str] = Field(..., description="VM names")
    reasons: list[str]


class WaveFlow(StrictModel):
    """One of the heaviest dependencies kept inside a wave."""

    a: str
    b: str
    weight: Amount
    kinds: list[str] = Field(default_factory=list)


class WaveWhy(StrictModel):
    """Why a wave's VMs are together: its must-move groups and its heaviest internal dependencies."""

    groups: list[WaveGroup] = Field(default_factory=list)
    more_groups: Total = 0
    heaviest: list[WaveFlow] = Field(default_factory=list)
    rules: list[str] | None = Field(None, description="how the wave stands with each policy rule")


class Wave(StrictModel):
    """One wave: VMs by id (execution order is the list order of `waves`)."""

    id: WaveNumber
    name: str
    vms: list[str]
    vm_names: list[str] | None = None
    window: Window | None = None
    method: str = "cold"
    instance_types: dict[str, str] = Field(
        default_factory=dict,
        description="replatform waves: VM id or name -> EC2 instance type, overriding right-sizing")
    precopy_interval: PrecopyInterval | None = Field(
        None, description="replicating methods (warm): seconds between precopy cycles (1 to 43200), or "
                          "`adaptive`: the next cycle after min(max(1 h, last cycle / 2), 12 h); default 3600")
    cutover_at: dict[str, AwareDatetime] = Field(
        default_factory=dict,
        description="replicating methods (warm): VM id or name -> when its cutover starts (else the window's "
                    "start, or `migrate cutover`)")
    size: WaveSize | None = None
    why: WaveWhy | None = None


class Excluded(StrictModel):
    """A VM that does not migrate, and why."""

    id: str
    name: str | None = None
    reason: str = Field(..., min_length=1)


class Violation(StrictModel):
    """One broken rule of a plan: where (e.g. `waves[2].vms[5]`), what, and which VMs."""

    field: str
    message: str
    vms: list[str] = Field(default_factory=list)


class WaveMetrics(StrictModel):
    """Per-wave numbers."""

    wave: WaveNumber
    vms: Total
    gb: Amount
    internal_weight: Amount
    cut_weight: Amount


class RuleOutcome(StrictModel):
    """How a plan keeps one policy rule: violations (VMs, or dependencies) and their cost (soft rules)."""

    hard: bool
    weight: Amount | None = None
    violations: Total
    cost: Amount


class PlanMetrics(StrictModel):
    """Plan quality; `violations` counts broken rules (0 for every plan the planner writes)."""

    waves: Total
    lower_bound: Total
    lower_bound_by: dict[str, Total] = Field(default_factory=dict, description="what forces the lower bound")
    cut_weight: Amount
    total_weight: Amount
    cut_fraction: float = Field(..., ge=0, le=1, allow_inf_nan=False)
    exposure: Amount = Field(..., description="sum(w * |wave_u - wave_v|) / sum(w)")
    max_wave_vms: Total
    max_wave_gb: Amount
    per_wave: list[WaveMetrics] = Field(default_factory=list)
    rules: dict[str, RuleOutcome] | None = Field(None, description="policy rules: violations and cost of each")
    rule_cost: Amount | None = Field(None, description="the soft rules' cost, in the cut's unit")
    cost_bound: Amount | None = Field(None, description="no plan of this many waves keeping the same hard rules has "
                                                        "a lower cut_weight + rule_cost")
    cost_bound_by: str | None = Field(None, description="how cost_bound was found")
    violations: Total = 0
    violation_list: SkipJsonSchema[list[Violation]] = Field(default_factory=list, exclude=True)


class PlanSource(StrictModel):
    """Where the plan came from."""

    inventory: str | None = None
    flows: str | None = None
    links: str | None = None
    graph: str | None = None
    hints: str | None = Field(None, description="hints the graph was built with: kind=weight,...;max_group=N")
    constraints: str | None = None
    generated_at: AwareDatetime
    planner: str
    seed: Seed = 0


ReadinessVerdict = Literal["ready", "ready_with_warnings", "not_ready"]


class ReadinessFinding(StrictModel):
    """What one readiness rule found on a VM, in one line."""

    rule: str = Field(..., description="rule id of the readiness catalog (`migrate assess`)")
    status: Literal["block", "warn", "unknown"] = Field(..., description="unknown: a fact the rule reads is missing")
    message: str
    methods: list[str] | None = Field(None, description="the methods it concerns, when not all of the VM's verdicts")


class UnknownFact(StrictModel):
    """A readiness rule whose facts are missing on some VMs: how many, and the message once."""

    vms: Total = Field(..., description="VMs whose facts for this rule are unknown")
    methods: list[str] | None = Field(None, description="the methods it concerns, when not all of `methods`")
    message: str = Field(..., description="what is missing (a VM with another message has it as a finding)")


class VmReadiness(StrictModel):
    """A planned VM some readiness rule found something on: its verdict (one for every method of the section's
    `methods`, or one per method), the rules whose facts are unknown, and the other findings."""

    id: str
    name: str | None = None
    verdict: ReadinessVerdict | None = Field(None, description="the verdict for every method of `methods`")
    verdicts: dict[str, ReadinessVerdict] | None = Field(None, description="method -> verdict (when not one verdict "
                                                                            "for every method of `methods`)")
    unknown: list[str] = Field(default_factory=list, description="rule ids whose facts are unknown: the message is "
                                                                 "the section's `unknown_facts`")
    findings: list[ReadinessFinding] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_verdict_form(self) -> VmReadiness:
        if (self.verdict is None) == (self.verdicts is None):
            raise ValueError("give either `verdict` (every method) or `verdicts` (method -> verdict)")
        return self


class Readiness(StrictModel):
    """Readiness of the planned VMs for reviewers (informational: `migrate validate` and `migrate run` ignore it).

    Each VM is assessed for its wave's method when the wave sets one, else for every method of `methods`; only VMs
    with findings or unknown facts are listed (by name, then id): a VM not listed is ready. A fact missing on many
    VMs is explained once in `unknown_facts` and named by rule id in each VM's `unknown`.
    """

    methods: list[str] = Field(default_factory=list, description="the methods assessed")
    summary: dict[str, dict[ReadinessVerdict, Total]] = Field(default_factory=dict,
                                                               description="method -> verdict -> VMs")
    not_assessed: dict[str, str] = Field(default_factory=dict, description="rule id -> the input it needs")
    unknown_facts: dict[str, UnknownFact] = Field(default_factory=dict,
                                                  description="rule id -> the fact missing, and on how many VMs")
    vms: list[VmReadiness] = Field(default_factory=list)


class Plan(StrictModel):
    """The whole plan.yaml."""

    version: Literal[1] = PLAN_VERSION
    source: PlanSource | None = None
    constraints: Constraints = Field(default_factory=Constraints)
    metrics: PlanMetrics | None = None
    waves: list[Wave] = Field(default_factory=list, max_length=MAX_WAVES)
    excluded: list[Excluded] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    readiness: Readiness | None = Field(None, description="readiness notes of the planned VMs (not re-read)")
