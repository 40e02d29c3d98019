"""`migrate graph` through click's runner: summary output, --json, exit 2 with every problem listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.lab.estate import make_estate
from migrate.cli.graph_cmd import graph
from migrate.inventory import save_inventory
from migrate.lab.flows import EXTERNAL_ENDPOINT, flows_csv
from planners import DEFAULT_APP_WEIGHT, read_graph
from tests.unit.test_graph_lab import lab_inventory


@pytest.fixture
def lab_files(tmp_path: Path) -> dict[str, Path]:
    estate = make_estate(40, 1)
    files = {"inventory": tmp_path / "inventory.json", "flows": tmp_path / "flows.csv",
             "links": tmp_path / "links.yaml"}
    save_inventory(lab_inventory(estate), files["inventory"])
    files["flows"].write_text(flows_csv(estate))
    files["links"].write_text("version: 1\nlinks:\n  - {a: shop-app-01, b: billing-app-01, weight: 50}\n"
                              "keep_apart:\n  - {a: crm-web-01, b: crm-web-02, reason: HA}\n")
    return files


def test_human_summary_and_graph_file(lab_files: dict[str, Path], tmp_path: Path) -> None:
    """The command writes the graph and prints a short summary naming the unknown endpoint."""
    out = tmp_path / "out" / "graph.json"
    result = CliRunner().invoke(graph, ["--inventory", str(lab_files["inventory"]), "--flows", str(lab_files["flows"]),
                                        "--links", str(lab_files["links"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "graph: 40 VMs" in result.output and str(out) in result.output
    assert "must move together: 2 groups" in result.output
    assert "keep-apart pairs: 2" in result.output
    assert "unknown endpoints: 1 (1 rows" in result.output and EXTERNAL_ENDPOINT in result.output
    assert read_graph(out).number_of_nodes() == 40


def test_json_output_and_graphml(lab_files: dict[str, Path], tmp_path: Path) -> None:
    """--json prints the summary as data; .graphml writes GraphML; --app-weight reaches the builder."""
    out = tmp_path / "graph.graphml"
    result = CliRunner().invoke(graph, ["--inventory", str(lab_files["inventory"]), "--out", str(out),
                                        "--app-weight", "7.5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["format"] == "graphml" and data["nodes"] == 40
    assert set(data["edges_by_kind"]) == {"affinity", "app", "vapp"}
    assert data["unknown_endpoints"]["count"] == 0
    assert read_graph(out).graph["app_weight"] == 7.5


def test_bad_inputs_exit_2_listing_every_problem(lab_files: dict[str, Path], tmp_path: Path) -> None:
    """Bad flows rows, a bad links file and a wrong --out suffix are all reported in one exit 2."""
    lab_files["flows"].write_text("src,dst,bytes\na,b,many\n,b,1\n")
    lab_files["links"].write_text("version: 1\nlinks:\n  - {a: shop-app-01, b: x, colour: red}\n")
    result = CliRunner().invoke(graph, ["--inventory", str(lab_files["inventory"]), "--flows", str(lab_files["flows"]),
                                        "--links", str(lab_files["links"]), "--out", str(tmp_path / "g.csv"), "--json"])
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    assert {p["field"] for p in problems} == {"--out", "row 2, column bytes", "row 3, column src", "links[0].colour"}
    assert not (tmp_path / "g.csv").exists()


def test_unknown_vm_in_links_and_missing_inventory(lab_files: dict[str, Path], tmp_path: Path) -> None:
    """A link naming no VM is exit 2 naming links[0].b; a missing inventory is exit 2, not a traceback."""
    lab_files["links"].write_text("version: 1\nlinks:\n  - {a: shop-app-01, b: nobody}\n")
    result = CliRunner().invoke(graph, ["--inventory", str(lab_files["inventory"]), "--links", str(lab_files["links"]),
                                        "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 2
    assert f"{lab_files['links']}: links[0].b:" in result.output
    result = CliRunner().invoke(graph, ["--inventory", str(tmp_path / "none.json"), "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_default_app_weight_matches_the_library() -> None:
    """The CLI's default --app-weight (kept local for a fast --help) is the library's default."""
    option = next(p for p in graph.params if p.name == "app_weight")
    assert option.default == DEFAULT_APP_WEIGHT
