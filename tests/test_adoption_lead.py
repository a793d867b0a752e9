"""The time a child on a placement order spends placed for adoption before the adoption
order, by the financial year of the order (placements.adoption_placement_lead_by_year):
the multiplier's years, its exact effect in the engine at the 1 April edge (common random
numbers), the stock it moves, backtests, and schema errors."""

import datetime as dt

import numpy as np
import pytest

from caresim.engine.simulation import Simulation
from caresim.scenario.model import NonNegParam

# tiny.yaml starts on 1 April 2024 and runs 3 years (2024-25 to 2026-27): children still on a
# placement order at the end are adopted in 2027-28 or later, so a multiplier changing on
# 1 April 2028 splits them.
EDGE = 2029


def _with_lead(sc, by_year):
    pl = sc.placements.model_copy(update={"adoption_placement_lead_by_year": {
        y: NonNegParam(value=v, assumption="test") for y, v in by_year.items()}})
    return sc.model_copy(update={"placements": pl})


# tiny.yaml has few placement orders: 20 times its population gives a few hundred
SCALE = 20.0


def _run(sc, la_inputs, seed=5, scale=SCALE):
    sim = Simulation(sc, la_inputs, seed=seed, replication=0, scale=scale)
    return sim.run(), sim


def _pending(sim):
    """Children still on a placement order at the end with a scheduled move to placed for
    adoption: index, adoption time, time placed."""
    k = sim.kids
    n = k.n
    i = np.flatnonzero(np.isfinite(k.t_pfa[:n]) & np.isfinite(k.t_next[:n]))
    return i, k.t_next[i], k.t_pfa[i]


def test_lead_multiplier_holds_first_and_last_years(tiny):
    sc = _with_lead(tiny.scenario, {2022: 1.2, 2023: 1.0, 2025: 0.8})
    m = sc.placements.adoption_lead_multiplier
    assert [m(y) for y in (2019, 2022, 2023, 2024, 2025, 2040)] == [1.2, 1.2, 1.0, 1.0, 0.8, 0.8]
    assert tiny.scenario.placements.adoption_lead_multiplier(2026) == 1.0  # none: constant


def test_engine_multiplier_by_financial_year_of_the_adoption(tiny, la_inputs):
    """The multiplier changes at the 1 April starting financial year EDGE, after the horizon
    (the engine's year edges stop there), and years later still hold the last value."""
    sc = _with_lead(tiny.scenario, {EDGE - 1: 1.0, EDGE: 2.0, EDGE + 2: 3.0})
    _, sim = _run(sc, la_inputs)
    edge = float((dt.date(EDGE - 1, 4, 1) - sc.start).days)
    assert edge > sim.horizon
    t = np.array([0.0, edge - 400.0, edge - 1e-6, edge, edge + 0.5, edge + 364.0,
                  edge + 366.0 + 365.0, edge + 20 * 365.0])
    assert list(sim._pfa_lead_multiplier(t)) == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0]


def _fy(start, t):
    """Financial year (ending year) of times t (days from `start`), by the calendar."""
    days = [start + dt.timedelta(days=int(np.floor(x))) for x in t]
    return np.array([d.year + (d.month >= 4) for d in days])


def test_lead_doubled_from_a_1_april_exactly_for_later_adoptions(tiny, la_inputs):
    """Same seed with and without the multiplier: paths and adoption dates are the same
    children's; adoptions before the edge keep their placement date to the day, and after it
    the lead is exactly twice as long unless it reaches back to the placement order's start
    (then the child is placed for adoption from the start: a lead between 1x and 2x)."""
    # twice the population again: few of the children still waiting at the end are adopted
    # after the first year
    _, s0 = _run(tiny.scenario, la_inputs, scale=2 * SCALE)
    _, s1 = _run(_with_lead(tiny.scenario, {EDGE - 1: 1.0, EDGE: 2.0}), la_inputs, scale=2 * SCALE)
    i0, ta0, tp0 = _pending(s0)
    i1, ta1, tp1 = _pending(s1)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(ta0, ta1)
    fy = _fy(tiny.scenario.start, ta1)
    before, after = fy < EDGE, fy >= EDGE
    assert before.sum() >= 10 and after.sum() >= 10
    np.testing.assert_array_equal(tp0[before], tp1[before])
    lead0, lead1 = (ta0 - tp0)[after], (ta1 - tp1)[after]
    doubled = np.isclose(lead1, 2 * lead0, rtol=1e-9, atol=1e-6)
    truncated = ~doubled
    # truncated leads: longer than before, shorter than twice
    assert np.all(lead1[truncated] >= lead0[truncated] - 1e-6)
    assert np.all(lead1[truncated] < 2 * lead0[truncated])
    assert doubled.mean() > 0.5


def test_longer_lead_raises_the_placed_for_adoption_stock(tiny, la_inputs):
    """Lead x1.5 in every year: the stock placed for adoption at 31 March rises by more than
    its sampling error and by less than 1.5x (truncation at the order's start), and the
    placement-order stock and adoptions are unchanged (the lead only splits the stay)."""
    r0, _ = _run(tiny.scenario, la_inputs)
    r1, _ = _run(_with_lead(tiny.scenario, {2025: 1.5}), la_inputs)

    def get(r, metric):  # children simulated (not scaled up), by year
        return r[r.metric == metric].groupby("year").value.sum() * SCALE

    p0, p1 = get(r0, "looked_after.placed_for_adoption"), get(r1, "looked_after.placed_for_adoption")
    n0, n1 = p0.sum(), p1.sum()  # over the 31 Marches
    assert n0 >= 100
    ratio = n1 / n0
    se = ratio * np.sqrt(1 / n0 + 1 / n1)  # Poisson counts, ignoring the (positive) correlation
    assert 1 + 2 * se < ratio < 1.5 + 4 * se
    for m in ("looked_after.placement_order", "adoptions"):
        np.testing.assert_array_equal(get(r0, m).values, get(r1, m).values)


def test_no_multiplier_is_the_same_run(tiny, la_inputs):
    r0, _ = _run(tiny.scenario, la_inputs)
    r1, _ = _run(_with_lead(tiny.scenario, {2025: 1.0, 2030: 1.0}), la_inputs)
    assert r0.equals(r1)


def test_backtest_keeps_the_lead_through_the_year_after_training(tiny):
    from caresim.analysis.calibration_pipeline import trained_years

    sc = _with_lead(tiny.scenario, {2022: 1.2, 2023: 1.1, 2024: 0.9, 2025: 0.8})
    held = trained_years(sc, 2022)  # the stock at 31 March 2022 sets 2022-23's lead
    m = held.placements.adoption_lead_multiplier
    assert [m(y) for y in (2021, 2022, 2023, 2024, 2030)] == [1.2, 1.2, 1.1, 1.1, 1.1]
    assert sc.placements.adoption_lead_multiplier(2030) == 0.8  # the original is untouched
    assert trained_years(sc, 2019).placements.adoption_lead_multiplier(2030) == 1.2


def test_config_lead_parameters_match_the_baseline_and_backtests():
    from pathlib import Path

    from caresim.analysis.calibrate import load_config
    from caresim.analysis.calibration_pipeline import trained_parameters
    from caresim.scenario.loader import load_scenario

    root = Path(__file__).parent.parent
    cfg, _ = load_config(root / "calibration" / "config.yaml")
    lead = {s.name: s for s in cfg.parameters if s.name.startswith("adoption_lead_")}
    assert set(lead) == {"adoption_lead_2022", "adoption_lead_2023", "adoption_lead_2024"}
    base = load_scenario(root / "scenarios" / "baseline_derived.yaml").scenario
    by_year = base.placements.adoption_placement_lead_by_year
    for s in lead.values():
        y = int(s.path.split(".")[2])
        assert y in by_year and s.year == y - 1
        assert s.bounds[0] <= by_year[y].value <= s.bounds[1]
    names = {s.name for s in trained_parameters(cfg.parameters, 2022)}
    assert {"adoption_lead_2022", "adoption_lead_2023"} <= names
    assert "adoption_lead_2024" not in names


@pytest.fixture
def tiny_text():
    from tests.conftest import TINY

    return TINY.read_text()


@pytest.mark.parametrize("value, words", [
    ("{twenty: {value: 1.0}}", "twenty"),
    ("{2025: {value: -0.5}}", "2025"),
    ("{1990: {value: 1.0}}", "1990"),
    ("{2025: {valu: 1.0}}", "valu"),
])
def test_schema_errors_for_bad_lead_by_year(tmp_path, tiny_text, value, words):
    from caresim.errors import CaresimError
    from caresim.scenario.loader import load_scenario

    anchor = "  adoption_placement_lead_days:"
    assert anchor in tiny_text
    text = tiny_text.replace(anchor, f"  adoption_placement_lead_by_year: {value}\n{anchor}", 1)
    line = text.splitlines().index(f"  adoption_placement_lead_by_year: {value}") + 1
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(CaresimError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert "adoption_placement_lead_by_year" in msg and "s.yaml" in msg and words in msg
    assert f"line {line}" in msg or f":{line}" in msg
