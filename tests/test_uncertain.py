"""The `uncertain:` block: distributions (quantiles against scipy and the split lognormal),
paths (errors by file, line and key; list indexing), dates, from_range, and the checks
made when a scenario is validated."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from caresim.analysis.calibrate import get_path, set_path
from caresim.analysis.sensitivity import compile_parameters
from caresim.errors import CaresimError
from caresim.interventions.effect import draw_ratio
from caresim.scenario.loader import ScenarioError, load_scenario
from caresim.scenario.model import HazardRatio
from caresim.scenario.uncertain import TAIL, PathError, UncertainParam, apply_value, parse_path, resolve_path
from conftest import TINY

U = np.linspace(0.0, 1.0, 41)
INNER = np.linspace(0.01, 0.99, 41)

INTERVENTION = """
interventions:
  fgc:
    stage: pre_proceedings
    uptake: {value: 0.8, assumption: test}
    effects:
      - transitions: [pre_proceedings->proceedings]
        central: 0.5
        interval: [0.3, 0.9]
        assumption: test
      - transitions: [pre_proceedings->child_in_need]
        central: 1.2
        assumption: test
    rollout:
      waves:
        - start: 2025-04-01
          rest: true
"""


def _write(tmp_path: Path, uncertain: str, extra: str = INTERVENTION) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"extends: {TINY}\nname: sweep_test\n{extra}\nuncertain:\n{uncertain}")
    return path


def _param(**kw) -> UncertainParam:
    return UncertainParam(name="p", path="a.b", **kw)


# --- quantiles ---------------------------------------------------------------------------


def test_uniform_and_triangular_quantiles_match_scipy():
    u = _param(dist="uniform", low=2.0, high=5.0)
    np.testing.assert_allclose(u.quantile(U), stats.uniform(2.0, 3.0).ppf(U))
    t = _param(dist="triangular", low=90, mode=240, high=540)
    ref = stats.triang(c=(240 - 90) / (540 - 90), loc=90, scale=450)
    np.testing.assert_allclose(t.quantile(U), ref.ppf(U), rtol=1e-12)
    assert t.ends() == (90.0, 540.0)
    # a mode at an end is a right-angled triangle
    np.testing.assert_allclose(_param(dist="triangular", low=0, mode=0, high=1).quantile(U),
                               stats.triang(c=0.0).ppf(U), atol=1e-12)


def test_normal_quantiles_truncated_and_clipped():
    n = _param(dist="normal", mean=10.0, sd=2.0)
    np.testing.assert_allclose(n.quantile(INNER), stats.norm(10, 2).ppf(INNER))
    # unbounded tails are clipped at TAIL
    np.testing.assert_allclose(n.ends(), stats.norm(10, 2).ppf([TAIL, 1 - TAIL]))
    tn = _param(dist="normal", mean=10.0, sd=2.0, bounds=(9.0, None))
    ref = stats.truncnorm(a=-0.5, b=np.inf, loc=10, scale=2)
    np.testing.assert_allclose(tn.quantile(INNER), ref.ppf(INNER), rtol=1e-9)
    assert tn.ends()[0] == pytest.approx(9.0)


def test_lognormal_from_median_sigma_or_interval():
    ln = _param(dist="lognormal", median=4000.0, sigma=0.1)
    np.testing.assert_allclose(ln.quantile(INNER), stats.lognorm(s=0.1, scale=4000).ppf(INNER))
    iv = _param(dist="lognormal", interval=(3469.0, 4137.0))
    np.testing.assert_allclose(iv.quantile([0.025, 0.5, 0.975]),
                               [3469.0, np.sqrt(3469.0 * 4137.0), 4137.0], rtol=1e-9)
    iv90 = _param(dist="lognormal", interval=(1.0, 4.0), level=0.9)
    np.testing.assert_allclose(iv90.quantile([0.05, 0.95]), [1.0, 4.0], rtol=1e-9)


def test_evidence_quantiles_are_the_effects_split_lognormal(tmp_path):
    path = _write(tmp_path, "  - {name: hr, path: 'interventions.fgc.effects[0].central', dist: evidence}\n")
    loaded = load_scenario(path)
    (p,) = compile_parameters(loaded.scenario)
    hr = HazardRatio(transitions=["pre_proceedings->proceedings"], central=0.5, interval=(0.3, 0.9))
    # the interval's ends at the 2.5th and 97.5th percentiles, the central value at the median
    np.testing.assert_allclose(p.values([0.025, 0.5, 0.975]), [0.3, 0.5, 0.9], rtol=1e-9)
    # each side is lognormal with its own spread: compare with draw_ratio and scipy
    lo_sigma = np.log(0.5 / 0.3) / stats.norm.ppf(0.975)
    hi_sigma = np.log(0.9 / 0.5) / stats.norm.ppf(0.975)
    below, above = INNER[INNER < 0.5], INNER[INNER > 0.5]
    np.testing.assert_allclose(p.values(below), stats.lognorm(s=lo_sigma, scale=0.5).ppf(below), rtol=1e-9)
    np.testing.assert_allclose(p.values(above), stats.lognorm(s=hi_sigma, scale=0.5).ppf(above), rtol=1e-9)
    np.testing.assert_allclose(p.values(INNER), [draw_ratio(hr, stats.norm.ppf(u)) for u in INNER])
    assert np.isfinite(p.values([0.0, 1.0])).all()  # tails clipped


@pytest.mark.parametrize("kw, text", [
    (dict(dist="uniform", low=3, high=1), "low 3.0 must be below high 1.0"),
    (dict(dist="uniform", low=1), "needs high"),
    (dict(dist="triangular", low=0, mode=5, high=1), "mode 5.0 is outside"),
    (dict(dist="uniform", low=0, high=1, mode=0.5), "remove mode"),
    (dict(dist="lognormal", median=1.0), "either median and sigma, or interval"),
    (dict(dist="lognormal", median=1.0, sigma=0.1, interval=(1, 2)), "either median and sigma"),
    (dict(dist="normal", mean=5, sd=1, bounds=(6, None)), "outside bounds"),
    (dict(dist="evidence", low=1), "remove low"),
    (dict(dist="normal", mean=1, sd=1, from_range=True), "from_range works with"),
])
def test_distribution_parameters_are_checked(kw, text):
    with pytest.raises(ValueError, match=text):
        _param(**kw)


# --- paths -------------------------------------------------------------------------------------


def test_parse_and_resolve_paths_with_list_items():
    assert parse_path("interventions.fgc.effects[0].central") == ("interventions", "fgc", "effects", 0, "central")
    doc = {"a": {"l": [{"c": 1.0}, {"c": 2.0}]}, "m": {1: 0.5}}
    parent, key = resolve_path(doc, "a.l[1].c")
    assert parent[key] == 2.0
    assert resolve_path(doc, "a.l.0.c")[0]["c"] == 1.0  # a digit key indexes a list
    assert resolve_path(doc, "m.1")[1] == 1  # and matches an integer mapping key
    with pytest.raises(PathError, match=r"no item \[2\] in a.l: it has 2 item"):
        resolve_path(doc, "a.l[2].c")
    with pytest.raises(PathError) as exc:
        resolve_path(doc, "a.k[0].c")
    assert exc.value.suggestion is None
    with pytest.raises(PathError) as exc:
        resolve_path({"court": {"capacity_cases": {"value": 1}}}, "court.capcity_cases.value")
    assert exc.value.suggestion == "court.capacity_cases.value"
    for bad in ("", "a..b", " a.b", "a.b[x]"):
        with pytest.raises(PathError, match="malformed"):
            parse_path(bad)


def test_calibrate_set_path_indexes_lists_and_keeps_its_errors():
    doc = {"interventions": {"fgc": {"effects": [{"central": 0.4}]}}}
    set_path(doc, "interventions.fgc.effects[0].central", 0.5)
    assert get_path(doc, "interventions.fgc.effects[0].central") == 0.5
    with pytest.raises(CaresimError, match="no key 'efects'.*did you mean 'interventions.fgc.effects"):
        set_path(doc, "interventions.fgc.efects[0].central", 1.0)
    with pytest.raises(KeyError):
        get_path(doc, "interventions.nope")


def test_misspelt_path_names_file_line_and_key(tmp_path):
    path = _write(tmp_path, (
        "  - name: cap\n"
        "    path: court.capacity_cases.value\n"
        "    dist: uniform\n    low: 7000\n    high: 12000\n"
        "  - name: typo\n"
        "    path: court.capcity_cases.value\n"
        "    dist: uniform\n    low: 1\n    high: 2\n"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    err = exc.value
    assert err.file == path and err.key == "uncertain[1].path"
    lines = path.read_text().splitlines()
    assert lines[err.line - 1].strip() == "path: court.capcity_cases.value"
    assert err.column == 5
    assert "no key 'capcity_cases' in court" in str(err)
    assert "did you mean 'court.capacity_cases.value'" in str(err)
    assert str(err).startswith(f"{path}:{err.line}:5: uncertain[1].path:")


@pytest.mark.parametrize("entry, key, text", [
    ("{name: a, path: court.areas, dist: uniform, low: 0, high: 1}", "uncertain[0].path",
     "'court.areas' is 'region', not a number or date"),
    ("{name: a, path: court, dist: uniform, low: 0, high: 1}", "uncertain[0].path", "is a mapping"),
    ("{name: a, path: run.scale, dist: uniform, low: 0.1, high: 1}", "uncertain[0].path",
     "not a model parameter"),
    ("{name: a, path: 'hazard_multipliers[0].value', dist: evidence}", "uncertain[0].dist",
     "effect's central value"),
    ("{name: a, path: 'interventions.fgc.effects[1].central', dist: evidence}", "uncertain[0].dist",
     "has no interval"),
    ("{name: a, path: 'interventions.fgc.effects[3].central', dist: uniform, low: 0.1, high: 1}",
     "uncertain[0].path", "no item [3] in interventions.fgc.effects"),
    ("{name: a, path: court.capacity_cases.value, dist: lognormal, from_range: true}",
     "uncertain[0].from_range", None),  # tiny's court capacity has a range: valid
    ("{name: a, path: 'hazard_multipliers[0].value', dist: uniform, from_range: true}",
     "uncertain[0].from_range", "no range is written in hazard_multipliers[0]"),
    ("{name: a, path: pathway.child_protection_plan.exits.pre_proceedings.p, dist: uniform, low: 0.05, high: 1.2}",
     "uncertain[0].high", "at its high end (1.2) the scenario is invalid: "
     "pathway.child_protection_plan.exits.pre_proceedings.p: Input should be less than or equal to 1"),
    ("{name: a, path: pathway.child_protection_plan.exits.pre_proceedings.p, dist: uniform, low: 0.05, high: 0.99}",
     "uncertain[0].high", "exit probabilities sum to 1.04 > 1"),
    ("{name: a, path: start, dist: uniform, low: 0, high: 30}",
     "uncertain[0].high", "at its high end (30 days from 2024-04-01) the scenario is invalid: "
     "start: start must be 1 April"),
])
def test_uncertain_entries_are_checked_against_the_scenario(tmp_path, entry, key, text):
    path = _write(tmp_path, f"  - {entry}\n")
    if text is None:
        load_scenario(path)
        return
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert exc.value.key == key and exc.value.line is not None, str(exc.value)
    assert text in str(exc.value)


def test_duplicate_names_and_paths(tmp_path):
    path = _write(tmp_path, "  - {name: a, path: court.capacity_cases.value, dist: uniform, low: 1, high: 2}\n"
                            "  - {name: a, path: 'court.capacity_cases.value', dist: uniform, low: 1, high: 2}\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    keys = {p.key for p in exc.value.problems}
    assert keys == {"uncertain[1].name", "uncertain[1].path"}


def test_dates_are_day_offsets_and_from_range_follows_the_scenario(tmp_path):
    path = _write(tmp_path, (
        "  - {name: delay, path: 'interventions.fgc.rollout.waves[0].start', dist: uniform, low: 0, high: 365}\n"
        "  - {name: cap, path: court.capacity_cases.value, dist: triangular, from_range: true}\n"
        "  - {name: steps, path: interventions.fgc.waning.steps, dist: uniform, low: 1, high: 12}\n"))
    loaded = load_scenario(path)
    delay, cap, steps = compile_parameters(loaded.scenario)
    assert delay.kind == "date" and delay.written == dt.date(2025, 4, 1)
    assert delay.values([0.0, 0.5, 1.0]).tolist() == [0.0, 182.0, 365.0]  # whole days
    # tiny's court capacity: value 9000, range [7000, 12000]
    assert cap.spec["low"] == 7000 and cap.spec["high"] == 12000 and cap.spec["mode"] == 9000
    assert steps.kind == "integer" and steps.values([0.5]).tolist() == [6.0]
    doc = loaded.resolved
    apply_value(doc, delay.path, 100.0, delay.kind, delay.written)
    assert doc["interventions"]["fgc"]["rollout"]["waves"][0]["start"] == "2025-07-10"
    apply_value(doc, "interventions.fgc.effects[0].central", 1.5, "number")
    eff = doc["interventions"]["fgc"]["effects"][0]
    assert eff["central"] == 1.5 and eff["interval"] is None  # a point value in a sweep


def test_the_fgc_sweep_scenario_loads():
    root = Path(__file__).resolve().parents[1]
    loaded = load_scenario(root / "scenarios" / "fgc_national_rollout_sweep.yaml")
    names = [p.name for p in loaded.scenario.uncertain]
    assert {"fgc_delay_hr", "fgc_diversion_hr", "fgc_full_days", "fgc_uptake", "fgc_unit_cost",
            "cin_to_pre_proceedings", "cpp_to_pre_proceedings", "residential_weekly_cost",
            "court_capacity"} <= set(names)
    assert all(p.sources or p.assumption for p in loaded.scenario.uncertain)
    params = {p.name: p for p in compile_parameters(loaded.scenario)}
    court = loaded.scenario.court.capacity_cases
    assert params["court_capacity"].values([0.025])[0] == pytest.approx(court.range[0])
