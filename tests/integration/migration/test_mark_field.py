"""The migrated mark's custom field, looked up (or added) by many VM steps at once."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from adapters.vcenter.client import VCenterClient
from adapters.vcenter.vm_ops import VmOps
from migrate.core.config import SiteConfig


def test_concurrent_first_lookups_add_the_field_once(site: SiteConfig) -> None:
    """Eight steps asking at the same moment for a field nobody has added yet all get the same key (one
    adds it; the others find it, or get DuplicateName and find it then), and vCenter holds one definition."""
    name = f"migrate.test-{uuid.uuid4().hex[:8]}"
    clients = [VCenterClient(site.source) for _ in range(8)]       # one session each: truly parallel calls
    start = threading.Barrier(len(clients))

    def lookup(client: VCenterClient) -> int:
        ops = VmOps(client, site.source.datacenter)
        start.wait()
        return ops.field_key(name)

    try:
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            keys = list(pool.map(lookup, clients))
        manager = clients[0].call("fields", lambda si: si.content.customFieldsManager)
        defined = [f for f in clients[0].call("fields", lambda si: manager.field) if f.name == name]
        assert len(set(keys)) == 1 and [f.key for f in defined] == keys[:1], (keys, defined)
        clients[0].call("remove field", lambda si: manager.RemoveCustomFieldDef(key=keys[0]))
    finally:
        for client in clients:
            client.close()
