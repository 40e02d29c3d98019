"""Graph files: exact JSON round trip, GraphML for other tools, foreign GraphML, unreadable files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
import pytest

from migrate.core.errors import InputError
from migrate.core.models.inventory import Cluster, Disk, DrsRule, Guest, Inventory, Provenance, Vm
from planners import build_graph, graph_summary, must_move_groups, parse_flows, read_graph, write_graph


def _provenance(source: str) -> Provenance:
    return Provenance(source=source, kind="vcenter", collected_at=datetime(2024, 1, 1, tzinfo=UTC))


MICRODEPGRAPH = Path(__file__).resolve().parents[3] / "shared" / "data" / "microdepgraph"


@pytest.fixture(scope="module")
def graph() -> nx.Graph:
    disk = Disk(key=1, capacity_bytes=3 * 2**30, datastore="ds", path="s.vmdk", sharing="sharingMultiWriter")
    vms = [Vm(id="id-a", name="a", tags={"app": ["shop"]}, guest=Guest(ip_addresses=["10.0.0.1"]), disks=[disk],
              cpus=2, memory_mb=2048, power_state="poweredOn"),
           Vm(id="id-b", name="b", tags={"app": ["shop"]}, guest=Guest(ip_addresses=["10.0.0.2"]), disks=[disk]),
           Vm(id="id-c", name="c", guest=Guest(ip_addresses=["10.0.0.3"]))]
    inventory = Inventory(provenance=_provenance("t"),
                          vms=vms, clusters=[Cluster(id="c", name="c", rules=[
                              DrsRule(name="ha; two", kind="anti-affinity", vms=["id-a", "id-c"])])])
    flows = parse_flows("src,dst,dst_port,protocol,bytes\n10.0.0.1,10.0.0.2,443,tcp,3000000000\n"
                        "10.0.0.3,10.0.0.2,53,udp,7\n192.0.2.1,10.0.0.3,22,tcp,1\n")
    return build_graph(inventory, flows)


def _same(left: nx.Graph, right: nx.Graph) -> None:
    assert left.graph == right.graph
    assert dict(left.nodes(data=True)) == dict(right.nodes(data=True))
    assert {frozenset((a, b)): d for a, b, d in left.edges(data=True)} == \
           {frozenset((a, b)): d for a, b, d in right.edges(data=True)}


def test_json_round_trip_is_exact(graph: nx.Graph, tmp_path: Path) -> None:
    """A graph written as JSON reads back identical: nodes, edges, lists, graph attributes."""
    path = tmp_path / "graph.json"
    assert write_graph(graph, path) == "json"
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert document["graph"] == nx.node_link_data(graph, edges="links")
    _same(read_graph(path), graph)


def test_graphml_opens_in_other_tools_and_reads_back(graph: nx.Graph, tmp_path: Path) -> None:
    """GraphML holds only scalars (lists joined with ';'); read_graph restores lists and keep_apart."""
    path = tmp_path / "graph.graphml"
    assert write_graph(graph, path) == "graphml"
    plain = nx.read_graphml(path)
    for _, _, data in plain.edges(data=True):
        assert all(isinstance(v, str | int | float | bool) for v in data.values())
    assert plain.edges["id-a", "id-b"]["kinds"] == "app;flow;shared-disk"
    back = read_graph(path)
    assert dict(back.nodes(data=True)) == dict(graph.nodes(data=True))
    for a, b, data in graph.edges(data=True):
        assert back.edges[a, b]["kinds"] == data["kinds"]
        assert back.edges[a, b]["weight"] == pytest.approx(data["weight"])
        assert back.edges[a, b]["hard"] == data["hard"] and back.edges[a, b]["bytes"] == data["bytes"]
    assert back.graph["keep_apart"] == graph.graph["keep_apart"]
    assert back.graph["unknown_endpoints"] == graph.graph["unknown_endpoints"]
    assert graph_summary(back)["largest_group"] == graph_summary(graph)["largest_group"]


def test_reads_every_microdepgraph_system() -> None:
    """All GraphML files of the microservice dataset read as undirected VM graphs with default weights."""
    files = sorted(MICRODEPGRAPH.glob("*.graphml"))
    if not files:
        pytest.skip(f"dataset not present at {MICRODEPGRAPH}")
    assert len(files) == 20
    for file in files:
        raw = nx.read_graphml(file)
        graph = read_graph(file)
        assert not graph.is_directed()
        assert set(graph) == set(raw), file.name
        assert graph.number_of_edges() == nx.Graph(raw).number_of_edges() - nx.number_of_selfloops(raw)
        for node, data in graph.nodes(data=True):
            assert data == {"name": node, "app": None, "gb": 0.0, "vcpu": 0, "memory_mb": 0, "powered_on": True}
        for _, _, data in graph.edges(data=True):
            assert data["kinds"] == ["declared"] and not data["hard"]
            assert data["weight"] in (1.0, 2.0)    # 2 where both directions depend on each other
        assert graph_summary(graph)["nodes"] == len(raw)
        assert must_move_groups(graph) == []


def test_foreign_graphml_attributes_and_merging(tmp_path: Path) -> None:
    """Optional sizes and weights are read; a->b plus b->a merge into one edge summing weights; self-loops drop."""
    path = tmp_path / "g.graphml"
    source = nx.MultiDiGraph()
    source.add_node("x", label="svc-x", gb=12.5, vcpu=4)
    source.add_node("y")
    source.add_edge("x", "y", weight=3.0, label="calls")
    source.add_edge("y", "x")
    source.add_edge("x", "x")
    nx.write_graphml(source, path)
    graph = read_graph(path)
    assert graph.nodes["x"] == {"name": "svc-x", "app": None, "gb": 12.5, "vcpu": 4, "memory_mb": 0, "powered_on": True}
    assert graph.edges["x", "y"]["weight"] == 4.0 and graph.edges["x", "y"]["reasons"] == ["calls"]
    assert graph.number_of_edges() == 1


@pytest.mark.parametrize(("name", "content", "field"), [
    ("absent.json", None, ""),
    ("bad.json", b"{not json", "line 1, column 2"),
    ("old.json", b'{"version": 7, "graph": {}}', "version"),
    ("list.json", b"[1, 2]", ""),
    ("links.json", b'{"version": 1, "graph": {"nodes": [{"id": "a"}], "links": [{"source": "a", "target": "z",'
                   b' "weight": -1}]}}', "graph.links[0].target"),
    ("bad.graphml", b"<graphml><graph><node", ""),
    ("notgraph.graphml", b"<html><body>hi</body></html>", ""),
    ("weights.graphml", b'<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="w" for="edge" '
                        b'attr.name="weight" attr.type="string"/><graph edgedefault="directed"><node id="a"/>'
                        b'<node id="b"/><edge source="a" target="b"><data key="w">heavy</data></edge></graph>'
                        b"</graphml>", "edge a - b.weight"),
    ("graph.txt", b"a b\n", ""),
])
def test_unreadable_graph_files_are_bad_input(tmp_path: Path, name: str, content: bytes | None, field: str) -> None:
    """Missing, malformed, unversioned or unknown-format graph files raise InputError naming the file."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        read_graph(path)
    assert exc.value.problems[0].file == str(path)
    assert exc.value.problems[0].field == field


def test_write_rejects_unknown_suffix(graph: nx.Graph, tmp_path: Path) -> None:
    """Writing to a name that is neither .json nor .graphml is bad input and writes nothing."""
    with pytest.raises(InputError, match=r"\.json or \.graphml"):
        write_graph(graph, tmp_path / "graph.csv")
    assert list(tmp_path.iterdir()) == []
