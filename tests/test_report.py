"""The policy brief (`caresim report`): rounding, assumptions, and the briefs of a run and a
comparison of library scenarios (sweep, trial and calibration briefs are tested beside their
own fixtures in test_sweep.py, test_trial.py and test_calibrate.py)."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from briefcheck import assumptions_listed, check_common, check_headline, in_chromium, manifest, render
from caresim.cli import app
from caresim.report.brief.common import unit_of
from caresim.report.numbers import MINUS, estimate, parse_number, rounding_step
from caresim.scenario.differences import differences_from_baseline
from caresim.scenario.loader import load_scenario
from conftest import BASELINE, ROOT

runner = CliRunner()
LAS = "[E06000001, E08000025, E09000002]"


# --- numbers ------------------------------------------------------------------------------

def test_the_issue_example_and_money_and_signs():
    assert estimate(78412.5, 76912, 80148, unit="children").text == \
        "78,400 children (90% interval 76,900 to 80,100)"
    e = estimate(-951.3e6, -1583.7e6, -285.4e6, unit="GBP", signed=True)
    # the interval is 1.3 billion wide: two significant figures of it is a step of 100 million
    assert e.text == f"{MINUS}£1.0 billion (90% interval {MINUS}£1.6 billion to {MINUS}£0.3 billion)"
    assert estimate(78e6, 70.2e6, 85.1e6, unit="GBP").text == \
        "£78 million (90% interval £70 million to £85 million)"
    assert estimate(-52.3, -508, 430, unit="children", signed=True).text == \
        f"{MINUS}50 children (90% interval {MINUS}510 to +430)"
    assert estimate(42.71, 40.12, 45.33, unit="percent").text == "42.7% (90% interval 40.1% to 45.3%)"
    assert estimate(6028.3, unit="GBP").text == "£6,030"  # three significant figures, no interval
    assert estimate(2.5e9, 2.1e9, 2.9e9, unit="GBP", short=True).point_text == "£2.50bn"
    assert estimate(0.0, 0.0, 0.0, unit="children").text == "0 children (90% interval 0 to 0)"


@settings(max_examples=300, deadline=None)
@given(centre=st.floats(-1e10, 1e10), a=st.floats(0, 1e9), b=st.floats(0, 1e9),
       unit=st.sampled_from(["children", "GBP", "percent", "weeks", "number"]))
def test_rounding_rule(centre, a, b, unit):
    """Printed numbers are within half a step of the truth, read back to the rounded value,
    never show more than three significant figures, and the step is at most a tenth of the
    interval's width unless the three-figure cap or the unit's smallest step is coarser."""
    low, high = centre - a, centre + b
    e = estimate(centre, low, high, unit=unit)
    step = e.step
    for shown, true in ((e.point_text, centre), (e.low_text, low), (e.high_text, high)):
        assert abs(parse_number(shown) - true) <= step / 2 * (1 + 1e-9) + 1e-6
    width = high - low
    three_sf = 10.0 ** (math.floor(math.log10(abs(centre))) - 2) if centre else 1.0
    assert step <= max(width / 10, three_sf, {"children": 1, "GBP": 1, "percent": 0.1,
                                                "weeks": 0.1, "number": 1e-6}[unit]) * (1 + 1e-9)
    assert step >= three_sf * (1 - 1e-9) or step >= 1e-6
    assert rounding_step(centre, low, high, unit) == step


# --- assumptions --------------------------------------------------------------------------

def test_baseline_differs_from_itself_in_nothing_and_the_library_is_sourced():
    assert differences_from_baseline(load_scenario(BASELINE).resolved)["rows"] == []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        rows = differences_from_baseline(load_scenario(path).resolved)["rows"]
        for r in rows:
            assert r["sources"] or r["assumption"], (path.name, r["path"])


def test_a_changed_value_is_listed_with_the_baseline_value_and_inherited_evidence(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(f"""extends: {BASELINE}
name: changed
pathway:
  pre_proceedings:
    exits:
      proceedings: {{p: 0.75, assumption: more_escalation, range: [0.7, 0.8]}}
court:
  capacity_cases: {{value: 4000}}
""")
    rows = {r["path"]: r for r in differences_from_baseline(load_scenario(f).resolved)["rows"]}
    assert set(rows) == {"pathway.pre_proceedings.exits.proceedings", "court.capacity_cases"}
    p = rows["pathway.pre_proceedings.exits.proceedings"]
    before = load_scenario(BASELINE).resolved["pathway"]["pre_proceedings"]["exits"]["proceedings"]["p"]
    assert before != 0.75 and p["values"] == {"p": 0.75} and p["baseline"] == {"p": before}
    assert p["assumption"] == "more_escalation" and p["range"] == [0.7, 0.8] and not p["inherited"]
    c = rows["court.capacity_cases"]
    # a block written without provenance keeps the baseline's (merged key by key), so the
    # row names the baseline's evidence, as its own
    base = load_scenario(BASELINE).resolved["court"]["capacity_cases"]
    assert c["values"] == {"value": 4000.0} and not c["inherited"]
    assert (c["sources"], c["assumption"]) == (base["sources"], base["assumption"])
    assert c["sources"] or c["assumption"]


def test_dropped_or_added_list_blocks_are_a_row_of_their_own(tmp_path):
    """A scenario without the baseline's trends (or with one of two) lists the change at
    `trends`, never as a row without a path."""
    base = load_scenario(BASELINE).resolved
    n = len(base["trends"])
    assert n >= 2
    f = tmp_path / "s.yaml"
    f.write_text(f"extends: {BASELINE}\nname: no_trends\ntrends: []\n")
    rows = differences_from_baseline(load_scenario(f).resolved)["rows"]
    assert [(r["path"], r["values"], r["baseline"]) for r in rows] == [
        ("trends", {"trends": "0 item(s)"}, {"trends": f"{n} item(s)"})]
    one = dict(base["trends"][0], per_year=dict(base["trends"][0]["per_year"], value=1.02))
    one.pop("from_year", None)
    f.write_text(f"extends: {BASELINE}\nname: one_trend\ntrends: {json.dumps([one])}\n")
    rows = {r["path"]: r for r in differences_from_baseline(load_scenario(f).resolved)["rows"]}
    assert rows["trends"]["values"] == {"trends": "1 item(s)"}
    assert rows["trends[0].per_year"]["values"] == {"value": 1.02}
    assert "" not in rows


# --- run and compare briefs ---------------------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    d = tmp_path_factory.mktemp("briefs")
    (d / "base.yaml").write_text(f"extends: {BASELINE}\nname: small_baseline\nyears: 2\n"
                                 f"geography:\n  las: {LAS}\n")
    (d / "fgc.yaml").write_text(f"extends: {ROOT / 'scenarios' / 'fgc_pre_proceedings.yaml'}\n"
                                f"name: small_fgc\nyears: 2\ngeography:\n  las: {LAS}\n")
    common = ["-n", "3", "--scale", "0.2", "--jobs", "2", "--seed", "11"]
    r = runner.invoke(app, ["run", str(d / "fgc.yaml"), "--out", str(d / "run"), *common])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compare", str(d / "base.yaml"), str(d / "fgc.yaml"), "--out",
                            str(d / "compare"), *common])
    assert r.exit_code == 0, r.output
    # every command writes its folder's brief when it finishes (DESIGN's output contract)
    for kind in ("run", "compare"):
        assert (d / kind / "brief.html").stat().st_size > 100_000 and (d / kind / "brief.md").is_file()
    return d


def _england(df, metric, year, **where):
    m = (df.metric == metric) & (df.year == int(year)) & (df.geography == "England")
    for k, v in where.items():
        m &= df[k] == v
    assert m.sum() == 1, (metric, year)
    return df[m].iloc[0]


def test_run_brief_headlines_equal_summary_and_lists_assumptions(folders, browser):
    folder = folders / "run"
    p = render(folder)
    check_common(p, folder)
    summary = pd.read_csv(folder / "summary.csv")
    assert len(p.headlines) >= 5
    for h in p.headlines:
        assert h["table"] == "summary.csv"
        check_headline(h, _england(summary, h["metric"], h["year"]), unit_of(h["metric"]))
        assert "90% interval" in h["text"]
    m = manifest(folder)
    rows = assumptions_listed(p, m["assumptions"], require_source=True)
    assert any("0.21 to 0.72" in r[3] for r in rows)  # the FGC effect's interval is its range
    assert m["scenario_hash"][:16] in p.footer["scenario"]
    assert "fitted" in p.footer["calibration vintage"]
    assert f"{m['platform']}, {m['cpus']} CPUs" in p.html  # STRESS-DES 5.4
    checks = m["calibration"]["checks"]  # the calibration behind the run states its fit
    assert f"{checks['passed']} of {checks['total']}" in p.html
    in_chromium(browser, folder / "brief.html", "brief_run")


def test_compare_brief_headlines_equal_difference_csv(folders, browser):
    folder = folders / "compare"
    p = render(folder)
    check_common(p, folder)
    diff = pd.read_csv(folder / "difference.csv")
    metrics = {h["metric"] for h in p.headlines}
    assert {"cumulative.care_starts", "looked_after", "cumulative.cost.total.discounted"} <= metrics
    for h in p.headlines:
        assert h["table"] == "difference.csv"
        unit = unit_of(h["metric"])
        check_headline(h, _england(diff, h["metric"], h["year"]), "points" if unit == "percent" else unit)
    m = manifest(folder)
    assert m["scenarios"]["A"]["assumptions"]["rows"] == []
    assumptions_listed(p, m["scenarios"]["B"]["assumptions"], require_source=True)
    # the levels table shows both scenarios and the paired difference for the last year
    levels = next(t for t in p.tables if t[0][0] == "measure" and len(t[0]) == 4)
    assert levels[0][1].startswith("A: small_baseline") and levels[0][3] == "B minus A"
    assert "Intervention delivery" in p.sections
    shot = in_chromium(browser, folder / "brief.html", "brief_compare")
    assert shot["pdf_bytes"] > 50_000


def test_report_errors_name_the_folder_and_leave_no_brief(folders, tmp_path):
    r = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such folder" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no manifest.json" in r.output
    copy = tmp_path / "copy"
    shutil.copytree(folders / "compare", copy)
    for f in copy.glob("brief.*"):
        f.unlink()
    r = runner.invoke(app, ["report", str(copy), "--format", "pdf"])
    assert r.exit_code == 2 and "choose html or md" in r.output
    (copy / "difference.csv").unlink()
    r = runner.invoke(app, ["report", str(copy)])
    assert r.exit_code == 2 and "difference.csv: missing" in r.output
    assert not list(copy.glob("brief.*")) and not list(copy.glob(".brief*"))


def test_folders_written_before_kind_was_recorded_are_recognised(folders, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(folders / "compare", copy)
    m = manifest(copy)
    del m["kind"]
    (copy / "manifest.json").write_text(json.dumps(m))
    r = runner.invoke(app, ["report", str(copy), "--format", "md"])
    assert r.exit_code == 0, r.output
    assert (copy / "brief.md").read_text().startswith("# small_fgc compared with small_baseline")
