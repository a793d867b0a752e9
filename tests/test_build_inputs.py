"""Tests of caresim.population.build_inputs and the calibration files it wrote."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from caresim.population import build_inputs as bi

REPO = Path(__file__).parents[1]
SHARED = Path(__file__).parents[1].parent / "shared" / "data"
CALIBRATION = REPO / "calibration"
OUTPUT_FILES = ["published_figures.csv", "la_inputs_2024.csv", "la_inputs_2024.columns.md", "history.csv"]

needs_shared = pytest.mark.skipif(
    not SHARED.exists(), reason=f"shared data folder {SHARED} is absent: cannot rebuild calibration inputs"
)


@pytest.fixture(scope="module")
def la_inputs() -> pd.DataFrame:
    return pd.read_csv(CALIBRATION / "la_inputs_2024.csv", dtype={"old_la_code": str},
                       keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return pd.read_csv(CALIBRATION / "history.csv", dtype={"value": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibration")
    bi.build(SHARED, out)
    return out


# (a) reproducibility ------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("name", OUTPUT_FILES)
def test_rebuild_reproduces_committed_files(rebuilt: Path, name: str) -> None:
    assert (rebuilt / name).read_bytes() == (CALIBRATION / name).read_bytes(), (
        f"calibration/{name} is stale: rerun python -m caresim.population.build_inputs")


@needs_shared
def test_published_figures_is_verbatim_copy() -> None:
    assert (CALIBRATION / "published_figures.csv").read_bytes() == (SHARED / "published_figures.csv").read_bytes()


# (b) shape of la_inputs ---------------------------------------------------------------------


def test_la_inputs_columns_in_order(la_inputs: pd.DataFrame) -> None:
    assert list(la_inputs.columns) == bi.LA_COLUMNS


def test_la_inputs_has_153_unique_las(la_inputs: pd.DataFrame) -> None:
    las = la_inputs[la_inputs["level"] == "la"]
    assert len(las) == 153
    assert las["geography"].is_unique
    assert las["geography"].str.fullmatch(r"E0[6-9]\d{6}|E10\d{6}").all()
    assert (la_inputs["level"] == "national").sum() == 1
    assert (la_inputs["level"] == "regional").sum() == 9
    assert la_inputs.loc[la_inputs["level"] == "national", "geography"].item() == "England"


@needs_shared
def test_la_codes_are_the_master_list(la_inputs: pd.DataFrame) -> None:
    master = pd.read_csv(SHARED / "dfe" / "local_authorities.csv", dtype=str)
    las = la_inputs[la_inputs["level"] == "la"]
    assert set(las["geography"]) == set(master["la_code"])


def test_la_inputs_no_negative_values(la_inputs: pd.DataFrame) -> None:
    numeric = la_inputs[bi.LA_VALUE_COLUMNS].apply(pd.to_numeric)
    assert not (numeric < 0).any().any()


def test_la_values_complete_except_kinship(la_inputs: pd.DataFrame) -> None:
    las = la_inputs[la_inputs["level"] == "la"]
    values = las[bi.LA_VALUE_COLUMNS].drop(columns="cla_at31_kinship_foster")
    assert not values.isna().any().any()
    assert las["cla_at31_kinship_foster"].isna().all()


def test_imputed_lists_only_known_columns(la_inputs: pd.DataFrame) -> None:
    names = la_inputs["imputed"].dropna().str.split(";").explode()
    assert set(names) <= set(bi.LA_VALUE_COLUMNS)
    assert la_inputs.loc[la_inputs["level"] != "la", "imputed"].isna().all()


# (c) LAs add up to England ------------------------------------------------------------------


@pytest.mark.parametrize("column", ["referrals", "cpp_starts", "cla_starts", "cla_ceased", "cla_at31", "cin_at31"])
def test_sum_of_las_matches_national(la_inputs: pd.DataFrame, column: str) -> None:
    total = la_inputs.loc[la_inputs["level"] == "la", column].sum()
    national = la_inputs.loc[la_inputs["level"] == "national", column].item()
    assert total == pytest.approx(national, rel=0.02)


def test_breakdowns_add_up_to_la_totals(la_inputs: pd.DataFrame) -> None:
    las = la_inputs[la_inputs["level"] == "la"]
    placements = ["cla_at31_foster", "cla_at31_residential", "cla_at31_supported", "cla_at31_with_parents",
                  "cla_at31_for_adoption", "cla_at31_other_placement"]
    reasons = ["ceased_returned_home", "ceased_sgo", "ceased_cao", "ceased_adopted", "ceased_age18", "ceased_other"]
    assert las[placements].sum(axis=1).to_numpy() == pytest.approx(las["cla_at31"].to_numpy(), abs=0.01)
    assert las[reasons].sum(axis=1).to_numpy() == pytest.approx(las["cla_ceased"].to_numpy(), abs=0.01)


# (d) suppressed values are imputed, never zero ----------------------------------------------


@needs_shared
def test_suppressed_value_is_imputed_not_zero(la_inputs: pd.DataFrame) -> None:
    raw = pd.read_csv(SHARED / "dfe" / "cla_31_march_by_characteristic.csv", dtype=str, keep_default_na=False)
    cell = raw[(raw["time_period"] == "2024") & (raw["new_la_code"] == "E09000001")
               & (raw["cla_group"] == "Placement") & (raw["characteristic"] == "Foster placements")]
    assert cell["number"].item() == "c"  # City of London's foster count is suppressed

    row = la_inputs.set_index("geography").loc["E09000001"]
    assert "cla_at31_foster" in row["imputed"].split(";")
    assert 0 < row["cla_at31_foster"] <= row["cla_at31"]


@needs_shared
def test_unavailable_return_uses_previous_year(la_inputs: pd.DataFrame) -> None:
    raw = pd.read_csv(SHARED / "dfe" / "referrals.csv", dtype=str, keep_default_na=False)
    hampshire = raw[raw["new_la_code"] == "E10000014"].set_index("time_period")
    assert hampshire.loc["2024", "referral_count"] == "u"

    row = la_inputs.set_index("geography").loc["E10000014"]
    assert "referrals" in row["imputed"].split(";")
    assert row["referrals"] == float(hampshire.loc["2023", "referral_count"])


def test_observed_values_are_not_listed_as_imputed(la_inputs: pd.DataFrame) -> None:
    row = la_inputs.set_index("geography").loc["E09000002"]  # Barking and Dagenham
    assert "cla_at31" not in str(row["imputed"]).split(";")
    assert row["cla_at31"] == 433


# (e) history --------------------------------------------------------------------------------


def _value(history: pd.DataFrame, metric: str, year: int, geography: str = "England") -> str:
    rows = history[(history["metric"] == metric) & (history["year"] == year) & (history["geography"] == geography)]
    assert len(rows) == 1, f"{metric} {year} {geography}: {len(rows)} rows"
    return rows["value"].item()


def test_history_headline_values(history: pd.DataFrame) -> None:
    assert _value(history, "looked_after", 2024) == "83530"
    assert _value(history, "referrals", 2024) == "621880"


def test_history_has_no_duplicates(history: pd.DataFrame) -> None:
    assert not history.duplicated(["metric", "year", "geography"]).any()
    assert list(history.columns) == bi.HISTORY_COLUMNS


def test_history_prefers_revised_and_dfe_values(history: pd.DataFrame) -> None:
    england = history[history["geography"] == "England"].set_index(["metric", "year"])
    assert england.loc[("looked_after", 2017), "source_id"] == "R010"  # revised, not first-published S023
    assert england.loc[("looked_after", 2023), "source_id"] == "dfe:cla_starts_ceased_stock.csv"
    assert england.loc[("looked_after", 1994), "value"] == "47590"
    assert england.loc[("proceedings_mean_weeks", 2012), "qualifier"] == ">"
    assert set(history["qualifier"]) <= {"", "~", ">", "<"}


# helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("period, expected", [
    ("31 March 2024", 2024), ("2023-24", 2024), ("2011", 2012), ("Jul-Sep 2013", 2014), ("Jan-Mar 2021", 2021),
    ("2023-24 (H1)", None), ("2019-20 (10 months)", None),
])
def test_parse_period(period: str, expected: int | None) -> None:
    parsed = bi.parse_period(period)
    assert (parsed[0] if parsed else None) == expected


@pytest.mark.parametrize("text, expected", [
    ("83530", ("", 83530.0)), ("~5000", ("~", 5000.0)), (">55", (">", 55.0)), ("<5 to ~30", None),
])
def test_parse_value(text: str, expected: tuple[str, float] | None) -> None:
    assert bi.parse_value(text) == expected
