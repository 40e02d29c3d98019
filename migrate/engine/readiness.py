"""The readiness rule catalog: which inventory facts stop (or warn about) which migration method.

One catalog for `migrate assess` (inventory facts, migrate.engine.readiness_assess) and the run's prechecks
(live facts, migrate.engine.vm_checks): a rule's id is the precheck's `check` name where both look at the
same condition, so an assessment and a precheck never disagree. Pure data, no provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EC2_MAX_DATA_DISKS",
    "EC2_MAX_VOLUME_BYTES",
    "METHODS",
    "REHOST",
    "REPLATFORM",
    "RULES",
    "SNAPSHOT_RESERVE",
    "UNSUPPORTED_DEVICES",
    "WARM",
    "Hit",
    "Rule",
    "Severity",
    "Status",
]

Severity = Literal["block", "warn"]
Status = Literal["block", "warn", "unknown"]    # unknown: a fact the rule reads is not in the inventory

METHODS = ("cold", "warm", "live", "replatform", "warm_replatform")
REHOST = ("cold", "warm", "live")
REPLATFORM = ("replatform", "warm_replatform")
WARM = ("warm", "warm_replatform")
COPIED = ("cold", "warm", "replatform", "warm_replatform")   # the disks' bytes are read and written again

UNSUPPORTED_DEVICES = frozenset({"usb", "serial", "parallel", "pci-passthrough"})
EC2_MAX_VOLUME_BYTES = 16 * 1024 ** 4     # a gp3/io2 EBS volume holds at most 16 TiB
EC2_MAX_DATA_DISKS = 25                   # /dev/xvdb ... /dev/xvdz beside the boot volume: 26 volumes
SNAPSHOT_RESERVE = 0.10                   # free space a datastore keeps for a VM's snapshot deltas, of its disks


@dataclass(frozen=True)
class Rule:
    """One readiness rule: `severity` is the worst it finds (a finding may be milder, or unknown)."""

    id: str
    severity: Severity
    methods: tuple[str, ...]
    facts: tuple[str, ...]
    fix: str
    title: str


@dataclass(frozen=True)
class Hit:
    """What a rule found on one VM; `methods` None: every method of the rule."""

    rule: str
    status: Status
    message: str
    methods: tuple[str, ...] | None = None


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


RULES: dict[str, Rule] = _rules(
    Rule("change_tracking", "block", WARM, ("change_tracking", "snapshots"),
         "none needed when it can be turned on; else remove the VM's snapshots first",
         "changed block tracking off: turned on at replication (impossible while snapshots exist)"),
    Rule("snapshots", "block", COPIED, ("snapshots",),
         "consolidate or delete the VM's snapshots", "snapshots present: only base disks are moved"),
    Rule("consolidation", "block", METHODS, ("consolidation_needed", "running_on_snapshot", "disks.path"),
         "consolidate the VM's disks (Snapshot > Consolidate)", "disks need consolidation / VM runs on a delta"),
    Rule("independent_disk", "block", WARM, ("disks.mode",),
         "make the disk dependent (persistent), or use cold", "independent disks: snapshots and tracking skip them"),
    Rule("rdm", "block", METHODS, ("disks.rdm",),
         "convert the raw device mapping to a virtual disk (Storage vMotion, virtual mode)",
         "raw device mapping (physical or virtual)"),
    Rule("shared_disk", "block", METHODS, ("disks.sharing",),
         "move the cluster's shared disks separately; unshare them", "multi-writer shared disk"),
    Rule("controller", "block", REHOST, ("disks.controller",),
         "move the disk to a supported controller (pvscsi, lsilogic, sata, nvme)", "unsupported disk controller"),
    Rule("devices", "block", METHODS, ("devices",),
         "remove the USB, serial, parallel and PCI passthrough devices", "passthrough, USB, serial or parallel device"),
    Rule("sriov", "block", METHODS, ("nics.adapter",),
         "replace the SR-IOV adapter with a vmxnet3 NIC", "SR-IOV network adapter"),
    Rule("vtpm", "block", METHODS, ("devices",),
         "rehost: set up a key provider on the target first; replatform: remove the vTPM (use NitroTPM)",
         "virtual TPM: needs a key provider"),
    Rule("encryption", "block", METHODS, ("encrypted",),
         "rehost: give the target the same key provider; replatform: decrypt the VM first",
         "VM encrypted: needs a key provider"),
    Rule("fault_tolerance", "block", METHODS, ("fault_tolerance_state",),
         "turn fault tolerance off before the move", "vSphere fault tolerance on"),
    Rule("hot_add", "warn", REPLATFORM, ("cpu_hot_add", "memory_hot_add"),
         "size the EC2 instance for the peak: it cannot add CPU or memory while running", "CPU/memory hot-add"),
    Rule("host_affinity", "warn", METHODS, ("clusters.rules", "clusters.vm_groups"),
         "recreate the VM-host rule on the target (its host groups do not move)", "VM-host DRS rule"),
    Rule("guest_identity", "block", REPLATFORM, ("guest.ip_addresses", "guest.hostname", "nics.network"),
         "install/start VMware Tools (the guest reports its IP and name) or stop keeping the private IP",
         "guest IP or host name unknown (needed to keep the IP on EC2)"),
    Rule("guest_os", "block", REPLATFORM, ("guest.guest_id", "firmware", "secure_boot"),
         "use a guest OS and boot mode EC2 import supports, or rehost", "guest OS / boot mode EC2 cannot run"),
    Rule("disk_size", "block", REPLATFORM, ("disks.capacity_bytes",),
         "split the disk below 16 TiB, or rehost", "disk larger than an EBS volume (16 TiB)"),
    Rule("disks", "block", REPLATFORM, ("disks",),
         "at most 26 volumes (a boot disk and 25 data disks): merge disks, or rehost", "no boot disk or > 26 volumes"),
    Rule("hardware_version", "block", REHOST, ("hardware_version", "target hosts.version"),
         "upgrade the target hosts, or move the VM with a lower hardware version",
         "hardware version newer than the target cluster runs"),
    Rule("evc_mode", "block", ("live",), ("min_evc_mode", "target hosts.evc_mode/max_evc_mode"),
         "power the VM off and use cold/warm, or raise the target cluster's EVC mode",
         "VM needs a CPU feature level (EVC) the target cluster does not offer"),
    Rule("snapshot_space", "warn", WARM, ("disks.datastore", "disks.capacity_bytes", "datastores.free_bytes"),
         "free space on the datastore (about 10% of the VM's disks) for the replication snapshots' deltas",
         "datastore short of free space for snapshot deltas"),
    Rule("tools", "warn", METHODS, ("power_state", "guest.tools_status"),
         "install/start VMware Tools, or accept a power-off instead of a guest shutdown",
         "VMware Tools not running on a powered-on VM"),
)
