"""What a phase function receives, the phase registry type, and polling of long operations.

A phase is a plain function `(ctx: PhaseContext) -> dict` declared in its method (migrate.engine.methods).
It must be idempotent: first check whether its effect already exists (a crash may have happened after
the effect and before the journal recorded the phase finished), then act, then return plain JSON data
(its outputs, kept in the journal). Outputs a later phase relies on are typed (migrate.engine.outputs):
the phase declares it `provides` them and later phases read them with `ctx.output(Kind)`. It raises
migrate.core.errors.AdapterError (retryable or not) or another MigrateError to fail the VM.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from migrate.core.errors import AdapterError, OperationalError
from migrate.core.ports import Adapters, Operation, OperationState
from migrate.engine.methods import get_method
from migrate.engine.outputs import PhaseOutput
from migrate.engine.plan import VmFacts, WavePlan
from migrate.engine.progress import NO_PROGRESS, VmProgress
from migrate.engine.replication import MemoryReplication, Replication
from migrate.engine.timing import CancelToken, Clock, Interrupted, RetryPolicy, SystemClock

T = TypeVar("T")
Out = TypeVar("Out", bound=PhaseOutput)
_RNG = random.Random()  # noqa: S311 - jitter, not security

__all__ = ["PhaseContext", "PhaseFn", "PhaseRegistry", "retry_unit", "vm_adapters", "wait_operation"]


@dataclass
class PhaseContext:
    """Everything one phase run may use: the VM, its wave, adapters, prior outputs, a bound logger."""

    run_id: str
    wave: WavePlan
    vm: VmFacts
    phase: str
    attempt: int
    key: str
    adapters: Adapters
    prior: Mapping[str, Mapping[str, Any]]
    log: Any
    clock: Clock = field(default_factory=SystemClock)
    cancel: CancelToken = field(default_factory=CancelToken)
    dry_run: bool = False
    # bytes moved so far, for a live view: `ctx.progress.bytes(done, total)` (a no-op when nobody listens)
    progress: VmProgress = NO_PROGRESS
    # a replicating method's cycles, chunk progress and cutover schedule (migrate.engine.replication)
    replication: Replication = field(default_factory=MemoryReplication)

    def __post_init__(self) -> None:
        self.adapters = vm_adapters(self.adapters, self.vm)

    def output(self, kind: type[Out]) -> Out:
        """The typed output of the earlier phase of this VM's method that provides `kind`."""
        found = self.maybe_output(kind)
        if found is None:
            name = get_method(self.wave.method).provider_of(kind)
            raise OperationalError(f"{self.phase} needs {kind.__name__} from phase {name!r}, which has not finished")
        return found

    def maybe_output(self, kind: type[Out]) -> Out | None:
        """Like `output`, or None when the providing phase has not finished (rollback steps ask this way)."""
        data = self.prior.get(get_method(self.wave.method).provider_of(kind))
        return None if data is None else kind.model_validate(data)


def vm_adapters(adapters: Adapters, vm: VmFacts) -> Adapters:
    """The adapters a VM's phases use: with several sources, `source` is the one the VM comes from."""
    return adapters.for_source(vm.source)


PhaseFn = Callable[[PhaseContext], Mapping[str, Any]]
PhaseRegistry = Mapping[str, PhaseFn]


def wait_operation(op: Operation, ctx: PhaseContext, *, provider: str, what: str, poll_seconds: float = 1.0,
                   timeout: float = 3600.0) -> Any:
    """Poll `op` until it ends; its result, or its AdapterError (a timeout is retryable)."""
    waited = 0.0
    while True:
        status = op.poll()
        if status.state is OperationState.SUCCESS:
            return status.result
        if status.state is OperationState.ERROR:
            raise status.error or AdapterError(provider, what, f"operation {op.id} failed")
        if waited >= timeout:
            raise AdapterError(provider, what, f"operation {op.id} still running after {timeout:.0f} s", retryable=True)
        ctx.clock.sleep(poll_seconds)
        waited += poll_seconds


# One unit of a phase (a file of a disk) is tried again alone before the phase fails: a long phase then
# does not redo (or re-verify) the units it finished because the last one met a dropped connection.
UNIT_RETRY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=15.0)


def retry_unit(ctx: PhaseContext, what: str, fn: Callable[[], T], policy: RetryPolicy = UNIT_RETRY) -> T:
    """`fn()`, tried again with backoff on a retryable AdapterError; a cancel stops the waiting."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except AdapterError as exc:
            if not exc.retryable or exc.exhausted or attempt == policy.attempts:
                raise
            delay = policy.delay(attempt, _RNG)
            ctx.log.warning("retrying", unit=what, attempt=attempt, delay=round(delay, 3), error=str(exc))
            if ctx.clock.sleep(delay, ctx.cancel.interrupt):
                raise Interrupted(f"stopped while waiting to retry {what}") from exc
    raise AssertionError("unreachable")  # pragma: no cover
