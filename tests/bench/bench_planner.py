"""Wave-planner benchmark (run by hand: .venv/bin/python tests/bench/bench_planner.py [--quick]).

Prints, in one table, our cut and exposure against:
- a proven optimum (OR-Tools CP-SAT: least cut under the same caps, hard groups, keep-apart pairs and
  number of waves; OPTIMAL = proven, FEASIBLE = best found in the time limit) on the 20 microservice
  graphs of ../shared/data/microdepgraph (edge weight 1, each node a VM of 1 GB, max_vms = ceil(n/3))
  and on seeded "enterprise" graphs of 30-50 VMs. Goal: within 5% of the optimum.
- a first-fit baseline of the kind AWS Cloud Migration Factory uses (connected components largest
  first, filled into waves in order; a component larger than a wave is split, keeping hard groups
  whole, in application then name order) on enterprise graphs of 1,000-10,000 VMs. Goal: >= 40% less cut.
- KaHIP's strong preset (kaffpa STRONG, PyPI `kahip`) at our number of waves, its balance set so that
  no block exceeds max_vms, hard groups contracted into weighted nodes (KaHIP knows no keep-apart), edge
  weights as integers up to 10^4, seed 0 (the planner starts from KaHIP's blocks too, see
  planners/kahip_start.py, with the same weights and seeds 0 and 1, then refines them): on
  the microservice graphs, on generated call graphs shaped like production RPC graphs (power-law
  fan-out, deep trees with hub services, denser clusters) and on enterprise graphs of 1,000-10,000 VMs.
  Goal: our cut <= KaHIP's on every graph (ratio <= 1), 0 violations; the worst ratio is printed.
Then a scale run: a 100,000-VM / 300,000-edge enterprise graph, planned in a child process so that
its seconds and peak RSS are its own. Goals: <= 30 s and <= 4 GiB. Violations must be 0 everywhere.
Needs `ortools` and `kahip` (pip install ortools kahip).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from planners import read_graph
from planners.plan_model import Constraints, Plan
from planners.waves import plan_waves

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "microdepgraph"
CP_SAT_SECONDS = 15.0


def enterprise_graph(vms: int, seed: int, *, edges_per_vm: float = 3.0) -> nx.Graph:
    """Apps of 3-15 VMs (heavy inner traffic), grouped in business domains (most cross-app traffic stays
    inside a domain), shared-service hubs talking lightly to many VMs, and some DRS affinity (hard) pairs."""
    rng = random.Random(seed)
    graph = nx.Graph()
    apps: list[list[int]] = []
    made = 0
    while made < vms:
        size = min(rng.randint(3, 15), vms - made)
        apps.append(list(range(made, made + size)))
        made += size
    domains = max(1, len(apps) // 12)
    domain_of = [rng.randrange(domains) for _ in apps]
    by_domain: dict[int, list[int]] = {}
    for a, d in enumerate(domain_of):
        by_domain.setdefault(d, []).append(a)
    hubs = list(range(min(5, max(1, vms // 200))))
    for a, members in enumerate(apps):
        for v in members:
            graph.add_node(f"vm-{v:06d}", name=f"app{a:05d}-{v - members[0]:02d}", app=f"app{a:05d}",
                           gb=float(rng.choice([40, 80, 120, 200, 500])), vcpu=rng.choice([2, 4, 8]), memory_mb=8192)
    graph.graph["keep_apart"] = []
    edges = 0

    def add(u: int, v: int, weight: float, hard: bool = False) -> None:
        nonlocal edges
        a, b = f"vm-{u:06d}", f"vm-{v:06d}"
        if u != v and not graph.has_edge(a, b):
            edges += 1
            graph.add_edge(a, b, weight=0.0 if hard else round(weight, 3), hard=hard,
                           kinds=["affinity" if hard else "flow"], reasons=[f"DRS rule {a}" if hard else "flows"])

    for members in apps:
        for i, v in enumerate(members[1:], start=1):
            add(v, rng.choice(members[:i]), rng.uniform(50, 500))
        for _ in range(len(members) // 2):
            add(rng.choice(members), rng.choice(members), rng.uniform(50, 500))
        if len(members) >= 3 and rng.random() < 0.2:
            add(members[0], members[1], 0.0, hard=True)
    target = int(vms * edges_per_vm)
    while edges < target:
        a = rng.randrange(len(apps))
        if rng.random() < 0.1:
            add(rng.choice(hubs), rng.randrange(vms), rng.uniform(0.1, 2))
        else:
            b = rng.choice(by_domain[domain_of[a]]) if rng.random() < 0.8 else rng.randrange(len(apps))
            if b != a:
                add(rng.choice(apps[a]), rng.choice(apps[b]), rng.uniform(1, 20))
    return graph


def cut_and_exposure(graph: nx.Graph, wave_of: dict[Any, int]) -> tuple[float, float]:
    """Cut fraction and exposure of an assignment (same definitions as planners.evaluate)."""
    total = cut = spread = 0.0
    for a, b, data in graph.edges(data=True):
        w = float(data.get("weight", 1.0))
        total += w
        if wave_of[a] != wave_of[b]:
            cut += w
            spread += w * abs(wave_of[a] - wave_of[b])
    return (cut / total, spread / total) if total else (0.0, 0.0)


def hard_groups(graph: nx.Graph) -> list[list[Any]]:
    """Connected components over hard edges (every node in one)."""
    hard = nx.Graph()
    hard.add_nodes_from(graph.nodes)
    hard.add_edges_from((a, b) for a, b, d in graph.edges(data=True) if d.get("hard"))
    return [sorted(c) for c in nx.connected_components(hard)]


def first_fit(graph: nx.Graph, max_vms: int) -> dict[Any, int]:
    """Components largest first into the first wave with room; an oversize one is split in app/name order."""
    loads: list[int] = []
    wave_of: dict[Any, int] = {}

    def put(nodes: list[Any]) -> None:
        w = next((i for i, load in enumerate(loads) if load + len(nodes) <= max_vms), len(loads))
        if w == len(loads):
            loads.append(0)
        loads[w] += len(nodes)
        wave_of.update(dict.fromkeys(nodes, w))

    for component in sorted(nx.connected_components(graph), key=len, reverse=True):
        if len(component) <= max_vms:
            put(sorted(component))
            continue
        sub = graph.subgraph(component)
        groups = sorted(hard_groups(sub),
                        key=lambda g: (str(graph.nodes[g[0]].get("app")), str(graph.nodes[g[0]]["name"])))
        chunk: list[Any] = []
        for group in groups:
            if len(chunk) + len(group) > max_vms:
                put(chunk)
                chunk = []
            chunk += group
        if chunk:
            put(chunk)
    return wave_of


def cp_sat_optimum(graph: nx.Graph, waves: int, max_vms: int) -> tuple[float, str]:
    """Least cut fraction over every assignment to `waves` waves under the same rules, and the solver status."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    groups = hard_groups(graph)
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    x = {(i, w): model.new_bool_var(f"x{i}_{w}") for i in range(len(groups)) for w in range(waves)}
    for i in range(len(groups)):
        model.add_exactly_one(x[i, w] for w in range(waves))
    for w in range(waves):
        model.add(sum(len(g) * x[i, w] for i, g in enumerate(groups)) <= max_vms)
    model.add(x[0, 0] == 1)                                 # symmetry: the first group goes to wave 1
    for pair in graph.graph.get("keep_apart", []):
        for w in range(waves):
            model.add_bool_or([x[group_of[pair["a"]], w].negated(), x[group_of[pair["b"]], w].negated()])
    weights: dict[tuple[int, int], float] = {}
    for a, b, data in graph.edges(data=True):
        i, j = sorted((group_of[a], group_of[b]))
        if i != j:
            weights[i, j] = weights.get((i, j), 0.0) + float(data.get("weight", 1.0))
    terms = []
    for (i, j), weight in weights.items():
        cut = model.new_bool_var(f"c{i}_{j}")
        for w in range(waves):
            model.add(x[i, w] - x[j, w] <= cut)
        terms.append(round(weight * 1000) * cut)
    model.minimize(sum(terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = CP_SAT_SECONDS
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    total = sum(float(d.get("weight", 1.0)) for _, _, d in graph.edges(data=True))
    return solver.objective_value / 1000 / total, solver.status_name(status)


def ours(graph: nx.Graph, constraints: Constraints) -> tuple[Plan, float]:
    start = time.perf_counter()
    plan = plan_waves(graph, constraints)
    return plan, time.perf_counter() - start


ROW = "{:<34} {:>7} {:>7} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7} {:>6} {:>4}  {}"


def header(reference: str) -> None:
    print(ROW.format("graph", "VMs", "edges", "waves(LB)", "cut%", "expo", "seconds", reference, "ratio", "viol",
                     "ok", "status"))


def optimum_rows(quick: bool) -> list[bool]:
    """Ours against CP-SAT on small graphs."""
    header("opt cut%")
    oks = []
    graphs: list[tuple[str, nx.Graph]] = []
    for path in sorted(glob.glob(str(DATA / "*.graphml"))):
        graph = read_graph(path)
        nx.set_node_attributes(graph, 1.0, "gb")
        graphs.append((Path(path).stem[:34], graph))
    for n, seed in ((30, 1), (35, 2), (40, 3), (45, 4), (50, 5), (50, 6)):
        graphs.append((f"enterprise-{n}-s{seed}", enterprise_graph(n, seed)))
    if quick:
        graphs = graphs[::4]
    for name, graph in graphs:
        max_vms = math.ceil(graph.number_of_nodes() / 3)
        plan, seconds = ours(graph, Constraints(max_vms=max_vms))
        m = plan.metrics
        assert m is not None
        best, status = cp_sat_optimum(graph, m.waves, max_vms)
        ratio = m.cut_fraction / best if best > 0 else (1.0 if m.cut_fraction == 0 else math.inf)
        ok = ratio <= 1.05 + 1e-9 and m.violations == 0
        oks.append(ok)
        print(ROW.format(name, graph.number_of_nodes(), graph.number_of_edges(), f"{m.waves}({m.lower_bound})",
                         f"{100 * m.cut_fraction:.2f}", f"{m.exposure:.3f}", f"{seconds:.2f}", f"{100 * best:.2f}",
                         f"{ratio:.3f}", m.violations, "yes" if ok else "NO", status))
    return oks


def baseline_rows(quick: bool) -> list[bool]:
    """Ours against first-fit on larger enterprise graphs."""
    header("ff cut%")
    oks = []
    sizes = (1000, 3000) if quick else (1000, 2000, 5000, 10000)
    for n in sizes:
        graph = enterprise_graph(n, n)
        max_vms = math.ceil(1.05 * n / 8)
        plan, seconds = ours(graph, Constraints(max_vms=max_vms))
        m = plan.metrics
        assert m is not None
        ff = first_fit(graph, max_vms)
        ff_cut, ff_expo = cut_and_exposure(graph, ff)
        ratio = m.cut_fraction / ff_cut
        ok = ratio <= 0.60 and m.violations == 0
        oks.append(ok)
        print(ROW.format(f"enterprise-{n} max_vms {max_vms}", n, graph.number_of_edges(), f"{m.waves}({m.lower_bound})",
                         f"{100 * m.cut_fraction:.2f}", f"{m.exposure:.3f}", f"{seconds:.2f}", f"{100 * ff_cut:.2f}",
                         f"{ratio:.3f}", m.violations, "yes" if ok else "NO",
                         f"first-fit: {max(ff.values()) + 1} waves, exposure {ff_expo:.3f}"))
    return oks


def call_graph(kind: str, n: int, seed: int) -> nx.Graph:
    """A service-call graph shaped like production RPC graphs; weights are call volumes (heavy-tailed).

    powerlaw: preferential attachment (a few services called by many); tree: deep call trees (each service
    called by one of the ten before it) plus five hub services (auth, config, cache, ...) called lightly by
    a fifth of the rest; clusters: dense domains of 15-40 services with sparse calls between domains."""
    rng = random.Random(seed)
    graph = nx.Graph()
    graph.add_nodes_from((f"s{i:05d}", {"name": f"{kind}-{i:05d}", "app": None, "gb": 1.0}) for i in range(n))
    graph.graph["keep_apart"] = []

    def add(a: int, b: int, weight: float) -> None:
        if a != b:
            x, y = f"s{a:05d}", f"s{b:05d}"
            old = graph.edges[x, y]["weight"] if graph.has_edge(x, y) else 0.0
            graph.add_edge(x, y, weight=round(old + weight, 3), hard=False, kinds=["flow"], reasons=["calls"])

    if kind == "powerlaw":
        for a, b in nx.barabasi_albert_graph(n, 2, seed=seed).edges:
            add(a, b, rng.paretovariate(1.2))
    elif kind == "tree":
        for i in range(1, n):
            add(i, rng.randint(max(0, i - 10), i - 1), rng.paretovariate(1.2))
        for hub in range(5):
            for i in rng.sample(range(5, n), n // 5):
                add(hub, i, 0.2 * rng.paretovariate(2.0))
    else:
        start = 0
        domains = []
        while start < n:
            size = min(rng.randint(15, 40), n - start)
            domains.append(range(start, start + size))
            start += size
        for members in domains:
            for a in members:
                for b in members:
                    if a < b and rng.random() < 0.25:
                        add(a, b, rng.paretovariate(1.5))
        for _ in range(n // 2):
            d, e = rng.sample(range(len(domains)), 2) if len(domains) > 1 else (0, 0)
            add(rng.choice(domains[d]), rng.choice(domains[e]), 0.5 * rng.paretovariate(1.5))
    return graph


def kahip_strong(graph: nx.Graph, waves: int, max_vms: int) -> tuple[dict[Any, int], float]:
    """KaHIP kaffpa STRONG into `waves` blocks of at most max_vms VMs, hard groups contracted; (blocks, seconds)."""
    import kahip

    groups = hard_groups(graph)
    group_of = {node: i for i, g in enumerate(groups) for node in g}
    weights: list[dict[int, float]] = [{} for _ in groups]
    for a, b, data in graph.edges(data=True):
        i, j = group_of[a], group_of[b]
        if i != j:
            w = float(data.get("weight", 1.0))
            weights[i][j] = weights[i].get(j, 0.0) + w
            weights[j][i] = weights[j].get(i, 0.0) + w
    largest = max((w for row in weights for w in row.values()), default=1.0)
    integral = largest <= 1e4 and all(float(w).is_integer() for row in weights for w in row.values())
    scale = 1.0 if integral else 1e4 / largest      # integers up to 10^4: at 10^6 KaHIP takes 4 s on 30 VMs
    xadj, adjncy, adjcwgt = [0], [], []
    for row in weights:
        for j, w in sorted(row.items()):
            adjncy.append(j)
            adjcwgt.append(max(1, round(w * scale)))
        xadj.append(len(adjncy))
    base = math.ceil(graph.number_of_nodes() / waves)
    imbalance = max(0.0, max_vms / base - 1 - 1e-9)
    start = time.perf_counter()
    _, blocks = kahip.kaffpa([len(g) for g in groups], xadj, adjcwgt, adjncy, waves, imbalance, True, 0,
                             kahip.STRONG)
    seconds = time.perf_counter() - start
    return {node: blocks[group_of[node]] for node in graph.nodes}, seconds


def kahip_violations(graph: nx.Graph, wave_of: dict[Any, int], waves: int, max_vms: int) -> int:
    """Blocks over max_vms, empty blocks and keep-apart pairs in one block."""
    loads = [0] * waves
    for w in wave_of.values():
        loads[w] += 1
    over = sum(1 for load in loads if load > max_vms or load == 0)
    return over + sum(1 for p in graph.graph.get("keep_apart", []) if wave_of[p["a"]] == wave_of[p["b"]])


KAHIP_ROW = "{:<34} {:>6} {:>6} {:>6} {:>9} {:>9} {:>7} {:>8} {:>8} {:>9} {:>8}  {}"


def kahip_rows(quick: bool) -> list[float]:
    """Ours against KaHIP strong at the same waves and caps; returns the ratios."""
    print(KAHIP_ROW.format("graph", "VMs", "edges", "waves", "ours cut", "KaHIP cut", "ratio", "ours s", "KaHIP s",
                           "viol o/K", "max_vms", "our bound (plan.yaml cost_bound)"))
    graphs: list[tuple[str, nx.Graph, int]] = []
    for path in sorted(glob.glob(str(DATA / "*.graphml"))):
        graph = read_graph(path)
        nx.set_node_attributes(graph, 1.0, "gb")
        graphs.append((Path(path).stem[:34], graph, math.ceil(graph.number_of_nodes() / 3)))
    sizes = (300, 1000) if quick else (300, 1000, 2500)
    for kind in ("powerlaw", "tree", "clusters"):
        for n in sizes:
            graphs.append((f"{kind}-{n}", call_graph(kind, n, n), math.ceil(1.03 * n / 8)))
    for n in (1000,) if quick else (1000, 3000, 10000):
        graphs.append((f"enterprise-{n}", enterprise_graph(n, n), math.ceil(1.05 * n / 8)))
    ratios = []
    for name, graph, max_vms in graphs:
        plan, seconds = ours(graph, Constraints(max_vms=max_vms))
        m = plan.metrics
        assert m is not None
        blocks, k_seconds = kahip_strong(graph, m.waves, max_vms)
        k_cut = cut_and_exposure(graph, blocks)[0]
        our_cut = cut_and_exposure(graph, {vm: w.id - 1 for w in plan.waves for vm in w.vms})[0]
        ratio = our_cut / k_cut if k_cut > 0 else (1.0 if our_cut == 0 else math.inf)
        ratios.append(ratio)
        k_violations = kahip_violations(graph, blocks, m.waves, max_vms)
        print(KAHIP_ROW.format(name, graph.number_of_nodes(), graph.number_of_edges(), m.waves,
                               f"{100 * m.cut_fraction:.2f}%", f"{100 * k_cut:.2f}%", f"{ratio:.3f}", f"{seconds:.2f}",
                               f"{k_seconds:.2f}", f"{m.violations}/{k_violations}", max_vms,
                               f"{100 * (m.cost_bound or 0) / m.total_weight:.2f}%" if m.total_weight else "-"))
    worst = max(range(len(ratios)), key=ratios.__getitem__)
    print(f"worst ratio {ratios[worst]:.3f} ({graphs[worst][0]}); ours <= KaHIP on "
          f"{sum(r <= 1 + 1e-9 for r in ratios)}/{len(ratios)} graphs; mean ratio {sum(ratios) / len(ratios):.3f}")
    return ratios


def scale_child(vms: int, edges_per_vm: float) -> None:
    """In a child process: build the graph, plan it, print seconds and peak RSS as JSON."""
    graph = enterprise_graph(vms, 7, edges_per_vm=edges_per_vm)
    max_vms = math.ceil(1.1 * vms / 10)
    plan, seconds = ours(graph, Constraints(max_vms=max_vms))
    m = plan.metrics
    assert m is not None
    print(json.dumps({"vms": vms, "edges": graph.number_of_edges(), "seconds": seconds, "waves": m.waves,
                      "lower_bound": m.lower_bound, "cut": m.cut_fraction, "exposure": m.exposure,
                      "violations": m.violations, "max_vms": max_vms,
                      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def scale_row(vms: int) -> bool:
    out = subprocess.run([sys.executable, __file__, "--scale-child", str(vms)], capture_output=True, text=True,
                         check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    ok = bool(r["seconds"] <= 30 and r["rss_mib"] <= 4096 and r["violations"] == 0)
    print(ROW.format(f"scale-{vms} max_vms {r['max_vms']}", r["vms"], r["edges"], f"{r['waves']}({r['lower_bound']})",
                     f"{100 * r['cut']:.2f}", f"{r['exposure']:.3f}", f"{r['seconds']:.2f}", "-", "-",
                     r["violations"], "yes" if ok else "NO", f"peak RSS {r['rss_mib']:.0f} MiB (goal <= 30 s, 4 GiB)"))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few graphs only, and a 20,000-VM scale run")
    parser.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kahip-only", action="store_true", help="only the rows against KaHIP strong")
    args = parser.parse_args()
    if args.scale_child:
        scale_child(args.scale_child, 3.0)
        return
    if args.kahip_only:
        kahip_rows(args.quick)
        return
    print("== against the CP-SAT optimum (same waves, caps, hard groups, keep-apart); goal ratio <= 1.05")
    oks = optimum_rows(args.quick)
    print("\n== against first-fit (CMF-style); goal ratio <= 0.60 (>= 40% less cut)")
    oks += baseline_rows(args.quick)
    print("\n== against KaHIP strong (same waves, max_vms as its balance, hard groups contracted); goal ratio <= 1")
    oks += [r <= 1 + 1e-9 for r in kahip_rows(args.quick)]
    print("\n== scale")
    oks.append(scale_row(20_000 if args.quick else 100_000))
    print(f"\n{sum(oks)}/{len(oks)} rows meet their goal")


if __name__ == "__main__":
    main()
