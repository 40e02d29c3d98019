"""The lab's seeded estate as plain data: a deterministic function of (number of VMs, seed)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from migrate.core.errors import InputError

__all__ = [
    "CLOUD",
    "MIN_SEEDED_VMS",
    "ONPREM",
    "DiskSpec",
    "Estate",
    "RuleSpec",
    "Topology",
    "VmSpec",
    "make_estate",
    "split_estate",
]

MIN_SEEDED_VMS = 10
BLOCK = 512 * 1024


@dataclass(frozen=True)
class Topology:
    """Names and shapes of one simulated vCenter's infrastructure."""

    datacenter: str
    clusters: dict[str, list[str]]          # cluster -> host names
    datastores: dict[str, str]              # datastore -> cluster it is mounted on
    switch: str
    portgroups: dict[str, int]              # port group -> VLAN id
    host_cores: int
    host_memory_mb: int
    vm_folder: str | None = None
    resource_pool: str | None = None        # child pool of the first cluster


ONPREM = Topology(
    datacenter="dc-east",
    clusters={
        "cl-prod": [f"esx-prod-{i:02d}.corp.local" for i in range(1, 5)],
        "cl-dev": [f"esx-dev-{i:02d}.corp.local" for i in range(1, 3)],
    },
    datastores={"ds-prod-01": "cl-prod", "ds-prod-02": "cl-prod", "ds-dev-01": "cl-dev"},
    switch="dvs-east",
    portgroups={"pg-infra": 100, "pg-web": 110, "pg-app": 120, "pg-db": 130},
    host_cores=32,
    host_memory_mb=512 * 1024,
)

# The cloud SDDC: i4i.metal hosts (2 x 32 cores, 1 TiB), one vSAN-like workload datastore,
# NSX-style segments, and the usual SDDC folder and resource pool.
CLOUD = Topology(
    datacenter="SDDC-Datacenter",
    clusters={"Cluster-1": [f"i4i-metal-{i:02d}.sddc.internal" for i in range(1, 4)]},
    datastores={"WorkloadDatastore": "Cluster-1"},
    switch="sddc-cgw",
    portgroups={"seg-infra": 100, "seg-web": 110, "seg-app": 120, "seg-db": 130, "seg-test": 250},
    host_cores=64,
    host_memory_mb=1024 * 1024,
    vm_folder="Workloads",
    resource_pool="Compute-ResourcePool",
)

NETWORK_MAP = {"pg-infra": "seg-infra", "pg-web": "seg-web", "pg-app": "seg-app", "pg-db": "seg-db"}
# test migrations (`migrate test`) put every NIC on the SDDC's isolated test segment
TEST_NETWORK_MAP = dict.fromkeys(NETWORK_MAP, "seg-test")
DATASTORE_MAP = dict.fromkeys(ONPREM.datastores, "WorkloadDatastore")


@dataclass(frozen=True)
class DiskSpec:
    size_gb: int          # capacity the VM reports
    datastore: str
    seeded_bytes: int     # real bytes written at the start of the disk file (the rest is thin)


@dataclass(frozen=True)
class VmSpec:
    name: str
    app: str
    tier: str
    env: str
    cluster: str
    host: str
    cpus: int
    memory_mb: int
    disks: tuple[DiskSpec, ...]
    portgroup: str
    ip: str
    hostname: str
    guest_id: str
    firmware: str
    powered_on: bool
    owner: str
    vapp: str | None = None
    rules: tuple[str, ...] | None = None   # a readiness VM (lab up --readiness): the rules seeded on it


@dataclass(frozen=True)
class RuleSpec:
    name: str
    cluster: str
    vms: tuple[str, ...]
    keep_together: bool   # True: VM-VM affinity; False: anti-affinity


@dataclass(frozen=True)
class Estate:
    seed: int
    vms: tuple[VmSpec, ...]
    rules: tuple[RuleSpec, ...]
    vapps: dict[str, str] = field(default_factory=dict)   # vApp -> cluster
    custom_attribute: str = "owner"

    def by_name(self, name: str) -> VmSpec:
        return next(vm for vm in self.vms if vm.name == name)


# Applications: (name, env, owner, wanted VMs per tier). Order matters: the first ones are the core
# every seeded lab has, whatever its size.
_CATALOG: list[tuple[str, str, str, dict[str, int]]] = [
    ("infra", "prod", "platform-team", {"dns": 2, "ldap": 1, "monitor": 1}),
    ("reporting", "prod", "finance", {"web": 1, "db": 1}),
    ("shop", "prod", "ecommerce", {"web": 3, "app": 3, "db": 2}),
    ("crm", "prod", "sales", {"web": 2, "app": 2, "db": 1}),
    ("ci", "dev", "engineering", {"app": 2, "db": 1}),
    ("billing", "prod", "finance", {"web": 1, "app": 2, "db": 2}),
    ("hr", "prod", "people", {"web": 1, "app": 1, "db": 1}),
    ("wiki", "dev", "engineering", {"web": 1, "db": 1}),
    ("analytics", "prod", "data", {"app": 2, "db": 2}),
    ("mail", "prod", "platform-team", {"app": 2}),
]
# The minimum per app that makes every seeded feature exist (vApp, both DRS rules, a powered-off VM).
_CORE = {"infra": {"dns": 1}, "reporting": {"web": 1, "db": 1}, "shop": {"web": 1, "app": 1, "db": 2},
         "crm": {"app": 1, "db": 1}, "ci": {"app": 1}}
_TIER_NET = {"web": "pg-web", "app": "pg-app", "db": "pg-db", "dns": "pg-infra", "ldap": "pg-infra",
             "monitor": "pg-infra"}
_SUBNET = {"pg-infra": 100, "pg-web": 110, "pg-app": 120, "pg-db": 130}
_GUESTS = [("rhel8_64Guest", "efi"), ("ubuntu64Guest", "efi"), ("centos7_64Guest", "bios"),
           ("windows2019srv_64Guest", "efi"), ("sles15_64Guest", "efi")]


def _tier_shape(rng: random.Random, tier: str) -> tuple[int, int, list[int]]:
    """cpus, memory MiB, disk sizes in GB for one VM of `tier`."""
    if tier == "db":
        return rng.choice([4, 8, 16]), rng.choice([16, 32, 64]) * 1024, [rng.choice([60, 80]),
                                                                         rng.choice([200, 500, 1000])]
    if tier == "app":
        return rng.choice([2, 4, 8]), rng.choice([4, 8, 16]) * 1024, [rng.choice([40, 60, 100])]
    if tier == "web":
        return rng.choice([1, 2, 4]), rng.choice([2, 4, 8]) * 1024, [rng.choice([40, 60])]
    return rng.choice([1, 2]), rng.choice([2, 4]) * 1024, [rng.choice([20, 40])]


def _wanted_names(count: int) -> list[tuple[str, str, str, str]]:
    """(app, env, owner, tier) of each VM, in creation order: the core first, then round-robin growth."""
    order: list[tuple[str, str, str, str]] = []
    made: dict[tuple[str, str], int] = {}
    catalog = {app: (env, owner, tiers) for app, env, owner, tiers in _CATALOG}
    for app, tiers in _CORE.items():
        env, owner, _ = catalog[app]
        for tier, n in tiers.items():
            order.extend((app, env, owner, tier) for _ in range(n))
            made[(app, tier)] = n
    generation = 0
    while len(order) < count:
        grew = False
        for app, env, owner, tiers in _CATALOG:
            name = app if generation == 0 else f"{app}{generation + 1}"
            for tier, wanted in tiers.items():
                if len(order) >= count:
                    break
                if made.get((name, tier), 0) < wanted:
                    made[(name, tier)] = made.get((name, tier), 0) + 1
                    order.append((name, env, owner, tier))
                    grew = True
        if not grew:
            generation += 1
    return order[:count]


def make_estate(count: int = 40, seed: int = 1) -> Estate:
    """A realistic estate of `count` VMs: apps in web/app/db tiers, shared services, rules, a vApp."""
    if count < MIN_SEEDED_VMS:
        raise InputError.single("--vms", "vms", f"a seeded lab needs at least {MIN_SEEDED_VMS} VMs "
                                f"(got {count}); use --bare for other sizes")
    rng = random.Random(seed)  # noqa: S311 - lab data, not security
    counters: dict[tuple[str, str], int] = {}
    host_turn: dict[str, int] = {}
    ips: dict[str, int] = {}
    vms: list[VmSpec] = []
    for app, env, owner, tier in _wanted_names(count):
        counters[(app, tier)] = counters.get((app, tier), 0) + 1
        name = f"{app}-{tier}-{counters[(app, tier)]:02d}"
        cluster = "cl-prod" if env == "prod" else "cl-dev"
        hosts = ONPREM.clusters[cluster]
        host = hosts[host_turn.get(cluster, 0) % len(hosts)]
        host_turn[cluster] = host_turn.get(cluster, 0) + 1
        cpus, memory_mb, sizes = _tier_shape(rng, tier)
        stores = ["ds-prod-01", "ds-prod-02"] if env == "prod" else ["ds-dev-01", "ds-dev-01"]
        disks = tuple(
            DiskSpec(size_gb=size, datastore=stores[i], seeded_bytes=rng.randint(4, 8) * BLOCK)
            for i, size in enumerate(sizes)
        )
        portgroup = _TIER_NET[tier]
        index = ips.get(portgroup, 0)
        ips[portgroup] = index + 1
        guest_id, firmware = rng.choice(_GUESTS)
        vms.append(VmSpec(
            name=name, app=app, tier=tier, env=env, cluster=cluster, host=host, cpus=cpus,
            memory_mb=memory_mb, disks=disks, portgroup=portgroup,
            ip=f"10.{10 + index // 240}.{_SUBNET[portgroup]}.{11 + index % 240}", hostname=f"{name}.corp.local",
            guest_id=guest_id, firmware=firmware,
            powered_on=not (name == "ci-app-01" or (env == "dev" and rng.random() < 0.3)),
            owner=owner, vapp="vapp-reporting" if app == "reporting" else None,
        ))
    rules = (
        RuleSpec("affinity-crm-app-db", "cl-prod", ("crm-app-01", "crm-db-01"), keep_together=True),
        RuleSpec("anti-affinity-shop-db", "cl-prod", ("shop-db-01", "shop-db-02"), keep_together=False),
    )
    return Estate(seed=seed, vms=tuple(vms), rules=rules, vapps={"vapp-reporting": "cl-prod"})


def split_estate(estate: Estate, parts: int) -> list[Estate]:
    """The estate over `parts` on-prem vCenters: whole applications dealt out in turn (in the order they first
    appear), each DRS rule and vApp going with its VMs."""
    apps = list(dict.fromkeys(vm.app for vm in estate.vms))
    part_of = {app: index % parts for index, app in enumerate(apps)}
    split = []
    for index in range(parts):
        vms = tuple(vm for vm in estate.vms if part_of[vm.app] == index)
        names = {vm.name for vm in vms}
        split.append(Estate(seed=estate.seed, vms=vms, rules=tuple(r for r in estate.rules if set(r.vms) <= names),
                            vapps={v: c for v, c in estate.vapps.items() if any(vm.vapp == v for vm in vms)},
                            custom_attribute=estate.custom_attribute))
    return split


def disk_bytes(seed: int, vm: str, unit: int, size: int) -> list[bytes]:
    """The seeded content of one disk, block by block: pseudo-random with some all-zero 512 KiB blocks."""
    rng = random.Random(f"{seed}:{vm}:{unit}")  # noqa: S311 - lab data, not security
    blocks = []
    for index in range(size // BLOCK):
        zero = index == 1 or rng.random() < 0.2   # every disk has at least one zero block
        blocks.append(bytes(BLOCK) if zero else rng.randbytes(BLOCK))
    return blocks
