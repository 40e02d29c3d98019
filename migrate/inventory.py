"""Reading and writing inventory.json (versioned, validated, written atomically)."""

from __future__ import annotations

from pathlib import Path

from migrate.core.fileio import atomic_write, load_json_mapping, validation_problems
from migrate.core.models.inventory import Inventory

__all__ = ["load_inventory", "save_inventory"]


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate an inventory; InputError names every bad field (e.g. vms[3].disks[0].capacity_bytes)."""
    path = Path(path)
    data = load_json_mapping(path, "a `vms` list")
    return validation_problems(Inventory, data, str(path))


def save_inventory(inventory: Inventory, path: str | Path) -> None:
    """Write the inventory atomically (temp file + rename): never half-written."""
    atomic_write(Path(path), inventory.model_dump_json(indent=1, exclude_none=True) + "\n")
