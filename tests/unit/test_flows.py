"""flows.csv: strict parsing with every bad row listed, endpoint resolution, aggregation into VM pairs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate.core.errors import InputError
from migrate.core.models.inventory import Guest, Inventory, Provenance, Vm
from planners.flows import (
    BARE_ROW_WEIGHT,
    CONNECTION_WEIGHT,
    EndpointIndex,
    FlowRow,
    load_flows,
    parse_flows,
    resolve_flows,
    row_weight,
)


def _provenance(source: str) -> Provenance:
    return Provenance(source=source, kind="vcenter", collected_at=datetime(2024, 1, 1, tzinfo=UTC))



def _vm(name: str, *ips: str, hostname: str | None = None, vm_id: str | None = None) -> Vm:
    return Vm(id=vm_id or f"uuid-{name}", name=name, guest=Guest(ip_addresses=list(ips), hostname=hostname))


def _inventory(*vms: Vm) -> Inventory:
    return Inventory(provenance=_provenance("test"),
                     vms=list(vms))


def _problems(exc: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.field: p.message for p in exc.value.problems}


def test_parse_valid_rows_with_optional_columns() -> None:
    """All six columns parse; optional cells may be empty; blank lines are skipped."""
    table = parse_flows("src,dst,dst_port,protocol,bytes,connections\n"
                        "10.0.0.1,web-01,443,tcp,1048576,4\n\n"
                        "a,b,,,,\n", "f.csv")
    assert table.file == "f.csv"
    assert table.rows == (FlowRow("10.0.0.1", "web-01", 443, "tcp", 1048576, 4, row=2),
                          FlowRow("a", "b", None, None, None, None, row=4))


def test_only_src_dst_required_and_extra_columns_ignored() -> None:
    """A file with just src,dst (in any order, any case) plus unknown columns is valid."""
    table = parse_flows("DST, Src ,first_seen\nb,a,2024-01-01\n")
    assert [(r.src, r.dst) for r in table.rows] == [("a", "b")]


def test_every_bad_row_is_listed_at_once(tmp_path: Path) -> None:
    """Missing src/dst, non-numeric and negative numbers, wrong column count: one InputError, every row named."""
    path = tmp_path / "flows.csv"
    path.write_text("src,dst,dst_port,protocol,bytes,connections\n"
                    "a,b,80,tcp,100,1\n"          # row 2: fine
                    ",b,80,tcp,100,1\n"           # row 3: missing src
                    "a,,80,tcp,lots,1\n"          # row 4: missing dst and non-numeric bytes
                    "a,b,80,tcp,-5,1\n"           # row 5: negative bytes
                    "a,b,80,tcp\n"                # row 6: wrong column count
                    "a,b,99999,tcp,1,-1\n"        # row 7: bad port, negative connections
                    "a,b,80,tcp,1,2.5\n")         # row 8: fractional connections
    with pytest.raises(InputError) as exc:
        load_flows(path)
    assert {p.file for p in exc.value.problems} == {str(path)}
    problems = _problems(exc)
    assert set(problems) == {"row 3, column src", "row 4, column dst", "row 4, column bytes",
                             "row 5, column bytes", "row 6", "row 7, column dst_port",
                             "row 7, column connections", "row 8, column connections"}
    assert "not a number" in problems["row 4, column bytes"]
    assert "negative" in problems["row 5, column bytes"]
    assert "expected 6 columns, found 4" in problems["row 6"]


def test_missing_header_columns() -> None:
    """A header without src or dst is bad input naming each missing column."""
    with pytest.raises(InputError) as exc:
        parse_flows("source,destination,bytes\na,b,1\n", "f.csv")
    assert set(_problems(exc)) == {"row 1, column src", "row 1, column dst"}


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    """An empty file and an absent file are bad input, not crashes."""
    with pytest.raises(InputError, match="header"):
        parse_flows("\n\n")
    with pytest.raises(InputError, match="no such file"):
        load_flows(tmp_path / "absent.csv")


def test_row_numbers_count_lines_of_multiline_records() -> None:
    """A quoted field spanning two lines shifts later row numbers as an editor shows them."""
    with pytest.raises(InputError) as exc:
        parse_flows('src,dst,protocol,bytes\na,b,"tcp\nudp",1\na,b,tcp,x\n')
    assert set(_problems(exc)) == {"row 4, column bytes"}


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """A UTF-8 BOM (spreadsheet exports) does not hide the src column."""
    path = tmp_path / "flows.csv"
    path.write_bytes("src,dst\na,b\n".encode("utf-8-sig"))
    assert len(load_flows(path).rows) == 1


def test_row_weight_units() -> None:
    """Bytes weigh in MiB; without bytes, connections at 256 KiB each; with neither, one bare row."""
    assert row_weight(FlowRow("a", "b", bytes=3 * 2**20, connections=999)) == 3.0
    assert row_weight(FlowRow("a", "b", connections=8)) == 8 * CONNECTION_WEIGHT == 2.0
    assert row_weight(FlowRow("a", "b")) == BARE_ROW_WEIGHT


def test_resolution_order_id_then_name_then_ip_then_hostname() -> None:
    """An endpoint is a VM id first, then a name, then a guest IP, then a guest host name."""
    web = _vm("web", "10.0.0.1", hostname="web.corp.local")
    tricky = _vm("uuid-web", "10.0.0.2")          # its name is the other VM's id
    index = EndpointIndex(_inventory(web, tricky))
    assert index.resolve("uuid-web").vm == "uuid-web"        # the id wins over the name
    assert index.resolve("web").vm == "uuid-web" and index.resolve("web").by == "name"
    assert index.resolve("10.0.0.2").vm == "uuid-uuid-web"
    assert index.resolve("WEB.corp.local").vm == "uuid-web"
    assert index.resolve("10.9.9.9").vm is None and not index.resolve("10.9.9.9").candidates


def test_unknown_and_ambiguous_endpoints_are_reported_not_dropped() -> None:
    """Unknown endpoints and IPs two VMs share are collected with row and byte counts; the rest still counts."""
    inventory = _inventory(_vm("a", "10.0.0.1", "172.17.0.1"), _vm("b", "10.0.0.2", "172.17.0.1"))
    table = parse_flows("src,dst,bytes\n10.0.0.1,10.0.0.2,100\n10.0.0.1,203.0.113.9,5\n"
                        "203.0.113.9,b,7\n172.17.0.1,a,1\n")
    result = resolve_flows(table.rows, EndpointIndex(inventory))
    assert [r.to_dict() for r in result.unknown] == [{"endpoint": "203.0.113.9", "rows": 2, "bytes": 12}]
    assert [r.to_dict() for r in result.ambiguous] == [{"endpoint": "172.17.0.1", "rows": 1, "bytes": 1,
                                                        "by": "ip", "candidates": ["uuid-a", "uuid-b"]}]
    assert list(result.edges) == [("uuid-a", "uuid-b")]
    assert result.stats == {"rows": 4, "used": 1, "self": 0, "unresolved": 3}


def test_both_directions_aggregate_and_self_flows_are_ignored() -> None:
    """Rows a->b and b->a (by IP, name or id) sum into one edge; a VM talking to itself adds nothing."""
    inventory = _inventory(_vm("a", "10.0.0.1"), _vm("b", "10.0.0.2"))
    table = parse_flows("src,dst,dst_port,protocol,bytes,connections\n"
                        f"10.0.0.1,b,443,tcp,{2**20},2\nuuid-b,a,5432,tcp,{2**21},3\n"
                        "b,10.0.0.2,22,tcp,999,1\n10.0.0.2,a,,,,4\n")
    result = resolve_flows(table.rows, EndpointIndex(inventory))
    edge = result.edges[("uuid-a", "uuid-b")]
    assert (edge.bytes, edge.connections, edge.rows) == (3 * 2**20, 9, 3)
    assert edge.weight == 3.0 + 4 * CONNECTION_WEIGHT
    assert edge.services == {"tcp/443", "tcp/5432"}
    assert "3.0 MiB" in edge.reason() and "tcp/443" in edge.reason()
    assert result.stats["self"] == 1
