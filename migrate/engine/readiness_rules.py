"""Readiness rules on one VM's own facts (migrate.engine.readiness holds the catalog).

The conditions the run's prechecks also test take plain values (`snapshot_hits`, `device_hits`, ...): the
prechecks pass the source's live facts (describe_vm), the assessment the inventory's, and both get the same
ids, severities and words. The others take an inventory `Vm`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from migrate.core.models.inventory import Vm
from migrate.engine.readiness import (
    EC2_MAX_DATA_DISKS,
    EC2_MAX_VOLUME_BYTES,
    REHOST,
    REPLATFORM,
    UNSUPPORTED_DEVICES,
    Hit,
)

__all__ = [
    "SUPPORTED_CONTROLLERS",
    "controller_hits",
    "device_hits",
    "ebs_hits",
    "rdm_hits",
    "shared_disk_hits",
    "snapshot_hits",
    "tools_hits",
    "vm_hits",
]

SUPPORTED_CONTROLLERS = frozenset({"pvscsi", "lsilogic", "lsilogic-sas", "buslogic", "sata", "nvme"})
_DELTA = re.compile(r"-\d{6}\.vmdk$")     # a snapshot delta's descriptor: vm-000001.vmdk
_NOT_RUNNING = frozenset({"toolsNotRunning", "toolsNotInstalled"})
# vSphere guest ids EC2 VM import does not take (it imports Windows Server, RHEL, CentOS, Ubuntu, Debian, SUSE,
# Oracle Linux, Fedora, Amazon Linux: docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html)
_UNSUPPORTED_GUESTS = re.compile(r"^(darwin|freebsd|solaris|netware|os2|dos|win31|win95|win98|winme|winnt|win2000|"
                                 r"winxp|winvista|windows7|windows8|windows9|winnet|winlonghorn|other|asianux|"
                                 r"eComStation|unixware|openserver|sco|vmkernel|crxpod|crxsys)", re.IGNORECASE)


# -- conditions the prechecks share --------------------------------------------------------------------

def snapshot_hits(count: int, moved: str) -> list[Hit]:
    if not count:
        return []
    return [Hit("snapshots", "block", f"{count} snapshot(s): consolidate or delete them first (only the base disks "
                                      f"are {moved})")]


def device_hits(devices: Iterable[str]) -> list[Hit]:
    hits = []
    bad = sorted(set(devices) & UNSUPPORTED_DEVICES)
    if bad:
        hits.append(Hit("devices", "block", f"unsupported device(s): {', '.join(bad)}; remove them first"))
    return hits


def rdm_hits(disks: Iterable[Mapping[str, Any]], moved: str) -> list[Hit]:
    return [Hit("rdm", "block", f"disk {d['key']} is a raw device mapping ({d['rdm']}); it cannot be {moved}")
            for d in disks if d.get("rdm")]


def shared_disk_hits(disks: Iterable[Mapping[str, Any]], moved: str) -> list[Hit]:
    return [Hit("shared_disk", "block", f"disk {d['key']} is multi-writer shared; it cannot be {moved} with one VM")
            for d in disks if d.get("sharing") == "sharingMultiWriter"]


def controller_hits(disks: Iterable[Mapping[str, Any]]) -> list[Hit]:
    hits = []
    for disk in disks:
        kind = str(disk.get("controller") or "pvscsi:0").split(":")[0]
        if kind not in SUPPORTED_CONTROLLERS:
            hits.append(Hit("controller", "block", f"disk {disk['key']} is on a {kind} controller; not supported"))
    return hits


def ebs_hits(disks: Sequence[Mapping[str, Any]]) -> list[Hit]:
    """What EBS and an AMI hold: no disk larger than a volume, a boot disk and at most 25 data disks."""
    hits = [Hit("disk_size", "block", f"disk {d['key']} holds {int(d['capacity_bytes']) / 1024 ** 4:.1f} TiB; a gp3 "
                                      "volume holds at most 16 TiB")
            for d in disks if int(d["capacity_bytes"]) > EC2_MAX_VOLUME_BYTES]
    if not disks:
        hits.append(Hit("disks", "block", "the VM has no disk to boot from"))
    elif len(disks) > 1 + EC2_MAX_DATA_DISKS:
        hits.append(Hit("disks", "block", f"{len(disks) - 1} data disks; at most {EC2_MAX_DATA_DISKS} are supported"))
    return hits


def tools_hits(power_state: str | None, tools_running: bool | None) -> list[Hit]:
    if power_state != "poweredOn" or tools_running:
        return []
    if tools_running is None:
        return [Hit("tools", "unknown", "VMware Tools status unknown: the source may be powered off, not shut down")]
    return [Hit("tools", "warn", "VMware Tools not running: the source will be powered off, not shut down")]


# -- rules on an inventory VM ---------------------------------------------------------------------------

def _change_tracking(vm: Vm) -> list[Hit]:
    if vm.change_tracking:
        return []
    if vm.change_tracking is None:
        return [Hit("change_tracking", "unknown", "changed block tracking state unknown")]
    if vm.snapshots:
        return [Hit("change_tracking", "block", f"tracking is off and the VM has {vm.snapshots} snapshot(s): it can "
                                                "only be turned on without snapshots")]
    return [Hit("change_tracking", "warn", "changed block tracking is off: it will be turned on for replication")]


def _consolidation(vm: Vm) -> list[Hit]:
    deltas = [d for d in vm.disks if _DELTA.search(d.path)]
    if vm.consolidation_needed:
        return [Hit("consolidation", "block", "vCenter reports the VM's disks need consolidation")]
    if (vm.running_on_snapshot or deltas) and not vm.snapshots:   # with a snapshot, a delta is the norm
        named = ", ".join(str(d.key) for d in deltas) or "?"
        return [Hit("consolidation", "block", f"the VM runs on snapshot delta disk(s) ({named}) without a snapshot "
                                              "to delete: consolidate them")]
    return []


def _independent(vm: Vm) -> list[Hit]:
    return [Hit("independent_disk", "block", f"disk {d.key} is {d.mode}: snapshots and tracking skip independent "
                                             "disks")
            for d in vm.disks if (d.mode or "").startswith("independent")]


def _sriov(vm: Vm) -> list[Hit]:
    return [Hit("sriov", "block", f"NIC {n.key} is an SR-IOV adapter (passthrough): it cannot move")
            for n in vm.nics if n.adapter == "sriov"]


def _key_provider(vm: Vm) -> list[Hit]:
    hits = []
    if "tpm" in vm.devices:
        hits += [Hit("vtpm", "warn", "virtual TPM: the target cluster needs a key provider before the VM moves",
                     REHOST),
                 Hit("vtpm", "block", "virtual TPM: its secrets cannot move to EC2; remove it first", REPLATFORM)]
    if vm.encrypted:
        hits += [Hit("encryption", "warn", "VM encrypted: the target needs the same key provider", REHOST),
                 Hit("encryption", "block", "VM encrypted: decrypt it before a re-platform", REPLATFORM)]
    return hits


def _fault_tolerance(vm: Vm) -> list[Hit]:
    state = vm.fault_tolerance_state
    if state in (None, "notConfigured"):
        return []
    return [Hit("fault_tolerance", "block", f"fault tolerance is {state}: turn it off before the move")]


def _hot_add(vm: Vm) -> list[Hit]:
    on = [name for name, flag in (("CPU", vm.cpu_hot_add), ("memory", vm.memory_hot_add)) if flag]
    if not on:
        return []
    return [Hit("hot_add", "warn", f"{' and '.join(on)} hot-add on: EC2 cannot add them while running; size the "
                                   "instance for the peak")]


def _guest_os(vm: Vm) -> list[Hit]:
    guest = vm.guest.guest_id
    if not guest:
        return [Hit("guest_os", "unknown", "guest OS unknown: EC2 import support not known")]
    hits = []
    if _UNSUPPORTED_GUESTS.match(guest):
        hits.append(Hit("guest_os", "block", f"guest OS {guest} is not one EC2 VM import supports"))
    if (vm.firmware or "").lower() not in ("bios", "efi"):
        hits.append(Hit("guest_os", "unknown", f"boot firmware {vm.firmware!r}: EC2 boot mode unknown"))
    elif vm.secure_boot:
        hits.append(Hit("guest_os", "warn", "UEFI secure boot on: the instance boots without it unless the AMI "
                                            "carries the UEFI variables"))
    return hits


def vm_hits(vm: Vm, *, moved: str = "moved") -> list[Hit]:
    """Every rule on the VM's own facts (the estate's and the target's are in readiness_context)."""
    disks = [d.model_dump() for d in vm.disks]
    running = None if vm.guest.tools_status is None else vm.guest.tools_status not in _NOT_RUNNING
    return [*_change_tracking(vm), *snapshot_hits(vm.snapshots, moved), *_consolidation(vm), *_independent(vm),
            *rdm_hits(disks, moved), *shared_disk_hits(disks, moved), *controller_hits(disks),
            *device_hits(vm.devices), *_sriov(vm), *_key_provider(vm), *_fault_tolerance(vm), *_hot_add(vm),
            *_guest_os(vm), *ebs_hits(disks), *tools_hits(vm.power_state, running)]
