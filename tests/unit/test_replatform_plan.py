"""Replatform facts in the run plan: right-sized or overridden instance type, NIC placements, every problem."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

import migrate.execution_plan
from adapters.aws import driver as aws_driver
from adapters.aws.driver import AWS as AWS_DRIVER
from adapters.aws.driver import AwsCatalog
from adapters.aws.settings import AwsNetworkMapping, AwsSettings
from adapters.vcenter.settings import VCenterEndpoint
from migrate.core.config import SiteConfig
from migrate.core.drivers import Driver, Role
from migrate.core.errors import InputError
from migrate.core.models.inventory import Disk, Guest, Inventory, Nic, Provenance, Utilisation, Vm
from migrate.core.ports import NetworkPlacement, ReplatformCatalog
from migrate.engine.playbook import load_playbook
from migrate.engine.replatform_facts import ReplatformPlanner
from migrate.execution_plan import build_run_plan
from planners.instance_types import InstanceType
from planners.plan_model import Plan, Wave
from planners.rightsizing import rightsize_vm

SOURCE = VCenterEndpoint(name="cloud", url="https://vc.example/sdk", username="u", password_env="P")
AWS = AwsSettings(region="us-east-1", networks={
    "pg-app": AwsNetworkMapping(subnet_id="subnet-0a", security_group_ids=["sg-01"], keep_private_ip=True),
    "pg-web": AwsNetworkMapping(subnet_id="subnet-0b"),
})
SITE = SiteConfig(source=SOURCE, replatformer=AWS)


def _type(name: str, vcpus: int, memory_gib: int, **extra: Any) -> InstanceType:
    return InstanceType(name=name, vcpus=vcpus, memory_mib=memory_gib * 1024, architectures=["x86_64"],
                        boot_modes=["legacy-bios", "uefi"], current_generation=True, **extra)


TYPES = [_type("m7i.large", 2, 8), _type("c7i.large", 2, 4), _type("r7i.large", 2, 16), _type("m7i.xlarge", 4, 16),
         _type("m7i.2xlarge", 8, 32), _type("m7i.metal-24xl", 96, 384, bare_metal=True)]


class _Catalog:
    """The aws catalog of SITE with its instance types from `fetch` instead of EC2."""

    def __init__(self, fetch: Callable[[list[str] | None], list[InstanceType]]) -> None:
        self.fetch = fetch
        self.region = "us-east-1"

    def instance_types(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return [t.model_dump() for t in self.fetch(None if names is None else list(names))]

    def network_of(self, portgroup: str) -> NetworkPlacement | None:
        return AwsCatalog(AWS).network_of(portgroup)

    def test_network_of(self, portgroup: str) -> NetworkPlacement | None:
        return AwsCatalog(AWS).test_network_of(portgroup)


def _vm(name: str, *, cpus: int = 2, memory_mb: int = 8192, nets: tuple[str, ...] = ("pg-app",),
        ips: tuple[str, ...] = ("10.0.1.5",), util: float | None = None) -> Vm:
    return Vm(id=f"uuid-{name}", name=name, cpus=cpus, memory_mb=memory_mb, firmware="efi", host="esx-1",
              disks=[Disk(key=2000, capacity_bytes=40 * 2**30, datastore="ds1", path=f"{name}/{name}.vmdk"),
                     Disk(key=2001, capacity_bytes=10 * 2**30, datastore="ds1", path=f"{name}/{name}_1.vmdk")],
              nics=[Nic(key=4000 + i, network=net, mac=f"00:50:56:00:00:0{i}") for i, net in enumerate(nets)],
              guest=Guest(guest_id="rhel8_64Guest", ip_addresses=list(ips)),
              utilisation=Utilisation(window_seconds=3600, samples=10, cpu_usage_percent=util,
                                      memory_usage_percent=util) if util is not None else None)


def _inv(vms: list[Vm]) -> Inventory:
    return Inventory(vms=vms, provenance=Provenance(source="unit", kind="vcenter", collected_at=datetime.now(UTC)))


def _plan(vms: list[Vm], method: str = "replatform") -> Plan:
    return Plan(waves=[Wave(id=1, name="w1", vms=[vm.id for vm in vms], method=method)])


def test_facts_carry_rightsized_type_and_placements() -> None:
    """The instance type is what rightsize_vm picks; each NIC lands in its mapped subnet, IP kept if asked."""
    vms = [_vm("db-01", util=30.0), _vm("web-01", cpus=8, memory_mb=32768, nets=("pg-web",), ips=("10.0.2.9",))]
    plan = build_run_plan(_plan(vms), _inv(vms), SITE, instance_types=TYPES)
    by_id = plan.vm_index
    for vm in vms:
        rp = by_id[vm.id].facts["replatform"]
        assert rp["instance_type"] == rightsize_vm(vm, TYPES).instance_type
        assert rp["instance_type_basis"] == "rightsizing"
        assert (rp["architecture"], rp["boot_mode"]) == ("x86_64", "uefi")
    assert by_id["uuid-db-01"].facts["replatform"]["nics"] == [
        {"portgroup": "pg-app", "subnet_id": "subnet-0a", "security_group_ids": ["sg-01"], "private_ip": "10.0.1.5"}]
    assert by_id["uuid-web-01"].facts["replatform"]["nics"][0]["private_ip"] is None
    assert by_id["uuid-web-01"].facts["replatform"]["instance_type"] == "m7i.2xlarge"
    assert [d["key"] for d in by_id["uuid-db-01"].facts["disks"]] == [2000, 2001]
    assert plan.waves[0].method == "replatform" and by_id["uuid-db-01"].target_cluster is None


def test_vcenter_mappings_are_not_needed_for_replatform() -> None:
    """A replatform wave needs no target vCenter nor mappings.networks/datastores (the VM leaves VMware)."""
    vms = [_vm("db-01")]
    build_run_plan(_plan(vms), _inv(vms), SITE, instance_types=TYPES)
    with pytest.raises(InputError) as caught:
        build_run_plan(_plan(vms, "cold"), _inv(vms), SITE, instance_types=TYPES)
    assert "target" in {p.field for p in caught.value.problems}


def test_every_problem_is_listed() -> None:
    """Unmapped port groups (once each), an unknown IP to keep, a VM no type fits, no NIC: all at once."""
    vms = [_vm("a-01", nets=("pg-db",)), _vm("a-02", nets=("pg-db", "pg-infra")),
           _vm("a-03", nets=("pg-app", "pg-app"), ips=("10.0.1.5",)), _vm("big-01", cpus=200, memory_mb=2**21),
           _vm("lonely-01", nets=())]
    with pytest.raises(InputError) as caught:
        build_run_plan(_plan(vms), _inv(vms), SITE, instance_types=TYPES)
    problems = {(p.file, p.field): p.message for p in caught.value.problems}
    assert "a-01, a-02" in problems[("site.yaml", "replatformer.networks.pg-db")]
    assert ("site.yaml", "replatformer.networks.pg-infra") in problems
    assert "unknown" in problems[("site.yaml", "replatformer.networks.pg-app.keep_private_ip")]
    assert "no EC2 instance type fits VM big-01" in problems[("plan.yaml", "waves[0].instance_types.big-01")]
    assert ("inventory", "lonely-01.nics") in problems
    assert len(caught.value.problems) == 5


def test_no_aws_section_is_one_problem() -> None:
    """Without site.yaml `replatformer` a replatform wave is refused once, naming the section."""
    vms = [_vm("a-01"), _vm("a-02")]
    with pytest.raises(InputError) as caught:
        build_run_plan(_plan(vms), _inv(vms), SiteConfig(source=SOURCE), instance_types=TYPES)
    assert [(p.field, "replatformer" in p.message) for p in caught.value.problems] == [("replatformer", True)]


def test_override_wins_and_unknown_override_is_a_problem() -> None:
    """waves[].instance_types (VM id or name) overrides right-sizing; a type EC2 lacks is named."""
    asked: list[list[str] | None] = []

    def fetch(names: list[str] | None) -> list[InstanceType]:
        asked.append(names)
        if names is None:
            return TYPES
        if names == ["m5.large"]:                         # exists, but not current generation
            return [_type("m5.large", 2, 8)]
        raise InputError.single("EC2", "instance types", f"not all of {names} exist")

    planner = ReplatformPlanner(SITE, plan_file="plan.yaml", site_file="site.yaml", catalog=_Catalog(fetch))
    wave = cast(Wave, SimpleNamespace(id=1, instance_types={"uuid-a-01": "m5.large", "a-02": "m9z.huge"}))
    facts = [planner.facts(_vm(n), 0, wave) for n in ("a-01", "a-02", "a-03")]
    assert [f.facts["replatform"]["instance_type"] for f in facts] == ["m5.large", "m9z.huge", "m7i.large"]
    assert [f.facts["replatform"]["instance_type_basis"] for f in facts] == ["override", "override", "rightsizing"]
    problems = planner.finish()
    assert [(p.field, "m9z.huge" in p.message) for p in problems] == [("waves[0].instance_types.a-02", True)]
    assert problems[0].message.startswith("EC2 (us-east-1) has no instance type")
    assert asked == [None, ["m5.large"], ["m9z.huge"]]


def test_the_catalog_comes_from_the_replatformer_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without given types the aws driver's catalog is asked (DescribeInstanceTypes), once per plan."""
    asked: list[list[str] | None] = []

    def describe(settings: AwsSettings, names: list[str] | None = None) -> list[dict[str, Any]]:
        asked.append(names)
        return [t.model_dump() for t in TYPES]

    monkeypatch.setattr(aws_driver, "fetch_instance_types", describe)
    vms = [_vm("db-01"), _vm("web-01", nets=("pg-web",))]
    plan = build_run_plan(_plan(vms), _inv(vms), SITE)
    assert [plan.vm_index[vm.id].facts["replatform"]["instance_type"] for vm in vms] == ["m7i.large", "m7i.large"]
    assert asked == [None]
    assert isinstance(AwsCatalog(AWS), ReplatformCatalog)
    assert AwsCatalog(AWS).network_of("pg-app") == NetworkPlacement("subnet-0a", ("sg-01",), keep_private_ip=True)
    assert AwsCatalog(AWS).network_of("pg-nowhere") is None


def test_a_replatformer_driver_without_a_catalog_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party replatformer that offers no catalog cannot have its waves planned: site.yaml names it."""
    def without_catalog(name: str, role: Role, **_: Any) -> Driver:
        return replace(AWS_DRIVER, name="bare", catalog=None)

    monkeypatch.setattr(migrate.execution_plan, "get_driver", without_catalog)
    vms = [_vm("db-01")]
    with pytest.raises(InputError) as caught:
        build_run_plan(_plan(vms), _inv(vms), SITE, instance_types=TYPES)
    assert [(p.field, "'bare' offers no catalog" in p.message) for p in caught.value.problems] == [
        ("replatformer.driver", True)]


def test_shipped_playbook_matches_the_catalog() -> None:
    """migrate/playbooks/replatform.yaml lists every replatform phase in order."""
    from migrate.engine.methods import get_method

    method = get_method("replatform")
    book = load_playbook("replatform")
    assert book.method == "replatform" and book.phases == [p.name for p in method.phases]
    assert {p.name for p in method.phases if p.changes_nothing} == {"precheck", "wait_ready", "verify"}


def test_warm_replatform_facts_carry_test_placements_and_replatform_facts_do_not() -> None:
    """A warm_replatform VM's NICs name their `test_networks` subnet (no kept IP: the source still runs), an
    unmapped one None (`migrate test` refuses it); plain replatform facts stay as they were."""
    site = SiteConfig(source=SOURCE, replatformer=AWS.model_copy(update={"test_networks": {
        "pg-app": AwsNetworkMapping(subnet_id="subnet-0c", security_group_ids=["sg-t"])}}))
    vms = [_vm("db-01", nets=("pg-app", "pg-web"), ips=("10.0.1.5", "10.0.2.5"))]
    warm = build_run_plan(_plan(vms, "warm_replatform"), _inv(vms), site, instance_types=TYPES).vm_index["uuid-db-01"]
    assert warm.facts["replatform"]["test_nics"] == [
        {"portgroup": "pg-app", "subnet_id": "subnet-0c", "security_group_ids": ["sg-t"], "private_ip": None}]
    assert [n["test_network"] for n in warm.facts["nics"]] == ["subnet-0c", None]
    cold = build_run_plan(_plan(vms), _inv(vms), site, instance_types=TYPES).vm_index["uuid-db-01"]
    assert "test_nics" not in cold.facts["replatform"] and all("test_network" not in n for n in cold.facts["nics"])


def test_shipped_warm_replatform_playbook_matches_the_method() -> None:
    from migrate.engine.methods import get_method

    method = get_method("warm_replatform")
    book = load_playbook("warm_replatform")
    assert book.method == "warm_replatform" and book.phases == [p.name for p in method.phases]
    assert method.replicates and not method.grows_cluster
