"""The dirtarget driver's adapter: a directory with one folder per archived VM (the ArchiveTarget port).

    <path>/<archive>/.source        the source VM's id, written (atomically) before anything else
    <path>/<archive>/<disk files>   byte for byte, each written to a temporary name and renamed
    <path>/<archive>/manifest.json  written last

A removal first renames the folder to a hidden name that still records its source, so an interrupted
removal is found and finished by the next one. OS errors become AdapterErrors, classified by errno.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from migrate.core.errors import AdapterError
from migrate_example.settings import DirTargetSettings

__all__ = ["MANIFEST", "PROVIDER", "SOURCE_FILE", "DirTarget"]

PROVIDER = "dirtarget"
SOURCE_FILE = ".source"
MANIFEST = "manifest.json"
REMOVING = ".removing-"
CHUNK = 1 << 20
_RETRYABLE = frozenset({errno.EINTR, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.EIO})


@contextmanager
def _os_errors(op: str, where: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0)
        raise AdapterError(PROVIDER, op, f"{where}: {exc.strerror or exc}", retryable=exc.errno in _RETRYABLE,
                           code=code) from exc


def _plain(name: str, what: str, *, removing: bool = False) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name or (name.startswith(REMOVING) and not removing):
        raise AdapterError(PROVIDER, what, f"{name!r} is not a plain file name")
    return name


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_whole(path: Path, chunks: Iterable[bytes]) -> tuple[str, int]:
    """Write `chunks` to a temporary file beside `path`, sync it, rename it over `path`."""
    part = path.with_name(f".{path.name}.part")
    digest, size = hashlib.sha256(), 0
    with part.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)
    return digest.hexdigest(), size


class DirTarget:
    """A directory of archives (migrate_example.port.ArchiveTarget)."""

    def __init__(self, settings: DirTargetSettings) -> None:
        self.root = settings.path
        self._name = settings.name or str(settings.path)

    @property
    def name(self) -> str:
        return self._name

    def _folder(self, archive: str) -> Path:
        return self.root / _plain(archive, "archive name")

    def archive_owner(self, archive: str) -> str | None:
        folder = self._folder(archive)
        with _os_errors("read archive", folder):
            if not folder.exists():
                return None
            marker = folder / SOURCE_FILE
            return marker.read_text().strip() if marker.is_file() else ""

    def open_archive(self, archive: str, source_id: str) -> str:
        owner = self.archive_owner(archive)
        if owner == source_id:
            return archive
        folder = self._folder(archive)
        with _os_errors("open archive", folder):
            if owner == "" and all(p.name.startswith(f"{SOURCE_FILE}.") for p in folder.iterdir()):
                owner = None   # its creation stopped before it recorded its source: take it over
        if owner is not None:
            held = f"the archive of {owner}" if owner else "files that are not an archive"
            raise AdapterError(PROVIDER, "open archive", f"{folder} already holds {held}")
        with _os_errors("open archive", folder):
            folder.mkdir(exist_ok=True)
            part = folder / f"{SOURCE_FILE}.{uuid.uuid4().hex}"
            with part.open("wb") as handle:
                handle.write(source_id.encode())
                os.fsync(handle.fileno())
            os.link(part, folder / SOURCE_FILE)   # fails if a racing call recorded its source first
            part.unlink()
        return archive

    def find_archives(self, source_id: str) -> list[str]:
        found = []
        with _os_errors("find archives", self.root):
            for marker in self.root.glob(f"*/{SOURCE_FILE}"):
                try:
                    if marker.read_text().strip() == source_id:
                        found.append(marker.parent.name)
                except FileNotFoundError:   # another VM's archive, removed since the listing
                    continue
        return sorted(found)

    def file_checksum(self, archive: str, file: str) -> tuple[str, int] | None:
        path = self._folder(archive) / _plain(file, "file name")
        with _os_errors("checksum file", path):
            return _sha256(path) if path.is_file() else None

    def write_file(self, archive: str, file: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        path = self._folder(archive) / _plain(file, "file name")
        with _os_errors("write file", path):
            return _write_whole(path, chunks)

    def write_manifest(self, archive: str, manifest: Mapping[str, Any]) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        self.write_file(archive, MANIFEST, [text.encode()])

    def read_manifest(self, archive: str) -> dict[str, Any] | None:
        path = self._folder(archive) / MANIFEST
        with _os_errors("read manifest", path):
            if not path.is_file():
                return None
            data: dict[str, Any] = json.loads(path.read_text())
            return data

    def remove_archive(self, archive: str) -> bool:
        folder = self.root / _plain(archive, "archive name", removing=True)   # a half-removed one too
        with _os_errors("remove archive", folder):
            if not folder.exists():
                return False
            if not (folder / SOURCE_FILE).is_file():
                raise AdapterError(PROVIDER, "remove archive", f"{folder} is not an archive; left as it is")
            if not archive.startswith(REMOVING):
                hidden = folder.with_name(f"{REMOVING}{uuid.uuid4().hex[:8]}-{archive}")
                folder.rename(hidden)
                folder = hidden
            for entry in folder.iterdir():   # the source record last: until then a retry finds the rest
                if entry.is_dir():
                    shutil.rmtree(entry)
                elif entry.name != SOURCE_FILE:
                    entry.unlink()
            (folder / SOURCE_FILE).unlink()
            folder.rmdir()
            return True

    def ex_archives(self) -> list[str]:
        """Every archive, whatever source it records."""
        with _os_errors("list archives", self.root):
            return sorted(marker.parent.name for marker in self.root.glob(f"*/{SOURCE_FILE}"))

    def free_bytes(self) -> int:
        with _os_errors("free space", self.root):
            return shutil.disk_usage(self.root).free

    def close(self) -> None:
        """Nothing to close: every call opens and closes its files."""
