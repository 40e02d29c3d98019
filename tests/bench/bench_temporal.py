"""Temporal engine benchmark: the local engine vs Temporal with 1, 2 and 4 workers, through the CLI as a user runs it.

Run by hand (not part of the test suite; ~15 minutes for the default 1,000 VMs, ~4 with --quick):

    .venv/bin/python tests/bench/bench_temporal.py [--quick] [--vms 1000] [--copy-seconds 1.0]
        [--workers 1,2,4] [--max-activities 8] [--local-concurrency 8] [--wave-size 100] [--json]

The estate: an inventory.json of N VMs (50 source hosts, 20 datastores), planned by `migrate plan --max-vms
WAVE_SIZE` (1,000 VMs -> 10 waves), every wave on the `noop` method (the cold phases against the noop
driver: precheck, power_off_source, copy_disks, create_target_vm, tag_target, power_on_target, verify,
mark_source_migrated) whose copy_disks sleeps `--copy-seconds` (standing for the disk I/O). Each
measurement starts from fresh state: its own directory, effects file and journal; for Temporal also its own
dev server (`temporal server start-dev` on a free loopback port) and task queues.

- local: `migrate run plan.yaml --config site.yaml --concurrency C` (C = --local-concurrency, what one
  machine does), per-host and per-datastore limits lifted. Slots = C.
- temporal xW: W `migrate worker --max-activities A` processes, then `migrate run ... --engine temporal
  --concurrency 64` with per-host and per-datastore limits lifted: the wave workflow admits up to 64 VMs,
  each worker runs at most A phases at once. Slots = W x A.

Definitions (what is printed):
- wall: seconds from spawning `migrate run` to its exit (what the user waits; includes the CLI's start,
  its checks and, for Temporal, the run's history); engine s: the run's own `seconds` in its JSON result.
- VMs/min = VMs / wall x 60; speed-up of W workers = VMs/min(W) / VMs/min(1), same run.
- overhead per VM = (wall x slots - VMs x copy_seconds) / VMs: the slot-seconds each VM costs beyond its
  copy's I/O (scheduling, the other seven phases, round trips, stragglers at the end of each wave).
  Printed for the local engine too; "Temporal/local" is the ratio of the two.
- Temporal's overhead per VM (the goal's measure) = (wall of Temporal with 1 worker - wall of the local
  engine) / VMs, at the same number of slots (--max-activities = --local-concurrency): what running on
  Temporal adds to each VM's migration, everything else equal.

Slots per worker default to 2 (and the local engine's concurrency to 2): this benchmark measures how
I/O-bound work scales with workers, and on a 2-core machine that also runs the dev server, the server's
CPU (about 150 ms per VM) caps the whole run at about 10 VMs/s. With 4 workers x 8 slots (32 copies a
second wanted) the run is bound by that CPU, not by the copies or the workers (measured in session 8:
300-390 VMs/min whatever the worker count); with 4 x 2 slots the copies dominate.
- CPU: user+system seconds of the client (`migrate run`, from wait4), of all workers together and of the
  dev server (/proc/PID/stat, over the run), and CPU ms per VM of all of them.

Every run is checked: exit 0, status completed, all VMs completed, and each VM created exactly once
(`create` effects in effects.jsonl). The goals (>= 3x VMs/min at 4 workers vs 1; Temporal's overhead
< 50 ms per VM) are reported as OK/MISSED, never asserted: absolute times on this shared 2-core machine
vary from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from migrate.lab.temporal_server import TemporalServer, engine_section, launch_temporal, temporal_binary, wait_serving

MIGRATE = [sys.executable, "-m", "migrate"]
HOSTS, DATASTORES, NETWORKS = 50, 20, 4
TEMPORAL_CONCURRENCY = 64          # VMs a wave workflow admits at once (the workers' slots are the real bound)
NO_LIMIT = 100_000                 # per-host / per-datastore limits lifted
GOAL_SPEEDUP_4 = 3.0
GOAL_OVERHEAD_MS = 50.0
RUN_TIMEOUT_S = 3600.0
IDLE_SAMPLE_S = 2.0                # server + workers' CPU sampled while idle, before the run
TICKS = os.sysconf("SC_CLK_TCK")


# -- the estate --------------------------------------------------------------------------------------------

def inventory(vms: int) -> dict[str, Any]:
    """An inventory of `vms` small powered-on VMs spread over hosts, datastores and networks."""
    rows = []
    for i in range(vms):
        name = f"bench-{i:05d}"
        rows.append({"id": f"5012{i:08x}-0000-4000-8000-{i:012x}", "name": name, "cpus": 2, "memory_mb": 4096,
                     "power_state": "poweredOff" if i % 7 == 0 else "poweredOn", "template": False,
                     "disks": [{"key": 2000, "label": "Hard disk 1", "capacity_bytes": 16 * 2**30,
                                "datastore": f"ds-{i % DATASTORES:02d}", "path": f"{name}/{name}.vmdk"}],
                     "nics": [{"key": 4000, "label": "nic 1", "mac": f"00:50:56:{i >> 16 & 255:02x}:"
                                                                     f"{i >> 8 & 255:02x}:{i & 255:02x}",
                               "network": f"pg-{i % NETWORKS}", "connected": True}],
                     "host": f"esx-{i % HOSTS:03d}", "cluster": "cl-prod"})
    return {"version": 1, "provenance": {"source": "bench", "kind": "vcenter", "collected_at": "2025-01-01T00:00:00Z"},
            "vms": rows,
            "hosts": [{"id": f"host-{h}", "name": f"esx-{h:03d}", "cluster": "cl-prod"} for h in range(HOSTS)],
            "datastores": [{"id": f"datastore-{d}", "name": f"ds-{d:02d}"} for d in range(DATASTORES)],
            "networks": [{"id": f"dvportgroup-{n}", "name": f"pg-{n}"} for n in range(NETWORKS)]}


def make_estate(directory: Path, vms: int, wave_size: int) -> None:
    """inventory.json, and plan.yaml from `migrate plan --max-vms wave_size` with every wave on `noop`."""
    (directory / "inventory.json").write_text(json.dumps(inventory(vms)))
    done = subprocess.run([*MIGRATE, "plan", "--inventory", "inventory.json", "--max-vms", str(wave_size),
                           "--out", "plan.yaml"], cwd=directory, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"migrate plan failed: {done.stderr[-2000:]}")
    plan = yaml.safe_load((directory / "plan.yaml").read_text())
    plan["waves"] = [{k: v for k, v in w.items() if k != "window"} | {"method": "noop"} for w in plan["waves"]]
    (directory / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))


def write_site(directory: Path, copy_seconds: float, engine: dict[str, Any] | None) -> Path:
    noop = {"driver": "noop", "effects_file": "effects.jsonl", "copy_seconds": copy_seconds}
    site: dict[str, Any] = {
        "version": 1, "source": noop, "target": dict(noop),
        "mappings": {"networks": {f"pg-{n}": "seg" for n in range(NETWORKS)},
                     "datastores": {f"ds-{d:02d}": "ds" for d in range(DATASTORES)}}}
    if engine is not None:
        site["engine"] = engine
    (directory / "site.yaml").write_text(yaml.safe_dump(site))
    return directory / "site.yaml"


def fresh_dir(root: Path, base: Path, label: str) -> Path:
    directory = root / label
    directory.mkdir()
    for name in ("inventory.json", "plan.yaml"):
        shutil.copy(base / name, directory / name)
    return directory


# -- measuring ---------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (all its threads), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Measurement:
    """One run of `migrate run` and what it cost."""

    setting: str
    workers: int
    slots: int
    vms: int
    copy_seconds: float
    wall_s: float
    engine_s: float
    client_cpu_s: float
    workers_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    status: str = ""
    creates: int = 0
    duplicates: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def vms_per_min(self) -> float:
        return self.vms / self.wall_s * 60

    @property
    def overhead_ms(self) -> float:
        return (self.wall_s * self.slots - self.vms * self.copy_seconds) / self.vms * 1e3

    @property
    def engine_overhead_ms(self) -> float:
        return (self.engine_s * self.slots - self.vms * self.copy_seconds) / self.vms * 1e3

    @property
    def cpu_ms_per_vm(self) -> float:
        return (self.client_cpu_s + self.workers_cpu_s + self.server_cpu_s) / self.vms * 1e3

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "vms_per_min": self.vms_per_min, "overhead_ms_per_vm": self.overhead_ms,
                "engine_overhead_ms_per_vm": self.engine_overhead_ms, "cpu_ms_per_vm": self.cpu_ms_per_vm}


def run_cli(directory: Path, args: list[str]) -> tuple[float, float, dict[str, Any]]:
    """`migrate run ARGS --json` in `directory`: (wall s, client CPU s, its JSON result). Raises on failure."""
    out, err = (directory / "client.out").open("wb"), (directory / "client.err").open("wb")
    began = time.perf_counter()
    proc = subprocess.Popen([*MIGRATE, "run", "plan.yaml", "--config", "site.yaml", *args, "--json"], cwd=directory,
                            stdout=out, stderr=err, start_new_session=True)
    deadline = began + RUN_TIMEOUT_S
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError(f"migrate run took over {RUN_TIMEOUT_S:.0f} s; see {directory}")
        time.sleep(0.02)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.close()
    err.close()
    text = (directory / "client.out").read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"migrate run exited {proc.returncode}: {text[-1500:]} "
                           f"{(directory / 'client.err').read_text()[-1500:]}")
    # The Temporal SDK's core logs to stdout (e.g. TMPRL1103, a payload over 512 KB): the JSON starts at a "{" line.
    start = 0 if text.startswith("{") else text.find("\n{") + 1
    try:
        result = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        raise RuntimeError(f"migrate run printed no JSON result: {text[:1500]!r} "
                           f"{(directory / 'client.err').read_text()[-1500:]}")
    result["stdout_noise"] = [line[:300] for line in text[:start].splitlines() if line.strip()]
    return wall, usage.ru_utime + usage.ru_stime, result


def check(directory: Path, result: dict[str, Any], vms: int) -> tuple[int, int]:
    """Status completed, every VM completed, each created exactly once: (creates, duplicates)."""
    if result["status"] != "completed" or result["vms"] != {"completed": vms}:
        raise RuntimeError(f"run not completed: {result['status']} {result['vms']} ({directory})")
    lines = (directory / "effects.jsonl").read_text().splitlines()
    created = Counter(e["vm"] for e in map(json.loads, lines) if e["effect"] == "create")
    duplicates = sum(n - 1 for n in created.values())
    if len(created) != vms or duplicates:
        raise RuntimeError(f"{len(created)} VMs created for {vms}, {duplicates} duplicate(s) ({directory})")
    return sum(created.values()), duplicates


def measure_local(root: Path, base: Path, args: argparse.Namespace) -> Measurement:
    directory = fresh_dir(root, base, "local")
    write_site(directory, args.copy_seconds, None)
    wall, cpu, result = run_cli(directory, ["--concurrency", str(args.local_concurrency), "--per-host",
                                            str(NO_LIMIT), "--per-datastore", str(NO_LIMIT), "--journal", "run.db"])
    creates, dup = check(directory, result, args.vms)
    return Measurement(setting=f"local c={args.local_concurrency}", workers=0, slots=args.local_concurrency,
                       vms=args.vms, copy_seconds=args.copy_seconds, wall_s=wall, engine_s=float(result["seconds"]),
                       client_cpu_s=cpu, status=result["status"], creates=creates, duplicates=dup)


async def _pollers(address: str, queues: list[str]) -> int:
    """Distinct worker identities polling any of `queues` (workflow or activity tasks)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    client = await Client.connect(address)
    seen: set[str] = set()
    for queue in queues:
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            found = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace="default", task_queue=TaskQueue(name=queue), task_queue_type=kind))
            seen.update(p.identity.rsplit("@", 1)[0] for p in found.pollers)
    return len(seen)


def wait_workers(server: TemporalServer, queues: list[str], count: int, procs: list[subprocess.Popen[bytes]],
                 timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p.pid for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"worker(s) {dead} exited while starting")
        if asyncio.run(_pollers(server.address, queues)) >= count:
            return
        time.sleep(0.3)
    raise RuntimeError(f"{count} workers did not poll {queues} within {timeout:.0f} s")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def measure_temporal(root: Path, base: Path, args: argparse.Namespace, workers: int) -> Measurement:
    directory = fresh_dir(root, base, f"temporal-{workers}w")
    server = launch_temporal(directory, temporal_binary())
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_serving(server)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        engine = {**engine_section(server.address), "task_queue": queue, "data_task_queue": f"{queue}-data"}
        write_site(directory, args.copy_seconds, engine)
        for n in range(workers):
            log = (directory / f"worker-{n}.log").open("wb")
            procs.append(subprocess.Popen([*MIGRATE, "worker", "--config", "site.yaml", "--max-activities",
                                           str(args.max_activities)], cwd=directory, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        wait_workers(server, [queue, f"{queue}-data"], workers, procs)
        idle = cpu_seconds(server.process.pid) + sum(cpu_seconds(p.pid) for p in procs)
        time.sleep(IDLE_SAMPLE_S)
        idle = (cpu_seconds(server.process.pid) + sum(cpu_seconds(p.pid) for p in procs) - idle) / IDLE_SAMPLE_S
        workers_cpu = sum(cpu_seconds(p.pid) for p in procs)
        server_cpu = cpu_seconds(server.process.pid)
        wall, cpu, result = run_cli(directory, ["--engine", "temporal", "--concurrency", str(TEMPORAL_CONCURRENCY),
                                                "--per-host", str(NO_LIMIT), "--per-datastore", str(NO_LIMIT)])
        workers_cpu = sum(cpu_seconds(p.pid) for p in procs) - workers_cpu
        server_cpu = cpu_seconds(server.process.pid) - server_cpu
        creates, dup = check(directory, result, args.vms)
        return Measurement(setting=f"temporal {workers}w x {args.max_activities}", workers=workers,
                           slots=workers * args.max_activities, vms=args.vms, copy_seconds=args.copy_seconds,
                           wall_s=wall, engine_s=float(result["seconds"]), client_cpu_s=cpu,
                           workers_cpu_s=workers_cpu, server_cpu_s=server_cpu, status=result["status"],
                           creates=creates, duplicates=dup,
                           extra={"stdout_noise": result["stdout_noise"], "idle_cpu_cores": idle, "server_db_mb": sum(
                               p.stat().st_size for p in directory.glob("temporal.db*")) / 2**20})
    finally:
        stop(procs)
        server.process.stop()


# -- report ------------------------------------------------------------------------------------------------

def _row(m: Measurement) -> str:
    return (f"{m.setting:<20}{m.slots:>6}{m.wall_s:>9.1f}{m.engine_s:>9.1f}{m.vms_per_min:>9.0f}"
            f"{m.overhead_ms:>12.0f}{m.engine_overhead_ms:>12.0f}{m.client_cpu_s:>9.1f}{m.workers_cpu_s:>9.1f}"
            f"{m.server_cpu_s:>9.1f}{m.cpu_ms_per_vm:>11.1f}")


def summary(local: Measurement | None, temporal: list[Measurement]) -> dict[str, Any]:
    """Ratios measured in this run and the goals' verdicts."""
    by_workers = {m.workers: m for m in temporal}
    one = by_workers.get(1)
    speedups = {w: m.vms_per_min / one.vms_per_min for w, m in by_workers.items()} if one else {}
    out: dict[str, Any] = {"speedup_vs_1_worker": speedups}
    if local is not None:
        out["overhead_vs_local"] = {w: m.overhead_ms / local.overhead_ms for w, m in by_workers.items()}
        out["vms_per_min_vs_local"] = {w: m.vms_per_min / local.vms_per_min for w, m in by_workers.items()}
    if 4 in speedups:
        out["goal_speedup_4"] = {"goal": GOAL_SPEEDUP_4, "value": speedups[4], "ok": speedups[4] >= GOAL_SPEEDUP_4}
    if local is not None and one is not None and one.slots == local.slots:
        added = (one.wall_s - local.wall_s) / one.vms * 1e3
        out["goal_overhead_ms"] = {"goal": GOAL_OVERHEAD_MS, "value": added, "ok": added < GOAL_OVERHEAD_MS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--copy-seconds", type=float, default=1.0)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure, e.g. 1,2,4")
    parser.add_argument("--max-activities", type=int, default=2, help="phases each worker runs at once")
    parser.add_argument("--local-concurrency", type=int, default=2, help="the local engine's --concurrency")
    parser.add_argument("--wave-size", type=int, default=100, help="`migrate plan --max-vms`")
    parser.add_argument("--no-local", action="store_true", help="skip the local engine's run")
    parser.add_argument("--quick", action="store_true", help="200 VMs")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, histories)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    if args.quick:
        args.vms = 200
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    root = Path(tempfile.mkdtemp(prefix="bench-temporal-"))
    failed = True
    try:
        base = root / "base"
        base.mkdir()
        make_estate(base, args.vms, args.wave_size)
        waves = len(yaml.safe_load((base / "plan.yaml").read_text())["waves"])
        say(f"Temporal benchmark: {args.vms:,} noop VMs in {waves} waves, copy_disks {args.copy_seconds:g} s each; "
            f"local --concurrency {args.local_concurrency}; Temporal --concurrency {TEMPORAL_CONCURRENCY}, "
            f"workers {counts} x --max-activities {args.max_activities}; load average {os.getloadavg()[0]:.2f}; "
            f"work dir {root}")
        say(f"{'setting':<20}{'slots':>6}{'wall s':>9}{'engine s':>9}{'VMs/min':>9}{'ovh ms/VM':>12}"
            f"{'(engine)':>12}{'cli cpu':>9}{'wrk cpu':>9}{'srv cpu':>9}{'cpu ms/VM':>11}")
        local = None
        if not args.no_local:
            local = measure_local(root, base, args)
            say(_row(local))
        temporal = []
        for count in counts:
            temporal.append(measure_temporal(root, base, args, count))
            say(_row(temporal[-1]))
            say(f"{'':<20}(idle before the run: server + workers {temporal[-1].extra['idle_cpu_cores']:.2f} "
                f"cores; server db {temporal[-1].extra['server_db_mb']:.0f} MB)")
            for line in temporal[-1].extra["stdout_noise"]:
                say(f"{'':<20}NOT JSON on `migrate run --json` stdout: {line[:160]}")
        result = summary(local, temporal)
        for w, s in result["speedup_vs_1_worker"].items():
            say(f"speed-up {w} worker(s) vs 1: {s:.2f}x (ideal {w}x)")
        for w, r in result.get("overhead_vs_local", {}).items():
            say(f"overhead per VM, temporal {w}w / local: {r:.1f}x; VMs/min temporal {w}w / local: "
                f"{result['vms_per_min_vs_local'][w]:.2f}x")
        if "goal_speedup_4" in result:
            g = result["goal_speedup_4"]
            say(f"goal >= {g['goal']:g}x at 4 workers vs 1: {g['value']:.2f}x {'OK' if g['ok'] else 'MISSED'}")
        if "goal_overhead_ms" in result:
            g = result["goal_overhead_ms"]
            say(f"goal Temporal overhead < {g['goal']:g} ms per VM (1 worker vs local, same slots): "
                f"{g['value']:.0f} ms {'OK' if g['ok'] else 'MISSED'}")
        if args.json:
            print(json.dumps({"vms": args.vms, "waves": waves, "copy_seconds": args.copy_seconds,
                              "runs": [m.to_dict() for m in ([local] if local else []) + temporal], **result},
                             indent=2))
        failed = False
    finally:
        if args.keep or failed:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
