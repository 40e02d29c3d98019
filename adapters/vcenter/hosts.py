"""A cluster's hosts and placed VMs (read through the PropertyCollector), and adding/removing hosts.

Adding is idempotent: a host already in the cluster by name is not added again (vCenter would refuse
it; vcsim would add a second host of the same name). Waiting for a new host to connect is the capacity
step's (migrate.engine.capacity, with the engine's clock); `admit_host` then takes a connected host out of
maintenance mode and onto the cluster's switches and shared datastores.

Seen with vcsim (govmomi 0.24.2, the lab's cloud vCenter):
- AddHost_Task accepts any host name, ignores user, password and sslThumbprint (no SSLVerifyFault,
  no name resolution); only an empty name fails (NoHost). A name already in the cluster is added a
  second time. New hosts get the simulator's host hardware (the lab sets i4i.metal's 64 cores / 1 TiB).
- `asConnected=False` leaves the host `disconnected` for good, and ReconnectHost_Task is not
  implemented (MethodNotFound): the lab's way to get a host that never connects.
- HostSystem.Destroy_Task removes the host from the inventory (container views), but the cluster's
  `host` property keeps the stale reference: read a cluster's hosts through a container view.
Real vCenter answers AddHost_Task without the right thumbprint with SSLVerifyFault carrying the
host's thumbprint: it is used only if it equals the expected one, or if trust-on-first-use is asked for.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pyVmomi import vim, vmodl

from adapters.vcenter.collector import fault_name, read_properties, read_view
from adapters.vcenter.connection import VCenterSession
from migrate.core.capacity_ports import ClusterInfo, HostInfo, HostLogin, PlacedVm
from migrate.core.errors import AdapterError, InputError
from migrate.core.faults import is_transient
from migrate.core.log import get_logger

__all__ = ["ClusterInfo", "HostInfo", "HostLogin", "PlacedVm", "add_host", "admit_host", "find_cluster",
           "host_info", "read_cluster", "read_hosts", "reconnect_host", "remove_host"]

log = get_logger(__name__)
_HOST_PATHS = ["name", "runtime.connectionState", "runtime.inMaintenanceMode", "runtime.powerState",
               "hardware.cpuInfo.numCpuCores", "hardware.cpuInfo.numCpuThreads", "hardware.memorySize"]
_VM_PATHS = ["name", "summary.config.numCpu", "summary.config.memorySizeMB", "summary.config.template",
             "summary.config.cpuReservation", "summary.config.memoryReservation", "summary.config.instanceUuid",
             "summary.runtime.powerState", "summary.storage"]


def find_cluster(session: VCenterSession, datacenter: str | None, cluster: str) -> Any:
    """The ClusterComputeResource called `cluster` (in `datacenter` when given); InputError if none."""
    si = session.si
    root = None
    if datacenter:
        root = next((obj for obj, props in read_view(si, vim.Datacenter, ["name"]) if props.get("name") == datacenter),
                    None)
        if root is None:
            raise InputError.single("site.yaml", "target.datacenter",
                                    f"no datacenter {datacenter!r} in {session.endpoint.host}")
    found = [obj for obj, props in read_view(si, vim.ClusterComputeResource, ["name"], root=root)
             if props.get("name") == cluster]
    if not found:
        raise InputError.single("site.yaml", "target.cluster", f"no cluster {cluster!r} in {session.endpoint.host}"
                                + (f" datacenter {datacenter}" if datacenter else ""))
    return found[0]


def _host_info(obj: Any, props: Mapping[str, Any]) -> HostInfo:
    return HostInfo(moref=obj._moId, name=str(props.get("name", "")),
                    connection_state=str(props.get("runtime.connectionState") or "unknown"),
                    in_maintenance=bool(props.get("runtime.inMaintenanceMode")),
                    cores=int(props.get("hardware.cpuInfo.numCpuCores") or 0),
                    threads=int(props.get("hardware.cpuInfo.numCpuThreads") or 0),
                    memory_mib=int(props.get("hardware.memorySize") or 0) // 2**20)


def _vm_info(obj: Any, props: Mapping[str, Any]) -> PlacedVm:
    storage = props.get("summary.storage")
    provisioned = (int(storage.committed or 0) + int(storage.uncommitted or 0)) if storage is not None else 0
    return PlacedVm(moref=obj._moId, name=str(props.get("name", "")),
                    instance_uuid=props.get("summary.config.instanceUuid"),
                    vcpus=int(props.get("summary.config.numCpu") or 0),
                    memory_mb=int(props.get("summary.config.memorySizeMB") or 0), storage_gb=provisioned / 2**30,
                    cpu_reservation_mhz=int(props.get("summary.config.cpuReservation") or 0),
                    memory_reservation_mb=int(props.get("summary.config.memoryReservation") or 0),
                    powered_on=props.get("summary.runtime.powerState") == "poweredOn",
                    template=bool(props.get("summary.config.template")))


def read_hosts(session: VCenterSession, cluster_obj: Any) -> list[HostInfo]:
    """The cluster's hosts (through a container view: see the module docstring), sorted by name."""
    hosts = [_host_info(obj, props) for obj, props in read_view(session.si, vim.HostSystem, _HOST_PATHS,
                                                                 root=cluster_obj)]
    return sorted(hosts, key=lambda h: h.name)


def read_cluster(session: VCenterSession, datacenter: str | None, cluster: str) -> ClusterInfo:
    """Hosts (state, cores, memory) and VMs (configured/reserved vCPU and memory, storage) of a cluster."""
    obj = find_cluster(session, datacenter, cluster)
    vms = [_vm_info(vm, props) for vm, props in read_view(session.si, vim.VirtualMachine, _VM_PATHS, root=obj)]
    return ClusterInfo(datacenter=datacenter, name=cluster, moref=obj._moId, hosts=read_hosts(session, obj),
                       vms=sorted(vms, key=lambda v: v.name))


def _wait(session: VCenterSession, task: Any, op: str, timeout: float) -> tuple[Any, Any]:
    """(result, fault) of a task, polled through the collector; AdapterError when it outlives `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        info = read_properties(session.si, task, ["info"])["info"]
        if info.state == vim.TaskInfo.State.success:
            return info.result, None
        if info.state == vim.TaskInfo.State.error:
            return None, info.error
        if time.monotonic() > deadline:
            raise AdapterError("vcenter", op, f"task still {info.state} after {timeout:.0f} s", retryable=True,
                               endpoint=session.endpoint.host, code="Timeout")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _fail(session: VCenterSession, op: str, fault: Any, what: str) -> AdapterError:
    name = fault_name(fault)
    message = getattr(fault, "msg", None) or name
    return AdapterError("vcenter", op, f"{what}: {name}: {message}", retryable=is_transient(fault),
                        endpoint=session.endpoint.host, code=name)


def _add(session: VCenterSession, cluster_obj: Any, name: str, connect: HostLogin, timeout: float) -> Any:
    """AddHost_Task, once more with the presented thumbprint when SSLVerifyFault allows it."""
    thumbprint = connect.thumbprints.get(name)
    for _ in range(2):
        spec = vim.host.ConnectSpec(hostName=name, userName=connect.username, password=connect.password,
                                    sslThumbprint=thumbprint, force=connect.force)
        log.info("adding host to cluster", host=name, thumbprint_pinned=thumbprint is not None)
        result, fault = _wait(session, cluster_obj.AddHost_Task(spec=spec, asConnected=True), "add_host", timeout)
        if fault is None:
            return result
        if isinstance(fault, vim.fault.SSLVerifyFault) and thumbprint is None:
            presented = str(fault.thumbprint or "")
            if connect.trust_on_first_use and presented:
                thumbprint = presented
                continue
            raise AdapterError("vcenter", "add_host", f"host {name} presents certificate thumbprint {presented}; "
                               "verify it and pass it as the expected thumbprint (or allow trust on first use)",
                               endpoint=session.endpoint.host, code="SSLVerifyFault")
        raise _fail(session, "add_host", fault, f"adding {name}")
    raise AdapterError("vcenter", "add_host", f"host {name}: the thumbprint it presents was refused",
                       endpoint=session.endpoint.host, code="SSLVerifyFault")


def _host_obj(session: VCenterSession, datacenter: str | None, cluster: str, name: str) -> tuple[Any, HostInfo] | None:
    """(HostSystem, info) of host `name` of the cluster, or None if it is not there."""
    current = {h.name: h for h in read_hosts(session, find_cluster(session, datacenter, cluster))}
    if name not in current:
        return None
    return vim.HostSystem(current[name].moref, session.si._stub), current[name]


def host_info(session: VCenterSession, datacenter: str | None, cluster: str, name: str) -> HostInfo | None:
    """Host `name` of the cluster as it is now, or None."""
    found = _host_obj(session, datacenter, cluster, name)
    return None if found is None else found[1]


def add_host(session: VCenterSession, datacenter: str | None, cluster: str, name: str, *,
             login: HostLogin | None = None, timeout: float = 600.0) -> bool:
    """Put host `name` into the cluster (AddHost_Task) unless it is there by name: True if added now."""
    if host_info(session, datacenter, cluster, name) is not None:
        log.info("host already in cluster", host=name)
        return False
    _add(session, find_cluster(session, datacenter, cluster), name, login or HostLogin(), timeout)
    return True


def reconnect_host(session: VCenterSession, datacenter: str | None, cluster: str, name: str) -> None:
    """Start ReconnectHost_Task for host `name` (vcsim and some vCenters refuse it: logged, nothing more)."""
    found = _host_obj(session, datacenter, cluster, name)
    if found is None:
        return
    try:
        found[0].ReconnectHost_Task()
    except vmodl.MethodFault as exc:   # vcsim: MethodNotFound; real vCenter may refuse too
        log.info("reconnect not possible", host=name, fault=fault_name(exc))


def admit_host(session: VCenterSession, datacenter: str | None, cluster: str, name: str, *,
               timeout: float = 600.0) -> HostInfo:
    """A connected host of the cluster out of maintenance mode and on its switches and shared datastores."""
    found = _host_obj(session, datacenter, cluster, name)
    if found is None:
        raise AdapterError("vcenter", "admit_host", f"host {name} is not in cluster {cluster}",
                           endpoint=session.endpoint.host, code="HostNotInCluster")
    host_obj, info = found
    if info.in_maintenance:
        _, fault = _wait(session, host_obj.ExitMaintenanceMode_Task(timeout=0), "exit_maintenance_mode", timeout)
        if fault is not None:
            raise _fail(session, "exit_maintenance_mode", fault, f"host {name}")
        info = _host_info(host_obj, read_properties(session.si, host_obj, _HOST_PATHS))
    join_cluster_fabric(session, find_cluster(session, datacenter, cluster), host_obj, timeout)
    return info


def join_cluster_fabric(session: VCenterSession, cluster_obj: Any, host_obj: Any, timeout: float = 600.0) -> None:
    """Give a new host the distributed switches and shared datastores every other host of its cluster has.

    VMs on a distributed port group can only be placed in a cluster whose hosts are all members of the
    switch. On an SDDC the platform does this as it adds a host; elsewhere (and in the lab) we do it:
    the host joins those switches, and mounts those NFS (same export) and local-path (the lab's) datastores.
    vSAN and VMFS datastores appear by themselves once the host sees the cluster's disks. "Every other
    host" means most of them: a peer that is itself not admitted yet (a crash between AddHost and admit)
    must not keep the cluster's switches and datastores from this host.
    """
    # Through a view: vcsim leaves destroyed hosts in the cluster's `host` list.
    peers = {h._moId: props for h, props in read_view(session.si, vim.HostSystem,
                                                      ["runtime.connectionState", "datastore"], cluster_obj)
             if h._moId != host_obj._moId and props["runtime.connectionState"] == "connected"}
    if not peers:
        return
    for switch, props in read_view(session.si, vim.DistributedVirtualSwitch, ["summary.hostMember", "config"]):
        members = {h._moId for h in props["summary.hostMember"] or []}
        if _most(len(members & peers.keys()), len(peers)) and host_obj._moId not in members:
            spec = vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(
                configVersion=props["config"].configVersion,
                host=[vim.dvs.HostMember.ConfigSpec(operation="add", host=host_obj)])
            _, fault = _wait(session, switch.ReconfigureDvs_Task(spec), "join_switch", timeout)
            if fault is not None:
                raise _fail(session, "join_switch", fault, "adding the host to a distributed switch")
            log.info("host joined distributed switch", host=host_obj._moId, switch=switch._moId)
    mounted = {d._moId for d in read_properties(session.si, host_obj, ["datastore"])["datastore"] or []}
    seen = Counter(d._moId for props in peers.values() for d in props["datastore"] or [])
    shared = {moid for moid, hosts in seen.items() if _most(hosts, len(peers))}
    system = read_properties(session.si, host_obj, ["configManager.datastoreSystem"])["configManager.datastoreSystem"]
    for datastore, props in read_view(session.si, vim.Datastore, ["name", "info"]):
        if datastore._moId not in shared or datastore._moId in mounted:
            continue
        info = props["info"]
        if isinstance(info, vim.host.NasDatastoreInfo) and info.nas is not None:
            nas = info.nas
            system.CreateNasDatastore(spec=vim.host.NasVolume.Specification(
                remoteHost=nas.remoteHost, remotePath=nas.remotePath, localPath=props["name"],
                accessMode="readWrite", type=nas.type))
        elif isinstance(info, vim.host.LocalDatastoreInfo):
            system.CreateLocalDatastore(name=props["name"], path=info.path)
        else:
            continue
        log.info("host mounted shared datastore", host=host_obj._moId, datastore=props["name"])


def _most(part: int, whole: int) -> bool:
    return 2 * part > whole


def remove_host(session: VCenterSession, datacenter: str | None, cluster: str, name: str, *,
                timeout: float = 600.0) -> bool:
    """Take host `name` out of the cluster (maintenance mode, then Destroy_Task); False if it is not there."""
    obj = find_cluster(session, datacenter, cluster)
    current = {h.name: h for h in read_hosts(session, obj)}
    if name not in current:
        return False
    host_obj = vim.HostSystem(current[name].moref, session.si._stub)
    if not current[name].in_maintenance and current[name].connection_state == "connected":
        _, fault = _wait(session, host_obj.EnterMaintenanceMode_Task(timeout=0), "enter_maintenance_mode", timeout)
        if fault is not None:
            raise _fail(session, "enter_maintenance_mode", fault, f"host {name}")
    log.info("removing host from cluster", host=name)
    _, fault = _wait(session, host_obj.Destroy_Task(), "remove_host", timeout)
    if fault is not None:
        raise _fail(session, "remove_host", fault, f"removing {name}")
    return True
