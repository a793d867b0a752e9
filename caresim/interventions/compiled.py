"""Interventions compiled for one replication: arrays the engine reads while it runs.

Compiling resolves everything that does not change during a run: the day each simulated
LA starts offering the intervention (its rollout wave) and stops (`rollout.end`), the
eligibility prevalence per LA, the hazard ratios drawn for this replication, which exits
of which pathway rules they act on, the unit cost at the scenario's price base, and the
service places per area (LA, region or England).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from caresim.errors import CaresimError
from caresim.interventions.effect import draw_ratio, waning_schedule
from caresim.pathway.compiled import DAYS_PER_YEAR, STATE_INDEX, Pathway
from caresim.population.local import LocalAuthorities
from caresim.scenario.model import Intervention, Scenario


@dataclass
class CompiledIntervention:
    name: str
    stage: int  # state index where it is offered
    family: bool  # uptake decided per family (siblings in step) rather than per child
    start: np.ndarray  # (n_la,) first day offered (inf: never)
    end: float  # day from which no LA offers it
    ramp_days: float
    ages: tuple[float, float]
    not_in_care: bool
    characteristic: str | None
    prevalence: np.ndarray | None  # (n_la,) probability a family at the stage has it
    uptake: float
    ratios: dict[int, np.ndarray]  # rule id -> (n_exits,) hazard ratio at full effect
    hazard_ratios: list[float]  # the drawn ratio of each `effects` entry
    breaks: np.ndarray  # days since onset at which the share of the log ratio changes
    shares: np.ndarray  # share of the log ratio in force from each break
    unit_cost: float  # GBP at the scenario's price base, per child or family served
    cost_per_family: bool
    places: np.ndarray | None  # (n_areas,) whole places at the simulated scale; None: unlimited
    place_area: np.ndarray | None  # (n_la,) area index of each LA
    service_days: float
    wait: bool
    max_wait_days: float

    @property
    def lasting(self) -> bool:
        return bool(self.shares[-1] > 0)

    @property
    def effect_end(self) -> float:
        """Days after onset when the effect is over (inf if it lasts)."""
        return np.inf if self.lasting else float(self.breaks[-1])

    def ramp(self, la: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Share of full uptake in force for LAs `la` at days `t` (0 before the start)."""
        since = t - self.start[la]
        if self.ramp_days > 0:
            r = np.clip(since / self.ramp_days, 0.0, 1.0)
        else:
            r = (since >= 0).astype(float)
        return np.where((since >= 0) & (t < self.end), r, 0.0)


def _days(start: dt.date, d: dt.date) -> float:
    return float((d - start).days)


def _rollout_start(iv: Intervention, name: str, las: LocalAuthorities, start: dt.date,
                   known_codes: set[str]) -> tuple[np.ndarray, float]:
    n = las.n
    if iv.rollout is None:
        return np.zeros(n), np.inf
    codes = las.codes
    regions = list(las.regions.to_numpy())
    known_regions = set(regions) | set(las.table["region_name"].dropna())
    first = np.full(n, np.inf)
    assigned = np.zeros(n, bool)
    for w, wave in enumerate(iv.rollout.waves):
        if wave.las is not None:
            unknown = sorted(set(wave.las) - known_codes)
            if unknown:
                raise CaresimError(f"interventions.{name}.rollout.waves[{w}].las: unknown LA "
                                   f"code(s) {', '.join(unknown)}")
            sel = np.isin(codes, wave.las)
        elif wave.regions is not None:
            unknown = sorted(set(wave.regions) - known_regions)
            if unknown:
                raise CaresimError(f"interventions.{name}.rollout.waves[{w}].regions: unknown "
                                   f"region(s) {', '.join(unknown)}; one of {', '.join(sorted(known_regions))}")
            sel = np.isin(regions, wave.regions)
        else:
            sel = ~assigned
        day = _days(start, wave.start)
        first = np.where(sel, np.minimum(first, day), first)
        assigned |= sel
    end = np.inf if iv.rollout.end is None else _days(start, iv.rollout.end)
    return first, end


def _ratios(iv: Intervention, drawn: list[float], pathway: Pathway) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for hr, value in zip(iv.effects, drawn):
        for r in pathway.rules:
            for e, name in enumerate(r.names):
                if name in hr.transitions:
                    out.setdefault(r.rule_id, np.ones(r.n_exits))[e] *= value
    return {k: v for k, v in out.items() if (v != 1.0).any()}


def compile_interventions(scenario: Scenario, las: LocalAuthorities, pathway: Pathway,
                          normal_draw, scale: float, known_codes: set[str],
                          draw_effects: bool = True) -> list[CompiledIntervention]:
    """Compile the scenario's interventions for one replication.

    `normal_draw(purpose)` returns this replication's standard normal deviate for a purpose
    (one per effect, so scenarios that share an intervention share its draws); with
    `draw_effects` False every effect takes its central value."""
    out = []
    referrals = las.column("referrals")
    nat_referrals = float(las.national["referrals"])
    for name, iv in scenario.interventions.items():
        start, end = _rollout_start(iv, name, las, scenario.start, known_codes)
        drawn = [draw_ratio(hr, normal_draw(f"effect:{name}:{k}") if draw_effects else 0.0)
                 for k, hr in enumerate(iv.effects)]
        breaks, shares = waning_schedule(iv.waning)
        prevalence = None
        ch = iv.eligibility.characteristic
        if ch is not None:
            col = las.column(ch.la_column)
            nat = float(las.national.get(ch.la_column, np.nan))
            if not np.isfinite(nat) or nat <= 0:
                raise CaresimError(f"interventions.{name}.eligibility.characteristic: la_inputs has "
                                   f"no England value for {ch.la_column!r}")
            prevalence = np.clip(ch.prevalence.value * col / nat, 0.0, 1.0)
        unit_cost, per_family = 0.0, iv.unit == "family"
        if iv.cost is not None:
            c = iv.cost
            unit_cost = c.amount * c.uplift
            if c.basis == "per_year":
                unit_cost *= c.service_days / DAYS_PER_YEAR
            per_family = c.per == "family"
        places, area = None, None
        cap = iv.capacity
        if cap is not None:
            if cap.geography == "la":
                area = np.arange(las.n, dtype=np.int32)
            else:
                area, _names = las.area_of(cap.geography)
            share = np.bincount(area, weights=referrals / nat_referrals)
            places = np.round(cap.places * scale * share)
        out.append(CompiledIntervention(
            name=name, stage=STATE_INDEX[iv.stage], family=iv.unit == "family",
            start=start, end=end,
            ramp_days=iv.rollout.ramp_up_days if iv.rollout else 0.0,
            ages=tuple(iv.eligibility.ages), not_in_care=iv.eligibility.not_in_care,
            characteristic=ch.name if ch else None, prevalence=prevalence,
            uptake=iv.uptake.value, ratios=_ratios(iv, drawn, pathway), hazard_ratios=drawn,
            breaks=breaks, shares=shares, unit_cost=unit_cost, cost_per_family=per_family,
            places=places, place_area=area, service_days=cap.service_days if cap else 0.0,
            wait=bool(cap and cap.when_full == "wait"),
            max_wait_days=cap.max_wait_days if cap else 0.0,
        ))
    return out
