"""The noop driver: both roles of a run (source and target) played by one in-process NoopEstate.

    source: {driver: noop, effects_file: noop-effects.jsonl}
    target: {driver: noop, effects_file: noop-effects.jsonl}

Sections naming the same effects file (or none) share one estate while the run's adapters are open (the
first section's latency applies to both).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

from pydantic import Field

from adapters.noop.estate import NoopEstate, NoopSource, NoopTarget
from migrate.core.config import DriverSettings
from migrate.core.drivers import ConnectOptions, Driver, Role

__all__ = ["NOOP_DRIVER", "NoopSettings"]

MAX_LATENCY = 10.0   # seconds of simulated provider latency per call


class NoopSettings(DriverSettings):
    """The fake estate: where its effects are kept (none: memory only) and how slow it answers."""

    driver: Literal["noop"] = "noop"
    effects_file: Path | None = Field(None, description="JSON-lines file of every change (kept across runs)")
    latency: float = Field(0.0, ge=0, le=MAX_LATENCY, allow_inf_nan=False,
                           description="seconds each call takes, as a remote provider would")
    copy_seconds: float = Field(0.0, ge=0, le=3600, allow_inf_nan=False,
                                description="seconds a VM's disk copy takes (standing for its I/O)")

    def relative_to(self, base: Path) -> NoopSettings:
        if self.effects_file is None or self.effects_file.is_absolute():
            return self
        return self.model_copy(update={"effects_file": base / self.effects_file})


_lock = threading.Lock()
_open: dict[Path | None, NoopEstate] = {}


def _estate(settings: NoopSettings) -> NoopEstate:
    """The estate of `settings`' effects file: the open one, or a new one."""
    key = settings.effects_file.resolve() if settings.effects_file else None
    with _lock:
        estate = _open.get(key)
        if estate is not None and estate.try_acquire():
            return estate
        estate = NoopEstate(path=key, latency=settings.latency, copy_seconds=settings.copy_seconds)
        _open[key] = estate
        return estate


def _connect(role: Role, settings: NoopSettings, options: ConnectOptions) -> NoopSource | NoopTarget:
    estate = _estate(settings)
    return NoopSource(estate) if role is Role.SOURCE else NoopTarget(estate)


NOOP_DRIVER = Driver(
    name="noop",
    description="A fake source and target in this process, effects kept in a JSON-lines file (the noop method)",
    roles=frozenset({Role.SOURCE, Role.TARGET}),
    settings=NoopSettings,
    connect=_connect,
)
