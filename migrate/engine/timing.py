"""Time and cancellation: an injectable clock, a cancel token, Ctrl-C handling, backoff delays."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from migrate.core.log import get_logger

__all__ = ["CancelToken", "Clock", "Interrupted", "RetryPolicy", "SystemClock", "handle_sigint"]

_log = get_logger("migrate.engine")


class Interrupted(Exception):
    """Work stopped at a phase boundary because of a cancel; it is resumable, nothing failed."""


class Clock(Protocol):
    """Wall-clock time and sleeping; tests inject a fake one."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        """Sleep `seconds` unless `interrupt` is set first; True if interrupted."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        """Sleep, waking early when `interrupt` is set."""
        if interrupt is None:
            time.sleep(max(0.0, seconds))
            return False
        return interrupt.wait(max(0.0, seconds))


class CancelToken:
    """A request to stop: `drain` starts nothing new; `interrupt` also stops VMs at their next phase boundary."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.interrupt = threading.Event()
        self.reason = ""

    def cancel(self, *, drain: bool = False, reason: str = "canceled") -> None:
        """Stop starting work; unless `drain`, in-flight VMs also stop at their next phase boundary."""
        self.reason = self.reason or reason
        self.requested.set()
        if not drain:
            self.interrupt.set()

    @property
    def is_requested(self) -> bool:
        """True once any cancel was asked for."""
        return self.requested.is_set()

    @property
    def is_interrupt(self) -> bool:
        """True once in-flight VMs must stop at their next phase boundary."""
        return self.interrupt.is_set()


@contextmanager
def handle_sigint(token: CancelToken) -> Iterator[None]:
    """Ctrl-C once: finish in-flight VMs, start nothing new; twice: stop at the next phase boundary; thrice: abort."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = 0

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            _log.warning("cancel requested: in-flight VMs finish, no new VM starts (Ctrl-C again to stop sooner)")
            token.cancel(drain=True, reason="interrupted (SIGINT)")
        elif presses == 2:
            _log.warning("stopping at the next phase boundary (Ctrl-C again to abort; resume continues either way)")
            token.cancel(drain=False, reason="interrupted (SIGINT)")
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class RetryPolicy(BaseModel):
    """Retries of retryable adapter errors: exponential backoff with jitter, capped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(8, ge=1, le=100, description="tries per phase per run (1 = no retry)")
    base_delay: float = Field(1.0, ge=0, le=3600, description="seconds before the first retry")
    factor: float = Field(2.0, ge=1, le=10)
    max_delay: float = Field(30.0, ge=0, le=3600)
    jitter: float = Field(0.5, ge=0, le=1, description="delay is scaled by a random factor in [1-jitter, 1]")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 = first retry)."""
        raw = min(self.max_delay, self.base_delay * self.factor ** (retry - 1))
        return raw * (1.0 - self.jitter * rng.random())

