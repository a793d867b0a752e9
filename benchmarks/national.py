"""Benchmark: one national 10-year baseline replication at --scale 1, on one core.

Prints wall time, transitions per second, peak memory (RSS high-water mark) and, in the
same run, the transitions per second of a bare SimPy loop doing the same number of
transitions (one timeout callback each), as a ratio. Does not assert anything.

    .venv/bin/python benchmarks/national.py [--scale 1.0] [--years 10]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import simpy

from caresim.engine.simulation import Simulation
from caresim.runner.pipeline import load_inputs
from caresim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def bare_simpy(n_events: int, pending: int = 10_000) -> float:
    """Seconds for a SimPy loop of n_events timeout callbacks, `pending` in flight."""
    env = simpy.Environment()
    g = np.random.default_rng(0)
    delays = g.exponential(100.0, size=n_events + pending)
    count = [0]

    def fire(_ev):
        count[0] += 1
        if count[0] + pending <= n_events:
            env.timeout(delays[count[0]]).callbacks.append(fire)

    for i in range(pending):
        env.timeout(delays[i]).callbacks.append(fire)
    t0 = time.perf_counter()
    env.run()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.yaml"))
    args = ap.parse_args()
    loaded = load_scenario(args.scenario)
    sc = loaded.scenario.model_copy(update={"years": args.years})
    la, _history = load_inputs(loaded)
    t0 = time.perf_counter()
    sim = Simulation(sc, la, seed=1, replication=0, scale=args.scale)
    sim.run()
    wall = time.perf_counter() - t0
    st = sim.stats()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bare = bare_simpy(st.transitions)
    rate = st.transitions / wall
    bare_rate = st.transitions / bare
    print(f"scenario            {sc.name}, {args.years} years, scale {args.scale}")
    print(f"wall time           {wall:.1f} s")
    print(f"transitions         {st.transitions:,} ({st.children:,} children)")
    print(f"transitions/s       {rate / 1e6:.2f} M/s")
    print(f"simpy events        {st.simpy_events:,} (court and placements)")
    print(f"peak memory (RSS)   {peak_mb:,.0f} MB")
    print(f"bare SimPy loop     {bare:.1f} s for the same transitions: {bare_rate / 1e6:.2f} M/s")
    print(f"ratio               caresim is {rate / bare_rate:.1f}x the bare SimPy loop's rate")


if __name__ == "__main__":
    main()
