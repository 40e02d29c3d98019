"""`migrate lab churn`: a guest-write workload on the lab's running VMs, for warm migration tests.

The on-prem vcsim of the lab has guests that write nothing, so this stands in for them: it writes seeded
pseudo-random blocks at seeded random block-aligned offsets, paced at a total rate, through the lab's guest-write
endpoint (`POST /lab/guest/write?vm=&key=&offset=`, HTTP basic with the site's user and password, TLS verified
with the lab's CA). Writes land where a guest's would: the disk's current backing (the delta while a snapshot
exists), recorded by CBT when it is on. Offsets stay inside each disk's current data (the length of its current
backing file, as a datastore HEAD gives it), so the lab stays small.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests

from adapters.vcenter.settings import VCenterEndpoint, resolve_password
from adapters.vcenter.tls import requests_session
from migrate.config import load_site_config
from migrate.core.errors import InputError, LabError, OperationalError, Problem
from migrate.core.faults import Backoff, call_with_retry
from migrate.core.log import get_logger
from migrate.lab.manager import lab_status

__all__ = ["ChurnResult", "DiskChurn", "GuestApi", "GuestClient", "GuestWriteRefused", "churn", "merge_extents",
           "run_churn"]

MIB = 1024 * 1024
DEFAULT_BLOCK = 64 * 1024
_BACKOFF = Backoff(base=0.1, max_delay=2.0, deadline=30.0)
log = get_logger(__name__)


def merge_extents(extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, length) extents merged: sorted, overlapping and adjacent ones joined."""
    merged: list[tuple[int, int]] = []
    for start, length in sorted(e for e in extents if e[1] > 0):
        if merged and start <= merged[-1][0] + merged[-1][1]:
            last_start, last_length = merged[-1]
            merged[-1] = (last_start, max(last_length, start + length - last_start))
        else:
            merged.append((start, length))
    return merged


@dataclass
class DiskChurn:
    """What was written to one disk of one VM."""

    vm: str
    moref: str
    key: int
    writes: int = 0
    bytes: int = 0
    files: set[str] = field(default_factory=set)
    written: list[tuple[int, int]] = field(default_factory=list)

    @property
    def extents(self) -> list[tuple[int, int]]:
        """The disk areas written, merged (what QueryChangedDiskAreas should report for them)."""
        return merge_extents(self.written)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "writes": self.writes, "bytes": self.bytes, "files": sorted(self.files),
                "extents": [list(e) for e in self.extents]}


@dataclass
class ChurnResult:
    """Bytes, writes and extents per VM and disk, how long it ran, and VMs that stopped taking writes."""

    seconds: float
    mib_per_s: float
    block_bytes: int
    disks: list[DiskChurn]
    stopped: dict[str, str] = field(default_factory=dict)   # VM name -> why its writes stopped

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.disks)

    @property
    def writes(self) -> int:
        return sum(d.writes for d in self.disks)

    def disk(self, vm: str, key: int) -> DiskChurn:
        return next(d for d in self.disks if d.vm == vm and d.key == key)

    def to_dict(self) -> dict[str, Any]:
        vms: dict[str, Any] = {}
        for d in self.disks:
            entry = vms.setdefault(d.vm, {"moref": d.moref, "writes": 0, "bytes": 0, "disks": []})
            entry["writes"] += d.writes
            entry["bytes"] += d.bytes
            entry["disks"].append(d.to_dict())
        return {"seconds": round(self.seconds, 3), "mib_per_s": self.mib_per_s, "block_bytes": self.block_bytes,
                "writes": self.writes, "bytes": self.bytes, "vms": vms, "stopped": self.stopped}


class GuestWriteRefused(Exception):
    """The lab refused a guest write for a reason that will not change (VM stopped, disk gone)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class GuestApi(Protocol):
    """What the workload needs of the lab: its VMs, and a guest write."""

    def vms(self) -> list[dict[str, Any]]: ...

    def write(self, moref: str, key: int, offset: int, data: bytes) -> dict[str, Any]: ...


class GuestClient:
    """The lab vCenter's guest endpoints (/lab/guest/vms, /lab/guest/write) over verified TLS."""

    def __init__(self, endpoint: VCenterEndpoint, password: str, timeout: float = 30.0) -> None:
        self._base = endpoint.url.rsplit("/sdk", 1)[0]
        self._http = requests_session(endpoint.tls)   # the site's trust: CA file, thumbprint, or none
        self._http.auth = (endpoint.username, password)
        self._timeout = timeout

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        def once() -> Any:
            response = self._http.request(method, self._base + path, timeout=self._timeout, **kwargs)
            if response.status_code == 401:
                raise LabError(f"the lab refused the credentials for {path} (HTTP 401)")
            if response.status_code in (404, 409):
                raise GuestWriteRefused(response.status_code, _error_text(response))
            if 400 <= response.status_code < 500:
                raise OperationalError(f"{what}: HTTP {response.status_code}: {_error_text(response)}")
            response.raise_for_status()  # 5xx: requests.HTTPError, retried when transient
            return response.json()

        return call_with_retry(once, backoff=_BACKOFF, what=what)

    def vms(self) -> list[dict[str, Any]]:
        """Every VM with its power state and disks (key, current file, capacity, size of the current file)."""
        data: list[dict[str, Any]] = self._call("GET", "/lab/guest/vms", "list lab VMs")["vms"]
        return data

    def write(self, moref: str, key: int, offset: int, data: bytes) -> dict[str, Any]:
        """Write `data` at `offset` of the disk as the guest would; the lab's answer (file written, changeId)."""
        answer: dict[str, Any] = self._call("POST", "/lab/guest/write", f"guest write {moref}:{key}",
                                            params={"vm": moref, "key": key, "offset": offset}, data=data)
        return answer

    def close(self) -> None:
        self._http.close()


def _error_text(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text.strip()


@dataclass
class _Target:
    disk: DiskChurn
    blocks: int


def _targets(listing: list[dict[str, Any]], names: list[str] | None, block_bytes: int) -> list[_Target]:
    by_name = {vm["name"]: vm for vm in listing}
    if names:
        problems = [Problem("--vm", "", f"no VM named {name!r} in the lab's on-prem vCenter")
                    for name in dict.fromkeys(names) if name not in by_name]
        problems += [Problem("--vm", "", f"VM {name!r} is {by_name[name]['powerState']}: its guest writes nothing")
                     for name in dict.fromkeys(names)
                     if name in by_name and by_name[name]["powerState"] != "poweredOn"]
        if problems:
            raise InputError(problems)
        chosen = [by_name[name] for name in dict.fromkeys(names)]
    else:
        chosen = [vm for vm in listing if vm["powerState"] == "poweredOn"]
    targets = [_Target(DiskChurn(vm["name"], vm["moref"], disk["key"]),
                       min(disk["size"], disk["capacity"]) // block_bytes)
               for vm in chosen for disk in vm["disks"]]
    return [t for t in targets if t.blocks > 0]


def _validate(mib_per_s: float, seconds: float, block_bytes: int) -> None:
    problems = []
    if not mib_per_s > 0:
        problems.append(Problem("--mib-per-s", "", "must be more than 0"))
    if seconds < 0:
        problems.append(Problem("--seconds", "", "must not be negative"))
    if block_bytes <= 0 or block_bytes % 512:
        problems.append(Problem("block_bytes", "", "must be a positive multiple of 512"))
    if problems:
        raise InputError(problems)


def run_churn(client: GuestApi, *, vms: list[str] | None, mib_per_s: float, seconds: float, seed: int = 1,
              block_bytes: int = DEFAULT_BLOCK, stop: threading.Event | None = None,
              clock: Callable[[], float] = time.monotonic) -> ChurnResult:
    """The workload against `client`: see `churn`."""
    _validate(mib_per_s, seconds, block_bytes)
    targets = _targets(client.vms(), vms, block_bytes)
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
    interval = block_bytes / (mib_per_s * MIB)
    stop = stop or threading.Event()
    result = ChurnResult(0.0, mib_per_s, block_bytes, [t.disk for t in targets])
    started = clock()
    n = 0
    while targets and not stop.is_set():
        due = started + n * interval
        if due - started >= seconds:
            break
        if (wait := due - clock()) > 0 and stop.wait(wait):
            break
        target = targets[rng.randrange(len(targets))]
        offset = rng.randrange(target.blocks) * block_bytes
        data = rng.randbytes(block_bytes)
        n += 1
        disk = target.disk
        try:
            answer = client.write(disk.moref, disk.key, offset, data)
        except GuestWriteRefused as exc:
            result.stopped[disk.vm] = str(exc)
            log.info("churn: VM takes no more writes", vm=disk.vm, reason=str(exc))
            targets = [t for t in targets if t.disk.moref != disk.moref]
            continue
        disk.writes += 1
        disk.bytes += len(data)
        disk.written.append((offset, len(data)))
        disk.files.add(str(answer.get("file", "")))
    result.seconds = clock() - started
    return result


def churn(directory: Path, *, vms: list[str] | None, mib_per_s: float, seconds: float, seed: int = 1,
          block_bytes: int = DEFAULT_BLOCK, stop: threading.Event | None = None) -> ChurnResult:
    """Write to the disks of the lab's powered-on on-prem VMs (those named, or all) as their guests would, at
    `mib_per_s` in total for `seconds` (or until `stop` is set). Seeded: the same seed writes the same blocks
    at the same offsets in the same order. InputError for unknown or powered-off VMs named; LabError when no lab
    runs in `directory`."""
    info = lab_status(directory)
    if info is None or not info.running():
        raise LabError(f"no running lab in {directory}; start one with `migrate lab up --dir {directory}`")
    site = load_site_config(info.site_config)
    endpoint = site.source
    if not isinstance(endpoint, VCenterEndpoint):
        raise LabError(f"{info.site_config}: the source is not a vCenter")
    client = GuestClient(endpoint, resolve_password(endpoint))
    try:
        return run_churn(client, vms=vms, mib_per_s=mib_per_s, seconds=seconds, seed=seed,
                         block_bytes=block_bytes, stop=stop)
    finally:
        client.close()
