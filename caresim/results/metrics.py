"""The metric registry: every metric name caresim writes, with its kind, unit and definition.

Conventions shared by every metric (DESIGN.md, "Output contract"):

- `year` is the financial year ending 31 March of that year. A *stock* is the number of
  children in a state at 31 March `year`; a *flow* counts events from 1 April `year-1`
  to 31 March `year`; a *cost* is GBP spent over the same financial year, at the prices
  of the scenario's `costs.price_base` year.
- Values are scaled up to real children (a run at `--scale 0.1` is multiplied by 10).
- Stocks, flows, costs and court *components* are additive across local authorities, so
  regions and England are sums of their LAs. *Ratios* are not: they are recomputed from
  their components at every geography (`caresim.results.summary.add_ratios`).

Families of metrics (`looked_after.<placement>`, `looked_after.<legal_status>`,
`care_ceased.<reason>`, `cost.placements.<placement>`) are expanded into `METRICS`;
`metric_info` also accepts the template names themselves.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from caresim.errors import CaresimError
from caresim.scenario.model import AGE_BANDS, LEGAL_STATUSES, PLACEMENTS

KINDS: tuple[str, ...] = ("stock", "flow", "component", "ratio", "cost")

#: Quarters of the financial year, in order: the court's issues and completions are also
#: recorded by quarter (`proceedings_issued_cases.<quarter>`,
#: `proceedings_completed_cases.<quarter>`; `year` is still the financial year), so that
#: figures published for a run of quarters (MoJ, Cafcass: `Jan-Mar 2021`, `Apr-Sep 2023`,
#: `Jan-Dec 2021`) are compared over the same months (caresim.analysis.targets).
QUARTERS: tuple[str, ...] = ("apr_jun", "jul_sep", "oct_dec", "jan_mar")
_QUARTER_TEXT = {"apr_jun": "April to June", "jul_sep": "July to September",
                 "oct_dec": "October to December", "jan_mar": "January to March"}

CEASE_REASONS: tuple[str, ...] = (
    "returned_home",
    "special_guardianship",
    "child_arrangements",
    "adopted",
    "left_care",
    "other",
)

#: Age bands of care starts: the scenario's `AGE_BANDS`, which are DfE's "Age on starting".
START_AGE_BANDS: tuple[str, ...] = tuple(b.replace("-", "_") for b in AGE_BANDS)
_START_AGE_TEXT: Mapping[str, str] = MappingProxyType(
    {"under_1": "under 1", "1_4": "1 to 4", "5_9": "5 to 9", "10_15": "10 to 15", "16_17": "16 or 17"})

_PLACEMENT_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "kinship_foster": "foster care with a relative or friend (kinship, connected-person carers)",
        "foster_inhouse": "foster care with the local authority's own foster carers",
        "foster_agency": "foster care with an independent fostering agency",
        "residential": "a children's home or other residential setting",
        "supported": "supported accommodation (semi-independent living, ages 16 and 17)",
        "placed_with_parents": "at home with parents or others with parental responsibility",
        "placed_for_adoption": "with prospective adopters",
    }
)
_LEGAL_STATUS_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "s20": "accommodated by agreement under section 20 of the Children Act 1989",
        "interim_care_order": "subject to an interim care order while care proceedings continue",
        "care_order": "subject to a full care order (section 31)",
        "placement_order": "subject to a placement order authorising placement for adoption",
    }
)
_REASON_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "returned_home": "returned home to parents or relatives without a permanence order",
        "special_guardianship": "left care under a special guardianship order",
        "child_arrangements": "left care under a child arrangements order",
        "adopted": "were adopted",
        "left_care": "left care on reaching 18",
        "other": "left care for any other reason",
    }
)


@dataclass(frozen=True)
class MetricInfo:
    """One metric: its stable dotted `name`, `kind` (one of `KINDS`), `unit` and a
    one-sentence plain-English `definition`."""

    name: str
    kind: str
    unit: str
    definition: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: kind {self.kind!r} is not one of {KINDS}")


@dataclass(frozen=True)
class MetricFamily:
    """A family of metrics `<prefix><member>`, e.g. `looked_after.<placement>`.

    `definition` is a template with `{text}` (the member's description) and `{member}`."""

    template: str
    prefix: str
    placeholder: str
    members: tuple[str, ...]
    texts: Mapping[str, str]
    kind: str
    unit: str
    definition: str
    generic: str

    def info(self, member: str) -> MetricInfo:
        """The `MetricInfo` of one member of the family."""
        text = self.texts.get(member, member.replace("_", " "))
        return MetricInfo(
            self.prefix + member,
            self.kind,
            self.unit,
            self.definition.format(text=text, member=member),
        )

    def template_info(self) -> MetricInfo:
        """The `MetricInfo` of the family as a whole (name is the template)."""
        return MetricInfo(self.template, self.kind, self.unit, self.generic)


_C = "children"


def _by_quarter(metric: str, unit: str, definition: str) -> MetricFamily:
    """`<metric>.<quarter>`: a court flow by quarter of the financial year (QUARTERS)."""
    return MetricFamily(f"{metric}.<quarter>", f"{metric}.", "<quarter>", QUARTERS, _QUARTER_TEXT,
                        "component", unit, definition, f"{metric} by quarter of the financial year.")


# In display order; a `MetricFamily` stands for all of its members.
_ENTRIES: tuple[MetricInfo | MetricFamily, ...] = (
    # ---- stocks at 31 March ----
    MetricInfo("looked_after", "stock", _C,
               "Children looked after by the local authority at 31 March, in any placement "
               "and under any legal status, including unaccompanied asylum-seeking children."),
    MetricFamily("looked_after.<placement>", "looked_after.", "<placement>", PLACEMENTS,
                 _PLACEMENT_TEXT, "stock", _C,
                 "Children looked after at 31 March who were placed in {text}.",
                 "Children looked after at 31 March by placement type."),
    MetricFamily("looked_after.<legal_status>", "looked_after.", "<legal_status>",
                 LEGAL_STATUSES, _LEGAL_STATUS_TEXT, "stock", _C,
                 "Children looked after at 31 March who were {text}.",
                 "Children looked after at 31 March by legal status."),
    MetricFamily("looked_after.age_<band>", "looked_after.age_", "<band>", START_AGE_BANDS,
                 _START_AGE_TEXT, "stock", _C,
                 "Children looked after at 31 March aged {text} (DfE's age groups; 16 or 17 is "
                 "DfE's 16 and over).",
                 "Children looked after at 31 March by age (DfE's age groups)."),
    MetricInfo("looked_after.uasc", "stock", _C,
               "Unaccompanied asylum-seeking children looked after at 31 March."),
    MetricInfo("looked_after.foster", "stock", _C,
               "Children looked after at 31 March in any foster placement (kinship, in-house "
               "or agency), as DfE counts foster placements."),
    MetricInfo("child_in_need", "stock", _C,
               "Children in need at 31 March on the DfE definition: every child with an open "
               "episode of need (being assessed after referral, on a child in need plan, under "
               "a section 47 enquiry, on a child protection plan, in pre-proceedings, in care "
               "proceedings or looked after)."),
    MetricInfo("child_in_need.plan", "stock", _C,
               "Children on a section 17 child in need plan at 31 March (not on a protection "
               "plan, in pre-proceedings, in proceedings or looked after)."),
    MetricInfo("child_protection_plan", "stock", _C,
               "Children subject to a child protection plan at 31 March."),
    MetricFamily("child_protection_plan.<length>", "child_protection_plan.", "<length>",
                 ("le3m", "3to6m", "6to12m", "1to2y", "2yplus"),
                 {"le3m": "3 months or less", "3to6m": "over 3 and up to 6 months",
                  "6to12m": "over 6 months and under a year", "1to2y": "1 to 2 years",
                  "2yplus": "2 years or more"},
                 "stock", _C,
                 "Children on a child protection plan at 31 March that had lasted {text}.",
                 "Children on a child protection plan at 31 March by time on the plan (DfE bands)."),
    MetricInfo("pre_proceedings", "stock", _C,
               "Children in pre-proceedings under the Public Law Outline at 31 March (letter "
               "before proceedings sent, no care application issued yet)."),
    MetricInfo("in_proceedings", "stock", _C,
               "Children named in section 31 care proceedings that were issued and not yet "
               "concluded at 31 March, whether living at home or in interim care."),
    MetricInfo("early_help", "stock", _C,
               "Children receiving non-statutory early help at 31 March."),
    MetricInfo("returned_home", "stock", _C,
               "Children who had left care to return home and were still followed as at risk "
               "of re-entry at 31 March."),
    MetricInfo("special_guardianship", "stock", _C,
               "Children under 18 living under a special guardianship order at 31 March (not "
               "counted as looked after)."),
    MetricInfo("child_arrangements", "stock", _C,
               "Children under 18 living under a child arrangements order made in care "
               "proceedings at 31 March (not counted as looked after)."),
    # ---- flows over the financial year ----
    MetricInfo("referrals", "flow", "referrals",
               "Referrals to children's social care received in the year (a child referred "
               "twice counts twice)."),
    MetricInfo("rereferrals", "flow", "referrals",
               "Referrals in the year of a child referred before within the previous 12 "
               "months (DfE re-referral definition)."),
    MetricInfo("s47_enquiries", "flow", "enquiries",
               "Section 47 child protection enquiries started in the year."),
    MetricInfo("cpp_starts", "flow", "plans",
               "Child protection plans started in the year."),
    MetricInfo("cpp_starts.subsequent", "flow", "plans",
               "Child protection plans started in the year for a child who had been on a plan "
               "before (DfE's second or subsequent plans)."),
    MetricInfo("pre_proceedings_starts", "flow", _C,
               "Children entering pre-proceedings under the Public Law Outline in the year."),
    MetricInfo("proceedings_issued", "flow", _C,
               "Children named in section 31 care applications issued in the year."),
    MetricInfo("proceedings_issued_cases", "flow", "cases",
               "Section 31 care applications issued in the year, counted by family (siblings "
               "share one application)."),
    MetricInfo("care_starts", "flow", _C,
               "Children starting a period of care in the year, including re-entries and "
               "unaccompanied asylum-seeking children (each start counted)."),
    MetricInfo("care_starts.uasc", "flow", _C,
               "Unaccompanied asylum-seeking children starting to be looked after in the year."),
    MetricFamily("care_starts.<legal_status>", "care_starts.", "<legal_status>",
                 LEGAL_STATUSES, _LEGAL_STATUS_TEXT, "flow", _C,
                 "Children starting a period of care in the year who were {text} on starting "
                 "(s20 includes the emergency routes, police protection and EPOs, which the "
                 "model does not separate; care and placement orders are starts at a final "
                 "order of a child not in care during the proceedings).",
                 "Care starts in the year by legal status on starting."),
    MetricFamily("care_starts.age_<band>", "care_starts.age_", "<band>", START_AGE_BANDS,
                 _START_AGE_TEXT, "flow", _C,
                 "Children starting a period of care in the year aged {text} (DfE's age on starting).",
                 "Care starts in the year by age on starting (DfE's bands)."),
    MetricInfo("care_ceased", "flow", _C,
               "Children ceasing to be looked after in the year, for any reason (each "
               "period of care that ends counted)."),
    MetricFamily("care_ceased.<reason>", "care_ceased.", "<reason>", CEASE_REASONS,
                 _REASON_TEXT, "flow", _C,
                 "Children ceasing to be looked after in the year who {text}.",
                 "Children ceasing to be looked after in the year by reason."),
    MetricFamily("care_ceased.age_<band>", "care_ceased.age_", "<band>", START_AGE_BANDS,
                 _START_AGE_TEXT, "flow", _C,
                 "Children ceasing to be looked after in the year aged {text} (DfE's age on "
                 "ceasing; those aged 18 leave to care_ceased.left_care).",
                 "Care leavers in the year by age on ceasing, under 18 (DfE's bands, 16 and 17 together)."),
    MetricInfo("care_ceased.uasc", "flow", _C,
               "Unaccompanied asylum-seeking children ceasing to be looked after in the year, "
               "for any reason."),
    MetricInfo("care_reentries", "flow", _C,
               "Care starts in the year by children who had been looked after before."),
    MetricInfo("placement_moves", "flow", _C,
               "Moves between placement types during a stay in care in the year: steps at a "
               "given age (placements.steps) and returns from a fallback placement when a place "
               "of the preferred type frees (placements.return_from_fallback)."),
    MetricInfo("sgo_granted", "flow", _C,
               "Special guardianship orders granted in the year, from care or at the end of "
               "care proceedings (children)."),
    MetricInfo("adoptions", "flow", _C,
               "Children adopted from care in the year (adoption order granted)."),
    MetricInfo("sgo_breakdowns", "flow", _C,
               "Special guardianship arrangements that broke down in the year, the child "
               "being referred again or returning to care."),
    # ---- court components (additive; the ratios and the figures of a period derive from them) ----
    MetricInfo("proceedings_completed_cases", "component", "cases",
               "Section 31 care cases (families) that reached a final order in the year."),
    MetricInfo("proceedings_weeks_total", "component", "case-weeks",
               "Sum, over care cases completed in the year, of the weeks from issue to final "
               "order."),
    MetricInfo("proceedings_within_26_weeks_cases", "component", "cases",
               "Care cases completed in the year within 26 weeks of issue."),
    _by_quarter("proceedings_issued", _C,
                "Children named in section 31 care applications issued in {text} of the financial year."),
    _by_quarter("proceedings_issued_cases", "cases",
                "Section 31 care applications (families) issued in {text} of the financial year."),
    _by_quarter("proceedings_completed_cases", "cases",
                "Care cases that reached a final order in {text} of the financial year."),
    _by_quarter("proceedings_weeks_total", "case-weeks",
                "proceedings_weeks_total over the cases completed in {text} of the financial year."),
    _by_quarter("proceedings_within_26_weeks_cases", "cases",
                "Care cases completed in {text} of the financial year within 26 weeks of issue."),
    # ---- court ratios (not additive) ----
    MetricInfo("proceedings_mean_weeks", "ratio", "weeks",
               "Mean weeks from issue to final order of the care cases completed in the year "
               "(proceedings_weeks_total / proceedings_completed_cases)."),
    MetricInfo("proceedings_within_26_weeks", "ratio", "percent",
               "Percentage of care cases completed in the year that finished within 26 weeks "
               "of issue."),
    # ---- money ----
    MetricFamily("cost.placements.<placement>", "cost.placements.", "<placement>", PLACEMENTS,
                 _PLACEMENT_TEXT, "cost", "GBP",
                 "Spending in the year on looked-after placements in {text}, at the "
                 "scenario's price base.",
                 "Spending in the year on looked-after placements by placement type, at the "
                 "scenario's price base."),
    MetricInfo("cost.placements", "cost", "GBP",
               "Spending in the year on all looked-after placements, at the scenario's price "
               "base."),
    MetricInfo("cost.court", "cost", "GBP",
               "Cost in the year of care proceedings at the unit costs set in the scenario, "
               "at the scenario's price base."),
    MetricInfo("cost.intervention.<name>", "cost", "GBP",
               "Spending in the year on intervention <name> (a scenario's `interventions` "
               "key): its unit cost per child or family served, at the scenario's price base."),
    MetricInfo("cost.intervention", "cost", "GBP",
               "Spending in the year on all interventions, at the scenario's price base."),
    MetricInfo("cost.total", "cost", "GBP",
               "Sum of all cost components in the year (placements, court, interventions), "
               "at the scenario's price base."),
    # ---- interventions (one set per `interventions` key of the scenario) ----
    MetricInfo("intervention.<name>.eligible", "flow", _C,
               "Children reaching the intervention's stage in the year in an LA offering it "
               "who are eligible (age, care status, family characteristic; in a virtual "
               "trial, those randomised to it)."),
    MetricInfo("intervention.<name>.started", "flow", _C,
               "Children for whom the intervention started in the year (took it up and, "
               "where places are limited, got one)."),
    MetricInfo("intervention.<name>.families", "flow", "families",
               "Families (siblings together) for whom the intervention started in the year."),
    MetricInfo("intervention.<name>.missed", "flow", _C,
               "Children who took the intervention up in the year but found no place within "
               "the longest wait (or left the stage while waiting)."),
)

#: metrics named after a scenario's interventions: `<name>` stands for the key
_NAMED = re.compile(r"^(cost\.intervention|intervention)\.([a-z0-9_]+)(\.(eligible|started|families|missed))?$")


def _expand(entries: tuple[MetricInfo | MetricFamily, ...]) -> dict[str, MetricInfo]:
    out: dict[str, MetricInfo] = {}
    for entry in entries:
        infos = [entry.info(m) for m in entry.members] if isinstance(entry, MetricFamily) else [entry]
        for info in infos:
            if info.name in out:
                raise ValueError(f"metric {info.name!r} is defined twice")
            out[info.name] = info
    return out


#: Every concrete metric name -> its `MetricInfo` (read-only).
METRICS: Mapping[str, MetricInfo] = MappingProxyType(_expand(_ENTRIES))

#: Family template name -> `MetricFamily` (read-only).
FAMILIES: Mapping[str, MetricFamily] = MappingProxyType(
    {e.template: e for e in _ENTRIES if isinstance(e, MetricFamily)}
)

#: Metrics that are not additive across geographies and are derived from components.
RATIO_METRICS: frozenset[str] = frozenset(n for n, i in METRICS.items() if i.kind == "ratio")


def is_additive(name: str) -> bool:
    """True unless `name` is a ratio metric. Unknown names count as additive, because
    the engine's record contract is that every record metric is additive across LAs."""
    return name not in RATIO_METRICS


def metric_info(name: str) -> MetricInfo:
    """The `MetricInfo` of a metric name, including family members such as
    `looked_after.residential` and the templates themselves (`looked_after.<placement>`).

    Raises `CaresimError` (the name is user input, e.g. a `--metric` option) if unknown."""
    if name in METRICS:
        return METRICS[name]
    if name in FAMILIES:
        return FAMILIES[name].template_info()
    m = _NAMED.match(name)
    if m and (m.group(1) == "cost.intervention") == (m.group(3) is None):
        template = METRICS[f"{m.group(1)}.<name>{m.group(3) or ''}"]
        return MetricInfo(name, template.kind, template.unit,
                          template.definition.replace("<name>", m.group(2)))
    close = difflib.get_close_matches(name, [*METRICS, *FAMILIES], n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise CaresimError(
        f"unknown metric {name!r}.{hint} The metrics are listed in the README (Metrics)."
    )


def metrics_markdown_table() -> str:
    """A Markdown table of every metric (families collapsed to one row), followed by the
    members of each family: the README's metric reference."""
    lines = ["| metric | kind | unit | definition |", "|---|---|---|---|"]
    for entry in _ENTRIES:
        info = entry.template_info() if isinstance(entry, MetricFamily) else entry
        definition = info.definition.replace("|", "\\|")
        lines.append(f"| `{info.name}` | {info.kind} | {info.unit} | {definition} |")
    lines.append("")
    seen: set[str] = set()
    for family in FAMILIES.values():
        if family.placeholder in seen:
            continue
        seen.add(family.placeholder)
        members = ", ".join(f"`{m}`" for m in family.members)
        lines.append(f"- `{family.placeholder}` is one of {members}.")
    return "\n".join(lines) + "\n"
