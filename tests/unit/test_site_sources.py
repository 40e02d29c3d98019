"""Several sources: site.yaml `sources:`, one inventory of several vCenters, and each VM routed to its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from migrate.config import load_site_config
from migrate.core.config import SiteConfig
from migrate.core.errors import InputError, OperationalError
from migrate.core.models.inventory import Cluster, DrsRule, Host, Inventory, Provenance, Vm
from migrate.core.ports import Adapters
from migrate.engine.context import vm_adapters
from migrate.engine.plan import VmFacts
from migrate.inventory_merge import merge_sources, source_part


def section(name: str, port: int) -> dict[str, object]:
    return {"name": name, "url": f"https://vc.corp.local:{port}/sdk", "username": "svc",
            "password_env": "PW"}


def load(tmp_path: Path, document: dict[str, object]) -> SiteConfig:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **document}))
    return load_site_config(path, env={"PW": "x"})


def problems(tmp_path: Path, document: dict[str, object]) -> dict[str, str]:
    with pytest.raises(InputError) as caught:
        load(tmp_path, document)
    return {p.field: p.message for p in caught.value.problems}


def test_sources_load_each_by_its_driver_and_the_first_is_the_source(tmp_path: Path) -> None:
    site = load(tmp_path, {"sources": [section("east", 443), section("west", 8443)]})
    assert list(site.source_sections) == ["east", "west"]
    assert site.source.source_name() == "east"
    # a VM's `source` is the vCenter's host[:port] (discovery), its host name (RVTools) or the section's name
    assert site.source_of("vc.corp.local:8443") == "west"
    assert site.source_of("west") == "west"
    assert site.source_of("vc.corp.local") == "east"
    assert site.source_of("elsewhere:443") is None
    single = load(tmp_path, {"source": section("east", 443)})
    assert list(single.source_sections) == ["east"] and single.sources == []


def test_bad_sources_name_the_field(tmp_path: Path) -> None:
    both = problems(tmp_path, {"source": section("a", 1), "sources": [section("b", 2)]})
    assert "either source or sources" in both["sources"]
    assert "non-empty list" in problems(tmp_path, {"sources": []})["sources"]
    assert "non-empty list" in problems(tmp_path, {"sources": "vc.corp.local"})["sources"]
    twice = problems(tmp_path, {"sources": [section("a", 1), section("a", 2)]})
    assert "names an earlier source" in twice["sources[1].name"]
    bad = problems(tmp_path, {"sources": [section("a", 1), {"name": "b"}]})
    assert set(bad) == {"sources[1].url", "sources[1].username"}
    assert "at most" in problems(tmp_path, {"sources": [section(f"s{i}", i) for i in range(65)]})["sources"]


def _inventory(source: str, uuid: str, vm_ids: list[str], collected: int) -> Inventory:
    vms = [Vm(id=vm_id, name=f"{source}-{vm_id}", cpus=1, memory_mb=1024, moref=f"vm-{n}")
           for n, vm_id in enumerate(vm_ids)]
    return Inventory(provenance=Provenance(source=source, kind="vcenter", instance_uuid=uuid,
                                           collected_at=datetime(2026, 12, collected, tzinfo=UTC)),
                     vms=vms, hosts=[Host(id="host-1", name=f"esx.{source}")],
                     clusters=[Cluster(id="domain-c1", name="Cluster-1",
                                       rules=[DrsRule(name="apart", kind="anti-affinity", vms=vm_ids)])])


def test_merge_keeps_each_vcenter_apart_and_source_part_gives_it_back() -> None:
    east = _inventory("east:443", "uuid-east", ["a", "shared"], 2)
    west = _inventory("west:443", "uuid-west", ["shared", "b"], 1)
    merged = merge_sources([east, west])
    ids = {vm.name: vm.id for vm in merged.vms}
    assert ids == {"east:443-a": "a", "east:443-shared": "uuid-east:shared", "west:443-shared": "uuid-west:shared",
                   "west:443-b": "b"}
    shared = [vm for vm in merged.vms if vm.instance_uuid == "shared"]
    assert {vm.source for vm in shared} == {"east:443", "west:443"}
    assert {vm.source_instance_uuid for vm in merged.vms} == {"uuid-east", "uuid-west"}
    assert sorted(h.id for h in merged.hosts) == ["uuid-east:host-1", "uuid-west:host-1"]
    assert sorted(r.vms[0] for c in merged.clusters for r in c.rules) == ["a", "uuid-west:shared"]
    assert merged.provenance.collected_at == west.provenance.collected_at    # the older of the two
    assert [p.source for p in merged.sources] == ["east:443", "west:443"]
    again = Inventory.model_validate_json(merged.model_dump_json())
    part = source_part(again, "west:443")
    assert part is not None
    assert part.provenance == west.provenance
    assert sorted(map(Vm.model_dump_json, part.vms)) == sorted(map(Vm.model_dump_json, west.vms))
    assert [h.model_dump() for h in part.hosts] == [h.model_dump() for h in west.hosts]
    assert source_part(again, "north:443") is None
    assert source_part(east, "east:443") is east and source_part(east, "west:443") is None


def test_a_vm_runs_through_the_source_its_facts_name() -> None:
    east, west = object(), object()
    adapters = Adapters(source=east, sources={"east": east, "west": west})   # type: ignore[arg-type,dict-item]
    assert vm_adapters(adapters, VmFacts(id="v", facts={"source": "west"})).source is west
    assert vm_adapters(adapters, VmFacts(id="v")).source is east
    with pytest.raises(OperationalError, match=r"'north'.*east, west"):
        vm_adapters(adapters, VmFacts(id="v", facts={"source": "north"}))


def test_each_source_may_have_its_own_data_queue_on_temporal(tmp_path: Path) -> None:
    from migrate.temporal.messages import EngineSettings, PhaseSpec
    from migrate.temporal.workflow_steps import queue_of

    engine = {"data_task_queue": "copy", "data_task_queues": {"west": "copy-west"}}
    site = load(tmp_path, {"sources": [section("east", 443), section("west", 8443)], "engine": engine})
    assert site.engine is not None and site.engine.data_queues == ["copy", "copy-west"]
    settings = EngineSettings(task_queue="migrate", data_queue="copy", data_queues={"west": "copy-west"})
    copy = PhaseSpec(name="copy_disks", stage="cutover", moves_data=True)
    control = PhaseSpec(name="verify", stage="cutover", moves_data=False)
    assert queue_of(settings, copy, {"facts": {"source": "west"}}) == "copy-west"
    assert queue_of(settings, copy, {"facts": {"source": "east"}}) == "copy"
    assert queue_of(settings, copy, {"facts": {}}) == "copy"
    assert queue_of(settings, control, {"facts": {"source": "west"}}) == "migrate"
    unknown = problems(tmp_path, {"sources": [section("east", 443)], "engine": {"data_task_queues": {"north": "q"}}})
    assert any("north names no source" in message for message in unknown.values())


def test_limits_keep_two_sources_hosts_and_datastores_apart() -> None:
    from migrate.engine.limits import Limits

    east = VmFacts(id="a", source_host="esx-01", datastores=["datastore1"], facts={"source": "east"})
    west = VmFacts(id="b", source_host="esx-01", datastores=["datastore1"], facts={"source": "west"})
    single = VmFacts(id="c", source_host="esx-01", datastores=["datastore1"])
    limits = Limits()
    assert limits.keys(east) == ("global", "host:east/esx-01", "datastore:east/datastore1")
    assert not set(limits.keys(east)[1:]) & set(limits.keys(west)[1:])
    assert limits.keys(single) == ("global", "host:esx-01", "datastore:datastore1")
