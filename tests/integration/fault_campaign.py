"""One fault-campaign trial: a fresh seeded lab, planned on a clean network, then run with both vCenters
behind ChaosProxy (a share of connections reset at random), then checked: every VM once, disks equal.

Used by tests/integration/migration/test_fault_campaign.py (CI size) and tests/bench/bench_faults.py
(every rate and seed, the numbers for the issue note).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from adapters.lab.estate import DATASTORE_MAP
from migrate.engine.journal import Journal
from migrate.lab.manager import lab_down, lab_up
from tests.helpers import run_cli
from tests.integration.chaos import ChaosProxy
from tests.integration.conftest import site_copy
from tests.integration.migration.conftest import (
    disk_files,
    estate,
    file_sha256,
    plan_lab,
    sessions,
    vms_by_uuid,
)

__all__ = ["Trial", "chaos_site", "run_trial"]


@dataclass
class Trial:
    """What one trial ended with."""

    rate: float
    seed: int
    vms: int
    completed_first: int = 0        # completed by `migrate run` alone (retries only)
    completed_final: int = 0        # after at most `retry_rounds` of `resume --retry-failed`
    retry_rounds: int = 0
    resets: int = 0
    connections: int = 0
    seconds: float = 0.0
    duplicates: list[str] = field(default_factory=list)
    bad_disks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)        # what did not complete in the end
    first_failures: list[str] = field(default_factory=list)  # what `migrate run` alone left undone, and why
    waves_first: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rewrite(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


def chaos_site(site: Path, out: Path, proxies: dict[str, ChaosProxy]) -> Path:
    """A copy of `site` whose vCenter URLs (source, target) go through the given proxies."""
    doc = yaml.safe_load(site.read_text())
    for role, proxy in proxies.items():
        doc[role]["url"] = _rewrite(doc[role]["url"], proxy.port)
    out.write_text(yaml.safe_dump(doc))
    return out


def _upstream(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 443


def _check_target(lab: Any, trial: Trial) -> None:
    """Every seeded VM at most once on the target; every completed one with disks equal to the source's."""
    source, target = sessions(lab)
    try:
        on_target = vms_by_uuid(target)
        trial.duplicates = [uuid for uuid, vms in on_target.items() if len(vms) > 1]
        for vm in estate(lab)["vms"]:
            found = on_target.get(vm["instance_uuid"], [])
            if len(found) != 1:
                continue
            expected = {f"[{DATASTORE_MAP[d['datastore']]}] {d['path']}": d["sha256"] for d in vm["disks"]}
            if disk_files(found[0]) != sorted(expected) or any(
                    file_sha256(target, "SDDC-Datacenter", path) != sha for path, sha in expected.items()):
                trial.bad_disks.append(vm["name"])
    finally:
        source.close()
        target.close()


def run_trial(work: Path, *, rate: float, seed: int, vms: int = 40, retry_rounds: int = 1,
              max_vms: int = 15) -> Trial:
    """A fresh lab of `vms` VMs (lab seed `seed`), its run through proxies resetting `rate` of connections."""
    work.mkdir(parents=True, exist_ok=True)
    lab = lab_up(work / "lab", vms=vms, seed=seed)
    trial = Trial(rate=rate, seed=seed, vms=vms)
    try:
        clean = site_copy(lab, work)
        plan = plan_lab(lab, work, max_vms=max_vms)
        doc = yaml.safe_load(clean.read_text())
        proxies = {role: ChaosProxy(_upstream(doc[role]["url"]), reset_rate=rate, seed=seed * 31 + i)
                   for i, role in enumerate(("source", "target"))}
        try:
            site = chaos_site(clean, work / "chaos-site.yaml", proxies)
            journal = work / "run.db"
            began = time.perf_counter()
            result = run_cli("run", plan, "--config", site, "--journal", journal, "--json", timeout=1800)
            (work / "run.log").write_text(result.stderr)
            trial.completed_first = _completed(journal)
            status = _status(journal)
            trial.waves_first = {str(w["id"]): w["state"] for w in status.get("waves", [])}
            if trial.completed_first < vms:
                trial.first_failures = [*_wave_errors(journal), *_failures(journal)[:5]]
            trial.completed_final = trial.completed_first
            while trial.completed_final < vms and trial.retry_rounds < retry_rounds:
                trial.retry_rounds += 1
                run_cli("resume", "--config", site, "--journal", journal, "--retry-failed", "--json", timeout=1800)
                trial.completed_final = _completed(journal)
            trial.seconds = time.perf_counter() - began
            if trial.completed_final < vms:
                trial.failures = _failures(journal) or [result.stderr[-500:]]
            trial.resets = sum(p.stats.resets for p in proxies.values())
            trial.connections = sum(p.stats.connections for p in proxies.values())
        finally:
            for proxy in proxies.values():
                proxy.close()
        _check_target(lab, trial)
    finally:
        lab_down(work / "lab")
    return trial


def _status(journal: Path) -> dict[str, Any]:
    result = run_cli("status", "--journal", journal, "--json")
    if result.code != 0:
        return {"vms": []}
    data: dict[str, Any] = result.json()
    return data


def _completed(journal: Path) -> int:
    return sum(1 for vm in _status(journal)["vms"] if vm["state"] == "completed")


def _wave_errors(journal: Path) -> list[str]:
    """Why waves that did not complete stopped, from the journal."""
    with Journal(journal, create=False) as jr:
        run_id = jr.open_run().run_id
        return [f"wave {wave}: {record.state}: {(record.error or {}).get('message', '')}"
                for wave, record in jr.wave_states(run_id).items() if record.state not in ("completed", "pending")]


def _failures(journal: Path) -> list[str]:
    return [f"{vm['name']} {vm['state']} at {vm['phase']}: {(vm.get('error') or {}).get('message', '')}"
            for vm in _status(journal)["vms"] if vm["state"] != "completed"]
