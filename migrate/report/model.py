"""The report's content as data (`migrate report --json`, JSON Schema `migrate schema report`).

Everything the HTML report shows comes from one `Report`: the summary, the waves (planned windows and
what the journal says happened), one row per VM, and the dependency graph with its layout already
computed (coordinates in SVG user units), so a dashboard can draw the same picture. Times are ISO 8601
UTC strings taken from the inputs (plan windows, journal timestamps); the report adds none of its own
unless asked (`generated_at`), so two reports of the same inputs are byte-identical.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from migrate.core.models.base import StrictModel

__all__ = [
    "REPORT_VERSION",
    "EstateSummary",
    "Failure",
    "GraphEdge",
    "GraphGroup",
    "GraphNode",
    "GraphOutline",
    "GraphView",
    "KeepApart",
    "PhaseSpan",
    "PlanSummary",
    "Prechecks",
    "ReadinessFinding",
    "ReadinessVerdict",
    "ReadinessVm",
    "Report",
    "ReportError",
    "ReportReadiness",
    "ReportSources",
    "ReportVm",
    "ReportWave",
    "RunSummary",
    "Span",
    "Summary",
    "Violation",
    "WaveBox",
]

REPORT_VERSION: Literal[1] = 1


class ReportSources(StrictModel):
    """The files the report was built from."""

    plan: str
    inventory: str | None = None
    flows: str | None = None
    journal: str | None = None
    run_id: str | None = None


class EstateSummary(StrictModel):
    """What the estate holds (from the inventory, else from the plan's wave sizes)."""

    vms: int
    vcpu: int
    memory_mb: int
    storage_gb: float
    powered_on: int | None = None
    sources: list[str] = Field(default_factory=list, description="where the inventory came from")
    from_inventory: bool


class Violation(StrictModel):
    """A rule the plan breaks, where (e.g. `waves[2].vms[5]`) and what."""

    field: str
    message: str


class PlanSummary(StrictModel):
    """Plan metrics: evaluated against the dependency graph when there is one, else as plan.yaml records them."""

    waves: int
    vms: int
    excluded: int
    lower_bound: int | None = None
    cut_weight: float | None = None
    total_weight: float | None = None
    cut_fraction: float | None = None
    exposure: float | None = None
    violations: int | None = None
    violation_list: list[Violation] = Field(default_factory=list)
    metrics_from: Literal["evaluated", "plan", "none"]


class RunSummary(StrictModel):
    """The run the journal holds: its status, when, and how many VMs are in each state."""

    run_id: str
    status: str
    started_at: str
    updated_at: str
    states: dict[str, int]
    failed: int
    hosts_added: int


class ReportError(StrictModel):
    """A VM's error as journaled: type, message, and the provider and operation that failed."""

    type: str | None = None
    message: str
    provider: str | None = None
    op: str | None = None
    retryable: bool = False


class Failure(StrictModel):
    """A failed VM (failures come first in the summary)."""

    vm: str
    name: str
    wave: int
    phase: str | None = None
    error: ReportError | None = None


class Summary(StrictModel):
    """Estate, plan metrics, run state counts and failures."""

    estate: EstateSummary
    plan: PlanSummary
    run: RunSummary | None = None
    failures: list[Failure] = Field(default_factory=list)


class Span(StrictModel):
    """A time span (ISO 8601 UTC); `end` is None while it is still open."""

    start: str
    end: str | None = None


class PhaseSpan(StrictModel):
    """One phase of one VM as the journal saw it (latest attempt)."""

    phase: str
    status: Literal["started", "finished", "failed"]
    attempt: int
    start: str
    end: str | None = None


class Prechecks(StrictModel):
    """What the VM's precheck found: blocking problems and warnings."""

    blocking: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ReportVm(StrictModel):
    """One row of the per-VM table."""

    id: str
    name: str
    app: str | None = None
    wave: int | None = Field(None, description="None for an excluded VM")
    method: str | None = None
    state: str = Field(..., description="planned (no journal), excluded, or the journal's state")
    phase: str | None = None
    target_id: str | None = None
    gb: float = 0.0
    vcpu: int = 0
    memory_mb: int = 0
    error: ReportError | None = None
    prechecks: Prechecks = Field(default_factory=Prechecks)
    phases: list[PhaseSpan] = Field(default_factory=list)
    downtime_s: float | None = Field(None, description="source off until target up, where the method measures it")
    note: str | None = Field(None, description="why excluded, or pending cleanup after a rollback")


class ReportWave(StrictModel):
    """One wave: what the plan says, and what happened."""

    id: int
    name: str
    method: str
    vms: int
    gb: float
    vcpu: int
    memory_mb: int
    window: Span | None = None
    state: str | None = None
    states: dict[str, int] = Field(default_factory=dict)
    actual: Span | None = Field(None, description="first phase start to last phase end, from the journal")
    hosts_added: int | None = None


class GraphNode(StrictModel):
    """A node of the drawn graph: one VM, or (aggregated) the VMs of one application or group in one wave."""

    id: str
    label: str
    wave: int | None = None
    x: float
    y: float
    r: float
    vms: int
    members: list[str] = Field(default_factory=list, description="VM ids (aggregated nodes)")
    app: str | None = None


class GraphEdge(StrictModel):
    """A drawn edge (aggregated edges sum their VM edges' weights)."""

    a: str
    b: str
    weight: float
    hard: bool = False
    cross_wave: bool = False


class GraphGroup(StrictModel):
    """A must-move-together group."""

    id: int
    vms: list[str]
    reasons: list[str]
    waves: list[int]


class GraphOutline(StrictModel):
    """The outline drawn round a must-move group's part in one unit: a convex polygon round its VMs, or
    (aggregated graphs) a ring round the node that holds it."""

    group: int
    points: list[tuple[float, float]] = Field(default_factory=list)
    node: str | None = None


class KeepApart(StrictModel):
    """Two nodes that must not move together (drawn as a dashed line)."""

    a: str
    b: str
    reason: str = ""


class WaveBox(StrictModel):
    """The region of the drawing that holds one wave's VMs (None: not in any wave)."""

    wave: int | None = None
    x: float
    y: float
    w: float
    h: float


class GraphView(StrictModel):
    """The dependency graph, laid out: deterministic for the same input."""

    level: Literal["vm", "unit"] = Field(..., description="one node per VM, or aggregated per app/group and wave")
    width: float
    height: float
    nodes: list[GraphNode] = Field(default_factory=list)
    edges: list[GraphEdge] = Field(default_factory=list)
    edges_total: int = 0
    groups: list[GraphGroup] = Field(default_factory=list)
    outlines: list[GraphOutline] = Field(default_factory=list)
    keep_apart: list[KeepApart] = Field(default_factory=list)
    waves: list[WaveBox] = Field(default_factory=list)


ReadinessVerdict = Literal["ready", "ready_with_warnings", "not_ready", "not_assessed"]


class ReadinessFinding(StrictModel):
    """What one readiness rule found on a VM (for its wave's method)."""

    rule: str = Field(..., description="rule id of the readiness catalog (`migrate assess`)")
    status: Literal["block", "warn", "unknown"]
    message: str


class ReadinessVm(StrictModel):
    """A planned VM that is not plainly ready for its wave's method: its verdict and what the rules found."""

    id: str
    name: str
    wave: int
    method: str
    verdict: ReadinessVerdict
    findings: list[ReadinessFinding] = Field(default_factory=list)


class ReportReadiness(StrictModel):
    """Readiness of the planned VMs for their waves' methods: the plan's notes, else computed from the inventory."""

    source: Literal["plan", "inventory", "plan and inventory"] = Field(
        ..., description="plan: its `readiness` notes; inventory: computed now (a plan without notes, or VMs the "
                         "notes do not cover for their method)")
    counts: dict[ReadinessVerdict, int] = Field(..., description="verdict -> planned VMs")
    not_assessed: dict[str, str] = Field(default_factory=dict, description="rule id -> the input it needs")
    vms: list[ReadinessVm] = Field(default_factory=list, description="not ready first, then with warnings, then "
                                                                     "not assessed; by wave and name")


class Report(StrictModel):
    """The whole report."""

    version: Literal[1] = REPORT_VERSION
    title: str
    generated_at: str | None = None
    sources: ReportSources
    summary: Summary
    waves: list[ReportWave] = Field(default_factory=list)
    vms: list[ReportVm] = Field(default_factory=list)
    readiness: ReportReadiness | None = Field(None, description="None: the plan has no notes and there is no "
                                                                "inventory to assess")
    graph: GraphView
