"""Typed outputs of the `archive` phases (journaled as JSON, read back typed with `ctx.output`)."""

from __future__ import annotations

from migrate.engine.outputs import PhaseOutput, TargetVm

__all__ = ["ArchiveManifest", "ArchivedDisk", "ArchivedFile", "ExportedDisks"]


class ArchivedFile(PhaseOutput):
    """One file of a disk (descriptor or extent): its source path, its name in the archive, what landed."""

    source: str
    file: str
    sha256: str
    bytes: int


class ArchivedDisk(PhaseOutput):
    """One disk of the VM, by device key, with its files."""

    key: int
    files: list[ArchivedFile]


class ExportedDisks(PhaseOutput):
    """Every disk of the VM, in the archive."""

    archive: str
    disks: list[ArchivedDisk]


class ArchiveManifest(TargetVm):
    """The archive that now holds the VM (`target_id`) and its manifest file."""

    manifest: str
