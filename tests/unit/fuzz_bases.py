"""Valid base files the fuzz tests mutate: a 12-VM lab estate's inventory, flows, links, constraints, plan, ..."""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from typing import Any

from adapters.lab.estate import make_estate
from migrate.lab.flows import flows_csv
from planners import build_graph, load_flows
from planners.graph_io import GRAPH_VERSION
from planners.plan_io import plan_document
from planners.plan_model import Constraints
from planners.waves import plan_waves
from tests.unit.test_graph_lab import lab_inventory
from tests.unit.test_sizing import MOTO_TYPES

__all__ = ["Bases", "bases"]


@dataclass(frozen=True)
class Bases:
    """Parsed documents of valid input files; every one of them passes its verb with exit 0."""

    inventory: dict[str, Any]
    flows: list[list[str]]
    links: dict[str, Any]
    constraints: dict[str, Any]
    plan: dict[str, Any]
    types: dict[str, Any]
    graph: dict[str, Any]
    site: dict[str, Any]


def _inventory() -> dict[str, Any]:
    data = lab_inventory(make_estate(12, 1)).model_dump(mode="json", exclude_none=True)
    vm = data["vms"][0]
    vm.update(cores_per_socket=1, snapshots=1, hardware_version="vmx-19", firmware="efi",
              nics=[{"key": 4000, "label": "nic 1", "mac": "00:50:56:00:00:01", "network": "pg-web",
                     "connected": True}],
              utilisation={"window_seconds": 3600, "samples": 180, "cpu_usage_mhz": 500.5, "cpu_usage_percent": 12.5,
                           "memory_active_mb": 1024.0, "memory_usage_percent": 20.0},
              custom_attributes={"owner": "ops"})
    vm["disks"][0].update(unit=0, thin=True, controller="pvscsi:0", sharing="sharingNone")
    data["hosts"] = [{"id": "host-1", "name": "esx-01", "cluster": "cl-prod", "cpu_cores": 32, "cpu_threads": 64,
                      "cpu_mhz": 2600, "memory_bytes": 512 * 2**30, "maintenance_mode": False}]
    data["datastores"] = [{"id": "datastore-1", "name": "ds-prod-01", "type": "VMFS", "capacity_bytes": 2**42,
                           "free_bytes": 2**41}]
    data["networks"] = [{"id": "dvportgroup-1", "name": "pg-web", "kind": "distributed", "vlan": 110,
                         "switch": "dvs-1"}]
    data["folders"] = ["/dc-east/vm"]
    return data


def _rows(text: str) -> list[list[str]]:
    return [list(r) for r in csv.reader(io.StringIO(text))]


@functools.cache
def bases() -> Bases:
    """Built once per test session."""
    import networkx as nx

    from migrate.core.models.inventory import Inventory

    estate = make_estate(12, 1)
    inventory = _inventory()
    links = {"version": 1, "links": [{"a": "shop-app-01", "b": "crm-app-01", "weight": 50, "reason": "export"},
                                     {"a": "infra-dns-01", "b": "infra-dns-02", "hard": True}],
             "keep_apart": [{"a": "infra-ldap-01", "b": "ci-app-01", "reason": "HA"}]}
    constraints = {"version": 1, "max_vms": 6, "max_gb": 20000.5, "ramp": [2, 4],
                   "precedence": [{"before": "app:infra", "after": "app:shop", "reason": "dns first"},
                                  {"before": "crm-db-01", "after": "ci-app-01"}],
                   "pins": [{"vm": "reporting-web-01", "wave": 3}, {"vm": "ci-app-01", "exclude": "retired"}],
                   "windows": [{"start": "2025-03-01T20:00:00Z", "end": "2025-03-02T04:00:00Z"},
                               {"start": "2025-03-08T20:00:00+01:00", "end": "2025-03-09T04:00:00+01:00"}],
                   "keep_apart": [{"a": "shop-web-01", "b": "crm-app-01"}], "seed": 3}
    graph = build_graph(Inventory.model_validate(inventory), load_flows_text(flows_csv(estate)))
    plan = plan_document(plan_waves(graph, Constraints.model_validate(constraints)))
    types = {"version": 1, "region": "us-east-1", "instance_types": MOTO_TYPES}
    site = {"version": 1,
            "source": {"name": "onprem", "url": "https://127.0.0.1:1/sdk", "username": "u",
                       "password_file": "pw.txt", "tls": {"ca_file": "ca.pem"}, "datacenter": "dc-east"},
            "target": {"name": "cloud", "url": "https://127.0.0.1:2/sdk", "username": "u", "password_env": "FUZZ_PW",
                       "tls": {"thumbprint": ":".join(["AB"] * 32)}, "cluster": "Cluster-1"},
            "aws": {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:3", "credentials_file": "pw.txt",
                    "networks": {"pg-web": {"subnet_id": "subnet-0abc", "security_group_ids": ["sg-1"]}}},
            "mappings": {"networks": {"pg-web": "seg-web"}, "datastores": {"ds-prod-01": "WorkloadDatastore"}},
            "capacity": {"host_type": "i4i.metal", "min_hosts": 3, "spare_hosts": 1, "vcpu_per_core": 4.0,
                         "memory_max_util": 0.7}}
    graph_doc = {"version": GRAPH_VERSION, "graph": nx.node_link_data(graph, edges="links")}
    return Bases(inventory, _rows(flows_csv(estate)), links, constraints, plan, types, graph_doc, site)


def load_flows_text(text: str) -> Any:
    """A flows table from CSV text (through a temporary file, as the CLI reads it)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.csv"
        path.write_text(text)
        return load_flows(path)
