"""Tests of caresim.population.build_inputs and the calibration files it wrote."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from caresim.population import build_inputs as bi

REPO = Path(__file__).parents[1]
SHARED = Path(__file__).parents[1].parent / "shared" / "data"
CALIBRATION = REPO / "calibration"
OUTPUT_FILES = ["published_figures.csv", *[f"la_inputs_{y}.csv" for y in bi.YEARS], "la_inputs_2024.columns.md",
                "history.csv"]

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


# (f) la_inputs for every year 2019-2024 ------------------------------------------------------


def _read_inputs(year: int) -> pd.DataFrame:
    return pd.read_csv(CALIBRATION / f"la_inputs_{year}.csv", dtype={"old_la_code": str},
                       keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def all_inputs() -> dict[int, pd.DataFrame]:
    return {year: _read_inputs(year) for year in bi.YEARS}


def _listed(frame: pd.DataFrame) -> pd.Series:
    """The ``imputed`` field of each row as a set of names."""
    return frame["imputed"].fillna("").map(lambda text: set(filter(None, text.split(";"))))


def _published(ids: str) -> float:
    published = pd.read_csv(CALIBRATION / "published_figures.csv", dtype=str, keep_default_na=False)
    return float(published.set_index("id").loc[ids, "value"])


def test_years_written() -> None:
    assert bi.YEARS == (2019, 2020, 2021, 2022, 2023, 2024)
    for year in bi.YEARS:
        assert (CALIBRATION / f"la_inputs_{year}.csv").exists()


@pytest.mark.parametrize("year", bi.YEARS)
def test_every_year_has_the_2024_rows_and_columns(all_inputs: dict[int, pd.DataFrame], year: int) -> None:
    frame, reference = all_inputs[year], all_inputs[2024]
    assert list(frame.columns) == bi.LA_COLUMNS
    assert frame[bi.META_COLUMNS].equals(reference[bi.META_COLUMNS])


@pytest.mark.parametrize("year", bi.YEARS)
def test_every_year_complete_and_non_negative(all_inputs: dict[int, pd.DataFrame], year: int) -> None:
    frame = all_inputs[year]
    las = frame[frame["level"] == "la"]
    values = las[bi.LA_VALUE_COLUMNS].drop(columns="cla_at31_kinship_foster")
    assert not values.isna().any().any()
    assert las["cla_at31_kinship_foster"].isna().all()
    assert not (frame[bi.LA_VALUE_COLUMNS] < 0).any().any()


@pytest.mark.parametrize("year", bi.YEARS)
def test_imputed_names_are_columns_with_known_prefixes(all_inputs: dict[int, pd.DataFrame], year: int) -> None:
    frame = all_inputs[year]
    names = set().union(*_listed(frame))
    for name in names:
        prefix, _, column = name.rpartition(":")
        assert prefix in ("", bi.SHARED_PREFIX[:-1], bi.DERIVED_PREFIX[:-1]), name
        assert column in bi.LA_VALUE_COLUMNS, name
    if year >= bi.CLA_BASE_YEAR:
        assert frame.loc[frame["level"] != "la", "imputed"].isna().all()


@pytest.mark.parametrize("year", bi.YEARS)
@pytest.mark.parametrize("column", ["referrals", "cpp_starts", "cpp_at31", "cin_at31", "cla_starts", "cla_ceased",
                                    "cla_at31"])
def test_every_year_sum_of_las_matches_national(all_inputs: dict[int, pd.DataFrame], year: int,
                                                 column: str) -> None:
    frame = all_inputs[year]
    total = frame.loc[frame["level"] == "la", column].sum()
    national = frame.loc[frame["level"] == "national", column].item()
    assert total == pytest.approx(national, rel=0.01)


# 2019 and 2020: looked-after figures derived from 2021 ---------------------------------------

# (year, column) -> published_figures.csv id of England's value (None: none published, 2021 unscaled)
ENGLAND_CLA = {
    (2019, "cla_at31"): "R012", (2020, "cla_at31"): "R013",
    (2019, "cla_starts"): "R056", (2020, "cla_starts"): None,
    (2019, "cla_ceased"): "R075", (2020, "cla_ceased"): None,
}


@pytest.mark.parametrize("year, column", sorted(ENGLAND_CLA))
def test_derived_cla_sums_to_england_published(all_inputs: dict[int, pd.DataFrame], year: int,
                                               column: str) -> None:
    frame = all_inputs[year]
    source = ENGLAND_CLA[(year, column)]
    base = all_inputs[bi.CLA_BASE_YEAR]
    expected = _published(source) if source else base.loc[base["level"] == "national", column].item()
    national = frame.loc[frame["level"] == "national", column].item()
    assert national == pytest.approx(expected, abs=0.01)
    assert frame.loc[frame["level"] == "la", column].sum() == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("year", [y for y in bi.YEARS if y < bi.CLA_BASE_YEAR])
def test_derived_cla_keeps_2021_shares_and_is_listed(all_inputs: dict[int, pd.DataFrame], year: int) -> None:
    frame, base = all_inputs[year], all_inputs[bi.CLA_BASE_YEAR]
    listed = _listed(frame)
    for column in bi.CLA_COLUMNS:
        measure_total = {"looked_after": "cla_at31", "care_starts": "cla_starts",
                         "care_ceased": "cla_ceased"}[bi.cla_measure(column)]
        england = frame["level"] == "national"
        ratio = frame.loc[england, measure_total].item() / base.loc[england, measure_total].item()
        both = frame[column].notna()
        assert frame.loc[both, column].to_numpy() == pytest.approx(base.loc[both, column].to_numpy() * ratio,
                                                                   rel=1e-6, abs=1e-3)
        # every derived value, on every row (England, regions, LAs), is listed
        assert all(bi.DERIVED_PREFIX + column in names for names in listed[both]), column
    derived_names = {n for names in listed for n in names if n.startswith(bi.DERIVED_PREFIX)}
    assert {n.split(":", 1)[1] for n in derived_names} == set(bi.CLA_COLUMNS)


def test_no_derived_cla_from_2021_on(all_inputs: dict[int, pd.DataFrame]) -> None:
    for year in bi.YEARS:
        if year >= bi.CLA_BASE_YEAR:
            names = set().union(*_listed(all_inputs[year]))
            assert not any(n.startswith(bi.DERIVED_PREFIX) for n in names)


# LA code changes ------------------------------------------------------------------------------

# source file of each la_inputs column that comes from one non-CLA DfE table
NON_CLA_SOURCES = {
    "children_0_17": "population_0_17.csv", "referrals": "referrals.csv", "rereferral_pct": "referrals.csv",
    "nfa_pct": "referrals.csv", "not_in_need_pct": "referrals.csv", "children_referred": "referrals.csv",
    "cin_at31": "children_in_need.csv", "cin_started": "children_in_need.csv", "cin_ended": "children_in_need.csv",
    "cpp_starts": "cpp_starts.csv", "cpp_subsequent_pct": "cpp_starts.csv",
    "cpp_at31": "cpp_31_march_by_duration.csv", "episodes_with_factors": "assessment_factors.csv",
    "parental_substance_misuse_share": "assessment_factors.csv",
    **{f"cpp_at31_{b}": "cpp_31_march_by_duration.csv" for b, _, _ in bi.CPP_BANDS},
}


@needs_shared
@pytest.mark.parametrize("year", bi.YEARS)
def test_successor_values_not_in_the_year_table_are_listed(all_inputs: dict[int, pd.DataFrame], year: int) -> None:
    """A successor LA absent from a year's DfE table has every value of that table listed, as shared
    from its predecessor(s) or (if a predecessor was suppressed) imputed; and only successors are shared."""
    frame = all_inputs[year].set_index("geography")
    listed = _listed(frame.reset_index()).set_axis(frame.index)
    successors = {code for _, succs, _ in bi.SUCCESSIONS for code in succs}
    for column, source in NON_CLA_SOURCES.items():
        raw = pd.read_csv(SHARED / "dfe" / source, dtype=str, keep_default_na=False)
        present = set(raw.loc[raw["time_period"] == str(year), "new_la_code"])
        for code in sorted(successors - present):
            names = listed[code]
            assert column in names or bi.SHARED_PREFIX + column in names, (year, code, column)
    shared_rows = [code for code, names in listed.items() if any(n.startswith(bi.SHARED_PREFIX) for n in names)]
    assert set(shared_rows) <= successors


@needs_shared
@pytest.mark.parametrize("year, predecessors, successors", [
    (2022, ["E10000006"], ["E06000063", "E06000064"]),                 # Cumbria
    (2020, ["E10000021"], ["E06000061", "E06000062"]),                 # Northamptonshire
    (2019, ["E06000028", "E06000029", "E10000009"], ["E06000058", "E06000059"]),  # Bournemouth, Poole, Dorset
])
def test_predecessor_figures_shared_by_2024_children(all_inputs: dict[int, pd.DataFrame], year: int,
                                                     predecessors: list[str], successors: list[str]) -> None:
    raw = pd.read_csv(SHARED / "dfe" / "referrals.csv", dtype=str, keep_default_na=False)
    raw = raw[(raw["time_period"] == str(year)) & raw["new_la_code"].isin(predecessors)]
    total = raw["referral_count"].astype(float).sum()
    frame = all_inputs[year].set_index("geography")
    children = all_inputs[2024].set_index("geography").loc[successors, "children_0_17"]
    assert frame.loc[successors, "referrals"].sum() == pytest.approx(total, abs=0.01)
    expected = total * children / children.sum()
    assert frame.loc[successors, "referrals"].to_numpy() == pytest.approx(expected.to_numpy(), abs=0.01)
    for code in successors:
        assert bi.SHARED_PREFIX + "referrals" in frame.loc[code, "imputed"].split(";")


def test_same_area_recode_is_not_shared(all_inputs: dict[int, pd.DataFrame]) -> None:
    """Buckinghamshire's 2019-20 return (old code E10000002) is read as its own, not shared or imputed."""
    row = all_inputs[2020].set_index("geography").loc["E06000060"]
    assert "referrals" not in str(row["imputed"]) and row["referrals"] > 0


# parental substance misuse share (assessment factors) -----------------------------------------

SHARE = "parental_substance_misuse_share"
FACTOR_FIELDS = ("Alcohol_Misuse_parent", "Drug_Misuse_parent")
FACTOR_TOTAL = "Episodes_with_assessment_factor"


def _factors(year: int) -> pd.DataFrame:
    """Raw assessment_factors.csv rows of ``year`` (strings, markers kept)."""
    raw = pd.read_csv(SHARED / "dfe" / "assessment_factors.csv", dtype=str, keep_default_na=False)
    return raw[(raw["time_period"] == str(year)) & (raw["category"] == bi.FACTORS_CATEGORY)]


def _raw_share(row: pd.Series, fields: tuple[str, ...] = FACTOR_FIELDS) -> float:
    return sum(float(row[f]) for f in fields) / float(row[FACTOR_TOTAL])


def _region_row(year: int, region: str) -> pd.Series:
    raw = _factors(year)
    return raw[(raw["geographic_level"] == "Regional") & (raw["region_name"] == region)].squeeze()


@pytest.fixture(scope="module")
def share_tables() -> dict[int, bi.LaTable]:
    """Unrounded la_inputs tables (as written by build) of the years the share tests look at."""
    master = bi.master_fields(SHARED / "dfe")
    regions = bi.la_regions(bi.read_table(SHARED / "dfe" / bi.LAS))
    return {year: bi.la_table(master, bi.column_specs(), year, regions) for year in (2022, 2024)}


@needs_shared
def test_factors_file_has_one_category() -> None:
    raw = pd.read_csv(SHARED / "dfe" / "assessment_factors.csv", dtype=str, keep_default_na=False)
    assert set(raw["category"]) == {bi.FACTORS_CATEGORY}


@needs_shared
def test_england_share_2024(share_tables: dict[int, bi.LaTable], la_inputs: pd.DataFrame) -> None:
    england = _factors(2024).query("geographic_level == 'National'").squeeze()
    expected = _raw_share(england)
    assert expected == pytest.approx((72410 + 70940) / 506370, abs=1e-9)  # cross-check of the file
    assert share_tables[2024].values.at[("national", "England"), SHARE] == pytest.approx(expected, abs=1e-9)
    assert la_inputs.loc[la_inputs["level"] == "national", SHARE].item() == pytest.approx(expected, abs=5e-5)


@needs_shared
def test_region_rows_are_their_published_shares(share_tables: dict[int, bi.LaTable]) -> None:
    values = share_tables[2024].values
    regions = sorted(bi.read_table(SHARED / "dfe" / bi.LAS)["region_name"].unique())
    for region in regions:
        assert values.at[("regional", region), SHARE] == pytest.approx(_raw_share(_region_row(2024, region)),
                                                                        abs=1e-12)


@pytest.mark.parametrize("year", bi.YEARS)
def test_share_within_0_1_zero_only_if_published(all_inputs: dict[int, pd.DataFrame], year: int) -> None:
    frame = all_inputs[year]
    shares = frame.loc[frame["level"] == "la", SHARE]
    assert shares.notna().all()
    assert ((shares >= 0) & (shares <= 1)).all()
    zeros = frame.loc[(frame["level"] == "la") & (frame[SHARE] == 0), "geography"]
    if len(zeros) and SHARED.exists():  # a 0 is DfE's published 0 and 0 (never a suppressed value)
        raw = _factors(year).set_index("new_la_code")
        for code in zeros:
            assert raw.loc[code, list(FACTOR_FIELDS)].tolist() == ["0", "0"], (year, code)
            assert float(raw.loc[code, FACTOR_TOTAL]) > 0
    assert (frame.loc[frame["level"] != "la", SHARE] > 0).all()


@needs_shared
def test_suppressed_share_takes_region_share(share_tables: dict[int, bi.LaTable], la_inputs: pd.DataFrame) -> None:
    raw = _factors(2024).set_index("new_la_code")
    assert raw.loc["E09000001", list(FACTOR_FIELDS)].tolist() == ["c", "c"]  # City of London
    expected = _raw_share(_region_row(2024, "London"))
    assert share_tables[2024].values.at[("la", "E09000001"), SHARE] == pytest.approx(expected, abs=1e-12)
    assert share_tables[2024].imputed.at[("la", "E09000001"), SHARE]
    row = la_inputs.set_index("geography").loc["E09000001"]
    assert row[SHARE] == pytest.approx(expected, abs=5e-5)
    assert SHARE in row["imputed"].split(";")


@needs_shared
def test_suppressed_part_takes_region_share_published_part_kept(share_tables: dict[int, bi.LaTable]) -> None:
    raw = _factors(2022).set_index("new_la_code")
    kensington = raw.loc["E09000020"]  # 2021-22: alcohol suppressed, drug published
    assert kensington["Alcohol_Misuse_parent"] == "c" and kensington["Drug_Misuse_parent"] != "c"
    expected = (_raw_share(kensington, ("Drug_Misuse_parent",))
                + _raw_share(_region_row(2022, "London"), ("Alcohol_Misuse_parent",)))
    assert share_tables[2022].values.at[("la", "E09000020"), SHARE] == pytest.approx(expected, abs=1e-12)
    assert share_tables[2022].imputed.at[("la", "E09000020"), SHARE]


@needs_shared
def test_unavailable_share_uses_previous_year(share_tables: dict[int, bi.LaTable]) -> None:
    assert _factors(2024).set_index("new_la_code").loc["E10000014", FACTOR_TOTAL] == "u"  # Hampshire
    expected = _raw_share(_factors(2023).set_index("new_la_code").loc["E10000014"])
    assert share_tables[2024].values.at[("la", "E10000014"), SHARE] == pytest.approx(expected, abs=1e-12)
    assert share_tables[2024].imputed.at[("la", "E10000014"), SHARE]


def test_columns_doc_explains_share() -> None:
    text = (CALIBRATION / "la_inputs_2024.columns.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| `{SHARE}` |"))
    assert "counts such episodes twice" in row and "upper bound" in row.lower()
    assert bi.FACTORS_CATEGORY in row and "Reporting year" in row and "region's share" in row


def _synthetic_master() -> bi.MasterFields:
    """Assessment factors of one year for England, regions A and B, and LAs L1 to L5 (plus L5's
    previous year); see test_share_column_synthetic for what each LA exercises."""
    nan = float("nan")
    rows = {  # (year, level, geography): (episodes, alcohol, drug)
        (2023, "national", "England"): (1000, 100, 100),
        (2023, "regional", "A"): (400, 80, 40),
        (2023, "regional", "B"): (nan, nan, nan),
        (2023, "la", "L1"): (100, 10, 10),     # published
        (2023, "la", "L2"): (50, nan, nan),    # both suppressed: region A
        (2023, "la", "L3"): (100, 5, nan),     # drug suppressed: published alcohol + A's drug share
        (2023, "la", "L4"): (30, nan, nan),    # region B not published: England
        (2023, "la", "L5"): (nan, nan, nan),   # unavailable return: its own 2022 share
        (2023, "la", "L6"): (10, 8, 7),        # more than 1: capped
        (2022, "national", "England"): (1000, 90, 90),
        (2022, "la", "L5"): (200, 30, 10),
    }
    index = pd.MultiIndex.from_tuples(rows, names=["year", "level", "geography"])
    keys = [f"{bi.FACTORS}::{f}" for f in (FACTOR_TOTAL, *FACTOR_FIELDS)]
    values = pd.DataFrame(list(rows.values()), index=index, columns=keys, dtype=float)
    unavailable = pd.DataFrame(False, index=index, columns=keys)
    unavailable.loc[(2023, "la", "L5")] = True
    return bi.MasterFields(values.sort_index(), unavailable.sort_index(), unavailable.sort_index() & False)


def test_share_column_synthetic() -> None:
    spec = next(s for s in bi.column_specs() if s.name == SHARE)
    master = _synthetic_master()
    index = master.values.xs(2023, level="year").index
    regions = pd.Series({"L1": "A", "L2": "A", "L3": "A", "L4": "B", "L5": "B", "L6": "A"})
    column = bi.share_column(spec, master, 2023, index, regions)
    got = column.values.droplevel("level")
    assert column.source_year == 2023
    assert got["England"] == pytest.approx(0.2)
    assert got["A"] == pytest.approx(0.3) and pd.isna(got["B"])  # regions are never imputed
    assert got["L1"] == pytest.approx(0.2)
    assert got["L2"] == pytest.approx(0.3)                       # region A's share
    assert got["L3"] == pytest.approx(0.05 + 0.1)                # published alcohol + A's drug share
    assert got["L4"] == pytest.approx(0.2)                       # England's share
    assert got["L5"] == pytest.approx(0.2)                       # own 2022 share (30 + 10) / 200
    assert got["L6"] == 1.0
    imputed = column.imputed.droplevel("level")
    assert imputed[["L2", "L3", "L4", "L5"]].all() and not imputed[["L1", "L6", "England", "A"]].any()
    assert not column.shared.any()


def test_share_column_nearest_year() -> None:
    spec = next(s for s in bi.column_specs() if s.name == SHARE)
    master = _synthetic_master()
    index = master.values.xs(2023, level="year").index
    assert bi.share_column(spec, master, 2030, index).source_year == 2023
    assert bi.share_column(spec, master, 2010, index).source_year == 2022
    key = f"{bi.FACTORS}::{FACTOR_TOTAL}"
    assert bi.nearest_year(master.values, key, 2023) == 2023
    tie = master.values.rename(index={2023: 2024}, level="year")  # years 2022 and 2024: the earlier
    assert bi.nearest_year(tie, key, 2023) == 2022
    # without region map a suppressed LA takes England's share
    column = bi.share_column(spec, master, 2023, index)
    assert column.values[("la", "L2")] == pytest.approx(0.2)


def test_read_factors_keeps_end_of_assessment_rows(tmp_path: Path) -> None:
    path = tmp_path / "factors.csv"
    pd.DataFrame({"category": [bi.FACTORS_CATEGORY, "Factors identified at the start of assessment"],
                  "value": ["1", "2"]}).to_csv(path, index=False)
    assert bi.read_factors(path)["value"].tolist() == ["1"]
    pd.DataFrame({"category": ["other"], "value": ["2"]}).to_csv(path, index=False)
    with pytest.raises(ValueError):
        bi.read_factors(path)
