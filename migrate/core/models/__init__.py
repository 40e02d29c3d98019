"""Plain, serialisable value types shared by every layer (no SDK objects cross a boundary)."""

from migrate.core.models.inventory import (
    INVENTORY_VERSION,
    Cluster,
    Datastore,
    Disk,
    DrsRule,
    Guest,
    Host,
    Inventory,
    Network,
    Nic,
    Provenance,
    Utilisation,
    VApp,
    Vm,
)

__all__ = [
    "INVENTORY_VERSION",
    "Cluster",
    "Datastore",
    "Disk",
    "DrsRule",
    "Guest",
    "Host",
    "Inventory",
    "Network",
    "Nic",
    "Provenance",
    "Utilisation",
    "VApp",
    "Vm",
]
