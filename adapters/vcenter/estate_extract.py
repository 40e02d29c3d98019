"""Hosts, clusters (DRS rules and groups), datastores, networks, folders and pools as inventory records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.vcenter.soap_reader import SoapReader, as_list
from migrate.core.models.inventory import Cluster, Datastore, DrsRule, Host, Network

__all__ = ["Estate", "Placement", "clusters_with_rules", "read_estate"]


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    return value is True or value == "true"


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


@dataclass
class Placement:
    """VM moref -> the host it runs on, the folder it lives in, the resource pool or vApp it belongs to."""

    host: dict[str, str] = field(default_factory=dict)
    folder: dict[str, str] = field(default_factory=dict)
    pool: dict[str, str] = field(default_factory=dict)
    vapp: dict[str, str] = field(default_factory=dict)      # vApp members (the vApps' own VM lists) -> vApp name
    lists: dict[str, tuple[str, list[str]]] = field(default_factory=dict)   # container -> (its type, its list)


@dataclass
class Estate:
    """Everything but the VMs, plus the lookups VM records need (by moref)."""

    parents: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)   # id -> (type, name, parent)
    hosts: list[Host] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    datastores: list[Datastore] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    network_names: dict[str, str] = field(default_factory=dict)         # network moref -> name
    portgroup_by_key: dict[str, tuple[str, str]] = field(default_factory=dict)   # DVPG key -> (moref, name)
    vapp_members: dict[str, str] = field(default_factory=dict)          # VM moref -> vApp name
    raw_clusters: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    placement: Placement = field(default_factory=Placement)        # read only when asked for
    _memo: dict[tuple[str, str | None], str | None] = field(default_factory=dict, repr=False)

    def name(self, ref: str | None) -> str | None:
        return self.parents[ref][1] if ref in self.parents else None

    def datacenter(self, ref: str | None) -> str | None:
        key = ("dc", ref)
        if key not in self._memo:
            self._memo[key] = self._datacenter(ref)
        return self._memo[key]

    def _datacenter(self, ref: str | None) -> str | None:
        while ref in self.parents:
            kind, name, parent = self.parents[ref]
            if kind == "Datacenter":
                return name
            ref = parent
        return None

    def path(self, ref: str | None) -> str | None:
        """Inventory path like govc's: /dc-east/vm/Workloads."""
        key = ("path", ref)
        if key not in self._memo:
            self._memo[key] = self._path(ref)
        return self._memo[key]

    def _path(self, ref: str | None) -> str | None:
        names: list[str] = []
        while ref in self.parents:
            kind, name, parent = self.parents[ref]
            if kind == "Folder" and parent is None:   # the root folder
                break
            names.append(name)
            ref = parent
        return "/" + "/".join(reversed(names)) if names else None

    def cluster_of_host(self, host_ref: str | None) -> str | None:
        if host_ref not in self.parents:
            return None
        parent = self.parents[host_ref][2]
        if parent in self.parents and self.parents[parent][0] == "ClusterComputeResource":
            return self.parents[parent][1]
        return None


_VIEW_TYPES = ("Folder", "Datacenter", "ComputeResource", "ResourcePool", "HostSystem", "Datastore", "Network",
               "DistributedVirtualSwitch")
_PARENTED = {"Folder", "StoragePod", "Datacenter", "ComputeResource", "ClusterComputeResource", "ResourcePool",
             "VirtualApp"}
_HOST_PATHS = ("summary.hardware", "runtime.connectionState", "runtime.inMaintenanceMode",
               "summary.config.product.version", "config.network.portgroup", "summary.currentEVCModeKey",
               "summary.maxEVCModeKey")
_PATHS: dict[str, tuple[str, ...]] = {
    "ManagedEntity": ("name", "parent"),
    "HostSystem": _HOST_PATHS,
    "ClusterComputeResource": ("host", "configurationEx"),
    "Datastore": ("summary.type", "summary.capacity", "summary.freeSpace", "summary.url"),
    "DistributedVirtualPortgroup": ("config.key", "config.defaultPortConfig", "config.distributedVirtualSwitch",
                                    "config.uplink"),
    "VirtualApp": ("vm",),
}
# where each VM runs, lives and belongs, from the containers' own lists (the incremental scan's source)
_PLACEMENT: dict[str, tuple[str, ...]] = {"HostSystem": ("vm",), "Folder": ("childEntity",), "ResourcePool": ("vm",)}


def read_estate(reader: SoapReader, *, placement: bool = False) -> Estate:
    """Read every non-VM object the inventory describes, in one request over one container view.

    With `placement`, also the hosts', folders' and resource pools' VM lists (Estate.placement).
    """
    paths = dict(_PATHS)
    if placement:
        for kind, extra in _PLACEMENT.items():
            paths[kind] = paths.get(kind, ()) + extra
    objects = reader.read_types(_VIEW_TYPES, paths)
    estate = Estate()
    for kind, ref, props in objects:
        if kind in _PARENTED or kind == "HostSystem":
            estate.parents[ref] = (kind, props.get("name") or ref, props.get("parent"))
        if placement:
            _place(estate.placement, kind, ref, props)

    standard_vlans: dict[str, int] = {}     # standard port group name -> VLAN, from the hosts' vSwitch config
    switches: dict[str, str] = {}
    portgroups: dict[str, dict[str, Any]] = {}
    networks: list[tuple[str, str, dict[str, Any]]] = []
    for kind, ref, props in objects:
        name = props.get("name") or ref
        if kind == "HostSystem":
            estate.hosts.append(_host(estate, ref, props, standard_vlans))
        elif kind == "ClusterComputeResource":
            estate.raw_clusters.append((ref, props))
        elif kind == "Datastore":
            estate.datastores.append(Datastore(
                id=ref, name=name, type=props.get("summary.type"), capacity_bytes=props.get("summary.capacity"),
                free_bytes=props.get("summary.freeSpace"), url=props.get("summary.url")))
        elif kind.endswith("DistributedVirtualSwitch"):
            switches[ref] = name
        elif kind in ("Network", "DistributedVirtualPortgroup", "OpaqueNetwork"):
            networks.append((kind, ref, props))
            if kind == "DistributedVirtualPortgroup":
                portgroups[ref] = props
        elif kind == "VirtualApp":
            for vm_ref in as_list(props.get("vm")):
                estate.vapp_members[vm_ref] = name
    for kind, ref, props in networks:
        name = props.get("name") or ref
        estate.network_names[ref] = name
        if ref in portgroups:
            pg = portgroups[ref]
            vlan = ((pg.get("config.defaultPortConfig") or {}).get("vlan") or {}).get("vlanId")
            estate.portgroup_by_key[str(pg.get("config.key") or ref)] = (ref, name)
            estate.networks.append(Network(
                id=ref, name=name, kind="uplink" if _flag(pg.get("config.uplink")) else "distributed",
                vlan=int(vlan) if isinstance(vlan, str) and vlan.isdigit() else None,
                switch=switches.get(pg.get("config.distributedVirtualSwitch") or "")))
        else:
            estate.networks.append(Network(id=ref, name=name, kind="opaque" if kind == "OpaqueNetwork" else "standard",
                                           vlan=standard_vlans.get(name)))
    estate._memo.clear()           # lookups made while reading saw a partial estate
    if placement:
        estate.placement.vapp = estate.vapp_members
    return estate


def _place(placement: Placement, kind: str, ref: str, props: dict[str, Any]) -> None:
    if kind == "HostSystem":
        members, where = as_list(props.get("vm")), placement.host
    elif kind in ("Folder", "StoragePod"):
        members, where = as_list(props.get("childEntity")), placement.folder
    elif kind in ("ResourcePool", "VirtualApp"):
        members, where = as_list(props.get("vm")), placement.pool
    else:
        return
    placement.lists[ref] = (kind, members)
    where.update(dict.fromkeys(members, ref))


def _host(estate: Estate, ref: str, props: dict[str, Any], standard_vlans: dict[str, int]) -> Host:
    hardware = props.get("summary.hardware") or {}
    for portgroup in as_list(props.get("config.network.portgroup")):
        spec = (portgroup.get("spec") if isinstance(portgroup, dict) else None) or {}
        if spec.get("name") and str(spec.get("vlanId", "")).isdigit():
            standard_vlans.setdefault(spec["name"], int(spec["vlanId"]))
    return Host(
        id=ref, name=props.get("name") or ref, cluster=estate.cluster_of_host(ref), datacenter=estate.datacenter(ref),
        cpu_cores=_int(hardware.get("numCpuCores")), cpu_threads=_int(hardware.get("numCpuThreads")),
        cpu_mhz=_int(hardware.get("cpuMhz")), memory_bytes=_int(hardware.get("memorySize")),
        connection_state=props.get("runtime.connectionState"),
        maintenance_mode=_flag(props.get("runtime.inMaintenanceMode")),
        version=props.get("summary.config.product.version"), evc_mode=props.get("summary.currentEVCModeKey") or None,
        max_evc_mode=props.get("summary.maxEVCModeKey") or None)


def clusters_with_rules(estate: Estate, vm_ids: dict[str, str]) -> list[Cluster]:
    """Clusters with DRS rules and groups, VM references turned into VM ids (instanceUuid)."""
    clusters = []
    for ref, props in estate.raw_clusters:
        config = props.get("configurationEx") or {}
        vm_groups: dict[str, list[str]] = {}
        host_groups: dict[str, list[str]] = {}
        for group in as_list(config.get("group")):
            if group.get("_type") == "ClusterVmGroup":
                vm_groups[group["name"]] = [vm_ids[v] for v in as_list(group.get("vm")) if v in vm_ids]
            elif group.get("_type") == "ClusterHostGroup":
                host_groups[group["name"]] = [estate.name(h) or h for h in as_list(group.get("host"))]
        rules = []
        for rule in as_list(config.get("rule")):
            kind = {"ClusterAffinityRuleSpec": "affinity", "ClusterAntiAffinityRuleSpec": "anti-affinity",
                    "ClusterVmHostRuleInfo": "vm-host"}.get(rule.get("_type", ""))
            if kind is None:
                continue
            rules.append(DrsRule(
                name=rule.get("name", ""), kind=kind, enabled=_flag(rule.get("enabled")) is not False,
                mandatory=bool(_flag(rule.get("mandatory"))),
                vms=[vm_ids[v] for v in as_list(rule.get("vm")) if v in vm_ids],
                vm_group=rule.get("vmGroupName"),
                host_group=rule.get("affineHostGroupName") or rule.get("antiAffineHostGroupName")))
        clusters.append(Cluster(
            id=ref, name=props.get("name") or ref, datacenter=estate.datacenter(ref),
            hosts=[estate.name(h) or h for h in as_list(props.get("host"))],
            drs_enabled=_flag((config.get("drsConfig") or {}).get("enabled")),
            ha_enabled=_flag((config.get("dasConfig") or {}).get("enabled")),
            rules=rules, vm_groups=vm_groups, host_groups=host_groups))
    return clusters
