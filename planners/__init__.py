"""Pure planning computation: the dependency graph, wave planning, target sizing and EC2 right-sizing.

Nothing here talks to a provider (no pyvmomi, no boto3): inputs are the inventory model and plain
files (flows.csv, links.yaml), outputs are networkx graphs and plain data.

    from migrate.inventory import load_inventory
    from planners import build_graph, graph_summary, parse_hints, write_graph

    graph = build_graph(load_inventory("inventory.json"), flows="flows.csv", links="links.yaml",
                        hints=parse_hints("folder,name", ["folder=10"]))   # hints: optional
    print(graph_summary(graph))
    write_graph(graph, "graph.json")
"""

from planners.evaluate import evaluate
from planners.flows import FlowRow, FlowTable, load_flows, parse_flows
from planners.graph import APP_NEIGHBOURS, DEFAULT_APP_WEIGHT, EDGE_KINDS, build_graph
from planners.graph_io import GRAPH_VERSION, read_graph, write_graph
from planners.hints import DEFAULT_HINT_WEIGHTS, HINT_KINDS, HintOptions, parse_hints
from planners.instance_types import (
    INSTANCE_TYPES_VERSION,
    InstanceType,
    InstanceTypesFile,
    find_instance_type,
    load_instance_types,
    save_instance_types,
)
from planners.links import LinksFile, load_links, parse_links
from planners.plan_io import load_constraints, load_plan, write_plan
from planners.plan_model import Constraints, Plan, PlanMetrics, Violation
from planners.rightsizing import RightsizeResult, rightsize, rightsize_vm
from planners.sizing import VSAN_POLICIES, HostSizing, SizingPolicy, VmSize, WaveSizing, size_hosts, size_waves
from planners.summary import MoveGroup, conflicts, graph_summary, must_move_groups
from planners.waves import plan_waves

__all__ = [
    "APP_NEIGHBOURS",
    "DEFAULT_APP_WEIGHT",
    "DEFAULT_HINT_WEIGHTS",
    "EDGE_KINDS",
    "GRAPH_VERSION",
    "HINT_KINDS",
    "INSTANCE_TYPES_VERSION",
    "VSAN_POLICIES",
    "Constraints",
    "FlowRow",
    "FlowTable",
    "HintOptions",
    "HostSizing",
    "InstanceType",
    "InstanceTypesFile",
    "LinksFile",
    "MoveGroup",
    "Plan",
    "PlanMetrics",
    "RightsizeResult",
    "SizingPolicy",
    "Violation",
    "VmSize",
    "WaveSizing",
    "build_graph",
    "conflicts",
    "evaluate",
    "find_instance_type",
    "graph_summary",
    "load_constraints",
    "load_flows",
    "load_instance_types",
    "load_links",
    "load_plan",
    "must_move_groups",
    "parse_flows",
    "parse_hints",
    "parse_links",
    "plan_waves",
    "read_graph",
    "rightsize",
    "rightsize_vm",
    "save_instance_types",
    "size_hosts",
    "size_waves",
    "write_graph",
    "write_plan",
]
