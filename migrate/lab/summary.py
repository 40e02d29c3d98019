"""What a running lab holds, as data and as a few human lines."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from adapters.lab.estate import CLOUD, ONPREM
from migrate.lab.manager import LabInfo

__all__ = ["lab_summary", "render_lab_summary"]


def lab_summary(info: LabInfo) -> dict[str, Any]:
    """Endpoints, topology and estate figures of a lab (no secrets)."""
    data = info.to_dict()
    data["running"] = info.running()
    data["cloud"] = {"datacenter": CLOUD.datacenter, "clusters": CLOUD.clusters,
                     "datastores": list(CLOUD.datastores), "portgroups": list(CLOUD.portgroups)}
    manifest_path = info.directory / "estate.json"
    if info.bare or not manifest_path.exists():
        data["onprem"] = {"model": "vcsim default model", "vms": info.vms}
        return data
    manifest = json.loads(manifest_path.read_text())
    vms = manifest["vms"]
    disks = [d for vm in vms for d in vm["disks"]]
    flows = info.flows.read_text().count("\n") - 1 if info.flows else 0
    data["onprem"] = {
        "datacenter": ONPREM.datacenter, "clusters": ONPREM.clusters, "datastores": list(ONPREM.datastores),
        "portgroups": list(ONPREM.portgroups), "vms": len(vms),
        "apps": dict(sorted(Counter(vm["app"] for vm in vms).items())),
        "powered_off": sorted(vm["name"] for vm in vms if not vm["powered_on"]),
        "disks": len(disks), "seeded_mib": round(sum(d["seeded_bytes"] for d in disks) / 2**20, 1),
        "drs_rules": [r["name"] for r in manifest["rules"]], "vapps": list(manifest["vapps"]),
        "flows": flows,
    }
    return data


def render_lab_summary(data: dict[str, Any]) -> str:
    onprem, cloud = data["onprem"], data["cloud"]
    state = "running" if data["running"] else "NOT running (run `migrate lab up` again)"
    lines = [f"Lab in {data['directory']}: {state} (came up in {data['startup_seconds']} s)"]
    cloud_hosts = sum(len(h) for h in cloud["clusters"].values())
    if "datacenter" in onprem:
        hosts = sum(len(h) for h in onprem["clusters"].values())
        lines.append(f"  on-prem vCenter  {data['endpoints'].get('onprem', '?')}  {onprem['datacenter']}: "
                     f"{len(onprem['clusters'])} clusters, {hosts} hosts, {len(onprem['datastores'])} datastores, "
                     f"{len(onprem['portgroups'])} port groups")
    else:
        lines.append(f"  on-prem vCenter  {data['endpoints'].get('onprem', '?')}  bare model, {onprem['vms']} VMs")
    lines += [f"  on-prem vCenter  {url}  ({name}, same topology; the estate is shared by application)"
              for name, url in data["endpoints"].items() if name.startswith("onprem") and name != "onprem"]
    lines.append(f"  cloud SDDC       {data['endpoints'].get('cloud', '?')}  {cloud['datacenter']}: "
                 f"{', '.join(cloud['clusters'])} ({cloud_hosts} x i4i.metal), {', '.join(cloud['datastores'])}")
    lines.append(f"  AWS (moto)       {data['endpoints'].get('aws', '?')}")
    if "apps" in onprem:
        off = len(onprem["powered_off"])
        lines.append(f"  estate: {onprem['vms']} VMs in {len(onprem['apps'])} apps ({onprem['vms'] - off} on, "
                     f"{off} off), {onprem['disks']} disks ({onprem['seeded_mib']} MiB seeded), "
                     f"{len(onprem['drs_rules'])} DRS rules, {len(onprem['vapps'])} vApp, {onprem['flows']} flows")
    lines.append(f"  site config: {data['site_config']}" + (f"   flows: {data['flows']}" if data["flows"] else ""))
    return "\n".join(lines)
