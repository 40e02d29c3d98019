"""Bare-metal host sizing against hand-computed examples (formulas in planners/sizing.py).

Host specs below are what moto 5.2.5's DescribeInstanceTypes returned (adapters.aws.instance_types
records, trimmed to the fields the planners read); tests/integration/test_instance_types_moto.py
checks them against a live moto server.

Per-host denominators used in the hand computations, default policy (4 vCPU/core, memory <= 0.7,
vSAN <= 0.7 used, dedup 1.0, RAID-1 FTT=1 = x2.0 and >= 3 hosts, 1 spare):
  i4i.metal: 64 cores -> 64 * 4 = 256 vCPU;  1048576 MiB * 0.7 = 734003.2 MiB;
             30000 GB = 30000e9 / 2^30 = 27939.68 GiB raw -> * 0.7 = 19557.77 GiB usable
  i3en.metal: 48 cores -> 192 vCPU; 786432 MiB * 0.7 = 550502.4 MiB; 60000 GB = 55879.35 GiB raw
"""

from __future__ import annotations

from typing import Any

import pytest

from migrate.core.models.inventory import Disk, Vm
from planners.instance_types import InstanceType
from planners.sizing import VSAN_POLICIES, SizingPolicy, VmSize, host_problems, size_hosts, size_waves

MOTO_TYPES: list[dict[str, Any]] = [
    {"name": "c7g.large", "vcpus": 2, "default_cores": 2, "threads_per_core": 1, "memory_mib": 4096,
     "architectures": ["arm64"], "boot_modes": ["uefi"], "bare_metal": False, "current_generation": True,
     "burstable": False, "accelerators": [], "instance_storage_gb": None, "hypervisor": "nitro"},
    {"name": "c7i.large", "vcpus": 2, "default_cores": 1, "threads_per_core": 2, "memory_mib": 4096,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "c7i.xlarge", "vcpus": 4, "default_cores": 2, "threads_per_core": 2, "memory_mib": 8192,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "g5.xlarge", "vcpus": 4, "default_cores": 2, "threads_per_core": 2, "memory_mib": 16384,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": False, "burstable": False, "accelerators": ["gpu"], "instance_storage_gb": 250,
     "storage_disks": [{"count": 1, "size_gb": 250, "type": "ssd"}]},
    {"name": "i3en.metal", "vcpus": 96, "default_cores": 48, "threads_per_core": 2, "memory_mib": 786432,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios"], "bare_metal": True, "current_generation": True,
     "burstable": False, "accelerators": [], "instance_storage_gb": 60000,
     "storage_disks": [{"count": 8, "size_gb": 7500, "type": "ssd"}], "storage_nvme": "required",
     "network_performance": "100 Gigabit", "ena_support": "required", "hypervisor": None},
    {"name": "i4i.metal", "vcpus": 128, "default_cores": 64, "threads_per_core": 2, "memory_mib": 1048576,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios"], "bare_metal": True, "current_generation": True,
     "burstable": False, "accelerators": [], "instance_storage_gb": 30000,
     "storage_disks": [{"count": 8, "size_gb": 3750, "type": "ssd"}], "storage_nvme": "required",
     "network_performance": "75 Gigabit", "ena_support": "required", "hypervisor": None},
    {"name": "m4.large", "vcpus": 2, "default_cores": 1, "threads_per_core": 2, "memory_mib": 8192,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios"], "bare_metal": False, "current_generation": False,
     "burstable": False, "accelerators": [], "instance_storage_gb": None, "hypervisor": "xen"},
    {"name": "m7g.large", "vcpus": 2, "default_cores": 2, "threads_per_core": 1, "memory_mib": 8192,
     "architectures": ["arm64"], "boot_modes": ["uefi"], "bare_metal": False, "current_generation": True,
     "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "m7g.xlarge", "vcpus": 4, "default_cores": 4, "threads_per_core": 1, "memory_mib": 16384,
     "architectures": ["arm64"], "boot_modes": ["uefi"], "bare_metal": False, "current_generation": True,
     "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "m7i.2xlarge", "vcpus": 8, "default_cores": 4, "threads_per_core": 2, "memory_mib": 32768,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "m7i.large", "vcpus": 2, "default_cores": 1, "threads_per_core": 2, "memory_mib": 8192,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "m7i.metal-24xl", "vcpus": 96, "default_cores": 48, "threads_per_core": 2, "memory_mib": 393216,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios"], "bare_metal": True, "current_generation": True,
     "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "m7i.xlarge", "vcpus": 4, "default_cores": 2, "threads_per_core": 2, "memory_mib": 16384,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "r7i.large", "vcpus": 2, "default_cores": 1, "threads_per_core": 2, "memory_mib": 16384,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "r7i.xlarge", "vcpus": 4, "default_cores": 2, "threads_per_core": 2, "memory_mib": 32768,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": None},
    {"name": "t3.large", "vcpus": 2, "default_cores": 1, "threads_per_core": 2, "memory_mib": 8192,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": True, "accelerators": [], "instance_storage_gb": None},
    {"name": "t3.micro", "vcpus": 2, "default_cores": 1, "threads_per_core": 2, "memory_mib": 1024,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": True, "accelerators": [], "instance_storage_gb": None},
    {"name": "x2iedn.xlarge", "vcpus": 4, "default_cores": 2, "threads_per_core": 2, "memory_mib": 131072,
     "architectures": ["x86_64"], "boot_modes": ["legacy-bios", "uefi"], "bare_metal": False,
     "current_generation": True, "burstable": False, "accelerators": [], "instance_storage_gb": 118,
     "storage_disks": [{"count": 1, "size_gb": 118, "type": "ssd"}]},
]


def moto_types() -> list[InstanceType]:
    return [InstanceType.model_validate(r) for r in MOTO_TYPES]


def moto_type(name: str) -> InstanceType:
    return next(t for t in moto_types() if t.name == name)


def fleet(count: int, vcpus: int, memory_gib: int, disk_gib: float, prefix: str = "vm") -> list[VmSize]:
    return [VmSize(f"{prefix}-{i}", vcpus, memory_gib * 1024, disk_gib) for i in range(count)]


I4I = moto_type("i4i.metal")


def test_brief_example_40_vms_policy_minimum() -> None:
    """40 x (4 vCPU, 16 GiB, 100 GiB) on i4i.metal: every resource fits one host, RAID-1 FTT=1 needs 3, +1 = 4.

    cpu 160/256 = 0.625 -> 1; memory 655360/734003.2 = 0.89 -> 1; storage 4000*2 = 8000/19557.77 = 0.41 -> 1;
    max(1, 1, 1, 3) + 1 = 4. Utilisation on 4 hosts: cpu 160/1024, memory 655360/4194304, storage 8000/111758.7.
    """
    s = size_hosts(fleet(40, 4, 16, 100), I4I)
    assert (s.cpu.hosts, s.memory.hosts, s.storage.hosts, s.policy_minimum) == (1, 1, 1, 3)
    assert (s.base_hosts, s.spare_hosts, s.hosts, s.binding) == (3, 1, 4, "policy_minimum")
    assert s.capacity.cores == 64 and s.capacity.vcpus == 256
    assert s.capacity.memory_usable_mib == pytest.approx(734003.2)
    assert s.capacity.storage_raw_gib == pytest.approx(27939.677, abs=1e-3)
    assert s.storage.demand == pytest.approx(8000)
    assert s.utilisation["cpu"] == pytest.approx(0.15625)
    assert s.utilisation["memory"] == pytest.approx(0.15625)
    assert s.utilisation["storage"] == pytest.approx(8000 / (4 * 27939.677), rel=1e-6)
    assert s.utilisation_after_failure["cpu"] == pytest.approx(160 / 768)


def test_cpu_bound() -> None:
    """200 x (8 vCPU, 8 GiB, 50 GiB): cpu 1600/256 = 6.25 -> 7, memory 2.23 -> 3, storage 20000/19557.77 -> 2; 8."""
    s = size_hosts(fleet(200, 8, 8, 50), I4I)
    assert (s.cpu.hosts, s.memory.hosts, s.storage.hosts) == (7, 3, 2)
    assert (s.hosts, s.binding) == (8, "cpu")


def test_ratio_changes_cpu_need() -> None:
    """The same 200 VMs at 8 vCPU per core: 1600/512 = 3.125 -> 4 hosts for CPU, 4 + 1 = 5."""
    s = size_hosts(fleet(200, 8, 8, 50), I4I, SizingPolicy(vcpu_per_core=8))
    assert (s.cpu.hosts, s.hosts, s.binding) == (4, 5, "cpu")


def test_other_host_type_from_the_api() -> None:
    """On i3en.metal (48 cores): cpu 1600/192 = 8.33 -> 9, memory 1638400/550502.4 = 2.98 -> 3; 9 + 1 = 10."""
    s = size_hosts(fleet(200, 8, 8, 50), moto_type("i3en.metal"))
    assert (s.cpu.hosts, s.memory.hosts, s.hosts) == (9, 3, 10)


def test_memory_bound() -> None:
    """40 x (4 vCPU, 64 GiB, 100 GiB): memory 2621440/734003.2 = 3.57 -> 4, cpu 1, storage 1; 4 + 1 = 5."""
    s = size_hosts(fleet(40, 4, 64, 100), I4I)
    assert (s.cpu.hosts, s.memory.hosts, s.storage.hosts) == (1, 4, 1)
    assert (s.hosts, s.binding) == (5, "memory")


def test_memory_max_util() -> None:
    """The same VMs with memory capped at 0.9: 2621440/943718.4 = 2.78 -> 3, equal to the policy minimum; 4."""
    s = size_hosts(fleet(40, 4, 64, 100), I4I, SizingPolicy(memory_max_util=0.9))
    assert (s.memory.hosts, s.hosts, s.binding) == (3, 4, "memory")


def test_storage_bound_and_policies() -> None:
    """20 x 4096 GiB = 81920 GiB on i4i.metal (19557.77 GiB usable per host), per vSAN policy.

    raid1-ftt1: 81920*2   = 163840 / 19557.77 = 8.38 -> 9, min 3 -> 9 + 1 = 10
    raid5-ftt1: 81920*4/3 = 109226.7        = 5.58 -> 6, min 4 -> 6 + 1 = 7
    raid6-ftt2: 81920*1.5 = 122880          = 6.28 -> 7, min 6 -> 7 + 1 = 8
    raid1-ftt2: 81920*3   = 245760          = 12.57 -> 13, min 5 -> 13 + 1 = 14
    """
    vms = fleet(20, 2, 8, 4096)
    expected = {"raid1-ftt1": (9, 10), "raid5-ftt1": (6, 7), "raid6-ftt2": (7, 8), "raid1-ftt2": (13, 14)}
    for policy, (storage_hosts, hosts) in expected.items():
        s = size_hosts(vms, I4I, SizingPolicy(vsan_policy=policy))
        assert (s.storage.hosts, s.hosts, s.binding) == (storage_hosts, hosts, "storage"), policy


def test_dedup_and_usable_fraction() -> None:
    """Dedup 2.0: 163840/2 = 81920 / 19557.77 = 4.19 -> 5 (+1 = 6); usable 0.8: 163840/22351.74 = 7.33 -> 8."""
    vms = fleet(20, 2, 8, 4096)
    assert size_hosts(vms, I4I, SizingPolicy(dedup_ratio=2.0)).hosts == 6
    assert size_hosts(vms, I4I, SizingPolicy(storage_usable_fraction=0.8)).storage.hosts == 8


def test_policy_minimums_and_spares() -> None:
    """With almost nothing to host, the policy minimum plus the spare hosts decides: 3/5/4/6 + spare."""
    vms = fleet(1, 1, 1, 1)
    for name, policy in VSAN_POLICIES.items():
        assert size_hosts(vms, I4I, SizingPolicy(vsan_policy=name)).hosts == policy.min_hosts + 1
    names = ("raid1-ftt1", "raid1-ftt2", "raid5-ftt1", "raid6-ftt2")
    assert [VSAN_POLICIES[n].min_hosts for n in names] == [3, 5, 4, 6]
    assert size_hosts(vms, I4I, SizingPolicy(spare_hosts=0)).hosts == 3
    assert size_hosts(vms, I4I, SizingPolicy(spare_hosts=2)).hosts == 5
    assert size_hosts([], I4I).hosts == 4


def test_exact_fit_does_not_round_up() -> None:
    """64 x 4 vCPU = 256 vCPU is exactly one host's worth at 4:1, so CPU needs 1 host, not 2."""
    assert size_hosts(fleet(64, 4, 1, 1), I4I).cpu.hosts == 1
    assert size_hosts(fleet(65, 4, 1, 1), I4I).cpu.hosts == 2


def test_explanation_and_dict() -> None:
    """The result explains itself: each formula with its numbers, and a JSON-ready dict."""
    s = size_hosts(fleet(40, 4, 64, 100), I4I)
    text = "\n".join(s.explain())
    assert "cpu: 160 vCPU / (64 cores x 4 vCPU/core = 256 per host) = 0.62 -> 1" in text
    assert "memory: 2621440 MiB / (1048576 MiB x 0.7 = 734003 per host) = 3.57 -> 4" in text
    assert "hosts = max(1, 4, 1, 3) + 1 spare = 5 i4i.metal (binding: memory)" in text
    data = s.to_dict()
    assert data["hosts"] == 5 and data["memory"]["hosts"] == 4 and data["policy"]["vsan_factor"] == 2.0
    assert data["explanation"] == s.explain()


def test_cumulative_waves() -> None:
    """VMs accumulate: each wave is sized with everything moved so far; the cluster only grows.

    wave 1: 40 x (4, 16 GiB, 100 GiB)                       -> 4 hosts (policy minimum 3 + 1)
    wave 2: + 40 x (4, 64 GiB, 100 GiB): memory 3276800/734003.2 = 4.46 -> 5, +1 = 6 (add 2)
    wave 3: + 100 x (8, 8 GiB, 50 GiB): cpu 1120/256 = 4.38 -> 5, memory 4096000/734003.2 = 5.58 -> 6, +1 = 7 (add 1)
    """
    waves = [fleet(40, 4, 16, 100, "a"), fleet(40, 4, 64, 100, "b"), fleet(100, 8, 8, 50, "c")]
    sized = size_waves(waves, I4I, SizingPolicy(), wave_ids=["w1", "w2", "w3"])
    assert [(w.wave_id, w.vms, w.vms_cumulative) for w in sized] == [("w1", 40, 40), ("w2", 40, 80), ("w3", 100, 180)]
    assert [w.sizing.hosts for w in sized] == [4, 6, 7]
    assert [(w.hosts_before, w.hosts_to_add, w.hosts_after) for w in sized] == [(0, 4, 4), (4, 2, 6), (6, 1, 7)]
    assert [w.sizing.binding for w in sized] == ["policy_minimum", "memory", "memory"]


def test_cumulative_waves_with_existing_hosts() -> None:
    """A cluster of 5 hosts needs nothing for wave 1 (4), one host for wave 2 (6), one for wave 3 (7)."""
    waves = [fleet(40, 4, 16, 100, "a"), fleet(40, 4, 64, 100, "b"), fleet(100, 8, 8, 50, "c")]
    sized = size_waves(waves, I4I, existing_hosts=5)
    assert [(w.hosts_before, w.hosts_to_add, w.hosts_after) for w in sized] == [(5, 0, 5), (5, 1, 6), (6, 1, 7)]
    assert [w.wave_id for w in sized] == ["1", "2", "3"]
    big = size_waves(waves, I4I, existing_hosts=10)
    assert all(w.hosts_to_add == 0 and w.hosts_after == 10 for w in big)


def test_vm_size_from_inventory_and_graph() -> None:
    """VmSize reads an inventory VM (provisioned disk GiB) and a graph node (vcpu, memory_mb, gb)."""
    vm = Vm(id="u1", name="db", cpus=4, memory_mb=8192,
            disks=[Disk(key=1, capacity_bytes=40 * 2**30), Disk(key=2, capacity_bytes=60 * 2**30)])
    assert VmSize.from_vm(vm) == VmSize("u1", 4, 8192, 100.0, "db")
    assert VmSize.from_node("u1", {"name": "db", "vcpu": 4, "memory_mb": 8192, "gb": 100.0}) == VmSize.from_vm(vm)


def test_bad_policy_and_hosts() -> None:
    """Invalid knobs and non-vSAN host types raise ValueError naming the problem."""
    with pytest.raises(ValueError, match="vcpu_per_core"):
        SizingPolicy(vcpu_per_core=0)
    with pytest.raises(ValueError, match=r"memory_max_util.*storage_usable_fraction"):
        SizingPolicy(memory_max_util=1.5, storage_usable_fraction=0)
    with pytest.raises(ValueError, match="vsan_policy"):
        SizingPolicy(vsan_policy="raid0")
    with pytest.raises(ValueError, match="dedup_ratio"):
        SizingPolicy(dedup_ratio=0.5)
    assert host_problems(I4I) == []
    assert any("no local instance storage" in p for p in host_problems(moto_type("m7i.metal-24xl")))
    assert any("not a bare-metal" in p for p in host_problems(moto_type("m7i.large")))
    with pytest.raises(ValueError, match="not a bare-metal"):
        size_hosts([], moto_type("m7i.large"))
    with pytest.raises(ValueError, match="existing_hosts"):
        size_waves([], I4I, existing_hosts=-1)
