"""Hosts, clusters (DRS rules and groups), datastores, networks, folders and pools as inventory records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.vcenter.soap_reader import SoapReader, as_list
from migrate.models.inventory import Cluster, Datastore, DrsRule, Host, Network

__all__ = ["Estate", "clusters_with_rules", "read_estate"]


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    return value is True or value == "true"


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


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


def read_estate(reader: SoapReader) -> Estate:
    """Read every non-VM object the inventory describes (a handful of small calls)."""
    estate = Estate()
    for obj_type in ("Folder", "Datacenter", "ComputeResource", "ResourcePool"):
        refs = reader.objects(obj_type)        # subtypes too: clusters, vApps
        kinds = {ref: kind for kind, ref in refs}
        for ref, props in reader.read(obj_type, ["name", "parent"], refs):
            estate.parents[ref] = (kinds[ref], props.get("name") or ref, props.get("parent"))

    host_paths = ["name", "parent", "summary.hardware", "runtime.connectionState", "runtime.inMaintenanceMode",
                  "summary.config.product.version", "config.network.portgroup"]
    standard_vlans: dict[str, int] = {}     # standard port group name -> VLAN, from the hosts' vSwitch config
    for ref, props in reader.read("HostSystem", host_paths):
        estate.parents[ref] = ("HostSystem", props.get("name") or ref, props.get("parent"))
        hardware = props.get("summary.hardware") or {}
        for portgroup in as_list(props.get("config.network.portgroup")):
            spec = (portgroup.get("spec") if isinstance(portgroup, dict) else None) or {}
            if spec.get("name") and str(spec.get("vlanId", "")).isdigit():
                standard_vlans.setdefault(spec["name"], int(spec["vlanId"]))
        estate.hosts.append(Host(
            id=ref, name=props.get("name") or ref, cluster=estate.cluster_of_host(ref),
            datacenter=estate.datacenter(ref),
            cpu_cores=_int(hardware.get("numCpuCores")), cpu_threads=_int(hardware.get("numCpuThreads")),
            cpu_mhz=_int(hardware.get("cpuMhz")), memory_bytes=_int(hardware.get("memorySize")),
            connection_state=props.get("runtime.connectionState"),
            maintenance_mode=_flag(props.get("runtime.inMaintenanceMode")),
            version=props.get("summary.config.product.version")))

    estate.raw_clusters = reader.read("ClusterComputeResource", ["name", "host", "configurationEx"])

    for ref, props in reader.read("Datastore", ["name", "summary.type", "summary.capacity", "summary.freeSpace",
                                                "summary.url"]):
        estate.datastores.append(Datastore(
            id=ref, name=props.get("name") or ref, type=props.get("summary.type"),
            capacity_bytes=props.get("summary.capacity"), free_bytes=props.get("summary.freeSpace"),
            url=props.get("summary.url")))

    switches = {ref: props.get("name") or ref for ref, props in reader.read("DistributedVirtualSwitch", ["name"])}
    portgroups = {ref: props for ref, props in reader.read(
        "DistributedVirtualPortgroup", ["config.key", "config.defaultPortConfig", "config.distributedVirtualSwitch",
                                        "config.uplink"])}
    network_refs = reader.objects("Network")
    network_kinds = {ref: kind for kind, ref in network_refs}
    for ref, props in reader.read("Network", ["name"], network_refs):
        name = props.get("name") or ref
        kind = network_kinds[ref]
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

    for ref, props in reader.read("VirtualApp", ["name", "vm"]):
        for vm_ref in as_list(props.get("vm")):
            estate.vapp_members[vm_ref] = props.get("name") or ref
    estate._memo.clear()           # lookups made while reading saw a partial estate
    return estate


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
