"""Care leavers by age on ceasing, reason and legal status, on a scenario's own simulation.

DfE publishes leavers by age on ceasing and by reason, but not one by the other, nor by
legal status or time in care; the model's misfits in leaving care (too few under 5 and at
18, too many aged 5 to 17 leaving for "other" reasons, docs/calibration.md) need the
cross-tables to be traced. This runs one replication and tabulates every period of care
that ends:

    python -m caresim.analysis.leavers [--scenario scenarios/baseline.yaml]
        [--years 3] [--scale 0.1] [--seed 1]

It prints leavers a year (counts scaled back up) by age band on ceasing and reason, and by
age band and legal status at the end, and the share of the last year's leavers whose
period of care lasted under 2 weeks and under a year (published for 2012-13: 11% and 46%,
R102, a secondary source).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from caresim.analysis.one_run import one_run_arguments
from caresim.engine.simulation import CEASED_REASON, DAYS_PER_YEAR, S, Simulation
from caresim.pathway.compiled import LEGAL_INDEX, age_band
from caresim.results.metrics import START_AGE_BANDS
from caresim.scenario.model import Scenario

LEGAL_NAMES = {v: k for k, v in LEGAL_INDEX.items()}
#: age bands on ceasing: DfE's under-18 bands (16 and 17 together) and 18
AGE_LABELS = (*START_AGE_BANDS, "18")


class _Leavers(Simulation):
    """A simulation that notes the start of every period of care and every end."""

    def __init__(self, *args, **kwargs):
        self.care_began = np.empty(0)  # when each child's period of care began (NaN: unknown)
        self.ends: list[tuple[np.ndarray, ...]] = []
        super().__init__(*args, **kwargs)

    def _began(self) -> np.ndarray:
        n = self.kids.birth.size
        if self.care_began.size < n:  # the children's arrays grew
            self.care_began = np.concatenate([self.care_began, np.full(n - self.care_began.size, np.nan)])
        return self.care_began

    def _start_care(self, idx, t, legal):
        self._began()[idx] = t
        super()._start_care(idx, t, legal)

    def _enter(self, idx, t, dest, legal):
        k = self.kids
        ceased = self._leaving_care(idx, dest)
        if ceased.any():
            ci = idx[ceased]
            self.ends.append((t[ceased].copy(), (t[ceased] - k.birth[ci]) / DAYS_PER_YEAR,
                              dest[ceased].copy(), k.legal[ci].copy(), t[ceased] - self._began()[ci]))
        super()._enter(idx, t, dest, legal)


@dataclass(frozen=True)
class Leavers:
    ends: pd.DataFrame  # one row a period of care ended: t, age, reason, legal, days, band
    years: float  # run length, for counts a year
    scale: float
    records: pd.DataFrame  # the run's own records (metric, year, geography, value)

    def per_year(self, by: str) -> pd.DataFrame:
        """Leavers a year (scaled up) by age band on ceasing and `by` (reason or legal)."""
        table = pd.crosstab(self.ends["band"], self.ends[by]).reindex(AGE_LABELS, fill_value=0)
        return table / (self.years * self.scale)

    def short_stay_shares(self) -> tuple[float, float, int]:
        """Shares of the leavers of the run's last year who had been in care under 2 weeks
        and under a year, and their number. A period begun before the run (the starting
        stock's) had lasted over a year by then if the run is 2 years or longer, so the
        shares are of all the year's leavers, not only of those whose start is known
        (those alone would leave out every long stay)."""
        if self.years < 2:
            raise ValueError("the shares need a run of 2 years or more")
        last = self.ends[self.ends["t"] >= (self.years - 1) * DAYS_PER_YEAR]
        days = last["days"]  # NaN: begun before the run, over a year ago
        return float((days < 14).mean()), float((days < DAYS_PER_YEAR).mean()), len(last)


def leavers(scenario: Scenario, la_inputs: pd.DataFrame, seed: int = 1, scale: float = 0.1,
            years: int = 3) -> Leavers:
    """Run one replication of `scenario` for `years` and tabulate its care leavers."""
    sim = _Leavers(scenario.model_copy(update={"years": years}), la_inputs, seed=seed,
                   replication=0, scale=scale)
    records = sim.run()
    if not sim.ends:
        raise ValueError("no period of care ended in the run")
    t, age, dest, legal, days = (np.concatenate(c) for c in zip(*sim.ends))
    reason = np.array([CEASED_REASON.get(int(d), "other") for d in dest.tolist()])
    band = np.where(dest == S["left_care"], len(START_AGE_BANDS), age_band(age))
    ends = pd.DataFrame({"t": t, "age": age, "reason": reason,
                         "legal": [LEGAL_NAMES.get(int(g), "none") for g in legal.tolist()],
                         "days": days, "band": np.asarray(AGE_LABELS)[band]})
    return Leavers(ends, float(years), scale, records)


def main(argv: list[str] | None = None) -> None:
    a, scenario, la_inputs = one_run_arguments(__doc__.splitlines()[0], argv)
    out = leavers(scenario, la_inputs, a.seed, a.scale, a.years)
    print(f"care leavers a year, {a.years} years at scale {a.scale:g}, seed {a.seed}")
    for by in ("reason", "legal"):
        table = out.per_year(by)
        table["all"] = table.sum(axis=1)
        print(f"\nby age on ceasing and {by}:")
        print(table.round(0).astype(int).to_string())
    under_2w, under_1y, n = out.short_stay_shares()
    print(f"\nleavers of the run's last year in care under 2 weeks: {under_2w:.1%}; under a year: "
          f"{under_1y:.1%} (of {n:,} simulated; 2012-13: 11% and 46%, R102)")


if __name__ == "__main__":
    main()
