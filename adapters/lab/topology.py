"""Build a named datacenter on an empty vcsim: clusters, hosts, datastores, a DVS with VLAN port groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import vim

from adapters.lab.estate import Topology
from adapters.vcenter.collector import read_properties, wait_for_task
from adapters.vcenter.connection import VCenterSession

__all__ = ["BuiltTopology", "build_topology", "resource_spec"]


@dataclass
class BuiltTopology:
    """Managed objects of a built topology, by name."""

    datacenter: Any
    vm_folder: Any
    clusters: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, Any] = field(default_factory=dict)      # cluster -> pool VMs go into
    hosts: dict[str, Any] = field(default_factory=dict)
    datastores: dict[str, Any] = field(default_factory=dict)
    switch: Any = None
    switch_uuid: str = ""
    portgroups: dict[str, Any] = field(default_factory=dict)
    portgroup_keys: dict[str, str] = field(default_factory=dict)


def build_topology(vc: VCenterSession, topo: Topology, datastore_root: Path) -> BuiltTopology:
    """Create `topo` on an empty simulator; datastores are folders under `datastore_root`."""
    si, where = vc.si, vc.endpoint.host
    dc = si.content.rootFolder.CreateDatacenter(name=topo.datacenter)
    folders = read_properties(si, dc, ["hostFolder", "vmFolder", "networkFolder"])
    vm_folder = folders["vmFolder"]
    if topo.vm_folder:
        vm_folder = vm_folder.CreateFolder(topo.vm_folder)
    built = BuiltTopology(datacenter=dc, vm_folder=vm_folder)

    for cluster_name, host_names in topo.clusters.items():
        cluster = folders["hostFolder"].CreateClusterEx(name=cluster_name, spec=vim.cluster.ConfigSpecEx())
        built.clusters[cluster_name] = cluster
        for host_name in host_names:
            spec = vim.host.ConnectSpec(hostName=host_name, force=True)
            built.hosts[host_name] = wait_for_task(si, cluster.AddHost_Task(spec=spec, asConnected=True),
                                                   "add host", endpoint=where)
        root_pool = read_properties(si, cluster, ["resourcePool"])["resourcePool"]
        built.pools[cluster_name] = root_pool
    if topo.resource_pool:
        first = next(iter(topo.clusters))
        built.pools[first] = built.pools[first].CreateResourcePool(
            name=topo.resource_pool, spec=resource_spec())

    create = vim.DistributedVirtualSwitch.CreateSpec(
        configSpec=vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(name=topo.switch))
    built.switch = wait_for_task(si, folders["networkFolder"].CreateDVS_Task(create), "create DVS", endpoint=where)
    built.switch_uuid = read_properties(si, built.switch, ["uuid"])["uuid"]
    pg_specs = [
        vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name=name, type="earlyBinding", numPorts=128,
            defaultPortConfig=vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
                vlan=vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec(vlanId=vlan, inherited=False)))
        for name, vlan in topo.portgroups.items()
    ]
    wait_for_task(si, built.switch.AddDVPortgroup_Task(pg_specs), "add port groups", endpoint=where)
    # Hosts join after the port groups exist, so each host and cluster lists every port group.
    members = vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(host=[
        vim.dvs.HostMember.ConfigSpec(operation="add", host=host) for host in built.hosts.values()])
    wait_for_task(si, built.switch.ReconfigureDvs_Task(members), "add hosts to DVS", endpoint=where)
    for pg in read_properties(si, built.switch, ["portgroup"])["portgroup"]:
        props = read_properties(si, pg, ["name", "key"])
        built.portgroups[props["name"]] = pg
        built.portgroup_keys[props["name"]] = props["key"]

    for ds_name, cluster_name in topo.datastores.items():
        path = datastore_root / ds_name
        path.mkdir(parents=True, exist_ok=True)
        for host_name in topo.clusters[cluster_name]:
            system = read_properties(si, built.hosts[host_name], ["configManager.datastoreSystem"])
            built.datastores[ds_name] = system["configManager.datastoreSystem"].CreateLocalDatastore(
                name=ds_name, path=str(path))
    return built


def resource_spec() -> vim.ResourceConfigSpec:
    """Default shares, no reservation or limit: what a new pool or vApp gets in the UI."""
    def allocation() -> vim.ResourceAllocationInfo:
        return vim.ResourceAllocationInfo(reservation=0, expandableReservation=True, limit=-1,
                                          shares=vim.SharesInfo(level="normal", shares=0))
    return vim.ResourceConfigSpec(cpuAllocation=allocation(), memoryAllocation=allocation())
