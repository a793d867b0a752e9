"""From per-replication records to the ensemble summary of the output contract.

The pipeline is `add_geographies` -> `add_ratios` -> `summarise` -> `write_csv`:

- records (one row per `metric, year, geography, replication`, `value` in the metric's
  unit, already scaled up to real children) are summed from LAs to regions and England;
- the court ratios are then computed from their summed components at every geography (a
  ratio is never summed or averaged across LAs);
- the ensemble summary gives, per `metric, year, geography`, the mean and the 5th, 50th
  and 95th percentiles across replications.

Everything here is deterministic: the same records, in any row order, give the same
summary and a byte-identical CSV.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from caresim.results.metrics import RATIO_METRICS

ENGLAND = "England"
RECORD_COLUMNS: tuple[str, ...] = ("metric", "year", "geography", "value", "replication")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "scenario", "metric", "year", "geography", "mean", "p05", "p50", "p95", "replications",
)
QUANTILES: tuple[float, ...] = (0.05, 0.50, 0.95)

COMPLETED = "proceedings_completed_cases"
WEEKS_TOTAL = "proceedings_weeks_total"
WITHIN_26 = "proceedings_within_26_weeks_cases"
MEAN_WEEKS = "proceedings_mean_weeks"
PCT_WITHIN_26 = "proceedings_within_26_weeks"


def _require(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lack columns {missing}; they have {list(df.columns)}")


def add_geographies(records: pd.DataFrame, la_regions: pd.Series) -> pd.DataFrame:
    """Return `records` plus the same metrics summed to each region and to `England`.

    `records` hold LA-level rows (`geography` an ONS LA code) of additive metrics, for
    every replication; `la_regions` maps ONS LA code -> region name. Sums are taken per
    replication, metric, year (and any other column except `geography` and `value`); an
    LA with no row for a metric contributes zero. Raises `ValueError` (a bug, not a user
    mistake) for LAs missing from `la_regions` or for ratio metrics, which are not
    additive: call `add_ratios` after this function.
    """
    _require(records, RECORD_COLUMNS, "records")
    ratios = sorted(set(records["metric"].unique()) & RATIO_METRICS)
    if ratios:
        raise ValueError(f"ratio metrics {ratios} are not additive: add them after summing")
    if ENGLAND in set(la_regions.values) or la_regions.index.has_duplicates:
        raise ValueError("la_regions must map each LA code once, to a region other than England")
    unknown = sorted(set(records["geography"].unique()) - set(la_regions.index))
    if unknown:
        raise ValueError(f"geographies with no region in la_regions: {unknown[:10]}")
    keys = [c for c in records.columns if c not in ("geography", "value")]
    regional = (
        records.assign(geography=records["geography"].map(la_regions))
        .groupby([*keys, "geography"], sort=True, dropna=False)["value"]
        .sum()
        .reset_index()
    )
    england = (
        records.groupby(keys, sort=True, dropna=False)["value"]
        .sum()
        .reset_index()
        .assign(geography=ENGLAND)
    )
    cols = list(records.columns)
    return pd.concat([records, regional[cols], england[cols]], ignore_index=True)


def add_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Append the court ratios, computed from their components, to `df`.

    Per replication, year and geography (and any other column except `metric` and
    `value`): `proceedings_mean_weeks` = `proceedings_weeks_total` /
    `proceedings_completed_cases` (weeks) and `proceedings_within_26_weeks` = 100 x
    `proceedings_within_26_weeks_cases` / `proceedings_completed_cases` (percent). Rows
    with no completed cases get no ratio (rather than NaN). Ratio rows already in `df`
    are replaced, so the function is idempotent. Call it after `add_geographies`.
    """
    _require(df, ("metric", "value"), "records")
    base = df[~df["metric"].isin(RATIO_METRICS)]
    comp = base[base["metric"].isin((COMPLETED, WEEKS_TOTAL, WITHIN_26))]
    if comp.empty or not (comp["metric"] == COMPLETED).any():
        return base.reset_index(drop=True)
    keys = [c for c in df.columns if c not in ("metric", "value")]
    wide = comp.groupby([*keys, "metric"], sort=True, dropna=False)["value"].sum().unstack("metric")
    completed = wide[COMPLETED]
    has_cases = completed.fillna(0.0) > 0
    weeks = wide[WEEKS_TOTAL] if WEEKS_TOTAL in wide else pd.Series(np.nan, index=wide.index)
    if (has_cases & weeks.isna()).any():
        raise ValueError(f"{WEEKS_TOTAL} is missing where {COMPLETED} > 0")
    within = wide[WITHIN_26].fillna(0.0) if WITHIN_26 in wide else 0.0 * completed
    n = completed[has_cases]
    ratios = pd.concat(
        [
            (weeks[has_cases] / n).rename(MEAN_WEEKS),
            (100.0 * within[has_cases] / n).rename(PCT_WITHIN_26),
        ],
        axis=1,
    )
    ratios.columns.name = "metric"
    long = ratios.stack().rename("value").reset_index()
    return pd.concat([base, long[list(df.columns)]], ignore_index=True)


def summarise(df: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """The ensemble summary: one row per `metric, year, geography` with the mean and the
    5th, 50th and 95th percentiles of `value` across replications (numpy's default
    linear interpolation) and the number of replications behind them.

    For additive metrics a replication with no row counts as zero (the engine may omit
    zero records), so `replications` is the number of replications in `df`. A ratio is
    summarised over the replications where it is defined (some completed cases), and
    `replications` says how many those were. Columns are exactly `SUMMARY_COLUMNS`;
    rows are sorted by metric, geography, year. Raises `ValueError` on duplicate rows or
    NaN values (bugs upstream).
    """
    _require(df, RECORD_COLUMNS, "records")
    keys = ["metric", "year", "geography"]
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SUMMARY_COLUMNS})
    if df["value"].isna().any():
        raise ValueError("records contain NaN values")
    dup = df.duplicated([*keys, "replication"])
    if dup.any():
        raise ValueError(f"duplicate records, e.g. {df.loc[dup, keys + ['replication']].iloc[0].to_dict()}")
    wide = df.pivot(index=keys, columns="replication", values="value").sort_index()
    values = wide.to_numpy(dtype=float, copy=True)
    additive = ~wide.index.get_level_values("metric").isin(list(RATIO_METRICS))
    values[additive] = np.nan_to_num(values[additive], nan=0.0)
    present = ~np.isnan(values)
    count = present.sum(axis=1)
    mean = np.empty(len(values))
    qs = np.empty((len(QUANTILES), len(values)))
    full = count == values.shape[1]
    if full.any():
        mean[full] = values[full].mean(axis=1)
        qs[:, full] = np.quantile(values[full], QUANTILES, axis=1)
    for i in np.flatnonzero(~full):  # ratios undefined in some replications: few rows
        row = values[i, present[i]]
        mean[i] = row.mean()
        qs[:, i] = np.quantile(row, QUANTILES)
    out = wide.index.to_frame(index=False)
    out.insert(0, "scenario", scenario)
    out["mean"] = mean
    out["p05"], out["p50"], out["p95"] = qs
    out["replications"] = count.astype("int64")
    out["year"] = out["year"].astype("int64")
    return out.sort_values(["metric", "geography", "year"], kind="mergesort").reset_index(drop=True)[
        list(SUMMARY_COLUMNS)
    ]


def _dtype(column: str) -> str:
    if column in ("year", "replications"):
        return "int64"
    if column in ("mean", "p05", "p50", "p95"):
        return "float64"
    return "str"


def format_float(x: float) -> str:
    """The CSV text of one float: the finer of 6 significant digits and one decimal place.

    So a count of 80,000 children reads `80000` or `80000.4` (never rounded to 8e4), a mean
    of 38.123456 weeks reads `38.1235`, and small ratios keep 6 significant digits.
    Trailing zeros are dropped; NaN is written empty, -0 as 0, infinities as `inf`/`-inf`.
    """
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    decimals = max(1, 5 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to `path` as UTF-8 CSV with `\\n` line ends, no index, rows in the
    given order, and every float column formatted by `format_float` (the finer of 6
    significant digits and 0.1). Used for every CSV caresim writes, so the same input
    gives a byte-identical file. Creates the parent folder. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column].dtype):
            out[column] = [format_float(float(v)) for v in out[column].to_numpy()]
    out.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return path
