"""Calibration targets: published figures against simulated values.

`calibration/targets.csv.gz` (built by `caresim.population.targets`) holds one published
figure per row with its tolerance. A target's metric is a model metric (`looked_after`) or a
ratio of two in percent (`rereferrals/referrals`). `fit_table` lines each target up with the
simulated ensemble mean and says whether it is within its tolerance:

- counts (`stock`, `flow`): |simulated / published - 1| <= tolerance (relative)
- `share` (percent) and `duration` (weeks): |simulated - published| <= tolerance (absolute)
- a `>` or `<` figure is a one-sided bound: simulated must be on its side.

A target with a `period` (MoJ's and Cafcass's court figures, published for a run of whole
quarters within a calendar year: `Jan-Mar 2021`, `Apr-Sep 2023`, `Jan-Dec 2021`) is compared
with the model over the same months, from the court's issues and completions recorded by
quarter of the financial year (`<metric>.<quarter>`): a count is the quarters' sum, a court
ratio (PERIOD_RATIOS) the quarters' summed numerator over their summed denominator. Its
`year` is the financial year containing the period's end. `cafcass.proceedings_mean_weeks`
(Cafcass's average duration of its involvement in s31 proceedings) is compared with the
model's `proceedings_mean_weeks`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from caresim.errors import CaresimError
from caresim.results.metrics import FAMILIES, QUARTERS
from caresim.results.summary import COMPLETED, MEAN_WEEKS, PCT_WITHIN_26, WEEKS_TOTAL, WITHIN_26

FIT_COLUMNS = ["target_id", "metric", "year", "published", "simulated", "rel_error"]
EXTRA_COLUMNS = ["period", "geography", "kind", "unit", "qualifier", "tolerance", "error",
                 "within_tolerance", "in_training", "source_id"]


#: court ratios by period: metric -> (numerator, denominator, factor)
PERIOD_RATIOS = {
    MEAN_WEEKS: (WEEKS_TOTAL, COMPLETED, 1.0),
    PCT_WITHIN_26: (WITHIN_26, COMPLETED, 100.0),
}
#: target metrics that are another publisher's measure of a model metric
SAME_AS = {"cafcass.proceedings_mean_weeks": "proceedings_mean_weeks"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PERIOD = re.compile(r"([A-Z][a-z]{2})-([A-Z][a-z]{2}) (\d{4})")


def period_quarters(period: str) -> list[tuple[int, str]]:
    """The (financial year, quarter) pairs making up a period `Mmm-Mmm YYYY` that is a run of
    whole quarters within one calendar year: a quarter (`Jan-Mar 2021`), a half year
    (`Apr-Sep 2023`), three quarters or the calendar year (`Jan-Dec 2021`).

    >>> period_quarters("Jan-Mar 2021")
    [(2021, 'jan_mar')]
    >>> period_quarters("Jan-Dec 2021")[1]
    (2022, 'apr_jun')
    >>> period_quarters("Apr-Sep 2023")
    [(2024, 'apr_jun'), (2024, 'jul_sep')]
    """
    m = _PERIOD.fullmatch(period)
    if not m or m.group(1) not in MONTHS or m.group(2) not in MONTHS:
        raise ValueError(f"period {period!r} is not of the form 'Jan-Mar 2021'")
    first, last, year = MONTHS.index(m.group(1)), MONTHS.index(m.group(2)), int(m.group(3))
    if first % 3 or last % 3 != 2 or last < first:
        raise ValueError(f"period {period!r} is not a run of whole quarters within a calendar year")
    out = []
    for month in range(first, last + 1, 3):  # month 0 = January
        fy = year if month < 3 else year + 1
        out.append((fy, QUARTERS[(month - 3) % 12 // 3]))
    return out


def period_position(period: str) -> float:
    """Where a period's middle falls on the axis on which financial year Y is plotted at Y
    (its middle, 1 October Y-1): `Jan-Mar 2021` -> 2021.375."""
    quarters = period_quarters(period)
    mid = sum(fy - 0.5 + (QUARTERS.index(q) + 0.5) / 4 for fy, q in quarters) / len(quarters)
    return round(mid, 4)


def is_la(geography: pd.Series) -> pd.Series:
    """Which geographies are local authorities: LAs go by their nine-character codes
    (E06..., E08..., E09..., E10...), regions and England by name."""
    return geography.str.fullmatch(r"E\d{8}")


def load_targets(path: Path | str) -> pd.DataFrame:
    """Read targets.csv; qualifier and period blanks become ''."""
    try:
        t = pd.read_csv(path, dtype={"qualifier": str, "source_id": str, "period": str})
    except OSError as exc:
        raise CaresimError(f"{path}: cannot read the targets: {exc}") from exc
    t["qualifier"] = t["qualifier"].fillna("")
    t["period"] = t["period"].fillna("") if "period" in t else ""
    return t


def mean_values(records: pd.DataFrame) -> pd.Series:
    """Ensemble means indexed by (metric, year, geography) from per-replication rows
    (columns replication, metric, year, geography, value)."""
    return records.groupby(["metric", "year", "geography"])["value"].mean()


def simulated_values(targets: pd.DataFrame, means: pd.Series) -> pd.Series:
    """The simulated value of each target (NaN where the model has no such metric)."""
    lookup = means.to_dict()

    def summed(keys: list[tuple[str, int, str]], missing: float | None = None) -> float | None:
        """The sum of the values at `keys`; None if one is missing (not simulated)."""
        values = [lookup.get(key, missing) for key in keys]
        return None if any(v is None for v in values) else float(sum(values))

    def total(metrics: str, year: int, geo: str) -> float | None:
        return summed([(m, year, geo) for m in metrics.split("+")])

    def by_period(metric: str, period: str, geo: str) -> float:
        quarters = period_quarters(period)

        def over(name: str, missing: float | None = None) -> float | None:
            return summed([(f"{name}.{q}", fy, geo) for fy, q in quarters], missing)

        if metric in PERIOD_RATIOS:  # the quarters' summed numerator over their summed denominator
            num, den, factor = PERIOD_RATIOS[metric]
            n = over(den)
            return factor * over(num, 0.0) / n if n else np.nan
        if f"{metric}.<quarter>" in FAMILIES:  # a count: the quarters' sum
            value = over(metric)
            return np.nan if value is None else value
        raise ValueError(f"no period comparison for {metric!r} (period {period!r})")

    def one(metric: str, year: int, geo: str, period: str) -> float:
        metric = SAME_AS.get(metric, metric)
        if period:
            return by_period(metric, period, geo)
        if "/" in metric:
            num, den = metric.split("/", 1)
            a, b = total(num, year, geo), total(den, year, geo)
            if a is None or b is None or b == 0:
                return np.nan
            return 100.0 * a / b
        return lookup.get((metric, year, geo), np.nan)

    periods = targets["period"] if "period" in targets else [""] * len(targets)
    return pd.Series([one(m, int(y), g, p) for m, y, g, p in
                      zip(targets["metric"], targets["year"], targets["geography"], periods)],
                     index=targets.index, dtype=float)


def fit_table(targets: pd.DataFrame, simulated: pd.Series,
              training: tuple[int, int] | None = None) -> pd.DataFrame:
    """Targets with simulated values, errors and the within-tolerance verdict."""
    t = targets.copy()
    if "period" not in t:
        t["period"] = ""
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
    return t[FIT_COLUMNS + EXTRA_COLUMNS].sort_values(["metric", "geography", "year", "period"]).reset_index(drop=True)
