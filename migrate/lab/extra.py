"""The lab's own dependencies (moto's server, cryptography) come with the `lab` extra, not the base install."""

from __future__ import annotations

import importlib.util

from migrate.core.errors import LabError

__all__ = ["LAB_EXTRA_HINT", "LAB_MODULES", "missing_lab_modules", "require_lab_extra"]

LAB_EXTRA_HINT = "migrate lab needs the lab extra: pip install 'vmware-cloud-migrate[lab]'"
# import names of what `pip install 'vmware-cloud-migrate[lab]'` adds: the AWS server (moto[server] runs on
# flask) and the certificates of the lab's own CA
LAB_MODULES = ("moto", "flask", "flask_cors", "cryptography")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules (None) has no spec
        return False


def missing_lab_modules() -> list[str]:
    """The lab's modules this environment cannot import (found without importing them)."""
    return [name for name in LAB_MODULES if not _importable(name)]


def require_lab_extra() -> None:
    """Raise a one-line LabError (exit 1) naming the extra when any lab dependency is missing."""
    missing = missing_lab_modules()
    if missing:
        raise LabError(f"{LAB_EXTRA_HINT} (missing: {', '.join(missing)})")
