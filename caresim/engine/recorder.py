"""Recorders: flows per financial year, stocks at 31 March, costs — per LA.

`year` in the records is the financial year ending 31 March of that year: a stock is
counted at 31 March `year` (the end of the day, i.e. at the 1 April boundary), a flow over
April year-1 to March year. Everything is kept per LA index as float arrays and turned
into long records once at the end.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from caresim.pathway.compiled import DAYS_PER_YEAR, LEGAL_INDEX, STATE_INDEX, age_band
from caresim.results.metrics import QUARTERS, START_AGE_BANDS
from caresim.scenario.model import LEGAL_STATUSES, PLACEMENTS, STATES

if TYPE_CHECKING:
    from caresim.engine.children import Children
    from caresim.engine.simulation import Simulation

S = STATE_INDEX
STOCK_STATES = {
    "child_in_need.plan": "child_in_need",
    "child_protection_plan": "child_protection_plan",
    "pre_proceedings": "pre_proceedings",
    "in_proceedings": "proceedings",
    "early_help": "early_help",
    "returned_home": "returned_home",
    "special_guardianship": "special_guardianship",
    "child_arrangements": "child_arrangements",
}
CPP_BANDS = (("le3m", -np.inf, 91.3), ("3to6m", 91.3, 182.6), ("6to12m", 182.6, 365.25),
             ("1to2y", 365.25, 730.5), ("2yplus", 730.5, np.inf))
DFE_CIN = [S[s] for s in ("referral", "child_in_need", "s47_enquiry", "child_protection_plan",
                          "pre_proceedings", "proceedings", "looked_after")]


class Recorder:
    """Accumulates flows (n_years x n_la) and stocks ((n_years + 1) x n_la)."""

    def __init__(self, edges: np.ndarray, quarter_edges: np.ndarray, n_la: int, first_year: int,
                 audit: bool = False):
        self.audit = audit
        self.edges = edges
        # starts of the financial years' quarters (1 April, 1 July, 1 October, 1 January)
        self.quarter_edges = quarter_edges
        self.by_quarter: set[str] = set()  # metrics recorded by quarter (their year: the sum)
        self.n_years = len(edges) - 1
        self.n_la = n_la
        self.first_year = first_year  # start date's year: stocks at 31 March first_year
        self.flows: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((self.n_years, n_la)))
        self.stocks: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((self.n_years + 1, n_la)))

    def _year(self, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, t, side="right") - 1

    def flow(self, metric: str, t: np.ndarray, la: np.ndarray) -> None:
        """Count one event per element at times t (days) in LAs la."""
        self.flow_value(metric, t, la, None)

    def flow_value(self, metric: str, t: np.ndarray, la: np.ndarray, value: np.ndarray | None) -> None:
        """Add `value` (default 1) per event to its financial year and LA."""
        y = self._year(np.asarray(t, float))
        ok = (y >= 0) & (y < self.n_years)
        if not ok.any():
            return
        w = None if value is None else np.asarray(value, float)[ok]
        flat = np.bincount(y[ok] * self.n_la + np.asarray(la)[ok], weights=w,
                           minlength=self.n_years * self.n_la)
        self.flows[metric] += flat.reshape(self.n_years, self.n_la)

    def flow_by_quarter(self, metric: str, t: np.ndarray, la: np.ndarray,
                        value: np.ndarray | None = None) -> None:
        """Add events to `<metric>.<quarter>` of their financial year (QUARTERS); `records`
        gives `<metric>` itself, the year, as the sum of its quarters."""
        self.by_quarter.add(metric)
        t = np.asarray(t, float)
        q = (np.searchsorted(self.quarter_edges, t, side="right") - 1) % len(QUARTERS)
        for i, name in enumerate(QUARTERS):
            m = q == i
            if m.any():
                self.flow_value(f"{metric}.{name}", t[m], np.asarray(la)[m],
                                None if value is None else np.asarray(value, float)[m])

    def add_by_year(self, metric: str, year: np.ndarray, la: np.ndarray, value: np.ndarray) -> None:
        """Add values to given year indices (used for costs accrued over time)."""
        ok = (year >= 0) & (year < self.n_years)
        if not ok.any():
            return
        flat = np.bincount(year[ok] * self.n_la + la[ok], weights=value[ok],
                           minlength=self.n_years * self.n_la)
        self.flows[metric] += flat.reshape(self.n_years, self.n_la)

    def snapshot(self, k: int, kids: "Children", sim: "Simulation") -> None:
        """Stocks at year edge k (31 March of first_year + k)."""
        n = kids.n
        live = ~kids.done[:n]
        state = kids.state[:n]
        la = kids.la[:n]
        t = float(sim.edges[k])

        def count(mask: np.ndarray) -> np.ndarray:
            return np.bincount(la[mask & live], minlength=self.n_la).astype(float)

        in_care = kids.in_care[:n]
        self.stocks["looked_after"][k] = count(in_care)
        plc = np.where((kids.t_pfa[:n] <= t) & in_care, PLACEMENTS.index("placed_for_adoption"),
                       kids.plc[:n])
        plc = np.where((plc < 0) & in_care, kids.pref[:n], plc)
        for i, p in enumerate(PLACEMENTS):
            self.stocks[f"looked_after.{p}"][k] = count(in_care & (plc == i))
        for ls in LEGAL_STATUSES:
            self.stocks[f"looked_after.{ls}"][k] = count(in_care & (kids.legal[:n] == LEGAL_INDEX[ls]))
        self.stocks["looked_after.uasc"][k] = count(in_care & kids.uasc[:n])
        band = age_band((t - kids.birth[:n]) / DAYS_PER_YEAR)
        for b, name in enumerate(START_AGE_BANDS):
            self.stocks[f"looked_after.age_{name}"][k] = count(in_care & (band == b))
        self.stocks["child_in_need"][k] = count(np.isin(state, DFE_CIN))
        # CPPs at 31 March by time on the plan (DfE's bands)
        on_plan = state == S["child_protection_plan"]
        days = t - kids.t_enter[:n]
        for band, lo, hi in CPP_BANDS:
            self.stocks[f"child_protection_plan.{band}"][k] = count(on_plan & (days > lo) & (days <= hi))
        for metric, s in STOCK_STATES.items():
            self.stocks[metric][k] = count(state == S[s])

    def moves(self, src: np.ndarray, dest: np.ndarray, t: np.ndarray, la: np.ndarray) -> None:
        """Audit: count moves between states (src -1 = a new arrival)."""
        pair = (src.astype(np.int32) + 1) * 64 + dest.astype(np.int32)
        for p in np.unique(pair):
            m = pair == p
            a, b = divmod(int(p), 64)
            name = "new" if a == 0 else STATES[a - 1]
            self.flow(f"moves.{name}->{STATES[b]}", t[m], la[m])

    def audit_snapshot(self, k: int, kids: "Children", t: float) -> None:
        """Audit: occupancy of every state (all children ever created), children in
        children's-services states at 18 or over, and invalid states."""
        n = kids.n
        state, la = kids.state[:n], kids.la[:n]
        for i, s in enumerate(STATES):
            self.stocks[f"occupancy.{s}"][k] = np.bincount(la[state == i], minlength=self.n_la)
        in_services = ~kids.done[:n] & ~np.isin(state, [S["closed"], S["adopted"], S["left_care"]])
        over = in_services & ((t - kids.birth[:n]) >= 18 * 365.25 + 1e-6)
        self.stocks["audit.over_18_in_services"][k] = np.bincount(la[over], minlength=self.n_la)
        bad = (state < 0) | (state >= len(STATES))
        self.stocks["audit.invalid_state"][k] = np.bincount(la[bad], minlength=self.n_la)

    def records(self, codes: list[str], factor: float) -> pd.DataFrame:
        """Long records (metric, year, geography, value), counts multiplied by `factor`."""
        flows = dict(self.flows)
        for metric in self.by_quarter:
            parts = [flows[f"{metric}.{q}"] for q in QUARTERS if f"{metric}.{q}" in flows]
            if parts:  # like any flow, a metric with no events in the run has no records
                flows[metric] = sum(parts)
        cost_keys = [m for m in flows if m.startswith("cost.placements.")]
        if cost_keys:
            flows["cost.placements"] = sum(flows[m] for m in cost_keys)
        stocks = dict(self.stocks)
        stocks["looked_after.foster"] = sum(
            stocks[f"looked_after.{p}"] for p in ("kinship_foster", "foster_inhouse", "foster_agency"))
        iv_keys = [m for m in flows if m.startswith("cost.intervention.")]
        if iv_keys:
            flows["cost.intervention"] = sum(flows[m] for m in iv_keys)
        flows["cost.total"] = flows.get("cost.placements", 0) + flows.get(
            "cost.court", np.zeros((self.n_years, self.n_la))) + flows.get("cost.intervention", 0)
        frames = []
        years_f = np.arange(self.first_year + 1, self.first_year + 1 + self.n_years)
        years_s = np.arange(self.first_year, self.first_year + 1 + self.n_years)
        for data, years in ((flows, years_f), (stocks, years_s)):
            for metric in sorted(data):
                arr = np.asarray(data[metric], float) * factor
                frames.append(pd.DataFrame({
                    "metric": metric,
                    "year": np.repeat(years, self.n_la),
                    "geography": np.tile(codes, len(years)),
                    "value": arr.reshape(-1),
                }))
        return pd.concat(frames, ignore_index=True)
