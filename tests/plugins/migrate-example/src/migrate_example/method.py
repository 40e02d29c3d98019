"""The `archive` method: copy a VM's disk files from the source vCenter into an archive, never touching the source.

    precheck -> export_disks -> write_manifest -> verify          rollback: remove_archive

The source is read through the core DiskSource port (as the cold method reads it), the target through
this plugin's ArchiveTarget port (migrate_example.port; the dirtarget driver implements it). Each phase
first checks whether its effect exists: a file whose copy has the source's checksum is not copied again,
an unchanged manifest is not rewritten. A running source is archived as it is (crash-consistent at best):
the lab serves its files, a real vCenter locks a running VM's disks, so snapshot or stop it first there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import partial
from typing import Any, cast

from migrate.core.drivers import Role
from migrate.core.errors import AdapterError, OperationalError
from migrate.core.ports import DiskSource
from migrate.engine.context import PhaseContext, retry_unit
from migrate.engine.methods import Method, Phase, RollbackStep, Stage
from migrate.engine.outputs import SourceState
from migrate.engine.vm_checks import Check, check, settle
from migrate_example.facts import archive_facts
from migrate_example.outputs import ArchivedDisk, ArchivedFile, ArchiveManifest, ExportedDisks
from migrate_example.port import ArchiveTarget

__all__ = ["ARCHIVE", "MANIFEST_FORMAT", "file_name"]

PROVIDER = "archive"
MANIFEST_FORMAT = "migrate-example/archive"
HARDWARE = ("cpus", "cores_per_socket", "memory_mb", "guest_id", "firmware", "hardware_version")


def _source(ctx: PhaseContext) -> DiskSource:
    if ctx.adapters.source is None:
        raise OperationalError("the archive method needs a source vCenter (site.yaml `source`)")
    return cast(DiskSource, ctx.adapters.source)


def _target(ctx: PhaseContext) -> ArchiveTarget:
    target = ctx.adapters.target
    if not isinstance(target, ArchiveTarget):
        raise OperationalError("the archive method needs a target that keeps archives (site.yaml `target` with "
                               f"e.g. driver: dirtarget), not {type(target).__name__}")
    return target


def file_name(path: str) -> str:
    """A datastore file's name: '[ds] dir/vm-flat.vmdk' -> 'vm-flat.vmdk'."""
    return path.split("] ", 1)[-1].rsplit("/", 1)[-1]


# -- precheck ----------------------------------------------------------------------------------------

def _source_checks(facts: Mapping[str, Any], live: Mapping[str, Any]) -> list[Check]:
    checks = [check("power_state", "ok", f"source is {live['power_state']} and stays so")]
    if live["power_state"] != "poweredOff":
        checks.append(check("consistency", "warn", "the source keeps running: its disks are archived while it "
                                                   "writes (crash-consistent at best)"))
    checks.extend(check("rdm", "block", f"disk {d['key']} is a raw device mapping ({d['rdm']}): no file to archive")
                  for d in live["disks"] if d.get("rdm"))
    planned, found = {int(d["key"]) for d in facts["disks"]}, {int(d["key"]) for d in live["disks"]}
    if planned != found:
        checks.append(check("disks", "block", f"the source has disks {sorted(found)}, the plan {sorted(planned)}: "
                                              "re-discover and re-plan"))
    names = Counter(file_name(path) for d in live["disks"] for path in d["files"])
    checks.extend(check("file_names", "block", f"{count} disk files are called {name!r}; an archive holds one")
                  for name, count in sorted(names.items()) if count > 1)
    return checks


def _target_checks(ctx: PhaseContext, live: Mapping[str, Any]) -> list[Check]:
    target, folder = _target(ctx), ctx.vm.facts["folder"]
    checks: list[Check] = []
    owner = target.archive_owner(folder)
    if owner not in (None, ctx.vm.id):
        held = f"the archive of {owner}" if owner else "files that are not an archive"
        checks.append(check("archive", "block", f"{target.name}: {folder!r} already holds {held}"))
    need, free = sum(int(d.get("bytes") or 0) for d in live["disks"]), target.free_bytes()
    if need > free:
        checks.append(check("free_space", "block", f"{target.name} has {free / 2**30:.1f} GiB free, the VM's disks "
                                                   f"hold {need / 2**30:.1f} GiB"))
    return checks


def precheck(ctx: PhaseContext) -> dict[str, Any]:
    """Read-only checks on both sides; records the source's power state (verify compares it)."""
    live = _source(ctx).describe_vm(ctx.vm.id)
    checks = settle(_source_checks(ctx.vm.facts, live) + _target_checks(ctx, live), ctx.log)
    return {"power_state": live["power_state"], "name": live["name"], "checks": checks}


# -- cutover -----------------------------------------------------------------------------------------

def _export_file(ctx: PhaseContext, archive: str, source_path: str) -> dict[str, Any]:
    """Copy one datastore file unless the archive's copy has the source's checksum; check what landed."""
    source, target, name = _source(ctx), _target(ctx), file_name(source_path)
    existing = target.file_checksum(archive, name)
    if existing is not None and source.file_checksum(source_path) == existing:
        return {"source": source_path, "file": name, "sha256": existing[0], "bytes": existing[1], "copied": False}
    digest, size = target.write_file(archive, name, source.read_file(source_path))
    landed = target.file_checksum(archive, name)
    if landed != (digest, size):
        raise AdapterError(PROVIDER, "export disk", f"{archive}/{name}: {landed} on the target, {(digest, size)} "
                                                    "written", retryable=True)
    return {"source": source_path, "file": name, "sha256": digest, "bytes": size, "copied": True}


def export_disks(ctx: PhaseContext) -> dict[str, Any]:
    """Open the VM's archive (recording the source) and stream every file of every disk into it."""
    archive = _target(ctx).open_archive(ctx.vm.facts["folder"], ctx.vm.id)
    disks = []
    for disk in _source(ctx).describe_vm(ctx.vm.id)["disks"]:
        files = [retry_unit(ctx, f"export {path}", partial(_export_file, ctx, archive, path)) for path in disk["files"]]
        ctx.log.info("disk archived", disk=disk["key"], files=len(files), bytes=sum(f["bytes"] for f in files))
        disks.append({"key": disk["key"], "files": files})
    return {"archive": archive, "disks": disks}


def _manifest(ctx: PhaseContext, disks: list[ArchivedDisk]) -> dict[str, Any]:
    facts = ctx.vm.facts
    files = {d.key: [f.model_dump(include=set(ArchivedFile.model_fields)) for f in d.files] for d in disks}
    return {"format": MANIFEST_FORMAT, "version": 1, "source_id": ctx.vm.id, "name": facts["name"],
            "run_id": ctx.run_id, "power_state": ctx.output(SourceState).power_state,
            "hardware": {key: facts.get(key) for key in HARDWARE}, "nics": facts["nics"],
            "disks": [{**disk, "files": files.get(int(disk["key"]), [])} for disk in facts["disks"]]}


def write_manifest(ctx: PhaseContext) -> dict[str, Any]:
    """Write the archive's manifest (hardware, NICs, disks with their files' checksums) unless it is written."""
    target, exported = _target(ctx), ctx.output(ExportedDisks)
    manifest = _manifest(ctx, exported.disks)
    written = target.read_manifest(exported.archive) != manifest
    if written:
        target.write_manifest(exported.archive, manifest)
    return {"target_id": exported.archive, "manifest": f"{exported.archive}/manifest.json", "written": written}


# -- verify ------------------------------------------------------------------------------------------

def verify(ctx: PhaseContext) -> dict[str, Any]:
    """Exactly one archive records the source, with its manifest and every file as exported."""
    target, exported = _target(ctx), ctx.output(ExportedDisks)
    archive = ctx.output(ArchiveManifest).target_id
    found = target.find_archives(ctx.vm.id)
    if found != [archive]:
        raise OperationalError(f"verify: archives recording {ctx.vm.id}: {found}, expected [{archive!r}]")
    problems = []
    if target.read_manifest(archive) != _manifest(ctx, exported.disks):
        problems.append("the manifest is missing or differs from what was written")
    files = [f for disk in exported.disks for f in disk.files]
    problems.extend(f"{f.file}: {landed} on the target, {(f.sha256, f.bytes)} exported" for f in files
                    if (landed := target.file_checksum(archive, f.file)) != (f.sha256, f.bytes))
    if problems:
        raise OperationalError(f"verify {archive}: {'; '.join(problems)}")
    before, now = ctx.output(SourceState).power_state, _source(ctx).vm_power_state(ctx.vm.id)
    if now != before:   # not this method's doing: it never changes the source
        ctx.log.warning("source power state changed during the run", before=before, now=now)
    return {"target_id": archive, "files": len(files), "bytes": sum(f.bytes for f in files), "source_power": now}


# -- rollback ----------------------------------------------------------------------------------------

def remove_archive(ctx: PhaseContext) -> dict[str, Any]:
    """Delete every archive recording the source (a complete one or what an interrupted export left)."""
    target = _target(ctx)
    return {"removed": [name for name in target.find_archives(ctx.vm.id) if target.remove_archive(name)]}


ARCHIVE = Method(
    name="archive",
    description="Copy the VM's disk files from the source vCenter into an archive of the target (driver dirtarget: "
                "a folder per VM) with a JSON manifest of its hardware and NICs; the source is only read.",
    phases=(
        Phase("precheck", Stage.PRECHECK, precheck, provides=SourceState),
        Phase("export_disks", Stage.CUTOVER, export_disks, provides=ExportedDisks),
        Phase("write_manifest", Stage.CUTOVER, write_manifest, requires=(SourceState, ExportedDisks),
              provides=ArchiveManifest),
        Phase("verify", Stage.VERIFY, verify, reads_only=True, requires=(SourceState, ExportedDisks, ArchiveManifest)),
    ),
    rollback=(RollbackStep("remove_archive", remove_archive, "target"),),
    roles=frozenset({Role.SOURCE, Role.TARGET}),
    playbook="migrate_example:playbooks/archive.yaml",
    facts=archive_facts,
)
