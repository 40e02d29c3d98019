"""VMware-to-cloud migration: discovery, dependency graph, wave planning, crash-safe execution."""

from migrate.config import SiteConfig, load_site_config
from migrate.errors import AdapterError, InputError, MigrateError, OperationalError, Problem

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "InputError",
    "MigrateError",
    "OperationalError",
    "Problem",
    "SiteConfig",
    "__version__",
    "load_site_config",
]
