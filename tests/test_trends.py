"""Time-varying inputs: court capacity by financial year and trends in transition
probabilities (draws, engine, projections held or continued, backtests, schema errors)."""

import numpy as np
import pandas as pd
import pytest

from caresim.engine.simulation import Simulation
from caresim.pathway.compiled import STATE_INDEX, Pathway
from caresim.scenario.model import NonNegParam, Trend

N = 200_000


def _run(scenario, la_inputs, seed=11, scale=1.0):
    sim = Simulation(scenario, la_inputs, seed=seed, replication=0, scale=scale)
    return sim.run(), sim


def _trend(per_year, base_year=2025, through_year=2027, after="held", **kw):
    return Trend(transition="referral->s47_enquiry", per_year=NonNegParam(value=per_year),
                 base_year=base_year, through_year=through_year, after=after,
                 assumption="test", **kw)


def _with_court(sc, capacity, by_year):
    c = sc.court
    court = c.model_copy(update={
        "capacity_cases": c.capacity_cases.model_copy(update={"value": capacity}),
        "congestion_elasticity": c.congestion_elasticity.model_copy(update={"value": 0.5}),
        "capacity_by_year": {y: NonNegParam(value=v, assumption="test") for y, v in by_year.items()}})
    return sc.model_copy(update={"court": court})


def _court_by_year(sc, la_inputs, seeds=range(3)):
    weeks = cases = 0.0
    for s in seeds:
        r, _ = _run(sc, la_inputs, seed=s)
        weeks = weeks + r[r.metric == "proceedings_weeks_total"].groupby("year").value.sum()
        cases = cases + r[r.metric == "proceedings_completed_cases"].groupby("year").value.sum()
    return weeks / cases, cases


# -- court capacity by year ---------------------------------------------------------------

def test_court_capacity_multiplier_holds_first_and_last_years(tiny):
    sc = _with_court(tiny.scenario, 2000.0, {2025: 1.0, 2026: 0.5, 2028: 0.8})
    m = sc.court.capacity_multiplier
    assert [m(y) for y in (2020, 2025, 2026, 2027, 2028, 2035)] == [1.0, 1.0, 0.5, 0.5, 0.8, 0.8]
    assert tiny.scenario.court.capacity_multiplier(2026) == 1.0  # none given: constant


def test_court_capacity_cut_at_a_year_edge_lengthens_later_proceedings(tiny, la_inputs):
    """Capacity halved from 1 April 2025 (the second year): the first year's completions are
    the same numbers, and later cases take longer (a clear margin over sampling error)."""
    base = _with_court(tiny.scenario, 2000.0, {})
    cut = _with_court(tiny.scenario, 2000.0, {2025: 1.0, 2026: 0.5})
    r0, _ = _run(base, la_inputs, seed=3)
    r1, _ = _run(cut, la_inputs, seed=3)
    first = r0.year == r0.year.min() + 1
    cols = ["proceedings_weeks_total", "proceedings_completed_cases"]
    a = r0[first & r0.metric.isin(cols)].reset_index(drop=True)
    b = r1[(r1.year == r1.year.min() + 1) & r1.metric.isin(cols)].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    w0, n0 = _court_by_year(base, la_inputs)
    w1, n1 = _court_by_year(cut, la_inputs)
    last = int(w0.index.max())
    # mean weeks over a few hundred cases: sd about 25 weeks / sqrt(n)
    se = 25.0 / np.sqrt(min(n0[last], n1[last]))
    assert w1[last] > w0[last] + max(4 * se, 0.1 * w0[last])


def test_court_capacity_raised_shortens_proceedings(tiny, la_inputs):
    base = _with_court(tiny.scenario, 2000.0, {})
    up = _with_court(tiny.scenario, 2000.0, {2025: 1.0, 2026: 3.0})
    w0, n0 = _court_by_year(base, la_inputs)
    w1, _ = _court_by_year(up, la_inputs)
    last = int(w0.index.max())
    assert w1[last] < w0[last] - 4 * 25.0 / np.sqrt(n0[last])


def test_same_seed_same_records_with_capacity_by_year_and_trends(tiny, la_inputs):
    sc = _with_court(tiny.scenario, 2000.0, {2025: 1.0, 2026: 0.6, 2027: 0.8})
    sc = sc.model_copy(update={"trends": [_trend(1.2)]})
    a, _ = _run(sc, la_inputs, seed=5, scale=0.3)
    b, _ = _run(sc, la_inputs, seed=5, scale=0.3)
    pd.testing.assert_frame_equal(a, b)


# -- trends ---------------------------------------------------------------------------------

def _draw_year(rule, year, seed=0):
    g = np.random.default_rng(seed)
    return rule.draw(g.random(N), g.random(N), np.zeros(N, int), np.full(N, 3),
                     np.zeros((N, 4), bool), year=np.full(N, year))


@pytest.mark.parametrize("after", ["held", "continues"])
def test_trend_multiplies_the_exit_probability_per_year(tiny, after):
    f = 1.25
    sc = tiny.scenario.model_copy(update={"trends": [_trend(f, base_year=2025, through_year=2026,
                                                            after=after)]})
    r = Pathway(sc, n_la=1).rule(STATE_INDEX["referral"])
    e_s47 = r.labels.index("s47_enquiry")
    q0 = r.exit_probabilities(np.array([3]), np.zeros((1, 4), bool))[0]
    expect = {2024: f ** -1, 2025: 1.0, 2026: f, 2027: f if after == "held" else f ** 2,
              2029: f if after == "held" else f ** 4}
    for year, m in expect.items():
        e, t = _draw_year(r, year)
        p = q0[e_s47] * m
        share = np.mean(e == e_s47)
        assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / N), (year, share, p)
        # the other exits share the rest in their proportions
        other = [j for j in range(r.n_exits) if j != e_s47]
        for j in other:
            pj = q0[j] * (1 - p) / (1 - q0[e_s47])
            assert abs(np.mean(e == j) - pj) < 4 * np.sqrt(pj * (1 - pj) / N)
    # the time in the state does not depend on the trend
    _, t25 = _draw_year(r, 2025)
    _, t27 = _draw_year(r, 2027)
    assert np.array_equal(t25, t27)


def test_trend_from_year_holds_earlier_years(tiny):
    tr = _trend(1.1, base_year=2026, through_year=2028, from_year=2025)
    assert tr.multiplier(2020) == pytest.approx(1.1 ** -1)
    assert tr.multiplier(2028) == pytest.approx(1.1 ** 2)
    assert tr.multiplier(2031) == pytest.approx(1.1 ** 2)
    assert _trend(1.1, base_year=2026, through_year=2028, after="continues").multiplier(2031) \
        == pytest.approx(1.1 ** 5)


def test_trend_moves_s47_enquiries_in_the_engine(tiny, la_inputs):
    """A rising trend from the first year: s47 enquiries per referral rise year on year;
    held (through the first year) they stay at the first year's level."""
    def s47_per_referral(sc):
        s47 = ref = 0.0
        for s in range(2):
            r, _ = _run(sc, la_inputs, seed=s)
            s47 = s47 + r[r.metric == "s47_enquiries"].groupby("year").value.sum()
            ref = ref + r[r.metric == "referrals"].groupby("year").value.sum()
        return s47 / ref, ref

    up = tiny.scenario.model_copy(update={"trends": [_trend(1.5, base_year=2025, through_year=2027,
                                                            after="continues")]})
    held = tiny.scenario.model_copy(update={"trends": [_trend(1.5, base_year=2025, through_year=2025)]})
    base, n = s47_per_referral(tiny.scenario)
    r_up, _ = s47_per_referral(up)
    r_held, _ = s47_per_referral(held)
    last = int(base.index.max())
    se = np.sqrt(base[last] / n[last])
    assert r_up[last] > base[last] * 1.5  # 2.25x on s47 from referral, a share of all s47
    assert abs(r_held[last] - base[last]) < 6 * se


def test_backtest_holds_year_values_at_the_last_trained_year(tiny):
    from caresim.analysis.calibration_pipeline import trained_years

    sc = _with_court(tiny.scenario, 2000.0, {2020: 1.0, 2021: 0.7, 2022: 0.6, 2024: 0.9})
    sc = sc.model_copy(update={"trends": [_trend(1.1, base_year=2022, through_year=2024),
                                          _trend(1.1, base_year=2022, through_year=2024,
                                                 after="continues")]})
    held = trained_years(sc, 2021)
    assert held.court.capacity_multiplier(2025) == 0.7
    assert held.court.capacity_multiplier(2020) == 1.0
    assert held.trends[0].multiplier(2025) == pytest.approx(1.1 ** -1)  # 2021's level
    assert held.trends[1].multiplier(2025) == pytest.approx(1.1 ** 3)  # a continuing trend
    # the original is untouched
    assert sc.court.capacity_multiplier(2025) == 0.9


def test_backtest_fits_no_parameter_of_a_later_year():
    from pathlib import Path

    from caresim.analysis.calibrate import load_config
    from caresim.analysis.calibration_pipeline import trained_parameters

    cfg, _ = load_config(Path(__file__).parent.parent / "calibration" / "config.yaml")
    names = {s.name for s in trained_parameters(cfg.parameters, 2021)}
    assert "court_capacity_2021" in names and "s47_trend_per_year" in names
    assert not names & {"court_capacity_2022", "court_capacity_2023", "court_capacity_2024"}
    assert len(trained_parameters(cfg.parameters, 2024)) == len(cfg.parameters)


# -- schema errors --------------------------------------------------------------------------

def _load_with(tmp_path, tiny_text, extra):
    from caresim.scenario.loader import load_scenario

    p = tmp_path / "s.yaml"
    p.write_text(tiny_text + extra)
    return load_scenario(p)


@pytest.fixture
def tiny_text():
    from tests.conftest import TINY

    return TINY.read_text()


def test_schema_rejects_unknown_trend_transition(tmp_path, tiny_text):
    from caresim.errors import CaresimError

    extra = ("\ntrends:\n  - {transition: referral->adopted, per_year: {value: 1.1, assumption: x},"
             " base_year: 2025, through_year: 2026}\n")
    with pytest.raises(CaresimError) as exc:
        _load_with(tmp_path, tiny_text, extra)
    assert "referral->adopted" in str(exc.value)


@pytest.mark.parametrize("bad, words", [
    ("per_year: {value: -1.0, assumption: x}, base_year: 2025, through_year: 2026", "per_year"),
    ("per_year: {value: 1.1, assumption: x}, base_year: 2025, through_year: 2026, after: stops",
     "after"),
    ("per_year: {value: 1.1, assumption: x}, base_year: 2025, through_year: 2024, from_year: 2025",
     "through_year"),
    ("per_year: {value: 1.1, assumption: x}, base_year: 1900, through_year: 2026", "base_year"),
])
def test_schema_errors_for_bad_trends(tmp_path, tiny_text, bad, words):
    from caresim.errors import CaresimError

    extra = f"\ntrends:\n  - {{transition: referral->s47_enquiry, {bad}}}\n"
    with pytest.raises(CaresimError) as exc:
        _load_with(tmp_path, tiny_text, extra)
    msg = str(exc.value)
    assert words in msg and "s.yaml" in msg


def test_schema_errors_for_bad_capacity_by_year(tmp_path, tiny_text):
    from caresim.errors import CaresimError

    text = tiny_text.replace("court:\n", "court:\n  capacity_by_year: {twenty: {value: 1.0}}\n", 1)
    with pytest.raises(CaresimError) as exc:
        _load_with(tmp_path, text, "")
    assert "capacity_by_year" in str(exc.value)
    text = tiny_text.replace("court:\n", "court:\n  capacity_by_year: {2025: {value: -0.5}}\n", 1)
    with pytest.raises(CaresimError) as exc:
        _load_with(tmp_path, text, "")
    assert "capacity_by_year" in str(exc.value) and "s.yaml" in str(exc.value)
