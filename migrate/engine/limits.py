"""Concurrency limits inside a wave: global, per source host, per datastore, per target cluster.

A VM needs one slot of every key it touches (`global`, `host:H`, `datastore:D` for each of its
datastores, `cluster:C`). The limiter takes all of a VM's slots at once or none, under one lock: no
deadlock is possible (nothing is held while waiting) and no VM blocked on a busy host holds a global
slot that a VM on an idle host could use (fixed-order semaphores with a bounded thread pool would).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from migrate.engine.plan import VmFacts

__all__ = ["Limiter", "Limits", "SlotLease"]


class Limits(BaseModel):
    """How many VMs may be cutting over at once, overall and per resource (None: no limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total: int = Field(8, ge=1, description="VMs in flight at once in a wave (the global limit)")
    per_source_host: int | None = Field(2, ge=1)
    per_datastore: int | None = Field(4, ge=1)
    per_target_cluster: int | None = Field(None, ge=1)
    overrides: dict[str, int] = Field(default_factory=dict,
                                      description='per key, e.g. {"datastore:ds-slow": 1, "host:esx-07": 1}; with '
                                                  'several sources the source names them: "host:dc-east/esx-07"')

    def keys(self, vm: VmFacts) -> tuple[str, ...]:
        """The slots a VM needs, in a fixed order (source hosts and datastores of several sources apart: two
        vCenters' `esx-01` or `datastore1` are different machines)."""
        keys = ["global"]
        where = f"{vm.source}/" if vm.source else ""
        if vm.source_host:
            keys.append(f"host:{where}{vm.source_host}")
        keys.extend(f"datastore:{where}{ds}" for ds in sorted(set(vm.datastores)))
        if vm.target_cluster:
            keys.append(f"cluster:{vm.target_cluster}")
        return tuple(keys)

    def capacity(self, key: str) -> int | None:
        """The limit of one key (None: unlimited)."""
        if key in self.overrides:
            return self.overrides[key]
        kind = key.partition(":")[0]
        return {"global": self.total, "host": self.per_source_host, "datastore": self.per_datastore,
                "cluster": self.per_target_cluster}.get(kind)


class Limiter:
    """All-or-nothing slot acquisition over many keys."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self.in_use: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def try_acquire(self, keys: tuple[str, ...]) -> bool:
        """Take one slot of every key, or none if any is full."""
        with self._lock:
            for key in keys:
                cap = self.limits.capacity(key)
                if cap is not None and self.in_use[key] >= cap:
                    return False
            for key in keys:
                self.in_use[key] += 1
                self.peak[key] = max(self.peak[key], self.in_use[key])
            return True

    def release(self, keys: tuple[str, ...]) -> None:
        """Give back the slots `try_acquire` took."""
        with self._lock:
            for key in keys:
                self.in_use[key] -= 1
                if self.in_use[key] <= 0:
                    del self.in_use[key]

    def global_full(self) -> bool:
        """True when no VM can start until one finishes."""
        with self._lock:
            return self.in_use["global"] >= self.limits.total


class SlotLease:
    """The slots one VM took from its wave's limiter. A replicating VM gives them back while it waits between
    cycles (`release`) and takes them again before it copies or cuts over (`hold`), so a wave with more warm
    VMs than slots replicates them all at once; `finish` gives back what is still held when the VM is done.

    `cond` is the dispatcher's condition (its lock guards the limiter's users); `on_release` runs under it
    (the dispatcher starts a worker for a waiting VM); `stopped` says when a wait for slots must end.
    """

    def __init__(self, limiter: Limiter, keys: tuple[str, ...], cond: threading.Condition,
                 on_release: Callable[[], None], stopped: Callable[[], bool], poll: float = 0.5) -> None:
        self.limiter = limiter
        self.keys = keys
        self.cond = cond
        self.on_release = on_release
        self.stopped = stopped
        self.poll = poll
        self.held = True

    def release(self) -> None:
        """Give the slots back (nothing if they are not held)."""
        with self.cond:
            if self.held:
                self.limiter.release(self.keys)
                self.held = False
                self.on_release()
                self.cond.notify_all()

    def hold(self) -> bool:
        """Take the slots again, waiting while they are busy; False if `stopped` said to give up first."""
        with self.cond:
            while not self.held:
                if self.limiter.try_acquire(self.keys):
                    self.held = True
                elif self.stopped():
                    return False
                else:
                    self.cond.wait(timeout=self.poll)
            return True

    def finish(self) -> None:
        """The VM is done: give back what is held (the caller holds `cond`)."""
        if self.held:
            self.limiter.release(self.keys)
            self.held = False
