"""Fault campaign: the seeded 40-VM lab run with both vCenters behind proxies resetting a share of connections.

For each reset rate and seed: a fresh lab, discover and plan on a clean network, `migrate run` through the
proxies (capacity on, default policy), then up to one `resume --retry-failed`. Prints one JSON line per
trial and a table: VMs completed by retries alone, after one retry round, duplicates, unequal disks.

    PYTHONPATH=. .venv/bin/python tests/bench/bench_faults.py --rates 0.05,0.1,0.25,0.5 --seeds 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tests.integration.fault_campaign import Trial, run_trial


def main() -> None:
    """Run the campaign and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.25", help="comma-separated shares of connections reset")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per rate (1..N)")
    parser.add_argument("--vms", type=int, default=40)
    parser.add_argument("--retry-rounds", type=int, default=1)
    args = parser.parse_args()
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        for rate in (float(r) for r in args.rates.split(",")):
            for seed in range(1, args.seeds + 1):
                trial = run_trial(Path(tmp) / f"{rate}-{seed}", rate=rate, seed=seed, vms=args.vms,
                                  retry_rounds=args.retry_rounds)
                trials.append(trial)
                print(json.dumps(trial.to_dict()), flush=True)
    print(f"{'rate':>5} {'trials':>6} {'all by retries':>15} {'all after 1 retry':>18} {'VMs by retries':>15} "
          f"{'resets/conns':>13} {'dup':>4} {'bad disks':>9} {'s/trial':>8}")
    for rate in sorted({t.rate for t in trials}):
        group = [t for t in trials if t.rate == rate]
        vms = sum(t.vms for t in group)
        print(f"{rate:>5.2f} {len(group):>6} {sum(t.completed_first == t.vms for t in group):>15} "
              f"{sum(t.completed_final == t.vms for t in group):>18} "
              f"{sum(t.completed_first for t in group):>7}/{vms:<7} "
              f"{sum(t.resets for t in group):>6}/{sum(t.connections for t in group):<6} "
              f"{sum(len(t.duplicates) for t in group):>4} {sum(len(t.bad_disks) for t in group):>9} "
              f"{sum(t.seconds for t in group) / len(group):>8.1f}")


if __name__ == "__main__":
    main()
