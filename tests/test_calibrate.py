"""Calibration: reports targets outside tolerance, and runs end to end from the CLI
(calibrate and backtest on synthetic targets); recovery is in test_calibrate_recovery.py."""

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from caresim.analysis.calibrate import Problem, get_path, set_path
from caresim.analysis.targets import fit_table, period_position, period_quarters, simulated_values
from caresim.cli import app
from caresim.population.local import LocalAuthorities
from caresim.scenario.loader import load_scenario
from caresim.scenario.model import Geography
from conftest import ROOT, TINY
from synthetic import METRICS, PARAMS, TRUE, fit_config, synthetic_targets

def test_target_outside_tolerance_is_reported():
    t = pd.DataFrame({"target_id": ["a", "b", "c", "d"], "metric": ["x", "x", "s", "x"],
                      "year": [2024] * 4, "geography": ["England"] * 4,
                      "published": [100.0, 100.0, 30.0, 100.0], "qualifier": ["", "", "", ">"],
                      "kind": ["flow", "flow", "share", "flow"], "unit": "", "tolerance": [0.05, 0.05, 1.0, 0.0],
                      "source_id": "R1"})
    fit = fit_table(t, pd.Series([103.0, 110.0, 32.0, 90.0]))
    verdict = dict(zip(fit.target_id, fit.within_tolerance))
    assert verdict == {"a": "yes", "b": "no", "c": "no", "d": "no"}
    assert fit.loc[fit.target_id == "b", "rel_error"].item() == pytest.approx(0.10)


def test_set_path_rejects_unknown_keys():
    from caresim.errors import CaresimError

    with pytest.raises(CaresimError, match="no key 'nope'"):
        set_path({"a": {"b": 1}}, "a.nope", 2.0)


def test_calibrate_cli_small_config(tiny, la_inputs, history, tmp_path, browser, monkeypatch):
    factors = {"E06000001": 1.5, "E09000002": 0.6}
    targets, _, _ = synthetic_targets(tiny, la_inputs, history, seed=5, la_cpp_factors=factors)
    targets.to_csv(tmp_path / "targets.csv", index=False)
    cfg = {"scenario": str(TINY), "targets": "targets.csv", "start": "2024-04-01",
           "train": [2025, 2026], "metrics": list(METRICS), "scale": 0.5, "replications": 1,
           "seed": 2, "max_evaluations": 4, "refine_evaluations": 2, "posterior_draws": 20,
           "uncertainty_replications": 3,
           "parameters": [p.model_dump() for p in PARAMS],
           "local": {"indices": {"cpp_index": "cpp_starts"}, "years": [2025, 2026], "scale": 0.5,
                     "iterations": 2}}
    (tmp_path / "config.yaml").write_text(json.dumps(cfg))
    out = tmp_path / "report"
    monkeypatch.chdir(tmp_path)  # the manifest names the targets as the command would
    r = CliRunner().invoke(app, ["calibrate", "--config", "config.yaml",
                                 "--out", str(out), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    fit = pd.read_csv(out / "fit.csv")
    assert list(fit.columns[:6]) == ["target_id", "metric", "year", "published", "simulated", "rel_error"]
    assert (out / "fit_summary.md").read_text().count("|") > 20
    assert (out / "figures" / "fit_national.png").stat().st_size > 10_000
    # the fit's history: each stage in order, with simulation runs and seconds that only grow
    hist = pd.read_csv(out / "fit_history.csv")
    stages = list(dict.fromkeys(hist.stage))
    assert stages == ["national", "local", "refine", "uncertainty", "fit table"]
    assert (hist.stage == "local").sum() == 2
    assert hist.simulations.is_monotonic_increasing and hist.seconds.is_monotonic_increasing
    assert hist[hist.stage.isin(["national", "refine"])].cost.notna().all()
    assert (hist[hist.stage == "uncertainty"].simulations.item()
            == json.loads((out / "manifest.json").read_text())["evaluations"])
    fitted = tmp_path / "fitted"
    for name in ("parameters.yaml", "parameter_samples.csv", "la_multipliers.csv", "manifest.json"):
        assert (fitted / name).is_file(), name
    assert (fitted / "fit_summary.md").read_bytes() == (out / "fit_summary.md").read_bytes()
    man = json.loads((fitted / "manifest.json").read_text())
    assert man["seed"] == 2 and "targets_sha256_16" in man and man["command"].startswith("caresim")
    assert man["targets"] == "targets.csv"
    assert man["targets_vintage"].startswith("published figures to 2025-26 (stocks at 31 March 2026)")
    assert man["targets_vintage"].endswith(f"; {len(targets)} rows")
    # the fitted file is a valid scenario extending the prior, with the fitted values
    from caresim.scenario.loader import load_scenario

    (fitted / "use.yaml").write_text("extends: parameters.yaml\nname: fitted_tiny\n")
    loaded = load_scenario(fitted / "use.yaml").scenario
    for p in man["parameters"]:
        assert float(get_path(loaded.model_dump(), p["path"])) == pytest.approx(p["fitted"], rel=1e-5), p["name"]
    samples = pd.read_csv(fitted / "parameter_samples.csv")
    assert set(samples.path) == {p.path for p in PARAMS}
    mult = pd.read_csv(fitted / "la_multipliers.csv").set_index("geography")
    assert set(mult.index) >= set(tiny.scenario.geography.las)
    # two damped steps (0.7) towards each LA's factor: 1.5**0.91 = 1.45, 0.6**0.91 = 0.63 if
    # the national fit were exact (it has had 4 evaluations), so a margin for that
    assert mult.loc["E06000001", "cpp_index"] > 1.2 and mult.loc["E09000002", "cpp_index"] < 0.8
    # and it runs with parameter uncertainty
    r = CliRunner().invoke(app, ["run", str(fitted / "use.yaml"), "--out", str(tmp_path / "run"),
                                 "-n", 2, "--scale", 0.2, "--parameter-uncertainty"])
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["uncertainty"].startswith("parameter and stochastic")
    _check_calibration_brief(out, browser, "brief_calibration")


def _check_calibration_brief(out, browser, name):
    """The brief of a calibration or backtest folder: its headline count is the national
    checks of fit.csv, its LA correlations are the manifest's, every fitted parameter is listed."""
    from briefcheck import check_common, in_chromium, render
    from caresim.report.fitreport import national_checks

    p = render(out)
    check_common(p, out)
    man = json.loads((out / "manifest.json").read_text())
    fit = pd.read_csv(out / "fit.csv")
    fit["qualifier"] = fit["qualifier"].astype("string").fillna("")
    years = man["backtest"]["held_out_years"] if "backtest" in man else man["train_years"]
    checks = national_checks(fit, tuple(years))
    assert man["checks"]["passed"] == int(checks.passes.sum())
    assert p.headlines[0]["estimate"] == f"{int(checks.passes.sum())} of {len(checks)}"
    for h, r in zip(p.headlines[1:], man["la_statistics"]["rows"]):
        assert h["estimate"] == f"{r['correlation']:.3f}" and h["metric"] == r["metric"]
    params = next(t for t in p.tables if t[0][:2] == ["parameter", "path"])
    assert [r[0] for r in params[1:]] == [q["name"] for q in man["parameters"]]
    failing = next(t for t in p.tables if t[0][:2] == ["metric", "year"])
    assert len(failing) - 1 == int((~checks.passes).sum())  # every target outside its limit shown
    in_chromium(browser, out / "brief.html", name)


def test_report_checks_and_la_statistics():
    from caresim.report.fitreport import la_statistics, national_checks

    fit = pd.DataFrame({
        "metric": ["looked_after"] * 4 + ["x", "s"],
        "year": [2024] * 6,
        "geography": ["E06000001", "E06000002", "E06000003", "E06000004", "England", "England"],
        "published": [100.0, 200.0, 300.0, 0.0, 1000.0, 20.0],
        "simulated": [110.0, 190.0, 330.0, 5.0, 1060.0, 24.0],
        "qualifier": [""] * 6,
        "kind": ["stock"] * 4 + ["flow", "share"],
        "tolerance": [0.005] * 4 + [0.01, 1.0],
    })
    fit["error"] = fit.simulated - fit.published
    fit["rel_error"] = fit.error / fit.published
    la = la_statistics(fit, 2024).set_index("metric").loc["looked_after"]
    assert la.las == 3  # the LA published as 0 has no relative error
    assert la.median_abs_rel_error == pytest.approx(0.10)
    checks = national_checks(fit, (2024, 2024)).set_index("metric")
    assert bool(checks.loc["x", "passes"])  # a flow 6% off passes the 7% limit
    assert not bool(checks.loc["s", "passes"])  # a share 4 points off fails the 3-point limit


def test_backtest_cli_fits_early_years_and_reports_held_out_ones(tiny, la_inputs, history, tmp_path, browser):
    """Synthetic targets for 2022-2024 from a 2021 start; train to 2022, project from
    31 March 2022 (its published state) and compare 2023-2024."""
    la21 = pd.read_csv(str(tiny.data_paths["la_inputs"]).replace("2024", "2021"))
    t, _, _ = synthetic_targets(tiny, la21, history, seed=999, start=dt.date(2021, 4, 1),
                                 years=(2022, 2023, 2024), reps=2)
    t.to_csv(tmp_path / "targets.csv", index=False)
    conf = {"scenario": str(TINY), "targets": "targets.csv", "start": "2021-04-01",
            "train": [2022, 2024], "metrics": list(METRICS), "scale": 0.5, "replications": 1,
            "seed": 2, "max_evaluations": 3, "refine_evaluations": 1, "posterior_draws": 10,
            "uncertainty_replications": 3, "parameters": [p.model_dump() for p in PARAMS]}
    (tmp_path / "config.yaml").write_text(json.dumps(conf))
    out = tmp_path / "bt"
    r = CliRunner().invoke(app, ["backtest", "--train-until", "2022", "--config",
                                 str(tmp_path / "config.yaml"), "--out", str(out), "--jobs", "1"])
    assert r.exit_code == 0, r.output
    fit = pd.read_csv(out / "fit.csv")
    assert set(fit.year) == {2023, 2024}  # only held-out years
    man = json.loads((out / "manifest.json").read_text())
    assert man["backtest"]["projection_start"] == "2022-04-01"
    assert man["train_years"] == [2022, 2022]
    assert not (tmp_path / "fitted").exists()  # a backtest never replaces the fitted defaults
    _check_calibration_brief(out, browser, "brief_backtest")
    r = CliRunner().invoke(app, ["backtest", "--train-until", "2024", "--config",
                                 str(tmp_path / "config.yaml"), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--train-until" in r.output
    # one fit, projected with held and with published inputs: each report is the one a
    # separate run gives (the same fit), and the two projections differ by their inputs
    both = tmp_path / "both"
    r = CliRunner().invoke(app, ["backtest", "--train-until", "2022", "--config",
                                 str(tmp_path / "config.yaml"), "--out", str(both), "--jobs", "1",
                                 "--inputs", "both"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in both.iterdir()) == ["held", "published"]
    assert (both / "held" / "fit.csv").read_bytes() == (out / "fit.csv").read_bytes()
    assert ((both / "held" / "parameters.csv").read_bytes()
            == (both / "published" / "parameters.csv").read_bytes() == (out / "parameters.csv").read_bytes())
    assert ((both / "held" / "fit_history.csv").read_bytes()
            == (both / "published" / "fit_history.csv").read_bytes())  # one fit's history
    assert pd.read_csv(both / "held" / "fit_history.csv").stage.iloc[0] == "national"
    held, published = (pd.read_csv(both / k / "fit.csv") for k in ("held", "published"))
    assert set(published.year) == {2023, 2024} and not held.simulated.equals(published.simulated)
    for k in ("held", "published"):
        m = json.loads((both / k / "manifest.json").read_text())["backtest"]
        assert m["inputs"] == k and (both / k / "brief.html").is_file()
    r = CliRunner().invoke(app, ["backtest", "--train-until", "2022", "--config",
                                 str(tmp_path / "config.yaml"), "--out", str(tmp_path / "y"),
                                 "--inputs", "future"])
    assert r.exit_code == 2 and "'held', 'published' or 'both'" in r.output
    assert not (tmp_path / "y").exists()
    # --seed replaces the config's: other random streams, another fit, recorded
    r = CliRunner().invoke(app, ["backtest", "--train-until", "2022", "--config",
                                 str(tmp_path / "config.yaml"), "--out", str(tmp_path / "s"),
                                 "--jobs", "1", "--seed", "3"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert m["seed"] == 3
    assert not pd.read_csv(tmp_path / "s" / "fit.csv").simulated.equals(fit.simulated)


def test_unpublished_uasc_arrivals_only_in_fitting_runs(tiny, la_inputs, history):
    from caresim.analysis.calibrate import UnpublishedUasc

    base = {k: v for k, v in tiny.resolved.items() if k != "data"}
    regions = LocalAuthorities.from_inputs(la_inputs, Geography()).regions
    theta = np.array([TRUE[p.path] for p in PARAMS])
    plain = Problem(base=base, la_inputs=la_inputs, history=history, targets=pd.DataFrame(),
                    config=fit_config(), regions=regions)
    assert plain.scenario(theta).arrivals.uasc.per_year == tiny.scenario.arrivals.uasc.per_year
    cfg = fit_config(uasc_unpublished=UnpublishedUasc(per_year=1234.0, sources=["R040"]))
    prob = Problem(base=base, la_inputs=la_inputs, history=history, targets=pd.DataFrame(),
                   config=cfg, regions=regions)
    assert prob.scenario(theta).arrivals.uasc.per_year == 1234.0
    assert base["arrivals"]["uasc"]["per_year"] == tiny.scenario.arrivals.uasc.per_year


def test_fitted_yaml_sets_values_in_lists_and_year_keys(tmp_path):
    """`extends` replaces lists whole and YAML reads `2021:` as a number: the fitted overlay
    must copy the prior's list and use its keys, or the baseline would not load (a list
    path) or would lose the prior's sources (a year key)."""
    from caresim.analysis.calibrate import fitted_yaml
    from caresim.scenario.loader import load_merged, load_scenario

    prior = ROOT / "scenarios" / "baseline_derived.yaml"
    params = pd.DataFrame([
        {"name": "s47_trend", "path": "trends[0].per_year.value", "also": "", "prior": 1.06,
         "fitted": 1.0731, "lower_95": 1.05, "upper_95": 1.09},
        {"name": "cap_2022", "path": "court.capacity_by_year.2022.value", "also": "", "prior": 0.74,
         "fitted": 0.6612, "lower_95": 0.55, "upper_95": 0.77},
    ])
    text = fitted_yaml(params, str(prior), "test", "manifest.json", {}, prior_doc=load_merged(prior))
    (tmp_path / "parameters.yaml").write_text(text)
    fitted = load_scenario(tmp_path / "parameters.yaml").resolved
    base = load_scenario(prior).resolved
    assert fitted["trends"][0]["per_year"]["value"] == 1.0731
    assert fitted["trends"][0]["per_year"]["range"] == [1.05, 1.09]
    assert fitted["trends"][1] == base["trends"][1]  # the other item is the prior's
    assert len(fitted["trends"]) == len(base["trends"])
    cap = fitted["court"]["capacity_by_year"]["2022"]
    assert cap["value"] == 0.6612
    assert cap["sources"] == base["court"]["capacity_by_year"]["2022"]["sources"] != []
    with pytest.raises(Exception, match="no item 5"):
        fitted_yaml(params.assign(path="trends[5].per_year.value"), str(prior), "t", "m", {},
                    prior_doc=load_merged(prior))


def test_court_targets_are_compared_over_their_published_months():
    """A court figure for a quarter or a calendar year is the ratio of the quarters' summed
    components (not the financial year's value, nor a mean of quarterly ratios)."""
    means = {("proceedings_mean_weeks", 2021, "England"): 99.0, ("proceedings_mean_weeks", 2022, "England"): 99.0}
    cases = {(2021, "jan_mar"): 100.0, (2022, "apr_jun"): 300.0, (2022, "jul_sep"): 0.0, (2022, "oct_dec"): 100.0}
    weeks = {(2021, "jan_mar"): 40.0, (2022, "apr_jun"): 50.0, (2022, "jul_sep"): 0.0, (2022, "oct_dec"): 60.0}
    for (fy, q), n in cases.items():
        means[(f"proceedings_completed_cases.{q}", fy, "England")] = n
        means[(f"proceedings_weeks_total.{q}", fy, "England")] = n * weeks[(fy, q)]
        means[(f"proceedings_within_26_weeks_cases.{q}", fy, "England")] = n / 4
    t = pd.DataFrame({"metric": ["proceedings_mean_weeks", "proceedings_mean_weeks", "cafcass.proceedings_mean_weeks",
                                 "proceedings_within_26_weeks", "proceedings_mean_weeks", "proceedings_mean_weeks"],
                      "year": [2021, 2022, 2022, 2022, 2022, 2021],
                      "period": ["Jan-Mar 2021", "Jan-Dec 2021", "Oct-Dec 2021", "Jan-Dec 2021", "", "Oct-Dec 2020"],
                      "geography": "England"})
    sim = simulated_values(t, pd.Series(means))
    assert sim[0] == pytest.approx(40.0)
    assert sim[1] == pytest.approx((100 * 40 + 300 * 50 + 100 * 60) / 500)
    assert sim[2] == pytest.approx(60.0)  # Cafcass's measure is compared with the model's mean weeks
    assert sim[3] == pytest.approx(25.0)
    assert sim[4] == 99.0  # no period: the financial year's value
    assert np.isnan(sim[5])  # a quarter not simulated
    assert period_quarters("Jan-Dec 2021") == [(2021, "jan_mar"), (2022, "apr_jun"), (2022, "jul_sep"),
                                                (2022, "oct_dec")]
    assert period_position("Jan-Mar 2021") == pytest.approx(2021.375)
    for bad in ("Feb-Apr 2021", "Oct-Mar 2021", "Jan-Apr 2021", "Jul-Jun 2021", "2021", "Jan-Mar 21"):
        with pytest.raises(ValueError, match="period"):
            period_quarters(bad)


def test_count_targets_with_a_period_sum_their_quarters():
    """A count published for a run of quarters (Cafcass's applications, Apr-Sep 2023) is the
    sum of `<metric>.<quarter>` over those quarters, not the financial year's count."""
    assert period_quarters("Apr-Sep 2023") == [(2024, "apr_jun"), (2024, "jul_sep")]
    assert period_quarters("Jan-Sep 2023") == [(2023, "jan_mar"), (2024, "apr_jun"), (2024, "jul_sep")]
    means = {("proceedings_issued_cases", 2024, "England"): 11000.0,
             ("proceedings_issued_cases.apr_jun", 2024, "England"): 2700.0,
             ("proceedings_issued_cases.jul_sep", 2024, "England"): 2900.0,
             ("proceedings_issued_cases.oct_dec", 2024, "England"): 2600.0,
             ("proceedings_issued.apr_jun", 2024, "England"): 4600.0}
    t = pd.DataFrame({"metric": ["proceedings_issued_cases", "proceedings_issued_cases", "proceedings_issued_cases",
                                 "proceedings_issued"],
                      "year": [2024, 2024, 2024, 2024],
                      "period": ["Apr-Sep 2023", "", "Jul-Dec 2023", "Apr-Sep 2023"],
                      "geography": "England"})
    sim = simulated_values(t, pd.Series(means))
    assert sim[0] == pytest.approx(5600.0)
    assert sim[1] == 11000.0  # no period: the financial year's count
    assert sim[2] == pytest.approx(5500.0)
    assert np.isnan(sim[3])  # a quarter not simulated
    for metric in ("looked_after", "rereferrals/referrals"):  # no quarterly record
        with pytest.raises(ValueError, match="no period comparison"):
            simulated_values(t.assign(metric=metric), pd.Series(means))


def _config_with(tmp_path, *edits):
    """calibration/config.yaml with absolute data paths and (old, new) text edits; returns
    its path and the 1-based line of each edit."""
    text = (ROOT / "calibration" / "config.yaml").read_text()
    text = text.replace("scenario: ../scenarios/", f"scenario: {ROOT / 'scenarios'}/")
    text = text.replace("targets: targets.csv.gz", f"targets: {ROOT / 'calibration' / 'targets.csv.gz'}")
    lines = []
    for old, new in edits:
        assert text.count(old) == 1, old
        lines.append(text[:text.index(old)].count("\n") + 1)
        text = text.replace(old, new)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path, lines


def test_config_keys_that_name_nothing_are_errors_at_their_line(tmp_path):
    """A parameter path missing from the prior scenario, a prior outside its bounds, a
    metric without England targets and an LA index without LA targets: each named with the
    file, line and key, all in one error, before anything runs."""
    from caresim.analysis.calibrate import load_config
    from caresim.errors import CaresimError

    path, (meen, bounds, metric, local) = _config_with(
        tmp_path,
        ("path: pathway.closed.sojourn.mean,", "path: pathway.closed.sojourn.meen,"),
        ("bounds: [0.005, 0.04], log: true}", "bounds: [0.02, 0.04], log: true}"),
        ("  - referrals\n", "  - referals\n"),
        ("cpp_index: cpp_starts", "cpp_index: cpp_startz"))
    with pytest.raises(CaresimError) as err:
        load_config(path)
    text = str(err.value)
    # the parameters' indices and the prior's value, from the unedited config and scenario
    config = yaml.safe_load((ROOT / "calibration" / "config.yaml").read_text())["parameters"]
    i_meen = next(i for i, p in enumerate(config) if p["path"] == "pathway.closed.sojourn.mean")
    i_bounds = next(i for i, p in enumerate(config) if p["bounds"] == [0.005, 0.04])
    prior = get_path(load_scenario(ROOT / "scenarios" / "baseline_derived.yaml").resolved,
                      config[i_bounds]["path"])
    assert f"{path}:{meen}:" in text and f"parameters[{i_meen}].path: not in the prior scenario" in text
    assert "did you mean 'pathway.closed.sojourn.mean'" in text and "did you mean 'referrals'" in text
    assert f"{path}:{bounds}:" in text and f"parameters[{i_bounds}].bounds: the prior scenario's value {prior:g}" in text
    assert f"{path}:{metric}:" in text and "metrics[0]: no England target for 'referals'" in text
    assert f"{path}:{local}:" in text and "local.indices.cpp_index: no LA target for 'cpp_startz'" in text
    assert len(text.splitlines()) == 4


def test_config_schema_errors_name_line_and_what_is_allowed(tmp_path):
    from caresim.analysis.calibrate import load_config
    from caresim.errors import CaresimError

    path, (line,) = _config_with(tmp_path, ("seed: 20190401", "seed: 20190401\nreplicatoins: 3"))
    with pytest.raises(CaresimError, match=rf"{path}:{line + 1}:1: replicatoins: .*(not|unknown|allowed)"):
        load_config(path)
    r = CliRunner().invoke(app, ["calibrate", "--config", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and f"{path}:{line + 1}" in r.output
    assert not (tmp_path / "o").exists()


def test_ranges_of_unidentified_parameters_span_their_bounds():
    """A parameter no target moves (a zero column of J) gets the bounds' spread (sd
    sqrt(1/12) in unit coordinates), not a zero width; a barely moved one no more than
    that; an identified one the plain sandwich A^-1 J' N J A^-1 within 1%."""
    from caresim.analysis.calibrate import sandwich_covariance

    g = np.random.default_rng(1)
    J = g.normal(size=(40, 3)) * [30.0, 1e-9, 20.0]
    noise = np.diag(g.uniform(0.5, 2.0, size=40))
    sd = np.sqrt(np.diag(sandwich_covariance(J, noise)))
    assert sd[1] == pytest.approx(np.sqrt(1 / 12), rel=1e-6)
    ident = J[:, [0, 2]]
    a_inv = np.linalg.inv(ident.T @ ident)
    plain = np.sqrt(np.diag(a_inv @ ident.T @ noise @ ident @ a_inv))
    assert sd[[0, 2]] == pytest.approx(plain, rel=0.01)
    J[:, 1] = g.normal(size=40) * 0.05  # weakly identified: narrower than the bounds' spread
    sd_weak = np.sqrt(np.diag(sandwich_covariance(J, noise)))[1]
    assert 0.1 < sd_weak < np.sqrt(1 / 12)


def test_a_shared_parameter_sets_every_path_and_is_written_at_each(tmp_path):
    """A parameter with `also` (one value for several transitions) is set at each of its
    paths in a fitting run, written at each in the fitted overlay and in every draw of
    the samples; paths whose prior values differ are an error at the `also` key."""
    from caresim.analysis.calibrate import fitted_yaml, load_config, parameter_samples
    from caresim.analysis.calibration_pipeline import build_problem
    from caresim.errors import CaresimError
    from caresim.scenario.loader import load_merged

    shared = ("  - {name: other_exit_10_15, path: pathway.looked_after.variants.s20.exits.other.age_multiplier.10-15, "
              "also: [pathway.looked_after.variants.care_order.exits.other.age_multiplier.10-15], "
              "bounds: [0.05, 2.0], log: true}\n")
    anchor = "  - {name: care_order_mean_days,"
    path, _ = _config_with(tmp_path, (anchor, shared + anchor))
    cfg, path = load_config(path)
    i = next(i for i, p in enumerate(cfg.parameters) if p.name == "other_exit_10_15")
    spec = cfg.parameters[i]
    assert len(spec.paths) == 2 and spec.paths[0] != spec.paths[1]
    problem = build_problem(cfg, path)
    theta = np.array([float(get_path(problem.base, s.path)) for s in cfg.parameters])
    theta[i] = 0.37
    doc = problem.scenario(theta).model_dump(mode="json", by_alias=True)
    for p in spec.paths:
        assert get_path(doc, p) == pytest.approx(0.37), p
    assert get_path(problem.base, spec.paths[1]) == 1.0  # the prior is left as it was

    samples = parameter_samples(cfg, SimpleNamespace(draws=[theta, theta * 1.01]))
    rows = samples[samples.name == "other_exit_10_15"]
    assert sorted(rows.path.unique()) == sorted(spec.paths) and len(rows) == 4
    assert rows.groupby("draw").value.nunique().eq(1).all()

    prior = ROOT / "scenarios" / "baseline_derived.yaml"
    params = pd.DataFrame([{"name": spec.name, "path": spec.path, "also": ";".join(spec.also), "prior": 1.0,
                            "fitted": 0.37, "lower_95": 0.3, "upper_95": 0.45}])
    (tmp_path / "parameters.yaml").write_text(
        fitted_yaml(params, str(prior), "test", "manifest.json", {}, prior_doc=load_merged(prior)))
    fitted = load_scenario(tmp_path / "parameters.yaml").resolved
    assert [get_path(fitted, p) for p in spec.paths] == [0.37, 0.37]

    bad, (line,) = _config_with(tmp_path, (anchor, shared.replace(
        "also: [pathway.looked_after.variants.care_order.exits.other.age_multiplier.10-15]",
        "also: [pathway.closed.sojourn.mean]") + anchor))
    with pytest.raises(CaresimError) as err:
        load_config(bad)
    assert f"{bad}:{line}:" in str(err.value)
    assert f"parameters[{i}].also[0]: pathway.closed.sojourn.mean is 80" in str(err.value)
