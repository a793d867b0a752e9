"""Tests of caresim.results (metrics, summary, store, first-year check) and the fan charts,
on small synthetic records built here (no simulation is run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from caresim.errors import CaresimError
from caresim.report.fancharts import fan_chart, fan_charts
from caresim.results.firstyear import FIRST_YEAR_COLUMNS, FIRST_YEAR_METRICS, first_year_check
from caresim.results.metrics import (
    FAMILIES,
    METRICS,
    PLACEMENTS,
    LEGAL_STATUSES,
    CEASE_REASONS,
    metric_info,
    metrics_markdown_table,
)
from caresim.results.store import OutputFolder, write_manifest, write_parquet
from caresim.results.summary import (
    SUMMARY_COLUMNS,
    add_geographies,
    add_ratios,
    format_float,
    summarise,
    write_csv,
)

LA_REGIONS = pd.Series(
    {"E09000002": "London", "E09000003": "London", "E08000025": "West Midlands"}
)
YEARS = (2025, 2026, 2027)
REPS = 5


def make_records(seed: int = 1) -> pd.DataFrame:
    """Records for 3 LAs, 3 years, 5 replications and a few metrics, incl. court parts."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(REPS):
        for year in YEARS:
            for la in LA_REGIONS.index:
                for metric, scale in (("looked_after", 800.0), ("referrals", 6000.0),
                                      ("cost.total", 5e7)):
                    rows.append((metric, year, la, float(rng.poisson(scale)), rep))
                cases = float(rng.integers(1, 20))
                rows += [
                    ("proceedings_completed_cases", year, la, cases, rep),
                    ("proceedings_weeks_total", year, la, cases * float(rng.uniform(20, 50)), rep),
                    ("proceedings_within_26_weeks_cases", year, la, float(rng.integers(0, cases + 1)), rep),
                ]
    return pd.DataFrame(rows, columns=["metric", "year", "geography", "value", "replication"])


# ---------------------------------------------------------------- metrics registry


def test_registry_covers_record_metrics_and_families() -> None:
    for name in ("looked_after", "child_in_need.plan", "rereferrals", "proceedings_issued_cases",
                 "care_starts.uasc", "sgo_breakdowns", "proceedings_weeks_total",
                 "proceedings_mean_weeks", "proceedings_within_26_weeks", "cost.placements",
                 "cost.court", "cost.total", "looked_after.uasc"):
        assert name in METRICS
    for p in PLACEMENTS:
        assert metric_info(f"looked_after.{p}").kind == "stock"
        assert metric_info(f"cost.placements.{p}").unit == "GBP"
    for s in LEGAL_STATUSES:
        assert metric_info(f"looked_after.{s}").kind == "stock"
    for r in CEASE_REASONS:
        assert metric_info(f"care_ceased.{r}").kind == "flow"
    assert metric_info("looked_after.<placement>").kind == "stock"
    assert metric_info("proceedings_within_26_weeks").kind == "ratio"
    # every family member has its own description (not the generic fallback)
    for family in FAMILIES.values():
        assert set(family.members) <= set(family.texts), family.template


def test_metric_info_unknown_is_a_user_error() -> None:
    with pytest.raises(CaresimError, match="looked_after"):
        metric_info("looked_afterr")


def test_markdown_table_lists_every_family_and_metric() -> None:
    table = metrics_markdown_table()
    assert table.startswith("| metric | kind | unit | definition |")
    assert "`looked_after.<placement>`" in table and "`care_ceased.<reason>`" in table
    assert "`placed_for_adoption`" in table and "`proceedings_mean_weeks`" in table


# ---------------------------------------------------------------- geographies and ratios


def test_region_and_england_sums_equal_la_sums() -> None:
    records = make_records()
    out = add_geographies(records, LA_REGIONS)
    assert set(out["geography"]) == {*LA_REGIONS.index, "London", "West Midlands", "England"}
    la = records.groupby(["metric", "year", "replication"])["value"].sum()
    eng = out[out["geography"] == "England"].set_index(["metric", "year", "replication"])["value"]
    pd.testing.assert_series_equal(eng.sort_index(), la.sort_index(), check_names=False)
    london = records[records["geography"].isin(["E09000002", "E09000003"])]
    exp = london.groupby(["metric", "year", "replication"])["value"].sum()
    got = out[out["geography"] == "London"].set_index(["metric", "year", "replication"])["value"]
    pd.testing.assert_series_equal(got.sort_index(), exp.sort_index(), check_names=False)
    # the LA rows are returned unchanged
    pd.testing.assert_frame_equal(out.iloc[: len(records)], records)


def test_add_geographies_rejects_unknown_la_and_ratios() -> None:
    records = make_records()
    with pytest.raises(ValueError, match="E06000001"):
        add_geographies(records.assign(geography="E06000001"), LA_REGIONS)
    with pytest.raises(ValueError, match="not additive"):
        add_geographies(add_ratios(records), LA_REGIONS)


def test_ratios_are_computed_from_components() -> None:
    records = pd.DataFrame(
        [
            # LA A: two cases of 20 and 40 weeks -> mean 30, 50% within 26 weeks
            ("proceedings_completed_cases", 2025, "E09000002", 2.0, 0),
            ("proceedings_weeks_total", 2025, "E09000002", 60.0, 0),
            ("proceedings_within_26_weeks_cases", 2025, "E09000002", 1.0, 0),
            # LA B: one case of 50 weeks (no within-26 record: counts as zero)
            ("proceedings_completed_cases", 2025, "E09000003", 1.0, 0),
            ("proceedings_weeks_total", 2025, "E09000003", 50.0, 0),
            # LA C: nothing completed -> no ratio rows
            ("proceedings_completed_cases", 2025, "E08000025", 0.0, 0),
            ("proceedings_weeks_total", 2025, "E08000025", 0.0, 0),
        ],
        columns=["metric", "year", "geography", "value", "replication"],
    )
    out = add_ratios(add_geographies(records, LA_REGIONS))
    r = out.set_index(["metric", "geography"])["value"]
    assert r["proceedings_mean_weeks", "E09000002"] == pytest.approx(30.0)
    assert r["proceedings_within_26_weeks", "E09000002"] == pytest.approx(50.0)
    assert r["proceedings_within_26_weeks", "E09000003"] == pytest.approx(0.0)
    # London and England: (20 + 40 + 50) / 3, not the mean of the LA ratios
    assert r["proceedings_mean_weeks", "London"] == pytest.approx(110 / 3)
    assert r["proceedings_within_26_weeks", "England"] == pytest.approx(100 / 3)
    assert ("proceedings_mean_weeks", "E08000025") not in r.index
    assert ("proceedings_mean_weeks", "West Midlands") not in r.index
    assert not out["value"].isna().any()
    # idempotent
    again = add_ratios(out)
    assert len(again) == len(out)


# ---------------------------------------------------------------- summary


def test_summary_quantiles_match_numpy() -> None:
    values = [3.0, 10.0, 1.0, 7.0, 4.0, 100.0, 2.5]
    records = pd.DataFrame({
        "metric": "looked_after", "year": 2025, "geography": "England",
        "value": values, "replication": range(len(values)),
    })
    s = summarise(records, "baseline")
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    row = s.iloc[0]
    assert row["mean"] == pytest.approx(np.mean(values))
    for col, q in (("p05", 0.05), ("p50", 0.5), ("p95", 0.95)):
        assert row[col] == pytest.approx(np.quantile(values, q))
    assert row["replications"] == len(values)
    assert row["scenario"] == "baseline"


def test_summary_columns_order_and_missing_replications() -> None:
    df = add_ratios(add_geographies(make_records(), LA_REGIONS))
    # drop one additive record: that replication counts as zero, not as missing
    drop = (df["metric"] == "referrals") & (df["geography"] == "E09000002") & (df["year"] == 2025) & (df["replication"] == 0)
    s = summarise(df[~drop], "baseline")
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    assert (s["replications"] == REPS).all()
    row = s[(s["metric"] == "referrals") & (s["geography"] == "E09000002") & (s["year"] == 2025)].iloc[0]
    vals = df[drop | ((df["metric"] == "referrals") & (df["geography"] == "E09000002") & (df["year"] == 2025))]
    expected = np.array([0.0, *vals.sort_values("replication")["value"].iloc[1:]])
    assert row["mean"] == pytest.approx(expected.mean())
    keys = s[["metric", "geography", "year"]]
    assert keys.equals(keys.sort_values(["metric", "geography", "year"]).reset_index(drop=True))
    assert not s[["mean", "p05", "p50", "p95"]].isna().any().any()
    assert (s["p05"] <= s["p50"]).all() and (s["p50"] <= s["p95"]).all()


def test_summary_rejects_duplicates() -> None:
    records = make_records()
    with pytest.raises(ValueError, match="duplicate"):
        summarise(pd.concat([records, records.iloc[:1]]), "x")


def test_write_csv_is_byte_identical_and_order_independent(tmp_path: Path) -> None:
    df = add_ratios(add_geographies(make_records(), LA_REGIONS))
    a = write_csv(summarise(df, "baseline"), tmp_path / "a.csv")
    b = write_csv(summarise(df.sample(frac=1, random_state=3), "baseline"), tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert text.splitlines()[0] == ",".join(SUMMARY_COLUMNS)
    assert "\r" not in text and "e+" not in text


@pytest.mark.parametrize(
    ("value", "text"),
    [(80000.0, "80000"), (80000.44, "80000.4"), (1234567.89, "1234567.9"), (38.1234567, "38.1235"),
     (0.000123456789, "0.000123457"), (-0.0, "0"), (0.5, "0.5"), (float("nan"), ""), (12.0, "12")],
)
def test_format_float(value: float, text: str) -> None:
    assert format_float(value) == text


# ---------------------------------------------------------------- store


def test_output_folder_refuses_non_empty_without_force(tmp_path: Path) -> None:
    final = tmp_path / "run"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(CaresimError, match="--force") as err:
        with OutputFolder(final, "baseline", force=False):
            pytest.fail("body must not run")
    assert str(final) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (final / "old.txt").read_text() == "old"


def test_output_folder_force_replaces(tmp_path: Path) -> None:
    final = tmp_path / "run"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with OutputFolder(final, "baseline", force=True) as folder:
        assert folder.final == final
        assert folder.path.parent == tmp_path and folder.path.name.startswith(".run.partial-")
        assert (final / "old.txt").exists()  # old content kept until success
        (folder.path / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_output_folder_failure_keeps_old_and_cleans_staging(tmp_path: Path) -> None:
    final = tmp_path / "run"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with OutputFolder(final, "baseline", force=True) as folder:
            (folder.path / "new.txt").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]


def test_output_folder_default_name_and_writers(tmp_path: Path) -> None:
    with OutputFolder(None, "my scenario", force=False, root=tmp_path / "outputs") as folder:
        write_manifest(folder.path, {"seed": np.int64(7), "b": Path("x"), "a": [1, 2]})
        write_parquet(pd.DataFrame({"metric": ["a"], "value": [1.5]}), folder.path / "r.parquet")
    final = folder.final
    assert final.parent == tmp_path / "outputs" / "my_scenario"
    assert len(final.name) == len("20250101-120000")
    manifest = (final / "manifest.json").read_text()
    assert json.loads(manifest) == {"a": [1, 2], "b": "x", "seed": 7}
    assert manifest.index('"a"') < manifest.index('"seed"')
    table = pq.read_table(final / "r.parquet")
    assert table.schema.metadata is None or b"pandas" not in table.schema.metadata
    assert table.to_pandas()["value"].tolist() == [1.5]
    assert not [p for p in final.parent.iterdir() if p.name.startswith(".")]


def test_write_parquet_is_deterministic(tmp_path: Path) -> None:
    df = make_records()
    a = write_parquet(df, tmp_path / "a.parquet")
    b = write_parquet(df, tmp_path / "b.parquet")
    assert a.read_bytes() == b.read_bytes()


# ---------------------------------------------------------------- fan charts and first year


def make_history() -> pd.DataFrame:
    rows = []
    for year in (2021, 2022, 2023, 2024, 2025):
        rows.append(("looked_after", year, "England", 2400.0 + 10 * year % 7, "", "dfe-cla-2025"))
        rows.append(("referrals", year, "England", 18000.0, "provisional" if year == 2025 else "",
                     "dfe-cin-2025"))
    return pd.DataFrame(rows, columns=["metric", "year", "geography", "value", "qualifier", "source_id"])


def test_fan_charts_write_non_empty_pngs(tmp_path: Path) -> None:
    summary = summarise(add_ratios(add_geographies(make_records(), LA_REGIONS)), "baseline")
    metrics = ["looked_after", "referrals", "cost.total", "proceedings_mean_weeks", "adoptions"]
    paths = fan_charts(summary, make_history(), tmp_path / "figs", metrics)
    names = [p.name for p in paths]
    assert names == ["fan_looked_after.png", "fan_referrals.png", "fan_cost_total.png",
                     "fan_proceedings_mean_weeks.png", "fan_charts.png"]  # no data: adoptions
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    one = fan_chart(summary, None, "looked_after", "London", tmp_path / "london.png", title="LAC")
    assert one.stat().st_size > 5000
    with pytest.raises(ValueError):
        fan_chart(summary, None, "adoptions", "England", tmp_path / "none.png")


def _first_year_inputs(ratio: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    published = {"referrals": 600000.0, "child_in_need": 400000.0, "cpp_starts": 65000.0,
                 "care_starts": 32000.0, "care_ceased": 31000.0, "looked_after": 83000.0}
    history = pd.DataFrame(
        [(m, 2024, "England", v, "", f"src-{m}") for m, v in published.items()]
        + [("looked_after", 2024, "England", 1.0, "provisional", "aaa-other")],
        columns=["metric", "year", "geography", "value", "qualifier", "source_id"],
    )
    summary = pd.DataFrame(
        [("baseline", m, 2025, "England", v * ratio, v * ratio * 0.95, v * ratio, v * ratio * 1.05, 10)
         for m, v in published.items()],
        columns=list(SUMMARY_COLUMNS),
    )
    return summary, history


def test_first_year_check_flags_20_percent() -> None:
    summary, history = _first_year_inputs(1.2)
    check = first_year_check(summary, history, first_year=2025, published_year=2024)
    assert list(check.columns) == list(FIRST_YEAR_COLUMNS)
    assert list(check["metric"]) == list(FIRST_YEAR_METRICS)
    assert not check["within_tolerance"].any()
    assert check["rel_diff"].to_numpy() == pytest.approx(0.2)
    # the unqualified figure is preferred to the provisional one
    assert check.set_index("metric").loc["looked_after", "source_id"] == "src-looked_after"


def test_first_year_check_passes_10_percent_and_reports_gaps() -> None:
    summary, history = _first_year_inputs(0.9)
    check = first_year_check(summary, history, first_year=2025, published_year=2024)
    assert check["within_tolerance"].all()
    assert check["rel_diff"].to_numpy() == pytest.approx(-0.1)
    missing = first_year_check(summary[summary["metric"] != "cpp_starts"], history, 2025, 2024)
    row = missing.set_index("metric").loc["cpp_starts"]
    assert np.isnan(row["simulated_mean"]) and not row["within_tolerance"]
