"""The estate around the VMs in an RVTools export: hosts, clusters, datastores, networks and vApps."""

from __future__ import annotations

from typing import Literal

from migrate.core.models.inventory import MAX_HOST_BYTES, MAX_VCPUS, Cluster, Datastore, Host, Network, VApp, Vm
from migrate.importers.rvtools_columns import MIB
from migrate.importers.rvtools_table import Row, Table

__all__ = [
    "dvswitch_names",
    "networks",
    "read_clusters",
    "read_datastores",
    "read_hosts",
    "vapps",
    "vnetwork_rows",
    "with_referenced_clusters",
    "with_referenced_datastores",
]

_MAX_MIB = MAX_HOST_BYTES / MIB     # host memory and datastore sizes, in the sheets' MiB

def vnetwork_rows(vnetwork: Table | None) -> list[tuple[str, str | None]]:
    """(network, switch) of every vNetwork row that names a network."""
    if vnetwork is None:
        return []
    return [(net, row.text("switch")) for row in vnetwork.rows() if (net := row.text("network"))]


def dvswitch_names(dvswitch: Table | None) -> set[str]:
    """Names of the distributed switches (dvSwitch sheet), if the export has one."""
    if dvswitch is None:
        return set()
    return {name for row in dvswitch.rows() for key in ("switch", "name") if (name := row.text(key))}


def networks(pairs: list[tuple[str, str | None]], distributed: set[str]) -> list[Network]:
    """One network per port group name; distributed when its switch is a vDS named in dvSwitch."""
    found: dict[str, Network] = {}
    for name, switch in pairs:
        if name not in found:
            kind: Literal["distributed", "standard"] = (
                "distributed" if switch and switch in distributed else "standard")
            found[name] = Network(id=name, name=name, switch=switch, kind=kind)
    return sorted(found.values(), key=lambda n: n.name)


def _vcenter(row: Row, export: str) -> str:
    return row.text("sdk_uuid") or row.text("sdk_server") or export


def read_hosts(vhost: Table | None, export: str) -> list[tuple[str, Host]]:
    """(vCenter, host) from vHost: id is the moref ("Object ID") when the export has it, else the host name."""
    hosts: list[tuple[str, Host]] = []
    for row in vhost.rows() if vhost else ():
        name = row.text("name")
        sockets = row.integer("sockets", maximum=MAX_VCPUS)
        per_socket = row.integer("cores_per_socket", maximum=MAX_VCPUS)
        cores, speed, memory = row.integer("cores"), row.integer("speed"), row.decimal("memory", maximum=_MAX_MIB)
        maintenance, hyperthreading = row.flag("maintenance"), row.flag("ht_active")
        if name is None:
            row.bad("name", "host name is empty")
            continue
        if cores is None and sockets is not None and per_socket is not None:
            cores = sockets * per_socket
        threads = None if cores is None or hyperthreading is None else cores * (2 if hyperthreading else 1)
        hosts.append((_vcenter(row, export), Host(
            id=row.text("object_id") or name, name=name, cluster=row.text("cluster"),
            datacenter=row.text("datacenter"), cpu_cores=cores, cpu_threads=threads, cpu_mhz=speed,
            memory_bytes=None if memory is None else round(memory * MIB),
            connection_state=row.text("connection"), maintenance_mode=maintenance, version=row.text("version"),
            cpu_model=row.text("cpu_model"), evc_mode=row.text("evc"), max_evc_mode=row.text("max_evc"),
        )))
    return hosts


def read_clusters(vcluster: Table | None, hosts: list[tuple[str, Host]], export: str) -> list[tuple[str, Cluster]]:
    """(vCenter, cluster) from vCluster; its hosts (and datacenter, which vCluster lacks) come from vHost."""
    clusters: list[tuple[str, Cluster]] = []
    for row in vcluster.rows() if vcluster else ():
        name = row.text("name")
        ha, drs = row.flag("ha"), row.flag("drs")
        row.integer("num_hosts")  # checked only: the host list comes from vHost
        if name is None:
            row.bad("name", "cluster name is empty")
            continue
        vcenter = _vcenter(row, export)
        members = [h for v, h in hosts if h.cluster == name and v == vcenter]
        datacenter = row.text("datacenter") or next((h.datacenter for h in members if h.datacenter), None)
        clusters.append((vcenter, Cluster(id=row.text("object_id") or name, name=name, datacenter=datacenter,
                                          hosts=sorted(h.name for h in members), ha_enabled=ha, drs_enabled=drs)))
    return clusters


def with_referenced_clusters(clusters: list[Cluster], vms: list[Vm], hosts: list[Host]) -> list[Cluster]:
    """Add the clusters that VMs or hosts name but vCluster does not list (or that have no vCluster sheet)."""
    known = {c.name for c in clusters}
    extra: dict[str, Cluster] = {}
    items: list[Host | Vm] = [*hosts, *vms]
    for item in items:
        if item.cluster and item.cluster not in known and item.cluster not in extra:
            members = sorted(h.name for h in hosts if h.cluster == item.cluster)
            extra[item.cluster] = Cluster(id=item.cluster, name=item.cluster, datacenter=item.datacenter,
                                          hosts=members)
    return clusters + sorted(extra.values(), key=lambda c: c.name)


def read_datastores(vdatastore: Table | None, export: str) -> list[tuple[str, Datastore]]:
    """(vCenter, datastore) from vDatastore; sizes are MiB (MB in older exports) x 2**20."""
    datastores: list[tuple[str, Datastore]] = []
    for row in vdatastore.rows() if vdatastore else ():
        name = row.text("name")
        capacity, free = row.decimal("capacity", maximum=_MAX_MIB), row.decimal("free", maximum=_MAX_MIB)
        if name is None:
            row.bad("name", "datastore name is empty")
            continue
        datastores.append((_vcenter(row, export), Datastore(
            id=row.text("object_id") or name, name=name, type=row.text("type"),
            capacity_bytes=None if capacity is None else round(capacity * MIB),
            free_bytes=None if free is None else round(free * MIB), url=row.text("url"),
        )))
    return datastores


def with_referenced_datastores(datastores: list[Datastore], vms: list[Vm]) -> list[Datastore]:
    """Add the datastores that disks name but vDatastore does not list (or that have no vDatastore sheet)."""
    known = {d.name for d in datastores}
    named = sorted({d.datastore for vm in vms for d in vm.disks if d.datastore and d.datastore not in known})
    return datastores + [Datastore(id=name, name=name) for name in named]


def vapps(vms: list[Vm]) -> list[VApp]:
    """vApps from the VMs' "vApp" column, with their members' ids; a name used in several vCenters is one vApp
    per vCenter, its id qualified by the vCenter ("<vCenter>:<name>")."""
    members: dict[tuple[str, str], list[str]] = {}
    for vm in vms:
        if vm.vapp:
            members.setdefault((vm.source_instance_uuid or vm.source or "", vm.vapp), []).append(vm.id)
    names = [name for _, name in members]
    return [VApp(id=f"{vcenter}:{name}" if names.count(name) > 1 else name, name=name, vms=ids)
            for (vcenter, name), ids in sorted(members.items(), key=lambda item: (item[0][1], item[0][0]))]
