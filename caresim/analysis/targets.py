"""Calibration targets: published figures against simulated values.

`calibration/targets.csv.gz` (built by `caresim.population.targets`) holds one published
figure per row with its tolerance. A target's metric is a model metric (`looked_after`) or a
ratio of two in percent (`rereferrals/referrals`). `fit_table` lines each target up with the
simulated ensemble mean and says whether it is within its tolerance:

- counts (`stock`, `flow`): |simulated / published - 1| <= tolerance (relative)
- `share` (percent) and `duration` (weeks): |simulated - published| <= tolerance (absolute)
- a `>` or `<` figure is a one-sided bound: simulated must be on its side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from caresim.errors import CaresimError

FIT_COLUMNS = ["target_id", "metric", "year", "published", "simulated", "rel_error"]
EXTRA_COLUMNS = ["geography", "kind", "unit", "qualifier", "tolerance", "error",
                 "within_tolerance", "in_training", "source_id"]


def load_targets(path: Path | str) -> pd.DataFrame:
    """Read targets.csv; qualifier blanks become ''."""
    try:
        t = pd.read_csv(path, dtype={"qualifier": str, "source_id": str})
    except OSError as exc:
        raise CaresimError(f"{path}: cannot read the targets: {exc}") from exc
    t["qualifier"] = t["qualifier"].fillna("")
    return t


def mean_values(records: pd.DataFrame) -> pd.Series:
    """Ensemble means indexed by (metric, year, geography) from per-replication rows
    (columns replication, metric, year, geography, value)."""
    return records.groupby(["metric", "year", "geography"])["value"].mean()


def simulated_values(targets: pd.DataFrame, means: pd.Series) -> pd.Series:
    """The simulated value of each target (NaN where the model has no such metric)."""
    lookup = means.to_dict()

    def total(metrics: str, year: int, geo: str) -> float | None:
        values = [lookup.get((m, year, geo)) for m in metrics.split("+")]
        return None if any(v is None for v in values) else float(sum(values))

    def one(metric: str, year: int, geo: str) -> float:
        if "/" in metric:
            num, den = metric.split("/", 1)
            a, b = total(num, year, geo), total(den, year, geo)
            if a is None or b is None or b == 0:
                return np.nan
            return 100.0 * a / b
        return lookup.get((metric, year, geo), np.nan)

    return pd.Series([one(m, int(y), g) for m, y, g in
                      zip(targets["metric"], targets["year"], targets["geography"])],
                     index=targets.index, dtype=float)


def fit_table(targets: pd.DataFrame, simulated: pd.Series,
              training: tuple[int, int] | None = None) -> pd.DataFrame:
    """Targets with simulated values, errors and the within-tolerance verdict."""
    t = targets.copy()
    t["simulated"] = simulated
    t["error"] = t["simulated"] - t["published"]
    with np.errstate(divide="ignore", invalid="ignore"):
        t["rel_error"] = t["error"] / t["published"]
    relative = t["kind"].isin(["stock", "flow"])
    dev = np.where(relative, t["rel_error"].abs(), t["error"].abs())
    ok = dev <= t["tolerance"] + 1e-12
    ok = np.where(t["qualifier"] == ">", t["simulated"] >= t["published"], ok)
    ok = np.where(t["qualifier"] == "<", t["simulated"] <= t["published"], ok)
    t["within_tolerance"] = np.where(t["simulated"].isna(), "not simulated",
                                     np.where(ok, "yes", "no"))
    if training is None:
        t["in_training"] = False
    else:
        t["in_training"] = t["year"].between(*training)
    return t[FIT_COLUMNS + EXTRA_COLUMNS].sort_values(["metric", "geography", "year"]).reset_index(drop=True)
