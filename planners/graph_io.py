"""Writing and reading dependency graphs: versioned JSON (exact) and GraphML (for yEd, Gephi and friends).

- `.json`: {"version": 1, "graph": <networkx node_link_data, edges under "links">}; reads back exactly.
- `.graphml`: lists become ";"-joined strings and dict or empty attributes are dropped, so the file
  opens in yEd or Gephi (an edge's `kinds`, e.g. "app;hint-folder", say why it exists); graph-level
  lists and dicts (keep_apart, unknown endpoints, hints, ...) are kept as JSON text. Reading it back
  is best-effort: kinds and reasons become lists again.
- GraphML from other tools (e.g. microservice dependency graphs) reads too: every node is a VM
  (`name` from a name or label attribute, else the node id; gb, vcpu, memory_mb optional, default 0),
  every edge a soft "declared" dependency of weight 1 unless it has a numeric `weight`; directed and
  parallel edges merge into one undirected edge whose weights add up; self-loops are dropped. A
  directed edge a -> b records b in the edge's `providers` (a calls b: b is what a depends on).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import networkx as nx

from migrate.core.errors import InputError, Problem
from migrate.core.fileio import atomic_write
from migrate.core.models.inventory import MAX_MEMORY_MB, MAX_VCPUS, MAX_VM_GB, MAX_VMS

__all__ = ["GRAPH_VERSION", "MAX_EDGE_WEIGHT", "read_graph", "write_graph"]

GRAPH_VERSION = 1
FORMAT_NAME = "migrate-graph"
_JSON_GRAPH_KEYS = ("keep_apart", "unknown_endpoints", "ambiguous_endpoints", "warnings", "flow_stats", "sources",
                    "hints")
_LIST_EDGE_KEYS = ("kinds", "reasons", "providers")
_JSON_NODE_KEYS = ("tags", "attributes")     # dicts, kept in GraphML as JSON text
_LABEL_KEYS = ("label", "edgelabel", "relation", "type")
MAX_EDGE_WEIGHT = 1e15          # MiB of traffic between two VMs (summed flows and links), about an exabyte
MAX_EDGE_COUNT = 2**63          # bytes and connections an edge records
_NODE_LIMITS = {"gb": float(MAX_VM_GB), "vcpu": float(MAX_VCPUS), "memory_mb": float(MAX_MEMORY_MB)}


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".graphml", ".xml"):
        return "graphml"
    raise InputError.single(str(path), "", f"unknown graph format {suffix or '(no suffix)'!r}: "
                            "use a .json or .graphml file name")


def write_graph(graph: nx.Graph, path: str | Path) -> str:
    """Write `graph` atomically, as JSON or GraphML by the file's suffix; returns the format written."""
    path = Path(path)
    fmt = _format_of(path)
    if fmt == "json":
        document = {"version": GRAPH_VERSION, "graph": nx.node_link_data(graph, edges="links")}
        atomic_write(path, json.dumps(document, indent=1, allow_nan=False) + "\n")
    else:
        buffer = io.BytesIO()
        nx.write_graphml(_flatten(graph), buffer, encoding="utf-8", prettyprint=True)
        atomic_write(path, buffer.getvalue())
    return fmt


def _flat_value(value: Any) -> Any:
    """A GraphML-friendly scalar, or None to drop the attribute."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return ";".join(str(item).replace(";", ",") for item in items if not isinstance(item, dict))
    return None


def _flatten(graph: nx.Graph) -> nx.Graph:
    flat = nx.Graph()
    for key, value in graph.graph.items():
        if isinstance(value, list | dict):
            flat.graph[key] = json.dumps(value, sort_keys=True)
        elif _flat_value(value) is not None:
            flat.graph[key] = value
    flat.graph.update(format=FORMAT_NAME, format_version=GRAPH_VERSION)
    for node, data in graph.nodes(data=True):
        flat.add_node(node, **{k: v for k, v in ((k, json.dumps(v, sort_keys=True) if k in _JSON_NODE_KEYS
                                                  else _flat_value(v)) for k, v in data.items()) if v is not None})
    for a, b, data in graph.edges(data=True):
        flat.add_edge(a, b, **{k: v for k, v in ((k, _flat_value(v)) for k, v in data.items()) if v is not None})
    return flat


def read_graph(path: str | Path) -> nx.Graph:
    """Read a graph written by write_graph (JSON exactly, GraphML best-effort) or GraphML from other tools."""
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError.single(file, "", "no such file") from None
    except OSError as exc:
        raise InputError.single(file, "", f"cannot read: {exc}") from None
    try:
        fmt = _format_of(path)
    except InputError:
        head = raw.lstrip()[:1]
        if head not in (b"{", b"<"):
            raise
        fmt = "json" if head == b"{" else "graphml"
    return _read_json(raw, file) if fmt == "json" else _read_graphml(raw, file)


# --- JSON ---------------------------------------------------------------------------------------

def _read_json(raw: bytes, file: str) -> nx.Graph:
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError.single(file, "", f"not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError.single(file, f"line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:   # a number of thousands of digits, or nesting too deep
        raise InputError.single(file, "", f"not valid JSON: {type(exc).__name__}") from None
    if not isinstance(document, dict) or "graph" not in document:
        raise InputError.single(file, "", 'not a graph document: expected {"version": 1, "graph": {...}}')
    if document.get("version") != GRAPH_VERSION:
        raise InputError.single(file, "version", f"unsupported graph version {document.get('version')!r} "
                                f"(this tool reads version {GRAPH_VERSION})")
    data = document["graph"]
    problems = _check_node_link(data, file)
    if problems:
        raise InputError(problems)
    graph = nx.node_link_graph(data, directed=False, multigraph=False, edges="links")
    return graph


def _check_node_link(data: Any, file: str) -> list[Problem]:
    if not isinstance(data, dict):
        return [Problem(file, "graph", "must be an object with nodes and links")]
    problems = []
    if data.get("directed") or data.get("multigraph"):
        problems.append(Problem(file, "graph", "must be undirected and not a multigraph"))
    if not isinstance(data.get("graph", {}), dict):
        problems.append(Problem(file, "graph.graph", "must be an object"))
    else:
        problems += _check_meta(data.get("graph", {}), file)
    nodes, links = data.get("nodes"), data.get("links")
    if not isinstance(nodes, list):
        return [*problems, Problem(file, "graph.nodes", "must be a list")]
    if not isinstance(links, list):
        return [*problems, Problem(file, "graph.links", "must be a list")]
    if len(nodes) > MAX_VMS:
        return [*problems, Problem(file, "graph.nodes", f"more than {MAX_VMS} nodes (VMs)")]
    ids = set()
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("id"), str | int) or isinstance(node["id"], bool):
            problems.append(Problem(file, f"graph.nodes[{i}].id", "each node needs an id"))
        else:
            ids.add(node["id"])
            problems.extend(_check_node(node, file, f"graph.nodes[{i}]"))
    for i, link in enumerate(links):
        if not isinstance(link, dict):
            problems.append(Problem(file, f"graph.links[{i}]", "must be an object"))
            continue
        for end in ("source", "target"):
            if not isinstance(link.get(end), str | int) or link.get(end) not in ids:
                problems.append(Problem(file, f"graph.links[{i}].{end}", f"no node {link.get(end)!r}"))
        problems.extend(_check_edge(link, file, f"graph.links[{i}]"))
    return problems


def _check_meta(meta: dict[str, Any], file: str) -> list[Problem]:
    """The graph-level lists the planner reads: keep_apart pairs and warnings."""
    pairs, warnings = meta.get("keep_apart", []), meta.get("warnings", [])
    problems = []
    if not isinstance(pairs, list) or not all(
            isinstance(p, dict) and all(isinstance(p.get(k), str | int) for k in ("a", "b")) for p in pairs):
        problems.append(Problem(file, "graph.graph.keep_apart", "must be a list of {a, b, reason} objects"))
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        problems.append(Problem(file, "graph.graph.warnings", "must be a list of strings"))
    return problems


def _in_range(value: Any, limit: float) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            and 0 <= value <= limit)


def _check_node(node: dict[str, Any], file: str, where: str) -> list[Problem]:
    problems = [Problem(file, f"{where}.{key}", f"must be a number from 0 to {limit:g}")
                for key, limit in _NODE_LIMITS.items() if node.get(key) is not None and not _in_range(node[key], limit)]
    problems += [Problem(file, f"{where}.{key}", "must be a string") for key in ("name", "app")
                 if node.get(key) is not None and not isinstance(node[key], str)]
    if not isinstance(node.get("powered_on", True), bool):
        problems.append(Problem(file, f"{where}.powered_on", "must be true or false"))
    return problems


def _check_edge(edge: dict[str, Any], file: str, where: str) -> list[Problem]:
    problems = []
    weight = edge.get("weight", 0.0)
    if not _in_range(weight, MAX_EDGE_WEIGHT):
        problems.append(Problem(file, f"{where}.weight", f"must be a number from 0 to {MAX_EDGE_WEIGHT:g}, "
                                                        f"not {str(weight)[:40]}"))
    for key in ("bytes", "connections"):
        if edge.get(key) is not None and not _in_range(edge[key], MAX_EDGE_COUNT):
            problems.append(Problem(file, f"{where}.{key}", f"must be a number from 0 to {MAX_EDGE_COUNT}"))
    if not isinstance(edge.get("hard", False), bool):
        problems.append(Problem(file, f"{where}.hard", "must be true or false"))
    for key in _LIST_EDGE_KEYS:
        value = edge.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(Problem(file, f"{where}.{key}", "must be a list of strings"))
    return problems


# --- GraphML ------------------------------------------------------------------------------------

def _read_graphml(raw: bytes, file: str) -> nx.Graph:
    try:
        source = nx.read_graphml(io.BytesIO(raw))
    except (SyntaxError, nx.NetworkXError, KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise InputError.single(file, "", f"not valid GraphML: {exc or type(exc).__name__}") from None
    problems: list[Problem] = []
    graph = nx.Graph()
    for key, value in source.graph.items():
        if key in ("node_default", "edge_default"):
            continue
        if key in _JSON_GRAPH_KEYS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                problems.append(Problem(file, f"graph.{key}", "not valid JSON text"))
                continue
        graph.graph[key] = value
    graph.graph.pop("format_version", None)
    graph.graph.pop("format", None)
    for key in ("keep_apart", "unknown_endpoints", "ambiguous_endpoints", "warnings"):
        graph.graph.setdefault(key, [])
    problems += _check_meta(graph.graph, file)
    for node, data in source.nodes(data=True):
        graph.add_node(node, **_node_attrs(node, data, file, problems))
    for a, b, data in source.edges(data=True):
        if a == b:
            continue
        attrs = _edge_attrs(data, file, f"edge {a} - {b}", problems)
        if source.is_directed() and "providers" not in data:
            attrs["providers"] = [str(b)]           # a -> b: a calls b, so b is what a depends on
        _merge_edge(graph, a, b, attrs)
    if problems:
        raise InputError(problems)
    return graph


def _number(data: dict[str, Any], key: str, default: float, file: str, where: str,
            problems: list[Problem]) -> float:
    value = data.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(Problem(file, f"{where}.{key}", f"not a number: {value!r}"))
        return default
    limit = _NODE_LIMITS.get(key, MAX_EDGE_WEIGHT if key == "weight" else MAX_EDGE_COUNT)
    if not math.isfinite(number) or not 0 <= number <= limit:
        problems.append(Problem(file, f"{where}.{key}", f"must be a number from 0 to {limit:g}, not {str(value)[:40]}"))
        return default
    return number


def _bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return default if value is None else bool(value)


def _node_attrs(node: str, data: dict[str, Any], file: str, problems: list[Problem]) -> dict[str, Any]:
    where = f"node {node}"
    name = data.get("name") or data.get("label") or node
    app = data.get("app")
    return {
        "name": str(name),
        "app": str(app) if app not in (None, "") else None,
        "gb": _number(data, "gb", 0.0, file, where, problems),
        "vcpu": int(_number(data, "vcpu", 0, file, where, problems)),
        "memory_mb": int(_number(data, "memory_mb", 0, file, where, problems)),
        "powered_on": _bool(data.get("powered_on"), True),
        **{key: value for key in _JSON_NODE_KEYS if isinstance(value := _json_dict(data.get(key)), dict)},
    }


def _json_dict(value: Any) -> Any:
    """A dict kept as JSON text (tags, custom attributes), or None."""
    try:
        return json.loads(value) if isinstance(value, str) else None
    except (json.JSONDecodeError, RecursionError):
        return None


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part for part in str(value).split(";") if part] if value not in (None, "") else []


def _edge_attrs(data: dict[str, Any], file: str, where: str, problems: list[Problem]) -> dict[str, Any]:
    reasons = _split(data["reasons"]) if "reasons" in data else [
        str(data[k]) for k in _LABEL_KEYS if data.get(k) not in (None, "")][:1]
    return {
        "kinds": _split(data["kinds"]) if "kinds" in data else ["declared"],
        "weight": _number(data, "weight", 1.0, file, where, problems),
        "hard": _bool(data.get("hard"), False),
        "bytes": int(_number(data, "bytes", 0, file, where, problems)),
        "connections": int(_number(data, "connections", 0, file, where, problems)),
        "reasons": reasons,
        **({"providers": _split(data["providers"])} if "providers" in data else {}),
    }


def _merge_edge(graph: nx.Graph, a: str, b: str, attrs: dict[str, Any]) -> None:
    if not graph.has_edge(a, b):
        graph.add_edge(a, b, **attrs)
        return
    edge = graph.edges[a, b]
    edge["kinds"] = sorted(set(edge["kinds"]) | set(attrs["kinds"]))
    edge["weight"] += attrs["weight"]
    edge["hard"] = edge["hard"] or attrs["hard"]
    edge["bytes"] += attrs["bytes"]
    edge["connections"] += attrs["connections"]
    edge["reasons"] = list(dict.fromkeys(edge["reasons"] + attrs["reasons"]))
    if "providers" in attrs:
        edge["providers"] = sorted(set(edge.get("providers", [])) | set(attrs["providers"]))
