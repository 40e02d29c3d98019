"""The port the `archive` method needs from its target (the core MigrationTarget, with its power and tags,
does not fit a place that only stores files). A driver offers it by implementing these verbs.

An archive is a named folder that records the source VM it holds before anything is written into it,
so a re-run finds it (idempotent phases) and a rollback removes it even when it is incomplete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["ArchiveTarget"]


@runtime_checkable
class ArchiveTarget(Protocol):
    """A place that holds archived VMs, one named archive each."""

    @property
    def name(self) -> str:
        """Label for logs and errors."""
        ...

    def archive_owner(self, archive: str) -> str | None:
        """The source id `archive` records; "" when something not an archive has that name; None if nothing has."""
        ...

    def open_archive(self, archive: str, source_id: str) -> str:
        """Create `archive` recording `source_id` (nothing if it does); AdapterError if it records another source."""
        ...

    def find_archives(self, source_id: str) -> list[str]:
        """Every archive recording `source_id` (more than one is a duplicate)."""
        ...

    def file_checksum(self, archive: str, file: str) -> tuple[str, int] | None:
        """sha256 and size of a file of the archive, or None if it does not exist."""
        ...

    def write_file(self, archive: str, file: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Write a file of the archive whole or not at all; the sha256 and size of what was written."""
        ...

    def write_manifest(self, archive: str, manifest: Mapping[str, Any]) -> None:
        """Record the archive's manifest (whole or not at all)."""
        ...

    def read_manifest(self, archive: str) -> dict[str, Any] | None:
        """The archive's manifest, or None if it has none yet."""
        ...

    def remove_archive(self, archive: str) -> bool:
        """Delete the archive and everything in it; False if there was none."""
        ...

    def free_bytes(self) -> int:
        """Bytes the target can still hold."""
        ...
