"""Reading and writing inventory.json (versioned, validated, written atomically)."""

from __future__ import annotations

import json
from pathlib import Path

from migrate.errors import InputError
from migrate.fileio import atomic_write, read_input_text, validation_problems
from migrate.models.inventory import Inventory

__all__ = ["load_inventory", "save_inventory"]


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate an inventory; InputError names every bad field (e.g. vms[3].disks[0].capacity_bytes)."""
    path = Path(path)
    file = str(path)
    text = read_input_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.single(file, f"line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError.single(file, "", "top level must be a JSON object with a `vms` list")
    return validation_problems(Inventory, data, file)


def save_inventory(inventory: Inventory, path: str | Path) -> None:
    """Write the inventory atomically (temp file + rename): never half-written."""
    atomic_write(Path(path), inventory.model_dump_json(indent=1, exclude_none=True) + "\n")
