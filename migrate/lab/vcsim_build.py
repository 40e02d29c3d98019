"""Build the lab's vcsim binary from its Go sources once, and cache it by the sources' hash.

The sources (main.go and the other *.go files of migrate/lab/vcsim/: CBT, snapshots, guest writes) ship inside
the package (read through importlib.resources), so an installed wheel builds the same binary as a checkout and
finds the same cache entry. The hash covers every file's name and bytes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from migrate.core.errors import LabError
from migrate.core.log import get_logger

__all__ = ["GOPATH", "vcsim_binary", "vcsim_source", "vcsim_sources"]

GOPATH = "/usr/share/gocode"
_GOVMOMI = Path(GOPATH) / "src/github.com/vmware/govmomi/simulator"
_INSTALL_HINT = "apt-get install golang-go golang-github-vmware-govmomi-dev (the README's set-up does this)"
log = get_logger(__name__)


def _override() -> Path | None:
    override = os.environ.get("MIGRATE_VCSIM_SOURCE")
    if not override:
        return None
    path = Path(override)
    return path / "main.go" if path.is_dir() else path


def vcsim_source() -> Traversable:
    """The packaged migrate/lab/vcsim/main.go, or the main.go $MIGRATE_VCSIM_SOURCE names (file or directory)."""
    override = _override()
    source: Traversable = override if override else resources.files("migrate.lab.vcsim") / "main.go"
    if not source.is_file():
        raise LabError(f"vcsim source not found at {source}; set MIGRATE_VCSIM_SOURCE to a vcsim-lab main.go")
    return source


def vcsim_sources() -> dict[str, bytes]:
    """Every .go file of the simulator's package by name, sorted: main.go and the files beside it."""
    main = vcsim_source()
    override = _override()
    folder: Traversable = override.parent if override else resources.files("migrate.lab.vcsim")
    files = {entry.name: entry.read_bytes() for entry in folder.iterdir()
             if entry.is_file() and entry.name.endswith(".go") and not entry.name.endswith("_test.go")}
    files["main.go"] = main.read_bytes()
    return dict(sorted(files.items()))


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "migrate" / "vcsim"


def vcsim_binary() -> Path:
    """Path to a built vcsim for the current sources; builds it (about 20 s) when missing."""
    sources = vcsim_sources()
    hasher = hashlib.sha256()
    for name, code in sources.items():
        hasher.update(f"{name}\0{len(code)}\0".encode())
        hasher.update(code)
    digest = hasher.hexdigest()[:16]
    out_dir = _cache_root() / digest
    binary = out_dir / "vcsim-lab"
    if binary.is_file():
        return binary
    go = shutil.which("go")
    if go is None:
        raise LabError(f"Go is not installed; {_INSTALL_HINT}")
    if not _GOVMOMI.is_dir():
        raise LabError(f"govmomi sources not found under {GOPATH}; {_INSTALL_HINT}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same binary
        if binary.is_file():
            return binary
        log.info("building vcsim", digest=digest)
        tmp = out_dir / f"vcsim-lab.{os.getpid()}.tmp"
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH,
               "GOCACHE": str(_cache_root() / "gocache"), "CGO_ENABLED": "0"}
        # GOPATH mode builds a directory on disk: copy the packaged source (maybe read-only or zipped) into one
        with tempfile.TemporaryDirectory(prefix="src.", dir=out_dir) as src:
            for name, code in sources.items():
                (Path(src) / name).write_bytes(code)
            result = subprocess.run([go, "build", "-o", str(tmp), "."], cwd=src, env=env,
                                    capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise LabError(f"building vcsim failed:\n{result.stderr.strip()}")
        tmp.replace(binary)
    return binary
