"""Migration methods: each one `Method` object, the only place a method is declared, found through entry points.

A method lists its phases in order, each with the lifecycle stage it runs in:

- `precheck` phases run while the VM is `pending` (read-only; a blocking problem fails the VM);
- `replicate` phases run while the VM is `replicating`: the source keeps running while they copy, until
  the VM's cutover is due (its wave's window opens, its `cutover_at` passes, or `migrate cutover` asks);
- `cutover` phases run while the VM is `cutting_over` (the changes);
- `verify` phases run while the VM is `verifying` (checks, then marking the source as migrated).

A phase says whether it only reads, whether it moves disk bytes, which typed outputs of earlier phases
it `requires` and which it `provides` (migrate.engine.outputs): a playbook that drops or reorders a
phase another one needs is refused before anything runs. A method also names its rollback steps, the
provider roles it needs, how it builds per-VM facts, whether its waves grow the target cluster, and its
default playbook.

Built-in methods register like third-party ones, through the entry-point group `migrate.methods`
(pyproject.toml): `registry()` loads every entry point once; nothing else in the project lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from migrate.core.config import SiteConfig
from migrate.core.drivers import Role
from migrate.core.errors import InputError, OperationalError, Problem
from migrate.core.plugins import PluginRegistry
from migrate.core.ports import Adapters, ReplatformCatalog
from migrate.engine.outputs import PhaseOutput
from migrate.engine.plan import VmFacts

if TYPE_CHECKING:
    from migrate.engine.context import PhaseContext, PhaseFn

__all__ = [
    "ENTRY_POINT_GROUP",
    "FactsFactory",
    "FactsPlanner",
    "Method",
    "Phase",
    "RollbackScope",
    "RollbackStep",
    "Stage",
    "get_method",
    "method_names",
    "registry",
]

ENTRY_POINT_GROUP = "migrate.methods"


class Stage(StrEnum):
    """The lifecycle stage a phase runs in (the order of the members is the execution order)."""

    PRECHECK = "precheck"
    REPLICATE = "replicate"
    CUTOVER = "cutover"
    VERIFY = "verify"


@dataclass(frozen=True)
class Phase:
    """One phase of a method: its function, stage, whether it only reads, and the typed outputs it needs and gives."""

    name: str
    stage: Stage
    run: PhaseFn
    reads_only: bool = False
    requires: tuple[type[PhaseOutput], ...] = ()
    provides: type[PhaseOutput] | None = None
    moves_data: bool = False    # streams disk bytes: on Temporal it runs on the source site's data task queue
    # a precopy loop's phase: one replication cycle `(ctx, cycle number) -> its record`, so an engine can drive
    # the loop itself (Temporal: cycles as activities, the waits between them as durable timers)
    cycle: Callable[[PhaseContext, int], Mapping[str, Any]] | None = None

    @property
    def changes_nothing(self) -> bool:
        """True for prechecks and read-only phases: their start need not be durable before they run."""
        return self.stage is Stage.PRECHECK or self.reads_only


# Where a rollback step acts: `target` steps may stay pending while the target is unreachable, `source` steps
# always run, `after_target` steps wait until every target step finished (see migrate.engine.rollback).
RollbackScope = Literal["target", "source", "after_target"]


@dataclass(frozen=True)
class RollbackStep:
    """One step of a method's rollback."""

    name: str
    run: PhaseFn
    scope: RollbackScope


class FactsPlanner(Protocol):
    """Fixes the facts of a method's VMs when the run plan is built, collecting every problem."""

    def facts(self, vm: Any, wave_index: int, wave: Any) -> Any:
        """The VmFacts of inventory VM `vm` in plan wave number `wave_index` (`wave`)."""
        ...

    def finish(self) -> list[Problem]:
        """Every problem found (reported with the plan's other problems)."""
        ...


# (site config, plan file name, site file name, the replatformer's catalog or None) -> a FactsPlanner
FactsFactory = Callable[[SiteConfig, str, str, ReplatformCatalog | None], FactsPlanner]


@dataclass(frozen=True)
class Method:
    """Everything about one migration method (module docstring)."""

    name: str
    description: str
    phases: tuple[Phase, ...]
    rollback: tuple[RollbackStep, ...] = ()
    roles: frozenset[Role] = frozenset()
    grows_cluster: bool = False
    playbook: str = ""                     # its default playbook: a built-in's name or `package:path.yaml`; ""
                                           # = the built-in named like the method
    facts: FactsFactory | None = None      # None: the generic vSphere facts (migrate.execution_plan)
    # what makes a VM impossible to move by this method, asked of every VM before a new run starts (a
    # non-empty answer is bad input: exit 2, nothing changed): (adapters, the VM's facts) -> problems
    preflight: Callable[[Adapters, VmFacts], list[str]] | None = None
    _by_name: dict[str, Phase] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((p.name, p) for p in self.phases)
        if len(self._by_name) != len(self.phases):
            raise ValueError(f"method {self.name!r} lists a phase twice")

    @property
    def replicates(self) -> bool:
        """True when the method copies while the source runs (it has `replicate` phases): its wave's window
        then schedules the cutover instead of the start."""
        return any(p.stage is Stage.REPLICATE for p in self.phases)

    @property
    def playbook_name(self) -> str:
        return self.playbook or self.name

    def phase(self, name: str) -> Phase:
        """The phase called `name`; KeyError if the method has none."""
        return self._by_name[name]

    def has_phase(self, name: str) -> bool:
        return name in self._by_name

    @property
    def functions(self) -> dict[str, PhaseFn]:
        """Phase name -> function (what the runner calls)."""
        return {p.name: p.run for p in self.phases}

    def target_in(self, phase: str, outputs: Mapping[str, Any] | None) -> str | None:
        """Where the VM now lives, if `phase`'s journaled `outputs` say it (its output's target field)."""
        provides = self.phase(phase).provides if self.has_phase(phase) else None
        name = provides.target_field if provides is not None else None
        value = outputs.get(name) if name and outputs else None
        return str(value) if value else None

    def provider_of(self, output: type[PhaseOutput]) -> str:
        """The phase that provides `output`; OperationalError if none does."""
        name = self._provider_name(output)
        if name is None:
            raise OperationalError(f"method {self.name!r} has no phase that provides {output.__name__}")
        return name

    def order_problems(self, phases: Sequence[str]) -> list[tuple[int, str]]:
        """(index, why) for each listed phase that needs an output no earlier listed phase provides."""
        problems: list[tuple[int, str]] = []
        provided: set[type[PhaseOutput]] = set()
        for index, name in enumerate(phases):
            phase = self._by_name.get(name)
            if phase is None:
                continue
            missing = [need for need in phase.requires if not any(issubclass(p, need) for p in provided)]
            for need in missing:
                source = self._provider_name(need)
                where = f"the output of {source!r}" if source else "an output no phase of the method provides"
                later = source in phases[index + 1:] if source else False
                problems.append((index, f"phase {name!r} needs {need.__name__}, {where}, "
                                        f"{'which comes after it' if later else 'which the playbook leaves out'}"))
            if phase.provides is not None:
                provided.add(phase.provides)
        return problems

    def _provider_name(self, output: type[PhaseOutput]) -> str | None:
        return next((p.name for p in self.phases if p.provides is not None and issubclass(p.provides, output)), None)


_plugins = PluginRegistry(ENTRY_POINT_GROUP, Method, lambda m: m.name)


def registry() -> Mapping[str, Method]:
    """Every installed method by name (entry points of `migrate.methods`, loaded once)."""
    return _plugins()


def method_names() -> list[str]:
    """The installed methods' names, sorted."""
    return sorted(registry())


def get_method(name: str, *, file: str = "plan", field_name: str = "method") -> Method:
    """The installed method `name`; InputError naming the known ones if there is none."""
    method = registry().get(name)
    if method is None:
        raise InputError.single(file, field_name, f"unknown method {name!r} (known: {', '.join(method_names())})")
    return method
