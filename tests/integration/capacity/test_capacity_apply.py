"""Capacity on the lab: EC2 dedicated hosts in moto, AddHost on the cloud vcsim, journaled, crash-safe (the
engine's capacity functions on the ports the site's drivers open)."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from adapters.capacity.ec2 import Ec2HostProvisioner
from adapters.capacity.settings import Ec2ProvisionerSettings
from adapters.vcenter.collector import read_view, wait_for_task
from adapters.vcenter.connection import VCenterSession
from migrate.capacity import open_capacity
from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.core.errors import AdapterError, InputError
from migrate.core.models.inventory import Inventory
from migrate.engine.capacity import (
    ReleaseResult,
    WaveCapacityResult,
    apply_capacity,
    ensure_capacity,
    release_capacity,
)
from migrate.engine.capacity_journal import Recorder, journal_recorder
from migrate.engine.capacity_plan import (
    CapacityReport,
    CapacitySettings,
    idempotency_key,
    plan_capacity,
    resolve_host_type,
    vm_sizes_from_facts,
)
from migrate.engine.journal import Journal
from migrate.engine.plan import RunPlan, VmFacts, WavePlan
from migrate.lab.manager import LabInfo
from planners.instance_types import InstanceType
from planners.sizing import VmSize

from .conftest import BASE_HOSTS, add_disconnected_host, cluster_host_names, create_placed_vm, live_hosts, site_with


def wave_sizes(inventory: Inventory) -> list[tuple[str, list[VmSize]]]:
    return [("1", [VmSize.from_vm(vm) for vm in inventory.vms if not vm.template])]


class Crash(Exception):
    """Stands for kill -9 at the point the recorder is called."""


def plan_site(site: SiteConfig, waves: list[tuple[str, list[VmSize]]], settings: CapacitySettings) -> CapacityReport:
    with closing(open_capacity(site)) as ports:
        return plan_capacity(ports.cluster, waves, settings, resolve_host_type(ports.provisioner, settings.host_type))


def apply_site(site: SiteConfig, waves: list[tuple[str, list[VmSize]]], settings: CapacitySettings,
               plan_tag: str) -> list[WaveCapacityResult]:
    with closing(open_capacity(site)) as ports:
        return apply_capacity(ports, waves, plan_tag=plan_tag, settings=settings,
                              host=resolve_host_type(ports.provisioner, settings.host_type))


def ensure_site(site: SiteConfig, sizes: list[VmSize], plan_tag: str, settings: CapacitySettings, *,
                record: Recorder | None = None, host: InstanceType | None = None) -> WaveCapacityResult:
    with closing(open_capacity(site)) as ports:
        host = host or resolve_host_type(ports.provisioner, settings.host_type)
        return ensure_capacity(ports, sizes, plan_tag=plan_tag, wave_id="1", settings=settings, host=host,
                               record=record)


def release_site(site: SiteConfig, plan_tag: str) -> ReleaseResult:
    with closing(open_capacity(site)) as ports:
        return release_capacity(ports, plan_tag, timeout=30)


def test_apply_allocates_adds_reapplies_nothing_and_releases(cap_site: SiteConfig, cap_cloud: VCenterSession,
                                                            cap_inventory: tuple[Inventory, Path], ec2: Any) -> None:
    """A wave that does not fit: moto gets N hosts, Cluster-1 gets the same N; again: nothing; release: all gone."""
    settings = CapacitySettings(vcpu_per_core=0.25, connect_timeout_s=30)   # 16 vCPU per host: CPU binds
    waves = wave_sizes(cap_inventory[0])
    expected = plan_site(cap_site, waves, settings).hosts_to_add
    assert expected >= 2
    try:
        (first,) = apply_site(cap_site, waves, settings, "apply-test")
        allocated = live_hosts(ec2, "apply-test")
        assert len(allocated) == expected == first.newly_allocated
        names = cluster_host_names(cap_cloud, cap_site)
        assert len(names) == BASE_HOSTS + expected
        assert sorted(first.added) == sorted(f"{h['HostId']}.sddc.internal" for h in allocated)
        assert set(first.added) <= set(names)
        assert all(h["HostProperties"]["InstanceType"] == "i4i.metal" for h in allocated)

        (again,) = apply_site(cap_site, waves, settings, "apply-test")
        assert (again.newly_allocated, again.added, again.plan.hosts_to_add) == (0, [], 0)
        assert len(live_hosts(ec2, "apply-test")) == expected
        assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS + expected
    finally:
        released = release_site(cap_site, "apply-test")
    assert len(released.released) == expected and len(released.removed_from_cluster) == expected
    assert live_hosts(ec2, "apply-test") == []
    assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS


def test_crash_between_allocation_and_add_host(cap_site: SiteConfig, cap_cloud: VCenterSession, ec2: Any,
                                               tmp_path: Path) -> None:
    """The recorder journals the allocation, then the process dies before AddHost; the resumed step allocates
    nothing more and adds exactly the hosts the journal holds."""
    create_placed_vm(cap_cloud, cap_site, "placed-db-01", cpus=32, memory_mb=65536)
    facts = [VmFacts(id=f"vm-{i}", name=f"app-{i}", facts={"cpus": 42, "memory_mb": 8192, "storage_gb": 100})
             for i in range(4)]
    sizes = vm_sizes_from_facts(facts)
    settings = CapacitySettings(vcpu_per_core=1.0, connect_timeout_s=30)   # 64 vCPU per host
    expected = plan_site(cap_site, [("1", sizes)], settings).plans[0]
    assert (expected.total.vcpus, expected.hosts_to_add) == (200, 2)       # ceil(200/64) = 4, + 1 spare = 5

    plan = RunPlan(waves=[WavePlan(id=1, vms=[f.id for f in facts])], vms=facts)
    journal = Journal(tmp_path / "journal.db")
    run = journal.create_run(plan, {}).run_id
    recorder = journal_recorder(journal, run, "1")

    def crash_after_allocation(event: str, data: Any) -> None:
        recorder(event, data)
        if event == "allocated":
            raise Crash

    try:
        with pytest.raises(Crash):
            ensure_site(cap_site, sizes, run, settings, record=crash_after_allocation)
        allocated = live_hosts(ec2, run)
        assert len(allocated) == 2
        assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS          # nothing added yet
        (step,) = [s for s in journal.steps(run, "wave", "1") if s.step == "capacity_allocate"]
        assert step.status == "finished"
        assert sorted(step.outputs["host_ids"]) == sorted(h["HostId"] for h in allocated)
        assert step.inputs["key"] == idempotency_key(run, "1")

        result = ensure_site(cap_site, sizes, run, settings, record=journal_recorder(journal, run, "1"))
        assert result.newly_allocated == 0
        assert sorted(h["HostId"] for h in live_hosts(ec2, run)) == sorted(step.outputs["host_ids"])
        assert sorted(result.added) == sorted(step.outputs["names"])
        assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS + 2
        added = [s for s in journal.steps(run, "wave", "1") if s.step == "capacity_add_hosts"]
        assert added and added[-1].status == "finished"

        again = ensure_site(cap_site, sizes, run, settings)
        assert (again.newly_allocated, again.added, again.plan.hosts_to_add) == (0, [], 0)
    finally:
        journal.close()
        release_site(cap_site, run)
        for obj, props in read_view(cap_cloud.si, vim.VirtualMachine, ["name"]):
            if props.get("name") == "placed-db-01":
                wait_for_task(cap_cloud.si, obj.Destroy_Task(), "destroy placed VM")
    assert live_hosts(ec2, run) == []
    assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS


def test_host_that_never_connects_fails_the_step(cap_site: SiteConfig, cap_cloud: VCenterSession, ec2: Any) -> None:
    """An allocated host that sits disconnected in the cluster: AdapterError HostNotConnected naming it, and
    no second allocation; the host stays tagged for release."""
    settings = CapacitySettings(connect_timeout_s=1)
    sizes = [VmSize("vm-x", 2, 4096, 10.0, "x")]          # the policy minimum + spare: one host to add
    provisioner = Ec2HostProvisioner.from_settings(Ec2ProvisionerSettings().for_site(cap_site))
    tags = {"migrate:plan": "dead-test", "migrate:wave": "1"}
    (host,) = provisioner.allocate(1, "i4i.metal", tags, idempotency_key("dead-test", "1"))   # the allocation only
    add_disconnected_host(cap_cloud, cap_site, host.name)
    try:
        with pytest.raises(AdapterError) as caught:
            ensure_site(cap_site, sizes, "dead-test", settings)
        assert caught.value.code == "HostNotConnected"
        assert host.name in str(caught.value) and "disconnected" in str(caught.value)
        assert [h["HostId"] for h in live_hosts(ec2, "dead-test")] == [host.id]
    finally:
        result = release_site(cap_site, "dead-test")
    assert result.removed_from_cluster == [host.name] and result.released == [host.id]
    assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS


def test_unknown_host_type_allocates_nothing(cap_site: SiteConfig, ec2: Any) -> None:
    """i3.metal does not exist in EC2 (moto's AllocateHosts would accept it): InputError before allocating."""
    before = len(ec2.describe_hosts()["Hosts"])
    with pytest.raises(InputError, match=r"i3\.metal"):
        ensure_site(cap_site, [VmSize("vm-x", 2, 4096, 10.0, "x")], "bad-type", CapacitySettings(host_type="i3.metal"))
    assert len(ec2.describe_hosts()["Hosts"]) == before


def test_provider_unreachable_fails_before_the_cluster_changes(cap_lab: LabInfo, cap_site: SiteConfig,
                                                               cap_cloud: VCenterSession, tmp_path: Path) -> None:
    """The EC2 endpoint is down: AdapterError (retryable, naming the endpoint); the cluster is untouched."""
    broken = load_site_config(site_with(cap_lab, tmp_path, endpoint_url="https://127.0.0.1:9"))
    i4i = InstanceType(name="i4i.metal", vcpus=128, default_cores=64, memory_mib=1048576, architectures=["x86_64"],
                       bare_metal=True, instance_storage_gb=30000)
    with pytest.raises(AdapterError) as caught:
        ensure_site(broken, [VmSize("vm-x", 2, 4096, 10.0, "x")], "down", CapacitySettings(), host=i4i)
    assert caught.value.retryable and "127.0.0.1:9" in str(caught.value)
    assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS


def _switch_members(session: VCenterSession) -> set[str]:
    """Host names that are members of every distributed switch (pyvmomi directly)."""
    names = {h._moId: props["name"] for h, props in read_view(session.si, vim.HostSystem, ["name"])}
    per_switch = [{names.get(h._moId, h._moId) for h in props["summary.hostMember"] or []}
                  for _, props in read_view(session.si, vim.DistributedVirtualSwitch, ["summary.hostMember"])]
    assert per_switch, "the lab's cloud vCenter has distributed switches"
    return set.intersection(*per_switch)


def test_crash_between_add_host_and_admit(cap_site: SiteConfig, cap_cloud: VCenterSession, ec2: Any) -> None:
    """Killed after AddHost, before the host joined the switches: the resumed step admits it, so VMs on
    distributed port groups can be created in the cluster again (vCenter refuses them while any host of the
    cluster is off the switch)."""
    settings = CapacitySettings(vcpu_per_core=1.0, connect_timeout_s=30)
    facts = [VmFacts(id=f"vm-{i}", name=f"big-{i}", facts={"cpus": 60, "memory_mb": 8192, "storage_gb": 10})
             for i in range(4)]
    sizes = vm_sizes_from_facts(facts)
    plan_tag = "admit-crash"

    class CrashOnAdmit:
        def __init__(self, cluster: Any) -> None:
            self.cluster = cluster

        def __getattr__(self, name: str) -> Any:
            return getattr(self.cluster, name)

        def admit_host(self, name: str, timeout: float) -> Any:
            raise Crash

    try:
        with closing(open_capacity(cap_site)) as ports:
            host = resolve_host_type(ports.provisioner, settings.host_type)
            crashing = replace(ports, cluster=CrashOnAdmit(ports.cluster))
            with pytest.raises(Crash):
                ensure_capacity(crashing, sizes, plan_tag=plan_tag, wave_id="1", settings=settings, host=host)
        hosts = set(cluster_host_names(cap_cloud, cap_site))
        off_switch = hosts - _switch_members(cap_cloud)
        assert len(hosts) == BASE_HOSTS + 1 and len(off_switch) == 1   # added, then killed before admit

        result = ensure_site(cap_site, sizes, plan_tag, settings)
        assert result.newly_allocated == 0 and off_switch <= set(result.in_cluster)
        assert set(cluster_host_names(cap_cloud, cap_site)) <= _switch_members(cap_cloud)
    finally:
        release_site(cap_site, plan_tag)
    assert len(cluster_host_names(cap_cloud, cap_site)) == BASE_HOSTS
