"""Replication bookkeeping of replicating methods (warm): cycle schedule, cutover triggers, journaled cycles
and cutover requests, `migrate cutover`'s bad input, and the warm method's declaration."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from migrate.core.errors import InputError
from migrate.engine.journal import Journal
from migrate.engine.methods import Stage, get_method
from migrate.engine.plan import RunPlan, VmFacts, WavePlan, WaveWindow
from migrate.engine.replication import CYCLE_CEILING, CYCLE_FLOOR, cutover_reason, next_cycle_after
from migrate.engine.warm import CHUNK, GAP, _chunks, snapshot_name
from migrate.run import replication_status, request_cutover, request_test, run_status, with_precopy_interval
from tests.helpers import run_cli

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BOOKS = {"warm": {"version": 1, "name": "warm", "method": "warm", "phases": ["precheck"]},
         "noop": {"version": 1, "name": "noop", "method": "noop", "phases": ["precheck"]}}


def _plan() -> RunPlan:
    return RunPlan(waves=[WavePlan(id=1, vms=["a", "b"], method="warm"), WavePlan(id=2, vms=["c"], method="noop")],
                   vms=[VmFacts(id="a", name="app-a"), VmFacts(id="b", name="app-b"), VmFacts(id="c", name="db-c")])


def test_fixed_and_adaptive_intervals() -> None:
    assert next_cycle_after(90.0, 5000.0) == 90.0
    assert next_cycle_after("adaptive", 60.0) == CYCLE_FLOOR                 # short cycles: one an hour
    assert next_cycle_after("adaptive", 4 * 3600.0) == 2 * 3600.0           # half the last cycle
    assert next_cycle_after("adaptive", 48 * 3600.0) == CYCLE_CEILING       # at most twelve hours


def test_cutover_is_due_at_cutover_at_the_window_or_on_request() -> None:
    wave = WavePlan(id=3, vms=["a", "b"], method="warm", cutover_at={"a": NOW + timedelta(minutes=5)})
    assert cutover_reason(wave, "a", NOW, set()) is None
    assert "cutover_at" in str(cutover_reason(wave, "a", NOW + timedelta(minutes=5), set()))
    assert cutover_reason(wave, "b", NOW + timedelta(days=1), set()) is None   # no schedule: only on request
    assert "--vm" in str(cutover_reason(wave, "b", NOW, {("vm", "b")}))
    assert "wave 3" in str(cutover_reason(wave, "b", NOW, {("wave", "3")}))
    assert cutover_reason(wave, "b", NOW, {("wave", "4"), ("vm", "a")}) is None
    windowed = wave.model_copy(update={"window": WaveWindow(start=NOW, end=NOW + timedelta(hours=2))})
    assert "window" in str(cutover_reason(windowed, "b", NOW, set()))
    assert cutover_reason(windowed, "b", NOW - timedelta(seconds=1), set()) is None
    assert cutover_reason(windowed, "b", NOW + timedelta(hours=2), set()) is None    # missed: only on request


def test_extents_are_cut_into_chunks_and_clipped_to_the_file() -> None:
    c = CHUNK
    ranges = _chunks(iter([(0, 2 * c + 10), (5 * c, c), (9 * c, 4 * c)]), 10 * c)
    assert ranges == [(0, c), (c, c), (2 * c, 10), (5 * c, c), (9 * c, c)]
    close = _chunks(iter([(0, 100), (100 + GAP, 50), (10 * GAP, 10), (11 * GAP + 11, 5)]), 10 * c)
    assert close == [(0, 150 + GAP), (10 * GAP, 10), (11 * GAP + 11, 5)]   # only a gap <= GAP is bridged
    assert snapshot_name("run-1", 4) == "migrate-warm run-1 cycle 4"


def test_journal_keeps_cycles_and_requests_and_checks_them(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with Journal(path) as jr:
        jr.create_run(_plan(), BOOKS, run_id="r1")
        jr.record_cycle("r1", "a", 0, {"disks": {"2000": "52 aa/1"}, "bytes": 4096, "seconds": 0.5})
        jr.record_cycle("r1", "a", 1, {"disks": {"2000": "52 aa/2"}, "bytes": 512, "seconds": 0.1})
        jr.request("r1", "cutover", "wave", "1")
    with Journal(path, create=False, read_only=True) as jr:
        cycles = jr.cycles("r1", "a")
        assert [c.cycle for c in cycles] == [0, 1] and cycles[1].data["disks"] == {"2000": "52 aa/2"}
        assert jr.requests("r1", "cutover") == {("wave", "1")}
        assert jr.pragma("user_version") == 3
    figures = replication_status(cycles, None, True)
    assert figures["cycles"] == 2 and figures["bytes_per_cycle"] == [4096, 512]
    assert figures["projected_downtime_s"] == 0.1 and figures["cutover_requested"]
    with sqlite3.connect(path) as conn:   # damage: a cycle row whose data is not an object
        conn.execute("UPDATE cycles SET data='[1]' WHERE cycle=1")
    with pytest.raises(InputError, match="cycles"):
        Journal(path, create=False, read_only=True)


def test_request_cutover_validates_before_recording(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with Journal(path) as jr:
        jr.create_run(_plan(), BOOKS, run_id="r1")
    with pytest.raises(InputError) as caught:
        request_cutover(path, waves=[2, 7], vms=["db-c", "nope", "app-a"])
    text = str(caught.value)
    assert "wave 2 is noop" in text and "no wave 7" in text and "db-c is not replicating" in text
    assert "'nope' is not a VM" in text
    with Journal(path, create=False, read_only=True) as jr:
        assert jr.requests("r1", "cutover") == set()          # nothing recorded
    assert request_cutover(path, vms=["app-a"], waves=[1]) == {"run_id": "r1", "waves": [1], "vms": ["a"]}
    with Journal(path, create=False, read_only=True) as jr:
        assert jr.requests("r1", "cutover") == {("wave", "1"), ("vm", "a")}
    cli = run_cli("cutover", "--journal", path)
    assert cli.code == 2 and "at least one" in cli.stderr, cli


def test_warm_declares_a_replicate_stage_and_the_interval_override() -> None:
    warm = get_method("warm")
    assert warm.replicates and not get_method("cold").replicates
    assert [p.name for p in warm.phases if p.stage is Stage.REPLICATE] == ["enable_change_tracking", "replicate"]
    changed = with_precopy_interval(_plan(), "adaptive")
    assert [w.precopy_interval for w in changed.waves] == ["adaptive", 3600.0]
    bad = run_cli("run", "plan.yaml", "--config", "site.yaml", "--precopy-interval", "0.5")
    assert bad.code == 2 and "outside 1 to 43200" in bad.stderr, bad


def test_status_reads_a_journal_of_the_previous_schema(tmp_path: Path) -> None:
    """A schema-2 journal (no cycles or requests tables), opened read-only, is not upgraded and reads empty."""
    path = tmp_path / "old.db"
    with Journal(path) as jr:
        jr.create_run(_plan(), BOOKS, run_id="r1")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE cycles")
        conn.execute("DROP TABLE requests")
        conn.execute("PRAGMA user_version=2")
    with Journal(path, create=False, read_only=True) as jr:
        assert jr.cycles("r1") == [] and jr.requests("r1", "cutover") == set()
    data = run_status(path)
    assert [vm.get("replication", {}).get("cycles") for vm in data["vms"]] == [0, 0, None]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_request_test_needs_test_networks_and_a_replicating_vm(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    plan = RunPlan(waves=[WavePlan(id=1, vms=["a", "b"], method="warm"), WavePlan(id=2, vms=["c"], method="noop")],
                   vms=[VmFacts(id="a", name="app-a", facts={"nics": [{"network": "pg-app", "test_network": "seg-t"}]}),
                        VmFacts(id="b", name="app-b", facts={"nics": [{"network": "pg-db", "test_network": None}]}),
                        VmFacts(id="c", name="db-c")])
    with Journal(path) as jr:
        jr.create_run(plan, BOOKS, run_id="r1")
    with pytest.raises(InputError) as caught:
        request_test(path, waves=[1])
    assert "mappings.test_networks.pg-db" in str(caught.value) and "app-b" in str(caught.value)
    with pytest.raises(InputError, match="wave 2 is noop"):
        request_test(path, waves=[2])
    asked = request_test(path, vms=["app-a"])
    assert asked["vms"] == ["a"] and asked["kind"] == "test" and not asked["running"]
    assert request_test(path, waves=[1], cleanup=True)["vms"] == ["a", "b"]   # cleanup needs no test network
    with Journal(path, create=False, read_only=True) as jr:
        assert [(kind, scope, entity) for _, kind, scope, entity in jr.request_rows("r1", ("test", "test_cleanup"))] \
            == [("test", "vm", "a"), ("test_cleanup", "wave", "1")]
    cli = run_cli("test", "--journal", path, "--vm", "db-c")
    assert cli.code == 2 and "not replicating" in cli.stderr, cli


def test_a_warm_replatform_test_names_the_replatformer_test_networks_field(tmp_path: Path) -> None:
    """A re-platformed VM's test instance needs `replatformer.test_networks` for each port group (exit 2 naming
    that field and the VM, nothing recorded)."""
    path = tmp_path / "run.db"
    plan = RunPlan(waves=[WavePlan(id=1, vms=["a"], method="warm_replatform")],
                   vms=[VmFacts(id="a", name="app-a", facts={"nics": [{"network": "pg-app", "test_network": None}]})])
    with Journal(path) as jr:
        jr.create_run(plan, BOOKS, run_id="r1")
    cli = run_cli("test", "--journal", path, "--vm", "app-a")
    assert cli.code == 2 and "replatformer.test_networks.pg-app" in cli.stderr and "app-a" in cli.stderr, cli
    with Journal(path, create=False, read_only=True) as jr:
        assert jr.request_rows("r1", ("test",)) == []
