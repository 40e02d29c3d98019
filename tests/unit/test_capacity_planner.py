"""Hosts to add to an existing cluster (planners/capacity.py) against hand-computed examples.

i4i.metal as moto 5.2.5 reports it (see tests/unit/test_sizing.py): 64 cores -> 256 vCPU per host at
4 vCPU/core; 1048576 MiB x 0.7 = 734003.2 MiB; 30000 GB = 27939.68 GiB raw x 0.7 = 19557.77 GiB.
Default policy: RAID-1 FTT=1 (x2, >= 3 hosts), 1 spare.
"""

from __future__ import annotations

import itertools

import pytest

from planners.capacity import CapacityPolicy, ClusterHost, Demand, plan_capacity, plan_waves_capacity
from planners.instance_types import InstanceType
from planners.sizing import SizingPolicy, VmSize, host_capacity, size_hosts

I4I = InstanceType(name="i4i.metal", vcpus=128, default_cores=64, threads_per_core=2, memory_mib=1048576,
                   architectures=["x86_64"], bare_metal=True, current_generation=True, instance_storage_gb=30000)
NEW = host_capacity(I4I, SizingPolicy())


def lab_hosts(count: int = 3) -> list[ClusterHost]:
    """Cluster-1 of the lab: i4i-metal hosts, 64 cores, 1 TiB."""
    return [ClusterHost(f"i4i-metal-{i:02d}", cores=64, memory_mib=1048576) for i in range(1, count + 1)]


def vms(count: int, vcpus: int = 2, memory_mb: int = 4096, storage_gb: float = 50.0) -> list[VmSize]:
    return [VmSize(f"vm-{i}", vcpus, memory_mb, storage_gb) for i in range(count)]


def test_empty_wave_adds_nothing_even_on_an_undersized_cluster() -> None:
    """A wave with no VMs never grows the cluster (binding empty_wave), even below the policy minimum."""
    plan = plan_capacity(Demand(), Demand.of(vms(5)), lab_hosts(1), NEW)
    assert plan.hosts_to_add == 0
    assert plan.binding == "empty_wave"
    assert plan.hosts_after == 1


def test_already_fits() -> None:
    """5 hosts (4 + 1 spare >= 3 + 1) easily hold 10 small VMs: nothing to add."""
    plan = plan_capacity(Demand.of(vms(10)), Demand(), lab_hosts(5), NEW)
    assert (plan.hosts_to_add, plan.binding, plan.hosts_after) == (0, "fits", 5)
    assert plan.fill_after_failure["cpu"] == pytest.approx(20 / (4 * 256))


def test_lab_cluster_needs_the_spare_on_top_of_the_minimum() -> None:
    """N+1 kicks in: 3 hosts = the RAID-1 minimum, but with 1 spare a 4th host is needed for any VM."""
    plan = plan_capacity(Demand.of(vms(1)), Demand(), lab_hosts(3), NEW)
    assert (plan.hosts_to_add, plan.binding, plan.hosts_after) == (1, "policy_minimum", 4)


def test_needs_exactly_the_minimum_without_spares() -> None:
    """spare 0, empty cluster: exactly the policy minimum (3), and with min_hosts=5 exactly 5."""
    policy = CapacityPolicy(SizingPolicy(spare_hosts=0))
    assert plan_capacity(Demand.of(vms(1)), Demand(), [], NEW, policy).hosts_to_add == 3
    policy = CapacityPolicy(SizingPolicy(spare_hosts=0), min_hosts=5)
    plan = plan_capacity(Demand.of(vms(1)), Demand(), [], NEW, policy)
    assert (plan.hosts_to_add, plan.binding) == (5, "policy_minimum")


def test_cpu_binding_with_placed_vms() -> None:
    """Placed 600 vCPU + wave 400 = 1000 vCPU; survivors must hold it: ceil(1000/256) = 4 -> 5 hosts, add 2."""
    placed = Demand(vms=3, vcpus=600, memory_mib=30000, storage_gib=300)
    wave = Demand(vms=4, vcpus=400, memory_mib=30000, storage_gib=300)
    plan = plan_capacity(wave, placed, lab_hosts(3), NEW)
    assert (plan.hosts_to_add, plan.binding, plan.hosts_after) == (2, "cpu", 5)
    assert plan.total.vcpus == 1000
    assert plan.capacity["cpu"] == 4 * 256


def test_memory_binding() -> None:
    """3,000,000 MiB / 734003.2 per host = 4.09 -> 5 survivors + 1 spare = 6 hosts: add 3."""
    wave = Demand(vms=10, vcpus=10, memory_mib=3_000_000, storage_gib=10)
    plan = plan_capacity(wave, Demand(), lab_hosts(3), NEW)
    assert (plan.hosts_to_add, plan.binding) == (3, "memory")


def test_storage_binding_uses_policy_factor() -> None:
    """50,000 GiB x 2.0 = 100,000 / 19557.77 = 5.11 -> 6 + 1 = 7 hosts: add 4.

    RAID-5 (x1.33): 66,667 / 19557.77 = 3.41 -> 4 + 1 = 5 (its minimum 4 + 1 ties; storage is named first).
    """
    wave = Demand(vms=10, vcpus=10, memory_mib=1000, storage_gib=50_000)
    assert plan_capacity(wave, Demand(), lab_hosts(3), NEW).hosts_to_add == 4
    raid5 = SizingPolicy(vsan_policy="raid5-ftt1")
    plan = plan_capacity(wave, Demand(), lab_hosts(3), host_capacity(I4I, raid5), CapacityPolicy(raid5))
    assert (plan.hosts_to_add, plan.binding) == (2, "storage")


def test_unusable_hosts_give_no_capacity() -> None:
    """A disconnected host and one in maintenance mode do not count: 5 hosts, 3 usable -> add 1."""
    hosts = [*lab_hosts(3), ClusterHost("down", 64, 1048576, usable=False),
             ClusterHost("mm", 64, 1048576, usable=False)]
    plan = plan_capacity(Demand.of(vms(1)), Demand(), hosts, NEW)
    assert plan.hosts_to_add == 1
    assert plan.hosts_unusable == ["down", "mm"]


def test_spare_removes_the_largest_host() -> None:
    """A heterogeneous cluster: the N+1 survivors lose the biggest host (512 cores), not a small one."""
    big = ClusterHost("big", cores=512, memory_mib=1048576)
    hosts = [big, *lab_hosts(3)]
    # survivors = 3 x 256 = 768 vCPU; 769 vCPU needs one more host
    assert plan_capacity(Demand(vms=1, vcpus=768), Demand(), hosts, NEW).hosts_to_add == 0
    assert plan_capacity(Demand(vms=1, vcpus=769), Demand(), hosts, NEW).hosts_to_add == 1


def test_equals_size_hosts_on_an_empty_cluster() -> None:
    """For an empty cluster of one type the answer is exactly planners.sizing's host count."""
    for count, vcpus, mem, disk, spare in itertools.product((1, 7, 40), (1, 8, 64), (1024, 65536), (10, 900),
                                                            (0, 1, 2)):
        policy = SizingPolicy(spare_hosts=spare)
        sizes = vms(count, vcpus, mem, disk)
        expected = size_hosts(sizes, I4I, policy).hosts
        got = plan_capacity(Demand.of(sizes), Demand(), [], host_capacity(I4I, policy), CapacityPolicy(policy))
        assert got.hosts_to_add == expected, (count, vcpus, mem, disk, spare)


def test_waves_accumulate_demand_and_added_hosts() -> None:
    """Wave 1 adds the spare host; wave 2 (CPU-heavy) adds only what wave 1's hosts do not cover."""
    waves = [("1", Demand(vms=1, vcpus=10)), ("2", Demand(vms=2, vcpus=1000)), ("3", Demand())]
    plans = plan_waves_capacity(waves, Demand(), lab_hosts(3), NEW)
    assert [p.hosts_to_add for p in plans] == [1, 1, 0]
    assert [p.hosts_after for p in plans] == [4, 5, 5]
    assert plans[1].total.vcpus == 1010
    assert plans[1].binding == "cpu"


def test_explanation_and_dict() -> None:
    """The plan explains itself and serialises to plain data."""
    plan = plan_capacity(Demand.of(vms(1)), Demand(), lab_hosts(3), NEW, wave_id="w1")
    data = plan.to_dict()
    assert data["wave_id"] == "w1" and data["hosts_to_add"] == 1
    assert any("add 1 x i4i.metal" in line for line in data["explanation"])


def test_bad_min_hosts() -> None:
    """min_hosts below 1 is refused, naming the field."""
    with pytest.raises(ValueError, match="min_hosts"):
        CapacityPolicy(min_hosts=0)
