"""Waiting for new hosts: polls paced by the engine's clock and stopped by its cancel token.

A cancel (drain or stop: the wave has not started a VM yet) ends a wait at once with Interrupted; the
step is left started and a resumed run finds the hosts already allocated by their tags.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from migrate.core.capacity_ports import HostCluster, HostInfo, HostProvisioner, ProvisionedHost
from migrate.core.errors import AdapterError
from migrate.core.log import get_logger
from migrate.engine.timing import CancelToken, Clock, Interrupted, SystemClock

__all__ = ["Pacing", "poll_until", "wait_connected", "wait_ready"]

T = TypeVar("T")
log = get_logger(__name__)


@dataclass(frozen=True)
class Pacing:
    """How the capacity step waits: the engine's clock and cancel token, and the delays between polls."""

    clock: Clock = field(default_factory=SystemClock)
    cancel: CancelToken = field(default_factory=CancelToken)
    first_delay: float = 0.5
    max_delay: float = 15.0

    def check(self, what: str) -> None:
        """Interrupted if the run was asked to stop."""
        if self.cancel.is_requested:
            raise Interrupted(f"stopped before {what}")


def poll_until(pacing: Pacing, what: str, check: Callable[[], T | None], timeout: float,
               expired: Callable[[], AdapterError]) -> T:
    """`check()` until it returns something, backing off; `expired()` is raised after `timeout` seconds.

    A retryable AdapterError of one poll is logged and the next poll tries again (the last one is raised
    if the time runs out on it); any other error is raised at once.
    """
    deadline = pacing.clock.now() + timedelta(seconds=timeout)
    delay = pacing.first_delay
    while True:
        pacing.check(what)
        failure: AdapterError | None = None
        try:
            found = check()
        except AdapterError as exc:
            if not exc.retryable:
                raise
            log.warning("poll failed, trying again", what=what, error=str(exc))
            found, failure = None, exc
        if found is not None:
            return found
        left = (deadline - pacing.clock.now()).total_seconds()
        if left <= 0:
            raise failure or expired()
        if pacing.clock.sleep(min(delay, left), pacing.cancel.requested):
            raise Interrupted(f"stopped while waiting for {what}")
        delay = min(delay * 2, pacing.max_delay)


def wait_ready(provisioner: HostProvisioner, tags: Mapping[str, str], ids: set[str], timeout: float,
               pacing: Pacing) -> dict[str, ProvisionedHost]:
    """The hosts `ids` once the provider says every one is ready; AdapterError on a failed host or timeout."""
    found: dict[str, ProvisionedHost] = {}

    def ready() -> dict[str, ProvisionedHost] | None:
        found.clear()
        found.update({h.id: h for h in provisioner.find(tags) if h.id in ids})
        failed = [h for h in found.values() if h.failed]
        if failed:
            raise AdapterError(provisioner.kind, "allocate", "; ".join(
                f"host {h.id} is {h.state}" + (f" ({h.detail})" if h.detail else "") for h in failed),
                code="HostFailed")
        return dict(found) if len(found) == len(ids) and all(h.ready for h in found.values()) else None

    def expired() -> AdapterError:
        waiting = sorted(f"{i} ({found[i].state if i in found else 'not listed'})" for i in ids
                         if i not in found or not found[i].ready)
        return AdapterError(provisioner.kind, "allocate", f"hosts not ready after {timeout:g} s: " + ", ".join(waiting),
                            retryable=True, code="HostNotReady")

    return poll_until(pacing, "hosts to be ready", ready, timeout, expired)


def wait_connected(cluster: HostCluster, name: str, timeout: float, pacing: Pacing, *, reconnect: bool) -> HostInfo:
    """Host `name` once it is connected (asked to reconnect once first, with `reconnect`); AdapterError
    (code HostNotConnected) when it is not within `timeout` seconds."""
    last: HostInfo | None = None
    asked = not reconnect

    def connected() -> HostInfo | None:
        nonlocal last, asked
        last = cluster.host(name)
        if last is not None and last.connection_state == "connected":
            return last
        if not asked:
            asked = True
            cluster.reconnect_host(name)
        return None

    def expired() -> AdapterError:
        state = last.connection_state if last is not None else "not in the cluster"
        return AdapterError(cluster.kind, "add_host", f"host {name} is still {state} after {timeout:g} s",
                            code="HostNotConnected")

    return poll_until(pacing, f"host {name} to connect", connected, timeout, expired)
