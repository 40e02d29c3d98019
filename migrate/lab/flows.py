"""Observed traffic for the seeded estate (flows.csv): heavy inside an app, light between apps."""

from __future__ import annotations

import csv
import io
import itertools
import random
from collections import defaultdict

from adapters.lab.estate import Estate, VmSpec

__all__ = ["FLOW_COLUMNS", "flows_csv", "make_flows"]

FLOW_COLUMNS = ("src", "dst", "dst_port", "protocol", "bytes", "connections")
_DB_PORT = {"rhel8_64Guest": 5432, "ubuntu64Guest": 5432, "centos7_64Guest": 3306,
            "windows2019srv_64Guest": 1433, "sles15_64Guest": 5432}
# Light app-to-app integrations; apps that are not in a small estate are skipped.
_INTEGRATIONS = [("shop", "billing"), ("shop", "crm"), ("crm", "hr"), ("billing", "reporting"),
                 ("analytics", "shop"), ("analytics", "billing"), ("mail", "crm")]
EXTERNAL_ENDPOINT = "198.51.100.7"   # an outside API, not a VM: the graph builder must report it


def make_flows(estate: Estate) -> list[tuple[str, str, int, str, int, int]]:
    """Rows of (src, dst, dst_port, protocol, bytes, connections), deterministic for the estate's seed."""
    rng = random.Random(f"flows:{estate.seed}")  # noqa: S311 - lab data, not security
    by_app: dict[str, dict[str, list[VmSpec]]] = defaultdict(lambda: defaultdict(list))
    for vm in estate.vms:
        by_app[vm.app][vm.tier].append(vm)
    rows: list[tuple[str, str, int, str, int, int]] = []

    def flow(src: VmSpec, dst: VmSpec | str, port: int, proto: str, scale: float, by_name: bool = False) -> None:
        volume = int(scale * rng.uniform(0.5, 1.5))
        target = dst if isinstance(dst, str) else (dst.name if by_name else dst.ip)
        rows.append((src.name if by_name else src.ip, target, port, proto, volume,
                     max(1, volume // 250_000)))

    for app, tiers in by_app.items():
        if app.startswith("infra"):
            continue
        for web in tiers.get("web", []):
            for server in tiers.get("app", []) or tiers.get("db", []):
                flow(web, server, 8443 if tiers.get("app") else _DB_PORT[server.guest_id], "tcp", 4e9)
        for server in tiers.get("app", []):
            for db in tiers.get("db", []):
                flow(server, db, _DB_PORT[db.guest_id], "tcp", 8e9, by_name=True)
        dbs = tiers.get("db", [])
        for primary, replica in itertools.pairwise(dbs):
            flow(primary, replica, _DB_PORT[replica.guest_id], "tcp", 2e9)

    infra = by_app.get("infra", {})
    for vm in estate.vms:
        if vm.app.startswith("infra"):
            continue
        for dns in infra.get("dns", []):
            flow(vm, dns, 53, "udp", 2e6)
        for ldap in infra.get("ldap", []):
            if vm.tier == "app":
                flow(vm, ldap, 636, "tcp", 5e6)
        for monitor in infra.get("monitor", []):
            flow(monitor, vm, 9100, "tcp", 1e6)

    for caller, callee in _INTEGRATIONS:
        front = by_app.get(caller, {}).get("app") or by_app.get(caller, {}).get("web")
        back = by_app.get(callee, {}).get("app") or by_app.get(callee, {}).get("db")
        if front and back:
            flow(front[0], back[0], 8443, "tcp", 5e7)

    shop_app = by_app.get("shop", {}).get("app")
    if shop_app:
        flow(shop_app[0], EXTERNAL_ENDPOINT, 443, "tcp", 3e7)
    return rows


def flows_csv(estate: Estate) -> str:
    """The flows as CSV text with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FLOW_COLUMNS)
    writer.writerows(make_flows(estate))
    return out.getvalue()
