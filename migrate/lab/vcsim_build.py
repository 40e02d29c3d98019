"""Build the lab's vcsim binary from its Go source once, and cache it by the source's hash.

The source, main.go, ships inside the package (migrate/lab/vcsim/, read through importlib.resources), so an
installed wheel builds the same binary as a checkout and finds the same cache entry.
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

__all__ = ["GOPATH", "vcsim_binary", "vcsim_source"]

GOPATH = "/usr/share/gocode"
_GOVMOMI = Path(GOPATH) / "src/github.com/vmware/govmomi/simulator"
_INSTALL_HINT = "apt-get install golang-go golang-github-vmware-govmomi-dev (the README's set-up does this)"
log = get_logger(__name__)


def vcsim_source() -> Traversable:
    """The packaged migrate/lab/vcsim/main.go, or the file $MIGRATE_VCSIM_SOURCE names."""
    override = os.environ.get("MIGRATE_VCSIM_SOURCE")
    source: Traversable = Path(override) if override else resources.files("migrate.lab.vcsim") / "main.go"
    if not source.is_file():
        raise LabError(f"vcsim source not found at {source}; set MIGRATE_VCSIM_SOURCE to a vcsim-lab main.go")
    return source


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "migrate" / "vcsim"


def vcsim_binary() -> Path:
    """Path to a built vcsim for the current main.go; builds it (about 20 s) when missing."""
    code = vcsim_source().read_bytes()
    digest = hashlib.sha256(code).hexdigest()[:16]
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
            (Path(src) / "main.go").write_bytes(code)
            result = subprocess.run([go, "build", "-o", str(tmp), "main.go"], cwd=src, env=env,
                                    capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise LabError(f"building vcsim failed:\n{result.stderr.strip()}")
        tmp.replace(binary)
    return binary
