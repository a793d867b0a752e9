"""First-year check: does the first simulated year look like the latest published year?

A quick sanity check on a run's starting point, for England, on the headline volumes a
reader will know: referrals, children in need, CPP starts, care starts and ceased, and
children looked after. It compares the ensemble mean of the first simulated year with a
published year (usually the last one before the simulation starts).
"""

from __future__ import annotations

import math

import pandas as pd

from caresim.results.summary import ENGLAND

FIRST_YEAR_METRICS: tuple[str, ...] = (
    "referrals",
    "child_in_need",
    "cpp_starts",
    "care_starts",
    "care_ceased",
    "looked_after",
)
FIRST_YEAR_COLUMNS: tuple[str, ...] = (
    "metric", "published_year", "published", "source_id", "simulated_year",
    "simulated_mean", "simulated_p05", "simulated_p95", "rel_diff", "within_tolerance",
)


def _published(history: pd.DataFrame, metric: str, year: int) -> tuple[float, str]:
    """The published England value and its source id; unqualified figures first, then by
    source id, when several sources give the year."""
    h = history[
        (history["metric"] == metric) & (history["year"] == year)
        & (history["geography"] == ENGLAND) & history["value"].notna()
    ]
    if h.empty:
        return math.nan, ""
    h = h.assign(_qualified=h["qualifier"].fillna("").astype(str).str.strip() != "")
    row = h.sort_values(["_qualified", "source_id"], kind="mergesort").iloc[0]
    return float(row["value"]), str(row["source_id"])


def _simulated(summary: pd.DataFrame, metric: str, year: int) -> tuple[float, float, float]:
    s = summary[
        (summary["metric"] == metric) & (summary["year"] == year)
        & (summary["geography"] == ENGLAND)
    ]
    if len(s) > 1:
        raise ValueError(f"summary has {len(s)} rows for {metric} {year} England: one scenario only")
    if s.empty:
        return math.nan, math.nan, math.nan
    row = s.iloc[0]
    return float(row["mean"]), float(row["p05"]), float(row["p95"])


def first_year_check(summary: pd.DataFrame, history: pd.DataFrame, first_year: int,
                     published_year: int, tolerance: float = 0.15) -> pd.DataFrame:
    """Compare, for England and each of `FIRST_YEAR_METRICS`, the simulated mean of
    `first_year` with the published value of `published_year` (financial years ending
    31 March; values in the metric's unit, e.g. children).

    `rel_diff` = (simulated_mean - published) / published, a fraction (0.2 = 20% high);
    `within_tolerance` is `abs(rel_diff) <= tolerance`. A metric missing from either
    table still gets a row, with NaN values and `within_tolerance` False, so the gap is
    visible. Columns are `FIRST_YEAR_COLUMNS`, one row per metric in the order above.
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be a non-negative fraction, got {tolerance}")
    rows = []
    for metric in FIRST_YEAR_METRICS:
        published, source = _published(history, metric, published_year)
        mean, p05, p95 = _simulated(summary, metric, first_year)
        if published == 0:
            rel = 0.0 if mean == 0 else math.nan
        else:
            rel = (mean - published) / published
        rows.append({
            "metric": metric,
            "published_year": int(published_year),
            "published": published,
            "source_id": source,
            "simulated_year": int(first_year),
            "simulated_mean": mean,
            "simulated_p05": p05,
            "simulated_p95": p95,
            "rel_diff": rel,
            "within_tolerance": bool(not math.isnan(rel) and abs(rel) <= tolerance),
        })
    return pd.DataFrame(rows, columns=list(FIRST_YEAR_COLUMNS))
