"""The capacity step's durable records: what it is about to allocate, what it allocated, what it added.

They are wave steps of their own in the run journal, beside the `ensure_capacity` step that makes them,
so the journal names every host that may exist before and after each provider call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from migrate.engine.journal import Journal

__all__ = ["Recorder", "journal_recorder"]

# (event, plain data): "allocating" | "allocated" | "added"; durable when it returns
Recorder = Callable[[str, Mapping[str, Any]], None]


def journal_recorder(journal: Journal, run_id: str, wave_id: str) -> Recorder:
    """A Recorder writing wave steps `capacity_allocate` / `capacity_add_hosts` to the run journal, durably.

    "allocating" starts `capacity_allocate` (inputs: key, tags, count) before the provider is asked;
    "allocated" finishes it with the host ids; "added" records `capacity_add_hosts` with the names.
    """
    attempts: dict[str, int] = {}

    def record(event: str, data: Mapping[str, Any]) -> None:
        if event == "allocating":
            _, attempts["capacity_allocate"] = journal.step_started(run_id, "wave", wave_id, "capacity_allocate",
                                                                    dict(data), wait=True)
        elif event == "allocated":
            attempt = attempts.get("capacity_allocate")
            if attempt is None:
                _, attempt = journal.step_started(run_id, "wave", wave_id, "capacity_allocate", None, wait=True)
            journal.step_finished(run_id, "wave", wave_id, "capacity_allocate", attempt, dict(data), wait=True)
        elif event == "added":
            _, attempt = journal.step_started(run_id, "wave", wave_id, "capacity_add_hosts",
                                              {"names": data.get("names")}, wait=True)
            journal.step_finished(run_id, "wave", wave_id, "capacity_add_hosts", attempt, dict(data), wait=True)
        else:
            raise ValueError(f"unknown capacity event {event!r}")

    return record
