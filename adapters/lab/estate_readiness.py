"""The lab's readiness VMs (`lab up --readiness`): one or more per readiness rule vcsim can hold, plus clean ones.

Extra VMs named rdy-*, in cl-dev on ds-dev-01, added after the seeded estate so no other VM changes. Each
carries the rule ids `migrate assess` must find on it (migrate.engine.readiness); adapters/lab/readiness_seed.py
gives it its condition. vcsim cannot hold an encrypted VM (it ignores config.keyId), drops the connection
creating a raw device mapping, does not list an added VirtualTPM, and cannot set runtime.consolidationNeeded
(a bool extraConfig cannot carry):
`encryption`, `rdm` and `vtpm` are not seeded, `consolidation` is seeded as a VM running on a delta disk.
"""

from __future__ import annotations

from dataclasses import replace

from adapters.lab.estate import DiskSpec, Estate, VmSpec

__all__ = ["READINESS_VMS", "readiness_vms", "with_readiness"]

# VM name -> the rules seeded on it (a condition may trip more than its own rule: a snapshot with tracking off)
READINESS_VMS: dict[str, tuple[str, ...]] = {
    "rdy-clean-01": (), "rdy-clean-02": (),
    "rdy-cbt-snapshot": ("change_tracking", "snapshots"), "rdy-snapshot": ("snapshots",),
    "rdy-delta": ("consolidation",), "rdy-independent": ("independent_disk",), "rdy-shared": ("shared_disk",),
    "rdy-ide": ("controller",),
    "rdy-serial": ("devices",),
    "rdy-sriov": ("sriov",), "rdy-ft": ("fault_tolerance",), "rdy-hotadd": ("hot_add",),
    "rdy-pinned": ("host_affinity",), "rdy-noip": ("guest_identity",), "rdy-freebsd": ("guest_os",),
    "rdy-bigdisk": ("disk_size", "snapshot_space"), "rdy-27disks": ("disks",), "rdy-hw21": ("hardware_version",),
    "rdy-evc": ("evc_mode",), "rdy-notools": ("tools",),
}
_POWERED_ON = frozenset({"rdy-clean-01", "rdy-notools"})
_GIB_SEED = 4 * 512 * 1024     # bytes written to each disk (the rest is thin)


def readiness_vms(first_ip: int = 200) -> tuple[VmSpec, ...]:
    """The readiness VMs, on pg-app with IPs from 10.50.120.<first_ip>."""
    base = VmSpec(name="", app="readiness", tier="app", env="dev", cluster="cl-dev", host="esx-dev-01.corp.local",
                  cpus=1, memory_mb=1024, disks=(DiskSpec(20, "ds-dev-01", _GIB_SEED),), portgroup="pg-app", ip="",
                  hostname="", guest_id="rhel8_64Guest", firmware="efi", powered_on=False, owner="readiness")
    vms = []
    for index, (name, rules) in enumerate(READINESS_VMS.items()):
        disks = base.disks
        cluster, host = base.cluster, base.host
        if name == "rdy-bigdisk":     # 17 TiB, on a datastore of its own cluster (vcsim counts it as used)
            disks = (DiskSpec(17 * 1024, "ds-prod-02", _GIB_SEED),)
            cluster, host = "cl-prod", "esx-prod-01.corp.local"
        elif name == "rdy-27disks":
            disks = tuple(DiskSpec(1, "ds-dev-01", _GIB_SEED) for _ in range(27))
        vms.append(replace(base, name=name, disks=disks, cluster=cluster, host=host, ip=f"10.50.120.{first_ip + index}",
                           hostname=f"{name}.corp.local", powered_on=name in _POWERED_ON, rules=rules,
                           guest_id="freebsd64Guest" if name == "rdy-freebsd" else base.guest_id))
    return tuple(vms)


def with_readiness(estate: Estate) -> Estate:
    """The estate with the readiness VMs after its own."""
    return replace(estate, vms=estate.vms + readiness_vms())
