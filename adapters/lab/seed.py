"""Seed the lab simulators: the cloud SDDC topology always, the on-prem estate (over each source) unless bare."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.lab.estate import CLOUD, ONPREM, Estate, split_estate
from adapters.lab.estate_seed import seed_estate
from adapters.lab.topology import build_topology
from adapters.vcenter.connection import connect
from adapters.vcenter.settings import vcenter_settings
from migrate.core.config import SiteConfig
from migrate.core.log import get_logger

__all__ = ["seed_lab"]

log = get_logger(__name__)


def seed_lab(config: SiteConfig, estate: Estate | None, *, datastore_roots: dict[str, Path],
             passwords: dict[str, str], advance: Callable[[int], None] = lambda _n: None) -> dict[str, Any]:
    """Build the topologies and the estate (calling `advance(1)` per step of its 2 per VM); return a manifest
    of what was seeded (no secrets). With several sources (named as their vCenters in `passwords` and
    `datastore_roots`), each gets whole applications of the estate (split_estate)."""
    with connect(vcenter_settings(config.target, "target"), passwords["cloud"]) as cloud:
        build_topology(cloud, CLOUD, datastore_roots["cloud"])
    log.info("cloud SDDC ready", datacenter=CLOUD.datacenter, hosts=sum(map(len, CLOUD.clusters.values())))
    if estate is None:
        return {}
    sources = config.source_sections
    parts = split_estate(estate, len(sources))
    seeded = []
    for (name, section), part in zip(sources.items(), parts, strict=True):
        with connect(vcenter_settings(section, f"sources.{name}"), passwords[name]) as onprem:
            built = build_topology(onprem, ONPREM, datastore_roots[name])
            seeded += [(name, item) for item in seed_estate(onprem, part, built, ONPREM.datacenter, advance)]
        log.info("on-prem estate seeded", vms=len(part.vms), source=name)
    several = len(sources) > 1
    return {
        "seed": estate.seed,
        "vms": [
            {
                "name": item.spec.name, "instance_uuid": item.instance_uuid, "moref": item.ref._moId,
                **({"source": name} if several else {}),
                "app": item.spec.app, "tier": item.spec.tier, "env": item.spec.env,
                "cluster": item.spec.cluster, "host": item.spec.host, "cpus": item.spec.cpus,
                "memory_mb": item.spec.memory_mb, "ip": item.spec.ip, "hostname": item.spec.hostname,
                "portgroup": item.spec.portgroup, "powered_on": item.spec.powered_on, "owner": item.spec.owner,
                "vapp": item.spec.vapp, "guest_id": item.spec.guest_id, "firmware": item.spec.firmware,
                **({"readiness_rules": list(item.spec.rules)} if item.spec.rules is not None else {}),
                "disks": [
                    {"datastore": ds, "path": path, "size_gb": disk.size_gb, "seeded_bytes": disk.seeded_bytes,
                     "sha256": sha}
                    for (ds, path), disk, sha in zip(item.disk_files, item.spec.disks, item.disk_sha256, strict=True)
                ],
            }
            for name, item in seeded
        ],
        "rules": [{"name": r.name, "cluster": r.cluster, "vms": list(r.vms), "keep_together": r.keep_together}
                  for part in parts for r in part.rules],
        "vapps": estate.vapps,
    }
