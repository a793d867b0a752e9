"""The starting population: the system as published at 31 March of the start year.

Published stocks come from the calibration table, per LA:
- looked after: by legal status (care order, placement order, s20 and other; interim care
  orders start in `proceedings`, in care), UASC, ages by band, placements by type;
- child protection plans with their published time-so-far bands;
- children in need on a plan (s17): DfE's CIN count at 31 March less the children it also
  counts in other states (CPP, CLA, and the assumed stocks of referral, s47,
  pre-proceedings and proceedings at home), floored at zero.
States with nothing published take the scenario's `initial_state.assumed_stocks` (national
totals), shared across LAs by their referrals.

Time already spent in the state is drawn from the state's own sojourn distribution at
equilibrium (density S(t)/E[T], capped by the child's age) — for CPPs, within the
published band (the last, 2 years or more, open) — and the rest of the stay from the distribution conditional on that time:
so the first projected years carry no empty-start (burn-in) artefact. Siblings: children
in the same LA and state (outside care, in proceedings, and accommodated under s20) are
grouped into families of the scenario's family-size distribution, sharing the time already
spent. A scaled run keeps whole families of the published stocks (each with probability
`scale`), as it samples arriving families, rather than cutting small scaled counts into
truncated families.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.interpolate import PchipInterpolator

from caresim.pathway.compiled import DAYS_PER_YEAR, HISTORY_FLAGS, LEGAL_INDEX, STATE_INDEX, age_band
from caresim.scenario.model import AGE_BAND_EDGES, AGE_BANDS, PLACEMENTS

if TYPE_CHECKING:
    from caresim.engine.simulation import Simulation

S = STATE_INDEX
PLC = {p: i for i, p in enumerate(PLACEMENTS)}
CPP_BANDS = (("cpp_at31_le3m", 0, 91), ("cpp_at31_3to6m", 91, 182),
             ("cpp_at31_6to12m", 182, 365), ("cpp_at31_1to2y", 365, 730),
             ("cpp_at31_2yplus", 730, np.inf))  # DfE's last band is open
AGE_COLS = ("cla_at31_age_u1", "cla_at31_age_1_4", "cla_at31_age_5_9", "cla_at31_age_10_15",
            "cla_at31_age_16p")
START_AGE_COLS = tuple(c.replace("at31", "starts") for c in AGE_COLS)


@dataclass
class InitialResult:
    scheduled: np.ndarray
    court_cases: list = field(default_factory=list)  # (area, payload, remaining work)


def _scaled(counts: np.ndarray, scale: float, g: np.random.Generator) -> np.ndarray:
    """Counts times scale, rounded stochastically (unbiased)."""
    x = np.maximum(np.nan_to_num(counts) * scale, 0.0)
    base = np.floor(x)
    return (base + (g.random(x.shape) < x - base)).astype(np.int64)


def _families(n: int, sizes: np.ndarray, p: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """Family sizes covering n children (the last family truncated)."""
    out, total = [], 0
    while total < n:
        s = g.choice(sizes, size=max(16, int((n - total) / 1.5) + 1), p=p)
        out.append(s)
        total += int(s.sum())
    fs = np.concatenate(out)
    cum = np.cumsum(fs)
    last = int(np.searchsorted(cum, n))
    fs = fs[: last + 1].copy()
    fs[-1] -= int(cum[last] - n)
    return fs[fs > 0]


class _Builder:
    def __init__(self, sim: "Simulation", occupied: np.ndarray):
        self.sim = sim
        self.kids = sim.kids
        self.occupied = occupied
        self.g = sim.streams.generator("initial")
        fs = sim.sc.arrivals.family_size
        self.sizes = np.array(sorted(fs))
        self.size_p = np.array([fs[s] for s in self.sizes])
        self.scheduled: list[np.ndarray] = []
        self.result = InitialResult(np.empty(0, np.int64))
        self.ref_share = self._ref_share()
        cla = sim.las.column("cla_at31")
        self.share_16p = sim.las.column("cla_at31_age_16p") / np.maximum(cla, 1e-12)
        self._lag = self._referral_lag()

    def _ref_share(self) -> np.ndarray:
        las = self.sim.las
        nat = float(las.national["referrals"])
        return las.column("referrals") / nat if nat > 0 else np.full(las.n, 1 / las.n)

    def counts(self, published: np.ndarray, families: bool = True
               ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Children per LA at the run's scale, from published (unscaled) counts per LA.

        With `families`, each LA's count is split into families of the family-size
        distribution and a scaled run keeps whole families, each with probability `scale`
        (as it samples arriving families), so that small scaled counts are not cut into
        truncated families. Returns the counts and each LA's family sizes (None: one child
        per family)."""
        f = self.sim.scale
        if not families:
            return _scaled(published, f, self.g), None
        sizes = []
        for c in _scaled(published, 1.0, self.g):
            fs = _families(int(c), self.sizes, self.size_p, self.g) if c else np.empty(0, np.int64)
            sizes.append(fs[self.g.random(fs.size) < f] if f < 1.0 else fs)
        return np.array([int(s.sum()) for s in sizes], dtype=np.int64), sizes

    def add(self, counts: np.ndarray, state: str, ages: np.ndarray | None = None,
            sizes: list[np.ndarray] | None = None) -> np.ndarray:
        """Create children: counts per LA (scaled, from `counts()`), in families of `sizes`
        (None: each child its own family). Ages in years, or referral ages."""
        from caresim.engine.simulation import sample_bands

        n = int(counts.sum())
        if n == 0:
            return np.empty(0, np.int64)
        la = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        if ages is None:
            ages = sample_bands(self.g.random(n), self.stock_age_shares(state))
        idx = self.kids.add(n, la=la, birth=-ages * DAYS_PER_YEAR, state=S[state], nref=1,
                            t_lastref=-60.0, t_closed=-np.inf)
        if sizes is None:
            self.kids.fam[idx] = idx
        else:
            fs = np.concatenate(sizes)
            self.kids.fam[idx] = idx[0] + np.repeat(np.concatenate([[0], np.cumsum(fs)[:-1]]), fs)
        return idx

    def stock_age_shares(self, state: str) -> dict[str, float]:
        """Shares by age band of a stock with no published ages (Little's law): the
        referral ages' shares times the state's mean stay at that age (its sojourn's
        `age_multiplier`). A baby's plan that lasts a fifth as long as an older child's
        leaves a fifth as many babies per referral in the stock at any time; taking the
        referral ages as they are put the babies of five years' referrals in the starting
        plans, and they all went on to court in the first projected year."""
        shares = self.sim.sc.arrivals.age_at_referral
        if not self.sim.pathway.has(S[state]):
            return shares
        mult = self.sim.pathway.rule(S[state]).age_duration
        return {b: shares.get(b, 0.0) * float(mult[i]) for i, b in enumerate(AGE_BANDS)}

    def family_uniform(self, idx: np.ndarray) -> np.ndarray:
        """One uniform per family, shared by the siblings in `idx`."""
        fam = self.kids.fam[idx]
        uniq, inv = np.unique(fam, return_inverse=True)
        return self.g.random(uniq.size)[inv]

    def youngest_age_days(self, idx: np.ndarray) -> np.ndarray:
        """Age in days of each child's youngest sibling in `idx`."""
        from caresim.engine.simulation import _youngest_in_family

        return _youngest_in_family(self.kids.fam[idx], -self.kids.birth[idx])

    def elapsed(self, idx: np.ndarray, cap_days: np.ndarray | None = None,
                by_age: bool = True) -> np.ndarray:
        """Time already spent, from the equilibrium of each child's current rule (shared
        within a family: capped by the youngest sibling's age, so that the siblings' later
        draws, which are the family's, keep them together). `by_age=False`: the children's
        ages are those at the stay's start and do not cap it (the caller ages them by it)."""
        sim, k = self.sim, self.kids
        rids = sim._variant(idx)
        out = np.zeros(idx.size)
        u = self.family_uniform(idx)
        cap = self.youngest_age_days(idx) if by_age else np.full(idx.size, np.inf)
        if cap_days is not None:
            cap = np.minimum(cap, cap_days)
        for rid in np.unique(rids):
            sel = rids == rid
            r = sim.pathway.rules[rid]
            # the age band now stands for the band the stay started in
            d = r.time_scale(k.la[idx[sel]], age_band(-k.birth[idx[sel]] / DAYS_PER_YEAR))
            out[sel] = r.sojourn.sample_elapsed(u[sel], cap[sel] / d) * d
        return out

    def _referral_lag(self) -> np.ndarray:
        """Days from the referral that opened a case to the start of the stay a child is in
        at the start date, by state: none for a child being assessed, the assessment for
        stays that start straight from it (s47, CIN, early help), the assessment and the
        s47 enquiry for a plan; 200 days (assumed) for the rest (closed cases, children
        after care, in court)."""
        pw = self.sim.sc.pathway

        def mean(state: str) -> float:
            spec = pw.get(state)
            return float(spec.sojourn.mean or 0.0) if spec is not None and spec.sojourn else 0.0

        ref, s47 = mean("referral"), mean("s47_enquiry")
        lag = np.full(len(STATE_INDEX), 200.0)
        lag[S["referral"]] = 0.0
        for st in ("s47_enquiry", "child_in_need", "early_help"):
            lag[S[st]] = ref
        lag[S["child_protection_plan"]] = ref + s47
        return lag

    def start(self, idx: np.ndarray, elapsed: np.ndarray) -> None:
        """Draw the rest of the stays and schedule them."""
        k = self.kids
        k.t_enter[idx] = -elapsed
        # the referral that opened the case came before this stay
        lag = self._lag[k.state[idx]]
        k.t_lastref[idx] = np.minimum(k.t_lastref[idx], -elapsed - lag)
        self.sim._next(idx, np.zeros(idx.size), elapsed=elapsed)

    def place(self, idx: np.ndarray, mix: np.ndarray) -> None:
        """Initial placements from per-LA mixes (n_la, n_types). Supported accommodation is
        for young people of 16 and over: the LA's supported stock goes to its children of
        16-17 (share supported / share aged 16+, at most 0.95), and the other types share
        the rest in the LA's proportions, at every age, so the LA's totals are kept."""
        k = self.kids
        mix = mix / np.maximum(mix.sum(axis=1, keepdims=True), 1e-12)
        sup = PLC["supported"]
        p16 = np.minimum(mix[:, sup] / np.maximum(self.share_16p, 1e-12), 0.95)
        other = mix.copy()
        other[:, sup] = 0.0
        other = other / np.maximum(other.sum(axis=1, keepdims=True), 1e-12)
        older = other * (1.0 - p16[:, None])
        older[:, sup] = p16
        cum_young, cum_old = np.cumsum(other, axis=1), np.cumsum(older, axis=1)
        is_old = (-k.birth[idx]) >= 16.0 * DAYS_PER_YEAR
        cum = np.where(is_old[:, None], cum_old[k.la[idx]], cum_young[k.la[idx]])
        u = self.g.random(idx.size)
        plc = np.minimum((u[:, None] > cum).sum(axis=1), len(PLACEMENTS) - 1)
        k.plc[idx] = plc
        k.pref[idx] = plc
        cap = self.sim._plc_capacity
        area = self.sim.plc_area[k.la[idx]]
        pooled = np.isfinite(cap[area, plc])
        k.pooled[idx] = pooled
        np.add.at(self.occupied, (area[pooled], plc[pooled]), 1.0)

    def care(self, idx: np.ndarray, legal: str) -> None:
        k = self.kids
        k.in_care[idx] = True
        k.prior_care[idx] = True
        k.cep[idx] = 1
        k.legal[idx] = LEGAL_INDEX[legal]
        k.t_cost[idx] = 0.0


def _placement_mix(sim: "Simulation") -> np.ndarray:
    """Per-LA placement mix of the published stock (n_la, n_types)."""
    las = sim.las
    col = las.column
    foster = col("cla_at31_foster")
    kin = (las.table["cla_at31_kinship_foster"].to_numpy(float)
           if "cla_at31_kinship_foster" in las.table else np.full(las.n, np.nan))
    nat = las.national
    ks = sim.sc.initial_state.kinship_share_of_foster
    nat_kin_share = (float(nat["cla_at31_kinship_foster"]) / float(nat["cla_at31_foster"])
                     if "cla_at31_kinship_foster" in nat and np.isfinite(nat["cla_at31_kinship_foster"])
                     else (ks.value if ks is not None else 0.0))
    kin = np.where(np.isfinite(kin), kin, foster * nat_kin_share)
    supply = sim.sc.placements.supply
    cin = supply["foster_inhouse"].capacity.value if supply.get("foster_inhouse") and supply["foster_inhouse"].capacity else 1.0
    cag = supply["foster_agency"].capacity.value if supply.get("foster_agency") and supply["foster_agency"].capacity else 1.0
    inhouse_share = cin / (cin + cag)
    other = np.maximum(foster - kin, 0.0)
    mix = np.zeros((las.n, len(PLACEMENTS)))
    mix[:, PLC["kinship_foster"]] = kin
    mix[:, PLC["foster_inhouse"]] = other * inhouse_share
    mix[:, PLC["foster_agency"]] = other * (1 - inhouse_share)
    # "Other placements" go with supported accommodation, as in the looked_after.supported
    # target: in 2024 independent living outside regulated supported accommodation moved there
    mix[:, PLC["residential"]] = col("cla_at31_residential")
    mix[:, PLC["supported"]] = col("cla_at31_supported") + col("cla_at31_other_placement")
    mix[:, PLC["placed_with_parents"]] = col("cla_at31_with_parents")
    # placed_for_adoption arises from placement-order children's adoption dates
    empty = mix.sum(axis=1) == 0
    mix[empty, PLC["foster_inhouse"]] = 1.0
    return mix


def _uasc_stock_grid(arrival: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Ages (years) and cumulative distribution of the UASC looked after at a moment of a
    steady flow of arrivals: a child is in the stock at age a if it arrived before a and
    has not reached 18, so the stock's density is proportional to the arrival ages'
    cumulative distribution F(a) on [0, 18) (arrival ages uniform within their bands;
    leaving before 18 for other reasons ignored)."""
    edges = np.array(list(AGE_BAND_EDGES) + [18.0])
    p = np.array([arrival.get(b, 0.0) for b in AGE_BANDS], float)
    p = p / p.sum() if p.sum() > 0 else np.full(len(AGE_BANDS), 1.0 / len(AGE_BANDS))
    a = np.linspace(0.0, 18.0, 1801)
    f = np.interp(a, edges, np.concatenate([[0.0], np.cumsum(p)]))
    cum = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(a))])
    return a, cum / cum[-1]


def uasc_stock_shares(arrival: dict[str, float]) -> np.ndarray:
    """Shares of the UASC stock by age band (AGE_BANDS order), see `_uasc_stock_grid`."""
    a, cdf = _uasc_stock_grid(arrival)
    at = np.interp(np.array(list(AGE_BAND_EDGES) + [18.0]), a, cdf)
    return np.diff(at)


def uasc_stock_ages(u: np.ndarray, arrival: dict[str, float]) -> np.ndarray:
    """Ages of UASC looked after at the start, from uniforms `u`, see `_uasc_stock_grid`."""
    a, cdf = _uasc_stock_grid(arrival)
    return np.minimum(np.interp(u, cdf, a), 18.0 - 1e-6)


def stock_band_ages(u: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Ages (years) of a stock from its shares by age band (AGE_BANDS order), from uniforms
    `u`: the inverse of a monotone (PCHIP) interpolation of the cumulative distribution at
    the band edges. It keeps each band's share exactly but lets the density change within a
    band, as a stock's does: children accumulate in care with age, so of the looked-after
    children aged 10 to 15 more are 15 than 10. Uniform ages within the band put too few
    15-year-olds in the starting stock, and the model's 18th-birthday leavers fell by a
    fifth in its third year (docs/model.md, "Starting ages")."""
    edges = np.array(list(AGE_BAND_EDGES) + [18.0])
    cdf = np.concatenate([[0.0], np.cumsum(shares / shares.sum())])
    grid = np.linspace(0.0, 18.0, 18 * 48 + 1)  # about a week
    at = np.maximum.accumulate(np.clip(PchipInterpolator(edges, cdf)(grid), 0.0, 1.0))
    # as uasc_stock_ages: a band with no children is a flat stretch of `at`, which no
    # uniform in (0, 1) lands inside
    return np.minimum(np.interp(u, at, grid), 18.0 - 1e-6)


def _cla_ages(sim: "Simulation", counts: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """Ages of looked-after children from each LA's published age bands (`stock_band_ages`)."""
    las = sim.las
    shares = np.stack([las.column(c) for c in AGE_COLS], axis=1)
    # the published bands count UASC too, who are created separately with their own ages
    # (mostly 16-17): these children's bands are the rest
    p = uasc_stock_shares(sim.sc.arrivals.uasc.age_at_arrival)
    uasc = las.column("cla_at31_uasc")[:, None] * p[None, :]
    shares = np.maximum(shares - uasc, 0.0)
    ages = []
    for i, c in enumerate(counts):
        if c:
            row = shares[i] if shares[i].sum() > 0 else np.array([4, 13, 18, 38, 27.0])
            ages.append(stock_band_ages(g.random(int(c)), row))
    return np.concatenate(ages) if ages else np.empty(0)


def _care_entry_ages(sim: "Simulation", counts: np.ndarray, g: np.random.Generator,
                     weight: np.ndarray | None = None) -> np.ndarray:
    """Ages on coming into care: each LA's published care starts by age band, less UASC
    (created separately), uniform within the band, each band weighted by `weight`."""
    from caresim.engine.simulation import sample_bands

    las = sim.las
    starts = np.stack([las.column(c) for c in START_AGE_COLS], axis=1)
    p_uasc = sim.sc.arrivals.uasc.age_at_arrival
    uasc = las.column("cla_starts_uasc")[:, None] * np.array([p_uasc.get(b, 0.0) for b in AGE_BANDS])
    starts = np.maximum(np.nan_to_num(starts - uasc), 0.0)
    w = np.ones(len(AGE_BANDS)) if weight is None else weight
    ages = []
    for i, c in enumerate(counts):
        if c:
            row = starts[i] * w if starts[i].sum() > 0 else w
            ages.append(sample_bands(g.random(int(c)), dict(zip(AGE_BANDS, row))))
    return np.concatenate(ages) if ages else np.empty(0)


def _placement_order_ages(sim: "Simulation", counts: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """Ages at which the children on placement orders at the start had their orders made.

    Nothing is published of this stock's ages, and the looked-after children's (two thirds
    aged 10 and over) had about 800 children of 10 to 17 adopted in the first projected year.
    A placement order is made at the end of care proceedings, for a child who came into care
    at their start: the order's age is the age on coming into care (`_care_entry_ages`)
    weighted by the chance that a court's final order at that age is a placement order (the
    proceedings' exits with their age multipliers), plus the proceedings' mean time at the
    normal pace. The time since the order is added by the caller, from the stay's own
    equilibrium."""
    r = sim.proc_rule
    bands = np.arange(len(AGE_BANDS))
    q = r.exit_probabilities(bands, np.zeros((bands.size, len(HISTORY_FLAGS)), bool))
    entry = _care_entry_ages(sim, counts, g, weight=q[:, r.labels.index("placement_order")])
    court_years = r.sojourn.mean * r.age_duration / DAYS_PER_YEAR
    return np.minimum(entry + court_years[age_band(entry)], 18.0 - 1e-6)


def initial_population(sim: "Simulation", occupied: np.ndarray) -> InitialResult:
    """Create the children in the system at the start date; fills `occupied` places."""
    from caresim.engine.simulation import sample_bands

    b = _Builder(sim, occupied)
    las, g = sim.las, b.g
    col = las.column
    assumed = {k: v.value for k, v in sim.sc.initial_state.assumed_stocks.items()}
    mix = _placement_mix(sim)
    no_adoption = mix.copy()
    # prior plans of the starting stocks (those on a plan now have one by definition)
    stock_prior = sim.sc.initial_state.prior_cpp

    # -- looked after (not in proceedings). Children accommodated under s20 are in families,
    # as the model's own s20 entries are (and as they go to court); children on care or
    # placement orders and UASC are not grouped (their exits are each child's).
    s20 = np.maximum(col("cla_at31_s20") + col("cla_at31_other_legal") - col("cla_at31_uasc"), 0.0)
    for legal, published, is_uasc in (("care_order", col("cla_at31_care_order"), False),
                                      ("placement_order", col("cla_at31_placement_order"), False),
                                      ("s20", s20, False), ("s20", col("cla_at31_uasc"), True)):
        counts, sizes = b.counts(published, families=legal == "s20" and not is_uasc)
        by_order = legal == "placement_order"
        if is_uasc:  # older than at arrival: the stock's ages at equilibrium
            ages = uasc_stock_ages(g.random(int(counts.sum())), sim.sc.arrivals.uasc.age_at_arrival)
        elif by_order:  # the ages the orders were made at; the time since is added below
            ages = _placement_order_ages(sim, counts, g)
        else:
            ages = _cla_ages(sim, counts, g)
        idx = b.add(counts, "looked_after", ages=ages, sizes=sizes)
        if idx.size == 0:
            continue
        b.care(idx, legal)
        if not is_uasc and stock_prior is not None:
            sim.prior_history(idx, stock_prior)
        sim.kids.uasc[idx] = is_uasc
        if by_order:
            # the time since the order, drawn at the order's age band; the children are
            # older by it (and under 18)
            el = b.elapsed(idx, by_age=False)
            el = np.minimum(el, 18.0 * DAYS_PER_YEAR - 1.0 + sim.kids.birth[idx])
            sim.kids.birth[idx] -= el
        else:
            el = b.elapsed(idx)
        b.place(idx, no_adoption)
        b.start(idx, el)

    # -- care proceedings in progress: in interim care, and at home
    ico, ico_sizes = b.counts(col("cla_at31_ico"))
    at_home, home_sizes = b.counts(assumed.get("proceedings", 0.0) * b.ref_share)
    # children in interim care came into care at the issue of the proceedings: their ages
    # are the ages on coming into care, made older by the time since issue (_preload_court)
    idx_ico = b.add(ico, "proceedings", ages=_care_entry_ages(sim, ico, g), sizes=ico_sizes)
    b.care(idx_ico, "interim_care_order")
    b.place(idx_ico, no_adoption)
    idx_home = b.add(at_home, "proceedings", sizes=home_sizes)
    if stock_prior is not None:
        sim.prior_history(np.concatenate([idx_ico, idx_home]), stock_prior)
    _preload_court(sim, b, np.concatenate([idx_ico, idx_home]), aged=idx_ico.size)

    # -- child protection plans with published time so far
    # A plan's length scales with the age band it started in (the sojourn's age_multiplier
    # m): the plans of band b in progress for lo to hi days number share_b x m x the
    # integral of S(t) from lo/m to hi/m, so babies' short plans are few in the long bands.
    cpp = sim.pathway.rule(S["child_protection_plan"])
    mult = cpp.age_duration
    referral_ages = sim.sc.arrivals.age_at_referral
    for colname, lo, hi in CPP_BANDS:
        counts, sizes = b.counts(col(colname))
        shares = {band: referral_ages.get(band, 0.0) * m * _survival_integral(cpp.sojourn, lo / m, hi / m)[1][-1]
                  for band, m in zip(AGE_BANDS, mult)}
        ages = sample_bands(g.random(int(counts.sum())), shares)
        idx = b.add(counts, "child_protection_plan", ages=ages, sizes=sizes)
        if idx.size:
            sim.kids.prior_cpp[idx] = True
            m = mult[age_band(-sim.kids.birth[idx] / DAYS_PER_YEAR)]
            u, el = b.family_uniform(idx), np.empty(idx.size)
            for mm in np.unique(m):
                sel = m == mm
                el[sel] = mm * _elapsed_in_band(cpp.sojourn, u[sel], lo / mm, hi / mm)
            b.start(idx, np.minimum(el, b.youngest_age_days(idx)))

    # -- assumed stocks, and CIN plans by subtraction from DfE's CIN count
    counted_in_cin = ("referral", "s47_enquiry", "pre_proceedings", "proceedings")
    cin_other = sum(assumed.get(s, 0.0) for s in counted_in_cin) * b.ref_share
    cin_plan = np.maximum(col("cin_at31") - col("cpp_at31") - col("cla_at31") - cin_other, 0.0)
    stocks = {s: v * b.ref_share for s, v in assumed.items() if s != "proceedings"}
    stocks["child_in_need"] = cin_plan
    for state in sorted(stocks):
        counts, sizes = b.counts(stocks[state])
        idx = b.add(counts, state, sizes=sizes)
        if idx.size == 0:
            continue
        if state in ("returned_home", "special_guardianship", "child_arrangements"):
            sim.kids.prior_care[idx] = True
        sim.prior_history(idx, stock_prior)
        if state == "closed":
            sim.kids.t_closed[idx] = 0.0
        b.start(idx, b.elapsed(idx))
    b.result.scheduled = np.empty(0, np.int64)  # _next schedules as it goes
    return b.result


def _survival_integral(sojourn, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """A grid t on [lo, min(hi, the sojourn's top)] and the integral of S from lo to each
    point (trapezoids); a single point where the band is beyond the top."""
    top = min(hi, float(sojourn.quantile(1.0 - 1e-9)))
    if not top > lo:
        return np.array([float(lo)]), np.zeros(1)
    t = np.linspace(lo, top, 513)
    s = np.maximum(sojourn.survival(t), 0.0)
    return t, np.concatenate([[0.0], np.cumsum((s[1:] + s[:-1]) / 2 * np.diff(t))])


def _elapsed_in_band(sojourn, u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Time already spent by plans in progress known to be in [lo, hi) days: the
    equilibrium density S(t)/E[T] restricted to the band (uniform where S is flat)."""
    t, cum = _survival_integral(sojourn, lo, hi)
    if t.size == 1:
        return np.full(u.size, float(lo))
    if cum[-1] <= 0:
        return t[0] + u * (t[-1] - t[0])
    return np.interp(u * cum[-1], cum, t)


def _preload_court(sim: "Simulation", b: _Builder, idx: np.ndarray, aged: int = 0) -> None:
    """Cases in progress at the start: one per family, with the work still to do.

    The first `aged` children of `idx` were given their ages at issue (interim care from
    the start of proceedings): their time since issue is not capped by that age, and they
    are made older by it (and kept under 18). The others' ages are their ages now, which
    cap the time since issue."""
    if idx.size == 0:
        return
    k = sim.kids
    r = sim.proc_rule
    e, _ = sim._draw(r, idx, np.zeros(idx.size), family=True)
    k.nxt[idx] = e
    k.rule[idx] = r.rule_id
    k.t_next[idx] = np.inf
    is_aged = np.zeros(k.birth.size, bool)
    is_aged[idx[:aged]] = True
    order = np.argsort(k.fam[idx], kind="stable")
    idx = idx[order]
    cut = np.flatnonzero(np.diff(k.fam[idx])) + 1
    groups = np.split(idx, cut)
    first = np.array([grp[0] for grp in groups])
    u_el = b.g.random(first.size)
    u_rem = b.g.random(first.size)
    d = r.time_scale(k.la[first], age_band(-k.birth[first] / DAYS_PER_YEAR))
    cap = np.where(is_aged[first], np.inf, -k.birth[first] / d)
    el = r.sojourn.sample_elapsed(u_el, cap)
    rem = r.sojourn.sample_residual(u_rem, el) * d
    areas = sim.court_area[k.la[first]]
    n_cases = np.bincount(areas, minlength=len(sim.courts))
    # time already spent ran at the pace the current caseload allows
    stretch = np.array([max(1.0, (n / c.capacity) ** c.alpha) if c.capacity > 0 else 1.0
                        for n, c in zip(n_cases, sim.courts)])
    for grp, a, w, e0 in zip(groups, areas.tolist(), rem.tolist(), (el * d).tolist()):
        t_issue = -e0 * stretch[a]
        k.t_enter[grp] = t_issue
        b.result.court_cases.append((a, (grp, t_issue), w))
    old = idx[is_aged[idx]]
    k.birth[old] = np.maximum(k.birth[old] + k.t_enter[old], -(18.0 * DAYS_PER_YEAR - 1.0))
    sim.watch_age_in_court(idx)
