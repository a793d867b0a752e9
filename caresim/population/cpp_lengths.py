"""Child protection plan lengths from DfE's stock of plans by length at 31 March.

The scenario's `pathway.child_protection_plan.sojourn` is a piecewise distribution (uniform
within bands). It is derived here, by least squares, from:

- the plans open at 31 March by length so far (`dfe:cpp_31_march_by_duration.csv`: 3 months
  or less, 3-6 months, 6-12 months, 1-2 years, 2 years or more) for every year 2019 to 2024,
  each against the plans started in the years before it (`dfe:cpp_starts.csv`, financial
  years from 2012-13: the stock at 31 March of year Y in band [a, b) is the integral over
  a <= t < b of the start rate t days earlier times the probability a plan lasts beyond t);
- the share of plans ending in 2019-20 that had lasted 2 years or more (3.6%, R249), which
  fixes how many plans reach 2 years; the stock over 2 years then fixes how long they go on.

Two choices the data alone do not make:

- The 2 years or more band is open. Beyond 2 years plans end at a constant rate (an
  exponential tail, whose mean is fitted), written as bands to 6 years: so some plans
  last beyond 3 years, as the open band allows.
- Plans also end when the child turns 18 (the model ends every stay at 18). The published
  stock is of plans that had not ended that way, so the distribution fitted is the one
  before that truncation: a share `age_out_share` of plans starts at 16-17 (uniform), whose
  survival is cut by the 18th birthday. In the baseline model 4.7% of plans end at 18,
  which is what 16% of plans starting at 16-17 gives (assumption `cpp_age_out_share`).

Babies' plans (unborn or under 1 at the start) are shorter in the model: the scenario's
`age_multiplier.under_1` (fitted, `baby_plan_pace`) multiplies their time. The published
bands are of all plans, so the distribution fitted here is the older children's, with a
share `baby_share` of the plans started taking it at `baby_pace` of the time: a plan lasts
beyond t with probability (1 - b) S(t) + b S(t / pace). Without this (b = 0, before
December 2026) the bands were fitted as every plan's, the babies' short plans took stock
away, and a uniform `scale` on every plan made up for it by lengthening the long plans too
(the 2 years or more band 35% to 84% high). The share is measured on the baseline
(`BABY_SHARE`, see its comment) and the pace is the fit's; the fitted `cpp_length_scale`
absorbs what a later fit moves.

`python -m caresim.population.cpp_lengths --shared /work/shared/data` prints the bands for
the scenario file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

DAYS = 365.25
#: DfE's bands of the stock by length so far (days): upper edges, the last open
STOCK_EDGES = (91.3, 182.6, 365.25, 730.5, np.inf)
STOCK_FIELDS = ("3_months_or_less", "more_than_3_months_6_months",
                "more_than_6_months_less_than_1_year", "1_year_less_than_2_years",
                "2_years_or_more")
#: band edges (days) of the fitted distribution: DfE's, then the open tail as bands
BODY_EDGES = (91.0, 182.0, 365.0, 730.0)
TAIL_EDGES = (912.0, 1095.0, 1278.0, 1461.0, 1826.0, 2191.0)
YEARS = tuple(range(2019, 2025))
#: plans ending in 2019-20 that had lasted 2 years or more (R249)
ENDED_2YPLUS = 0.036
AGE_OUT_SHARE = 0.16
#: share of CPP starts whose plan runs at the babies' pace: siblings' plans are family
#: draws, timed by the youngest sibling's age, so this is the share of plans started with a
#: baby (unborn or under 1) in the family, 0.160 (10.8% of plans are a baby's own), measured
#: on the baseline by `python -m caresim.analysis.plan_pace` (3 years, scale 0.1, seed 1)
BABY_SHARE = 0.16
#: babies' pace: the fitted baby_plan_pace (scenario's age_multiplier.under_1) of the
#: calibration of 6 December 2026
BABY_PACE = 0.162


@dataclass(frozen=True)
class PlanLengths:
    edges: np.ndarray  # band upper edges (days)
    p: np.ndarray  # probability of ending in each band
    tail_mean: float  # mean time beyond 2 years of the plans that reach 2 years (days)

    @property
    def mean(self) -> float:
        lo = np.concatenate([[0.0], self.edges[:-1]])
        return float((self.p * (lo + self.edges) / 2).sum())

    def bands(self, digits: int = 4) -> list[dict]:
        p = np.round(self.p, digits)
        p[np.argmax(p)] += round(1.0 - p.sum(), digits)  # sums to 1 exactly
        keep = np.flatnonzero(p > 0)[-1] + 1  # no empty bands at the end
        return [{"upto": float(u), "p": float(round(q, digits))}
                for u, q in zip(self.edges[:keep], p[:keep])]

    def survival(self, t: np.ndarray) -> np.ndarray:
        cum = np.concatenate([[0.0], np.cumsum(self.p)])
        return 1.0 - np.interp(t, np.concatenate([[0.0], self.edges]), cum)


def national_series(dfe_dir: Path) -> tuple[pd.Series, pd.DataFrame]:
    """England's CPP starts by year, and the stock at 31 March by length band, by year."""
    def national(name: str) -> pd.DataFrame:
        d = pd.read_csv(dfe_dir / name, dtype=str)
        d = d[d.geographic_level == "National"].drop_duplicates("time_period")
        return d.set_index(d.time_period.astype(int)).sort_index()

    starts = national("cpp_starts.csv").CPP_start.astype(float)
    stock = national("cpp_31_march_by_duration.csv")[list(STOCK_FIELDS)].astype(float)
    return starts, stock


def surviving(lengths: PlanLengths, t: np.ndarray, age_out_share: float = 0.0,
              baby_share: float = 0.0, baby_pace: float = 1.0) -> np.ndarray:
    """Share of all plans started that are still open t days on: the older children's
    plans on `lengths`, a share `age_out_share` of all plans (starting at 16-17) cut by the
    18th birthday within two years, and babies' plans at `baby_pace` of the time."""
    older = lengths.survival(t) * (1.0 - baby_share - age_out_share * np.minimum(t / 730.5, 1.0))
    return older + baby_share * lengths.survival(t / baby_pace)


def stock_by_length(lengths: PlanLengths, starts: pd.Series, year: int,
                    age_out_share: float = 0.0, baby_share: float = 0.0,
                    baby_pace: float = 1.0) -> np.ndarray:
    """Plans open at 31 March of `year` by DfE length band, from the starts of the years
    before (a year's starts spread evenly over it) and the plan lengths."""
    t = np.arange(0.0, float(lengths.edges[-1]), 1.0) + 0.5
    fy = np.clip(year - np.floor(t / DAYS).astype(int), starts.index.min(), starts.index.max())
    rate = starts.loc[fy].to_numpy() / DAYS
    alive = surviving(lengths, t, age_out_share, baby_share, baby_pace)
    out, lo = [], 0.0
    for hi in STOCK_EDGES:
        m = (t >= lo) & (t < hi)
        out.append(float((rate[m] * alive[m]).sum()))
        lo = hi
    return np.array(out)


def _lengths(x: np.ndarray) -> PlanLengths:
    """Parameters -> distribution: body band weights and 2y+ mass (softmax), tail mean."""
    w = np.exp(x[:5]) / np.exp(x[:5]).sum()
    mu = float(np.exp(x[5]))
    edges = np.array(BODY_EDGES + TAIL_EDGES)
    tail_lo = np.array((730.0,) + TAIL_EDGES[:-1]) - 730.0
    tail_hi = np.array(TAIL_EDGES) - 730.0
    share = np.exp(-tail_lo / mu) - np.exp(-tail_hi / mu)
    share[-1] += np.exp(-tail_hi[-1] / mu)  # the rest ends in the last band
    return PlanLengths(edges, np.concatenate([w[:4], w[4] * share]), mu)


def fit(starts: pd.Series, stock: pd.DataFrame, years=YEARS, age_out_share: float = AGE_OUT_SHARE,
        ended_2yplus: float = ENDED_2YPLUS, baby_share: float = BABY_SHARE,
        baby_pace: float = BABY_PACE) -> PlanLengths:
    """Least squares (Poisson-scaled) on every year's stock by band, plus the 2019-20 share
    of endings after 2 years or more; the older children's plan lengths, with babies' plans
    (a share `baby_share` of starts) at `baby_pace` of their time."""
    mix = dict(age_out_share=age_out_share, baby_share=baby_share, baby_pace=baby_pace)

    def residuals(x):
        d = _lengths(x)
        r = [(stock_by_length(d, starts, y, **mix) - stock.loc[y].to_numpy())
             / np.sqrt(stock.loc[y].to_numpy()) for y in years]
        ended = surviving(d, np.array([730.0]), **mix)[0]
        r.append(np.array([(ended - ended_2yplus) / ended_2yplus * 30.0]))
        return np.concatenate(r)

    x0 = np.concatenate([np.log([0.06, 0.3, 0.43, 0.17, 0.04]), [np.log(180.0)]])
    return _lengths(least_squares(residuals, x0).x)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--age-out-share", type=float, default=AGE_OUT_SHARE)
    ap.add_argument("--baby-share", type=float, default=BABY_SHARE)
    ap.add_argument("--baby-pace", type=float, default=BABY_PACE)
    a = ap.parse_args(argv)
    starts, stock = national_series(a.shared / "dfe")
    mix = dict(age_out_share=a.age_out_share, baby_share=a.baby_share, baby_pace=a.baby_pace)
    d = fit(starts, stock, **mix)
    print(f"mean {d.mean:.0f} days; mean beyond 2 years {d.tail_mean:.0f} days")
    for b in d.bands():
        print(f"        - {{upto: {b['upto']:.0f}, p: {b['p']}}}")
    for y in YEARS:
        m = stock_by_length(d, starts, y, **mix)
        print(y, np.round(m), np.round(m / stock.loc[y].to_numpy() - 1, 3))


if __name__ == "__main__":
    main()
