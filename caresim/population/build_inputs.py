"""Build the project's calibration inputs from the shared published data.

Run as::

    python -m caresim.population.build_inputs --shared ../shared/data --out calibration

It reads ``published_figures.csv`` and the DfE tables in ``dfe/`` and writes:

* ``published_figures.csv``: a verbatim copy of the shared file;
* ``la_inputs_<Y>.csv`` for Y = 2019 to 2024: one row per geography (England, the 9 regions, the
  153 LAs of 2024) for the reporting year Y-1 to Y (stocks at 31 March Y), with suppressed LA values
  imputed, figures of predecessor LAs shared across their successors, and (2019, 2020) looked-after
  figures derived from 2021, all listed in ``imputed``;
* ``la_inputs_2024.columns.md``: what every column means and where it comes from (all years);
* ``history.csv``: a long table of published history (DfE tables for every year and geography
  they contain, plus the national series of ``published_figures.csv``);
* ``targets.csv`` and ``targets.md`` (via :mod:`caresim.population.targets`, run by :func:`main`).

Everything is deterministic: rows are sorted and numbers are written with a fixed format, so
rebuilding reproduces the files byte for byte.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "calibration"

YEAR = 2024  # the latest reporting year (the model's starting state)
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)  # years written as la_inputs_<Y>.csv
CLA_BASE_YEAR = 2021  # first year of the DfE CLA tables; earlier CLA figures are derived from it
LEVELS = {"National": "national", "Regional": "regional", "Local authority": "la"}
META_COLUMNS = ["level", "geography", "la_name", "old_la_code", "region_name"]

# Source file names (in dfe/ unless stated).
POP = "population_0_17.csv"
LAS = "local_authorities.csv"
REF = "referrals.csv"
CIN = "children_in_need.csv"
CPP = "cpp_starts.csv"
CPP31 = "cpp_31_march_by_duration.csv"
FACTORS = "assessment_factors.csv"
# The rows of assessment_factors.csv that are used (its only category in the 2018-2024 extract).
FACTORS_CATEGORY = "Factors identified at the end of assessment"
CLA = "cla_starts_ceased_stock.csv"
STARTS = "cla_starts_by_characteristic.csv"
STOCK = "cla_31_march_by_characteristic.csv"
CEASED = "cla_ceased_by_characteristic.csv"

# Columns of the "wide" DfE files that describe the row rather than hold a value.
WIDE_ID_COLUMNS = {
    "time_period", "time_identifier", "geographic_level", "country_code", "country_name",
    "region_code", "region_name", "old_la_code", "new_la_code", "la_name", "category", "age_group",
}

# LA codes that changed with no change of area: the DfE CLA tables already use the new code for
# every year, the other tables use the old one up to 2022-23; history.csv uses the new code.
SAME_AREA_RECODES = {
    "E10000002": "E06000060",  # Buckinghamshire (unitary from April 2020)
    "E10000023": "E06000065",  # North Yorkshire (unitary from April 2023)
    "E10000027": "E06000066",  # Somerset (unitary from April 2023)
}
# Predecessor LAs whose area was split or merged: kept under their own code in history.csv.
PREDECESSOR_NOTES = {
    "E06000028": "former LA Bournemouth, merged into E06000058 Bournemouth, Christchurch and Poole (April 2019)",
    "E06000029": "former LA Poole, merged into E06000058 Bournemouth, Christchurch and Poole (April 2019)",
    "E10000009": "former county Dorset, replaced by E06000059 Dorset and part of E06000058 (April 2019)",
    "E10000021": "former county Northamptonshire, split into E06000061 North and E06000062 West Northamptonshire (April 2021)",
    "E10000006": "former county Cumbria, split into E06000063 Cumberland and E06000064 Westmorland and Furness (April 2023)",
}
# Split or merged LAs, for la_inputs: (predecessor codes, successor codes of the 2024 master list,
# what happened). In a year whose tables still use the predecessors, their pooled figures are
# shared across the successors in proportion to the successors' 2024 children_0_17.
SUCCESSIONS = (
    (("E06000028", "E06000029", "E10000009"), ("E06000058", "E06000059"),
     "Bournemouth (E06000028), Poole (E06000029) and Dorset county (E10000009) became Bournemouth, "
     "Christchurch and Poole (E06000058) and Dorset (E06000059) in April 2019"),
    (("E10000021",), ("E06000061", "E06000062"),
     "Northamptonshire (E10000021) became North (E06000061) and West Northamptonshire (E06000062) "
     "in April 2021"),
    (("E10000006",), ("E06000063", "E06000064"),
     "Cumbria (E10000006) became Cumberland (E06000063) and Westmorland and Furness (E06000064) in "
     "April 2023"),
)
SUB_REGIONS = {"Inner London", "Outer London"}
# Markers of a return DfE did not have (as opposed to small numbers suppressed with c/k/low).
UNAVAILABLE_MARKERS = ("u", "x")


# ---------------------------------------------------------------------------------------------
# Column specifications
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    """How one output column is computed from DfE fields.

    ``kind``:
      * ``sum``: the sum of ``fields`` of ``source`` (NaN if any is missing); ``fallback`` lists
        (source, field) alternatives tried, in order, when the primary value is missing;
      * ``remainder``: ``total`` minus the sum of ``fields`` (the named categories); when that is
        missing, the sum of the group's remaining categories (less any named field of another
        group of the same table, e.g. an age band taken out of a table's reasons);
      * ``share``: the sum of ``fields`` of ``source`` divided by its field ``total``, capped at 1
        (NaN if any is missing or ``total`` is 0); not imputed by :class:`Imputer`: a missing LA
        value is filled by :func:`share_column` (the LA's previous year if its return is unavailable,
        else its region; ``imputable`` is ignored);
      * ``unavailable``: no source publishes it (always NaN).

    Missing LA values are imputed (see :class:`Imputer`) when ``imputable``, scaling national
    values by the column ``denominator``; ``denominator=None`` (percentages) means the national
    value itself is used.
    """

    name: str
    unit: str
    description: str
    source: str = ""
    fields: tuple[str, ...] = ()
    kind: str = "sum"
    denominator: str | None = None
    total: str | None = None
    fallback: tuple[tuple[str, str], ...] = ()
    imputable: bool = True
    note: str = ""


def cat(group: str, *characteristics: str) -> tuple[str, ...]:
    """Field names of a DfE CLA characteristic table (``"<cla_group> / <characteristic>"``)."""
    return tuple(f"{group} / {c}" for c in characteristics)


AGE_BANDS = ("u1", "1_4", "5_9", "10_15", "16p")
AGE_LABELS = ("Under 1 year", "1 to 4 years", "5 to 9 years", "10 to 15 years", "16 years and over")
AGE_TEXT = ("under 1", "1 to 4", "5 to 9", "10 to 15", "16 and over")

STARTS_EMERGENCY = cat("Legal status", "Police protection in LA accommodation", "Emergency protection order")
STARTS_FINAL_ORDER = cat("Legal status", "Full care order", "Placement order granted")
STARTS_NAMED_LEGAL = (
    cat("Legal status", "Voluntary agreement under S20", "Interim care order") + STARTS_EMERGENCY
    + STARTS_FINAL_ORDER
)
STOCK_NAMED_LEGAL = cat(
    "Legal status", "Full care order", "Interim care order", "Placement order granted",
    "Voluntary agreements under S20 CA 1989",
)
STOCK_RESIDENTIAL = cat(
    "Placement", "Secure homes and children's homes", "Other residential settings", "Residential schools"
)
CEASED_RETURNED_HOME = cat(
    "Reason episode ceased",
    "Returned home to live with parents or other person with parental responsibility which was part "
    "of the care planning process",
    "Returned home to live with parents or other person with parental responsibility which was not "
    "part of the care planning process",
)
CEASED_SGO = cat("Reason episode ceased", "Special guardianship order")
CEASED_CAO = cat("Reason episode ceased", "Residence order or child arrangement order granted")
CEASED_ADOPTED = cat("Reason episode ceased", "Adopted")
# Leaving care at 18 is counted by age, not by DfE's reasons: the model's `left_care` is the
# 18th birthday. The reasons that go with it (stayed with carers, independent living, adult
# care, age assessment) also count 16- and 17-year-olds moving to independent living, and a
# quarter to an eighth of the leavers aged 18 or over (2021 to 2024) are recorded under other
# reasons; docs/calibration.md, "Leaving care at 18".
CEASED_AGE18 = cat("Age on ceasing", "18 years and over")
CEASED_NAMED = CEASED_RETURNED_HOME + CEASED_SGO + CEASED_CAO + CEASED_ADOPTED + CEASED_AGE18
# Age on ceasing under 18, in the model's age bands (DfE publishes 16 and 17 apart; 18 and over
# is `ceased_age18`): (column band, DfE labels, text)
CEASED_AGES = (
    ("u1", ("Under 1 year",), "under 1"),
    ("1_4", ("1 to 4 years",), "1 to 4"),
    ("5_9", ("5 to 9 years",), "5 to 9"),
    ("10_15", ("10 to 15 years",), "10 to 15"),
    ("16_17", ("16 years", "17 years"), "16 or 17"),
)


def _band_specs(prefix: str, source: str, group: str, what: str, denominator: str) -> list[ColumnSpec]:
    """Age-band columns of a CLA characteristic table."""
    return [
        ColumnSpec(f"{prefix}_age_{band}", "children", f"{what} aged {text}", source,
                   cat(group, label), denominator=denominator)
        for band, label, text in zip(AGE_BANDS, AGE_LABELS, AGE_TEXT)
    ]


CPP_BANDS = (
    ("le3m", "3_months_or_less", "3 months or less"),
    ("3to6m", "more_than_3_months_6_months", "more than 3 and up to 6 months"),
    ("6to12m", "more_than_6_months_less_than_1_year", "more than 6 months, less than 1 year"),
    ("1to2y", "1_year_less_than_2_years", "1 year, less than 2 years"),
    ("2yplus", "2_years_or_more", "2 years or more"),
)


def _cpp_band_specs() -> list[ColumnSpec]:
    """Columns of CPPs open at 31 March by length of plan so far."""
    return [
        ColumnSpec(f"cpp_at31_{band}", "children", f"Children on a CPP at 31 March, plan open {text}",
                   CPP31, (field,), denominator="cpp_at31")
        for band, field, text in CPP_BANDS
    ]


def column_specs() -> list[ColumnSpec]:
    """All computable columns, in dependency order (denominators before what they scale)."""
    specs = [
        ColumnSpec("children_0_17", "children",
                   "Children aged 0-17 (ONS mid-year estimate of the year Y, time_period Y: mid-2024 for 2024)",
                   POP, ("population_estimate",), fallback=((LAS, "children_0_17_mid2023"),),
                   imputable=False,
                   note="The fallback (2024 only) was not needed. DfE's own 2023-24 rates use the mid-2023 "
                        "estimate."),
        ColumnSpec("referrals", "referrals", "Referrals to children's social care in the year",
                   REF, ("referral_count",), denominator="children_0_17"),
        ColumnSpec("rereferrals", "referrals", "Re-referrals within 12 months (history only)",
                   REF, ("rereferral_count",), denominator="referrals"),
        ColumnSpec("rereferral_pct", "percent", "Re-referrals within 12 months as % of referrals",
                   REF, ("rereferral_percent",)),
        ColumnSpec("nfa_pct", "percent", "Referrals closed with no further action, % of referrals",
                   REF, ("no_further_action_percent",)),
        ColumnSpec("not_in_need_pct", "percent", "Referrals assessed and found not in need, % of referrals",
                   REF, ("not_in_need_percent",)),
        ColumnSpec("children_referred", "children", "Distinct children referred in the year",
                   REF, ("referral_child_count",), denominator="referrals"),
        ColumnSpec("cin_at31", "children", "Children in need at 31 March (open CIN episodes; one per child)",
                   CIN, ("At31_episodes",), denominator="children_0_17"),
        ColumnSpec("cin_started", "episodes", "CIN episodes started in the year",
                   CIN, ("Started_episodes",), denominator="children_0_17"),
        ColumnSpec("cin_ended", "episodes", "CIN episodes ended in the year",
                   CIN, ("Ended_episodes",), denominator="children_0_17"),
        ColumnSpec("cpp_starts", "children", "Children starting a child protection plan in the year",
                   CPP, ("CPP_start",), denominator="children_0_17"),
        ColumnSpec("cpp_subsequent_pct", "percent", "CPP starts that were a second or subsequent plan, %",
                   CPP, ("CPP_subsequent_percent",)),
        ColumnSpec("_cpp_subsequent", "children", "CPP starts that were a second or subsequent plan (helper)",
                   CPP, ("CPP_subsequent",), denominator="cpp_starts"),
        ColumnSpec("cpp_at31", "children", "Children on a child protection plan at 31 March",
                   CPP31, ("CPP_At31",), denominator="children_0_17"),
        *_cpp_band_specs(),
        ColumnSpec("cla_starts", "children", "Children starting to be looked after in the year",
                   CLA, ("Children starting to be looked after each year",), denominator="children_0_17",
                   fallback=((STARTS, "Age on starting / Total"),)),
        ColumnSpec("cla_ceased", "children", "Children ceasing to be looked after in the year",
                   CLA, ("Children ceasing to be looked after each year",), denominator="children_0_17",
                   fallback=((CEASED, "Reason episode ceased / Total"),)),
        ColumnSpec("cla_at31", "children", "Children looked after at 31 March",
                   CLA, ("Children looked after on 31 March each year",), denominator="children_0_17",
                   fallback=((STOCK, "Placement / Total"),)),
        ColumnSpec("cla_starts_s20", "children", "CLA starts under a voluntary agreement (s20)",
                   STARTS, cat("Legal status", "Voluntary agreement under S20"), denominator="cla_starts"),
        ColumnSpec("cla_starts_ico", "children", "CLA starts under an interim care order",
                   STARTS, cat("Legal status", "Interim care order"), denominator="cla_starts"),
        ColumnSpec("cla_starts_emergency", "children", "CLA starts under police protection or an EPO",
                   STARTS, STARTS_EMERGENCY, denominator="cla_starts"),
        ColumnSpec("cla_starts_final_order", "children",
                   "CLA starts under a full care order or a placement order",
                   STARTS, STARTS_FINAL_ORDER, denominator="cla_starts"),
        ColumnSpec("cla_starts_other_legal", "children",
                   "CLA starts under any other legal status (total minus s20, ICO, police protection, EPO, "
                   "full care order, placement order)",
                   STARTS, STARTS_NAMED_LEGAL, kind="remainder", total="Legal status / Total",
                   denominator="cla_starts",
                   note="Child assessment order, PACE, remand, youth rehabilitation order."),
        ColumnSpec("cla_starts_taken_into_care", "children",
                   "CLA starts 'taken into care' (under an order, police protection or EPO)",
                   STARTS, cat("Taken into care", "All children taken into care"), denominator="cla_starts"),
        ColumnSpec("cla_starts_uasc", "children", "CLA starts who were unaccompanied asylum-seeking children",
                   STARTS, cat("Unaccompanied asylum-seeking children", "UASC"), denominator="cla_starts"),
        *_band_specs("cla_starts", STARTS, "Age on starting", "CLA starts", "cla_starts"),
        ColumnSpec("cla_at31_kinship_foster", "children",
                   "CLA at 31 March in foster care with a relative or friend", kind="unavailable",
                   imputable=False,
                   note="Not filled: no DfE table here splits foster placements by carer type, at any "
                        "level (national, regional or LA). National published figure: "
                        "published_figures.csv R152 (13,660 at 31 March 2024), in history.csv."),
        ColumnSpec("cla_at31_foster", "children", "CLA at 31 March in foster placements (including kinship)",
                   STOCK, cat("Placement", "Foster placements"), denominator="cla_at31"),
        ColumnSpec("cla_at31_residential", "children",
                   "CLA at 31 March in secure/children's homes, other residential settings or residential schools",
                   STOCK, STOCK_RESIDENTIAL, denominator="cla_at31"),
        ColumnSpec("cla_at31_supported", "children",
                   "CLA at 31 March in independent/semi-independent living or supported accommodation",
                   STOCK, cat("Placement",
                              "Independent and semi-independent living arrangements/supported accommodation"),
                   denominator="cla_at31"),
        ColumnSpec("cla_at31_with_parents", "children", "CLA at 31 March placed with parents",
                   STOCK, cat("Placement", "Placed with parents or other person with parental responsibility"),
                   denominator="cla_at31"),
        ColumnSpec("cla_at31_for_adoption", "children", "CLA at 31 March placed for adoption",
                   STOCK, cat("Placement", "Placed for adoption"), denominator="cla_at31"),
        ColumnSpec("cla_at31_other_placement", "children", "CLA at 31 March in other placements",
                   STOCK, cat("Placement", "Other placements"), denominator="cla_at31"),
        ColumnSpec("cla_at31_supported_or_other", "children",
                   "CLA at 31 March in independent/semi-independent living or supported accommodation, "
                   "or in other placements (the series comparable across the 2024 break)",
                   STOCK, cat("Placement",
                              "Independent and semi-independent living arrangements/supported accommodation",
                              "Other placements"),
                   denominator="cla_at31",
                   note="In 2024 the supported/independent living category fell from 8,620 to 6,080 "
                        "and 'Other placements' rose from 1,180 to 4,020 (England) as supported "
                        "accommodation for 16-17-year-olds became regulated (Ofsted registration "
                        "from October 2023) and arrangements outside it were recorded under other "
                        "placement codes; the sum of the two runs 6,670 / 8,180 / 9,800 / 10,100 "
                        "(2021-2024) without a break."),
        ColumnSpec("cla_at31_own_provision", "children", "CLA at 31 March in placements provided by the LA itself",
                   STOCK, cat("Place providers", "Own provision (by the LA)"), denominator="cla_at31"),
        ColumnSpec("cla_at31_private_provision", "children", "CLA at 31 March in privately provided placements",
                   STOCK, cat("Place providers", "Private provision"), denominator="cla_at31"),
        ColumnSpec("cla_at31_care_order", "children", "CLA at 31 March under a full care order",
                   STOCK, cat("Legal status", "Full care order"), denominator="cla_at31"),
        ColumnSpec("cla_at31_ico", "children", "CLA at 31 March under an interim care order",
                   STOCK, cat("Legal status", "Interim care order"), denominator="cla_at31"),
        ColumnSpec("cla_at31_placement_order", "children", "CLA at 31 March under a placement order",
                   STOCK, cat("Legal status", "Placement order granted"), denominator="cla_at31"),
        ColumnSpec("cla_at31_s20", "children", "CLA at 31 March accommodated under s20",
                   STOCK, cat("Legal status", "Voluntary agreements under S20 CA 1989"), denominator="cla_at31"),
        ColumnSpec("cla_at31_other_legal", "children",
                   "CLA at 31 March under any other legal status (total minus the four above)",
                   STOCK, STOCK_NAMED_LEGAL, kind="remainder", total="Legal status / Total",
                   denominator="cla_at31",
                   note="Detained for child protection + youth justice legal statuses."),
        *_band_specs("cla_at31", STOCK, "Age group", "CLA at 31 March", "cla_at31"),
        ColumnSpec("cla_at31_uasc", "children", "CLA at 31 March who are unaccompanied asylum-seeking children",
                   STOCK, cat("Unaccompanied asylum-seeking children", "UASC"), denominator="cla_at31"),
        ColumnSpec("ceased_returned_home", "children", "Ceased care: returned home to parents (both rows)",
                   CEASED, CEASED_RETURNED_HOME, denominator="cla_ceased"),
        ColumnSpec("ceased_sgo", "children", "Ceased care: special guardianship order",
                   CEASED, CEASED_SGO, denominator="cla_ceased"),
        ColumnSpec("ceased_cao", "children", "Ceased care: residence or child arrangement order",
                   CEASED, CEASED_CAO, denominator="cla_ceased"),
        ColumnSpec("ceased_adopted", "children", "Ceased care: adopted",
                   CEASED, CEASED_ADOPTED, denominator="cla_ceased"),
        ColumnSpec("ceased_age18", "children", "Ceased care aged 18 or over (any reason)",
                   CEASED, CEASED_AGE18, denominator="cla_ceased",
                   note="By age on ceasing, not by reason: DfE's reasons for leaving at 18 (stayed with "
                        "carers, independent living, adult care, age assessment) also count 16- and "
                        "17-year-olds, and miss a quarter to an eighth of those aged 18 or over "
                        "(2021-2024), recorded under other reasons."),
        *[ColumnSpec(f"ceased_age_{band}", "children", f"Ceased care aged {text} (any reason)",
                     CEASED, cat("Age on ceasing", *labels), denominator="cla_ceased")
          for band, labels, text in CEASED_AGES],
        ColumnSpec("ceased_other", "children",
                   "Ceased care under 18 for any other reason (total minus the groups above)",
                   CEASED, CEASED_NAMED, kind="remainder", total="Reason episode ceased / Total",
                   denominator="cla_ceased",
                   note="Leavers under 18 who did not return home, leave by SGO, CAO or adoption: moved into "
                        "independent living at 16 or 17, remand ended, custody, care taken by another LA, "
                        "moved abroad, died, left to live with relatives without parental responsibility, "
                        "any other reason. Assumes no leaver aged 18 or over is recorded as returned home or "
                        "under an order (SGO, CAO, adoption orders end at 18)."),
        ColumnSpec("ceased_uasc", "children", "Children ceasing care who were UASC",
                   CEASED, cat("Unaccompanied asylum-seeking children", "Unaccompanied asylum-seeking children"),
                   denominator="cla_ceased"),
        ColumnSpec("episodes_with_factors", "episodes",
                   "Assessments (CIN episodes) with at least one factor recorded at the end of assessment",
                   FACTORS, ("Episodes_with_assessment_factor",), denominator="children_0_17"),
        ColumnSpec("parental_substance_misuse_share", "share (0-1)",
                   "Share of assessments (CIN episodes with a factor recorded at the end of assessment) "
                   "recording parental alcohol misuse or parental drug misuse: (Alcohol_Misuse_parent + "
                   "Drug_Misuse_parent) / Episodes_with_assessment_factor, capped at 1; the eligibility "
                   "prevalence of family drug and alcohol courts (FDAC)",
                   FACTORS, ("Alcohol_Misuse_parent", "Drug_Misuse_parent"), kind="share",
                   total="Episodes_with_assessment_factor",
                   note="An upper bound: both factors can be recorded for the same episode, so the sum counts "
                        "such episodes twice (DfE publishes no count of episodes with either factor). Region "
                        "and England rows are their own published shares. Published zeros are kept: Isles of "
                        "Scilly 2023-24 (12 assessments, 0 and 0) and West Sussex 2022-23 (509 assessments, "
                        "0 and 0, against 6,000 to 8,000 in its other years) have share 0."),
    ]
    names = [s.name for s in specs]
    assert len(names) == len(set(names)), "duplicate column spec"
    return specs


LA_VALUE_COLUMNS = [
    "children_0_17",
    "referrals", "rereferral_pct", "nfa_pct", "not_in_need_pct", "children_referred",
    "cin_at31", "cin_started", "cin_ended",
    "cpp_starts", "cpp_subsequent_pct",
    "cpp_at31", "cpp_at31_le3m", "cpp_at31_3to6m", "cpp_at31_6to12m", "cpp_at31_1to2y", "cpp_at31_2yplus",
    "cla_starts", "cla_ceased", "cla_at31",
    "cla_starts_s20", "cla_starts_ico", "cla_starts_emergency", "cla_starts_final_order",
    "cla_starts_other_legal",
    "cla_starts_taken_into_care", "cla_starts_uasc",
    *[f"cla_starts_age_{b}" for b in AGE_BANDS],
    "cla_at31_kinship_foster", "cla_at31_foster", "cla_at31_residential", "cla_at31_supported",
    "cla_at31_with_parents", "cla_at31_for_adoption", "cla_at31_other_placement",
    "cla_at31_own_provision", "cla_at31_private_provision",
    "cla_at31_care_order", "cla_at31_ico", "cla_at31_placement_order", "cla_at31_s20", "cla_at31_other_legal",
    *[f"cla_at31_age_{b}" for b in AGE_BANDS],
    "cla_at31_uasc",
    "ceased_returned_home", "ceased_sgo", "ceased_cao", "ceased_adopted", "ceased_age18",
    *[f"ceased_age_{band}" for band, _, _ in CEASED_AGES], "ceased_other", "ceased_uasc",
    "episodes_with_factors", "parental_substance_misuse_share",
]
LA_COLUMNS = META_COLUMNS + LA_VALUE_COLUMNS + ["imputed"]
CLA_COLUMNS = [c for c in LA_VALUE_COLUMNS
               if c.startswith(("cla_at31", "cla_starts", "ceased_")) or c == "cla_ceased"]
CLA_COLUMNS.remove("cla_at31_kinship_foster")  # no source in any year


# ---------------------------------------------------------------------------------------------
# Reading the DfE tables into one field table
# ---------------------------------------------------------------------------------------------


def to_number(values: pd.Series) -> pd.Series:
    """Parse DfE values; suppression markers (c, k, z, x, u, low, empty) become NaN, never 0."""
    return pd.to_numeric(values.astype(str).str.strip().str.replace(",", "", regex=False), errors="coerce")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV as strings, keeping markers such as ``c`` or empty cells as text."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def add_geography(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``year``, ``level`` and ``geography`` (England / region name / ONS LA code).

    Rows at other levels (DfE's statistical-neighbour medians) are dropped.
    """
    level = df["geographic_level"].map(LEVELS)
    region = df["region_name"] if "region_name" in df else df["geo_breakdown"]
    geography = np.select(
        [level == "national", level == "regional"], ["England", region], df["new_la_code"]
    )
    out = df.assign(level=level, geography=geography, year=pd.to_numeric(df["time_period"]))
    return out[out["level"].notna()]


def long_from_wide(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Melt a wide DfE table (one column per measure) into year/level/geography/field/value rows."""
    value_columns = [c for c in df.columns if c not in WIDE_ID_COLUMNS]
    df = add_geography(df)
    long = df.melt(id_vars=["year", "level", "geography"], value_vars=value_columns,
                   var_name="field", value_name="raw")
    return long.assign(source=source)


def long_from_stock(df: pd.DataFrame) -> pd.DataFrame:
    """Long rows of ``cla_starts_ceased_stock.csv`` (one field per ``measure``)."""
    df = add_geography(df)
    return df.assign(source=CLA, field=df["measure"], raw=df["number"])[
        ["year", "level", "geography", "field", "raw", "source"]]


def long_from_characteristic(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Long rows of a CLA characteristic table; field = ``"<cla_group> / <characteristic>"``."""
    df = add_geography(df)
    field = df["cla_group"] + " / " + df["characteristic"]
    return df.assign(source=source, field=field, raw=df["number"])[
        ["year", "level", "geography", "field", "raw", "source"]]


def long_from_local_authorities(las: pd.DataFrame) -> pd.DataFrame:
    """The mid-2023 population of local_authorities.csv, as a fallback for ``YEAR``."""
    return pd.DataFrame({
        "year": YEAR, "level": "la", "geography": las["la_code"], "field": "children_0_17_mid2023",
        "raw": las["children_0_17_mid2023"], "source": LAS,
    })


def read_factors(path: Path) -> pd.DataFrame:
    """``assessment_factors.csv``, only its rows of category ``FACTORS_CATEGORY``.

    (In the 2018-2024 extract every row has that category; the filter guards against a later file
    adding others, e.g. factors at the start of assessment, which would double the counts.)
    """
    table = read_table(path)
    kept = table[table["category"] == FACTORS_CATEGORY]
    if kept.empty:
        raise ValueError(f"{path}: no rows of category {FACTORS_CATEGORY!r}: {sorted(set(table['category']))}")
    return kept


def load_long(dfe_dir: Path) -> pd.DataFrame:
    """All DfE values as one long table.

    ``value`` is numeric (NaN for any marker); ``unavailable`` is True where DfE marks the LA's
    return as not available (``u``, ``x``) rather than suppressed as small.
    """
    parts = [long_from_wide(read_table(dfe_dir / name), name) for name in (POP, REF, CIN, CPP, CPP31)]
    parts.append(long_from_wide(read_factors(dfe_dir / FACTORS), FACTORS))
    parts.append(long_from_stock(read_table(dfe_dir / CLA)))
    parts += [long_from_characteristic(read_table(dfe_dir / name), name) for name in (STARTS, STOCK, CEASED)]
    parts.append(long_from_local_authorities(read_table(dfe_dir / LAS)))
    long = pd.concat(parts, ignore_index=True)
    long["value"] = to_number(long["raw"])
    long["unavailable"] = long["raw"].astype(str).str.strip().isin(UNAVAILABLE_MARKERS)
    long["key"] = long["source"] + "::" + long["field"]
    return long


def field_table(long: pd.DataFrame, values: str = "value") -> pd.DataFrame:
    """Pivot to one row per (year, level, geography) and one column per ``source::field``."""
    duplicated = long.duplicated(["year", "level", "geography", "key"], keep=False)
    if duplicated.any():
        raise ValueError(f"duplicate DfE rows:\n{long[duplicated].head()}")
    table = long.pivot(index=["year", "level", "geography"], columns="key", values=values)
    return table.sort_index(axis=0).sort_index(axis=1)


# ---------------------------------------------------------------------------------------------
# The 2024 LA geography for every year (for la_inputs and targets; history.csv keeps DfE's codes)
# ---------------------------------------------------------------------------------------------


def percent_weight(key: str) -> str | None:
    """The count field weighting a percentage field when predecessors are pooled (None: no weight)."""
    source, field = key.split("::", 1)
    weights = {
        "rereferral_percent": "referral_count", "no_further_action_percent": "referral_count",
        "not_in_need_percent": "referral_count", "rereferral_child_percent": "referral_child_count",
        "CPP_subsequent_percent": "CPP_start",
    }
    if field in weights:
        return f"{source}::{weights[field]}"
    if source == CPP31 and field.endswith("_percent"):
        return f"{source}::CPP_At31"
    return None


def is_percent(key: str) -> bool:
    """True for a percentage field (pooled as a weighted mean, never shared out)."""
    return "percent" in key.split("::", 1)[1]


@dataclass
class MasterFields:
    """The field table on the 2024 LA master geography.

    ``values`` and ``unavailable`` as from :func:`field_table`; ``derived`` is True where an LA value
    is a predecessor's figure shared out (see :func:`to_master_geography`).
    """

    values: pd.DataFrame
    unavailable: pd.DataFrame
    derived: pd.DataFrame


def _merge_recoded(frame: pd.DataFrame, flags: bool = False) -> pd.DataFrame:
    """Merge rows that share an index after recoding (one non-missing value per cell at most;
    ``flags``: boolean frame, merged with ``any``)."""
    if not frame.index.duplicated().any():
        return frame.sort_index()
    grouped = frame.groupby(level=["year", "level", "geography"], sort=True)
    if flags:
        return grouped.any()
    if (grouped.count() > 1).any().any():
        raise ValueError("an LA appears under its old and its new code with values for the same field")
    return grouped.first()


def to_master_geography(fields: pd.DataFrame, unavailable: pd.DataFrame,
                        children_2024: pd.Series) -> MasterFields:
    """Put every year's LA rows on the 153 LAs of 2024.

    * Codes that changed with no change of area (``SAME_AREA_RECODES``) take the new code.
    * Split or merged areas (``SUCCESSIONS``): where, for a field and year, the successors have no
      value and every predecessor has one, the predecessors' total is shared across the successors
      in proportion to ``children_2024`` (their 2024 children aged 0-17); a percentage takes the
      predecessors' mean weighted by its count field (:func:`percent_weight`). Those cells are
      flagged in ``derived``. If any predecessor lacks the value (suppressed), nothing is shared
      and the successors' value is imputed later; a predecessor's unavailable mark (``u``/``x``)
      passes to the successors. Predecessor rows are then dropped.
    National and regional rows are unchanged.
    """
    marked = unavailable.reindex(index=fields.index, columns=fields.columns).fillna(False).astype(bool)
    geography = fields.index.get_level_values("geography")
    is_la = fields.index.get_level_values("level") == "la"
    recoded = np.where(is_la, pd.Series(geography).replace(SAME_AREA_RECODES).to_numpy(), geography)
    index = pd.MultiIndex.from_arrays(
        [fields.index.get_level_values("year"), fields.index.get_level_values("level"), recoded],
        names=fields.index.names)
    values = _merge_recoded(fields.set_axis(index))
    marked = _merge_recoded(marked.set_axis(index), flags=True).reindex(values.index).fillna(False).astype(bool)

    years = sorted(values.index.get_level_values("year").unique())
    extra = [(y, "la", code) for y in years for preds, succs, _ in SUCCESSIONS
             if any((y, "la", p) in values.index for p in preds) for code in succs]
    full = values.index.union(pd.MultiIndex.from_tuples(extra, names=values.index.names))
    values, marked = values.reindex(full), marked.reindex(full).fillna(False).astype(bool)
    derived = pd.DataFrame(False, index=full, columns=values.columns)
    percent = np.array([is_percent(c) for c in values.columns])

    for preds, succs, _ in SUCCESSIONS:
        weights = children_2024.reindex(list(succs)).astype(float)
        if weights.isna().any() or weights.sum() <= 0:
            raise ValueError(f"no 2024 children_0_17 for successors {succs}")
        shares = weights / weights.sum()
        for year in years:
            rows = [(year, "la", p) for p in preds if (year, "la", p) in values.index]
            if not rows:
                continue
            pred = values.loc[rows]
            pooled = pred.sum(min_count=1).where(pred.notna().all())
            if len(rows) == 1:
                pooled[percent] = pred.iloc[0][percent]
            else:
                for column in values.columns[percent]:
                    weight = percent_weight(column)
                    if weight is None or weight not in pred:
                        pooled[column] = np.nan
                    else:
                        both = pred[column].notna().all() and pred[weight].notna().all()
                        pooled[column] = ((pred[column] * pred[weight]).sum() / pred[weight].sum()
                                          if both and pred[weight].sum() > 0 else np.nan)
            targets = [(year, "la", code) for code in succs]
            empty = values.loc[targets].isna().all()
            fill = empty & pooled.notna()
            pass_mark = empty & marked.loc[rows].any() & ~marked.loc[targets].any()
            for target, share in zip(targets, shares):
                shared = pooled.where(percent, pooled * share)
                values.loc[target, fill] = shared[fill]
                derived.loc[target, fill] = True
                marked.loc[target, pass_mark] = True

    predecessors = {p for preds, _, _ in SUCCESSIONS for p in preds}
    keep = ~(pd.Series(values.index.get_level_values("geography")).isin(predecessors).to_numpy()
             & (values.index.get_level_values("level") == "la"))
    return MasterFields(values[keep], marked[keep], derived[keep])


# ---------------------------------------------------------------------------------------------
# Computing columns (with optional imputation of LA values)
# ---------------------------------------------------------------------------------------------


def _key(source: str, field: str) -> str:
    return f"{source}::{field}"


def _sum_fields(fields: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Row sums of the given field columns; NaN where any is missing."""
    return fields[keys].sum(axis=1, min_count=1).where(fields[keys].notna().all(axis=1))


def _national_by_year(frame: pd.DataFrame, column: str) -> pd.Series:
    """The national value of ``column`` for each year."""
    national = frame.loc[frame.index.get_level_values("level") == "national", column]
    return national.droplevel(["level", "geography"])


def _per_row(by_year: pd.Series, index: pd.MultiIndex) -> np.ndarray:
    """Broadcast a year-indexed series onto the rows of ``index``."""
    return by_year.reindex(index.get_level_values("year")).to_numpy(dtype=float)


def remainder_keys(spec: ColumnSpec, available: pd.Index) -> list[str]:
    """Keys of the categories of a remainder's group that are neither named nor the total."""
    group = spec.total.split(" / ")[0] + " / "
    prefix = _key(spec.source, group)
    excluded = {_key(spec.source, f) for f in (*spec.fields, spec.total)}
    return [k for k in available if k.startswith(prefix) and k not in excluded]


def cross_group_keys(spec: ColumnSpec) -> list[str]:
    """Keys of a remainder's named fields that are not of its total's group (subtracted from
    the sum of the group's remaining categories when the total is missing)."""
    group = spec.total.split(" / ")[0] + " / "
    return [_key(spec.source, f) for f in spec.fields if not f.startswith(group)]


def breakdown_groups(columns: pd.Index) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Map each category field of a DfE breakdown to (its total field, all categories of the group).

    The categories of every CLA characteristic group, and the CPP length bands, add up exactly
    to the group's total at LA level (LA figures are not rounded).
    """
    groups: dict[str, tuple[str, tuple[str, ...]]] = {}
    for source in (STARTS, STOCK, CEASED):
        keys = [k for k in columns if k.startswith(f"{source}::")]
        names = sorted({k.split("::", 1)[1].split(" / ")[0] for k in keys})
        for name in names:
            total = _key(source, f"{name} / Total")
            categories = tuple(k for k in keys if k.startswith(_key(source, f"{name} / ")) and k != total)
            if total in keys:
                groups.update({k: (total, categories) for k in categories})
    bands = tuple(_key(CPP31, field) for _, field, _ in CPP_BANDS)
    groups.update({k: (_key(CPP31, "CPP_At31"), bands) for k in bands})
    return groups


@dataclass
class Imputer:
    """Fills missing LA values of one reporting year.

    1. A value DfE marks unavailable (``u``/``x``: the LA's return was not available) takes the
       LA's own previous-year value, as DfE does in its national totals.
    2. Any other missing value is national value / national denominator x LA denominator (the
       national value itself for percentages).
    3. Within a breakdown (whose denominator is its total), the estimates of step 2 are rescaled to
       add up to what the published categories leave unexplained: the LA total (published, else as
       imputed) minus the published categories.
    """

    current: pd.DataFrame
    carried: pd.DataFrame
    groups: dict[str, tuple[str, tuple[str, ...]]]

    @classmethod
    def for_year(cls, fields: pd.DataFrame, unavailable: pd.DataFrame, year: int) -> "Imputer":
        """Build the imputer of ``year`` from the all-years value and unavailability tables."""
        current = fields.xs(year, level="year", drop_level=False)
        years = fields.index.get_level_values("year")
        previous = (fields.xs(year - 1, level="year") if (years == year - 1).any()
                    else pd.DataFrame(np.nan, index=current.index.droplevel("year"), columns=fields.columns))
        previous = previous.reindex(current.index.droplevel("year"))
        previous.index = current.index
        marked = unavailable.reindex(index=current.index, columns=current.columns).fillna(False).astype(bool)
        return cls(current, previous.where(marked), breakdown_groups(current.columns))

    def known(self, key: str) -> pd.Series:
        """Published values, with unavailable returns replaced by the previous year's."""
        return self.current[key].fillna(self.carried[key])

    def share_estimate(self, key: str, denominator: str | None, out: pd.DataFrame) -> pd.Series:
        """National value / national denominator x the row's denominator (step 2).

        A field suppressed even nationally has share 0 (DfE suppresses only a handful nationally).
        """
        national = _national_by_year(self.current, key)
        if denominator is None:
            return pd.Series(_per_row(national, self.current.index), index=self.current.index)
        share = (national / _national_by_year(out, denominator)).fillna(0.0)
        return pd.Series(_per_row(share, self.current.index) * out[denominator].to_numpy(dtype=float),
                         index=self.current.index)

    def group_scale(self, key: str, denominator: str | None, out: pd.DataFrame) -> pd.Series:
        """Factor making the estimates of a group's missing categories add up to its residual (step 3)."""
        if key not in self.groups:
            return pd.Series(1.0, index=self.current.index)
        total, categories = self.groups[key]
        known = pd.concat({c: self.known(c) for c in categories}, axis=1)
        estimates = pd.concat({c: self.share_estimate(c, denominator, out) for c in categories}, axis=1)
        missing_estimate = estimates.where(known.isna()).sum(axis=1)
        group_total = self.known(total).fillna(out[denominator]) if denominator else self.known(total)
        residual = group_total - known.sum(axis=1)
        valid = (missing_estimate > 0) & (residual >= 0)
        return (residual / missing_estimate).where(valid, 1.0)

    def filled(self, key: str, denominator: str | None, out: pd.DataFrame) -> pd.Series:
        """The field with every missing value imputed (NaN only if no estimate exists)."""
        estimate = self.share_estimate(key, denominator, out) * self.group_scale(key, denominator, out)
        return self.known(key).fillna(estimate)


def check_fields(specs: list[ColumnSpec], fields: pd.DataFrame) -> None:
    """Fail early if a spec names a field that no DfE table contains."""
    known = set(fields.columns)
    for spec in specs:
        if spec.kind in ("sum", "remainder", "share"):
            keys = [_key(spec.source, f) for f in spec.fields] + [_key(s, f) for s, f in spec.fallback]
            if spec.total:
                keys.append(_key(spec.source, spec.total))
            missing = [k for k in keys if k not in known]
            if missing:
                raise KeyError(f"{spec.name}: fields not found {missing}")


def component_shares(spec: ColumnSpec, fields: pd.DataFrame) -> pd.DataFrame:
    """Each field of a ``share`` column divided by its ``total`` field, one column per field
    (NaN where the field or the total is missing, or the total is 0)."""
    total = fields[_key(spec.source, spec.total)]
    total = total.where(total > 0)
    return pd.concat({f: fields[_key(spec.source, f)] / total for f in spec.fields}, axis=1)


def capped_share(parts: pd.DataFrame) -> pd.Series:
    """The row sums of :func:`component_shares`, capped at 1; NaN where any part is missing."""
    return parts.sum(axis=1).where(parts.notna().all(axis=1)).clip(upper=1.0)


def evaluate(spec: ColumnSpec, fields: pd.DataFrame, out: pd.DataFrame, flags: pd.DataFrame,
             imputer: Imputer | None) -> tuple[pd.Series, pd.Series]:
    """Compute one column; returns (values, imputed-flag) aligned with ``fields``."""
    no_flags = pd.Series(False, index=fields.index)
    if spec.kind == "unavailable":
        return pd.Series(np.nan, index=fields.index), no_flags
    if spec.kind == "share":
        return capped_share(component_shares(spec, fields)), no_flags  # imputed by share_column

    keys = [_key(spec.source, f) for f in spec.fields]
    cross: list[str] = []
    if spec.kind == "remainder":
        rest = remainder_keys(spec, fields.columns)
        cross = cross_group_keys(spec)
        values = fields[_key(spec.source, spec.total)] - _sum_fields(fields, keys)
        values = values.fillna(_sum_fields(fields, rest) - (_sum_fields(fields, cross) if cross else 0.0))
        parts = rest
    else:
        values = _sum_fields(fields, keys)
        for source, field in spec.fallback:
            values = values.fillna(fields[_key(source, field)])
        parts = keys

    if imputer is None or not spec.imputable:
        return values, no_flags
    need = pd.Series(fields.index.get_level_values("level") == "la", index=fields.index) & values.isna()
    estimate = sum(imputer.filled(k, spec.denominator, out) for k in parts)
    if cross:
        estimate = (estimate - sum(imputer.filled(k, spec.denominator, out) for k in cross)).clip(lower=0.0)
    flagged = need & estimate.notna()
    return values.where(~flagged, estimate), flagged


def build_columns(fields: pd.DataFrame, specs: list[ColumnSpec],
                  imputer: Imputer | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every spec in order; returns (values, imputed flags), both indexed like ``fields``.

    With an ``imputer`` (built for the same rows), missing LA values are imputed and flagged.
    """
    check_fields(specs, fields)
    out = pd.DataFrame(index=fields.index)
    flags = pd.DataFrame(index=fields.index)
    for spec in specs:
        out[spec.name], flags[spec.name] = evaluate(spec, fields, out, flags, imputer)
    return out, flags


# ---------------------------------------------------------------------------------------------
# la_inputs_<Y>.csv
# ---------------------------------------------------------------------------------------------


def geography_frame(las: pd.DataFrame) -> pd.DataFrame:
    """The rows of la_inputs: England, the 9 regions of local_authorities.csv, the 153 LAs."""
    regions = sorted(las["region_name"].unique())
    national = pd.DataFrame([{"level": "national", "geography": "England", "la_name": "",
                              "old_la_code": "", "region_name": ""}])
    regional = pd.DataFrame({"level": "regional", "geography": regions, "la_name": "",
                             "old_la_code": "", "region_name": regions})
    local = pd.DataFrame({"level": "la", "geography": las["la_code"], "la_name": las["la_name"],
                          "old_la_code": las["old_la_code"], "region_name": las["region_name"]})
    local = local.sort_values("geography")
    return pd.concat([national, regional, local], ignore_index=True)


CLA_SOURCES = (CLA, STARTS, STOCK, CEASED)
# Looked-after column groups: (England measure in published_figures/history, group total column).
CLA_MEASURES = (("looked_after", "cla_at31"), ("care_starts", "cla_starts"), ("care_ceased", "cla_ceased"))
SHARED_PREFIX = "shared_from_predecessor:"
DERIVED_PREFIX = f"derived_from_{CLA_BASE_YEAR}:"


def is_cla(spec: ColumnSpec) -> bool:
    """True for a column computed from the DfE looked-after (CLA) tables."""
    return spec.source in CLA_SOURCES


def cla_measure(column: str) -> str:
    """The England measure whose ratio scales a CLA column: stock, starts or ceased."""
    if column.startswith("cla_at31"):
        return "looked_after"
    if column.startswith("cla_starts"):
        return "care_starts"
    if column == "cla_ceased" or column.startswith("ceased_"):
        return "care_ceased"
    raise ValueError(f"{column} is not a looked-after column")


def has_cla_data(fields: pd.DataFrame, year: int) -> bool:
    """True if the DfE CLA tables have England's stock for ``year``."""
    key = (year, "national", "England")
    column = _key(CLA, "Children looked after on 31 March each year")
    return key in fields.index and pd.notna(fields.at[key, column])


def spec_keys(spec: ColumnSpec, columns: pd.Index) -> list[str]:
    """The field keys a ``sum``, ``remainder`` or ``share`` column is computed from."""
    if spec.kind == "sum":
        return [_key(spec.source, f) for f in spec.fields] + [_key(s, f) for s, f in spec.fallback]
    if spec.kind == "remainder":
        return ([_key(spec.source, f) for f in spec.fields] + [_key(spec.source, spec.total)]
                + remainder_keys(spec, columns))
    if spec.kind == "share":
        return [_key(spec.source, f) for f in (*spec.fields, spec.total)]
    return []


def shared_flags(specs: list[ColumnSpec], derived: pd.DataFrame) -> pd.DataFrame:
    """True where a column rests on a field shared out from a predecessor LA."""
    out = pd.DataFrame(index=derived.index)
    for spec in specs:
        keys = [k for k in spec_keys(spec, derived.columns) if k in derived.columns]
        out[spec.name] = derived[keys].any(axis=1) if keys else False
    return out


@dataclass
class LaTable:
    """Every column of one year for every geography (index ``level, geography``).

    ``imputed``: the LA value was missing and imputed; ``shared``: it is a predecessor LA's figure
    shared out (and not imputed); ``derived``: a CLA value derived from ``CLA_BASE_YEAR``;
    ``ratios``: for derived years, measure -> (ratio, how it was obtained); ``source_years``: for
    ``share`` columns, the DfE reporting year used (``year`` unless the table lacks it).
    """

    year: int
    values: pd.DataFrame
    imputed: pd.DataFrame
    shared: pd.DataFrame
    derived: pd.DataFrame
    ratios: dict[str, tuple[float, str]]
    source_years: dict[str, int] = dataclasses.field(default_factory=dict)


def nearest_year(fields: pd.DataFrame, key: str, year: int) -> int:
    """The reporting year nearest ``year`` in which England's ``key`` is published (the earlier of
    two equally near ones)."""
    national = _national_by_year(fields, key).dropna()
    if national.empty:
        raise ValueError(f"no national value of {key} in any year")
    return min((int(y) for y in national.index), key=lambda y: (abs(y - year), y))


@dataclass
class ShareColumn:
    """A ``share`` column of one year (index ``level, geography``), see :func:`share_column`."""

    values: pd.Series
    imputed: pd.Series
    shared: pd.Series
    source_year: int


def share_column(spec: ColumnSpec, master: MasterFields, year: int, index: pd.MultiIndex,
                 regions: pd.Series | None = None) -> ShareColumn:
    """A ``share`` column for the rows ``index`` (``level, geography``) of ``year``.

    Uses DfE's reporting year ``year`` or, if the table lacks it, the nearest year it has. National
    and regional rows are their own published shares (left empty if not published). On an LA row,
    each field whose share is missing (suppressed, unavailable, or a total of 0 or missing) is filled:

    1. if DfE marks the LA's return unavailable (``u``/``x``, in the field or the total), with the
       LA's own share of the previous year, when published (rule 1 of :class:`Imputer`);
    2. otherwise with the share of the LA's region in ``regions`` (LA code -> region name; England's
       if the region's is missing or ``regions`` is None).

    So an LA whose fields are all suppressed gets its region's share. Filled rows are flagged
    ``imputed``; ``shared`` flags rows resting on a predecessor LA's figures.
    """
    source_year = nearest_year(master.values, _key(spec.source, spec.total), year)
    keys = spec_keys(spec, master.values.columns)
    parts = component_shares(spec, master.values.xs(source_year, level="year").reindex(index))
    level = index.get_level_values("level")
    missing = parts.isna() & np.repeat(np.asarray(level == "la")[:, None], parts.shape[1], axis=1)

    years = master.values.index.get_level_values("year")
    previous = (component_shares(spec, master.values.xs(source_year - 1, level="year").reindex(index))
                if (years == source_year - 1).any() else parts * np.nan)
    marks = master.unavailable.xs(source_year, level="year").reindex(index)
    total_mark = marks[_key(spec.source, spec.total)].fillna(False).astype(bool).to_numpy()
    for f in spec.fields:
        marked = marks[_key(spec.source, f)].fillna(False).astype(bool).to_numpy() | total_mark
        parts[f] = parts[f].where(~(missing[f].to_numpy() & marked), previous[f])

    national = parts[level == "national"]
    national = national.iloc[0] if len(national) else pd.Series(np.nan, index=parts.columns)
    regional = parts[level == "regional"].droplevel("level")
    region_of = (regions.reindex(index.get_level_values("geography")) if regions is not None
                 else pd.Series(np.nan, index=index.get_level_values("geography")))
    fallback = regional.reindex(region_of.to_numpy()).set_axis(index).fillna(national)
    values = capped_share(parts.where(~(missing & parts.isna()), fallback))
    imputed = missing.any(axis=1) & values.notna()
    derived = master.derived.xs(source_year, level="year").reindex(index)[keys].fillna(False).astype(bool)
    shared = derived.any(axis=1) & ~imputed & values.notna()
    return ShareColumn(values, imputed, shared, source_year)


def la_table(master: MasterFields, specs: list[ColumnSpec], year: int,
             regions: pd.Series | None = None) -> LaTable:
    """All columns of ``year`` on the 2024 geography, missing LA values imputed.

    In a year without DfE CLA tables the CLA columns are left empty (see :func:`derive_cla`).
    ``share`` columns come from :func:`share_column`, missing LA values taking the share of their
    region in ``regions`` (LA code -> region name; without it, England's).
    """
    used = specs if has_cla_data(master.values, year) else [s for s in specs if not is_cla(s)]
    imputer = Imputer.for_year(master.values, master.unavailable, year)
    values, imputed = build_columns(imputer.current, used, imputer)
    derived = master.derived.reindex(index=imputer.current.index, columns=imputer.current.columns)
    shared = shared_flags(used, derived.fillna(False).astype(bool)) & ~imputed & values.notna()
    names = [s.name for s in specs]
    values = values.reindex(columns=names).droplevel("year")
    imputed = imputed.reindex(columns=names, fill_value=False).astype(bool).droplevel("year")
    shared = shared.reindex(columns=names, fill_value=False).astype(bool).droplevel("year")
    derived_flags = pd.DataFrame(False, index=values.index, columns=names)
    source_years = {}
    for spec in used:
        if spec.kind == "share":
            column = share_column(spec, master, year, values.index, regions)
            values[spec.name], imputed[spec.name], shared[spec.name] = column.values, column.imputed, column.shared
            source_years[spec.name] = column.source_year
    return LaTable(year, values, imputed, shared, derived_flags, {}, source_years)


def england_published(published: pd.DataFrame) -> pd.DataFrame:
    """England's published CLA stock/starts/ceased, one chosen row per (metric, year)."""
    chosen = choose_published(published_candidates(published))
    return chosen[chosen["metric"].isin([m for m, _ in CLA_MEASURES])]


def derive_cla(table: LaTable, base: LaTable, published: pd.DataFrame) -> LaTable:
    """Fill the CLA columns of a year without DfE CLA tables from ``base`` (CLA_BASE_YEAR).

    Every CLA column of every row (LA, region, England) is its ``base`` value times the ratio of
    England's published value for the year to England's ``base`` value, per measure (stock for
    ``cla_at31*``, starts for ``cla_starts*``, ceased for ``cla_ceased``/``ceased_*``); without a
    published value the ratio is 1. Breakdowns therefore keep the base year's shares.
    """
    chosen = england_published(published)
    ratios: dict[str, tuple[float, str]] = {}
    for measure, total in CLA_MEASURES:
        base_value = float(base.values.at[("national", "England"), total])
        row = chosen[(chosen["metric"] == measure) & (chosen["year"] == table.year)]
        if len(row):
            row = row.iloc[0]
            ratio = float(row["value"]) / base_value
            how = (f"{row['source_id']} {format_number(row['value'])} / {base.year} England "
                   f"{format_number(base_value)} = {ratio:.4f}")
        else:
            ratio, how = 1.0, f"no published England value: {base.year} value unscaled (ratio 1)"
        ratios[measure] = (ratio, how)

    values, derived = table.values.copy(), table.derived.copy()
    base_values = base.values.reindex(values.index)
    for column in [c for c in values.columns if c in CLA_COLUMNS]:
        values[column] = base_values[column] * ratios[cla_measure(column)][0]
        derived[column] = values[column].notna()
    return LaTable(table.year, values, table.imputed, table.shared, derived, ratios, table.source_years)


def la_tables(master: MasterFields, specs: list[ColumnSpec], published: pd.DataFrame,
              years: tuple[int, ...] = YEARS, regions: pd.Series | None = None) -> dict[int, LaTable]:
    """The tables of ``years``, CLA columns derived from CLA_BASE_YEAR where the year has none
    (``regions``: see :func:`la_table`)."""
    tables = {year: la_table(master, specs, year, regions) for year in years}
    base = tables.get(CLA_BASE_YEAR) or la_table(master, specs, CLA_BASE_YEAR, regions)
    if not has_cla_data(master.values, CLA_BASE_YEAR):
        raise ValueError(f"no DfE CLA figures for {CLA_BASE_YEAR}")
    for year in years:
        if year < CLA_BASE_YEAR and not has_cla_data(master.values, year):
            tables[year] = derive_cla(tables[year], base, published)
    return tables


def imputed_text(table: LaTable, index: pd.MultiIndex) -> pd.Series:
    """The ``imputed`` field: imputed columns, then prefixed shared/derived ones, in column order."""
    imputed, shared, derived = (flags.reindex(index)[LA_VALUE_COLUMNS].fillna(False).astype(bool).to_numpy()
                                for flags in (table.imputed, table.shared, table.derived))
    names = np.array(LA_VALUE_COLUMNS, dtype=object)
    cells = np.where(imputed, names, np.where(shared, SHARED_PREFIX + names,
                                              np.where(derived, DERIVED_PREFIX + names, "")))
    return pd.Series([";".join(c for c in row if c) for row in cells], index=index)


def la_inputs_frame(table: LaTable, las: pd.DataFrame) -> pd.DataFrame:
    """The la_inputs rows of one year: England, the 9 regions, the 153 LAs of 2024."""
    frame = geography_frame(las)
    index = pd.MultiIndex.from_frame(frame[["level", "geography"]])
    missing = index.difference(table.values.index)
    if len(missing):
        raise ValueError(f"{table.year}: geographies absent from every DfE table: {list(missing)}")
    values = table.values.reindex(index)
    result = pd.concat([frame.reset_index(drop=True), values[LA_VALUE_COLUMNS].reset_index(drop=True)], axis=1)
    result["imputed"] = imputed_text(table, index).to_numpy()
    return result[LA_COLUMNS]


def build_la_inputs(fields: pd.DataFrame, unavailable: pd.DataFrame, las: pd.DataFrame,
                    specs: list[ColumnSpec], year: int = YEAR) -> pd.DataFrame:
    """One row per geography for ``year`` (a year with DfE CLA tables), missing LA values imputed."""
    master = to_master_geography(fields, unavailable, children_2024(fields))
    return la_inputs_frame(la_table(master, specs, year, la_regions(las)), las)


def la_regions(las: pd.DataFrame) -> pd.Series:
    """Region name of each LA of ``local_authorities.csv``, by ONS code (London not split)."""
    return las.set_index("la_code")["region_name"]


def children_2024(fields: pd.DataFrame) -> pd.Series:
    """Children aged 0-17 of each LA in 2024 (``population_0_17.csv``), by ONS code."""
    column = fields[_key(POP, "population_estimate")]
    rows = column.xs((YEAR, "la"), level=("year", "level"))
    return rows.dropna()


def master_fields(dfe_dir: Path) -> MasterFields:
    """The DfE field table of every year on the 2024 LA geography."""
    long = load_long(dfe_dir)
    fields = field_table(long)
    return to_master_geography(fields, field_table(long, "unavailable"), children_2024(fields))


# ---------------------------------------------------------------------------------------------
# history.csv
# ---------------------------------------------------------------------------------------------

HISTORY_COLUMNS = ["metric", "year", "geography", "value", "qualifier", "unit", "source_id", "source_url", "note"]

# metric -> (column of column_specs(), unit, note)
DFE_METRICS = {
    "looked_after": ("cla_at31", "children", "children looked after on 31 March"),
    "looked_after.foster": ("cla_at31_foster", "children", "Placement: Foster placements (includes kinship foster care)"),
    "looked_after.residential": ("cla_at31_residential", "children",
                                 "Placement: secure homes and children's homes + other residential settings + residential schools"),
    "looked_after.supported": ("cla_at31_supported_or_other", "children",
                               "Placement: independent and semi-independent living/supported accommodation "
                               "+ other placements (summed: in 2024 part of the first moved to the second "
                               "when supported accommodation became regulated)"),
    "looked_after.placed_with_parents": ("cla_at31_with_parents", "children", "Placement: placed with parents"),
    "looked_after.placed_for_adoption": ("cla_at31_for_adoption", "children", "Placement: placed for adoption"),
    "looked_after.s20": ("cla_at31_s20", "children", "Legal status: voluntary agreements under s20"),
    "looked_after.interim_care_order": ("cla_at31_ico", "children", "Legal status: interim care order"),
    "looked_after.care_order": ("cla_at31_care_order", "children", "Legal status: full care order"),
    "looked_after.placement_order": ("cla_at31_placement_order", "children", "Legal status: placement order granted"),
    "looked_after.uasc": ("cla_at31_uasc", "children", "unaccompanied asylum-seeking children looked after on 31 March"),
    "child_in_need": ("cin_at31", "children", "At31_episodes: CIN episodes open at 31 March (one per child)"),
    "child_protection_plan": ("cpp_at31", "children", "CPP_At31"),
    "referrals": ("referrals", "referrals", "referral_count (counts referrals, not children)"),
    "rereferrals": ("rereferrals", "referrals", "rereferral_count: re-referrals within 12 months"),
    "cpp_starts": ("cpp_starts", "children", "CPP_start: child protection plans started"),
    "care_starts": ("cla_starts", "children", "children starting to be looked after"),
    "care_starts.uasc": ("cla_starts_uasc", "children", "starts who were UASC"),
    "care_starts.taken_into_care": ("cla_starts_taken_into_care", "children", "Taken into care: all children taken into care"),
    "care_ceased": ("cla_ceased", "children", "children ceasing to be looked after"),
    "care_ceased.returned_home": ("ceased_returned_home", "children", "both 'Returned home ...' reasons"),
    "care_ceased.special_guardianship": ("ceased_sgo", "children", "special guardianship order"),
    "care_ceased.child_arrangements": ("ceased_cao", "children", "residence order or child arrangement order"),
    "care_ceased.adopted": ("ceased_adopted", "children", "adopted"),
    "care_ceased.left_care": ("ceased_age18", "children", "Age on ceasing: 18 years and over (any reason)"),
    "care_ceased.other": ("ceased_other", "children",
                          "leavers under 18 for any other reason (total minus the four reasons above and "
                          "those aged 18 or over)"),
    "adoptions": ("ceased_adopted", "children", "Reason episode ceased: Adopted"),
}

# metric -> (unit, quantities of published_figures.csv mapped to it)
PUBLISHED_METRICS = {
    "looked_after": ("children", (
        "Children looked after (CLA) at 31 March",
        "Children looked after at 31 March (first-published value)",
        "Children looked after at 31 March (first-published figure)")),
    "looked_after.uasc": ("children", (
        "Unaccompanied asylum-seeking children (UASC) looked after at 31 March",
        "UASC looked after at 31 March")),
    "looked_after.kinship_foster": ("children", ("Children in kinship foster care",)),
    "looked_after.placed_for_adoption": ("children", ("Children placed for adoption at 31 March",)),
    "child_in_need": ("children", ("Children in need at 31 March",)),
    "child_protection_plan": ("children", (
        "Children subject of a child protection plan at 31 March",
        "Children on CPP at 31 March (CPR3-era figure)")),
    "referrals": ("referrals", ("Referrals to children's social care",)),
    "rereferrals": ("referrals", ("Re-referrals within 12 months of a previous referral",)),
    "s47_enquiries": ("enquiries", ("Section 47 enquiries started",)),
    "icpcs": ("conferences", ("Initial child protection conferences held",)),
    "cpp_starts": ("children", ("Children becoming subject of a child protection plan (CPP starts)",)),
    "care_starts": ("children", ("Children starting to be looked after during the year",)),
    "care_starts.uasc": ("children", ("UASC starting to be looked after",)),
    "care_starts.taken_into_care": ("children", (
        'Children "taken into care" (starts under interim/full care order, police protection, EPO or CAO)',)),
    "care_ceased": ("children", ("Children ceasing to be looked after during the year",)),
    "care_ceased.special_guardianship": ("children", ("Children ceasing care via special guardianship order",)),
    "adoptions": ("children", ("Looked-after children adopted during the year",)),
    "proceedings_issued": ("applications", ("Section 31 care applications received by Cafcass",)),
    "proceedings_mean_weeks": ("weeks", ("Mean time for care/supervision case to reach first disposal",)),
    "proceedings_within_26_weeks": ("percent", ("Share of care/supervision cases disposed within 26 weeks",)),
}
# Published quantities that are an alternative (older or first-published) series: used only when
# no other row gives the same year.
ALTERNATIVE_SERIES = re.compile(r"first-published|CPR3-era", re.IGNORECASE)
MOJ_METRICS = {"proceedings_mean_weeks", "proceedings_within_26_weeks"}
MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}


def format_number(value: float) -> str:
    """Fixed text form of a number: integers without decimals, others to at most 4 decimals."""
    if pd.isna(value):
        return ""
    rounded = round(float(value), 4)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.4f}".rstrip("0").rstrip(".")


def parse_value(text: str) -> tuple[str, float] | None:
    """Split a published value into (qualifier, number); None for ranges or non-numbers."""
    match = re.fullmatch(r"\s*([~<>]?)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*", text)
    if not match:
        return None
    return match.group(1), float(match.group(2).replace(",", ""))


def parse_period(period: str) -> tuple[int, int, bool] | None:
    """Map a published period to (financial year ending 31 March, period end as yyyymm, is_quarter).

    ``31 March 2024`` -> 2024; ``2023-24`` -> 2024; a calendar year ``2021`` -> 2022 and a quarter
    ``Jul-Sep 2013`` -> 2014: calendar periods go to the financial year containing their end.
    Returns None for anything else (half years, multi-year spans, ...).
    """
    if match := re.fullmatch(r"31 March (\d{4})", period):
        year = int(match.group(1))
        return year, year * 100 + 3, False
    if match := re.fullmatch(r"(\d{4})-(\d{2})", period):
        start = int(match.group(1))
        if (start + 1) % 100 != int(match.group(2)):
            return None
        return start + 1, (start + 1) * 100 + 3, False
    if match := re.fullmatch(r"(\d{4})", period):
        year = int(match.group(1))
        return year + 1, year * 100 + 12, False
    if match := re.fullmatch(r"([A-Z][a-z]{2})-([A-Z][a-z]{2}) (\d{4})", period):
        end_month, year = MONTHS[match.group(2)], int(match.group(3))
        return (year if end_month <= 3 else year + 1), year * 100 + end_month, True
    return None


def dfe_history(fields: pd.DataFrame, specs: list[ColumnSpec]) -> pd.DataFrame:
    """History rows from the DfE tables: every metric, year and geography they contain."""
    values, _ = build_columns(fields, specs)
    by_name = {s.name: s for s in specs}
    frames = []
    for metric, (column, unit, note) in DFE_METRICS.items():
        spec = by_name[column]
        frame = values[column].dropna().rename("value").reset_index()
        frame = frame.assign(metric=metric, unit=unit, source_id=f"dfe:{spec.source}", note=note)
        frames.append(_attribute_fallbacks(frame, spec, fields))
    history = pd.concat(frames, ignore_index=True)
    history["geography"] = history["geography"].replace(SAME_AREA_RECODES)
    history["note"] = [geography_note(g, n) for g, n in zip(history["geography"], history["note"])]
    history["qualifier"] = ""
    history["source_url"] = ""
    return history


def _attribute_fallbacks(frame: pd.DataFrame, spec: ColumnSpec, fields: pd.DataFrame) -> pd.DataFrame:
    """Point ``source_id`` and ``note`` at the fallback table where the primary value was missing."""
    if not spec.fallback:
        return frame
    index = pd.MultiIndex.from_frame(frame[["year", "level", "geography"]])
    primary = _sum_fields(fields, [_key(spec.source, f) for f in spec.fields]).reindex(index)
    used = primary.isna().to_numpy()
    source, field = spec.fallback[0]
    frame.loc[used, "source_id"] = f"dfe:{source}"
    frame.loc[used, "note"] = frame.loc[used, "note"] + f"; {field} ({spec.source} has no value)"
    return frame


def geography_note(geography: str, note: str) -> str:
    """Append what is special about a geography code to a DfE history note."""
    if geography in SUB_REGIONS:
        return f"{note}; DfE sub-region (London = Inner London + Outer London)"
    if geography in PREDECESSOR_NOTES:
        return f"{note}; {PREDECESSOR_NOTES[geography]}"
    if geography in SAME_AREA_RECODES.values():
        old = next(k for k, v in SAME_AREA_RECODES.items() if v == geography)
        return f"{note}; earlier years published under {old} (same area)"
    return note


def published_candidates(published: pd.DataFrame) -> pd.DataFrame:
    """Published rows mapped to history metrics, with parsed year, value and qualifier."""
    rows = []
    for metric, (unit, quantities) in PUBLISHED_METRICS.items():
        subset = published[published["quantity"].isin(quantities)
                           & published["geography"].isin(["England", "England and Wales"])]
        if subset.empty:
            raise KeyError(f"no published_figures row for {metric}")
        for row in subset.itertuples(index=False):
            if row.unit != unit:
                raise ValueError(f"{row.id}: unit {row.unit!r}, expected {unit!r} for {metric}")
            parsed_value, period = parse_value(row.value), parse_period(row.year)
            if parsed_value is None or period is None:
                continue  # ranges and partial periods (half years, 10 months) stay out
            year, period_end, is_quarter = period
            rows.append({
                "metric": metric, "year": year, "geography": "England",
                "value": parsed_value[1], "qualifier": parsed_value[0], "unit": unit,
                "source_id": row.id, "source_url": row.source_url,
                "quantity": row.quantity, "period": row.year, "published_note": row.notes,
                "published_geography": row.geography,
                "alternative": bool(ALTERNATIVE_SERIES.search(row.quantity)),
                "is_quarter": is_quarter, "period_end": period_end,
            })
    return pd.DataFrame(rows)


def choose_published(candidates: pd.DataFrame) -> pd.DataFrame:
    """Keep one published row per (metric, year) and write its note.

    Preference: the main (revised/latest) series over first-published or older-collection rows;
    for MoJ, a calendar year over a quarter, then the latest quarter. Ties raise an error.
    """
    ranked = candidates.sort_values(
        ["metric", "year", "alternative", "is_quarter", "period_end", "source_id"],
        ascending=[True, True, True, True, False, True],
    )
    kept = []
    for (_, _), group in ranked.groupby(["metric", "year"], sort=True):
        best, others = group.iloc[0], group.iloc[1:]
        if len(others) and (others.iloc[0][["alternative", "is_quarter", "period_end"]]
                            == best[["alternative", "is_quarter", "period_end"]]).all():
            raise ValueError(f"cannot choose between {list(group['source_id'])}")
        kept.append({**best.to_dict(), "note": published_note(best, others)})
    return pd.DataFrame(kept)


def published_note(best: pd.Series, others: pd.DataFrame) -> str:
    """Note for a kept published row: its own notes, period mapping and the rows it replaced."""
    own = best["published_note"].strip().rstrip(";").strip()
    parts = [own] if own else []
    if best["metric"] in MOJ_METRICS:
        parts.append(f"period {best['period']} ({best['published_geography']}) mapped to the financial "
                     f"year ending 31 March {best['year']}, the one containing the period's end")
    if best["metric"] == "proceedings_issued" and "application" not in own:
        parts.append("unit is s31 applications (a family case), not children")
    if best["alternative"]:
        parts.append("first-published or older-collection value; no other value for this year")
    if len(others):
        replaced = ", ".join(f"{r.source_id} ({format_number(r.value)}, {r.period})" for r in others.itertuples())
        parts.append(f"kept over {replaced}")
    return "; ".join(parts)


def build_history(fields: pd.DataFrame, specs: list[ColumnSpec], published: pd.DataFrame) -> pd.DataFrame:
    """DfE history plus published national series; DfE wins where both give England's value."""
    dfe = dfe_history(fields, specs)
    chosen = choose_published(published_candidates(published))
    dfe_england = set(zip(dfe.loc[dfe["geography"] == "England", "metric"],
                          dfe.loc[dfe["geography"] == "England", "year"]))
    overlap = [(m, y) in dfe_england for m, y in zip(chosen["metric"], chosen["year"])]
    chosen = chosen[~np.array(overlap, dtype=bool)]
    history = pd.concat([dfe, chosen], ignore_index=True)[HISTORY_COLUMNS]

    duplicated = history.duplicated(["metric", "year", "geography"], keep=False)
    if duplicated.any():
        raise ValueError(f"duplicate history rows:\n{history[duplicated]}")
    history["year"] = history["year"].astype(int)
    rank = history["geography"].map(lambda g: 0 if g == "England" else (2 if re.fullmatch(r"E\d{8}", g) else 1))
    history = history.assign(_rank=rank).sort_values(["metric", "_rank", "geography", "year"])
    history["value"] = history["value"].map(format_number)
    return history.drop(columns="_rank").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# la_inputs_2024.columns.md
# ---------------------------------------------------------------------------------------------

DOC_HEADER = """\
# `la_inputs_<Y>.csv` (Y = 2019 to 2024): columns

Generated by `python -m caresim.population.build_inputs` from `shared/data` (do not edit by hand).
One file per reporting year Y (DfE `time_period` Y): stocks at 31 March Y, flows over April Y-1 to
March Y; `la_inputs_2024.csv` (2023-24) is the model's starting state. Every file has the same
columns and rows: `national` (England), `regional` (the 9 regions of `dfe/local_authorities.csv`),
`la` (its 153 LAs of 2024, sorted by ONS code). DfE values are the vintage of these extracts (CLA
figures match the 2025 release, e.g. 83,530 looked after at 31 March 2024).

Sections "Rules", "Geography quirks" and the column table describe 2024 (the table's "LAs imputed"
counts are 2024's); "Other years (2019 to 2023)" below says what differs in the earlier files:
LA code changes and looked-after figures derived for 2019 and 2020.

## Rules

- DfE suppression and availability markers (`c`, `k`, `z`, `x`, `u`, `low`, empty) are read as
  missing, never as zero. (`u`, not listed in the data README, marks Hampshire's and
  Herefordshire's unavailable 2023-24 returns.)
- National and regional rows are never imputed: they are left empty when missing (e.g. a region's
  `cla_at31_residential` when one of its three categories is `c`).
- A missing LA value is imputed, per DfE category, and the column is listed in `imputed`:
  1. if DfE marks the LA's return as unavailable (`u`, `x`), the LA's own 2022-23 value is used,
     as DfE itself does in the 2023-24 national totals (which substitute Hampshire's 2022-23
     figures); without it, the sum of LAs falls 2.4% short of England for referrals;
  2. otherwise national value / national denominator x LA denominator, where the denominator is
     `children_0_17` for volumes (referrals, CIN, CPP, CLA starts/ceased/stock, assessments) and the
     LA's own total for a breakdown (e.g. `cla_at31_s20` = national s20 share x LA `cla_at31`); a
     percentage takes the national value;
  3. within a breakdown (CLA characteristic groups, CPP length bands), the step-2 estimates of the
     suppressed categories are rescaled to add up to the LA total (published, else as imputed)
     minus its published categories. (At LA level DfE's categories add up exactly to the total; without
     this step the small-number cells, `c` = 1 to 5, get national-share values that can far exceed 5
     in a large LA: summed over LAs, `ceased_other` came out 19% above England.)
- Exception: `parental_substance_misuse_share` (a share, not a count) uses rule 1 and then, instead
  of rules 2-3, the share of the LA's region (England's if the region's is missing): see its row.
- Imputation is per category, so the published part of a grouped column is kept (e.g.
  `cla_at31_residential` = published children's homes + imputed residential schools). A category
  suppressed even nationally (only `Sentenced to youth rehabilitation order` among CLA starts) gets
  share 0. Imputed values are unrounded expected values.
- Remainder columns (`cla_starts_other_legal`, `cla_at31_other_legal`, `ceased_other`) are the group
  total minus the named categories; where a named category is suppressed they are the sum of the
  remaining categories (published or imputed), which with step 3 equals total minus the named ones.
- Numbers are written with at most 4 decimals; empty means missing.

## Geography quirks

- Master list: the 153 ONS codes of `dfe/local_authorities.csv`. In the 2023-24 data every DfE table
  has exactly these 153 LAs (no extra or missing codes), so no LA needed splitting or combining.
- City of London (E09000001) and Hackney (E09000012) are published separately in 2023-24 (not
  combined); City of London's small counts are mostly `c` and imputed.
- Isles of Scilly (E06000053) is published separately from Cornwall. `cla_starts_ceased_stock.csv`
  gives `z` for its CLA starts, ceased and stock, but every CLA characteristic table publishes
  its group `Total` as 0 (consistent with no looked-after children; Cornwall's figures are not known
  to include Scilly). `cla_starts`, `cla_ceased` and `cla_at31` take that published 0 (a fallback
  source, not an imputation); its CLA breakdowns (`z`) are then imputed as share x 0 = 0 and listed
  in `imputed`.
- Cumberland (E06000063) and Westmorland and Furness (E06000064) replaced Cumbria (E10000006) in
  April 2023: 2023-24 is their first year with data, and population comes from the 2024 estimate of
  `population_0_17.csv` for the new codes.
- North Northamptonshire / West Northamptonshire (from 2021-22), North Yorkshire and Somerset (new
  unitary codes from 2023-24) all have 2023-24 rows under their current codes.
- Hampshire (all referral, CIN, CPP and assessment-factor measures) and Herefordshire (referrals,
  CIN starts, assessment factors) are `u` in 2023-24: imputed from their own 2022-23 values (rule 1);
  values that were also missing in 2022-23 (e.g. Herefordshire's re-referrals) use rule 2.
- Region rows use the 9 regions of `local_authorities.csv` (`London` as a whole); DfE's `Inner London`
  and `Outer London` sub-regions are not rows here (they are in `history.csv`).
- `children_0_17` is ONS mid-2024 (`population_0_17.csv` `time_period` 2024), whereas DfE's published
  2023-24 rates use mid-2023.

## Columns

| column | meaning | unit | source (columns used) | mapping / notes | LAs imputed |
|---|---|---|---|---|---|
"""

DOC_FOOTER = """
## `history.csv` (same build)

Long table `metric, year, geography, value, qualifier, unit, source_id, source_url, note`; `year` is
the financial year ending 31 March (stocks at 31 March `year`). DfE rows (`source_id` `dfe:<file>`)
cover every year and geography of the DfE tables, with the same column definitions as above and no
imputation (suppressed values are simply absent; composite metrics need all their categories).
National series from `published_figures.csv` (`source_id` = its id, URL kept) fill the other
years: where both give England's value for a year the DfE table wins; where several published rows
give one year, the revised/latest series wins over first-published or CPR3-era rows, and for MoJ a
calendar year wins over a quarter, then the latest quarter (the `note` says which rows were
dropped). MoJ periods (England and Wales) map to the financial year containing the period's end.
Qualifiers (`~`, `>`, `<`) are parsed off the published value; ranges are left out. LA codes that
changed without a change of area (Buckinghamshire E10000002, North Yorkshire E10000023, Somerset
E10000027) are written under their current code; split or merged predecessors (Cumbria,
Northamptonshire, Bournemouth, Poole, Dorset county) keep their own code, with a note. DfE's
`Inner London` and `Outer London` sub-regions appear alongside `London`.
"""

META_DOC = {
    "level": ("Row type: `national`, `regional` or `la`", "", "", ""),
    "geography": ("ONS code for LAs, region name for regions, `England`", "", "dfe/local_authorities.csv (la_code)", ""),
    "la_name": ("LA name (empty for other rows)", "", "dfe/local_authorities.csv (la_name)", ""),
    "old_la_code": ("DfE 3-digit LA code (empty for other rows)", "", "dfe/local_authorities.csv (old_la_code)", ""),
    "region_name": ("Region of the LA; the region itself on region rows; empty for England", "",
                    "dfe/local_authorities.csv (region_name)", "ONS regions (London not split)"),
    "imputed": ("`;`-separated columns whose value was not published for this row and year: a plain "
                "column name was imputed (LA rows only); `shared_from_predecessor:<column>` is a "
                "predecessor LA's figure shared out; `derived_from_2021:<column>` a looked-after "
                "figure derived from 2021 (2019 and 2020, every row)", "", "",
                "empty on national/regional rows from 2021 on"),
}


def _field_list(fields: tuple[str, ...], joiner: str) -> str:
    """Join field names, writing a shared ``"<group> / "`` prefix only once."""
    groups = {f.split(" / ")[0] for f in fields}
    if len(groups) == 1 and all(" / " in f for f in fields):
        group = groups.pop()
        return f"{group}: " + joiner.join(f.split(" / ", 1)[1] for f in fields)
    return joiner.join(fields)


def source_text(spec: ColumnSpec) -> str:
    """Human-readable source of a spec for the columns doc."""
    if spec.kind == "unavailable":
        return "none"
    if spec.kind == "share":
        return (f"dfe/{spec.source} (({' + '.join(spec.fields)}) / {spec.total}; rows of category "
                f"`{FACTORS_CATEGORY}`, the file's only one)")
    if spec.kind == "remainder":
        group, total = spec.total.split(" / ")
        own = tuple(f for f in spec.fields if f.startswith(f"{group} / "))
        named = _field_list(own, "; ").split(": ", 1)[1]
        other = [f for f in spec.fields if f not in own]
        more = f" and [{'; '.join(other)}]" if other else ""
        return f"dfe/{spec.source} ({group}: {total} minus [{named}]{more})"
    text = f"dfe/{spec.source} ({_field_list(spec.fields, ' + ')})"
    for source, field in spec.fallback:
        text += f"; if missing, dfe/{source} ({field})"
    return text


def imputation_text(spec: ColumnSpec) -> str:
    """How a missing LA value of this column is imputed (after rule 1 for unavailable returns)."""
    if not spec.imputable:
        return "Not imputed."
    if spec.kind == "share":
        fields = ", ".join(f"`{f}`" for f in spec.fields)
        return (f"Imputation (LA rows), per part ({fields}): a part whose count or `{spec.total}` is "
                f"missing (or the latter 0) takes (1) the LA's own previous-year share of that part if DfE "
                f"marks the return unavailable (`u`, `x`) and that share is published (rule 1), else (2) its "
                f"region's share (region count / region `{spec.total}`; England's if the region's is "
                f"missing), not rules 2-3. An LA with both parts suppressed thus gets its region's share; a "
                f"published part is kept.")
    if spec.denominator is None:
        return "Imputation: national value."
    if spec.denominator == "children_0_17":
        return "Imputation: national rate per child x LA `children_0_17`."
    if spec.source in (STARTS, STOCK, CEASED, CPP31):
        return f"Imputation: national share x LA `{spec.denominator}`, rescaled within the breakdown (rule 3)."
    return f"Imputation: national ratio to `{spec.denominator}` x LA `{spec.denominator}`."


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _year_counts(frames: dict[int, pd.DataFrame], column: str) -> list[str]:
    """Per year: LAs with the column imputed (plus shared from a predecessor / derived)."""
    cells = []
    for year in sorted(frames):
        lists = frames[year].loc[frames[year]["level"] == "la", "imputed"].str.split(";")
        imputed = int(lists.map(lambda names: column in names).sum())
        shared = int(lists.map(lambda names: SHARED_PREFIX + column in names).sum())
        derived = int(lists.map(lambda names: DERIVED_PREFIX + column in names).sum())
        cell = "derived" if derived == len(lists) and derived else str(imputed)
        if shared:
            cell += f" (+{shared} shared)"
        cells.append(cell)
    return cells


def other_years_doc(frames: dict[int, pd.DataFrame], tables: dict[int, LaTable]) -> str:
    """The doc section on 2019-2023: geography changes, derived CLA figures, per-year counts."""
    lines = [
        "## Other years (2019 to 2023)",
        "",
        "Each file uses every DfE table's own `time_period` Y (the referral, CIN and CPP tables go back to",
        "2013, assessment factors to 2018, the CLA tables start in 2021) and `children_0_17` of",
        "`population_0_17.csv` `time_period` Y (ONS mid-Y estimate). The rules above apply with Y-1 in",
        "place of 2022-23 (e.g. Hackney's `x` returns of 2020-21 and 2021-22 take its previous year's",
        "value where there is one). Two things differ.",
        "",
        "### LA code changes: predecessors shared across successors",
        "",
        "The LA master list is the 153 LAs of 2024 in every year. Codes that changed with no change of",
        "area are read under the new code (Buckinghamshire E10000002 -> E06000060, North Yorkshire",
        "E10000023 -> E06000065, Somerset E10000027 -> E06000066). Areas that were split or merged:",
        "",
    ]
    lines += [f"- {text}." for _, _, text in SUCCESSIONS]
    lines += [
        "",
        "In a year whose DfE table still has the predecessors (one table at a time, field by field:",
        "e.g. `population_0_17.csv` has North and West Northamptonshire from mid-2021, the CIN tables",
        "from 2021-22), the predecessors' total is shared across the successors in proportion to the",
        "successors' 2024 `children_0_17` (Bournemouth, Poole and Dorset county are pooled first, since",
        "Christchurch moved from the county to Bournemouth, Christchurch and Poole). A percentage",
        "(`rereferral_pct`, `nfa_pct`, `not_in_need_pct`, `cpp_subsequent_pct`) is not shared out: each",
        "successor takes the predecessors' value (pooled, weighted by referrals or CPP starts). Such",
        "values are listed in `imputed` as `shared_from_predecessor:<column>`. If any predecessor's value",
        "is suppressed, nothing is shared and the successors' value is imputed by the rules above (and",
        "listed plainly); a predecessor's unavailable return (`u`, `x`) passes rule 1 to its successors.",
        "The DfE CLA tables already use the 2024 codes for every year. `history.csv` keeps DfE's own",
        "codes (see below).",
        "",
        f"### Looked-after figures for years without DfE CLA tables",
        "",
        f"The DfE CLA tables have no rows before {CLA_BASE_YEAR}. For 2019 and 2020 every looked-after",
        f"column (stock `cla_at31*`, starts `cla_starts*`, ceased `cla_ceased` and `ceased_*`) of every",
        f"row, England and regions included, is the row's {CLA_BASE_YEAR} value times the ratio of",
        f"England's published value for the year (`published_figures.csv`, latest vintage, as chosen for",
        f"`history.csv`) to England's {CLA_BASE_YEAR} value (DfE table); without a published value for the",
        f"year and measure the ratio is 1 ({CLA_BASE_YEAR} value unscaled). Breakdowns thus keep the row's",
        f"{CLA_BASE_YEAR} shares, and the LAs add up to England's published figure as closely as they do",
        f"in {CLA_BASE_YEAR}. Every such value is listed in `imputed` as `{DERIVED_PREFIX}<column>`",
        f"(on national and regional rows too). `cla_at31_kinship_foster` stays empty. Ratios used:",
        "",
        "| year | stock (`cla_at31*`) | starts (`cla_starts*`) | ceased (`cla_ceased`, `ceased_*`) |",
        "|---|---|---|---|",
    ]
    for year in sorted(tables):
        if tables[year].ratios:
            r = tables[year].ratios
            lines.append(f"| {year} | {r['looked_after'][1]} | {r['care_starts'][1]} | {r['care_ceased'][1]} |")
    lines += [
        "",
        "### LAs imputed per year",
        "",
        "Number of LAs whose value is imputed; `(+n shared)`: LAs whose value is a predecessor's figure",
        f"shared out; `derived`: derived from {CLA_BASE_YEAR} for every row.",
        "",
        "| column | " + " | ".join(str(y) for y in sorted(frames)) + " |",
        "|---|" + "---|" * len(frames),
    ]
    for column in LA_VALUE_COLUMNS:
        lines.append(f"| `{column}` | " + " | ".join(_year_counts(frames, column)) + " |")
    return "\n".join(lines) + "\n"


def source_year_text(tables: dict[int, LaTable], spec: ColumnSpec) -> str:
    """Which DfE reporting year each la_inputs file takes a ``share`` column from."""
    used = {year: table.source_years.get(spec.name, year) for year, table in sorted(tables.items())}
    moved = {year: source for year, source in used.items() if source != year}
    years = f"{min(used)} to {max(used)}"
    if not moved:
        return (f"Reporting year: `la_inputs_<Y>` uses `time_period` Y of dfe/{spec.source} for every Y = "
                f"{years} (all published there).")
    substituted = "; ".join(f"`la_inputs_{y}` uses {s}" for y, s in moved.items())
    return (f"Reporting year: `la_inputs_<Y>` uses `time_period` Y of dfe/{spec.source}, except where the "
            f"file lacks Y, which takes the nearest published year (the earlier of two): {substituted}.")


def build_columns_doc(frames: dict[int, pd.DataFrame], tables: dict[int, LaTable],
                      specs: list[ColumnSpec]) -> str:
    """Markdown documentation of every la_inputs column (2024 counts of imputed LA cells), then
    what differs in the other years."""
    la_inputs = frames[YEAR]
    by_name = {s.name: s for s in specs}
    imputed_lists = la_inputs["imputed"].str.split(";")
    lines = [DOC_HEADER.rstrip("\n")]
    for column in LA_COLUMNS:
        if column in META_DOC:
            meaning, unit, source, notes = META_DOC[column]
            count = ""
        else:
            spec = by_name[column]
            meaning, unit, source = spec.description, spec.unit, source_text(spec)
            year_text = source_year_text(tables, spec) if spec.kind == "share" else ""
            notes = " ".join(filter(None, [spec.note, year_text, imputation_text(spec)]))
            count = str(int(imputed_lists.map(lambda names, c=column: c in names).sum()))
        cells = [f"`{column}`", meaning, unit, source, notes, count]
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    others = {y: f for y, f in frames.items()}
    return "\n".join(lines) + "\n\n" + other_years_doc(others, tables) + DOC_FOOTER


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write with fixed number formatting and Unix line endings."""
    text = frame.copy()
    for column in text.columns:
        if pd.api.types.is_numeric_dtype(text[column]):
            text[column] = text[column].map(format_number)
    text.to_csv(path, index=False, lineterminator="\n")


def build(shared: Path, out: Path) -> dict[str, int]:
    """Build the calibration inputs (not the targets) from ``shared`` into ``out``; returns row counts."""
    dfe_dir = shared / "dfe"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared / "published_figures.csv", out / "published_figures.csv")

    specs = column_specs()
    long = load_long(dfe_dir)
    fields = field_table(long)
    las = read_table(dfe_dir / LAS)
    published = read_table(shared / "published_figures.csv")
    master = to_master_geography(fields, field_table(long, "unavailable"), children_2024(fields))
    tables = la_tables(master, specs, published, regions=la_regions(las))
    counts = {}
    frames = {}
    for year in YEARS:
        frames[year] = la_inputs_frame(tables[year], las)
        write_csv(frames[year], out / f"la_inputs_{year}.csv")
        counts[f"la_inputs_{year}.csv"] = len(frames[year])
    (out / "la_inputs_2024.columns.md").write_text(build_columns_doc(frames, tables, specs), encoding="utf-8")

    history = build_history(fields, specs, published)
    write_csv(history, out / "history.csv")
    counts.update({"history.csv": len(history), "published_figures.csv": len(published)})
    return counts


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (calibration/)")
    args = parser.parse_args(argv)
    counts = build(args.shared, args.out)
    from caresim.population import targets  # imported here: targets builds on this module

    counts.update(targets.build_targets(args.shared, args.out))
    for name, rows in counts.items():
        print(f"{args.out / name}: {rows} rows")


if __name__ == "__main__":
    main()
