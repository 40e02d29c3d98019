"""A replicating VM's slot lease: its slots go back to the wave while it waits between cycles and are taken
again (waiting while busy) before it copies or cuts over; a stopping run ends the wait."""

from __future__ import annotations

import threading
import time

from migrate.engine.limits import Limiter, Limits, SlotLease

KEYS = ("global", "host:esx-1")


def _lease(limiter: Limiter, cond: threading.Condition, released: list[int], stop: threading.Event) -> SlotLease:
    assert limiter.try_acquire(KEYS)
    return SlotLease(limiter, KEYS, cond, lambda: released.append(1), stop.is_set, poll=0.01)


def test_released_slots_let_another_vm_start_and_hold_waits_for_them() -> None:
    limiter, cond, released, stop = Limiter(Limits(total=1)), threading.Condition(), [], threading.Event()
    lease = _lease(limiter, cond, released, stop)
    assert not limiter.try_acquire(KEYS)          # one slot: taken
    lease.release()
    lease.release()                               # twice is once
    assert released == [1] and limiter.try_acquire(KEYS)   # another VM takes it
    held: list[bool] = []
    waiter = threading.Thread(target=lambda: held.append(lease.hold()))
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive()                      # busy: the replicating VM waits
    with cond:
        limiter.release(KEYS)                     # the other VM is done
        cond.notify_all()
    waiter.join(timeout=2)
    assert held == [True] and lease.held and limiter.in_use["global"] == 1
    with cond:
        lease.finish()
    assert not limiter.in_use


def test_a_stopping_run_ends_the_wait_and_finish_gives_back_only_what_is_held() -> None:
    limiter, cond, released, stop = Limiter(Limits(total=1)), threading.Condition(), [], threading.Event()
    lease = _lease(limiter, cond, released, stop)
    lease.release()
    assert limiter.try_acquire(KEYS)
    stop.set()
    assert lease.hold() is False and not lease.held
    with cond:
        lease.finish()                            # nothing held: the other VM keeps its slot
    assert limiter.in_use["global"] == 1
