"""Damage in a journal's WAL file, which SQLite itself never reports.

SQLite reads the WAL up to the last commit frame whose checksum chain holds and silently ignores the rest
(https://www.sqlite.org/fileformat2.html#walformat): a frame damaged in the middle drops every committed
transaction after it, and a damaged WAL header drops them all. After SQLite has opened the journal, the
wal-index (the -shm file) says how many frames it accepted (`mxFrame`). Frames after those that carry the
WAL's current salts were written since the last checkpoint: if the first of them fails its checksum and
whole committed transactions follow it, records were lost. A torn last transaction (a crash while it was
being written, never reported as committed) is dropped by SQLite as it should be, and is not reported;
neither is a frame a running migration is writing right now (its checksum holds).
"""

from __future__ import annotations

import mmap
import struct
import sys
from pathlib import Path

__all__ = ["WAL_HEADER", "wal_problems", "wal_size"]

WAL_HEADER = 32
FRAME_HEADER = 24
MAGIC = (0x377F0682, 0x377F0683)  # little- and big-endian checksums
VERSION = 3007000


def wal_size(path: Path) -> int:
    """Bytes in the journal's -wal beyond its header (0 when it holds no frame or does not exist)."""
    try:
        size = Path(f"{path}-wal").stat().st_size
    except OSError:
        return 0
    return size if size > WAL_HEADER else 0


def _checksum(data: bytes, big: bool, s0: int, s1: int) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _accepted_frames(path: Path) -> int | None:
    """mxFrame of the wal-index header (-shm, native byte order, two copies that must agree), or None."""
    try:
        with open(f"{path}-shm", "rb") as handle:
            head = handle.read(96)
    except OSError:
        return None
    if len(head) < 96 or head[:48] != head[48:96]:
        return None
    order = "<" if sys.byteorder == "little" else ">"
    version, _, _, init = struct.unpack(f"{order}IIIB", head[:13])
    if version != VERSION or not init:
        return None
    return int(struct.unpack(f"{order}I", head[16:20])[0])


def wal_problems(path: Path) -> list[tuple[str, str]]:
    """Damage in the -wal of `path` that loses committed records (empty if none, or if it cannot be told)."""
    if not wal_size(path):
        return []
    wal = Path(f"{path}-wal")
    with wal.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _problems(wal, data)


def _problems(wal: Path, data: mmap.mmap) -> list[tuple[str, str]]:
    magic, version, page, _, salt1, salt2, c0, c1 = struct.unpack(">8I", data[:WAL_HEADER])
    frame = FRAME_HEADER + page
    if magic not in MAGIC or version != VERSION or page < 512 or page > 65536 or page & (page - 1):
        frames = (len(data) - WAL_HEADER) // frame if 512 <= page <= 65536 else 0
        held = f", {frames} frames" if frames else ""
        return [(f"WAL {wal}", f"the WAL header is damaged (SQLite ignores the whole WAL{held}: every record "
                               "written since the last checkpoint)")]
    big = magic == MAGIC[1]
    total = (len(data) - WAL_HEADER) // frame
    if _checksum(data[:24], big, 0, 0) != (c0, c1):
        return [(f"WAL {wal}", f"the WAL header fails its checksum (SQLite ignores all {total} frames: every record "
                               "written since the last checkpoint)")]
    accepted = _accepted_frames(Path(str(wal).removesuffix("-wal")))
    if accepted is None or accepted >= total:
        return []

    def head(i: int) -> tuple[int, ...]:
        return struct.unpack(">6I", data[WAL_HEADER + i * frame:WAL_HEADER + i * frame + FRAME_HEADER])

    def sound(i: int) -> bool:  # frame i's checksum, chained from the one stored before it
        s0, s1 = (c0, c1) if i == 0 else head(i - 1)[4:6]
        start = WAL_HEADER + i * frame
        s0, s1 = _checksum(data[start:start + 8], big, s0, s1)
        return _checksum(data[start + FRAME_HEADER:start + frame], big, s0, s1) == head(i)[4:6]

    current = [i for i in range(accepted, total) if head(i)[2:4] == (salt1, salt2)]
    bad = next((i for i in current if not sound(i)), None)
    if bad is None:
        return []  # an unfinished last transaction, or one committed after SQLite read the -shm (a run in progress)
    commits = [i for i in current if i > bad and head(i)[1]]
    lost = len(commits) if head(bad)[1] else len(commits) - 1  # else the first one ends the damaged frame's own
    if lost < 1:
        return []  # a torn last transaction: SQLite drops it, as after a crash while it was written
    return [(f"WAL {wal}", f"frame {bad + 1} of {total} fails its checksum: SQLite ignores it and the {lost} "
                           "committed transaction(s) after it (records written since the last checkpoint)")]
