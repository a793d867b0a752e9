"""`caresim compare A.yaml B.yaml` as a library call: a paired comparison of two scenarios.

Both scenarios run the same replications (0..n-1) from the same root seed, so every child,
family and arrival draws the same random numbers in A and in B wherever the scenarios do
not differ (the engine's streams are keyed by seed, replication and purpose; DESIGN.md,
Randomness). The difference B minus A is then taken replication by replication and only
then summarised, which removes the noise the two runs share: these are common random
numbers (CRN). With `crn=False`, B runs from root seed `seed + 1_000_003` instead, which
gives independent runs; it exists to measure what CRN buys, not for use in briefs.

The output folder (default `outputs/compare_<A>_vs_<B>/<timestamp>/`) holds:

- `difference.csv`: `metric, year, geography, mean, p05, p50, p95` (the output contract),
  B minus A per replication, then the mean and the 5th, 50th and 95th percentiles over
  replications. For additive metrics (counts, costs) a metric with no record in one
  scenario for a (year, geography, replication) counts as 0 there, so a cost only B has
  (an intervention's) appears in full. Ratio metrics (`proceedings_mean_weeks`,
  `proceedings_within_26_weeks`) are differenced only in replications where both
  scenarios define them. Because the mean is linear, the mean difference equals B's mean
  minus A's mean in `summary.csv`; the percentiles are those of the paired differences,
  not differences of percentiles.
- `summary.csv`: both scenarios in the format of `caresim run` (`scenario` tells them
  apart), plus the derived metrics below.
- `replications.parquet`: both scenarios' per-replication records (LA, region, England),
  with a `scenario` column first.
- `manifest.json`, and figures (`figures/`): both scenarios' fan charts overlaid, and the
  cumulative difference with its 90% band.

Derived metrics, computed per scenario and replication before differencing:

- `cost.<component>.discounted` for every `cost.` metric (so new cost flows such as
  `cost.intervention.<name>` are included without naming them): the cost in year `y`
  times 1/(1+r)**(y - first_year), i.e. discounted to the first simulated financial year
  (`first_year` = the start year + 1), at scenario A's `costs.discount_rate`, or 3.5% (HM
  Treasury Green Book) if A sets none; the manifest records which.
- `cumulative.<m>` for `care_starts`, `proceedings_issued`, `sgo_granted`,
  `care_reentries`, `cost.total` and `cost.total.discounted` (those the engine emits):
  the running sum over simulated years.

There is no separate net-cost metric: `cost.total` includes every cost component,
intervention costs among them, so the `cost.total` difference is the net cost of B
relative to A (intervention spend minus the savings it buys), in GBP at A's price base;
`cumulative.cost.total.discounted` is its net present value to the first year.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

import caresim
from caresim.errors import CaresimError
from caresim.report.fancharts import difference_chart, overlay_fan_charts
from caresim.results.metrics import RATIO_METRICS, metric_info
from caresim.results.store import OutputFolder, runtime_manifest, write_manifest, write_parquet
from caresim.results.summary import ENGLAND, write_csv, summarise
from caresim.runner.pipeline import (
    CALIBRATION_VINTAGE,
    PreparedScenario,
    ScenarioRecords,
    chart_history,
    geography_manifest,
    prepare,
    resolve_settings,
    run_records,
    scale_note,
    scenario_manifest,
)
from caresim.runner.replications import ReplicationResult
from caresim.scenario.loader import LoadedScenario

#: Root-seed offset of scenario B without common random numbers (a large prime, so the
#: two runs' streams never coincide for any seed and replication).
NO_CRN_SEED_OFFSET = 1_000_003
#: HM Treasury Green Book social time preference rate, used if scenario A sets none.
GREEN_BOOK_RATE = 0.035
DIFFERENCE_COLUMNS: tuple[str, ...] = ("metric", "year", "geography", "mean", "p05", "p50", "p95")
CUMULATIVE_METRICS: tuple[str, ...] = (
    "care_starts", "proceedings_issued", "sgo_granted", "care_reentries", "cost.total",
    "cost.total.discounted",
)
DISCOUNTED_SUFFIX = ".discounted"
FAN_METRICS: tuple[str, ...] = ("care_starts", "looked_after", "proceedings_issued", "cost.total")
DIFFERENCE_FIGURES: tuple[str, ...] = ("cumulative.care_starts", "cumulative.cost.total")


@dataclass(frozen=True)
class CompareOutcome:
    """What `run_compare` wrote: the final `folder`, the `difference` and `summary`
    tables (as in difference.csv and summary.csv) and the `manifest`."""

    folder: Path
    difference: pd.DataFrame
    summary: pd.DataFrame
    manifest: dict


def check_comparable(a: LoadedScenario, b: LoadedScenario) -> None:
    """Raise `CaresimError` naming both files and the key if A and B differ in `start` or
    `years` (a paired comparison needs the same simulated years)."""
    for key in ("start", "years"):
        va, vb = getattr(a.scenario, key), getattr(b.scenario, key)
        if va != vb:
            raise _mismatch(a, b, key, str(va), str(vb))


def _mismatch(a: LoadedScenario, b: LoadedScenario, key: str, va: str, vb: str) -> CaresimError:
    return CaresimError(
        f"cannot compare {a.path} with {b.path}: they differ in `{key}` (A: {va}; B: {vb}); "
        "a paired comparison needs the same start, years and geography"
    )


def _check_same_las(a: PreparedScenario, b: PreparedScenario) -> None:
    """Raise `CaresimError` (key `geography`) unless A and B simulate the same LAs."""
    codes_a, codes_b = set(a.las.codes), set(b.las.codes)
    if codes_a != codes_b:
        def describe(mine: set[str], other: set[str], other_name: str) -> str:
            extra = sorted(mine - other)
            shown = ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else "")
            text = f"{len(mine)} LA{'' if len(mine) == 1 else 's'}"
            return text + (f", {len(extra)} not in {other_name} ({shown})" if extra else "")

        raise _mismatch(a.loaded, b.loaded, "geography", describe(codes_a, codes_b, "B"),
                        describe(codes_b, codes_a, "A"))


def discount_rate(loaded: LoadedScenario) -> tuple[float, str]:
    """Scenario's annual discount rate (fraction per year) and where it came from."""
    rate = loaded.scenario.costs.discount_rate
    if rate is None:
        return GREEN_BOOK_RATE, ("default: HM Treasury Green Book 3.5% a year "
                                 "(scenario A sets no costs.discount_rate)")
    return float(rate.value), f"scenario A costs.discount_rate ({loaded.path})"


def derived_records(records: pd.DataFrame, rate: float, first_year: int) -> pd.DataFrame:
    """The derived metrics of one scenario's records (`metric, year, geography, value,
    replication`, any geography level): `cost.<c>.discounted` for every `cost.` metric, at
    `rate` per year to `first_year`, and `cumulative.<m>` for `CUMULATIVE_METRICS`.

    Cumulative sums run over a complete grid of the metric's years x geographies x
    replications, a missing record counting as 0, so every replication has a running total
    in every year. Returns records in the same columns as `records`."""
    cols = list(records.columns)
    cost = records[records["metric"].str.startswith("cost.")
                   & ~records["metric"].str.endswith(DISCOUNTED_SUFFIX)]
    factor = 1.0 / (1.0 + rate) ** (cost["year"].to_numpy(dtype=float) - first_year)
    discounted = cost.assign(metric=cost["metric"] + DISCOUNTED_SUFFIX,
                             value=cost["value"].to_numpy(dtype=float) * factor)
    base = pd.concat([records, discounted], ignore_index=True)
    reps = sorted(records["replication"].unique())
    parts = [discounted[cols]]
    for m in CUMULATIVE_METRICS:
        rows = base[base["metric"] == m]
        if rows.empty:
            continue
        wide = rows.pivot_table(index=["geography", "replication"], columns="year",
                                values="value", aggfunc="sum")
        grid = pd.MultiIndex.from_product([sorted(rows["geography"].unique()), reps],
                                          names=["geography", "replication"])
        wide = wide.reindex(index=grid, columns=sorted(rows["year"].unique())).fillna(0.0)
        cum = wide.cumsum(axis=1).stack().rename("value").reset_index()
        cum["metric"] = f"cumulative.{m}"
        parts.append(cum[cols])
    return pd.concat(parts, ignore_index=True)


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, replications: int) -> pd.DataFrame:
    """B minus A per `metric, year, geography, replication`, as records (`value` = B - A).

    Additive metrics are differenced on the full grid of replications 0..replications-1
    over every (metric, year, geography) either scenario has, a missing record counting
    as 0. Ratio metrics are differenced only where both scenarios have a value."""
    cells = ["metric", "year", "geography"]
    wide = []
    for name, df in (("A", a), ("B", b)):
        dup = df.duplicated([*cells, "replication"])
        if dup.any():
            raise ValueError(f"duplicate records in scenario {name}, e.g. "
                             f"{df.loc[dup, [*cells, 'replication']].iloc[0].to_dict()}")
        wide.append(df.pivot(index=cells, columns="replication", values="value"))
    index = wide[0].index.union(wide[1].index)
    wa, wb = (w.reindex(index=index, columns=range(replications)).to_numpy(dtype=float, copy=True)
              for w in wide)
    additive = ~index.get_level_values("metric").isin(list(RATIO_METRICS))
    wa[additive] = np.nan_to_num(wa[additive], nan=0.0)
    wb[additive] = np.nan_to_num(wb[additive], nan=0.0)
    d = pd.DataFrame(wb - wa, index=index, columns=pd.RangeIndex(replications, name="replication"))
    diff = d.stack().dropna().rename("value").reset_index()  # NaN: a ratio missing in A or B
    return diff[["metric", "year", "geography", "value", "replication"]]


def summarise_difference(diff: pd.DataFrame) -> pd.DataFrame:
    """The ensemble summary of paired differences: `DIFFERENCE_COLUMNS`, one row per
    `metric, year, geography`, sorted by metric, geography, year."""
    return summarise(diff, "difference")[list(DIFFERENCE_COLUMNS)]


def _labels(a: LoadedScenario, b: LoadedScenario) -> tuple[str, str]:
    """Names for the `scenario` column: the scenario names, marked (A)/(B) if equal."""
    na, nb = a.scenario.name, b.scenario.name
    return (na, nb) if na != nb else (f"{na} (A)", f"{nb} (B)")


def _units(metric: str) -> str:
    base = metric.removeprefix("cumulative.").removesuffix(DISCOUNTED_SUFFIX)
    try:
        return metric_info(base).unit
    except CaresimError:
        return "GBP" if base.startswith("cost.") else ""


def run_compare(
    loaded_a: LoadedScenario,
    loaded_b: LoadedScenario,
    out: Path | None = None,
    replications: int | None = None,
    seed: int | None = None,
    scale: float | None = None,
    jobs: int = 1,
    force: bool = False,
    crn: bool = True,
    on_done: Callable[[ReplicationResult], None] | None = None,
    output_root: Path = Path("outputs"),
    central_effects: bool = False,
) -> CompareOutcome:
    """Run scenarios A and B with common random numbers and write the paired comparison.

    `replications`, `seed` (root seed) and `scale` (fraction of children simulated)
    default to scenario A's `run:` settings and apply to both. `on_done` is called after
    each replication of either scenario (2 x replications calls). Raises `CaresimError`
    if the scenarios differ in start, years or simulated LAs, or for bad options; nothing
    is written to the final folder unless everything succeeds. With `central_effects`,
    interventions' hazard ratios take their central values instead of one draw from their
    intervals per replication (isolates stochastic from effect-size uncertainty)."""
    check_comparable(loaded_a, loaded_b)
    reps, seed, scale = resolve_settings(loaded_a, replications, seed, scale)
    seed_b = seed if crn else seed + NO_CRN_SEED_OFFSET
    prep_a, prep_b = prepare(loaded_a), prepare(loaded_b)
    _check_same_las(prep_a, prep_b)
    sc_a = loaded_a.scenario
    label_a, label_b = _labels(loaded_a, loaded_b)
    rate, rate_source = discount_rate(loaded_a)
    first_year = sc_a.start.year + 1
    warnings = []
    if loaded_b.scenario.costs.price_base != sc_a.costs.price_base:
        warnings.append(f"price bases differ (A {sc_a.costs.price_base}, B "
                        f"{loaded_b.scenario.costs.price_base}): cost differences mix prices")
    rate_b = loaded_b.scenario.costs.discount_rate
    if rate_b is not None and float(rate_b.value) != rate:
        warnings.append(f"B's costs.discount_rate ({rate_b.value}) is not used: both "
                        f"scenarios are discounted at A's ({rate})")

    name = f"compare_{sc_a.name}_vs_{loaded_b.scenario.name}"
    with OutputFolder(out, name, force=force, root=output_root) as folder:
        t0 = time.perf_counter()
        runs = _run_both(prep_a, prep_b, seed, seed_b, reps, scale, jobs, on_done,
                         options={"draw_effects": not central_effects})
        wall = time.perf_counter() - t0
        run_a, run_b = runs
        ext_a = pd.concat([run_a.records, derived_records(run_a.records, rate, first_year)],
                          ignore_index=True)
        ext_b = pd.concat([run_b.records, derived_records(run_b.records, rate, first_year)],
                          ignore_index=True)
        difference = summarise_difference(paired_difference(ext_a, ext_b, reps))
        summary = pd.concat([summarise(ext_a, label_a), summarise(ext_b, label_b)],
                            ignore_index=True)
        write_csv(difference, folder.path / "difference.csv")
        write_csv(summary, folder.path / "summary.csv")
        both = pd.concat([run_a.records.assign(scenario=label_a),
                          run_b.records.assign(scenario=label_b)], ignore_index=True)
        write_parquet(both[["scenario", *run_a.records.columns]],
                      folder.path / "replications.parquet")
        figures = folder.path / "figures"
        overlay_fan_charts(summary, chart_history(prep_a), figures, FAN_METRICS,
                           geography=ENGLAND)
        for m in DIFFERENCE_FIGURES:
            if ((difference["metric"] == m) & (difference["geography"] == ENGLAND)).any():
                difference_chart(
                    difference, m, ENGLAND,
                    figures / f"difference_{m.replace('.', '_')}.png", unit=_units(m),
                    title=f"{m}, {ENGLAND}: {label_b} minus {label_a} (paired, {reps} replications)")
        manifest = {
            "kind": "compare",
            "caresim_version": caresim.__version__,
            "comparison": "B minus A, paired by replication (B - A per replication, then "
                          "summarised over replications); cost.total difference is the net cost",
            "scenarios": {
                "A": {"label": label_a, "path": str(loaded_a.path), **scenario_manifest(loaded_a),
                      "price_base": sc_a.costs.price_base},
                "B": {"label": label_b, "path": str(loaded_b.path), **scenario_manifest(loaded_b),
                      "price_base": loaded_b.scenario.costs.price_base},
            },
            "crn": crn,
            "effects": ("central values of every intervention's hazard ratios" if central_effects
                        else "each replication draws every intervention's hazard ratios from "
                             "their intervals"),
            "crn_note": ("common random numbers: A and B share the root seed and replication "
                         "numbers" if crn else
                         f"no common random numbers: B's root seed is A's + {NO_CRN_SEED_OFFSET}"),
            "seed": seed,
            "seeds": {"A": seed, "B": seed_b},
            "replications": reps,
            "scale": scale,
            "scale_note": scale_note(scale),
            "jobs": jobs,
            "geography": geography_manifest(prep_a.las),
            "calibration_vintage": CALIBRATION_VINTAGE,
            "price_base": sc_a.costs.price_base,
            "discount_rate": rate,
            "discount_rate_source": rate_source,
            "discount_first_year": first_year,
            "discount_note": (f"cost.<component>.discounted = cost x 1/(1+{rate:g})**(year - "
                              f"{first_year}), financial years ending 31 March"),
            "derived_metrics": {
                "discounted": "cost.<component>.discounted for every cost.<component>",
                "cumulative": [f"cumulative.{m}" for m in CUMULATIVE_METRICS],
            },
            "ratio_metrics_note": ("ratio metrics are differenced only in replications where "
                                   "both scenarios define them"),
            "warnings": warnings,
            "wall_seconds": round(wall, 3),
            "replication_stats": {
                "A": [{"replication": r.replication, **r.stats} for r in run_a.results],
                "B": [{"replication": r.replication, **r.stats} for r in run_b.results],
            },
            **runtime_manifest(),
            "started": dt.datetime.now().isoformat(timespec="seconds"),
        }
        write_manifest(folder.path, manifest)
    return CompareOutcome(folder.final, difference, summary, manifest)


def _run_both(prep_a: PreparedScenario, prep_b: PreparedScenario, seed_a: int, seed_b: int,
              reps: int, scale: float, jobs: int,
              on_done: Callable[[ReplicationResult], None] | None,
              options: dict | None = None,
              ) -> tuple[ScenarioRecords, ScenarioRecords]:
    """Run A then B; with jobs > 1 both share one worker pool (started once)."""
    if jobs <= 1:
        return (run_records(prep_a, seed_a, reps, scale, on_done=on_done, options=options),
                run_records(prep_b, seed_b, reps, scale, on_done=on_done, options=options))
    ex = ProcessPoolExecutor(max_workers=min(jobs, reps), mp_context=mp.get_context("forkserver"))
    try:
        return (run_records(prep_a, seed_a, reps, scale, on_done=on_done, executor=ex,
                            options=options),
                run_records(prep_b, seed_b, reps, scale, on_done=on_done, executor=ex,
                            options=options))
    finally:
        ex.shutdown(cancel_futures=True)
