"""The scenario schema (pydantic v2): what a scenario YAML file may say.

A scenario is the whole, named, set of inputs of a run: the horizon, the geography, the
pathway (sojourn distributions and exit probabilities of every state), arrivals, the
court and placement capacities, unit costs, the starting state, and hazard multipliers.
Every number that is not read from the calibration tables carries its provenance:
`sources` (ids in `calibration/published_figures.csv`, or `dfe:<table>`), a `note` on how
it was derived, or, where nothing is published, an `assumption` name and a plausible
`range` (the sensitivity analysis sweeps these).

Units: durations are days unless a field says otherwise; volumes are per year; costs are
GBP in the scenario's `costs.price_base` prices.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, get_args

import numpy as np

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from caresim.scenario.uncertain import UncertainParam, check_uncertain

# Canonical names (DESIGN.md). Kept here, the lowest layer, so every layer shares them.
StateName = Literal[
    "referral",
    "early_help",
    "child_in_need",
    "s47_enquiry",
    "child_protection_plan",
    "pre_proceedings",
    "proceedings",
    "looked_after",
    "returned_home",
    "special_guardianship",
    "child_arrangements",
    "adopted",
    "left_care",
    "closed",
]
STATES: tuple[str, ...] = get_args(StateName)
TERMINAL_STATES: tuple[str, ...] = ("adopted", "left_care")

LegalStatus = Literal["s20", "interim_care_order", "care_order", "placement_order"]
LEGAL_STATUSES: tuple[str, ...] = get_args(LegalStatus)

PlacementType = Literal[
    "kinship_foster",
    "foster_inhouse",
    "foster_agency",
    "residential",
    "supported",
    "placed_with_parents",
    "placed_for_adoption",
]
PLACEMENTS: tuple[str, ...] = get_args(PlacementType)

AgeBand = Literal["under_1", "1-4", "5-9", "10-15", "16-17"]
AGE_BANDS: tuple[str, ...] = get_args(AgeBand)
#: lower edge of each age band, in years
AGE_BAND_EDGES: tuple[float, ...] = (0.0, 1.0, 5.0, 10.0, 16.0)

LaIndex = Literal["cpp_index", "care_entry_index", "cla_duration_index", "cin_duration_index"]
#: LA indices derived from the calibration table (1 = England), see caresim.population.local
LA_INDICES: tuple[str, ...] = get_args(LaIndex)

#: a child's flags when a stay starts: looked after before, on a plan before, referred more
#: than once, unaccompanied asylum-seeking, and not looked after now (`at_home`: within care
#: proceedings, a child not in interim care)
HistoryFlag = Literal["prior_care", "prior_cpp", "rereferral", "uasc", "at_home"]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: "A->B": a named transition between two canonical states
TransitionName = Annotated[str, Field(pattern=r"^[a-z0-9_]+->[a-z0-9_]+$")]
#: a financial year by its ending year (2021 = April 2020 to March 2021)
FinancialYear = Annotated[int, Field(ge=2000, le=2060)]


class Strict(BaseModel):
    """Base for every schema model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Provenance(Strict):
    """Where a number comes from. At least one of `sources` or `assumption` should be given."""

    sources: list[str] = Field(
        default_factory=list,
        description="ids in calibration/published_figures.csv (e.g. R207) or dfe:<table> names",
    )
    note: str | None = Field(None, description="how the value was derived from its sources")
    assumption: str | None = Field(
        None, description="name of the assumption when nothing is published"
    )
    range: tuple[float, float] | None = Field(
        None, description="plausible range (low, high) of an assumption, for sensitivity analysis"
    )

    @model_validator(mode="after")
    def _range_ordered(self) -> "Provenance":
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range low {self.range[0]} is above high {self.range[1]}")
        return self


class Param(Provenance):
    """A scalar parameter with its provenance."""

    value: float


class NonNegParam(Provenance):
    value: NonNegativeFloat


class ProbParam(Provenance):
    value: Probability


class Band(Strict):
    """One band of a piecewise sojourn distribution: probability `p` of ending by `upto` days
    (and after the previous band's `upto`); durations are uniform within a band."""

    upto: PositiveFloat
    p: Probability


class Sojourn(Provenance):
    """Distribution of the time spent in a state (days).

    - exponential: `mean`
    - weibull: `mean`, `shape` (k; k<1 means a falling hazard, k>1 a rising one)
    - gamma: `mean`, `shape`
    - lognormal: `mean`, `sigma` (of the log)
    - piecewise: `bands` (empirical: probabilities of ending in each band; uniform inside)

    `age_multiplier` stretches the stay of a child in an age band when it starts (2.0:
    twice as long, the exits unchanged), e.g. 16- and 17-year-olds accommodated under
    section 20 staying until 18.

    `scale` (piecewise only; the other distributions have `mean`) stretches every stay, at
    every age, by the factor: for bands derived outside the model (child protection plans,
    caresim/population/cpp_lengths.py) it lets a calibration move the lengths without
    re-deriving the bands.
    """

    dist: Literal["exponential", "weibull", "gamma", "lognormal", "piecewise"]
    mean: PositiveFloat | None = Field(None, description="mean duration, days")
    shape: PositiveFloat | None = None
    sigma: PositiveFloat | None = None
    bands: list[Band] | None = None
    age_multiplier: dict[AgeBand, PositiveFloat] = Field(
        default_factory=dict, description="duration multiplier by age band at the stay's start")
    scale: PositiveFloat = Field(
        1.0, description="piecewise only: every stay's duration multiplier (all ages)")

    @model_validator(mode="after")
    def _fields_for_dist(self) -> "Sojourn":
        need = {
            "exponential": ("mean",),
            "weibull": ("mean", "shape"),
            "gamma": ("mean", "shape"),
            "lognormal": ("mean", "sigma"),
            "piecewise": ("bands",),
        }[self.dist]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"dist '{self.dist}' needs {', '.join(missing)}")
        if self.scale != 1.0 and self.dist != "piecewise":
            raise ValueError(f"scale is for piecewise distributions; a {self.dist}'s is its mean")
        if self.dist == "piecewise":
            assert self.bands is not None
            uptos = [b.upto for b in self.bands]
            if any(b <= a for a, b in zip(uptos, uptos[1:])):
                raise ValueError("piecewise bands must have increasing 'upto'")
            total = sum(b.p for b in self.bands)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"piecewise band probabilities sum to {total:.6g}, not 1")
        return self


class Exit(Provenance):
    """One competing exit from a state.

    `p` is the probability that a stay ends by this exit (for a child with no modifiers);
    `rest` takes what the other exits leave. `age_multiplier` and `history_multiplier`
    scale this exit's weight for children in an age band or with a history flag (the
    weights are then renormalised), so destinations can depend on the child: e.g. a court's
    final order with `history_multiplier: {at_home: 0.05}` is made for a child who was not in
    interim care at a twentieth of the rate.
    """

    to: StateName
    p: Probability | Literal["rest"]
    legal_status: LegalStatus | None = Field(
        None, description="legal status on arrival, for exits into looked_after"
    )
    age_multiplier: dict[AgeBand, NonNegativeFloat] = Field(default_factory=dict)
    history_multiplier: dict[HistoryFlag, NonNegativeFloat] = Field(default_factory=dict)


class StateRule(Provenance):
    """Sojourn distribution and competing exits of one state (or one variant of it)."""

    sojourn: Sojourn
    exits: dict[str, Exit] = Field(
        description="exits keyed by a label (e.g. 'care_order'); the label names the exit in outputs"
    )

    @model_validator(mode="after")
    def _exits_sum(self) -> "StateRule":
        rest = [k for k, e in self.exits.items() if e.p == "rest"]
        if len(rest) > 1:
            raise ValueError(f"only one exit may have p: rest (found {', '.join(rest)})")
        total = sum(e.p for e in self.exits.values() if e.p != "rest")
        if rest and total > 1.0 + 1e-9:
            raise ValueError(f"exit probabilities sum to {total:.6g} > 1, nothing left for 'rest'")
        if not rest and abs(total - 1.0) > 1e-6:
            raise ValueError(f"exit probabilities sum to {total:.6g}, not 1 (or give one p: rest)")
        return self

    def probabilities(self) -> dict[str, float]:
        """Exit probabilities with `rest` resolved."""
        fixed = {k: float(e.p) for k, e in self.exits.items() if e.p != "rest"}
        return {
            k: (fixed[k] if k in fixed else max(0.0, 1.0 - sum(fixed.values())))
            for k in self.exits
        }


class StateSpec(Provenance):
    """A state's rules: one `StateRule`, or `variants` keyed by the child's situation.

    `looked_after` uses variants by legal status (`s20`, `care_order`, `placement_order`) and
    `uasc` for unaccompanied asylum-seeking children; other states have a single rule.
    """

    sojourn: Sojourn | None = None
    exits: dict[str, Exit] | None = None
    variants: dict[Literal["s20", "care_order", "placement_order", "uasc"], StateRule] | None = Field(
        None, description="looked_after only: rules by legal status and for UASC"
    )

    @model_validator(mode="after")
    def _one_form(self) -> "StateSpec":
        single = self.sojourn is not None or self.exits is not None
        if single == (self.variants is not None):
            raise ValueError("give either sojourn+exits or variants, not both or neither")
        if self.variants is not None and "s20" not in self.variants:
            raise ValueError("variants need at least 's20' (used for any variant not given)")
        if single:
            if self.sojourn is None or self.exits is None:
                raise ValueError("a state rule needs both sojourn and exits")
            StateRule(sojourn=self.sojourn, exits=self.exits)  # validates the sums
        return self

    def rules(self) -> dict[str, StateRule]:
        """Variant name -> rule (a single-rule state has the one variant `default`)."""
        if self.variants is not None:
            return dict(self.variants)
        assert self.sojourn is not None and self.exits is not None
        return {"default": StateRule(sojourn=self.sojourn, exits=self.exits)}


class Geography(Strict):
    """Which local authorities to simulate: all 153 (default), a list of ONS codes, or a region."""

    las: list[Annotated[str, Field(pattern=r"^E0[6-9]\d{6}$|^E10\d{6}$")]] | None = None
    region: str | None = None


class RunSettings(Strict):
    replications: PositiveInt = 10
    seed: Annotated[int, Field(ge=0)] = 20240401
    scale: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        1.0, description="fraction of children simulated; counts are scaled back up"
    )


class DataFiles(Strict):
    """Calibration tables, as paths relative to the scenario file. In `la_inputs`,
    `{year}` stands for the start year (the table of stocks at 31 March of that year)."""

    la_inputs: str = "../calibration/la_inputs_{year}.csv"
    history: str = "../calibration/history.csv"
    la_multipliers: str | None = Field(
        None, description="fitted per-LA multipliers of the LA indices (caresim calibrate)"
    )
    parameter_samples: str | None = Field(
        None, description="joint draws of fitted parameters, for --parameter-uncertainty (caresim calibrate)"
    )


class Referrals(Provenance):
    """Fresh referrals: a Poisson stream per LA, from the LA's published referrals."""

    column: str = Field("referrals", description="la_inputs column with referrals per year")
    multiplier: NonNegativeFloat = Field(1.0, description="scales every LA's rate")
    annual_growth: float = Field(0.0, ge=-0.5, le=0.5, description="growth per year, e.g. 0.02")
    new_child_share: Probability = Field(
        description="share of referrals that bring a child new to the model (the rest are re-referrals generated by `closed`)"
    )
    use_published: bool = Field(
        False, description="in years with published LA referrals (calibration/history.csv), use them instead of the start year's"
    )


class Uasc(Provenance):
    """Unaccompanied asylum-seeking children: a separate inflow straight into care (s20)."""

    per_year: NonNegativeFloat = Field(description="national arrivals per year")
    la_column: str = Field("cla_starts_uasc", description="la_inputs column distributing them")
    use_published: bool = Field(
        False, description="in years with published national UASC starts, use them instead of per_year"
    )
    age_at_arrival: dict[AgeBand, Probability]


class PreBirth(Provenance):
    """Referrals before birth: `share` of the fresh referrals aged under 1 are of unborn
    babies, referred between `weeks_before_birth` (uniform) before the birth. Their case runs
    as any under-1's (assessment, enquiry, plan, pre-proceedings); care proceedings cannot be
    issued, and a child cannot be looked after, before the birth: a step into either waits
    for it (the baby born into care proceedings or accommodated at birth)."""

    share: ProbParam = Field(description="share of the under-1 fresh referrals made before birth")
    weeks_before_birth: tuple[NonNegativeFloat, PositiveFloat] = Field(
        description="range of the weeks between the referral and the birth (uniform)")

    @model_validator(mode="after")
    def _ordered(self) -> "PreBirth":
        lo, hi = self.weeks_before_birth
        if not lo < hi:
            raise ValueError(f"weeks_before_birth must be [low, high] with low < high, not {[lo, hi]}")
        if hi > 40:
            raise ValueError(f"weeks_before_birth {hi} is longer than a pregnancy (40 weeks)")
        return self


class Arrivals(Strict):
    referrals: Referrals
    family_size: dict[Annotated[int, Field(ge=1, le=10)], Probability] = Field(
        description="distribution of the number of siblings referred together"
    )
    age_at_referral: dict[AgeBand, Probability]
    pre_birth: PreBirth | None = Field(
        None, description="referrals of unborn babies (a share of the under-1 referrals); none if absent")
    uasc: Uasc
    prior_cpp: ProbParam | None = Field(
        None,
        description="share of children new to the model (fresh referrals, and the starting "
                    "stocks outside child protection and care unless initial_state.prior_cpp "
                    "is given) who had a child protection plan before it (their next plan is "
                    "a second or subsequent one)",
    )

    @field_validator("family_size", "age_at_referral")
    @classmethod
    def _sums_to_one(cls, v: dict) -> dict:
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shares sum to {total:.6g}, not 1")
        return v


def by_year_value(by_year: dict, year: int, default: float = 1.0) -> float:
    """The value of a by-financial-year mapping (ending year: 2021 = 2020-21 -> a Param) in
    financial year `year`: before the first year listed the first value applies, after the
    last the last (held in projections), and a gap holds the previous year's value;
    `default` if the mapping is empty. Shared by every `*_by_year` field."""
    if not by_year:
        return default
    years = sorted(by_year)
    y = min(max(int(year), years[0]), years[-1])
    y = max(k for k in years if k <= y)
    return float(by_year[y].value)


class Court(Provenance):
    """Family court capacity for care proceedings (processor sharing).

    Each case (a family's application) needs `proceedings` sojourn of work at the normal pace.
    While an area has N cases in progress, more than its share C of `capacity_cases`,
    every case in it progresses at (C/N)**congestion_elasticity of the normal pace, so
    durations stretch.
    """

    areas: Literal["national", "region"] = "region"
    capacity_cases: NonNegParam = Field(
        description="national cases that can progress at the normal pace at once; split across areas by demand"
    )
    congestion_elasticity: NonNegParam = Field(
        description="alpha in (0, 1]: with N cases over capacity C each progresses at (C/N)**alpha of the normal pace"
    )
    interim_care_at_issue: ProbParam = Field(
        description="share of children not already looked after who enter interim care when proceedings are issued"
    )
    interim_care_by_route: dict[StateName, ProbParam] = Field(
        default_factory=dict,
        description="the same share for proceedings issued from a given state (e.g. pre_proceedings), overriding interim_care_at_issue",
    )
    capacity_by_year: dict[FinancialYear, NonNegParam] = Field(
        default_factory=dict,
        description="capacity in a financial year (by its ending year: 2021 = 2020-21) relative to "
                    "capacity_cases, changing at 1 April; before the first year listed the first "
                    "value applies, after the last the last (held in projections)",
    )

    def capacity_multiplier(self, year: int) -> float:
        """capacity_by_year's multiplier in financial year `year` (ending year); 1 if empty."""
        return by_year_value(self.capacity_by_year, year)


class PlacementSupply(Provenance):
    weekly_cost: NonNegParam
    capacity: NonNegParam | None = Field(
        None, description="national places (split across areas by their 2024 stock); none = unlimited"
    )
    fallback: list[PlacementType] = Field(
        default_factory=list, description="where a child goes, in order, when this type is full"
    )


class PlacementStep(Strict):
    """A move at a birthday while in care: of the children looked after on the day they reach
    `age`, the share `share[t]` of those placed in type t move to type `to` (e.g. from foster
    or residential care to supported accommodation at 16)."""

    age: float = Field(gt=0.0, lt=18.0, description="age in years at which the move happens")
    to: PlacementType = Field(description="placement type the children move to")
    share: dict[PlacementType, ProbParam] = Field(
        description="per placement type the children are in: share who move (types not listed: none)"
    )

    @model_validator(mode="after")
    def _not_to_itself(self) -> "PlacementStep":
        if self.to in self.share:
            raise ValueError(f"placement step at age {self.age:g}: share lists {self.to!r}, "
                             f"the type children move to")
        if "placed_for_adoption" in self.share or self.to == "placed_for_adoption":
            raise ValueError("placement step: placed_for_adoption follows the adoption timing "
                             "(adoption_placement_lead_days), it cannot be a step's type")
        return self


class Placements(Strict):
    geography: Literal["national", "region"] = "region"
    supply: dict[PlacementType, PlacementSupply]
    entry_mix: dict[AgeBand, dict[PlacementType, Probability]] = Field(
        description="preferred placement on entering care, by age band"
    )
    adoption_placement_lead_days: Sojourn = Field(
        description="time before the adoption order at which a child moves to placed_for_adoption"
    )
    adoption_placement_lead_by_year: dict[FinancialYear, NonNegParam] = Field(
        default_factory=dict,
        description="multiplier on adoption_placement_lead_days for children whose adoption "
                    "order falls in a financial year (by its ending year: 2022 = 2021-22), "
                    "changing at 1 April; before the first year listed the first value "
                    "applies, after the last the last (held in projections); empty: 1",
    )
    return_from_fallback: list[PlacementType] = Field(
        default_factory=list,
        description="children placed in one of these types only because their preferred type "
                    "was full (supply.fallback) move back, first come first served, as soon as a "
                    "place frees in their preferred type or a type before this one in its "
                    "fallback chain; empty: they stay for the whole stay",
    )
    steps: list[PlacementStep] = Field(
        default_factory=list,
        description="moves between placement types at given ages while in care "
                    "(e.g. foster to supported accommodation at 16)",
    )

    def adoption_lead_multiplier(self, year: int) -> float:
        """adoption_placement_lead_by_year's multiplier for adoption orders in financial year
        `year` (ending year); 1 if empty."""
        return by_year_value(self.adoption_placement_lead_by_year, year)

    @model_validator(mode="after")
    def _steps_known(self) -> "Placements":
        for st in self.steps:
            for p in (st.to, *st.share):
                if p not in self.supply:
                    raise ValueError(f"placement step at age {st.age:g}: {p!r} is not in "
                                     f"placements.supply")
        for p in self.return_from_fallback:
            if p not in self.supply:
                raise ValueError(f"return_from_fallback: {p!r} is not in placements.supply")
        return self

    @field_validator("entry_mix")
    @classmethod
    def _mix_sums(cls, v: dict) -> dict:
        for band, mix in v.items():
            total = sum(mix.values())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"entry_mix[{band}] sums to {total:.6g}, not 1")
        return v


class Costs(Strict):
    price_base: str = Field(description="financial year of the prices, e.g. 2024-25")
    court_per_case: NonNegParam
    discount_rate: ProbParam | None = None


class InitialState(Strict):
    """Stocks at the start date. Published stocks (CLA, CPP, CIN) are read from la_inputs;
    states with nothing published take an assumed national stock, shared across LAs by
    referrals, with time-so-far drawn from the state's own sojourn distribution."""

    assumed_stocks: dict[StateName, NonNegParam] = Field(default_factory=dict)
    kinship_share_of_foster: ProbParam | None = Field(
        None, description="share of foster placements with kin, where la_inputs has no LA figure"
    )
    prior_cpp: ProbParam | None = Field(
        None,
        description="share of the starting stocks outside child protection (children in need, "
                    "in care, in court, closed cases...) who had a child protection plan before "
                    "the start (their next plan is a second or subsequent one); without it they "
                    "take arrivals.prior_cpp, and children in care none",
    )


class LocalVariation(Provenance):
    """LA variation applied from an la_inputs index column (1 = national average)."""

    kind: Literal["hazard", "duration"]
    transitions: list[TransitionName] = Field(
        default_factory=list, description="for kind: hazard, the transitions it multiplies"
    )
    states: list[StateName] = Field(
        default_factory=list, description="for kind: duration, the states whose sojourns it stretches"
    )
    index: LaIndex = Field(description="LA index from la_inputs (see caresim.population.local)")
    bounds: tuple[PositiveFloat, PositiveFloat] = (0.25, 4.0)


class Trend(Provenance):
    """A trend in a transition's probability over financial years.

    In financial year Y (by its ending year: 2021 = 2020-21) the exit probability of
    `transition` (after age and history multipliers, before LA hazard multipliers) is
    multiplied by per_year ** (Y' - base_year), where Y' is Y held within
    [from_year, through_year]; the state's other exits share the rest in their
    proportions, and the time in the state is unchanged. The year is the one in which the
    stay starts. `after` says what happens after `through_year` (the last year the data
    show): `held` at through_year's level (the default, an assumption to name in
    `assumption`) or `continues`."""

    transition: TransitionName
    per_year: NonNegParam = Field(description="multiplier per year (1 = no trend)")
    base_year: FinancialYear = Field(
        description="the year whose level is the exit's `p` (multiplier 1)")
    from_year: FinancialYear | None = Field(
        None, description="before this year the multiplier is held at its level (none: the trend runs back)")
    through_year: FinancialYear = Field(description="the last year the trend is known (from the data)")
    after: Literal["held", "continues"] = Field(
        "held", description="after through_year: held at through_year's level, or continues")

    @model_validator(mode="after")
    def _years_ordered(self) -> "Trend":
        if self.from_year is not None and self.through_year < self.from_year:
            raise ValueError(f"through_year {self.through_year} is before from_year {self.from_year}")
        return self

    def multiplier(self, year):
        """The multiplier in financial year(s) `year` (ending year; a number or an array)."""
        lo = -np.inf if self.from_year is None else self.from_year
        hi = self.through_year if self.after == "held" else np.inf
        return self.per_year.value ** (np.clip(year, lo, hi) - self.base_year)


class HazardMultiplier(Provenance):
    """Multiplies the hazard of a named transition (a multiplier of 1 changes nothing)."""

    transition: TransitionName
    value: NonNegativeFloat
    las: list[str] | None = None


LaCode = Annotated[str, Field(pattern=r"^E0[6-9]\d{6}$|^E10\d{6}$")]


class HazardRatio(Provenance):
    """An intervention's effect on named transitions: a hazard ratio with its evidence's
    uncertainty. With an `interval` (at `level`), each replication draws the ratio from a
    split lognormal whose median is `central` and whose quantiles at (1 -/+ level)/2 are the
    interval's ends (log-normal on each side, so asymmetric intervals are kept)."""

    transitions: list[TransitionName] = Field(min_length=1)
    central: PositiveFloat
    interval: tuple[PositiveFloat, PositiveFloat] | None = Field(
        None, description="published (or derived) interval of the ratio; none = a point value"
    )
    level: float = Field(0.95, gt=0.5, lt=1.0, description="coverage of `interval`")

    @model_validator(mode="after")
    def _central_inside(self) -> "HazardRatio":
        if self.interval is not None:
            lo, hi = self.interval
            if not lo <= self.central <= hi:
                raise ValueError(f"central {self.central} is outside interval [{lo}, {hi}]")
        return self


class Waning(Provenance):
    """How an effect runs over time since the intervention started (its onset): none for
    `onset_days`, then the full hazard ratio for `full_days` (none = for good), then fading
    linearly on the log scale to no effect over `waning_days`, in `steps` equal steps."""

    onset_days: NonNegativeFloat = 0.0
    full_days: PositiveFloat | None = None
    waning_days: NonNegativeFloat = 0.0
    steps: Annotated[int, Field(ge=1, le=12)] = 4


class Characteristic(Provenance):
    """A family characteristic that decides eligibility (e.g. parental substance misuse).

    Each family has one latent draw per characteristic (the same in every scenario), and has
    the characteristic at the intervention's stage with probability `prevalence` (national,
    at that stage) times its LA's `la_column` relative to England's, capped at 1."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    la_column: str = Field(description="la_inputs column with the LA's share (relative to England's)")
    prevalence: ProbParam = Field(description="share of families at the stage with the characteristic")


class Eligibility(Strict):
    ages: tuple[NonNegativeFloat, PositiveFloat] = Field(
        (0.0, 18.0), description="age range in years [low, high) of the child at the stage (the youngest sibling's, for a family)"
    )
    not_in_care: bool = Field(False, description="only children not looked after when they reach the stage")
    characteristic: Characteristic | None = None


class InterventionCost(Provenance):
    """Unit cost: `amount` per child or per family served, one-off at the start or per year
    of service (charged for `service_days` at the start, pro rata)."""

    amount: NonNegativeFloat
    per: Literal["child", "family"]
    basis: Literal["one_off", "per_year"] = "one_off"
    service_days: PositiveFloat | None = None
    price_base: str = Field(description="financial year of `amount`'s prices, e.g. 2021-22")
    uplift: NonNegativeFloat = Field(
        1.0, description="factor to the scenario's price base (required, with its source, when price bases differ)"
    )

    @model_validator(mode="after")
    def _service_days(self) -> "InterventionCost":
        if self.basis == "per_year" and self.service_days is None:
            raise ValueError("basis per_year needs service_days (how long a family is served)")
        return self


class ServiceCapacity(Provenance):
    """A service with finite places (e.g. FGC coordinators): `places` families served at
    once nationally when every LA offers it, shared across areas (`geography`) by their
    referrals; a family holds a place for `service_days`. When its area's places are full a
    family `wait`s (up to `max_wait_days`, then misses out; its effect starts when served)
    or `miss`es out. Regional pools (the default) keep whole places at small `--scale`."""

    places: NonNegativeFloat
    service_days: PositiveFloat
    when_full: Literal["wait", "miss"] = "miss"
    max_wait_days: NonNegativeFloat = 0.0
    geography: Literal["la", "region", "national"] = Field(
        "region", description="pool places per LA, per region or nationally"
    )


class Wave(Strict):
    start: dt.date
    las: list[LaCode] | None = Field(None, description="ONS codes of the LAs in this wave")
    regions: list[str] | None = Field(None, description="regions whose LAs are in this wave")
    rest: bool = Field(False, description="every LA not in an earlier-listed wave")

    @model_validator(mode="after")
    def _one_selector(self) -> "Wave":
        given = [k for k in ("las", "regions") if getattr(self, k) is not None] + (["rest"] if self.rest else [])
        if len(given) != 1:
            raise ValueError("a wave names exactly one of las, regions or rest: true")
        return self


class Rollout(Provenance):
    """Where and from when the intervention is offered: LAs join in waves; uptake ramps up
    linearly over `ramp_up_days` from an LA's start. An LA in no wave never offers it; no
    LA offers it from `end` (e.g. a trial's recruitment end). No rollout: every simulated
    LA offers it from the scenario's start."""

    waves: list[Wave] = Field(min_length=1)
    ramp_up_days: NonNegativeFloat = 0.0
    end: dt.date | None = None


class Intervention(Provenance):
    """An intervention offered to families reaching a stage, acting as hazard multipliers.

    When a child (with its siblings in step) enters `stage` in an LA that has rolled it out,
    is eligible, and takes it up (and, with `capacity`, gets a place), the effects start:
    each `effects` ratio multiplies the hazards of its transitions, in any state, from then
    on, following `waning`. Costs are recorded as `cost.intervention.<name>`."""

    description: str = ""
    stage: StateName
    unit: Literal["family", "child"] = Field(
        "family", description="who decides uptake together: a family (siblings in step) or each child"
    )
    eligibility: Eligibility = Field(default_factory=Eligibility)
    uptake: ProbParam
    effects: list[HazardRatio] = Field(default_factory=list)
    waning: Waning = Field(default_factory=Waning)
    cost: InterventionCost | None = None
    capacity: ServiceCapacity | None = None
    rollout: Rollout | None = None


class Scenario(Strict):
    """A complete scenario, as resolved after `extends:`."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    start: dt.date = dt.date(2024, 4, 1)
    years: Annotated[int, Field(ge=1, le=30)] = 10
    geography: Geography = Field(default_factory=Geography)
    run: RunSettings = Field(default_factory=RunSettings)
    data: DataFiles = Field(default_factory=DataFiles)
    arrivals: Arrivals
    pathway: dict[StateName, StateSpec]
    court: Court
    placements: Placements
    costs: Costs
    initial_state: InitialState = Field(default_factory=InitialState)
    local_variation: list[LocalVariation] = Field(default_factory=list)
    hazard_multipliers: list[HazardMultiplier] = Field(default_factory=list)
    trends: list[Trend] = Field(
        default_factory=list,
        description="trends in transition probabilities over financial years (see Trend)")
    interventions: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]+$")], Intervention] = Field(
        default_factory=dict, description="interventions by name (see Intervention)"
    )

    @field_validator("start")
    @classmethod
    def _starts_1_april(cls, v: dt.date) -> dt.date:
        if (v.month, v.day) != (4, 1):
            raise ValueError(f"start must be 1 April (a financial year start), got {v.isoformat()}")
        if not 2013 <= v.year <= 2040:
            raise ValueError(f"start year {v.year} outside 2013-2040")
        return v

    @model_validator(mode="after")
    def _transitions_exist(self) -> "Scenario":
        known = {
            f"{state}->{e.to}"
            for state, spec in self.pathway.items()
            for rule in spec.rules().values()
            for e in rule.exits.values()
        }
        named = [h.transition for h in self.hazard_multipliers] + [
            t.transition for t in self.trends] + [
            t for lv in self.local_variation for t in lv.transitions
        ] + [t for iv in self.interventions.values() for e in iv.effects for t in e.transitions]
        with_variants = sorted(s for s, spec in self.pathway.items()
                               if spec.variants is not None and s != "looked_after")
        if with_variants:
            raise ValueError(f"only looked_after may have variants (found in {', '.join(with_variants)})")
        targets = {t.split("->")[1] for t in known}
        needed = sorted(targets - set(self.pathway) - set(TERMINAL_STATES) - {"closed"})
        if needed:
            raise ValueError(
                f"state(s) {', '.join(needed)} are reached by an exit but have no rule in pathway"
            )
        unknown = sorted({t for t in named if t not in known})
        if unknown:
            raise ValueError(
                f"unknown transition(s) {', '.join(unknown)}; the pathway has: {', '.join(sorted(known))}"
            )
        for name, iv in self.interventions.items():
            c = iv.cost
            if c is not None and c.price_base != self.costs.price_base and "uplift" not in c.model_fields_set:
                raise ValueError(
                    f"interventions.{name}.cost: price base {c.price_base} differs from the "
                    f"scenario's {self.costs.price_base}; give `uplift` (and say where it comes from in `note`)")
            if iv.capacity is not None and iv.stage == "proceedings":
                raise ValueError(f"interventions.{name}: capacity is not supported at the proceedings "
                                 "stage (the court draws a case's course when it is issued)")
        return self

    uncertain: list[UncertainParam] = Field(
        default_factory=list,
        description="uncertain parameters for `caresim sweep`: a path into this scenario and a "
                    "distribution each (see caresim.scenario.uncertain)")

    @model_validator(mode="after")
    def _uncertain_paths(self) -> "Scenario":
        check_uncertain(self)  # errors are located at uncertain[i].<key>
        return self


# --- virtual trials ---------------------------------------------------------------------

TrialOutcome = Literal["in_care", "proceedings_issued", "days_in_care"]


class PublishedOutcome(Provenance):
    """A published trial result: for `arm` control or intervention, the share of children
    in care at `months` after entry (`in_care`), the share with proceedings issued within
    `months` (`proceedings_issued`), or mean days in care within `months`
    (`days_in_care`); for `arm: difference`, intervention minus control, with its
    `interval` where one is published or derived."""

    outcome: TrialOutcome
    months: Annotated[int, Field(ge=1, le=60)]
    arm: Literal["control", "intervention", "difference"]
    value: float
    interval: tuple[float, float] | None = None


class Recruitment(Strict):
    start: dt.date
    months: Annotated[int, Field(ge=1, le=60)]


class TrialSpec(Strict):
    """A published trial re-created in the model (`caresim trial`): the scenario's
    intervention is offered in `las` to children entering its stage during `recruitment`,
    who are randomised to it with probability `allocation`, and followed up."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    scenario: str = Field(description="scenario file (relative to the file that names it) with the intervention")
    intervention: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    las: list[LaCode] = Field(min_length=1)
    las_note: Provenance | None = Field(None, description="how the trial's LAs were chosen")
    recruitment: Recruitment
    allocation: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    follow_up_months: list[Annotated[int, Field(ge=1, le=60)]] = Field(min_length=1)
    run: RunSettings = Field(default_factory=RunSettings)
    published: list[PublishedOutcome] = Field(default_factory=list)
    control_tolerance: Probability = Field(
        0.03, description="largest acceptable |simulated - published| of a control-arm share"
    )
