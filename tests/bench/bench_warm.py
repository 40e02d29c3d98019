"""Warm vs cold benchmark (by hand: .venv/bin/python tests/bench/bench_warm.py [--target ec2] [--sizes 256] [--json]).

One lab (two vcsim vCenters with CBT, moto for AWS), one powered-on VM of it with one disk, migrated and rolled
back again, by both methods of the target at each disk size, in the same run. --target vcenter (the default):
methods cold and warm, to the cloud vCenter. --target ec2: methods replatform (for cold) and warm_replatform (for
warm), to an EC2 instance on the lab's moto (site.yaml's `replatformer.networks` maps every port group). Below,
"cold" and "warm" stand for the target's two methods:
  size   before anything runs, the disk's data file (the file its backing names) is replaced through datastore
         HTTP by SIZE MiB of seeded random data (every byte allocated), checked by a HEAD of its length; the
         disk's capacity must be at least that (the lab's disks are 20 GB and more);
  cold   a one-VM plan (`migrate run`, method cold): power off, copy the whole disk files, create, power on;
  warm   the same plan with method warm, precopy every --interval s, run in a subprocess: after cycle 0 and one
         precopy cycle, 1% of the disk is written as a guest would (distinct 64 KiB-aligned blocks, seeded,
         through the lab's guest-write endpoint); once a precopy cycle that started after those writes has
         finished, another 1% (the bytes changed since the last cycle), then the cutover is asked for
         (`request_cutover`, what `migrate cutover --vm` calls) and the run finishes.
Each run is rolled back (`migrate rollback`) and the VM checked to be on the source, powered on, before the next.
Downtime, both methods alike: from the start of the method's first downtime phase to the end of its last
(migrate.report.run_data.DOWNTIME_PHASES: power_off_source -> power_on_target for cold and warm, power_off_source
-> wait_ready for replatform and warm_replatform; journal steps); for warm also status' `downtime_s` (the source's
power-off done -> the target on, or the instance passing its status checks).
Bytes at cutover: the final cycle's bytes (the last of status' `bytes_per_cycle`) against the bytes changed since
the last precopy cycle. Prints a table of ratios measured in the same run (never an absolute goal).
Goals: warm downtime <= 20% of cold at 1 GiB, the ratio falling as the disk grows; bytes at cutover <= 2x changed
(vcenter only: for ec2 the ratio is reported, no goal, as EBS blocks are 512 KiB and the guest's 64 KiB writes
at random offsets can each dirty a block of their own, up to 8x).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import yaml

from adapters.lab.estate import ONPREM
from adapters.vcenter.connection import connect
from adapters.vcenter.datastore_http import DatastoreFiles, split_datastore_path
from adapters.vcenter.settings import VCenterEndpoint, resolve_password
from migrate.config import load_site_config
from migrate.core.errors import InputError
from migrate.core.log import configure_logging
from migrate.engine.journal import Journal
from migrate.engine.methods import get_method
from migrate.engine.warm_replatform import BLOCK as EBS_BLOCK
from migrate.lab.churn import GuestClient
from migrate.lab.manager import LabInfo, lab_down, lab_up
from migrate.report.run_data import DOWNTIME_PHASES
from migrate.run import request_cutover
from tests.helpers import CliResult, run_cli

MIB = 1024 * 1024
BLOCK = 64 * 1024            # the guest's write unit (what `lab churn` writes)
CHANGED = 0.01               # the share of the disk written between two cycles
GOAL_DOWNTIME_RATIO = 0.20   # warm / cold at 1 GiB
GOAL_BYTES_RATIO = 2.0       # final cycle's bytes / bytes changed since the last precopy cycle
GOAL_SIZE = 1024             # MiB
RUN_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Target:
    """Where the VM goes: its one-shot ("cold") method, its replicating ("warm") one, the bytes goal."""
    name: str
    cold: str
    warm: str
    where: str
    bytes_goal: float | None     # final/changed bytes at most this; None: reported, no goal
    block: int | None = None     # the unit a cycle puts, when coarser than the guest's writes


TARGETS = {
    "vcenter": Target("vcenter", "cold", "warm", "the cloud vCenter", GOAL_BYTES_RATIO),
    # EBS direct APIs put 512 KiB blocks: each scattered 64 KiB guest write can cost a whole block (up to 8x)
    "ec2": Target("ec2", "replatform", "warm_replatform", "an EC2 instance on the lab's moto", None,
                  block=EBS_BLOCK),
}


class BenchError(Exception):
    """The lab or a method misbehaved: what was seen."""


@dataclass
class Vm:
    name: str
    id: str          # instanceUuid
    moref: str
    key: int         # the disk's device key
    file: str        # the data file its backing names ("[ds] vm/vm.vmdk")
    capacity: int    # bytes


@dataclass
class Result:
    size_mib: int
    vm: str = ""
    cold_downtime_s: float = 0.0
    warm_downtime_s: float = 0.0            # journal steps, like cold's
    warm_status_downtime_s: float | None = None
    final_bytes: int = 0
    changed_bytes: int = 0
    touched_bytes: int | None = None        # the target's blocks the changed bytes fall in, times its block size
    bytes_per_cycle: list[int] = field(default_factory=list)
    cycles_before_cutover: int = 0
    race: str | None = None                 # a precopy cycle ran inside the measured window
    seconds: dict[str, float] = field(default_factory=dict)
    phases: dict[str, dict[str, float]] = field(default_factory=dict)   # method -> cutover phase -> seconds

    @property
    def downtime_ratio(self) -> float:
        return self.warm_downtime_s / self.cold_downtime_s if self.cold_downtime_s else float("nan")

    @property
    def bytes_ratio(self) -> float:
        return self.final_bytes / self.changed_bytes if self.changed_bytes else float("nan")

    @property
    def touched_ratio(self) -> float:
        return self.final_bytes / self.touched_bytes if self.touched_bytes else float("nan")


# -- the lab ---------------------------------------------------------------------------------------------------

class Lab:
    """The running lab's source side: its guest endpoint, its datastore files, the CLI against it."""

    def __init__(self, info: LabInfo, work: Path) -> None:
        self.info, self.work = info, work
        site = load_site_config(info.site_config)
        endpoint = site.source
        if not isinstance(endpoint, VCenterEndpoint):
            raise BenchError(f"{info.site_config}: the source is not a vCenter")
        self.endpoint = endpoint
        self.guest = GuestClient(endpoint, resolve_password(endpoint))

    def cli(self, *args: str | Path, timeout: float = RUN_TIMEOUT) -> CliResult:
        return run_cli(*args, timeout=timeout)

    def listing(self, vm: Vm) -> dict[str, Any]:
        """The VM as the guest endpoint shows it (power state, disks with current file and its length)."""
        found = next((v for v in self.guest.vms() if v["moref"] == vm.moref), None)
        if found is None:
            raise BenchError(f"VM {vm.name} ({vm.moref}) is gone from the on-prem vCenter")
        return found

    def disk(self, vm: Vm) -> dict[str, Any]:
        return dict(next(d for d in self.listing(vm)["disks"] if int(d["key"]) == vm.key))

    def choose_vms(self, biggest_mib: int, count: int = 1) -> list[Vm]:
        """The first `count` powered-on VMs (by name) with one disk whose capacity holds `biggest_mib`."""
        estate = json.loads((self.info.directory / "estate.json").read_text())
        uuids = {vm["name"]: vm["instance_uuid"] for vm in estate["vms"]}
        found = []
        for listed in sorted(self.guest.vms(), key=lambda v: str(v["name"])):
            disks = listed["disks"]
            fits = len(disks) == 1 and int(disks[0]["capacity"]) >= biggest_mib * MIB
            if listed["powerState"] == "poweredOn" and fits:
                found.append(Vm(name=listed["name"], id=uuids[listed["name"]], moref=listed["moref"],
                                key=int(disks[0]["key"]), file=str(disks[0]["file"]),
                                capacity=int(disks[0]["capacity"])))
        if len(found) < count:
            raise BenchError(f"{len(found)} powered-on VM(s) with one disk of at least {biggest_mib} MiB in the lab,"
                             f" {count} needed")
        return found[:count]

    def fill_disk(self, vm: Vm, size_mib: int, seed: int) -> None:
        """Replace the disk's data file by `size_mib` MiB of seeded random data; check its length after."""
        disk = self.disk(vm)
        if disk["file"] != vm.file:
            raise BenchError(f"{vm.name}: the disk's backing is {disk['file']}, not {vm.file} (a snapshot left?)")
        if int(disk["capacity"]) < size_mib * MIB:
            raise BenchError(f"{vm.name}: disk capacity {disk['capacity']} < {size_mib} MiB")
        rng = random.Random(f"{seed}:{vm.name}:{size_mib}")

        tail = {"byte": b""}

        def chunks() -> Iterator[bytes]:
            for _ in range(size_mib):
                chunk = rng.randbytes(MIB)
                tail["byte"] = chunk[-1:]
                yield chunk

        datastore, path = split_datastore_path(vm.file)
        session = connect(self.endpoint)
        files = DatastoreFiles(session, timeout=600)
        try:
            files.upload(ONPREM.datacenter, datastore, path, chunks())
            length = files.size(ONPREM.datacenter, datastore, path)
            last = files.read_range(ONPREM.datacenter, datastore, path, size_mib * MIB - 1, 2)   # GET past the end
        finally:
            files.close()
            session.close()
        listed = int(self.disk(vm)["size"])
        if length != size_mib * MIB or listed != size_mib * MIB or last != tail["byte"]:
            raise BenchError(f"{vm.file}: {length} bytes by HEAD, {listed} by the lab, last byte {last!r} by GET "
                             f"(wrote {size_mib} MiB ending in {tail['byte']!r})")

    def write_blocks(self, vm: Vm, offsets: list[int], seed: int) -> int:
        """Write one seeded random BLOCK at each offset as the guest; bytes written."""
        rng = random.Random(seed)
        for offset in offsets:
            self.guest.write(vm.moref, vm.key, offset, rng.randbytes(BLOCK))
        return len(offsets) * BLOCK

    def back_on_source(self, vm: Vm) -> None:
        """After a rollback: the VM on the source, powered on, under its own name, on its base disk file."""
        listed = self.listing(vm)
        disk = next(d for d in listed["disks"] if int(d["key"]) == vm.key)
        if listed["powerState"] != "poweredOn" or listed["name"] != vm.name or disk["file"] != vm.file:
            raise BenchError(f"after rollback {vm.name} is {listed['powerState']}, named {listed['name']!r}, "
                             f"on {disk['file']}")

    def close(self) -> None:
        self.guest.close()


# -- plans and journals ----------------------------------------------------------------------------------------

def make_plan(lab: Lab, vm: Vm, method: str, interval: float, out: Path) -> Path:
    """The lab's discovered plan cut down to one wave holding only `vm`, with `method` (and `interval` as its
    precopy_interval when the method replicates)."""
    doc = yaml.safe_load((lab.work / "plan.yaml").read_text())
    wave = dict(doc["waves"][0])
    wave.update(id=1, name=f"bench-{method}", vms=[vm.id], vm_names=[vm.name], method=method, cutover_at={})
    wave.pop("window", None)
    wave.pop("size", None)
    wave.pop("why", None)
    if get_method(method).replicates:
        wave["precopy_interval"] = interval
    else:
        wave.pop("precopy_interval", None)
    doc["waves"] = [wave]
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def step_times(journal: Path, run_id: str, vm_id: str) -> dict[str, tuple[float, float | None]]:
    """(started_at, finished_at) of each of the VM's steps."""
    with Journal(journal, create=False, read_only=True) as jr:
        return {s.step: (s.started_at, s.finished_at) for s in jr.steps(run_id, "vm", vm_id)}


def journal_downtime(journal: Path, run_id: str, vm_id: str, method: str) -> tuple[float, dict[str, float]]:
    """From the start of the method's first downtime phase to the end of its last (DOWNTIME_PHASES); and the
    seconds of each step between."""
    first, last = DOWNTIME_PHASES[method]
    steps = step_times(journal, run_id, vm_id)
    off, on = steps.get(first), steps.get(last)
    if off is None or on is None or on[1] is None:
        raise BenchError(f"{journal}: no finished {first}/{last} steps: {sorted(steps)}")
    between = {step: round(end - start, 3) for step, (start, end) in steps.items()
               if end is not None and start >= off[0] and end <= on[1]}
    return on[1] - off[0], between


def cycles(journal: Path, run_id: str, vm_id: str) -> list[dict[str, Any]]:
    """The VM's finished cycles: number, start and end (epoch s), bytes, final."""
    if not journal.exists():
        return []
    try:
        with Journal(journal, create=False, read_only=True) as jr:
            if not any(r.run_id == run_id for r in jr.runs()):
                return []
            records = jr.cycles(run_id, vm_id)
    except InputError:   # the run is still creating its journal (an empty file, no run yet)
        return []
    return [{"cycle": r.cycle, "end": r.at.timestamp(), "start": r.at.timestamp() - float(r.data["seconds"]),
             "bytes": int(r.data["bytes"]), "final": bool(r.data.get("final"))} for r in records]


def rollback(lab: Lab, vm: Vm, journal: Path, run_id: str) -> float:
    began = time.perf_counter()
    back = lab.cli("rollback", "--journal", journal, "--run-id", run_id, "--config", lab.info.site_config, "--json")
    if back.code != 0:
        raise BenchError(f"migrate rollback of {run_id} failed: {back}")
    lab.back_on_source(vm)
    return time.perf_counter() - began


# -- the two methods -------------------------------------------------------------------------------------------

def run_cold(lab: Lab, vm: Vm, result: Result, target: Target) -> None:
    """The target's one-shot method (cold, replatform): one `migrate run`, its downtime, a rollback."""
    size, method = result.size_mib, target.cold
    plan, journal, run_id = (make_plan(lab, vm, method, 0, lab.work / f"plan-{method}-{size}.yaml"),
                             lab.work / f"{method}-{size}.db", f"bench-{method}-{size}")
    began = time.perf_counter()
    run = lab.cli("run", plan, "--config", lab.info.site_config, "--journal", journal, "--run-id", run_id, "--json")
    result.seconds[f"{method}_run"] = time.perf_counter() - began
    if run.code != 0 or json.loads(run.stdout).get("status") != "completed":
        raise BenchError(f"{method} run {run_id} failed: {run}")
    result.cold_downtime_s, result.phases[method] = journal_downtime(journal, run_id, vm.id, method)
    result.seconds[f"{method}_rollback"] = rollback(lab, vm, journal, run_id)


def wait_cycles(journal: Path, run_id: str, vm_id: str, proc: subprocess.Popen[bytes], log: Path,
                done: Any, timeout: float = RUN_TIMEOUT) -> list[dict[str, Any]]:
    """Poll the journal until `done(cycles)`; the cycles then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = cycles(journal, run_id, vm_id)
        if done(found):
            return found
        if proc.poll() is not None:
            raise BenchError(f"run {run_id} ended (exit {proc.returncode}) while replicating: "
                             f"{log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise BenchError(f"run {run_id}: no progress in {timeout} s; cycles {cycles(journal, run_id, vm_id)}")


def run_warm(lab: Lab, vm: Vm, result: Result, target: Target, interval: float, seed: int) -> None:
    """The target's replicating method (warm, warm_replatform): cycles, the two 1% writes, the cutover, a rollback."""
    size, method = result.size_mib, target.warm
    plan, journal, run_id = (make_plan(lab, vm, method, interval, lab.work / f"plan-{method}-{size}.yaml"),
                             lab.work / f"{method}-{size}.db", f"bench-{method}-{size}")
    blocks = size * MIB // BLOCK
    count = max(1, round(blocks * CHANGED))
    offsets = [b * BLOCK for b in random.Random(f"{seed}:{size}:offsets").sample(range(blocks), 2 * count)]
    out, err = lab.work / f"{method}-{size}.out", lab.work / f"{method}-{size}.err"
    began = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "run", str(plan), "--config",
                                 str(lab.info.site_config), "--journal", str(journal), "--run-id", run_id, "--json"],
                                stdout=stdout, stderr=stderr)
        try:
            # cycle 0 (the full copy) and one precopy cycle
            wait_cycles(journal, run_id, vm.id, proc, err, lambda c: len(c) >= 2)
            result.seconds[f"{method}_to_cycle_1"] = time.perf_counter() - began
            lab.write_blocks(vm, offsets[:count], seed=seed * 1000 + size)
            written = time.time()
            # the last precopy cycle: one that started after the first 1% was written (so it holds all of it)
            seen = wait_cycles(journal, run_id, vm.id, proc, err,
                               lambda c: any(x["start"] >= written for x in c))
            last = seen[-1]
            changed = lab.write_blocks(vm, offsets[count:], seed=seed * 1000 + size + 1)
            request_cutover(journal, vms=[vm.id], run_id=run_id)
            code = proc.wait(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result.seconds[f"{method}_run"] = time.perf_counter() - began
    report = out.read_text()
    if code != 0 or json.loads(report or "{}").get("status") != "completed":
        raise BenchError(f"{method} run {run_id} failed (exit {code}): {report[-2000:]} {err.read_text()[-3000:]}")
    status = lab.cli("status", "--journal", journal, "--run-id", run_id, "--json")
    if status.code != 0:
        raise BenchError(f"migrate status of {run_id} failed: {status}")
    replication = next(v for v in status.json()["vms"] if v["id"] == vm.id)["replication"]
    done = cycles(journal, run_id, vm.id)
    result.bytes_per_cycle = [int(b) for b in replication["bytes_per_cycle"]]
    result.final_bytes = result.bytes_per_cycle[-1]
    result.changed_bytes = changed
    if target.block is not None:
        result.touched_bytes = len({o // target.block for o in offsets[count:]}) * target.block
    result.cycles_before_cutover = len(done) - 1
    result.warm_status_downtime_s = replication["downtime_s"]
    result.warm_downtime_s, result.phases[method] = journal_downtime(journal, run_id, vm.id, method)
    final = done[-1]
    if not final["final"]:
        raise BenchError(f"{method} run {run_id}: the last cycle is not the final one: {done}")
    if final["cycle"] != last["cycle"] + 1:
        result.race = (f"precopy cycle(s) {list(range(last['cycle'] + 1, final['cycle']))} ran between the second "
                       f"1% and the cutover (raise --interval)")
    result.seconds[f"{method}_rollback"] = rollback(lab, vm, journal, run_id)


# -- the table -------------------------------------------------------------------------------------------------

def print_table(results: list[Result], target: Target) -> None:
    cold, warm, ratio = f"{target.cold} down s", f"{target.warm} down s", f"{target.warm}/{target.cold}"
    wc, ww, wr = max(13, len(cold) + 2), max(13, len(warm) + 2), max(11, len(ratio) + 2)
    blocks = target.block is not None
    extra = f"{'touched bytes':>15}{'final/touched':>15}" if blocks else ""
    print(f"{'size MiB':>9}{cold:>{wc}}{warm:>{ww}}{'(status) s':>12}{ratio:>{wr}}"
          f"{'final bytes':>13}{'changed bytes':>15}{'final/changed':>15}{extra}{'cycles':>8}  note")
    for r in results:
        status = f"{r.warm_status_downtime_s:.2f}" if r.warm_status_downtime_s is not None else "-"
        extra = f"{r.touched_bytes or 0:>15,}{r.touched_ratio:>15.3f}" if blocks else ""
        print(f"{r.size_mib:>9}{r.cold_downtime_s:>{wc}.2f}{r.warm_downtime_s:>{ww}.2f}{status:>12}"
              f"{r.downtime_ratio:>{wr}.3f}{r.final_bytes:>13,}{r.changed_bytes:>15,}{r.bytes_ratio:>15.3f}{extra}"
              f"{r.cycles_before_cutover:>8}  {r.race or ''}")
    if blocks:
        print(f"  touched bytes: the {target.block // 1024} KiB blocks the second 1% of {BLOCK // 1024} KiB writes "
              f"fall in, times {target.block // 1024} KiB (what a final cycle of exactly those blocks puts)")


def goals(results: list[Result], target: Target) -> dict[str, bool | None]:
    at_goal = next((r for r in results if r.size_mib == GOAL_SIZE), None)
    ratios = [r.downtime_ratio for r in sorted(results, key=lambda r: r.size_mib)]
    clean = [r for r in results if r.race is None]
    verdict = {
        "downtime_ratio_at_1GiB": None if at_goal is None else at_goal.downtime_ratio <= GOAL_DOWNTIME_RATIO,
        "falling_with_size": None if len(ratios) < 2 else all(b < a for a, b in itertools.pairwise(ratios)),
    }
    if target.bytes_goal is not None:
        verdict["bytes_ratio"] = None if not clean else all(r.bytes_ratio <= target.bytes_goal for r in clean)
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="vcenter",
                        help="vcenter: cold vs warm to the cloud vCenter (default); "
                             "ec2: replatform vs warm_replatform to EC2 on the lab's moto")
    parser.add_argument("--sizes", default="256,1024",
                        help="disk sizes in MiB, comma-separated (the manual run: 256,1024,4096)")
    parser.add_argument("--interval", type=float, default=3.0, help="warm precopy_interval, seconds")
    parser.add_argument("--seed", type=int, default=7, help="the lab's seed and the data's")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument("--work", help="keep the plans, journals and run logs here (default: a temporary directory)")
    args = parser.parse_args()
    target = TARGETS[args.target]
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    configure_logging("warning", json_logs=True)
    print(f"{target.warm} vs {target.cold} benchmark (target {target.name}: {target.where}): disk sizes {sizes} MiB, "
          f"{CHANGED:.0%} of the disk changed between cycles ({BLOCK // 1024} KiB blocks), precopy every "
          f"{args.interval:g} s; one lab, one VM")
    began = time.perf_counter()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        work = Path(args.work or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        lab_dir = work / "lab"
        try:
            info = lab_up(lab_dir, vms=10, seed=args.seed)
            lab = Lab(info, work)
            try:
                inventory = work / "inventory.json"
                for command in (("discover", "--config", info.site_config, "--out", inventory),
                                ("plan", "--inventory", inventory, "--flows", info.directory / "flows.csv",
                                 "--out", work / "plan.yaml")):
                    done = lab.cli(*command)
                    if done.code != 0:
                        raise BenchError(f"migrate {command[0]} failed: {done}")
                vms = lab.choose_vms(max(sizes)) * len(sizes)
                for size, vm in zip(sizes, vms, strict=True):
                    if size == sizes[0]:
                        print(f"VM {vm.name} ({vm.id}), disk {vm.key} {vm.file}, "
                              f"capacity {vm.capacity / 2**30:.0f} GiB")
                    result = Result(size, vm.name)
                    lab.fill_disk(vm, size, args.seed)
                    run_cold(lab, vm, result, target)
                    run_warm(lab, vm, result, target, args.interval, args.seed)
                    results.append(result)
                    print(f"  {size} MiB done: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()),
                          flush=True)
                    for method, phases in result.phases.items():
                        print(f"    {method} downtime phases: " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
            finally:
                lab.close()
        finally:
            lab_down(lab_dir)
    print_table(results, target)
    verdict = goals(results, target)
    words = {True: "holds", False: "FAILS", None: "not measured"}
    if target.bytes_goal is not None:
        bytes_goal = f"final/changed bytes <= {target.bytes_goal:g}: {words[verdict['bytes_ratio']]}"
    else:
        bytes_goal = (f"final/changed bytes: reported, no goal ({(target.block or BLOCK) // 1024} KiB blocks vs "
                      f"{BLOCK // 1024} KiB guest writes at random)")
    print(f"goals: {target.warm}/{target.cold} downtime <= {GOAL_DOWNTIME_RATIO:.2f} at {GOAL_SIZE} MiB: "
          f"{words[verdict['downtime_ratio_at_1GiB']]}; ratio falling as the disk grows: "
          f"{words[verdict['falling_with_size']]}; {bytes_goal}   (wall {time.perf_counter() - began:.0f} s)")
    if args.json:
        print(json.dumps({"target": target.name, "methods": {"cold": target.cold, "warm": target.warm},
                          "sizes": [{**asdict(r), "downtime_ratio": r.downtime_ratio, "bytes_ratio": r.bytes_ratio}
                                    for r in results], "goals": verdict, "interval_s": args.interval,
                          "changed_share": CHANGED, "block_bytes": BLOCK}))


if __name__ == "__main__":
    main()
