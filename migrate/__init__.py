"""VMware-to-cloud migration: discovery, dependency graph, wave planning, crash-safe execution.

The library API below is resolved on first use, so importing any part of the package (the core, a
driver) does not import the whole application with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from migrate.core.version import VERSION

if TYPE_CHECKING:
    from migrate.config import load_site_config
    from migrate.core.config import SiteConfig
    from migrate.core.errors import AdapterError, InputError, MigrateError, OperationalError, Problem
    from migrate.core.models.inventory import Inventory
    from migrate.discovery import discover
    from migrate.inventory import load_inventory, save_inventory

__version__ = VERSION

_API = {
    "AdapterError": "migrate.core.errors", "InputError": "migrate.core.errors", "MigrateError": "migrate.core.errors",
    "OperationalError": "migrate.core.errors", "Problem": "migrate.core.errors",
    "Inventory": "migrate.core.models.inventory", "SiteConfig": "migrate.core.config",
    "discover": "migrate.discovery", "load_inventory": "migrate.inventory", "save_inventory": "migrate.inventory",
    "load_site_config": "migrate.config",
}

__all__ = [
    "AdapterError",
    "InputError",
    "Inventory",
    "MigrateError",
    "OperationalError",
    "Problem",
    "SiteConfig",
    "__version__",
    "discover",
    "load_inventory",
    "load_site_config",
    "save_inventory",
]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'migrate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
