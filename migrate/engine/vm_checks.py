"""Prechecks of a source VM every method shares (live facts from the source's `describe_vm`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrate.core.errors import OperationalError

__all__ = ["UNSUPPORTED_DEVICES", "Check", "check", "settle", "source_vm_checks"]

UNSUPPORTED_DEVICES = frozenset({"usb", "serial", "parallel", "pci-passthrough"})

Check = dict[str, str]  # {"check", "status": ok|warn|block, "message"}


def check(name: str, status: str, message: str) -> Check:
    """One precheck result."""
    return {"check": name, "status": status, "message": message}


def source_vm_checks(facts: Mapping[str, Any], live: Mapping[str, Any], *, moved: str) -> list[Check]:
    """Power, snapshots, devices, raw device mappings, shared disks, disks unknown to the plan, tools.

    `moved` says how the disks travel ("copied", "streamed") for the messages.
    """
    checks = [check("power_state", "ok", f"source is {live['power_state']}")]
    if live["snapshots"]:
        checks.append(check("snapshots", "block", f"{live['snapshots']} snapshot(s): consolidate or delete them "
                                                  f"first (only the base disks are {moved})"))
    bad = sorted(set(live["devices"]) & UNSUPPORTED_DEVICES)
    if bad:
        checks.append(check("devices", "block", f"unsupported device(s): {', '.join(bad)}; remove them first"))
    checks.extend(check("rdm", "block", f"disk {d['key']} is a raw device mapping ({d['rdm']}); it cannot be {moved}")
                  for d in live["disks"] if d.get("rdm"))
    checks.extend(check("shared_disk", "block", f"disk {d['key']} is multi-writer shared; it cannot be {moved} "
                                                "with one VM")
                  for d in facts.get("disks", []) if d.get("sharing") == "sharingMultiWriter")
    missing = sorted({int(d["key"]) for d in live["disks"]} - {int(d["key"]) for d in facts.get("disks", [])})
    if missing:
        checks.append(check("disks", "block", f"disk(s) {missing} are not in the plan's inventory: re-discover "
                                              "and re-plan"))
    if live["power_state"] == "poweredOn" and not live["tools_running"]:
        checks.append(check("tools", "warn", "VMware Tools not running: the source will be powered off, not shut "
                                             "down"))
    return checks


def settle(checks: list[Check], log: Any) -> list[Check]:
    """Log the warnings; raise OperationalError naming every blocking check (the VM fails its precheck)."""
    for found in checks:
        if found["status"] == "warn":
            log.info("precheck warning", check=found["check"], message=found["message"])
    blocking = [c for c in checks if c["status"] == "block"]
    if blocking:
        raise OperationalError("precheck: " + "; ".join(f"{c['check']}: {c['message']}" for c in blocking))
    return checks
