"""The cloud SDDC vCenter as the target of a migration (migrate.core.ports.MigrationTarget and the cold method's
verbs; LiveRelocation for the live method, through live.py).

A target VM records its source twice at creation (its instanceUuid and the extraConfig entry
`migrate.sourceInstanceUuid`), so `find_vm` finds it even if the run died before it was tagged. The
tag is `migrate-source/<instanceUuid>` through the vAPI tagging service.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from xml.parsers.expat import ExpatError

from pyVmomi import vim

from adapters.vcenter import live
from adapters.vcenter.client import VCenterClient
from adapters.vcenter.collector import read_properties, read_view
from adapters.vcenter.lookup import find_datacenter, find_named, find_vm_by_instance_uuid, resolve_folder, resolve_pool
from adapters.vcenter.rest import RestClient, TaggingClient
from adapters.vcenter.settings import VCenterEndpoint
from adapters.vcenter.source import VCenterSource
from adapters.vcenter.vm_ops import DoneOperation, VmOps
from adapters.vcenter.vm_spec import SOURCE_KEY, TEST_KEY, config_spec
from migrate.core.errors import AdapterError, OperationalError
from migrate.core.ports import Operation, PowerState, Relocation, SourceInventory

__all__ = ["TAG_CATEGORY", "VCenterTarget"]

TAG_CATEGORY = "migrate-source"


class VCenterTarget:
    """Where a run creates VMs: the cloud vCenter's datacenter, cluster, pool, folder and datastores."""

    def __init__(self, endpoint: VCenterEndpoint, *, client: VCenterClient | None = None) -> None:
        self.endpoint = endpoint
        self.client = client or VCenterClient(endpoint)
        self.ops = VmOps(self.client, endpoint.datacenter)
        self._lock = threading.Lock()
        self._tagging: TaggingClient | None = None
        self._category: str | None = None
        self._tag_ids: dict[str, str] = {}
        self._ranged: dict[str, list[str]] = {}   # datastore -> ranged-write problems (probed once)

    @property
    def name(self) -> str:
        """The endpoint's label (e.g. `cloud`)."""
        return self.endpoint.name

    # -- finding -----------------------------------------------------------------------------------
    def _records(self, moref: str, source_id: str) -> bool:
        extra = self.ops.read(moref, ["config.extraConfig"], "read vm")["config.extraConfig"] or []
        return any(o.key == SOURCE_KEY and o.value == source_id for o in extra)

    def find_vm(self, source_id: str) -> str | None:
        """The VM created for `source_id` (instanceUuid and extraConfig both name it), or None."""
        vm = self.client.call("find vm", lambda si: find_vm_by_instance_uuid(si, source_id))
        if vm is not None and self._records(vm._moId, source_id):
            return str(vm._moId)
        found = self.find_all_vms(source_id)
        return found[0] if found else None

    def find_all_vms(self, source_id: str) -> list[str]:
        """Every VM recording `source_id` (more than one would be a duplicate), by a scan of the inventory."""
        def scan(si: Any) -> list[str]:
            return sorted(vm._moId for vm, props in read_view(si, vim.VirtualMachine, ["config.instanceUuid"])
                          if props.get("config.instanceUuid") == source_id)
        return [moref for moref in self.client.call("find vms", scan) if self._records(moref, source_id)]

    def source_records(self) -> dict[str, list[dict[str, Any]]]:
        """Read-only, in one pass: source instanceUuid -> every VM here recording it in extraConfig
        (`migrate.sourceInstanceUuid`), each {id, name, power_state, instance_uuid, tagged}; creates no tag."""
        def scan(si: Any) -> dict[str, list[dict[str, Any]]]:
            found: dict[str, list[dict[str, Any]]] = {}
            paths = ["name", "config.instanceUuid", "config.extraConfig", "runtime.powerState"]
            for vm, props in read_view(si, vim.VirtualMachine, paths):
                extra = props.get("config.extraConfig") or []
                source = next((str(o.value) for o in extra if o.key == SOURCE_KEY), None)
                if source:
                    found.setdefault(source, []).append({
                        "id": str(vm._moId), "name": str(props.get("name")),
                        "power_state": str(props.get("runtime.powerState")),
                        "instance_uuid": props.get("config.instanceUuid"), "tagged": False})
            return found
        found = self.client.call("read target vms", scan)
        if found:
            tags = self._source_tags([vm["id"] for vms in found.values() for vm in vms])
            for source, vms in found.items():
                for vm in vms:
                    vm["tagged"] = source in tags.get(vm["id"], set())
        for vms in found.values():
            vms.sort(key=lambda vm: vm["id"])
        return found

    def _source_tags(self, target_ids: list[str]) -> dict[str, set[str]]:
        """target VM -> names of the `migrate-source` tags attached to it (read-only)."""
        with self._lock:
            if self._tagging is None:
                session, _ = self.client.session()
                self._tagging = TaggingClient(RestClient(session))
            tagging = self._tagging
        category = next((c["id"] for c in tagging.categories() if c["name"] == TAG_CATEGORY), None)
        if category is None:
            return {}
        names = {t["id"]: t["name"] for t in tagging.tags() if t["category_id"] == category}
        attached = tagging.attached_tags([("VirtualMachine", vm) for vm in target_ids])
        return {vm: {names[t] for t in ids if t in names} for vm, ids in attached.items()}

    def describe_vm(self, target_id: str) -> dict[str, Any]:
        """Live facts of a target VM (see VmOps.facts), with its NICs' network names."""
        facts = self.ops.facts(target_id)
        names = self._network_names()
        for nic in facts["nics"]:
            nic["network_name"] = names.get(nic["network"], nic["network"])
        return facts

    # -- placement ---------------------------------------------------------------------------------
    def _network_names(self) -> dict[str, str]:
        """Port group key or network name -> name."""
        def read(si: Any) -> dict[str, str]:
            names: dict[str, str] = {}
            for obj, props in read_view(si, vim.Network, ["name"]):
                names[obj._moId] = names[props["name"]] = props["name"]
            for _, props in read_view(si, vim.dvs.DistributedVirtualPortgroup, ["name", "key"]):
                names[props["key"]] = props["name"]
            return names
        return self.client.call("read networks", read)

    def networks(self, names: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """Backing facts of each named network (None when the target has no such network)."""
        def read(si: Any) -> dict[str, dict[str, Any] | None]:
            wanted = set(names)
            found: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
            for obj, props in read_view(si, vim.Network, ["name"]):
                if props["name"] not in wanted:
                    continue
                if isinstance(obj, vim.dvs.DistributedVirtualPortgroup):
                    pg = read_properties(si, obj, ["key", "config.distributedVirtualSwitch"])
                    switch = read_properties(si, pg["config.distributedVirtualSwitch"], ["uuid"])
                    found[props["name"]] = {"kind": "dvs", "name": props["name"], "moref": obj._moId,
                                            "key": pg["key"], "switch_uuid": switch["uuid"]}
                elif isinstance(obj, vim.OpaqueNetwork):
                    summary = read_properties(si, obj, ["summary"])["summary"]
                    found[props["name"]] = {"kind": "opaque", "name": props["name"], "moref": obj._moId,
                                            "opaque_id": summary.opaqueNetworkId,
                                            "opaque_type": summary.opaqueNetworkType}
                else:
                    found[props["name"]] = {"kind": "standard", "name": props["name"], "moref": obj._moId}
            return found
        return self.client.call("read networks", read)

    def datastores(self, names: Iterable[str]) -> dict[str, int | None]:
        """Free bytes of each named datastore, freshly refreshed (None when the target has no such datastore).

        vcsim subtracts a disk's full capacity from free space when a VM gets it, thin or not; a refresh
        re-reads the real figure (on vCenter too, where the summary can lag behind). vcsim answers the
        refresh with an empty SOAP body, which pyvmomi cannot parse: the refresh happened all the same.
        """
        def read(si: Any) -> dict[str, int | None]:
            wanted = set(names)
            free: dict[str, int | None] = dict.fromkeys(wanted)
            for obj, props in read_view(si, vim.Datastore, ["name"]):
                if props["name"] in wanted:
                    with contextlib.suppress(ExpatError):
                        obj.RefreshDatastore()
                    free[props["name"]] = int(read_properties(si, obj, ["summary.freeSpace"])["summary.freeSpace"] or 0)
            return free
        return self.client.call("read datastores", read)

    def compatible_host(self, pool: Any, datastores: set[str], networks: set[str]) -> Any:
        """The connected host of the pool's cluster that sees every datastore and network, with the fewest VMs.

        On a healthy SDDC every host qualifies and vCenter could choose; a host just added to the cluster
        may not have joined the distributed switch or the datastore yet (in the lab it never does).
        """
        def choose(si: Any) -> Any:
            compute = read_properties(si, pool, ["owner"])["owner"]
            best, best_load = None, None
            # Through a view: vcsim keeps hosts removed from a cluster in its `host` list.
            for host, props in read_view(si, vim.HostSystem, ["runtime.connectionState", "runtime.inMaintenanceMode",
                                                              "datastore", "network", "vm"], compute):
                if props["runtime.connectionState"] != "connected" or props["runtime.inMaintenanceMode"]:
                    continue
                seen = {read_properties(si, ds, ["name"])["name"] for ds in props["datastore"] or []}
                seen |= {read_properties(si, net, ["name"])["name"] for net in props["network"] or []}
                load = len(props["vm"] or [])
                if datastores | networks <= seen and (best_load is None or load < best_load):
                    best, best_load = host, load
            return best
        host = self.client.call("choose host", choose)
        if host is None:
            raise AdapterError("vcenter", "create vm", f"no connected host sees datastores {sorted(datastores)} and "
                               f"networks {sorted(networks)}", endpoint=self.client.where, code="NoCompatibleHost")
        return host

    def placement(self, cluster: str | None, folder: str | None, pool: str | None) -> tuple[Any, Any]:
        """(folder, resource pool) objects for the names in site.yaml; AdapterError naming what is missing."""
        def resolve(si: Any) -> tuple[Any, Any]:
            dc = find_datacenter(si, self.endpoint.datacenter)
            problems = []
            if dc is None:
                raise AdapterError("vcenter", "placement", f"no datacenter {self.endpoint.datacenter!r}",
                                   endpoint=self.client.where, code="NotFound")
            vm_folder = resolve_folder(dc, folder)
            if vm_folder is None:
                problems.append(f"no VM folder {folder!r}")
            compute = find_named(si, vim.ClusterComputeResource, cluster, dc.hostFolder) if cluster else None
            if cluster and compute is None:
                problems.append(f"no cluster {cluster!r}")
            if compute is None and not cluster:
                compute = next((c for c, _ in read_view(si, vim.ComputeResource, ["name"], dc.hostFolder)), None)
            rp = resolve_pool(compute, pool) if compute is not None else None
            if compute is not None and rp is None:
                problems.append(f"no resource pool {pool!r} in cluster {cluster!r}")
            if problems:
                raise AdapterError("vcenter", "placement", "; ".join(problems), endpoint=self.client.where,
                                   code="NotFound")
            return vm_folder, rp
        return self.client.call("placement", resolve)

    def name_taken(self, name: str) -> list[str]:
        """morefs of VMs already called `name` on the target."""
        def scan(si: Any) -> list[str]:
            return sorted(vm._moId for vm, props in read_view(si, vim.VirtualMachine, ["name"])
                          if props.get("name") == name)
        return self.client.call("find vm by name", scan)

    # -- changes -----------------------------------------------------------------------------------
    def create_vm(self, source_id: str, spec: Mapping[str, Any]) -> Operation:
        """CreateVM_Task in the spec's folder and pool; the result is the new VM's moref."""
        if str(spec.get("source_id")) != source_id:
            raise AdapterError("vcenter", "create vm", f"spec is for {spec.get('source_id')}, not {source_id}")
        place = spec.get("placement", {})
        folder, pool = self.placement(place.get("cluster"), place.get("folder"), place.get("resource_pool"))
        datastores = {str(d["file"]).split("]", 1)[0].lstrip("[") for d in spec.get("disks", [])}
        networks = {str(n["network"]["name"]) for n in spec.get("nics", [])}
        host = self.compatible_host(pool, datastores, networks)
        config = config_spec(spec)
        return self.client.task("create vm", lambda si: folder.CreateVM_Task(config=config, pool=pool, host=host))

    def destroy_vm(self, target_id: str) -> Operation:
        """Power off (if on) and delete a target VM with its files; nothing if it is gone."""
        try:
            if self.ops.power_state(target_id) != "poweredOff":
                self.ops.wait(self.ops.power_off(target_id, guest_first=False), "power off")
            return self.client.task("destroy vm", lambda si: self.ops.vm(target_id).Destroy_Task())
        except AdapterError as exc:
            if exc.code == "ManagedObjectNotFound":
                return DoneOperation(f"destroy:{target_id}")
            raise

    def vm_power_state(self, target_id: str) -> PowerState:
        """Current power state."""
        return self.ops.power_state(target_id)

    def power_on_vm(self, target_id: str) -> Operation:
        """Power on; nothing if on."""
        return self.ops.power_on(target_id)

    def write_file(self, path: str, chunks: Iterable[bytes]) -> str:
        """Stream a datastore file onto the target; the sha256 of what was sent."""
        return self.ops.write_file(path, chunks)

    def read_file(self, path: str) -> Iterator[bytes]:
        """Stream a target datastore file."""
        return self.ops.read_file(path)

    def file_checksum(self, path: str) -> tuple[str, int] | None:
        """sha256 and size of a target datastore file, or None if missing."""
        return self.ops.file_checksum(path)

    def delete_file(self, path: str) -> Operation:
        """Delete a target datastore file or folder; nothing if gone."""
        return self.ops.delete_file(path)

    # -- replicas written in place (migrate.core.ports.ReplicaTarget) ---------------------------------
    def write_range(self, path: str, offset: int, data: bytes, total: int) -> None:
        """Write `data` at `offset` of a target datastore file, creating it."""
        self.ops.write_range(path, offset, data, total)

    def file_size(self, path: str) -> int | None:
        """Size of a target datastore file, None if missing."""
        return self.ops.file_size(path)

    def copy_file(self, source_path: str, target_path: str) -> Operation:
        """Copy a target datastore file to another path on the target, replacing it (a server-side copy)."""
        def start(si: Any) -> Any:
            dc = self.ops.datacenter_object(si)
            return si.content.fileManager.CopyDatastoreFile_Task(
                sourceName=source_path, sourceDatacenter=dc, destinationName=target_path, destinationDatacenter=dc,
                force=True)
        folder = target_path.rsplit("/", 1)[0]
        if "/" in target_path:
            self.ops.make_directory(folder)
        return self.client.task("copy file", start)

    def find_test_vms(self, source_id: str) -> list[str]:
        """Every test copy of `source_id` (extraConfig `migrate.testOf`)."""
        def scan(si: Any) -> list[str]:
            return sorted(vm._moId for vm, props in read_view(si, vim.VirtualMachine, ["config.extraConfig"])
                          if any(o.key == TEST_KEY and o.value == source_id
                                 for o in props.get("config.extraConfig") or []))
        return self.client.call("find test vms", scan)

    def ranged_write_problems(self, datastore: str) -> list[str]:
        """Write two ranges of a probe file out of order and read it back: a datastore whose HTTP PUT ignores
        Content-Range (it would replace a replica with each range) is named; checked once per datastore."""
        with self._lock:
            known = self._ranged.get(datastore)
        if known is not None:
            return known
        folder = f"[{datastore}] .migrate-probe-{uuid.uuid4().hex}"
        probe = f"{folder}/probe.bin"
        try:
            self.ops.write_range(probe, 4, b"BB", 8)
            self.ops.write_range(probe, 0, b"AA", 8)
            landed = b"".join(self.ops.read_file(probe))
        finally:
            self.ops.wait(self.ops.delete_file(folder), "delete probe folder")
        problems = [] if landed == b"AA\0\0BB\0\0" else [
            f"datastore {datastore!r} does not write HTTP PUT ranges in place (a probe read back {landed[:16]!r}): "
            "warm replication needs a target that takes ranged writes"]
        with self._lock:
            self._ranged[datastore] = problems
        return problems

    # -- receiving a running VM (migrate.core.ports.LiveRelocation) -----------------------------------
    def _vcenter(self, source: SourceInventory) -> VCenterSource:
        if not isinstance(source, VCenterSource):
            raise OperationalError(f"cross-vCenter vMotion to {self.name} needs a vCenter source, not "
                                   f"{source.name} ({type(source).__name__})")
        return source

    def describe_relocation(self, source: SourceInventory, vm_id: str, facts: Mapping[str, Any]) -> Relocation:
        """The RelocateSpec that would vMotion `vm_id` here (without secrets) and what is wrong with it."""
        return live.describe_relocation(self._vcenter(source), self, vm_id, facts)

    def start_relocation(self, source: SourceInventory, vm_id: str, facts: Mapping[str, Any]) -> Operation:
        """RelocateVM_Task with a ServiceLocator for this vCenter; the result is empty (see find_relocated)."""
        return live.start_relocation(self._vcenter(source), self, vm_id, facts)

    def find_relocated(self, source_id: str) -> str | None:
        """A VM vMotioned here keeps its instanceUuid: the VM with `source_id` as instanceUuid, or None."""
        vm = self.client.call("find vm", lambda si: find_vm_by_instance_uuid(si, source_id))
        return None if vm is None else str(vm._moId)

    # -- tags --------------------------------------------------------------------------------------
    def _tag_id(self, source_id: str, *, create: bool) -> str | None:
        with self._lock:
            if self._tagging is None:
                session, _ = self.client.session()
                self._tagging = TaggingClient(RestClient(session))
            tagging = self._tagging
            if self._category is None:
                category = next((c["id"] for c in tagging.categories() if c["name"] == TAG_CATEGORY), None)
                self._category = category or tagging.create_category(TAG_CATEGORY, cardinality="SINGLE")
                self._tag_ids = {t["name"]: t["id"] for t in tagging.tags() if t["category_id"] == self._category}
            if source_id not in self._tag_ids and create:
                try:
                    self._tag_ids[source_id] = tagging.create_tag(self._category, source_id)
                except AdapterError:
                    self._category = None  # it may exist after all (a reply lost): read the tags again next time
                    raise
            return self._tag_ids.get(source_id)

    def is_tagged(self, target_id: str, source_id: str) -> bool:
        """True if the VM carries the tag naming `source_id`."""
        tag = self._tag_id(source_id, create=False)
        if tag is None:
            return False
        assert self._tagging is not None
        return tag in self._tagging.attached_tags([("VirtualMachine", target_id)]).get(target_id, [])

    def tag_vm(self, target_id: str, source_id: str) -> None:
        """Attach the source's tag (created if missing); nothing if attached."""
        if self.is_tagged(target_id, source_id):
            return
        tag = self._tag_id(source_id, create=True)
        assert self._tagging is not None and tag is not None
        self._tagging.attach(tag, [("VirtualMachine", target_id)])

    def close(self) -> None:
        """Log out of both APIs."""
        with self._lock:
            if self._tagging is not None:
                self._tagging.close()
                self._tagging = None
        self.client.close()
