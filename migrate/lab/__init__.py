"""The built-in lab: two vCenter simulators (on-prem and cloud SDDC) and a moto server on loopback."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_LAB_DIR"]

# here, not in the manager, so that `migrate lab --help` shows it without importing the lab
DEFAULT_LAB_DIR = Path("migrate-lab")
