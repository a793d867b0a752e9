"""Benchmark: sweep throughput on local processes against a Dask LocalCluster.

1. The FGC national rollout sweep (scenarios/fgc_national_rollout_sweep.yaml against
   scenarios/baseline.yaml, `diff:` outputs, so each run is 2 x R simulations) at
   `--scale 0.1`: the first `--points` points of its Morris design, run through the sweep's
   own `execute` (tasks, retries, Parquet parts) on 2 local worker processes and on a
   2-worker Dask LocalCluster, in one process, alternating in `--rounds` rounds so that both
   see the same machine load. Prints runs per minute of each and their ratio, the wall and
   CPU seconds per run inside the workers (CPU time is less sensitive to other jobs on the
   machine), the backends' start-up times, and checks that both stored the same outputs.
2. Per-run overhead: the Ishigami function (microseconds of work) with one point per task,
   so the time per run is the executor's overhead (submit, pickle, schedule, return, write a
   Parquet part): this process, 2 local processes, 2 Dask workers.

Prints figures; asserts nothing.

    .venv/bin/python benchmarks/sweep.py [--points 8] [--rounds 4] [--replications 1] [--scale 0.1] [--trivial 300]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from caresim.analysis.sensitivity import Ishigami
from caresim.analysis.sweep import RunStore, SweepSettings, build_design, execute, run_batch
from caresim.analysis.sweep_scenario import prepare_sweep
from caresim.runner.executors import open_backend
from caresim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ["diff:care_starts@2026-2030", "diff:cost.total@2026-2030"]
BACKENDS = {"local processes (--jobs 2)": {"jobs": 2},
            "Dask LocalCluster (--dask-workers 2)": {"dask_workers": 2}}


def timed_execute(evaluator, points, settings, folder: Path, **backend) -> tuple[float, float, pd.DataFrame]:
    """(start-up seconds, run seconds, stored runs) of `points` on one backend."""
    folder.mkdir(parents=True)
    (folder / "runs").mkdir()
    store = RunStore(folder, evaluator.outputs, settings.replications)
    t0 = time.perf_counter()
    with open_backend(evaluator, **backend) as b:
        t1 = time.perf_counter()
        failures = execute(b, points, settings, store)
        t2 = time.perf_counter()
    if failures:
        raise RuntimeError(f"runs failed: {failures}")
    return t1 - t0, t2 - t1, store.load()


def fgc_throughput(args: argparse.Namespace, tmp: Path) -> None:
    loaded = load_scenario(ROOT / "scenarios" / "fgc_national_rollout_sweep.yaml")
    baseline = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    sw = prepare_sweep(loaded, method="morris", samples=2, outputs=OUTPUTS, baseline=baseline,
                       replications=args.replications, scale=args.scale, seed=1)
    design = build_design(sw.parameters, sw.settings).head(args.points)
    names = [p.name for p in sw.parameters]
    points = [(int(pt), dict(zip(names, map(float, row))))
              for pt, row in zip(design["point"], design[names].to_numpy())]
    sims = 2 * args.replications * len(points)
    rounds = [points[i::args.rounds] for i in range(args.rounds)]
    print(f"FGC national rollout sweep, scale {args.scale}: {len(points)} runs x {args.replications} "
          f"replication(s) x 2 scenarios = {sims} national 10-year simulations per executor, "
          f"in {args.rounds} alternating rounds (so both executors see the same machine load)")
    walls = {name: 0.0 for name in BACKENDS}
    stored: dict[str, list[pd.DataFrame]] = {name: [] for name in BACKENDS}
    backends = {}
    try:
        for name, options in BACKENDS.items():
            t0 = time.perf_counter()
            backends[name] = b = open_backend(sw.evaluator, **options)
            for f in [b.submit(run_batch, [], 1) for _ in range(2 * b.workers)]:
                f.result()  # workers started (a process pool starts them on demand) and loaded
            print(f"  {name:40s} start-up {time.perf_counter() - t0:5.1f} s")
        for r, chunk in enumerate(rounds):
            for k, (name, backend) in enumerate(backends.items()):
                folder = tmp / f"fgc-{r}-{k}"
                (folder / "runs").mkdir(parents=True)
                store = RunStore(folder, sw.evaluator.outputs, sw.settings.replications)
                t0 = time.perf_counter()
                failures = execute(backend, chunk, sw.settings, store)
                walls[name] += time.perf_counter() - t0
                if failures:
                    raise RuntimeError(f"runs failed: {failures}")
                stored[name].append(store.load())
    finally:
        for b in backends.values():
            b.close()
    rates = {}
    for name in BACKENDS:
        runs = pd.concat(stored[name]).sort_values(["point", "replication"]).reset_index(drop=True)
        rates[name] = 60.0 * len(points) / walls[name]
        stored[name] = runs
        per_run = runs.drop_duplicates("point")
        print(f"  {name:40s} {walls[name]:6.1f} s: {rates[name]:6.2f} runs/min "
              f"({60.0 * sims / walls[name]:5.1f} simulations/min); per run in a worker: "
              f"{per_run['seconds'].mean():.1f} s wall, {per_run['cpu_seconds'].mean():.1f} s CPU")
    a, b = rates.values()
    print(f"  ratio of runs/min, local / Dask: {a / b:.3f}")
    s1, s2 = (stored[n].drop(columns=["seconds", "cpu_seconds"]) for n in BACKENDS)
    print(f"  identical outputs on both executors: {s1.equals(s2)}")


def overhead(args: argparse.Namespace, tmp: Path) -> None:
    ish = Ishigami()
    settings = SweepSettings("sobol", 64, seed=1, replications=1, batch_size=1)
    design = build_design(ish.parameters(), settings).head(args.trivial)
    points = [(int(pt), {"x1": a, "x2": b, "x3": c})
              for pt, a, b, c in zip(design["point"], design["x1"], design["x2"], design["x3"])]
    print(f"Per-run overhead: {len(points)} runs of the Ishigami function (microseconds of work), "
          "one run per task, each stored as a Parquet part")
    for name, backend in {"this process (--jobs 1)": {"jobs": 1}, **BACKENDS}.items():
        start, wall, _ = timed_execute(ish, points, settings, tmp / f"ish-{name.split()[0]}", **backend)
        print(f"  {name:40s} start-up {start:5.2f} s, {len(points) / wall:7.1f} runs/s, "
              f"{1000.0 * wall / len(points):6.2f} ms per run")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=8, help="FGC sweep runs per executor")
    ap.add_argument("--rounds", type=int, default=4, help="alternate the executors this many times")
    ap.add_argument("--replications", type=int, default=1)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--trivial", type=int, default=300, help="Ishigami runs per executor")
    ap.add_argument("--skip-fgc", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="caresim-sweep-bench-"))
    try:
        overhead(args, tmp)
        if not args.skip_fgc:
            fgc_throughput(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
