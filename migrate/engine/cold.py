"""The `cold` method's phases: move a powered-off VM into the cloud vCenter by copying its disk files.

Each phase first checks whether its effect already exists (a crash may have come after the effect and
before the journal recorded it), acts, and returns plain outputs. The VM's facts (hardware, disks with
their target datastore, NICs with their target network, placement) were fixed when the plan was built
(migrate.execution_plan); live state is read from the vCenters. Adapters are the duck-typed verbs of
adapters/vcenter/source.py and target.py (migrate.core.ports.DiskSource, ColdTarget below).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from migrate.core.drivers import Role
from migrate.core.errors import AdapterError, OperationalError
from migrate.core.ports import ColdTarget, DiskSource, MigrationTarget, SourceInventory, missing_port
from migrate.engine.context import PhaseContext, retry_unit, wait_operation
from migrate.engine.methods import Method, Phase, RollbackStep, Stage
from migrate.engine.outputs import CopiedDisks, SourceState, TargetVm
from migrate.engine.readiness_rules import controller_hits
from migrate.engine.vm_checks import Check, check, settle, source_vm_checks

__all__ = ["COLD", "Check", "ColdTarget", "target_file"]

PROVIDER = "vcenter"


def _source(ctx: PhaseContext) -> DiskSource:
    return disk_source(ctx.adapters.source, "cold")


def disk_source(source: object, method: str) -> DiskSource:
    """The site's source as a DiskSource (its VMs' disk files can be read); OperationalError if it is not."""
    if not isinstance(source, DiskSource):
        raise missing_port(source, "DiskSource", "source", method)
    return source


def _inventory(ctx: PhaseContext) -> SourceInventory:
    """The source as the phases that only power off and mark it need it (shared with other methods)."""
    source = ctx.adapters.source
    if not isinstance(source, SourceInventory):
        raise missing_port(source, "SourceInventory", "source", "cold")
    return source


def _migration_target(ctx: PhaseContext) -> MigrationTarget:
    """The target as the phases that only tag and power on need it (shared with other methods)."""
    target = ctx.adapters.target
    if not isinstance(target, MigrationTarget):
        raise missing_port(target, "MigrationTarget", "target", "cold")
    return target


def cold_target(target: object) -> ColdTarget:
    """The site's target as a ColdTarget; OperationalError if it is not."""
    if not isinstance(target, ColdTarget):
        raise missing_port(target, "ColdTarget", "target", "cold")
    return target


def target_of(ctx: PhaseContext) -> ColdTarget:
    return cold_target(ctx.adapters.target)


def target_file(source_path: str, datastore: str, folder: str) -> str:
    """Where a source datastore file lands: '[ds] folder/<its file name>'."""
    return f"[{datastore}] {folder}/{source_path.rsplit('/', 1)[-1].split('] ', 1)[-1]}"


def _disk_targets(facts: Mapping[str, Any]) -> dict[int, str]:
    return {int(d["key"]): str(d["target_datastore"]) for d in facts.get("disks", [])}


# -- precheck ----------------------------------------------------------------------------------------

def source_checks(facts: Mapping[str, Any], live: Mapping[str, Any]) -> list[Check]:
    """The shared source checks plus the disk controllers a target VM can be given."""
    checks = source_vm_checks(facts, live, moved="copied")
    checks.extend(check(hit.rule, hit.status, hit.message) for hit in controller_hits(facts.get("disks", [])))
    return checks


def target_checks(ctx: PhaseContext, facts: Mapping[str, Any], live: Mapping[str, Any]) -> list[Check]:
    target = target_of(ctx)
    checks: list[Check] = []
    place = facts.get("placement", {})
    try:
        target.placement(place.get("cluster"), place.get("folder"), place.get("resource_pool"))
    except AdapterError as exc:
        if exc.retryable:
            raise
        checks.append({"check": "placement", "status": "block", "message": str(exc)})
    networks = target.networks(sorted({n["target_network"] for n in facts.get("nics", [])}))
    checks.extend({"check": "network", "status": "block", "message": f"target has no network {name!r}"}
                  for name, found in sorted(networks.items()) if found is None)
    # Thick disks need their capacity now, thin ones what they hold; thin capacity beyond free is a warning.
    used = {int(d["key"]): int(d.get("bytes") or 0) for d in live["disks"]}
    need: dict[str, int] = {}
    capacity: dict[str, int] = {}
    for disk in facts.get("disks", []):
        name, size = disk["target_datastore"], int(disk["capacity_bytes"])
        need[name] = need.get(name, 0) + (used.get(int(disk["key"]), size) if disk.get("thin") else size)
        capacity[name] = capacity.get(name, 0) + size
    for name, free in sorted(target.datastores(need).items()):
        if free is None:
            checks.append({"check": "datastore", "status": "block", "message": f"target has no datastore {name!r}"})
        elif free < need[name]:
            checks.append({"check": "free_space", "status": "block",
                           "message": f"datastore {name!r} has {free / 2**30:.1f} GiB free, "
                                      f"the VM's disks need {need[name] / 2**30:.1f} GiB"})
        elif free < capacity[name]:
            # no live figure in a warning: two dry-runs must stay equal while free space moves a little
            checks.append({"check": "free_space", "status": "warn",
                           "message": f"the VM's thin disks may grow to {capacity[name] / 2**30:.1f} GiB, more than "
                                      f"datastore {name!r} has free"})
    ours = target.find_vm(ctx.vm.id)
    others = [vm for vm in target.name_taken(facts["name"]) if vm != ours]
    if others:
        checks.append({"check": "name", "status": "block",
                       "message": f"the target already has a VM called {facts['name']!r} ({', '.join(others)})"})
    if ours is None:
        targets = _disk_targets(facts)
        for disk in live["disks"]:
            for path in disk["files"]:
                where = target_file(path, targets.get(int(disk["key"]), ""), facts["folder"])
                if int(disk["key"]) in targets and target.file_checksum(where) is not None:
                    checks.append({"check": "target_files", "status": "block",
                                   "message": f"{where} already exists on the target and no VM was created "
                                              "for this source: resume or roll back the run that wrote it"})
    return checks


def precheck(ctx: PhaseContext) -> dict[str, Any]:
    """Blocking and warning checks on both sides; records the source's power state and name."""
    facts = ctx.vm.facts
    live = _source(ctx).describe_vm(ctx.vm.id)
    checks = source_checks(facts, live) + target_checks(ctx, facts, live)
    settle(checks, ctx.log)
    return {"power_state": live["power_state"], "name": live["name"], "checks": checks}


# -- cutover -----------------------------------------------------------------------------------------

def power_off_source(ctx: PhaseContext) -> dict[str, Any]:
    """Shut the source down unless it is off."""
    source = _inventory(ctx)
    if source.vm_power_state(ctx.vm.id) == "poweredOff":
        return {"powered_off": False}
    wait_operation(source.power_off_vm(ctx.vm.id), ctx, provider=PROVIDER, what="power off source",
                   poll_seconds=0.2)
    return {"powered_off": True}


def _copy_file(ctx: PhaseContext, source_path: str, target_path: str, before: int = 0,
               total: int | None = None) -> dict[str, Any]:
    """Copy one datastore file unless the target's copy has the source's checksum; verify what landed.

    Progress goes to `ctx.progress` as the VM's bytes: `before` (its files already done) plus this file's.
    """
    source, target = _source(ctx), target_of(ctx)
    existing = target.file_checksum(target_path)
    if existing is not None and source.file_checksum(source_path) == existing:
        digest, size = existing
        ctx.progress.bytes(before + size, total)
        return {"source": source_path, "target": target_path, "sha256": digest, "bytes": size, "copied": False}
    sent = {"bytes": 0}

    def counted() -> Iterator[bytes]:
        for chunk in source.read_file(source_path):
            sent["bytes"] += len(chunk)
            ctx.progress.bytes(before + sent["bytes"], total)
            yield chunk

    digest = target.write_file(target_path, counted())
    landed = target.file_checksum(target_path)
    if landed != (digest, sent["bytes"]):
        raise AdapterError(PROVIDER, "copy disk", f"{target_path}: target checksum {landed} differs from the "
                                                  f"source's ({digest}, {sent['bytes']} bytes)", retryable=True)
    return {"source": source_path, "target": target_path, "sha256": digest, "bytes": sent["bytes"], "copied": True}


def _copy_retried(ctx: PhaseContext, source_path: str, target_path: str, before: int = 0,
                  total: int | None = None) -> dict[str, Any]:
    """One file's copy, tried again alone on a dropped connection (the files before it stay copied)."""
    return retry_unit(ctx, f"copy {source_path}", lambda: _copy_file(ctx, source_path, target_path, before, total))


def copy_disks(ctx: PhaseContext) -> dict[str, Any]:
    """Stream every file of every disk (descriptor and extents) to its target datastore, sha256-verified."""
    facts = ctx.vm.facts
    targets = _disk_targets(facts)
    disks = []
    live = _source(ctx).describe_vm(ctx.vm.id)["disks"]
    # the chains' sizes when the source reports them all (vcsim reports 0: the total is then not known)
    sizes = [int(disk.get("bytes") or 0) for disk in live]
    total = sum(sizes) if sizes and all(sizes) else None
    moved = 0
    for disk in live:
        datastore = targets[int(disk["key"])]
        files = []
        for path in disk["files"]:
            files.append(_copy_retried(ctx, path, target_file(path, datastore, facts["folder"]), moved, total))
            moved += files[-1]["bytes"]
        ctx.log.info("disk copied", disk=disk["key"], files=len(files), bytes=sum(f["bytes"] for f in files))
        disks.append({"key": disk["key"], "file": target_file(disk["file"], datastore, facts["folder"]),
                      "files": files})
    return {"disks": disks}


def vm_spec(ctx: PhaseContext, disk_files: Mapping[int, str], *, test: bool = False) -> dict[str, Any]:
    """The target VM's spec (plain data) around `disk_files` (disk key -> target file): the source's hardware,
    its NICs on the mapped networks with its MACs; a `test` copy gets the test networks and new MACs."""
    facts = ctx.vm.facts
    field = "test_network" if test else "target_network"
    unmapped = [str(n.get("network")) for n in facts.get("nics", []) if not n.get(field)]
    if unmapped:
        mapping = "test_networks" if test else "networks"
        raise OperationalError(f"site.yaml has no `mappings.{mapping}` entry for port group(s) {sorted(set(unmapped))}")
    names = sorted({n[field] for n in facts.get("nics", [])})
    networks = target_of(ctx).networks(names)
    missing = [name for name, found in networks.items() if found is None]
    if missing:
        raise OperationalError(f"target has no network(s) {missing}")
    first = facts["disks"][0]["target_datastore"] if facts.get("disks") else facts["placement"]["datastore"]
    return {
        "name": f"{facts['name']}-test" if test else facts["name"], "source_id": ctx.vm.id, "test": test,
        "vm_path": f"[{first}]",
        "cpus": facts["cpus"], "cores_per_socket": facts.get("cores_per_socket"), "memory_mb": facts["memory_mb"],
        "guest_id": facts.get("guest_id"), "firmware": facts.get("firmware"),
        "hardware_version": facts.get("hardware_version"), "placement": facts["placement"],
        "disks": [{"file": disk_files[int(d["key"])], "capacity_bytes": d["capacity_bytes"],
                   "controller": d["controller"], "unit": d["unit"], "thin": d.get("thin"), "mode": d.get("mode")}
                  for d in facts.get("disks", [])],
        "nics": [{"mac": None if test else n.get("mac"), "adapter": n.get("adapter"), "connected": n.get("connected"),
                  "network": networks[n[field]]} for n in facts.get("nics", [])],
    }


def _spec(ctx: PhaseContext) -> dict[str, Any]:
    return vm_spec(ctx, {d.key: d.file for d in ctx.output(CopiedDisks).disks})


def create_target_vm(ctx: PhaseContext) -> dict[str, Any]:
    """Create the target VM (same hardware, copied disks, mapped networks, same MACs) unless it exists."""
    target = target_of(ctx)
    existing = target.find_vm(ctx.vm.id)
    if existing is not None:
        return {"target_id": existing, "created": False}
    target_id = wait_operation(target.create_vm(ctx.vm.id, _spec(ctx)), ctx, provider=PROVIDER,
                               what="create target vm", poll_seconds=0.2)
    return {"target_id": str(target_id), "created": True}


def _target_id(ctx: PhaseContext) -> str:
    return ctx.output(TargetVm).target_id


def tag_target(ctx: PhaseContext) -> dict[str, Any]:
    """Tag the target VM with the source instanceUuid unless tagged."""
    target, target_id = _migration_target(ctx), _target_id(ctx)
    if target.is_tagged(target_id, ctx.vm.id):
        return {"tagged": False}
    target.tag_vm(target_id, ctx.vm.id)
    return {"tagged": True}


def power_on_target(ctx: PhaseContext) -> dict[str, Any]:
    """Power the target on if the source was on, unless it is on."""
    target, target_id = _migration_target(ctx), _target_id(ctx)
    if ctx.output(SourceState).power_state != "poweredOn" or target.vm_power_state(target_id) == "poweredOn":
        return {"powered_on": False}
    wait_operation(target.power_on_vm(target_id), ctx, provider=PROVIDER, what="power on target", poll_seconds=0.2)
    return {"powered_on": True}


# -- verify ------------------------------------------------------------------------------------------

def verify(ctx: PhaseContext) -> dict[str, Any]:
    """Exactly one target VM, tagged, with the planned hardware, disks, networks, MACs and power state."""
    target, facts = target_of(ctx), ctx.vm.facts
    found = target.find_all_vms(ctx.vm.id)
    if len(found) != 1:
        raise OperationalError(f"verify: {len(found)} target VMs record source {ctx.vm.id}: {found}")
    target_id = found[0]
    live = target.describe_vm(target_id)
    problems = []
    if not target.is_tagged(target_id, ctx.vm.id):
        problems.append("not tagged")
    if (live["cpus"], live["memory_mb"]) != (facts["cpus"], facts["memory_mb"]):
        problems.append(f"hardware {live['cpus']} vCPU/{live['memory_mb']} MB, planned "
                        f"{facts['cpus']}/{facts['memory_mb']}")
    want_nics = sorted((str(n.get("mac") or "").lower(), n["target_network"]) for n in facts.get("nics", []))
    have_nics = sorted((str(n.get("mac") or "").lower(), n["network_name"]) for n in live["nics"])
    if want_nics != have_nics:
        problems.append(f"NICs {have_nics}, planned {want_nics}")
    want_disks = sorted(d.file for d in ctx.output(CopiedDisks).disks)
    have_disks = sorted(str(d["file"]) for d in live["disks"])
    if want_disks != have_disks:
        problems.append(f"disks {have_disks}, copied {want_disks}")
    expected = ctx.output(SourceState).power_state
    if (expected == "poweredOn") != (live["power_state"] == "poweredOn"):
        problems.append(f"power state {live['power_state']}, source was {expected}")
    if problems:
        raise OperationalError(f"verify {target_id}: {'; '.join(problems)}")
    return {"target_id": target_id, "power_state": live["power_state"], "name": live["name"]}


def mark_source_migrated(ctx: PhaseContext) -> dict[str, Any]:
    """Mark the source migrated (custom field + rename), keeping it off; finishes a half-done mark."""
    target_id = _target_id(ctx)
    _inventory(ctx).mark_migrated(ctx.vm.id, note=f"{ctx.run_id}: {_migration_target(ctx).name}/{target_id}")
    return {"marked": True}


# -- rollback ----------------------------------------------------------------------------------------
# Run by migrate.engine.rollback in this order; `ctx.prior` holds the VM's finished phases and steps.

def remove_target(ctx: PhaseContext) -> dict[str, Any]:
    """Power off and delete every target VM recording this source (none is fine)."""
    target = target_of(ctx)
    removed = []
    for target_id in target.find_all_vms(ctx.vm.id):
        wait_operation(target.destroy_vm(target_id), ctx, provider=PROVIDER, what="destroy target vm",
                       poll_seconds=0.2)
        removed.append(target_id)
    return {"removed": removed}


def remove_copies(ctx: PhaseContext) -> dict[str, Any]:
    """Delete the disk files this run copied to the target (those Destroy_Task left, or of an unfinished copy)."""
    target = target_of(ctx)
    copied = ctx.maybe_output(CopiedDisks)
    if copied is not None:
        paths = [f.target for disk in copied.disks for f in disk.files]
    elif "power_off_source" in ctx.prior:  # the copy may have started: the files it would write
        targets = _disk_targets(ctx.vm.facts)
        paths = [target_file(path, targets[int(disk["key"])], ctx.vm.facts["folder"])
                 for disk in _source(ctx).describe_vm(ctx.vm.id)["disks"] if int(disk["key"]) in targets
                 for path in disk["files"]]
    else:
        paths = []
    deleted = []
    for path in paths:
        if target.file_checksum(path) is not None:
            wait_operation(target.delete_file(path), ctx, provider=PROVIDER, what="delete copied file",
                           poll_seconds=0.2)
            deleted.append(path)
    return {"deleted": deleted}


def restore_source_name(ctx: PhaseContext) -> dict[str, Any]:
    """Take the migrated mark off the source (its original name back)."""
    _source(ctx).unmark_migrated(ctx.vm.id)
    return {"unmarked": True}


def restore_source_power(ctx: PhaseContext) -> dict[str, Any]:
    """Power the source on if it was on before the run (runs only once its target is gone)."""
    source = _source(ctx)
    before = ctx.maybe_output(SourceState)
    if before is None or before.power_state != "poweredOn" or source.vm_power_state(ctx.vm.id) == "poweredOn":
        return {"powered_on": False}
    wait_operation(source.power_on_vm(ctx.vm.id), ctx, provider=PROVIDER, what="power on source", poll_seconds=0.2)
    return {"powered_on": True}


COLD = Method(
    name="cold",
    description="Power the source off, copy its disk files to the target datastores, create the same VM there, "
                "power it on as the source was, verify, mark the source.",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        Phase("power_off_source", Stage.CUTOVER, power_off_source),
        Phase("copy_disks", Stage.CUTOVER, copy_disks, provides=CopiedDisks, moves_data=True),
        Phase("create_target_vm", Stage.CUTOVER, create_target_vm, requires=(CopiedDisks,), provides=TargetVm),
        Phase("tag_target", Stage.CUTOVER, tag_target, requires=(TargetVm,)),
        Phase("power_on_target", Stage.CUTOVER, power_on_target, requires=(SourceState, TargetVm)),
        Phase("verify", Stage.VERIFY, verify, reads_only=True, requires=(SourceState, CopiedDisks, TargetVm)),
        Phase("mark_source_migrated", Stage.VERIFY, mark_source_migrated, requires=(TargetVm,)),
    ),
    rollback=(
        RollbackStep("remove_target", remove_target, "target"),
        RollbackStep("remove_copies", remove_copies, "target"),
        RollbackStep("restore_source_name", restore_source_name, "source"),
        RollbackStep("restore_source_power", restore_source_power, "after_target"),
    ),
    roles=frozenset({Role.SOURCE, Role.TARGET}),
    grows_cluster=True,
)
