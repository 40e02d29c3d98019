"""The phase catalog of each migration method: which phases exist and in which lifecycle stage each runs.

A phase belongs to one stage of the VM lifecycle:

- `precheck` phases run while the VM is `pending` (read-only; a blocking problem fails the VM);
- `cutover` phases run while the VM is `cutting_over` (the changes);
- `verify` phases run while the VM is `verifying` (checks, then marking the source as migrated).

A playbook lists phases of its method in stage order. The functions that implement the phases are a
separate map (phase name -> function) given to the runner, so the catalog is known before any adapter is.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

__all__ = ["METHODS", "METHOD_PHASES", "READ_ONLY_PHASES", "Method", "Stage", "reads_only"]


class Stage(StrEnum):
    """The lifecycle stage a phase runs in (the order of the members is the execution order)."""

    PRECHECK = "precheck"
    CUTOVER = "cutover"
    VERIFY = "verify"


Method = Literal["cold", "live", "noop", "replatform"]
METHODS: tuple[str, ...] = get_args(Method)

_COLD: dict[str, Stage] = {
    "precheck": Stage.PRECHECK,
    "power_off_source": Stage.CUTOVER,
    "copy_disks": Stage.CUTOVER,
    "create_target_vm": Stage.CUTOVER,
    "tag_target": Stage.CUTOVER,
    "power_on_target": Stage.CUTOVER,
    "verify": Stage.VERIFY,
    "mark_source_migrated": Stage.VERIFY,
}

METHOD_PHASES: dict[str, dict[str, Stage]] = {
    # Cold migration into the cloud vCenter: works on the lab.
    "cold": _COLD,
    # Cross-vCenter vMotion (RelocateVM_Task with a ServiceLocator): real vCenters only, vcsim cannot relocate.
    "live": {
        "precheck": Stage.PRECHECK,
        "build_relocate_spec": Stage.CUTOVER,
        "relocate": Stage.CUTOVER,
        "verify": Stage.VERIFY,
    },
    # The cold phases against a fake estate (migrate.engine.noop): dry-run style tests and benchmarks.
    "noop": dict(_COLD),
    # Re-platform to a native EC2 instance (migrate.engine.replatform): disks streamed into EBS snapshots,
    # an AMI, a right-sized instance; works on the lab (vcsim datastore + moto).
    "replatform": {
        "precheck": Stage.PRECHECK,
        "power_off_source": Stage.CUTOVER,
        "upload_disks": Stage.CUTOVER,
        "register_image": Stage.CUTOVER,
        "launch_instance": Stage.CUTOVER,
        "wait_ready": Stage.VERIFY,
        "verify": Stage.VERIFY,
        "mark_source_migrated": Stage.VERIFY,
    },
}

# Phases that only read (besides every precheck phase). The runner makes a phase's start durable, with
# everything recorded before it, unless the phase only reads: so after a crash only the last phase that
# changed something runs again, never an earlier one (re-copying disks under a target VM already
# powered on would corrupt it).
READ_ONLY_PHASES: dict[str, frozenset[str]] = {
    "cold": frozenset({"verify"}),
    "live": frozenset({"build_relocate_spec", "verify"}),
    "noop": frozenset({"verify"}),
    "replatform": frozenset({"wait_ready", "verify"}),
}


def reads_only(method: str, phase: str) -> bool:
    """True if `phase` of `method` changes nothing (prechecks, verification)."""
    return METHOD_PHASES[method][phase] is Stage.PRECHECK or phase in READ_ONLY_PHASES[method]
