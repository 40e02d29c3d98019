"""Benchmark: how long the lab takes to come up (seeded 40 VMs, bare 10,000 VMs) and its memory.

Run: .venv/bin/python tests/bench/bench_lab.py [--bare-vms 10000]
Prints seconds and the resident memory of each lab process. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from migrate.lab.manager import LabInfo, lab_down, lab_up


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(label: str, **kwargs: object) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    started = time.perf_counter()
    info: LabInfo = lab_up(directory, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    memory = {p.name: rss_mib(p.pid) for p in info.processes}
    lab_down(directory)
    parts = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in memory.items())
    print(f"{label:28} up in {elapsed:6.1f} s   memory: {parts} (total {sum(memory.values()):.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=40)
    parser.add_argument("--bare-vms", type=int, default=10_000)
    args = parser.parse_args()
    measure(f"seeded, {args.vms} VMs", vms=args.vms)
    measure(f"bare, {args.bare_vms} VMs", vms=args.bare_vms, bare=True)


if __name__ == "__main__":
    main()
