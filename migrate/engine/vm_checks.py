"""Prechecks of a source VM every method shares (live facts from the source's `describe_vm`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrate.core.errors import OperationalError
from migrate.engine.readiness import UNSUPPORTED_DEVICES, Hit
from migrate.engine.readiness_rules import (
    device_hits,
    ebs_hits,
    rdm_hits,
    shared_disk_hits,
    snapshot_hits,
    tools_hits,
)

__all__ = ["UNSUPPORTED_DEVICES", "Check", "check", "ebs_checks", "settle", "source_vm_checks"]

Check = dict[str, str]  # {"check", "status": ok|warn|block, "message"}


def check(name: str, status: str, message: str) -> Check:
    """One precheck result."""
    return {"check": name, "status": status, "message": message}


def _checks(hits: list[Hit]) -> list[Check]:
    return [check(hit.rule, hit.status, hit.message) for hit in hits]


def source_vm_checks(facts: Mapping[str, Any], live: Mapping[str, Any], *, moved: str) -> list[Check]:
    """Power, snapshots, devices, raw device mappings, shared disks, disks unknown to the plan, tools.

    `moved` says how the disks travel ("copied", "streamed") for the messages. The conditions and their ids
    are the readiness catalog's (migrate.engine.readiness), tested here on the source's live facts.
    """
    checks = [check("power_state", "ok", f"source is {live['power_state']}")]
    checks += _checks(snapshot_hits(int(live["snapshots"] or 0), moved) + device_hits(live["devices"])
                      + rdm_hits(live["disks"], moved) + shared_disk_hits(facts.get("disks", []), moved))
    missing = sorted({int(d["key"]) for d in live["disks"]} - {int(d["key"]) for d in facts.get("disks", [])})
    if missing:
        checks.append(check("disks", "block", f"disk(s) {missing} are not in the plan's inventory: re-discover "
                                              "and re-plan"))
    checks += _checks(tools_hits(live["power_state"], bool(live["tools_running"])))
    return checks


def ebs_checks(facts: Mapping[str, Any]) -> list[Check]:
    """What EBS and an AMI can hold, on the plan's disks: the catalog's `disk_size` and `disks` rules (re-platform)."""
    return _checks(ebs_hits(facts.get("disks", [])))


def settle(checks: list[Check], log: Any) -> list[Check]:
    """Log the warnings; raise OperationalError naming every blocking check (the VM fails its precheck)."""
    for found in checks:
        if found["status"] == "warn":
            log.info("precheck warning", check=found["check"], message=found["message"])
    blocking = [c for c in checks if c["status"] == "block"]
    if blocking:
        raise OperationalError("precheck: " + "; ".join(f"{c['check']}: {c['message']}" for c in blocking))
    return checks
