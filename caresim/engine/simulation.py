"""One replication of the care pathway: vectorised stays, SimPy for court and placements.

How time advances (DESIGN.md, "Performance"): the horizon is cut into windows of about a
week, aligned to 1 April so that stocks at 31 March are exact. Within a window, every
child whose next transition falls in it moves on in vectorised batches (each stay's exit
and duration drawn by inversion, hazard multipliers applied exactly). The stages with
finite capacity (the family court, placement pools) are SimPy objects on one clock: a
batch hands them timestamped requests, the SimPy environment is run to the window's end,
and the court's completions come back as transitions inside the window. A request that a
court completion triggers after the environment has reached the window's end (e.g. a
placement for a child at home during proceedings who is made subject to a care order) is
served at the window's end: at most 7 days late, and only for the placement choice; the
child's times and costs are unaffected.

The engine knows nothing of files: it takes a validated `Scenario` and the calibration
table as a DataFrame, and returns records (metric, year, geography, value).
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from caresim.engine.children import Children
from caresim.engine.court import CourtArea
from caresim.engine.placements import PlacementSupply
from caresim.engine.recorder import Recorder
from caresim.engine.rng import Streams
from caresim.pathway.compiled import (
    DAYS_PER_YEAR,
    LEGAL_INDEX,
    STATE_INDEX,
    CompiledRule,
    Pathway,
    age_band,
)
from caresim.pathway.sojourn import SojournDist
from caresim.engine.initial import initial_population
from caresim.interventions import CompiledIntervention, compile_interventions
from caresim.population.local import LocalAuthorities
from caresim.scenario.model import AGE_BAND_EDGES, AGE_BANDS, LEGAL_STATUSES, PLACEMENTS, Scenario
from caresim.results.metrics import START_AGE_BANDS

S = STATE_INDEX
PLC = {p: i for i, p in enumerate(PLACEMENTS)}
WINDOW_DAYS = 7.0
#: states in DfE's "children in need" count at 31 March (open CIN episodes)
DFE_CIN_STATES = ("referral", "child_in_need", "s47_enquiry", "child_protection_plan",
                  "pre_proceedings", "proceedings", "looked_after")
CEASED_REASON = {
    S["returned_home"]: "returned_home",
    S["special_guardianship"]: "special_guardianship",
    S["child_arrangements"]: "child_arrangements",
    S["adopted"]: "adopted",
    S["left_care"]: "left_care",
}
AGE_OUT_DAYS = 18 * DAYS_PER_YEAR
NEW = -1  # state of a child arriving, before it enters its first state


@dataclass(frozen=True)
class TrialArms:
    """A virtual trial inside a run: children first eligible for `intervention` are
    randomised (per family or child, as the intervention decides uptake) to the
    intervention arm with probability `allocation`; only that arm can take it up. Trial
    children are traced (entry, care episodes, proceedings) for `Simulation.trace()`."""

    intervention: str
    allocation: float = 0.5


@dataclass(frozen=True)
class RunStats:
    """What a replication did, for the manifest and benchmarks."""

    transitions: int
    children: int
    simpy_events: int
    placements_over_capacity: int
    court_arrivals_served_late: int
    memory_bytes: int


def year_edges(start: dt.date, years: int) -> np.ndarray:
    """Days from `start` to each 1 April from start to start + years (inclusive)."""
    return np.array(
        [(dt.date(start.year + k, 4, 1) - start).days for k in range(years + 1)], dtype=float
    )


def quarter_edges(start: dt.date, years: int) -> np.ndarray:
    """Days from `start` to the first day of each quarter of the financial years from
    1 April start.year to 1 April start.year + years (inclusive): 1 April, 1 July,
    1 October, 1 January."""
    days = []
    for k in range(years):
        for month, offset in ((4, 0), (7, 0), (10, 0), (1, 1)):
            days.append((dt.date(start.year + k + offset, month, 1) - start).days)
    days.append((dt.date(start.year + years, 4, 1) - start).days)
    return np.array(days, dtype=float)


def sample_bands(u: np.ndarray, shares: dict[str, float]) -> np.ndarray:
    """Ages (years) from a band distribution, uniform within each band."""
    edges = list(AGE_BAND_EDGES) + [18.0]
    p = np.array([shares.get(b, 0.0) for b in AGE_BANDS])
    cum = np.cumsum(p / p.sum())
    band = np.minimum(np.searchsorted(cum, u, side="right"), len(AGE_BANDS) - 1)
    lo = np.array(edges[:-1])[band]
    hi = np.array(edges[1:])[band]
    lower = np.concatenate([[0.0], cum[:-1]])[band]
    frac = np.clip((u - lower) / np.maximum(cum[band] - lower, 1e-12), 0.0, 1.0 - 1e-9)
    return lo + frac * (hi - lo)


def _youngest_in_family(fam: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Each child's family's youngest age within the batch: family decisions (whether to
    start pre-proceedings, to issue) are taken for the siblings together, led by the
    youngest child's age, so siblings in step stay together."""
    return _family_min(fam, age)


def _family_min(fam: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each child's smallest `x` among the children of its family in the batch."""
    order = np.argsort(fam, kind="stable")
    sf = fam[order]
    new = np.r_[True, sf[1:] != sf[:-1]]
    low = np.minimum.reduceat(x[order], np.flatnonzero(new))
    out = np.empty_like(x)
    out[order] = low[np.cumsum(new) - 1]
    return out


class Simulation:
    """A single replication. `run()` returns its records at LA level."""

    def __init__(self, scenario: Scenario, la_inputs: pd.DataFrame, seed: int,
                 replication: int, scale: float = 1.0, audit: bool = False,
                 history: pd.DataFrame | None = None, draw_effects: bool = True,
                 trial: TrialArms | None = None):
        """`la_inputs`: the calibration table of the start year (one row per LA).
        `history`: published series (metric, year, geography, value), needed when the
        scenario uses published referrals or UASC arrivals by year.
        `audit` also records every move between states (`moves.<from>-><to>`, arrivals
        from `new`) and state occupancy (`occupancy.<state>`), for conservation checks.
        `draw_effects`: draw each intervention effect from its interval (this replication's
        draw), or use central values. `trial`: run a virtual trial (see `TrialArms`)."""
        self.sc = scenario
        self.audit = audit
        self.scale = float(scale)
        self.las = LocalAuthorities.from_inputs(la_inputs, scenario.geography)
        self.streams = Streams(seed, replication)
        self.pathway = Pathway(scenario, self.las.n)
        self._apply_modifiers()
        known = set(la_inputs.loc[la_inputs["level"] == "la", "geography"])
        self.ivs: list[CompiledIntervention] = compile_interventions(
            scenario, self.las, self.pathway,
            lambda purpose: float(self.streams.generator(purpose).standard_normal()),
            self.scale, known, draw_effects=draw_effects)
        self.trial = trial
        self._trial_j = -1
        if trial is not None:
            names = [iv.name for iv in self.ivs]
            if trial.intervention not in names:
                raise ValueError(f"trial intervention {trial.intervention!r} is not in the scenario "
                                 f"(it has: {', '.join(names) or 'none'})")
            self._trial_j = names.index(trial.intervention)
        self._trace: dict[str, list[tuple[np.ndarray, ...]]] = defaultdict(list)
        self.edges = year_edges(scenario.start, scenario.years)
        self._published_arrivals(history)
        self.horizon = float(self.edges[-1])
        self.windows = self._windows()
        self.env = simpy.Environment()
        # referrals before birth: steps into court or care wait for the birth (see _next)
        self._unborn_possible = scenario.arrivals.pre_birth is not None
        self._after_birth = np.zeros(max(S.values()) + 1, bool)
        self._after_birth[[S["proceedings"], S["looked_after"]]] = True
        extra = {}
        for j in range(len(self.ivs)):
            extra[f"iv_onset_{j}"] = (np.float64, np.inf)  # when its effect started (inf: never)
            extra[f"iv_arm_{j}"] = (np.int8, 0)  # trial arm: 0 none, 1 control, 2 intervention
        self.kids = Children(extra=extra)
        self.rec = Recorder(self.edges, quarter_edges(scenario.start, scenario.years), self.las.n,
                            first_year=scenario.start.year, audit=audit)
        self._buckets: dict[int, list[np.ndarray]] = defaultdict(list)
        self._keys: dict[str, np.uint64] = {}
        self.transitions = 0
        self.late_court = 0
        self._completed: list[tuple[float, int, float]] = []
        self.simpy_events = 0
        self._setup_court()
        self._setup_placements()
        # service places: per intervention and area, a heap of the times each place is next
        # free (a multi-server queue whose customers wait at most max_wait_days)
        self._waits: list[tuple[int, np.ndarray, float, list]] = []
        self._places = [
            None if iv.places is None else [[-np.inf] * int(p) for p in iv.places]
            for iv in self.ivs]
        self.cost_per_day = np.array(
            [scenario.placements.supply[p].weekly_cost.value / 7.0
             if p in scenario.placements.supply else 0.0 for p in PLACEMENTS])

    # -- set-up ---------------------------------------------------------------------------
    def _apply_modifiers(self) -> None:
        codes = np.array(self.las.codes)
        for lv in self.sc.local_variation:
            per_la = self.las.index(lv.index, lv.bounds)
            if lv.kind == "hazard":
                for t in lv.transitions:
                    self.pathway.multiply_hazard(t, per_la)
            else:
                for s in lv.states:
                    self.pathway.stretch_durations(S[s], per_la)
        for hm in self.sc.hazard_multipliers:
            mask = np.ones(self.las.n, bool) if hm.las is None else np.isin(codes, hm.las)
            self.pathway.multiply_hazard(hm.transition, np.where(mask, hm.value, 1.0))

    def _published_arrivals(self, history: pd.DataFrame | None) -> None:
        """Per financial year: LA referrals and national UASC starts, where published and
        the scenario asks for them (the year index is the simulated year, 0 = first)."""
        a = self.sc.arrivals
        first = self.sc.start.year + 1
        self.referrals_by_year: dict[int, np.ndarray] = {}
        self.uasc_by_year: dict[int, float] = {}
        if not (a.referrals.use_published or a.uasc.use_published):
            return
        if history is None:
            raise ValueError("use_published needs the published history")
        if a.referrals.use_published:
            h = history[history.metric == "referrals"].pivot_table(
                index="year", columns="geography", values="value", aggfunc="first")
            h = h.reindex(columns=list(self.las.codes))
            start = self.las.column(a.referrals.column)
            for y in h.index:
                if not first <= y < first + self.sc.years:
                    continue
                row = h.loc[y].to_numpy(float)
                ok = np.isfinite(row)
                # LAs without a published figure that year (successor LAs of a boundary
                # change, suppressed figures): their start-year referrals, moved with the
                # published LAs' total
                if not ok.any() or start[ok].sum() <= 0:
                    continue
                trend = row[ok].sum() / start[ok].sum()
                self.referrals_by_year[int(y) - first] = np.where(ok, row, start * trend)
        if a.uasc.use_published:
            h = history[(history.metric == "care_starts.uasc") & (history.geography == "England")]
            for y, v in zip(h.year, h.value):
                if first <= y < first + self.sc.years and np.isfinite(v):
                    self.uasc_by_year[int(y) - first] = float(v)

    def _windows(self) -> np.ndarray:
        starts = []
        for a, b in zip(self.edges[:-1], self.edges[1:]):
            n = int(np.ceil((b - a) / WINDOW_DAYS))
            starts.extend(np.linspace(a, b, n + 1)[:-1])
        return np.array(starts + [self.edges[-1]])

    def _setup_court(self) -> None:
        court = self.sc.court
        self.court_area, names = self.las.area_of(court.areas)
        # capacity shared across areas by their demand (LA referrals x care entry index)
        demand = self.las.column("referrals") * self.las.index("care_entry_index", (0.0, 1e9))
        share = np.bincount(self.court_area, weights=demand, minlength=len(names))
        share = share / share.sum() if share.sum() > 0 else np.full(len(names), 1 / len(names))
        total = court.capacity_cases.value * self.scale * self.las_share()
        alpha = court.congestion_elasticity.value
        # capacity by financial year (court.capacity_by_year), changing at each 1 April
        first = self.sc.start.year + 1
        mult = [court.capacity_multiplier(first + k) for k in range(len(self.edges) - 1)]
        self.courts = [CourtArea(self.env, float(total * s * mult[0]), self._court_done, alpha)
                       for s in share]
        self._court_share = share * total
        for k in range(1, len(mult)):
            if mult[k] != mult[k - 1]:
                ev = self.env.timeout(float(self.edges[k]) - self.env.now)
                ev.callbacks.append(lambda _ev, m=mult[k]: self._set_court_capacity(m))
        self.proc_rule = self.pathway.rule(S["proceedings"])
        # share entering interim care at issue, by the state proceedings are issued from
        self._interim_share = np.full(len(S), court.interim_care_at_issue.value)
        for state, p in court.interim_care_by_route.items():
            self._interim_share[S[state]] = p.value
        # looked_after rule id by legal status index (the single rule, or s20, stands in for
        # a missing variant),
        # and last, the UASC variant
        la_state = S["looked_after"]
        base = "default" if self.pathway.has(la_state, "default") else "s20"
        fallback = self.pathway.rule(la_state, base).rule_id
        self._la_rules = np.array(
            [self.pathway.rule(la_state, v).rule_id if self.pathway.has(la_state, v) else fallback
             for v in (*LEGAL_STATUSES, "uasc")], dtype=np.int32)

    def _set_court_capacity(self, mult: float) -> None:
        for c, base in zip(self.courts, self._court_share):
            c.set_capacity(float(base * mult))

    def las_share(self) -> float:
        """Simulated LAs' share of England's referrals (1 for a national run)."""
        nat = float(self.las.national["referrals"])
        return float(self.las.column("referrals").sum() / nat) if nat > 0 else 1.0

    def _setup_placements(self) -> None:
        pl = self.sc.placements
        self.plc_area, names = self.las.area_of(pl.geography)
        stock = self.las.column("cla_at31")
        area_stock = np.bincount(self.plc_area, weights=stock, minlength=len(names))
        area_share = area_stock / area_stock.sum() if area_stock.sum() > 0 else np.ones(len(names))
        cap = np.full((len(names), len(PLACEMENTS)), np.inf)
        for p, spec in pl.supply.items():
            if spec.capacity is not None:
                cap[:, PLC[p]] = spec.capacity.value * self.scale * self.las_share() * area_share
        chains = []
        for p in PLACEMENTS:
            spec = pl.supply.get(p)
            chains.append([PLC[p]] + ([PLC[f] for f in spec.fallback] if spec else []))
        self._plc_capacity = cap
        self._plc_chains = chains
        self.mix = np.array([[pl.entry_mix.get(b, {}).get(p, 0.0) for p in PLACEMENTS]
                             for b in AGE_BANDS])
        self.mix_cum = np.cumsum(self.mix / self.mix.sum(axis=1, keepdims=True), axis=1)
        self.pfa_dist = SojournDist.from_spec(pl.adoption_placement_lead_days)
        # moves during a stay: steps at given ages (age in days, type moved to, share moving
        # per current type), and children in a fallback type waiting for their preferred one
        self._steps = [
            (st.age * DAYS_PER_YEAR, PLC[st.to],
             np.array([st.share[p].value if p in st.share else 0.0 for p in PLACEMENTS]))
            for st in pl.steps]
        self._return_from = np.array([p in pl.return_from_fallback for p in PLACEMENTS])
        # (area, type) -> children (index, care episode, type they are in) waiting for a place
        self._waiting: dict[tuple[int, int], deque] = defaultdict(deque)

    # -- random numbers -------------------------------------------------------------------
    def _u(self, purpose: str, ids: np.ndarray, counters: np.ndarray) -> np.ndarray:
        key = self._keys.get(purpose)
        if key is None:
            key = self._keys[purpose] = self.streams.key(purpose)
        return self.streams.uniform(key, ids, counters)

    # -- scheduling -----------------------------------------------------------------------
    def _schedule(self, idx: np.ndarray) -> None:
        t = self.kids.t_next[idx]
        ok = t < self.horizon
        idx, t = idx[ok], t[ok]
        if idx.size == 0:
            return
        w = np.searchsorted(self.windows, t, side="right") - 1
        if w[0] == w[-1] and (w.size < 3 or np.all(w == w[0])):
            self._buckets[int(w[0])].append(idx)
            return
        order = np.argsort(w, kind="stable")
        w, idx = w[order], idx[order]
        cut = np.flatnonzero(np.diff(w)) + 1
        for ws, part in zip(np.split(w, cut), np.split(idx, cut)):
            self._buckets[int(ws[0])].append(part)

    def _at(self, t: float, fn, *args) -> None:
        """Run `fn(*args)` at time t on the SimPy clock (now, if t is already past)."""
        delay = t - self.env.now
        if delay < 0:
            delay = 0.0
        self.simpy_events += 1
        ev = self.env.timeout(delay)
        ev.callbacks.append(lambda _ev: fn(*args))

    # -- the main loop --------------------------------------------------------------------
    def run(self) -> pd.DataFrame:
        """Simulate the horizon; return records at LA level, scaled to real children."""
        old = gc.get_threshold()
        gc.set_threshold(100_000, 50, 1000)  # DESIGN: cyclic GC cost with many live objects
        try:
            self._initial()
            self.rec.snapshot(0, self.kids, self)
            if self.audit:
                self.rec.audit_snapshot(0, self.kids, 0.0)
            year_at = {float(e): k for k, e in enumerate(self.edges)}
            for w in range(len(self.windows) - 1):
                t0, t1 = float(self.windows[w]), float(self.windows[w + 1])
                self._arrivals(t0, t1)
                while True:
                    idx = self._pop(w, t0, t1)
                    if idx.size:
                        self._transition(idx)
                        continue
                    if t1 > self.env.now:
                        self.env.run(until=t1)
                        continue
                    break
                self._flush_court()
                if t1 in year_at:
                    self._accrue_costs(np.flatnonzero(self.kids.in_care[: self.kids.n]), t1)
                    self.rec.snapshot(year_at[t1], self.kids, self)
                    if self.audit:
                        self.rec.audit_snapshot(year_at[t1], self.kids, t1)
        finally:
            gc.set_threshold(*old)
        return self.rec.records(self.las.codes, 1.0 / self.scale)

    def stats(self) -> RunStats:
        return RunStats(
            transitions=self.transitions,
            children=self.kids.n,
            simpy_events=self.simpy_events,
            placements_over_capacity=self.supply.over_capacity,
            court_arrivals_served_late=self.late_court,
            memory_bytes=self.kids.nbytes(),
        )

    def _pop(self, w: int, t0: float, t1: float) -> np.ndarray:
        parts = self._buckets.pop(w, None)
        if not parts:
            return np.empty(0, dtype=np.int64)
        idx = np.unique(np.concatenate(parts))
        t = self.kids.t_next[idx]
        keep = (t >= t0) & (t < t1) & ~self.kids.done[idx]
        return idx[keep]

    # -- population -----------------------------------------------------------------------
    def _initial(self) -> None:
        occupied = np.zeros_like(self._plc_capacity)
        init = initial_population(self, occupied)
        self.supply = PlacementSupply(self.env, self._plc_capacity, occupied, self._plc_chains)
        self.supply.on_free = self._place_freed
        in_care = np.flatnonzero(self.kids.in_care[: self.kids.n])
        self._watch_steps(in_care, np.zeros(in_care.size))
        for area, payload, work in init.court_cases:
            self.courts[area].preload(payload, work)
        self._schedule(init.scheduled)

    def _new_children(self, n: int, la: np.ndarray, t: np.ndarray, birth: np.ndarray,
                      fam_size: np.ndarray | None = None) -> np.ndarray:
        idx = self.kids.add(n, la=la, birth=birth, t_enter=t, t_cost=t)
        if fam_size is None:
            self.kids.fam[idx] = idx
        else:
            first = np.repeat(idx[np.concatenate([[0], np.cumsum(fam_size)[:-1]])], fam_size)
            self.kids.fam[idx] = first
        return idx

    def _arrivals(self, t0: float, t1: float) -> None:
        """Fresh families referred, and UASC arriving, in [t0, t1)."""
        a = self.sc.arrivals
        g = self.streams.generator(f"arrivals:{int(round(t0 * 1000))}")
        years = (t0 - self.edges[0]) / DAYS_PER_YEAR
        growth = (1.0 + a.referrals.annual_growth) ** years
        sizes = np.array(sorted(a.family_size))
        size_p = np.array([a.family_size[s] for s in sizes])
        year = int(np.searchsorted(self.edges, t0, side="right") - 1)
        base = self.referrals_by_year.get(year)
        if base is None:
            base = self.las.column(a.referrals.column) * growth
        per_child = base * a.referrals.new_child_share * a.referrals.multiplier * self.scale
        fam_rate = per_child / float((sizes * size_p).sum()) * (t1 - t0) / DAYS_PER_YEAR
        nfam = g.poisson(fam_rate)
        if nfam.sum():
            la_f = np.repeat(np.arange(self.las.n, dtype=np.int32), nfam)
            fsize = g.choice(sizes, size=la_f.size, p=size_p)
            t_f = g.uniform(t0, t1, size=la_f.size)
            la_c, t_c = np.repeat(la_f, fsize), np.repeat(t_f, fsize)
            age = sample_bands(g.random(la_c.size), a.age_at_referral) * DAYS_PER_YEAR
            unborn = np.zeros(age.size, bool)
            if a.pre_birth is not None:
                # a share of the under-1s are referred weeks before the birth
                pb = a.pre_birth
                unborn = (age < DAYS_PER_YEAR) & (g.random(age.size) < pb.share.value)
                age[unborn] = -7.0 * g.uniform(*pb.weeks_before_birth, size=int(unborn.sum()))
                # oldest first in each family (ages are exchangeable), so a family's id, its
                # first child's, is never an unborn baby's unless all of it is unborn
                order = np.lexsort((-age, np.repeat(np.arange(fsize.size), fsize)))
                age, unborn = age[order], unborn[order]
            idx = self._new_children(la_c.size, la_c, t_c, t_c - age, fsize)
            # an unborn baby's case is its own (a pre-birth assessment): it does not share
            # its siblings' draws
            self.kids.fam[idx[unborn]] = idx[unborn]
            self.kids.state[idx] = NEW
            self.prior_history(idx)
            self._enter(idx, t_c, np.full(idx.size, S["referral"], np.int8),
                        np.full(idx.size, -1, np.int8))
        u = a.uasc
        share = self.las.column(u.la_column)
        share = share / share.sum() if share.sum() > 0 else np.zeros(self.las.n)
        per_year = self.uasc_by_year.get(year, u.per_year)
        rate = per_year * self.scale * self.las_share() * share * (t1 - t0) / DAYS_PER_YEAR
        n = g.poisson(rate)
        if n.sum():
            la_c = np.repeat(np.arange(self.las.n, dtype=np.int32), n)
            t_c = g.uniform(t0, t1, size=la_c.size)
            age = sample_bands(g.random(la_c.size), u.age_at_arrival)
            idx = self._new_children(la_c.size, la_c, t_c, t_c - age * DAYS_PER_YEAR)
            self.kids.uasc[idx] = True
            self.kids.state[idx] = NEW
            self.rec.flow("care_starts.uasc", t_c, la_c)
            self._enter(idx, t_c, np.full(idx.size, S["looked_after"], np.int8),
                        np.full(idx.size, LEGAL_INDEX["s20"], np.int8))

    def prior_history(self, idx: np.ndarray, p=None) -> None:
        """Children new to the model: a share had a child protection plan before (one
        draw per family); `p` (a ProbParam) replaces arrivals.prior_cpp."""
        p = self.sc.arrivals.prior_cpp if p is None else p
        if p is None or p.value <= 0 or idx.size == 0:
            return
        fam = self.kids.fam[idx]
        u = self._u("prior_cpp", fam, np.zeros(idx.size, np.uint32))
        self.kids.prior_cpp[idx] |= u < p.value

    # -- transitions ----------------------------------------------------------------------
    def _transition(self, idx: np.ndarray) -> None:
        """Move children whose scheduled exit is due to its destination."""
        k = self.kids
        t = k.t_next[idx]
        dest = np.empty(idx.size, np.int8)
        legal = np.full(idx.size, -1, np.int8)
        rules = k.rule[idx]
        nxt = k.nxt[idx]
        for rid in np.unique(rules):
            sel = rules == rid
            r = self.pathway.rules[rid]
            e = nxt[sel]
            age_out = e < 0
            d = r.targets[np.maximum(e, 0)].copy()
            d[age_out] = np.where(k.in_care[idx[sel][age_out]], S["left_care"], S["closed"])
            dest[sel] = d
            lg = r.legal[np.maximum(e, 0)].copy()
            lg[age_out] = -1
            legal[sel] = lg
        self.transitions += idx.size
        self._enter(idx, t, dest, legal)

    def _enter(self, idx: np.ndarray, t: np.ndarray, dest: np.ndarray, legal: np.ndarray) -> None:
        """Children `idx` enter state `dest` at times `t`: record flows, handle care,
        court and placements, then draw their next transition."""
        k, rec = self.kids, self.rec
        la = k.la[idx]
        src = k.state[idx]
        was_in_care = k.in_care[idx]
        # "returned home" only applies to children who were looked after
        home = (dest == S["returned_home"]) & ~was_in_care
        dest = np.where(home, S["child_in_need"], dest).astype(np.int8)

        # -- leaving care
        ceased = self._leaving_care(idx, dest)
        stays_in_care = was_in_care & ~ceased
        if ceased.any():
            ci = idx[ceased]
            self._accrue_costs(ci, t[ceased])
            for i, tt in zip(ci.tolist(), t[ceased].tolist()):
                if k.pooled[i]:
                    self._at(tt, self.supply.release, int(self.plc_area[k.la[i]]), int(k.plc[i]))
            rec.flow("care_ceased", t[ceased], la[ceased])
            self._traced("care_end", ci, t[ceased])
            for s, name in CEASED_REASON.items():
                m = dest[ceased] == s
                if m.any():
                    rec.flow(f"care_ceased.{name}", t[ceased][m], la[ceased][m])
            other = ~np.isin(dest[ceased], list(CEASED_REASON))
            if other.any():
                rec.flow("care_ceased.other", t[ceased][other], la[ceased][other])
            uasc = k.uasc[ci]
            if uasc.any():
                rec.flow("care_ceased.uasc", t[ceased][uasc], la[ceased][uasc])
            # by age on ceasing, under 18 (a child of 18 leaves to left_care, counted above)
            band = age_band((t[ceased] - k.birth[ci]) / DAYS_PER_YEAR)
            under_18 = dest[ceased] != S["left_care"]
            for b, name in enumerate(START_AGE_BANDS):
                at = under_18 & (band == b)
                if at.any():
                    rec.flow(f"care_ceased.age_{name}", t[ceased][at], la[ceased][at])
            k.in_care[ci] = False
            k.pooled[ci] = False
            k.plc[ci] = -1
            k.legal[ci] = -1
            k.t_pfa[ci] = np.inf

        # -- flows by destination
        for name, state in (("s47_enquiries", "s47_enquiry"), ("cpp_starts", "child_protection_plan"),
                            ("pre_proceedings_starts", "pre_proceedings"),
                            ("sgo_granted", "special_guardianship"), ("adoptions", "adopted")):
            m = dest == S[state]
            if m.any():
                rec.flow(name, t[m], la[m])
        m = dest == S["referral"]
        if m.any():
            ri = idx[m]
            rec.flow("referrals", t[m], la[m])
            rr = (t[m] - k.t_lastref[ri]) < 365.0
            if rr.any():
                rec.flow("rereferrals", t[m][rr], la[m][rr])
            k.nref[ri] += 1
            k.t_lastref[ri] = t[m]
        cpp = dest == S["child_protection_plan"]
        if cpp.any():
            again = k.prior_cpp[idx[cpp]]
            if again.any():
                rec.flow("cpp_starts.subsequent", t[cpp][again], la[cpp][again])
            k.prior_cpp[idx[cpp]] = True
        m = (src == S["special_guardianship"]) & (dest != S["special_guardianship"]) & (
            (dest == S["looked_after"]) | (dest == S["referral"]))
        if m.any():
            rec.flow("sgo_breakdowns", t[m], la[m])
        m = dest == S["closed"]
        k.t_closed[idx[m]] = t[m]

        # -- legal status changes inside care (s20 -> ICO at issue; ICO -> care/placement order)
        keep = was_in_care & stays_in_care & (legal >= 0)
        k.legal[idx[keep]] = legal[keep]
        to_proc = dest == S["proceedings"]
        k.legal[idx[to_proc & was_in_care]] = LEGAL_INDEX["interim_care_order"]

        # -- state change
        if self.audit:
            self.rec.moves(src, dest, t, la)
        k.state[idx] = dest
        k.t_enter[idx] = t
        k.nev[idx] += 1
        for j, iv in enumerate(self.ivs):
            m = dest == iv.stage
            if m.any():
                self._offer(j, iv, idx[m], t[m])

        # -- entering care (not via the court's interim decision, handled below)
        start = ~was_in_care & (dest == S["looked_after"])
        if start.any():
            lg = np.where(legal[start] >= 0, legal[start], LEGAL_INDEX["s20"])
            self._start_care(idx[start], t[start], lg)

        # -- proceedings
        if to_proc.any():
            self._issue(idx[to_proc], t[to_proc], src[to_proc])

        # -- terminal states
        term = (dest == S["adopted"]) | (dest == S["left_care"])
        aged = (dest == S["closed"]) & ((t - k.birth[idx]) >= AGE_OUT_DAYS - 1e-6)
        k.done[idx[term | aged]] = True
        k.t_next[idx[term | aged]] = np.inf

        nxt = ~(term | aged | to_proc)
        if nxt.any():
            self._next(idx[nxt], t[nxt])
        if self._waits:
            self._settle_waits()

    def _leaving_care(self, idx: np.ndarray, dest: np.ndarray) -> np.ndarray:
        """Which of children `idx`, moving to states `dest`, leave care by the move: those in
        care going anywhere but `looked_after` or (in interim care) into proceedings."""
        was = self.kids.in_care[idx]
        return was & ~((dest == S["looked_after"]) | ((dest == S["proceedings"]) & was))

    def _start_care(self, idx: np.ndarray, t: np.ndarray, legal: np.ndarray) -> None:
        k = self.kids
        self.rec.flow("care_starts", t, k.la[idx])
        self._traced("care_start", idx, t)
        re = k.prior_care[idx]
        if re.any():
            self.rec.flow("care_reentries", t[re], k.la[idx][re])
        k.prior_care[idx] = True
        k.in_care[idx] = True
        k.legal[idx] = legal
        k.cep[idx] += 1
        k.t_cost[idx] = t
        band = age_band((t - k.birth[idx]) / DAYS_PER_YEAR)
        for b, name in enumerate(START_AGE_BANDS):
            at = band == b
            if at.any():
                self.rec.flow(f"care_starts.age_{name}", t[at], k.la[idx][at])
        for name, j in LEGAL_INDEX.items():
            at = legal == j
            if at.any():
                self.rec.flow(f"care_starts.{name}", t[at], k.la[idx][at])
        u = self._u("placement", idx, k.cep[idx])
        pref = np.minimum((u[:, None] > self.mix_cum[band]).sum(axis=1), len(PLACEMENTS) - 1)
        k.pref[idx] = pref
        for i, tt, p, ep in zip(idx.tolist(), t.tolist(), pref.tolist(), k.cep[idx].tolist()):
            self._at(tt, self._place, i, p, ep)
        self._watch_steps(idx, t)

    def _place(self, i: int, preferred: int, episode: int) -> None:
        k = self.kids
        if not k.in_care[i] or k.cep[i] != episode:
            return  # left care before the request was served
        area = int(self.plc_area[k.la[i]])
        plc, pooled = self.supply.request(area, preferred)
        k.plc[i] = plc
        k.pooled[i] = pooled
        if plc != preferred and self._return_from[plc]:
            # placed in a fallback type: wait for a place in the preferred type (or a type
            # before this one in its fallback chain)
            chain = self._plc_chains[preferred]
            for t in chain[: chain.index(plc)]:
                if (area, t) in self.supply.pools:
                    self._waiting[(area, t)].append((i, episode, plc))

    # -- placement moves during a stay ----------------------------------------------------
    def _watch_steps(self, idx: np.ndarray, t: np.ndarray) -> None:
        """Schedule the placement steps (`placements.steps`) of children `idx` in care from t:
        one event per step whose age they reach in care before the horizon."""
        if not self._steps or idx.size == 0:
            return
        k = self.kids
        for j, (age_days, _, _) in enumerate(self._steps):
            t_age = k.birth[idx] + age_days
            m = (t_age > t) & (t_age < self.horizon)
            for i, ta, ep in zip(idx[m].tolist(), t_age[m].tolist(), k.cep[idx[m]].tolist()):
                self._at(ta, self._step, i, j, ep)

    def _step(self, i: int, j: int, episode: int) -> None:
        """Placement step j of child i, if still in the same care episode: a draw against the
        share moving from its current type (one draw per child, step and episode)."""
        k = self.kids
        if not k.in_care[i] or k.cep[i] != episode or k.done[i] or k.plc[i] < 0:
            return
        if k.t_pfa[i] <= self.env.now:
            return  # placed for adoption
        _, to, share = self._steps[j]
        p = share[k.plc[i]]
        if p <= 0.0:
            return
        u = self._u(f"placement_step:{j}", np.array([i]), np.array([episode], np.uint32))[0]
        if u < p:
            k.pref[i] = to
            self._move(i, to)

    def _place_freed(self, area: int, t: int) -> None:
        """A place of type t in `area` was given back: children waiting in a fallback
        placement for this type take it, first come first served."""
        q = self._waiting.get((area, t))
        if not q:
            return
        k = self.kids
        now = self.env.now
        while q:
            i, ep, frm = q[0]
            if not (k.in_care[i] and k.cep[i] == ep and k.plc[i] == frm and not k.done[i]
                    and k.t_pfa[i] > now):
                q.popleft()  # left care, moved already or placed for adoption
                continue
            if not self.supply.take(area, t):
                return
            q.popleft()
            self._move(i, t, pooled=True)

    def _move(self, i: int, new: int, pooled: bool | None = None) -> None:
        """Move child i, now, to placement type `new` (taking a place from the supply unless
        `pooled` says it has been taken already): costs accrue by type up to the move, then
        the old place is given back (which may let another child move into it)."""
        k = self.kids
        now = self.env.now
        area = int(self.plc_area[k.la[i]])
        if pooled is None:
            new, pooled = self.supply.request(area, new)
            if new == k.plc[i]:
                if pooled:
                    self.supply.release(area, new)
                return
        self._accrue_costs(np.array([i]), max(now, float(k.t_cost[i])))
        old, old_pooled = int(k.plc[i]), bool(k.pooled[i])
        k.plc[i] = new
        k.pooled[i] = pooled
        self.rec.flow("placement_moves", np.array([now]), k.la[i: i + 1])
        if old_pooled:
            self.supply.release(area, old)

    def _accrue_costs(self, idx: np.ndarray, t_end: np.ndarray | float) -> None:
        """Add placement costs of children `idx` from their last accrual up to t_end."""
        if idx.size == 0:
            return
        k = self.kids
        t_end = np.broadcast_to(np.asarray(t_end, float), idx.shape)
        start = k.t_cost[idx]
        plc = np.where(k.plc[idx] >= 0, k.plc[idx], k.pref[idx])
        ok = plc >= 0
        pfa_from = np.clip(k.t_pfa[idx], start, t_end)
        d_main = np.where(ok, pfa_from - start, 0.0)
        d_pfa = t_end - pfa_from
        year = np.searchsorted(self.edges, np.maximum(t_end - 1e-9, 0.0), side="right") - 1
        la = k.la[idx]
        cost = d_main * self.cost_per_day[np.maximum(plc, 0)]
        cost_pfa = d_pfa * self.cost_per_day[PLC["placed_for_adoption"]]
        for p, name in enumerate(PLACEMENTS):
            c = np.where(plc == p, cost, 0.0)
            if p == PLC["placed_for_adoption"]:
                c = c + cost_pfa
            if c.any():
                self.rec.add_by_year(f"cost.placements.{name}", year, la, c)
        k.t_cost[idx] = t_end

    # -- court ----------------------------------------------------------------------------
    def _issue(self, idx: np.ndarray, t: np.ndarray, src: np.ndarray) -> None:
        """Proceedings issued for children `idx` (from states `src`) at `t`: interim care,
        then one court case per family issued at the same moment."""
        k = self.kids
        not_care = ~k.in_care[idx]
        if not_care.any():
            ni = idx[not_care]
            u = self._u("interim", k.fam[ni], k.nev[ni])
            ico = u < self._interim_share[src[not_care]]
            if ico.any():
                self._start_care(ni[ico], t[not_care][ico],
                                 np.full(int(ico.sum()), LEGAL_INDEX["interim_care_order"], np.int8))
        self.rec.flow_by_quarter("proceedings_issued", t, k.la[idx])
        self._traced("issued", idx, t)
        r = self.proc_rule
        e, work = self._draw(r, idx, t, family=True)
        k.nxt[idx] = e
        k.rule[idx] = r.rule_id
        k.t_next[idx] = np.inf
        self.watch_age_in_court(idx)
        order = np.lexsort((t, k.fam[idx]))
        idx, t, work = idx[order], t[order], work[order]
        key = np.stack([k.fam[idx].astype(float), t])
        cut = np.flatnonzero(np.any(np.diff(key, axis=1) != 0, axis=0)) + 1
        first = np.concatenate([[0], cut])
        la_case, t_case = k.la[idx[first]], t[first]
        self.rec.flow_by_quarter("proceedings_issued_cases", t_case, la_case)
        self.rec.flow_value("cost.court", t_case, la_case,
                            np.full(first.size, self.sc.costs.court_per_case.value))
        self.late_court += int(np.sum(t_case < self.env.now))
        areas = self.court_area[la_case]
        for grp, a, tc, wc in zip(np.split(idx, cut), areas.tolist(), t_case.tolist(),
                                  work[first].tolist()):
            self._at(tc, self.courts[a].submit, (grp, tc), wc)

    def watch_age_in_court(self, idx: np.ndarray) -> None:
        """A child reaching 18 during proceedings leaves them then (no order can be made)."""
        k = self.kids
        t18 = k.birth[idx] + AGE_OUT_DAYS
        soon = t18 < self.horizon
        for i, tt, ev in zip(idx[soon].tolist(), t18[soon].tolist(), k.nev[idx[soon]].tolist()):
            self._at(tt, self._age_out_in_court, i, ev)

    def _age_out_in_court(self, i: int, nev: int) -> None:
        k = self.kids
        if k.state[i] == S["proceedings"] and k.nev[i] == nev and not k.done[i]:
            k.nxt[i] = -1
            k.t_next[i] = self.env.now
            self._schedule(np.array([i]))

    def _court_done(self, payload: tuple[np.ndarray, float], now: float) -> None:
        grp, t_issue = payload
        k = self.kids
        self._completed.append((now, int(k.la[grp[0]]), (now - t_issue) / 7.0))
        live = grp[(k.state[grp] == S["proceedings"]) & ~k.done[grp]]
        aged = (now - k.birth[live]) >= AGE_OUT_DAYS
        k.nxt[live[aged]] = -1
        k.t_next[live] = now
        self._schedule(live)

    def _flush_court(self) -> None:
        """Record the cases completed since the last flush (batched for speed)."""
        if not self._completed:
            return
        t, la, weeks = (np.array(c) for c in zip(*self._completed))
        la = la.astype(np.int64)
        self._completed.clear()
        # by quarter of the financial year; the year's values are the quarters' sums
        self.rec.flow_by_quarter("proceedings_completed_cases", t, la)
        self.rec.flow_by_quarter("proceedings_weeks_total", t, la, weeks)
        self.rec.flow_by_quarter("proceedings_within_26_weeks_cases", t[weeks <= 26.0], la[weeks <= 26.0])

    # -- drawing the next stay ------------------------------------------------------------
    def _variant(self, idx: np.ndarray) -> np.ndarray:
        """Rule id of each child's current state and situation."""
        k = self.kids
        state = k.state[idx]
        out = np.full(idx.size, -1, np.int32)
        for s in np.unique(state):
            sel = state == s
            if s == S["looked_after"]:
                ii = idx[sel]
                ids = self._la_rules[np.maximum(k.legal[ii], 0)]
                out[sel] = np.where(k.uasc[ii], self._la_rules[-1], ids)
            elif self.pathway.has(int(s)):
                out[sel] = self.pathway.rule(int(s)).rule_id
        return out

    def _pfa_lead_multiplier(self, t_adopt: np.ndarray) -> np.ndarray:
        """placements.adoption_placement_lead_by_year's multiplier for adoption orders at
        times t_adopt (days), by their financial year (changing at 1 April)."""
        # by the calendar (not self.edges, which end at the horizon: an order after it can
        # fall in any later year)
        day = np.datetime64(self.sc.start, "D") + np.floor(np.asarray(t_adopt, float)).astype("timedelta64[D]")
        y = day.astype("datetime64[Y]").astype(int) + 1970
        month = (day.astype("datetime64[M]").astype(int) % 12) + 1
        years = y + (month >= 4)
        uy, inv = np.unique(years, return_inverse=True)
        m = np.array([self.sc.placements.adoption_lead_multiplier(int(y)) for y in uy])
        return m[inv]

    def _financial_year(self, t: np.ndarray) -> np.ndarray:
        """Financial year (ending year: 2021 = 2020-21) of simulation times t (days)."""
        return self.sc.start.year + np.searchsorted(self.edges, t, side="right")

    def _draw(self, r: CompiledRule, idx: np.ndarray, t: np.ndarray, family: bool = False,
              elapsed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exit and duration for children starting a stay in rule `r` at times t.

        With `family`, the draws are the family's (siblings in step share them, at the
        youngest's age), except a court's final order, which is each child's own: its own
        uniform and its own age (a placement order's age multipliers are the child's), while
        the time is still the family's."""
        k = self.kids
        own = family and r.state == S["proceedings"]
        ids_time = k.fam[idx] if family else idx
        ids_exit = idx if (own or not family) else k.fam[idx]
        u_exit = self._u(f"exit:{r.rule_id}", ids_exit, k.nev[idx])
        u_time = self._u(f"time:{r.rule_id}", ids_time, k.nev[idx])
        age = (t - k.birth[idx]) / DAYS_PER_YEAR
        own_band = age_band(age)
        band = age_band(_youngest_in_family(k.fam[idx], age)) if family else own_band
        hist = np.stack([k.prior_care[idx], k.prior_cpp[idx], k.nref[idx] > 1, k.uasc[idx],
                         ~k.in_care[idx]], axis=1)
        t_stay = t if elapsed is None else t - elapsed
        year = self._financial_year(t_stay) if r.trends else None
        sched = self._effect_schedule(r, idx, t_stay, family)

        def draw(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            e, dur = r.draw(u_exit, u_time, k.la[idx], b, hist, elapsed=elapsed, year=year)
            if sched is not None:
                sel, breaks, mults = sched
                e[sel], dur[sel] = r.draw_piecewise(
                    u_exit[sel], u_time[sel], k.la[idx[sel]], b[sel], hist[sel], breaks, mults,
                    elapsed=None if elapsed is None else elapsed[sel],
                    year=None if year is None else year[sel])
            return e, dur

        e, dur = draw(band)
        if own and np.any(own_band != band):
            e = draw(own_band)[0]
        return e, dur

    # -- interventions --------------------------------------------------------------------
    def _effect_schedule(self, r: CompiledRule, idx: np.ndarray, t_stay: np.ndarray,
                         family: bool = False):
        """For children `idx` whose stay in rule `r` began at `t_stay`: (selection, breaks,
        multipliers) of those with an intervention effect in force at some point of the
        stay, for `CompiledRule.draw_piecewise`; None if there are none.

        With `family` (a decision the siblings in step take together), each intervention
        acts on the whole family from its earliest onset among them: a child-level
        intervention reaching one sibling (a school social worker's referral of the
        7-year-old) changes the family's decision, as it does in practice. Applied to that
        child alone, it split the siblings and the others lost the family's lead (a baby's
        route to court), so a null effect on care entry came out as fewer care starts."""
        k = self.kids
        acting = [(j, iv) for j, iv in enumerate(self.ivs) if r.rule_id in iv.ratios]
        if not acting:
            return None
        onsets = []
        for j, _ in acting:
            onset = getattr(k, f"iv_onset_{j}")[idx]
            onsets.append(_family_min(k.fam[idx], onset) if family else onset)
        sel = np.zeros(idx.size, bool)
        for (j, iv), onset in zip(acting, onsets):
            sel |= np.isfinite(onset) & (t_stay - onset < iv.effect_end)
        if not sel.any():
            return None
        ii, ts = idx[sel], t_stay[sel]
        onsets = [o[sel] for o in onsets]
        cuts = [np.zeros((ii.size, 1))]
        for (j, iv), onset in zip(acting, onsets):
            cuts.append(np.clip(onset[:, None] + iv.breaks[None, :] - ts[:, None], 0.0, None))
        breaks = np.sort(np.concatenate(cuts, axis=1), axis=1)
        nxt = np.concatenate([breaks[:, 1:], breaks[:, -1:] + 2.0], axis=1)
        mid = (breaks + nxt) / 2.0  # where each segment's multipliers are read
        mults = np.ones(breaks.shape + (r.n_exits,))
        for (j, iv), onset in zip(acting, onsets):
            since = mid + ts[:, None] - onset[:, None]
            pos = np.searchsorted(iv.breaks, since, side="right") - 1
            share = np.where(pos >= 0, iv.shares[np.maximum(pos, 0)], 0.0)
            share = np.where(np.isfinite(onset)[:, None], share, 0.0)
            mults *= iv.ratios[r.rule_id][None, None, :] ** share[:, :, None]
        return sel, breaks, mults

    def _offer(self, j: int, iv: CompiledIntervention, idx: np.ndarray, t: np.ndarray) -> None:
        """Children `idx` reach intervention j's stage at `t`: rollout, eligibility, trial
        allocation, uptake, then (with places) a place, and the effect starts."""
        k = self.kids
        la = k.la[idx]
        ramp = iv.ramp(la, t)
        unit = k.fam[idx] if iv.family else idx
        age = np.maximum(t - k.birth[idx], 0.0) / DAYS_PER_YEAR  # unborn: eligible as aged 0
        if iv.family:
            age = _youngest_in_family(k.fam[idx], age)
        ok = (ramp > 0) & (age >= iv.ages[0]) & (age < iv.ages[1])
        if iv.not_in_care:
            ok &= ~k.in_care[idx]
        if iv.prevalence is not None:
            u = self._u(f"characteristic:{iv.characteristic}", k.fam[idx], np.zeros(idx.size, np.uint32))
            ok &= u < iv.prevalence[la]
        if j == self._trial_j:
            arm = getattr(k, f"iv_arm_{j}")
            ok &= arm[idx] == 0  # randomised once, at the first eligible entry
            ii = idx[ok]
            if ii.size:
                u = self._u(f"allocate:{iv.name}", unit[ok], np.zeros(ii.size, np.uint32))
                arm[ii] = np.where(u < self.trial.allocation, 2, 1)
                self._traced("entry", ii, t[ok])
                ok[ok] = u < self.trial.allocation
        if not ok.any():
            return
        self.rec.flow(f"intervention.{iv.name}.eligible", t[ok], la[ok])
        u = self._u(f"uptake:{iv.name}", unit[ok], k.nev[idx[ok]])
        take = np.zeros(idx.size, bool)
        take[ok] = u < iv.uptake * ramp[ok]
        if not take.any():
            return
        ii, tt = idx[take], t[take]
        if self._places[j] is None:
            self._start_effect(j, iv, ii, tt)
            return
        # one place per family (or child) and time, in time order
        key = np.stack([tt, unit[take].astype(float)])
        order = np.lexsort(key[::-1])
        ii, tt, key = ii[order], tt[order], key[:, order]
        cut = np.flatnonzero(np.any(np.diff(key, axis=1) != 0, axis=0)) + 1
        now, missed = [], []
        for grp, t0 in zip(np.split(ii, cut), tt[np.concatenate([[0], cut])].tolist()):
            heap = self._places[j][int(iv.place_area[k.la[grp[0]]])]
            if heap and heap[0] <= t0:  # a place is free: served at once
                heapq.heapreplace(heap, t0 + iv.service_days)
                now.append(grp)
            elif heap and iv.wait and heap[0] <= t0 + iv.max_wait_days:
                s0 = heapq.heapreplace(heap, heap[0] + iv.service_days)  # first place free
                self._waits.append((j, grp, s0, heap))  # settled once the stay is drawn
            else:
                missed.append(grp)
        if now:
            grp = np.concatenate(now)
            self._start_effect(j, iv, grp, k.t_enter[grp])
        if missed:
            grp = np.concatenate(missed)
            self.rec.flow(f"intervention.{iv.name}.missed", k.t_enter[grp], k.la[grp])

    def _start_effect(self, j: int, iv: CompiledIntervention, idx: np.ndarray, t: np.ndarray) -> None:
        """The intervention starts for children `idx` at `t`: onset, counts, cost."""
        k = self.kids
        getattr(k, f"iv_onset_{j}")[idx] = t
        la = k.la[idx]
        self.rec.flow(f"intervention.{iv.name}.started", t, la)
        first = np.zeros(idx.size, bool)  # one child per family
        first[np.unique(k.fam[idx], return_index=True)[1]] = True
        self.rec.flow(f"intervention.{iv.name}.families", t[first], la[first])
        if iv.unit_cost > 0:
            n_units = first if iv.cost_per_family else np.ones(idx.size, bool)
            self.rec.flow_value(f"cost.intervention.{iv.name}", t[n_units], la[n_units],
                                np.full(int(n_units.sum()), iv.unit_cost))

    def _settle_waits(self) -> None:
        """Families booked onto a place that comes free at s0 (drawn stays now known): a
        child whose stay ends first never uses it (missed; the booking is released); the
        others start the intervention at s0 and the rest of their stay is drawn again with
        its effect, from fresh random numbers, conditioned on the time already spent. Exact:
        outside the court nothing but its scheduled transition ends a stay."""
        k = self.kids
        waits, self._waits = self._waits, []
        served: dict[int, list[tuple[np.ndarray, float]]] = defaultdict(list)
        for j, grp, s0, heap in waits:
            iv = self.ivs[j]
            stays = k.t_next[grp] > s0
            live, gone = grp[stays], grp[~stays]
            if gone.size:
                self.rec.flow(f"intervention.{iv.name}.missed", k.t_enter[gone], k.la[gone])
            if live.size == 0:
                heap.remove(s0 + iv.service_days)
                heap.append(s0)
                heapq.heapify(heap)
            elif s0 < self.horizon:
                served[j].append((live, s0))
        redraw = []
        for j, parts in served.items():
            live = np.concatenate([p[0] for p in parts])
            t = np.concatenate([np.full(p[0].size, p[1]) for p in parts])
            self._start_effect(j, self.ivs[j], live, t)
            redraw.append((live, t))
        if redraw:
            live = np.concatenate([r[0] for r in redraw])
            t = np.concatenate([r[1] for r in redraw])
            live, first = np.unique(live, return_index=True)  # served by two at once: once
            t = t[first]
            k.nev[live] += 1  # fresh draws for the rest of the stay
            self._next(live, t, elapsed=t - k.t_enter[live])

    def _traced(self, what: str, idx: np.ndarray, t: np.ndarray) -> None:
        """Log an event of virtual-trial children (no-op outside a trial)."""
        if self._trial_j < 0 or idx.size == 0:
            return
        arm = getattr(self.kids, f"iv_arm_{self._trial_j}")[idx]
        m = arm > 0
        if m.any():
            self._trace[what].append((idx[m].copy(), np.asarray(t)[m].copy(), arm[m].copy(),
                                      self.kids.la[idx[m]].copy()))

    def trace(self) -> dict[str, pd.DataFrame]:
        """The virtual trial's events: `entry` (randomisation), `care_start`, `care_end`,
        `issued`; columns child, t (days from the start), arm (1 control, 2 intervention), la."""
        out = {}
        for what in ("entry", "care_start", "care_end", "issued"):
            parts = self._trace.get(what, [])
            cols = [np.concatenate([p[i] for p in parts]) if parts else np.empty(0)
                    for i in range(4)]
            out[what] = pd.DataFrame({"child": cols[0].astype(np.int64), "t": cols[1].astype(float),
                                      "arm": cols[2].astype(np.int8), "la": cols[3].astype(np.int32)})
        return out

    def _next(self, idx: np.ndarray, t: np.ndarray, elapsed: np.ndarray | None = None) -> None:
        """Draw and schedule the next transition of children starting (or, with `elapsed`,
        part-way through) a stay in their current state at time t."""
        k = self.kids
        rids = self._variant(idx)
        none = rids < 0
        if none.any():  # a state without rules: nothing more happens
            k.t_next[idx[none]] = np.inf
        for rid in np.unique(rids[~none]):
            sel = rids == rid
            r = self.pathway.rules[rid]
            ii, tt = idx[sel], t[sel]
            # siblings referred together move together (same draws) until their paths
            # part (e.g. one reaches 18)
            e, dur = self._draw(r, ii, tt, family=True,
                                elapsed=None if elapsed is None else elapsed[sel])
            t_next = tt + dur
            if self._unborn_possible:
                # no care proceedings and no care before birth: those steps wait for it
                t_next = np.where(self._after_birth[r.targets[e]], np.maximum(t_next, k.birth[ii]), t_next)
            stay = r.targets[e] == r.state  # "stays": no further transition of its own
            t_next = np.where(stay, np.inf, t_next)
            t18 = k.birth[ii] + AGE_OUT_DAYS
            age_out = t18 <= t_next
            if r.state == S["closed"]:
                # closed for good (no re-referral before 18): outside the system
                gone = stay | age_out
                k.done[ii[gone]] = True
                t_next = np.where(gone, np.inf, t_next)
                age_out = np.zeros_like(age_out)
            k.nxt[ii] = np.where(age_out, -1, e)
            k.rule[ii] = rid
            k.t_next[ii] = np.where(age_out, t18, t_next)
            if r.state == S["looked_after"] and r.variant == "placement_order":
                adopt = (r.targets[e] == S["adopted"]) & ~age_out
                if adopt.any():
                    ai = ii[adopt]
                    lead = self.pfa_dist.sample(self._u("pfa_lead", ai, k.nev[ai]))
                    if self.sc.placements.adoption_placement_lead_by_year:
                        # by the financial year of the adoption order
                        lead = lead * self._pfa_lead_multiplier(k.t_next[ai])
                    k.t_pfa[ai] = np.maximum(tt[adopt], k.t_next[ai] - lead)
            self._schedule(ii)
