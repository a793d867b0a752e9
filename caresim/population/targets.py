"""Calibration targets: the published figures the model is held to.

Run as::

    python -m caresim.population.targets --shared ../shared/data --out calibration

(``python -m caresim.population.build_inputs`` runs it too, after rebuilding its own files). It
reads ``calibration/history.csv`` (England's series, latest vintage, and the DfE regional rows),
the DfE tables of ``shared/data/dfe`` (the same columns as ``la_inputs``, on the 2024 LA
geography, with the same imputation) and ``published_figures.csv`` (published shares and cohort
rates that ``history.csv`` does not carry), and writes:

* ``targets.csv.gz`` (gzipped CSV): one row per (metric, year, geography), see :data:`TARGET_COLUMNS`;
* ``targets.md``: the columns, the tolerance rules and what was left out.

Metric names are the model's (:mod:`caresim.results.metrics`); a share is written ``A/B`` (percent
of B that are A). Output is deterministic (sorted rows, fixed number format).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from caresim.analysis.targets import period_quarters
from caresim.population import build_inputs as bi
from caresim.results.metrics import START_AGE_BANDS

FIRST_YEAR, LAST_YEAR = 2013, 2024
TARGET_COLUMNS = ["target_id", "metric", "year", "period", "geography", "published", "qualifier", "kind", "unit",
                  "tolerance", "source_id", "source_url", "note"]

CPP_BANDS = tuple(band for band, _, _ in bi.CPP_BANDS)  # le3m, 3to6m, 6to12m, 1to2y, 2yplus
LEGAL = {"s20": "cla_at31_s20", "interim_care_order": "cla_at31_ico", "care_order": "cla_at31_care_order",
         "placement_order": "cla_at31_placement_order"}
PLACEMENTS = {"foster": "cla_at31_foster", "residential": "cla_at31_residential",
              "supported": "cla_at31_supported_or_other", "placed_with_parents": "cla_at31_with_parents",
              "placed_for_adoption": "cla_at31_for_adoption"}
# care starts by age on starting: the model's band (metric care_starts.age_<band>) -> la_inputs'
# (cla_starts_age_<band>), both in the scenario's AGE_BANDS order
START_AGES = dict(zip(START_AGE_BANDS, bi.AGE_BANDS, strict=True))
# care leavers by age on ceasing, under 18 (18 and over is `care_ceased.left_care`): the model's
# band (metric care_ceased.age_<band>) -> la_inputs' (ceased_age_<band>)
CEASED_AGES = dict(zip(START_AGE_BANDS, (band for band, _, _ in bi.CEASED_AGES), strict=True))
REASONS = {"returned_home": "ceased_returned_home", "special_guardianship": "ceased_sgo",
           "child_arrangements": "ceased_cao", "adopted": "ceased_adopted", "left_care": "ceased_age18",
           "other": "ceased_other"}

# Starts on a full care order or a placement order (the model's two final orders), summed.
FINAL_ORDER_STARTS = "care_starts.care_order+care_starts.placement_order"
# Count metric -> (kind, unit, la_inputs column or None if not from the DfE tables).
COUNTS: dict[str, tuple[str, str, str | None]] = {
    "referrals": ("flow", "referrals", "referrals"),
    "rereferrals": ("flow", "referrals", "rereferrals"),
    "s47_enquiries": ("flow", "enquiries", None),
    "icpcs": ("flow", "conferences", None),
    "cpp_starts": ("flow", "children", "cpp_starts"),
    "cpp_starts.subsequent": ("flow", "children", "_cpp_subsequent"),
    "child_protection_plan": ("stock", "children", "cpp_at31"),
    **{f"child_protection_plan.{b}": ("stock", "children", f"cpp_at31_{b}") for b in CPP_BANDS},
    "child_in_need": ("stock", "children", "cin_at31"),
    "care_starts": ("flow", "children", "cla_starts"),
    "care_starts.uasc": ("flow", "children", "cla_starts_uasc"),
    **{f"care_starts.age_{a}": ("flow", "children", f"cla_starts_age_{b}") for a, b in START_AGES.items()},
    # by legal status on starting: DfE's interim care orders, and its full care orders and
    # placement orders together (starts at a final order); the model's s20 status also holds
    # police protection and EPOs, so s20 is left as the rest
    "care_starts.interim_care_order": ("flow", "children", "cla_starts_ico"),
    FINAL_ORDER_STARTS: ("flow", "children", "cla_starts_final_order"),
    # looked after at 31 March by age: DfE's age groups (16 and over is the model's 16-17)
    **{f"looked_after.age_{a}": ("stock", "children", f"cla_at31_age_{b}") for a, b in START_AGES.items()},
    "care_ceased": ("flow", "children", "cla_ceased"),
    **{f"care_ceased.{r}": ("flow", "children", c) for r, c in REASONS.items()},
    **{f"care_ceased.age_{a}": ("flow", "children", f"ceased_age_{b}") for a, b in CEASED_AGES.items()},
    "care_ceased.uasc": ("flow", "children", "ceased_uasc"),
    "adoptions": ("flow", "children", "ceased_adopted"),
    "looked_after": ("stock", "children", "cla_at31"),
    **{f"looked_after.{k}": ("stock", "children", c) for k, c in {**LEGAL, **PLACEMENTS}.items()},
    "looked_after.kinship_foster": ("stock", "children", None),
    "looked_after.uasc": ("stock", "children", "cla_at31_uasc"),
    "proceedings_issued_cases": ("flow", "applications", None),
    "proceedings_mean_weeks": ("duration", "weeks", None),
    "proceedings_within_26_weeks": ("share", "percent", None),
    "cafcass.proceedings_mean_weeks": ("duration", "weeks", None),
    "cohort.reentry_1y": ("share", "percent", None),
    "cohort.reentry_5y": ("share", "percent", None),
}
# history.csv metric -> target metric (history metrics not listed here or in COUNTS are left out).
HISTORY_RENAME = {"proceedings_issued": "proceedings_issued_cases"}
# Counts targeted for regions and LAs too (the others are England only).
SUBNATIONAL_COUNTS = ("referrals", "cpp_starts", "child_protection_plan", "child_in_need", "care_starts",
                      "care_ceased", "looked_after", "looked_after.uasc")

# Shares built from DfE counts, at every geography: (numerator metric, denominator metric).
DFE_SHARES: tuple[tuple[str, str], ...] = (
    ("rereferrals", "referrals"),
    ("cpp_starts.subsequent", "cpp_starts"),
    *[(f"child_protection_plan.{b}", "child_protection_plan") for b in CPP_BANDS],
    *[(f"looked_after.{k}", "looked_after") for k in (*LEGAL, *PLACEMENTS)],
    ("looked_after.uasc", "looked_after"),
    ("care_starts.uasc", "care_starts"),
    *[(f"care_starts.age_{a}", "care_starts") for a in START_AGES],
    *[(f"looked_after.age_{a}", "looked_after") for a in START_AGES],
    ("care_starts.interim_care_order", "care_starts"),
    (FINAL_ORDER_STARTS, "care_starts"),
    *[(f"care_ceased.{r}", "care_ceased") for r in REASONS],
    *[(f"care_ceased.age_{a}", "care_ceased") for a in CEASED_AGES],
    ("care_ceased.uasc", "care_ceased"),
)
# Published shares (published_figures.csv quantity -> metric), used where DfE gives no value.
PUBLISHED_SHARES = {
    # DfE's headline "care orders" count interim and full care orders together (R104-R107:
    # 58%, 73%, 75%, 77%, which with s20 and placement orders sum to 100%); the model's
    # looked_after.care_order is full orders only, as in DfE's 2021-2024 tables.
    "Share of CLA under a care order": "looked_after.care_order+looked_after.interim_care_order/looked_after",
    "Share of CLA accommodated under s20 voluntary agreement": "looked_after.s20/looked_after",
    "Share of CLA under a placement order": "looked_after.placement_order/looked_after",
    "Share of CLA in foster placements": "looked_after.foster/looked_after",
    "Share of CLA placed with parents": "looked_after.placed_with_parents/looked_after",
    "Share of CLA placed for adoption": "looked_after.placed_for_adoption/looked_after",
    "Kinship foster care as share of all CLA": "looked_after.kinship_foster/looked_after",
    "Kinship (family & friends) foster care as share of foster placements":
        "looked_after.kinship_foster/looked_after.foster",
    "Share of children ceasing care who left via SGO": "care_ceased.special_guardianship/care_ceased",
    "Share of children ceasing care who returned home to parents/relatives":
        "care_ceased.returned_home/care_ceased",
    "Share of children ceasing care who were adopted": "care_ceased.adopted/care_ceased",
    "Re-referral rate within 12 months": "rereferrals/referrals",
}
KINSHIP_AREA = re.compile(r"^Kinship foster share of CLA - ")
# Published rows whose period or metric needs saying explicitly: id -> (metric, year, note).
EXPLICIT = {
    "R318": ("cohort.reentry_5y", 2007, "children returning home in 2006-07; re-entry within 5 years"),
    "R319": ("cohort.reentry_1y", 2017, "returns home 2014-2020 pooled (year = the window's middle); "
                                         "re-entry within 1 year"),
    "R320": ("cohort.reentry_5y", 2017, "returns home 2014-2020 pooled (year = the window's middle); "
                                         "re-entry within 6 years, taken as the 5-year rate (data README: "
                                         "'a third within 5 to 6 years'); kept over R321 (35%, a charity "
                                         "citing the same finding)"),
    "R322": ("cohort.reentry_1y", 2008, "all exits in calendar 2007 (mapped to the financial year "
                                         "containing its end); re-entry within 1 year of any exit, not only "
                                         "returns home"),
    "R323": ("cohort.reentry_1y", 2013, "all exits in calendar 2012 (mapped to the financial year "
                                         "containing its end); re-entry within 1 year of any exit, not only "
                                         "returns home"),
    "R324": ("cohort.reentry_5y", 2009, "all exits in calendar 2008 (mapped to the financial year "
                                         "containing its end); re-entry within 5 years of any exit"),
    "R326": ("care_ceased.returned_home", 2013, "period 'c.2013' taken as 2012-13"),
}
# Court figures compared over the months they are published for (a run of whole quarters
# within a calendar year): target metric -> published_figures quantity. These metrics' rows of
# history.csv (each figure mapped to a financial year) are not targets.
COURT_PERIOD_METRICS = {
    **{metric: bi.PUBLISHED_METRICS[metric][1][0] for metric in sorted(bi.MOJ_METRICS)},
    "cafcass.proceedings_mean_weeks": "Average duration of Cafcass involvement in s31 (care/supervision) proceedings",
}
# Court counts published for part of a year, compared over the same months (the financial
# years' counts of history.csv stay targets): target metric -> published_figures quantity.
# Not here: Cafcass's April-January 2019-20 (R258, not whole quarters) and MoJ's England and
# Wales counts (R291, R292); see LEFT_OUT_TEXT.
COURT_PERIOD_COUNTS = {
    "proceedings_issued_cases": "s31 care applications received by Cafcass, April-September",
}
# Cafcass's duration of involvement against MoJ's time to first disposal over the same quarter:
# 44 v 43 weeks (Jan-Mar 2021, R265/R276), 45 v 47 (Oct-Dec 2021, R266/R278).
CAFCASS_MEASURE_WEEKS = 2.0
LEFT_OUT = {
    "R321": "same finding as R320 (kept), quoted by a charity",
}
OFFICIAL = re.compile(r"^(DfE|DCSF|DfES|Cafcass|MoJ)\b")
DFE_URLS = {
    **{f: "https://explore-education-statistics.service.gov.uk/find-statistics/"
          "children-looked-after-in-england-including-adoptions" for f in bi.CLA_SOURCES},
    **{f: "https://explore-education-statistics.service.gov.uk/find-statistics/children-in-need"
       for f in (bi.REF, bi.CIN, bi.CPP, bi.CPP31)},
}

# Tolerance rules (see targets.md).
ROUNDING = 5.0           # DfE national/regional counts are rounded to the nearest 10
FLOOR = 0.005            # relative floor for official counts; LA counts from DfE tables
LA_IMPUTED = 0.25        # LA count imputed or shared from a predecessor
SECONDARY = 0.03         # count from a secondary source
APPROXIMATE = 0.10       # '~' figure (relative; x value for shares and durations)
ENGLAND_AND_WALES = 0.05  # MoJ figure for England and Wales used as England (x value for non-counts)
SHARE_PP = 1.0           # share: absolute percentage points
SHARE_PP_SECONDARY = 2.0
DURATION_WEEKS = 1.0     # duration: absolute weeks


def share_metric(numerator: str, denominator: str) -> str:
    return f"{numerator}/{denominator}"


def metric_kind(metric: str) -> tuple[str, str]:
    """(kind, unit) of a target metric."""
    if "/" in metric:
        return "share", "percent"
    kind, unit, _ = COUNTS[metric]
    return kind, unit


def is_official(source_title: str) -> bool:
    """True for DfE (DCSF, DfES), Cafcass and MoJ publications; secondary reports, parliamentary
    answers, charities and research papers are not."""
    return bool(OFFICIAL.match(source_title))


def tolerance(kind: str, value: float, qualifier: str = "", *, official: bool = True, rounded: int = 0,
              la: bool = False, imputed: bool = False, england_and_wales: bool = False) -> float:
    """The tolerance of a target (relative for counts; percentage points / weeks otherwise).

    ``rounded``: number of figures rounded to the nearest 10 that make up a national or regional
    DfE count (0 if not a DfE table value); ``la``: an LA value from the DfE tables; ``imputed``:
    that LA value was imputed or shared from a predecessor.
    """
    if qualifier in ("<", ">"):
        return 0.0
    if kind in ("stock", "flow"):
        if la:
            result = LA_IMPUTED if imputed else FLOOR
        elif not official:
            result = SECONDARY
        else:
            result = max(ROUNDING * max(rounded, 1) / value, FLOOR) if value > 0 else FLOOR
        if england_and_wales:
            result = max(result, ENGLAND_AND_WALES)
        if qualifier == "~":
            result = max(result, APPROXIMATE)
        return result
    if kind == "share":
        result = SHARE_PP if official else SHARE_PP_SECONDARY
    elif kind == "duration":
        result = DURATION_WEEKS
    else:
        raise ValueError(f"unknown kind {kind!r}")
    if england_and_wales:
        result = max(result, ENGLAND_AND_WALES * value)
    if qualifier == "~":
        result = max(result, APPROXIMATE * value)
    return result


def geography_slug(geography: str) -> str:
    return geography.replace(" ", "_")


def target_id(metric: str, year: int, geography: str, period: str = "") -> str:
    return f"T-{metric}-{geography_slug(period) if period else year}-{geography_slug(geography)}"


def court_period(published: str) -> str | None:
    """A court figure's period as `Mmm-Mmm YYYY` (caresim.analysis.targets.period_quarters):
    `Apr-Jun 2019` as is, a calendar year `2021` -> `Jan-Dec 2021`, a Cafcass quarter of the
    financial year `Q4 2020-21` -> `Jan-Mar 2021`, the first half of a financial year
    `2023-24 (H1)` -> `Apr-Sep 2023`; None for anything else (financial years, the second half
    of a financial year, which crosses a calendar year, 10 months, ranges)."""
    period = None
    if re.fullmatch(r"[A-Z][a-z]{2}-[A-Z][a-z]{2} \d{4}", published):
        period = published
    elif re.fullmatch(r"\d{4}", published):
        period = f"Jan-Dec {published}"
    elif m := re.fullmatch(r"Q([1-4]) (\d{4})-\d{2}", published):
        q, start = int(m.group(1)), int(m.group(2))
        period = ("Apr-Jun", "Jul-Sep", "Oct-Dec", "Jan-Mar")[q - 1] + f" {start + (q == 4)}"
    elif m := re.fullmatch(r"(\d{4})-\d{2} \(H1\)", published):
        period = f"Apr-Sep {m.group(1)}"
    if period is None:
        return None
    try:
        period_quarters(period)
    except ValueError:
        return None  # e.g. Oct-Mar
    return period


def rounded_components(spec: bi.ColumnSpec) -> int:
    """How many rounded DfE figures a national/regional value of this column adds up."""
    if spec.kind == "remainder":
        return 1 + len(spec.fields)
    return max(len(spec.fields), 1)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """Everything the targets are built from."""

    history: pd.DataFrame
    published: pd.DataFrame
    las: pd.DataFrame
    specs: dict[str, bi.ColumnSpec]
    dfe: pd.DataFrame                 # DfE columns, no imputation, DfE geography (national/regional used)
    la_tables: dict[int, bi.LaTable]  # per year, 2024 LA geography, imputed


def load_inputs(shared: Path, calibration: Path) -> Inputs:
    dfe_dir = shared / "dfe"
    specs = bi.column_specs()
    long = bi.load_long(dfe_dir)
    fields = bi.field_table(long)
    dfe, _ = bi.build_columns(fields, specs)
    master = bi.to_master_geography(fields, bi.field_table(long, "unavailable"), bi.children_2024(fields))
    tables = {year: bi.la_table(master, specs, year) for year in range(FIRST_YEAR, LAST_YEAR + 1)}
    history = pd.read_csv(calibration / "history.csv", dtype=str, keep_default_na=False)
    history["year"] = history["year"].astype(int)
    published = bi.read_table(calibration / "published_figures.csv")
    return Inputs(history, published, bi.read_table(dfe_dir / bi.LAS), {s.name: s for s in specs}, dfe, tables)


def row(metric: str, year: int, geography: str, value: float, qualifier: str, tol: float, source_id: str,
        source_url: str, note: str, period: str = "") -> dict:
    kind, unit = metric_kind(metric)
    return {"target_id": target_id(metric, year, geography, period), "metric": metric, "year": int(year),
            "period": period, "geography": geography, "published": float(value), "qualifier": qualifier, "kind": kind,
            "unit": unit, "tolerance": float(tol), "source_id": source_id, "source_url": source_url,
            "note": note}


# ---------------------------------------------------------------------------------------------
# England and regions
# ---------------------------------------------------------------------------------------------


def _dfe_source(spec: bi.ColumnSpec) -> tuple[str, str]:
    return f"dfe:{spec.source}", DFE_URLS[spec.source]


def published_tolerance(kind: str, value: float, qualifier: str, source_title: str,
                        geography: str) -> tuple[float, list[str]]:
    """Tolerance of a `published_figures.csv` figure used as England's, and the notes saying
    what widened it (a secondary source, an England and Wales figure)."""
    official = is_official(source_title)
    e_and_w = geography == "England and Wales"
    tol = tolerance(kind, value, qualifier, official=official, england_and_wales=e_and_w)
    notes = [] if official else [f"secondary source ({source_title})"]
    if e_and_w:
        notes.append("MoJ figure for England and Wales used for England: tolerance at least 5% of the value")
    return tol, notes


def history_rows(inputs: Inputs) -> list[dict]:
    """England (every metric) and regional (SUBNATIONAL_COUNTS) counts from history.csv."""
    published = inputs.published.set_index("id")
    regions = set(inputs.las["region_name"])
    rows = []
    history = inputs.history[inputs.history["year"].between(FIRST_YEAR, LAST_YEAR)]
    for r in history.itertuples(index=False):
        metric = HISTORY_RENAME.get(r.metric, r.metric)
        if metric not in COUNTS or metric in COURT_PERIOD_METRICS:
            continue  # court figures: court_period_rows
        if r.geography == "England":
            pass
        elif r.geography in regions and metric in SUBNATIONAL_COUNTS:
            pass
        else:
            continue
        kind, _ = metric_kind(metric)
        value = float(r.value)
        note = r.note
        if r.source_id.startswith("dfe:"):
            spec = inputs.specs[bi.DFE_METRICS[r.metric][0]]
            n = rounded_components(spec)
            tol = tolerance(kind, value, r.qualifier, rounded=n)
            url = DFE_URLS[r.source_id[4:]]
            rounding = "rounded to the nearest 10" if n == 1 else f"sum of {n} figures rounded to the nearest 10"
            note = f"DfE table ({rounding}): {note}"
        else:
            source = published.loc[r.source_id]
            tol, extra = published_tolerance(kind, value, r.qualifier, source["source_title"], source["geography"])
            url = r.source_url
            note = "; ".join(filter(None, [note, *extra]))
        rows.append(row(metric, r.year, r.geography, value, r.qualifier, tol, r.source_id, url, note))
    return rows


def court_period_rows(inputs: Inputs) -> list[dict]:
    """England's court durations and shares within 26 weeks (MoJ, England and Wales),
    Cafcass's duration of its involvement and Cafcass's part-year counts of care applications,
    one target per published period (a run of whole quarters) whose end falls in
    FIRST_YEAR..LAST_YEAR; `year` is the financial year containing the end."""
    rows = []
    for metric, quantity in {**COURT_PERIOD_METRICS, **COURT_PERIOD_COUNTS}.items():
        for r in inputs.published[inputs.published["quantity"] == quantity].itertuples(index=False):
            period = court_period(r.year)
            parsed = bi.parse_value(r.value)
            if period is None or parsed is None:
                continue
            year = period_quarters(period)[-1][0]
            if not FIRST_YEAR <= year <= LAST_YEAR:
                continue
            qualifier, value = parsed
            kind, _ = metric_kind(metric)
            if r.geography == "England and Wales" and kind in ("stock", "flow"):
                raise ValueError(f"{r.id} ({quantity!r}): a count for England and Wales is larger than "
                                 f"England's and cannot be a target for England; take {metric!r} out of "
                                 f"COURT_PERIOD_COUNTS for it, or map an England figure")
            tol, extra = published_tolerance(kind, value, qualifier, r.source_title, r.geography)
            notes = [r.notes.strip().rstrip(";").strip(),
                     f"period {r.year} ({r.geography}), compared over the same months", *extra]
            if metric.startswith("cafcass."):
                tol = max(tol, CAFCASS_MEASURE_WEEKS)
                notes.append(f"Cafcass's measure, not MoJ's: tolerance at least {CAFCASS_MEASURE_WEEKS:g} "
                             "weeks (44 v 43 weeks in Jan-Mar 2021, R265/R276; 45 v 47 in Oct-Dec 2021, "
                             "R266/R278)")
            rows.append(row(metric, year, "England", value, qualifier, tol, r.id, r.source_url,
                            "; ".join(filter(None, notes)), period=period))
    return rows


def national_regional(inputs: Inputs) -> pd.DataFrame:
    """DfE values (no imputation) of England and the 9 regions, years FIRST_YEAR..LAST_YEAR."""
    dfe = inputs.dfe
    level = dfe.index.get_level_values("level")
    geography = dfe.index.get_level_values("geography")
    keep = ((level == "national") | ((level == "regional") & geography.isin(set(inputs.las["region_name"]))))
    years = dfe.index.get_level_values("year")
    return dfe[keep & (years >= FIRST_YEAR) & (years <= LAST_YEAR)]


def dfe_extra_counts(inputs: Inputs) -> list[dict]:
    """England counts that history.csv does not carry: CPP length bands, second or subsequent
    plans, care starts by age and on interim care orders, children looked after by age, care
    leavers by age and UASC care leavers."""
    rows = []
    values = national_regional(inputs)
    for metric in ("cpp_starts.subsequent", *[f"child_protection_plan.{b}" for b in CPP_BANDS],
                   *[f"care_starts.age_{a}" for a in START_AGES], "care_starts.interim_care_order",
                   *[f"looked_after.age_{a}" for a in START_AGES],
                   *[f"care_ceased.age_{a}" for a in CEASED_AGES], "care_ceased.uasc"):
        kind, _, column = COUNTS[metric]
        spec = inputs.specs[column]
        source_id, url = _dfe_source(spec)
        series = values[column].xs("national", level="level").dropna()
        for (year, geography), value in series.items():
            rows.append(row(metric, year, geography, value, "", tolerance(kind, value, rounded=1), source_id,
                            url, f"DfE table (rounded to the nearest 10): {', '.join(spec.fields)}"))
    return rows


def dfe_share_rows(inputs: Inputs) -> list[dict]:
    """Shares built from DfE national and regional counts."""
    rows = []
    values = national_regional(inputs)
    for numerator, denominator in DFE_SHARES:
        num_spec = inputs.specs[COUNTS[numerator][2]]
        den_spec = inputs.specs[COUNTS[denominator][2]]
        source_id, url = _dfe_source(num_spec)
        ratio = 100 * values[num_spec.name] / values[den_spec.name].where(values[den_spec.name] > 0)
        for (year, _, geography), value in ratio.dropna().items():
            rows.append(row(share_metric(numerator, denominator), year, geography, value, "",
                            tolerance("share", value), source_id, url,
                            f"100 x {numerator} / {denominator}, from DfE counts rounded to the nearest 10"))
    return rows


def published_share_rows(inputs: Inputs, taken: set[tuple[str, int, str]]) -> list[dict]:
    """Published shares, regional/LA kinship shares and cohort rates not given by the DfE tables."""
    by_name = dict(zip(inputs.las["la_name"], inputs.las["la_code"]))
    regions = set(inputs.las["region_name"])
    candidates = []
    for r in inputs.published.itertuples(index=False):
        if r.id in LEFT_OUT:
            continue
        parsed = bi.parse_value(r.value)
        if parsed is None:
            continue
        qualifier, value = parsed
        note = r.notes.strip().rstrip(";").strip()
        if r.id in EXPLICIT:
            metric, year, extra = EXPLICIT[r.id]
            geography, note = "England", "; ".join(filter(None, [extra, note]))
        elif r.quantity in PUBLISHED_SHARES or KINSHIP_AREA.match(r.quantity):
            metric = PUBLISHED_SHARES.get(r.quantity, "looked_after.kinship_foster/looked_after")
            period = bi.parse_period(r.year)
            if period is None and (match := re.fullmatch(r"c\.(\d{4})", r.year)):
                period, note = (int(match.group(1)), 0, False), "; ".join(
                    filter(None, [f"period '{r.year}' taken as 31 March {match.group(1)}", note]))
            if period is None:
                continue
            year = period[0]
            if r.geography == "England" or r.geography in regions:
                geography = r.geography
            elif r.geography in by_name:
                geography = by_name[r.geography]
                note = "; ".join(filter(None, [f"{r.geography}", note]))
            else:
                continue
            if not FIRST_YEAR <= year <= LAST_YEAR:
                continue
        else:
            continue
        if (metric, year, geography) in taken:
            continue  # the DfE tables give this one
        kind, _ = metric_kind(metric)
        official = is_official(r.source_title)
        e_and_w = r.geography == "England and Wales"
        if not official:
            note = "; ".join(filter(None, [note, f"secondary source ({r.source_title})"]))
        candidates.append({**row(metric, year, geography, value, qualifier,
                                 tolerance(kind, value, qualifier, official=official, england_and_wales=e_and_w),
                                 r.id, r.source_url, note), "_official": official})
    frame = pd.DataFrame(candidates)
    # One row per (metric, year, geography): official over secondary, then the latest id.
    frame = frame.sort_values(["metric", "year", "geography", "_official", "source_id"],
                              ascending=[True, True, True, False, False])
    duplicated = frame.duplicated(["metric", "year", "geography"], keep=False)
    if duplicated.any():
        raise ValueError(f"several published shares for one target:\n{frame[duplicated]}")
    return frame.drop(columns="_official").to_dict("records")


# ---------------------------------------------------------------------------------------------
# Local authorities
# ---------------------------------------------------------------------------------------------


def la_rows(inputs: Inputs) -> list[dict]:
    """LA counts (SUBNATIONAL_COUNTS) and the shares built from them, every year with DfE data."""
    codes = sorted(inputs.las["la_code"])
    succession = {code: text for _, succs, text in bi.SUCCESSIONS for code in succs}
    rows = []
    for year, table in sorted(inputs.la_tables.items()):
        values = table.values.xs("la", level="level").reindex(codes)
        imputed = table.imputed.xs("la", level="level").reindex(codes).fillna(False).astype(bool)
        shared = table.shared.xs("la", level="level").reindex(codes).fillna(False).astype(bool)
        for metric in SUBNATIONAL_COUNTS:
            kind, _, column = COUNTS[metric]
            spec = inputs.specs[column]
            source_id, url = _dfe_source(spec)
            for code in codes:
                value = values.at[code, column]
                if pd.isna(value):
                    continue
                if imputed.at[code, column]:
                    note = (f"not published for this LA and year (suppressed or return unavailable): "
                            f"imputed as in la_inputs (la_inputs_2024.columns.md, rules 1-3)")
                elif shared.at[code, column]:
                    note = (f"published for the predecessor area, shared in proportion to 2024 children "
                            f"aged 0-17: {succession[code]}")
                else:
                    note = "DfE table (LA figures are not rounded)"
                flagged = bool(imputed.at[code, column] or shared.at[code, column])
                rows.append(row(metric, year, code, value, "",
                                tolerance(kind, value, la=True, imputed=flagged), source_id, url, note))
        for numerator, denominator in DFE_SHARES:
            num, den = COUNTS[numerator][2], COUNTS[denominator][2]
            spec = inputs.specs[num]
            source_id, url = _dfe_source(spec)
            clean = ~(imputed[num] | shared[num] | imputed[den] | shared[den])
            ratio = 100 * values[num] / values[den].where(values[den] > 0)
            for code, value in ratio[clean].dropna().items():
                rows.append(row(share_metric(numerator, denominator), year, code, value, "",
                                tolerance("share", value), source_id, url,
                                f"100 x {numerator} / {denominator}, from the LA's published DfE counts"))
    return rows


# ---------------------------------------------------------------------------------------------
# Assembly and writing
# ---------------------------------------------------------------------------------------------


def build_target_table(inputs: Inputs) -> pd.DataFrame:
    rows = (history_rows(inputs) + court_period_rows(inputs) + dfe_extra_counts(inputs) + dfe_share_rows(inputs)
            + la_rows(inputs))
    taken = {(r["metric"], r["year"], r["geography"]) for r in rows}
    rows += published_share_rows(inputs, taken)
    frame = pd.DataFrame(rows, columns=TARGET_COLUMNS)
    duplicated = frame.duplicated(["metric", "year", "period", "geography"], keep=False)
    if duplicated.any():
        raise ValueError(f"duplicate targets:\n{frame[duplicated]}")
    regions = set(inputs.las["region_name"])
    rank = frame["geography"].map(lambda g: 0 if g == "England" else (1 if g in regions else 2))
    frame = frame.assign(_rank=rank).sort_values(["_rank", "geography", "metric", "year", "period"])
    return frame.drop(columns="_rank").reset_index(drop=True)


def format_tolerance(value: float) -> str:
    return np.format_float_positional(round(float(value), 8), trim="-")


def write_targets(frame: pd.DataFrame, path: Path) -> None:
    text = frame.copy()
    text["published"] = text["published"].map(bi.format_number)
    text["tolerance"] = text["tolerance"].map(format_tolerance)
    # gzip with no file name or time in the header: the same bytes on every rebuild
    text.to_csv(path, index=False, lineterminator="\n",
                compression={"method": "gzip", "mtime": 0, "compresslevel": 9})


TARGETS_DOC = """\
# `targets.csv.gz`: calibration targets

Generated by `python -m caresim.population.targets` (also run by `python -m
caresim.population.build_inputs`) from `history.csv`, `published_figures.csv` and the DfE tables of
`shared/data/dfe` (do not edit by hand). One row per (metric, year, period, geography): the published
figures the model is held to, {first} to {last} (cohort re-entry rates at their own cohort years).

## Columns

| column | meaning |
|---|---|
| `target_id` | `T-<metric>-<year>-<geography>`, or `T-<metric>-<period>-<geography>` for a court figure (spaces become `_`); stable across rebuilds |
| `metric` | the model's metric name (`caresim.results.metrics`); a share is `A/B`, the percentage of `B` that are `A` (e.g. `looked_after.care_order/looked_after`); `A+C/B` sums A and C (DfE's headline "care orders" are `looked_after.care_order+looked_after.interim_care_order/looked_after`) |
| `year` | financial year ending 31 March `year` (stocks at 31 March `year`, flows April `year-1` to March `year`; cohort rates: the cohort's year; court figures with a `period`: the financial year containing the period's end) |
| `period` | court figures only (MoJ, Cafcass): the months they are published for, a run of whole quarters within a calendar year (a quarter `Jan-Mar 2021`, a half year `Apr-Sep 2023`, a calendar year `Jan-Dec 2021`); the model is compared over the same months (a count: the quarters' sum). Empty otherwise |
| `geography` | `England`, a region name (the 9 regions of `local_authorities.csv`) or an ONS LA code (the 153 LAs of 2024) |
| `published` | the published value (shares in percent, durations in weeks) |
| `qualifier` | `~` about, `>` over, `<` under (as published), empty for a plain figure |
| `kind` | `stock`, `flow`, `share` or `duration` |
| `unit` | unit of `published` (`children`, `referrals`, `enquiries`, `conferences`, `applications`, `percent`, `weeks`) |
| `tolerance` | for `stock` and `flow`: **relative** (0.01 = 1%); for `share`: **absolute percentage points**; for `duration`: **absolute weeks**; 0 with `>` or `<`: a one-sided bound (the model must be above / below `published`) |
| `source_id` | `published_figures.csv` id, or `dfe:<file>` for a DfE table of `shared/data/dfe` |
| `source_url` | where the figure is published (DfE tables: their Explore Education Statistics publication) |
| `note` | how the figure was obtained, rounding, imputation, what it replaced |

## Tolerance rules (as implemented in `caresim/population/targets.py`)

- DfE national and regional counts (`dfe:` rows and official DfE `published_figures` rows) are
  rounded to the nearest 10: relative tolerance `max(5 x n / value, 0.005)`, where `n` is the number
  of rounded figures added up (1 for most; e.g. 3 for `looked_after.residential`, 11 for
  `care_ceased.other` = total minus 10 categories). Official Cafcass counts get the same rule.
- LA counts from the DfE tables (not rounded): 0.005; 0.25 if the LA's value was not published and
  was imputed, or is a predecessor LA's figure shared out (the value is the one in `la_inputs`; see
  `la_inputs_2024.columns.md`).
- Figures from secondary sources (`published_figures` rows whose `source_title` is not a DfE, DCSF,
  DfES, Cafcass or MoJ publication: press and law-firm summaries, charities, research papers,
  parliamentary answers): counts 0.03, shares 2 percentage points.
- `~` qualifier: at least 0.10 (relative; for a share or duration, 10% of the value).
- `>` or `<`: tolerance 0, a one-sided bound; the qualifier says which side.
- MoJ figures for England and Wales used as England: at least 0.05 relative (for the MoJ shares
  and durations: 5% of the value, in percentage points or weeks), with a note.
- Shares: absolute 1 percentage point (2 for secondary sources). Durations: absolute 1 week.
- Cafcass's duration of its involvement in s31 proceedings (`cafcass.proceedings_mean_weeks`,
  compared with the model's mean weeks from issue to final order): at least 2 weeks, the
  difference from MoJ's time to first disposal over the same quarter (44 v 43 weeks in
  Jan-Mar 2021, 45 v 47 in Oct-Dec 2021).
- Where several rules apply the widest wins.

## Which figures

- England: every metric published, {first}-{last}: `history.csv` (DfE tables where they have the
  year, else the national series of `published_figures.csv`, one vintage: revised/latest values
  win over first-published ones, see `la_inputs_2024.columns.md`), plus CPP length-band counts and
  second-or-subsequent CPP starts from the DfE tables; `proceedings_issued` of `history.csv` is
  `proceedings_issued_cases` here (Cafcass s31 applications, England).
- Regions and LAs: the DfE-table counts `{subnational}` and the shares built from them. LA
  figures are on the 2024 LA geography and use the `la_inputs` rules for every year {first}-{last}
  (`la_inputs` files are written for 2019-2024 only). LA and regional shares are given only where
  both counts are published for that LA and year (not imputed or shared).
- Shares (`A/B`, percent) are computed from DfE counts where the tables have both (England,
  regions, LAs); otherwise the published percentage of `published_figures.csv` is used (England;
  kinship foster shares also for 2 regions and 5 LAs).
- Court durations and shares within 26 weeks (MoJ, England and Wales) and Cafcass's duration of
  involvement: every quarter or calendar year published, each its own target with its `period`
  (several may fall in one financial year: Jan-Mar 2021 and, in 2021-22, Oct-Dec 2021 and
  calendar 2021).
- Care applications for part of a year: Cafcass's s31 applications of April-September 2023
  (R257, England) are `proceedings_issued_cases` with period `Apr-Sep 2023` (year 2024), compared
  with the applications the model issues in those two quarters.
- Re-entry cohort rates (R318-R324) are `cohort.reentry_1y` / `cohort.reentry_5y`; the `note` says
  the cohort and definition (after return home, or after any exit).

## Left out

{left_out}

## Rows

{counts}
"""

LEFT_OUT_TEXT = """\
- Years outside {first}-{last} (they stay in `history.csv`): e.g. MoJ quarters of 2024-25
  (R279, R280, R289, R290; the calibration's runs end on 31 March 2024), `looked_after`
  before 2013.
- Looked-after figures of regions and LAs for 2019 and 2020: `la_inputs_2019/2020` derive them from
  2021 (nothing published), so they are not targets. England's published 2019 and 2020 figures are.
- `care_starts.taken_into_care` (in `history.csv`): not a model metric.
- Published figures of a different quantity from the model's metric: CPPs *ending* by length
  (R245-R249, the model's bands are of the stock), children subject to s47 enquiries (R219,
  R220: children, not enquiries), all public law cases (R259-R263), MoJ's new public law cases
  (R293, R294), adoption orders including step-parent adoptions (R298), the combined residential +
  supported share (R129-R132), SGO + CAO leavers combined (R088), age shares (R043-R049).
- MoJ's care and supervision applications of Jan-Mar 2021 (R292: 4,088 applications; R291: 6,862
  children), England and Wales: a count for England and Wales is larger than England's by
  Wales's applications, which the 5% rule for MoJ's durations and shares does not cover, and
  neither `shared/data` nor `published_figures.csv` gives England's share of England and Wales's
  care applications to scale them by.
- Cafcass's s31 applications of April 2019 to January 2020 (R258, 10,949; a secondary report):
  10 months are not whole quarters, and the model records the court's flows by quarter, not by
  month; scaling the figure to a year or to April-December would assume a monthly profile.
- Other ranges and partial periods that are not whole quarters within a calendar year
  (multi-year totals, a single month).
- `looked_after.kinship_foster` for regions and LAs as counts (no DfE table splits foster care by
  carer; only the published shares above exist).
- R321 (35% re-entry within 6 years): the same finding as R320 (kept), as quoted by a charity.
"""


def targets_doc(frame: pd.DataFrame) -> str:
    counts = frame.groupby("kind").size().to_dict()
    geo = frame["geography"].map(lambda g: "England" if g == "England" else ("LA" if re.fullmatch(r"E\d{8}", g)
                                                                              else "region"))
    by_geo = geo.value_counts().to_dict()
    lines = [f"{len(frame)} targets: " + ", ".join(f"{counts[k]} {k}" for k in sorted(counts)) + "; "
             + ", ".join(f"{by_geo.get(k, 0)} {k}" for k in ("England", "region", "LA")) + ".",
             "", "| metric | England years | regions | LAs |", "|---|---|---|---|"]
    for metric, group in frame.groupby("metric", sort=True):
        gl = geo[group.index]
        years = sorted(group.loc[gl == "England", "year"].unique())
        lines.append(f"| `{metric}` | {_years(years)} | {int((gl == 'region').sum())} | {int((gl == 'LA').sum())} |")
    return TARGETS_DOC.format(first=FIRST_YEAR, last=LAST_YEAR,
                              subnational="`, `".join(SUBNATIONAL_COUNTS),
                              left_out=LEFT_OUT_TEXT.format(first=FIRST_YEAR, last=LAST_YEAR).rstrip("\n"),
                              counts="\n".join(lines))


def _years(years: list[int]) -> str:
    """Compact year list: 2013-2016, 2019."""
    if not years:
        return ""
    parts, start, prev = [], years[0], years[0]
    for year in [*years[1:], None]:
        if year is not None and year == prev + 1:
            prev = year
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if year is not None:
            start = prev = year
    return ", ".join(parts)


def build_targets(shared: Path, out: Path) -> dict[str, int]:
    """Write ``targets.csv.gz`` and ``targets.md`` into ``out`` (which holds history.csv and
    published_figures.csv); returns row counts."""
    frame = build_target_table(load_inputs(shared, out))
    write_targets(frame, out / "targets.csv.gz")
    (out / "targets.md").write_text(targets_doc(frame), encoding="utf-8")
    return {"targets.csv.gz": len(frame)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=bi.DEFAULT_SHARED, help="shared data folder")
    parser.add_argument("--out", type=Path, default=bi.DEFAULT_OUT,
                        help="calibration folder (reads history.csv, writes targets.csv.gz)")
    args = parser.parse_args(argv)
    for name, rows in build_targets(args.shared, args.out).items():
        print(f"{args.out / name}: {rows} rows")


if __name__ == "__main__":
    main()
