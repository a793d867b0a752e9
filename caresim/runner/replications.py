"""Replications: seeding and parallel execution.

Each replication is a pure function of (scenario, calibration table, root seed,
replication number, scale): its random streams come from
`SeedSequence(root_seed, spawn_key=(replication, purpose))`, never from worker state. The
runner returns the replications in replication order, so outputs are byte-identical
whatever the number of worker processes (`jobs`).

Workers are started with the `forkserver` context (DESIGN.md: reaches ideal speed-up on 2
cores, and avoids forking a parent that holds threads). Any `concurrent.futures.Executor`
can be passed instead, e.g. a Dask client's `get_executor()` for a cluster.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Callable

import pandas as pd

from caresim.engine.simulation import Simulation
from caresim.scenario.model import Scenario


@dataclass(frozen=True)
class ReplicationResult:
    replication: int
    records: pd.DataFrame
    stats: dict
    wall_seconds: float
    trace: dict[str, pd.DataFrame] | None = None  # a virtual trial's events (Simulation.trace)
    hazard_ratios: dict[str, list[float]] | None = None  # interventions' drawn effects


def run_one(scenario: Scenario, la_inputs: pd.DataFrame, seed: int, replication: int,
            scale: float, history: pd.DataFrame | None = None,
            options: dict | None = None) -> ReplicationResult:
    """Run one replication; returns its LA-level records with a `replication` column.
    `options` are passed to `Simulation` (e.g. `draw_effects`, `trial`)."""
    t0 = time.perf_counter()
    options = options or {}
    sim = Simulation(scenario, la_inputs, seed=seed, replication=replication, scale=scale,
                     history=history, **options)
    records = sim.run()
    records.insert(0, "replication", replication)
    return ReplicationResult(replication, records, asdict(sim.stats()), time.perf_counter() - t0,
                             trace=sim.trace() if options.get("trial") else None,
                             hazard_ratios={iv.name: iv.hazard_ratios for iv in sim.ivs})


def run_replications(
    scenario: Scenario,
    la_inputs: pd.DataFrame,
    seed: int,
    replications: int,
    scale: float,
    jobs: int = 1,
    executor: Executor | None = None,
    on_done: Callable[[ReplicationResult], None] | None = None,
    history: pd.DataFrame | None = None,
    scenarios: list[Scenario] | None = None,
    options: dict | None = None,
) -> list[ReplicationResult]:
    """Run replications 0..replications-1, in parallel when jobs > 1; results in order.

    `scenarios`, if given, is one scenario per replication (parameter uncertainty: each
    replication runs with its own draw of the fitted parameters). `options` go to every
    `Simulation` (see `run_one`)."""
    per_rep = scenarios or [scenario] * replications
    args = [(per_rep[r], la_inputs, seed, r, scale, history, options) for r in range(replications)]
    results: dict[int, ReplicationResult] = {}

    def done(res: ReplicationResult) -> None:
        results[res.replication] = res
        if on_done is not None:
            on_done(res)

    if executor is None and jobs <= 1:
        for a in args:
            done(run_one(*a))
    else:
        own = executor is None
        ex = executor or ProcessPoolExecutor(
            max_workers=min(jobs, replications), mp_context=mp.get_context("forkserver"))
        try:
            futures = [ex.submit(run_one, *a) for a in args]
            for f in as_completed(futures):
                done(f.result())
        finally:
            if own:
                ex.shutdown(cancel_futures=True)
    return [results[r] for r in range(replications)]
