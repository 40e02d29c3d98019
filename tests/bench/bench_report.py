"""Report benchmark (run by hand: .venv/bin/python tests/bench/bench_report.py [--vms 10000] [--keep DIR]).

Builds a 10,000-VM estate from the planner benchmark's enterprise graph generator (apps of 3-15 VMs in
business domains, shared-service hubs, DRS affinity pairs) as inventory.json + flows.csv, plans it with
`migrate plan`, then times `migrate report` (HTML and --json) as a user runs it, checks that two reports
are byte-identical, and opens the HTML in headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium). Goals (issue 17): < 15 MB, < 30 s to write, < 10 s to open. The report's time is
also printed as a ratio of the planning time measured in the same run (these machines are noisy).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from migrate.core.models.inventory import Cluster, Disk, DrsRule, Inventory, Provenance, Vm
from migrate.inventory import save_inventory
from tests.bench.bench_planner import enterprise_graph

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def write_estate(vms: int, seed: int, directory: Path) -> tuple[Path, Path]:
    """inventory.json and flows.csv of an enterprise graph: app tags, disks, DRS affinity for hard edges."""
    graph = enterprise_graph(vms, seed)
    names = {n: str(d["name"]) for n, d in graph.nodes(data=True)}
    inventory = Inventory(
        provenance=Provenance(source="bench", kind="vcenter", collected_at=datetime(2025, 1, 1, tzinfo=UTC)),
        vms=[Vm(id=str(n), name=names[n], cpus=int(d["vcpu"]), memory_mb=int(d["memory_mb"]),
                power_state="poweredOn", tags={"app": [str(d["app"])]},
                disks=[Disk(key=2000, capacity_bytes=int(d["gb"]) * 2**30, datastore="ds-01",
                            path=f"{names[n]}/{names[n]}.vmdk")])
             for n, d in sorted(graph.nodes(data=True))],
        clusters=[Cluster(id="domain-c1", name="cl-01", rules=[
            DrsRule(name=f"keep-{a}-{b}", kind="affinity", vms=[str(a), str(b)])
            for a, b, d in sorted(graph.edges(data=True)) if d.get("hard")])])
    inv_path, flows_path = directory / "inventory.json", directory / "flows.csv"
    save_inventory(inventory, inv_path)
    with flows_path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["src", "dst", "bytes"])
        for a, b, d in sorted(graph.edges(data=True)):
            if not d.get("hard"):
                out.writerow([names[a], names[b], int(float(d["weight"]) * 2**20)])
    return inv_path, flows_path


def migrate(*args: str | Path) -> float:
    """Run the CLI as a user would; its wall time."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "migrate", *map(str, args)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"migrate {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def open_in_chromium(page: Path, screenshot: Path) -> dict[str, float | int]:
    """Seconds until the load event, rows and graph nodes in the DOM, after a screenshot of the graph."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(120)
        started = time.perf_counter()
        driver.get(page.resolve().as_uri())
        loaded = time.perf_counter() - started
        rows = int(driver.execute_script("return document.querySelectorAll('#vm-table tbody tr').length"))
        nodes = int(driver.execute_script("return document.querySelectorAll('#graph-svg circle.node').length"))
        started = time.perf_counter()
        driver.execute_script("var q = document.getElementById('vm-filter'); q.value = 'app00042';"
                              "q.dispatchEvent(new Event('input'))")
        shown = int(driver.execute_script(
            "return document.querySelectorAll('#vm-table tbody tr:not([hidden])').length"))
        filtered = time.perf_counter() - started
        driver.find_element(By.ID, "graph-svg").screenshot(str(screenshot))
        return {"load_s": loaded, "rows": rows, "nodes": nodes, "filter_s": filtered, "filter_rows": shown}
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the files here (kept) instead of a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        inventory, flows = write_estate(args.vms, args.seed, work)
        print(f"estate: {args.vms} VMs written in {time.perf_counter() - started:.1f} s")
        plan = work / "plan.yaml"
        plan_s = migrate("plan", "--inventory", inventory, "--flows", flows, "--max-vms", "50", "--out", plan)
        html, again, data = work / "report.html", work / "report-2.html", work / "report.json"
        report_s = migrate("report", "--plan", plan, "--inventory", inventory, "--flows", flows, "--out", html)
        migrate("report", "--plan", plan, "--inventory", inventory, "--flows", flows, "--out", again)
        json_s = migrate("report", "--plan", plan, "--inventory", inventory, "--flows", flows, "--out", data)
        same = hashlib.sha256(html.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()
        size = html.stat().st_size
        print(f"plan: {plan_s:.1f} s; report: {report_s:.1f} s ({report_s / plan_s:.2f} x the plan's time), "
              f"{size / 1e6:.2f} MB; --json file: {json_s:.1f} s, {data.stat().st_size / 1e6:.2f} MB; "
              f"byte-identical twice: {same}")
        goals = [("size < 15 MB", size < 15e6), ("written < 30 s", report_s < 30), ("byte-identical", same)]
        if CHROMIUM.exists() and CHROMEDRIVER.exists():
            seen = open_in_chromium(html, work / "graph.png")
            print(f"chromium: loaded in {seen['load_s']:.1f} s, {seen['rows']} rows, {seen['nodes']} graph nodes; "
                  f"filter to one app: {seen['filter_rows']} rows in {seen['filter_s']:.2f} s "
                  f"(screenshot: {work / 'graph.png'})")
            goals.append(("opens < 10 s", seen["load_s"] < 10))
        else:
            print("chromium: not installed (apt-get install chromium chromium-driver), not opened")
        print("goals: " + ", ".join(f"{name}: {'ok' if ok else 'MISSED'}" for name, ok in goals))


if __name__ == "__main__":
    main()
