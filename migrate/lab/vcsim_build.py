"""Build the lab's vcsim binary from tests/lab/main.go once, and cache it by the source's hash."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from migrate.errors import LabError
from migrate.log import get_logger

__all__ = ["GOPATH", "vcsim_binary", "vcsim_source"]

GOPATH = "/usr/share/gocode"
_GOVMOMI = Path(GOPATH) / "src/github.com/vmware/govmomi/simulator"
_INSTALL_HINT = "apt-get install golang-go golang-github-vmware-govmomi-dev (the README's set-up does this)"
log = get_logger(__name__)


def vcsim_source() -> Path:
    """tests/lab/main.go of this checkout, or $MIGRATE_VCSIM_SOURCE."""
    override = os.environ.get("MIGRATE_VCSIM_SOURCE")
    source = Path(override) if override else Path(__file__).resolve().parents[2] / "tests" / "lab" / "main.go"
    if not source.is_file():
        raise LabError(f"vcsim source not found at {source}; set MIGRATE_VCSIM_SOURCE to tests/lab/main.go")
    return source


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "migrate" / "vcsim"


def vcsim_binary() -> Path:
    """Path to a built vcsim for the current main.go; builds it (about 20 s) when missing."""
    source = vcsim_source()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
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
        log.info("building vcsim", source=str(source))
        tmp = out_dir / f"vcsim-lab.{os.getpid()}.tmp"
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH,
               "GOCACHE": str(_cache_root() / "gocache"), "CGO_ENABLED": "0"}
        result = subprocess.run([go, "build", "-o", str(tmp), source.name], cwd=source.parent, env=env,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise LabError(f"building vcsim failed:\n{result.stderr.strip()}")
        tmp.replace(binary)
    return binary
