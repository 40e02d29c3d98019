"""The seeded estate and its flows: deterministic, complete at every size, internally consistent."""

from __future__ import annotations

import csv
import io

import pytest

from adapters.lab.estate import BLOCK, MIN_SEEDED_VMS, ONPREM, disk_bytes, make_estate
from migrate.core.errors import InputError
from migrate.lab.flows import EXTERNAL_ENDPOINT, FLOW_COLUMNS, flows_csv


@pytest.mark.parametrize("count", [MIN_SEEDED_VMS, 13, 40, 250])
def test_every_seeded_feature_exists_at_any_size(count: int) -> None:
    """Whatever --vms is, the estate has the vApp, both DRS rules, a two-disk VM and a powered-off VM."""
    estate = make_estate(count, seed=3)
    names = [vm.name for vm in estate.vms]
    assert len(names) == count == len(set(names))
    assert any(len(vm.disks) >= 2 for vm in estate.vms)
    assert any(not vm.powered_on for vm in estate.vms)
    assert any(vm.vapp for vm in estate.vms)
    for rule in estate.rules:
        assert set(rule.vms) <= set(names)
    assert {r.keep_together for r in estate.rules} == {True, False}
    assert len({vm.portgroup for vm in estate.vms}) >= 2
    assert len({vm.ip for vm in estate.vms}) == count
    for vm in estate.vms:
        assert vm.host in ONPREM.clusters[vm.cluster]
        assert all(ONPREM.datastores[d.datastore] == vm.cluster for d in vm.disks)


def test_estate_is_deterministic_per_seed() -> None:
    """Same seed, same estate; another seed, another estate."""
    assert make_estate(40, 5) == make_estate(40, 5)
    assert make_estate(40, 5) != make_estate(40, 6)


def test_too_few_vms_is_bad_input() -> None:
    """Below the minimum the error says how to get a smaller lab."""
    with pytest.raises(InputError, match="--bare"):
        make_estate(MIN_SEEDED_VMS - 1)


def test_disk_bytes_have_zero_blocks_and_data() -> None:
    """Seeded disks mix pseudo-random blocks with at least one all-zero 512 KiB block."""
    blocks = disk_bytes(1, "shop-db-01", 0, 6 * BLOCK)
    assert len(blocks) == 6 and all(len(b) == BLOCK for b in blocks)
    zero = bytes(BLOCK)
    assert any(b == zero for b in blocks)
    assert any(b != zero for b in blocks)
    assert blocks == disk_bytes(1, "shop-db-01", 0, 6 * BLOCK)
    assert blocks != disk_bytes(1, "shop-db-01", 1, 6 * BLOCK)


def test_flows_reference_seeded_vms_and_are_heavier_inside_apps() -> None:
    """Every flow endpoint is a VM (by IP or name) except one known outside address; intra-app traffic dominates."""
    estate = make_estate(40, 1)
    rows = list(csv.DictReader(io.StringIO(flows_csv(estate))))
    assert tuple(rows[0].keys()) == FLOW_COLUMNS
    by_key = {vm.ip: vm for vm in estate.vms} | {vm.name: vm for vm in estate.vms}
    unknown = {r["dst"] for r in rows if r["dst"] not in by_key} | {r["src"] for r in rows if r["src"] not in by_key}
    assert unknown == {EXTERNAL_ENDPOINT}
    inside = cross = 0
    for row in rows:
        src, dst = by_key.get(row["src"]), by_key.get(row["dst"])
        if src is None or dst is None:
            continue
        if src.app == dst.app:
            inside += int(row["bytes"])
        else:
            cross += int(row["bytes"])
    assert inside > 20 * cross > 0
    assert any(r["src"] in {vm.name for vm in estate.vms} for r in rows)   # name-keyed rows exist too
