"""VMware-to-cloud migration: discovery, dependency graph, wave planning, crash-safe execution."""

from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.core.errors import AdapterError, InputError, MigrateError, OperationalError, Problem
from migrate.core.models.inventory import Inventory
from migrate.discovery import discover
from migrate.inventory import load_inventory, save_inventory

__version__ = "0.1.0"

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
