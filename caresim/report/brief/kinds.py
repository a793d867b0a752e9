"""One builder per kind of output folder: what question it answers, its headline numbers,
and the sections that apply (DESIGN: report reads only results, so everything here comes
from the folder's CSVs, figures and manifest)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from caresim.report.brief.common import (
    ENGLAND,
    Folder,
    assumptions_table,
    calibration_section,
    closing_sections,
    est,
    fy,
    kind_of,
    label,
    methods_section,
    provenance,
    replication_note,
    row_of,
    series_alt,
    unit_of,
    when,
)
from caresim.report.brief.document import Brief, Bullets, Headline, Section, Table
from caresim.report.fitreport import fit_checks, national_checks
from caresim.report.numbers import as_published, estimate
from caresim.report.sensitivity import file_stem

RUN_HEADLINES = ("looked_after", "care_starts", "child_in_need", "child_protection_plan",
                 "proceedings_issued", "cost.total")
RUN_FIGURES = ("looked_after", "care_starts", "child_in_need", "cost_total")
COST_METRICS = ("cost.placements", "cost.court", "cost.intervention", "cost.total")
COMPARE_HEADLINES = ("cumulative.care_starts", "looked_after", "cumulative.proceedings_issued",
                     "cost.total", "cumulative.cost.total.discounted")
TABLE_METRICS = ("looked_after", "care_starts", "child_in_need", "child_protection_plan",
                 "proceedings_issued", "special_guardianship", "proceedings_mean_weeks", "cost.total")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _years_shown(years: list[int]) -> list[int]:
    """First, middle and last year (fewer when the run is short)."""
    picks = [years[0], years[len(years) // 2], years[-1]]
    return sorted(set(picks))


def _area(m: dict) -> str:
    """`England`, or what the `England` rows are when only some LAs were simulated."""
    las = (m.get("geography") or {}).get("las")
    if las is None or las >= 150:
        return "England"
    return f"England rows: the sum of the {las} local authorities simulated"


def _scope(m: dict, scenario: dict) -> str:
    las = (m.get("geography") or {}).get("las")
    where = "England" if _area(m) == "England" else f"{las} local authorities of England"
    return (f"{where}, from {scenario.get('start')} for {scenario.get('years')} years; "
            f"{m.get('replications')} replications at {m.get('scale'):g} of children "
            "(counts and costs scaled back up)")


def _level_cell(df: pd.DataFrame, metric: str, year: int, **where) -> str:
    r = row_of(df, metric, year, ENGLAND, **where)
    return "" if r is None else est(r, metric, short=True).text.replace("90% interval ", "")


def _diff_cell(df: pd.DataFrame, metric: str, year: int) -> str:
    r = row_of(df, metric, year)
    return "" if r is None else est(r, metric, signed=True, difference=True, short=True).text.replace("90% interval ", "")


# --- run ----------------------------------------------------------------------------------

def run_brief(f: Folder) -> Brief:
    m = f.manifest
    sc = m["scenario"]
    name = sc["name"]
    s = f.table("summary.csv")
    years = f.years
    last = years[-1]
    heads = []
    for metric in RUN_HEADLINES:
        r = row_of(s, metric, last)
        if r is not None:
            heads.append(Headline(f"{label(metric)} {when(metric, last)}", est(r, metric),
                                  "summary.csv", metric, last, ENGLAND, scenario=name))
    price = sc.get("costs", {}).get("price_base", "")
    projection = Section("Projection")
    for stem in RUN_FIGURES:
        metric = stem.replace("_", ".") if stem.startswith("cost") else stem
        projection.add(f.figure(
            f"figures/fan_{stem}.png",
            "Fan chart. " + series_alt(s, metric, label(metric)) +
            " Published figures for earlier years are shown as grey points where they exist.",
            f"{label(metric)}, England: mean and 90% interval across replications; published "
            "figures in grey."))
    shown = _years_shown(years)
    projection.add(Table(
        ["measure", *map(str, shown)],
        [[label(mm), *[_level_cell(s, mm, y) for y in shown]] for mm in TABLE_METRICS
         if row_of(s, mm, last) is not None],
        caption="England, mean (90% interval). Stocks at 31 March of the year; flows and costs "
                f"in the financial year ending 31 March; costs at {price} prices.",
        numeric=frozenset(range(1, len(shown) + 1))))
    sections = [projection, _cost_section(s, years, price, None), _first_year_section(f),
                *closing_sections(m, "run", sc, f"scenario {name}")]
    return Brief(
        kind="run",
        title=f"{name}: projection to 31 March {last}",
        question=(f"What does the {name} scenario project for children's social care and the "
                  f"family courts to 31 March {last}, and how sure can we be?"),
        what=[sc.get("description", "").strip() or f"Scenario {name}.", "Scope: " + _scope(m, sc) + ".",
              "Uncertainty: " + str(m.get("uncertainty", "stochastic")) + "."],
        headlines=heads,
        headline_note=f"{_area(m)}. {replication_note(m.get('replications'))}",
        sections=sections,
        provenance=provenance(f),
        warnings=list(m.get("warnings", [])),
    )


def _cost_section(s: pd.DataFrame, years: list[int], price: str, d: pd.DataFrame | None) -> Section:
    """Cost components in the first, middle and last year: levels (a run) or the paired
    difference B minus A (a comparison, `d`)."""
    shown = _years_shown(years)
    table = s if d is None else d
    named = sorted({x for x in s["metric"].unique()
                    if x.startswith("cost.intervention.") and not x.endswith(".discounted")})
    order = [*COST_METRICS[:2], *named, *COST_METRICS[2:]]
    metrics = [c for c in order if row_of(table, c, years[-1]) is not None]
    cell = _level_cell if d is None else _diff_cell
    caption = ("England, mean (90% interval), {price} prices, not discounted." if d is None else
               "England, paired difference B minus A, mean (90% interval), {price} prices, not "
               "discounted. A negative total is a saving.")
    return Section("Costs").add(Table(
        ["cost" if d is None else "cost, B minus A", *map(fy, shown)],
        [[_cost_label(c), *[cell(table, c, y) for y in shown]] for c in metrics],
        caption=caption.format(price=price), numeric=frozenset(range(1, len(shown) + 1))))


def _cost_label(metric: str) -> str:
    if metric.startswith("cost.intervention."):
        return f"Intervention {metric.split('.')[-1]}"
    return label(metric)


def _first_year_section(f: Folder) -> Section | None:
    if not f.has("first_year_check.csv"):
        return None
    if _area(f.manifest) != "England":
        return Section("Model check").add(
            "The first-year check against England's published figures is not shown: this run "
            "simulated only some local authorities, so its England rows are not comparable.")
    t = f.table("first_year_check.csv")
    rows = []
    for r in t.itertuples():
        e = estimate(r.simulated_mean, r.simulated_p05, r.simulated_p95, unit=unit_of(r.metric))
        rows.append([label(r.metric), f"{estimate(r.published, unit=unit_of(r.metric)).point_text} "
                     f"({fy(int(r.published_year))}, {r.source_id})",
                     f"{e.point_text} ({e.interval_text})", f"{100 * r.rel_diff:+.0f}%".replace("-", "\u2212"),
                     "yes" if r.within_tolerance else "**no**"])
    return Section("Model check").add(
        "The first simulated year against the latest published year (England): the model "
        "starts from the published state, so a large gap here would mean its rates do not "
        "carry the published flows forward.",
        Table(["measure", "published", "simulated, first year (90% interval)", "difference",
               "within 15%"], rows, numeric=frozenset({1, 2, 3})))


# --- compare ------------------------------------------------------------------------------

def compare_brief(f: Folder) -> Brief:
    m = f.manifest
    a, b = m["scenarios"]["A"], m["scenarios"]["B"]
    la, lb = a["label"], b["label"]
    d = f.table("difference.csv")
    s = f.table("summary.csv")
    years = f.years
    first, last = years[0], years[-1]
    heads = []
    for metric in COMPARE_HEADLINES:
        r = row_of(d, metric, last)
        if r is None:
            continue
        text = label(metric)
        if metric == "cumulative.cost.total.discounted":
            text = f"Net present cost (discounted at {100 * m.get('discount_rate', 0.035):g}% a year)"
        heads.append(Headline(f"Change in {text[0].lower() + text[1:]} {when(metric, last, first)}",
                              est(r, metric, signed=True, difference=True), "difference.csv",
                              metric, last, ENGLAND))
    levels = Section("The two scenarios").add(
        Bullets([f"A, {la}: {a['scenario'].get('description', '').strip()}",
                 f"B, {lb}: {b['scenario'].get('description', '').strip()}"]),
        Table(["measure", f"A: {la}", f"B: {lb}", "B minus A"],
              [[f"{label(mm)} {when(mm, last)}", _level_cell(s, mm, last, scenario=la),
                _level_cell(s, mm, last, scenario=lb), _diff_cell(d, mm, last)]
               for mm in TABLE_METRICS if row_of(d, mm, last) is not None],
              caption=f"{_area(m)}; mean (90% interval). The difference is paired: B minus A in each "
                      "replication (same children and random numbers), then summarised, so its "
                      "interval is narrower than the two scenarios' intervals suggest.",
              numeric=frozenset({1, 2, 3})))
    over_time = Section("Differences over time")
    for metric, file in (("cumulative.care_starts", "difference_cumulative_care_starts.png"),
                         ("looked_after", "compare_looked_after.png"),
                         ("care_starts", "compare_care_starts.png"),
                         ("cumulative.cost.total", "difference_cumulative_cost_total.png")):
        if file.startswith("difference"):
            alt = "Difference chart. " + series_alt(d, metric, f"{label(metric)}, {lb} minus {la}",
                                                    difference=True)
            cap = f"{label(metric)}: {lb} minus {la}, mean and 90% interval of the paired difference."
        else:
            alt = ("Overlaid fan charts. " + series_alt(s, metric, f"{label(metric)} under {la}", scenario=la)
                   + " " + series_alt(s, metric, f"Under {lb}", scenario=lb))
            cap = f"{label(metric)}, England: {la} (blue) and {lb} (orange), mean and 90% interval."
        over_time.add(f.figure(f"figures/{file}", alt, cap))
    shown = _years_shown(years)
    over_time.add(Table(["B minus A", *map(str, shown)],
                        [[f"{label(mm)}", *[_diff_cell(d, mm, y) for y in shown]]
                         for mm in ("care_starts", "cumulative.care_starts", "looked_after",
                                    "proceedings_issued", "cost.total")
                         if row_of(d, mm, last) is not None],
                        caption="England, paired difference, mean (90% interval); stocks at 31 "
                                "March, flows and costs in the financial year ending 31 March.",
                        numeric=frozenset(range(1, len(shown) + 1))))
    price = m.get("price_base", "")
    costs = _cost_section(s, years, price, d)
    npv = row_of(d, "cumulative.cost.total.discounted", last)
    if npv is not None:
        costs.add(f"Discounted at {100 * m.get('discount_rate', 0.035):g}% a year from {fy(m.get('discount_first_year', first))} "
                  f"({m.get('discount_rate_source', 'the scenario')}), the net present cost from "
                  f"{fy(first)} to {fy(last)} is "
                  f"{est(npv, 'cost.total', signed=True).text}.")
    sections = [levels, over_time, costs, _delivery_section(s, lb, years)]
    assumptions = Section("Assumptions").add(*assumptions_table(b.get("assumptions"), f"B ({lb})"))
    if (a.get("assumptions") or {}).get("rows"):
        assumptions.add(*assumptions_table(a.get("assumptions"), f"A ({la})"))
    sections += [assumptions, calibration_section(a.get("calibration")),
                 methods_section(m, "compare", b["scenario"])]
    return Brief(
        kind="compare",
        title=f"{lb} compared with {la}",
        question=(f"What difference would {lb} make, compared with {la}, to children in care, "
                  f"in court and to cost, up to 31 March {last}?"),
        what=[f"A (the comparator): {la}. B (the change): {lb}.",
              "Scope: " + _scope(m, b["scenario"]) + ".",
              _sentence(f"{m.get('crn_note', '')}; {m.get('effects', '')}.")],
        headlines=heads,
        headline_note=(f"{_area(m)}; B minus A. {replication_note(m.get('replications'))} Negative "
                       "numbers are fewer children, or savings."),
        sections=[x for x in sections if x is not None],
        provenance=provenance(f),
        warnings=list(m.get("warnings", [])),
    )


def _delivery_section(s: pd.DataFrame, scenario: str, years: list[int]) -> Section | None:
    names = sorted({x.split(".")[1] for x in s["metric"].unique()
                    if x.startswith("intervention.") and x.endswith(".started")})
    if not names:
        return None
    shown = _years_shown(years)
    rows = []
    for n in names:
        for part, words in (("eligible", "eligible"), ("started", "started"), ("missed", "missed for want of a place")):
            metric = f"intervention.{n}.{part}"
            cells = []
            for y in shown:
                r = row_of(s, metric, y, scenario=scenario)
                cells.append("" if r is None else estimate(float(r["mean"]), float(r["p05"]), float(r["p95"]),
                                                           unit="children").text.replace("90% interval ", ""))
            if any(cells):
                rows.append([f"{n}: children {words}", *cells])
    return Section("Intervention delivery").add(Table(
        ["children in the year", *map(fy, shown)], rows,
        caption=f"England, {scenario}, mean (90% interval).", numeric=frozenset(range(1, len(shown) + 1))))


BUILDERS = {"run": run_brief, "compare": compare_brief}


# --- sweep --------------------------------------------------------------------------------

#: per method: the index a parameter is ranked by, its interval column, and how to say it
RANKING = {"sobol": ("ST", "ST_conf", "total-order Sobol' index"),
           "fast": ("ST", "ST_conf", "total-order FAST index"),
           "delta": ("delta", "delta_conf", "delta moment-independent index"),
           "morris": ("mu_star", "mu_star_conf", "Morris mu* (mean absolute elementary effect)")}


def _output_words(name: str, definition: dict) -> tuple[str, str]:
    """(`Change in children starting care in 2025-26`, unit) for a sweep output name."""
    metric, (y0, y1) = definition["metric"], definition["years"]
    period = f"at 31 March {y1}" if kind_of(metric) == "stock" and y0 == y1 else (
        f"in {fy(y0)}" if y0 == y1 else f"{fy(y0)} to {fy(y1)}, total")
    text = f"{label(metric)} {period}"
    unit = definition.get("unit") or unit_of(metric)
    if definition.get("difference"):
        text = "Change in " + text[0].lower() + text[1:]
        unit = "points" if unit == "percent" else unit
    return text, unit


def _driver_sentence(rows: pd.DataFrame, method: str, words: str, noise: float | None) -> str:
    col, conf, name = RANKING[method]
    r = rows.sort_values(col, ascending=False, kind="mergesort")
    if r.empty:
        return f"No indices were computed for {words}."
    top = r.iloc[0]
    text = (f"{words}: the largest driver is **{top.parameter}** ({name} {top[col]:.2f}"
            + (f", 95% confidence interval ±{top[conf]:.2f}" if conf in r and pd.notna(top[conf]) else "")
            + ")")
    if len(r) > 1:
        nxt = r.iloc[1]
        text += f", then {nxt.parameter} ({nxt[col]:.2f})"
    text += "."
    if method in ("sobol", "fast") and pd.notna(top[col]):
        text += f" A total-order index of {top[col]:.2f} means about {100 * min(max(top[col], 0), 1):.0f}% of the output's variance involves it."
    if conf in r and pd.notna(top[conf]):
        wide = method != "morris" and top[conf] > 0.1  # the sweep's own warning threshold
        overlap = len(r) > 1 and top[col] - top[conf] <= r.iloc[1][col] + r.iloc[1][conf]
        if wide or overlap:
            text += (" The leading indices' 95% confidence intervals "
                     + ("overlap" if overlap else "are wider than ±0.1")
                     + ": the ranking is not yet reliable; rerun with more --samples.")
    if noise is not None and pd.notna(noise):
        text += (f" Simulation noise is about {100 * min(noise, 1):.0f}% of the variance across "
                 "design points" + (" (more than the parameters explain: add replications or "
                                    "enlarge --scale)" if noise >= 0.5 else "") + ".")
    return text


def sweep_brief(f: Folder) -> Brief:
    m = f.manifest
    method = m["method"]
    indices = f.table("indices.csv")
    tornado = f.table("tornado.csv")
    noise = f.table("noise.csv").set_index("output")["noise_share"] if f.has("noise.csv") else pd.Series(dtype=float)
    samples = pd.read_parquet(f.path / "samples.parquet") if f.has("samples.parquet") else None
    defs = m.get("output_definitions", {})
    sc = m.get("scenario", {})
    heads, drivers = [], []
    sens = Section("Sensitivity")
    for out in m.get("outputs", []):
        words, unit = _output_words(out, defs[out]) if out in defs else (out, "number")
        t = tornado[tornado.output == out]
        if samples is not None and out in samples:
            design = samples.loc[samples["kind"] == "sample", out]
            centre = float(t.output_centre.iloc[0]) if len(t) else float(design.median())
            e = estimate(centre, float(design.quantile(0.05)), float(design.quantile(0.95)), unit=unit,
                         signed=bool(defs.get(out, {}).get("difference")),
                         interval_name="5th to 95th percentile over the sampled parameters")
            heads.append(Headline(words, e, "tornado.csv", out, str(defs.get(out, {}).get("years")), ENGLAND))
        drivers.append(_driver_sentence(indices[indices.output == out], method, words, noise.get(out)))
        stem = file_stem(out)
        sens.add(f"**{words}**")
        sens.add(f.figure(f"figures/tornado_{stem}.png", _tornado_alt(t, words, unit),
                          f"Tornado: {words} with each parameter at its 5th and 95th percentile, the "
                          "others at their medians."))
        sens.add(f.figure(f"figures/{method}_{stem}.png", _index_alt(indices[indices.output == out], method, words),
                          f"{RANKING[method][2].capitalize()} for {words}, with 95% confidence intervals."))
        sens.add(_index_table(indices[indices.output == out], method, words))
    sens.blocks.insert(0, Bullets(drivers))
    params = Section("Uncertain parameters").add(Table(
        ["parameter", "path", "distribution", "5th percentile", "median", "95th percentile", "source"],
        [[p["name"], f"`{p['path']}`", _dist_text(p), f"{p['p05']:.3g}", f"{p['p50']:.3g}", f"{p['p95']:.3g}",
          ", ".join(p.get("sources") or []) + (("; " if p.get("sources") else "") + f"assumption {p['assumption']}"
                                               if p.get("assumption") else "") or "**no source given**"]
         for p in m.get("parameters", [])],
        caption="Each parameter's distribution; values are sampled on [0, 1] by SALib and mapped "
                "through its quantile function.", numeric=frozenset({3, 4, 5})))
    base = m.get("baseline")
    runs = m.get("runs", {})
    design = Section("Design").add(
        f"Method {method} with {m.get('samples')} base samples: {runs.get('design')} design points "
        f"and {runs.get('tornado')} tornado points, each run {m.get('replications')} times "
        f"({m.get('simulations_per_run')} simulations per run) at {m.get('scale'):g} of children. "
        + ("Outputs marked as changes are this scenario minus the baseline "
           f"({base['path']}), paired with common random numbers; sampled values that exist in "
           "the baseline too are applied to both. " if base else "")
        + str(m.get("effects_note", "")) + ".")
    sections = [sens, params, design, *closing_sections(m, "sweep", sc, f"scenario {sc.get('name')}")]
    return Brief(
        kind="sweep",
        title=f"What drives the results of {sc.get('name', 'the scenario')}: {method} sensitivity analysis",
        question=(f"Which of the {len(m.get('parameters', []))} uncertain assumptions of "
                  f"{sc.get('name')} matter most for its results, and how much do the results move?"),
        what=[sc.get("description", "").strip() or f"Scenario {sc.get('name')}.",
              f"{runs.get('total')} runs; {m.get('executor', '')}."],
        headlines=heads,
        headline_note=("The value with every parameter at its median, and the 5th to 95th "
                       "percentile of the output over the sampled design (parameter uncertainty "
                       "plus simulation noise)."),
        sections=sections,
        provenance=provenance(f),
        warnings=list(m.get("warnings", [])),
    )


def _dist_text(p: dict) -> str:
    d = p["dist"]
    if d == "evidence":
        lo, hi = p["interval"]
        return f"evidence: central {p['central']:g}, {100 * p['level']:g}% interval {lo:g} to {hi:g}"
    keys = [k for k in ("low", "mode", "high", "mean", "sd", "median", "sigma") if k in p]
    return d + (" (" + ", ".join(f"{k} {p[k]:g}" for k in keys) + ")" if keys else "")


def _tornado_alt(t: pd.DataFrame, words: str, unit: str) -> str:
    if t.empty:
        return f"Tornado chart of {words}: no rows."
    t = t.sort_values("swing", ascending=False)
    centre = estimate(float(t.output_centre.iloc[0]), unit=unit).point_text
    parts = [f"{r.parameter} moves it from {estimate(r.output_low, unit=unit).point_text} to "
             f"{estimate(r.output_high, unit=unit).point_text}" for r in t.head(3).itertuples()]
    return f"Tornado chart of {words}: centre value {centre}; " + "; ".join(parts) + "."


def _index_alt(rows: pd.DataFrame, method: str, words: str) -> str:
    col, _, name = RANKING[method]
    r = rows.sort_values(col, ascending=False)
    return (f"Bar chart of the {name} for {words}: "
            + "; ".join(f"{x.parameter} {getattr(x, col):.2f}" for x in r.itertuples()) + ".")


def _index_table(rows: pd.DataFrame, method: str, words: str) -> Table:
    cols = [c for c in rows.columns if c not in ("output", "parameter", "method")]
    col = RANKING[method][0]
    r = rows.sort_values(col, ascending=False, kind="mergesort")
    return Table(["parameter", *cols], [[x.parameter, *[f"{getattr(x, c):.2f}" for c in cols]] for x in r.itertuples()],
                 caption=f"{method} indices for {words} (conf: half-width of the 95% confidence interval).",
                 numeric=frozenset(range(1, len(cols) + 1)))


# --- trial --------------------------------------------------------------------------------

OUTCOME_WORDS = {"in_care": "in care {m} months after entry",
                 "proceedings_issued": "with care proceedings issued within {m} months",
                 "days_in_care": "days in care in the first {m} months"}


def _outcome_words(outcome: str) -> tuple[str, str]:
    name, months = outcome.rsplit("_", 1)
    m = months.rstrip("m")
    unit = "days" if name == "days_in_care" else "percent"
    return OUTCOME_WORDS.get(name, name).format(m=m), unit


def _trial_value(x: float, unit: str) -> float:
    return 100 * x if unit == "percent" else x


def _las_note(note) -> str:
    if isinstance(note, dict):
        text = (note.get("note") or "").strip()
        return text + (f" (assumption {note['assumption']})" if note.get("assumption") else "")
    return str(note or "").strip()


def trial_brief(f: Folder) -> Brief:
    m = f.manifest
    t = f.table("trial.csv")
    spec = m["trial"]
    heads, rows = [], []
    for r in t.itertuples():
        words, unit = _outcome_words(r.outcome)
        shown_unit = "points" if (r.arm == "difference" and unit == "percent") else unit
        sim = estimate(_trial_value(r.simulated, unit), _trial_value(r.simulated_p05, unit),
                       _trial_value(r.simulated_p95, unit), unit=shown_unit,
                       signed=r.arm == "difference", interval_name="5-95% range over re-runs")
        signed = r.arm == "difference"
        pub = "" if pd.isna(r.published) else as_published(_trial_value(r.published, unit), shown_unit, signed)
        if pub and pd.notna(r.published_low):
            pub += (f" (interval {as_published(_trial_value(r.published_low, unit), 'number', signed)} to "
                    f"{as_published(_trial_value(r.published_high, unit), 'number', signed)})")
        check = "" if pd.isna(r.check) else ("pass" if r.check == "pass" else "**FAIL**")
        rows.append([f"{r.arm}: {words}", f"{sim.point_text} ({sim.interval_text})", pub, check,
                     "" if pd.isna(r.sources) else str(r.sources)])
        if pd.notna(r.check):
            heads.append(Headline(f"{r.arm.capitalize()}, {words} (published {pub}; {r.check})", sim,
                                  "trial.csv", r.outcome, r.arm, "trial LAs"))
    checks = m.get("checks", {})
    rec = spec.get("recruitment", {})
    design = Section("Trial design").add(Bullets([
        f"Intervention: `{spec['intervention']}` from {spec['scenario']}.",
        f"{len(spec.get('las', []))} local authorities; recruitment for {rec.get('months')} months from "
        f"{rec.get('start')}; allocation {spec.get('allocation'):g} to the intervention; families "
        "randomised once, at their first eligible entry; analysis by intention to treat.",
        f"Follow-up at {', '.join(map(str, spec.get('follow_up_months', [])))} months; "
        f"{m.get('replications')} re-runs of the whole trial, seed {m.get('seed')}.",
        f"Effects: {m.get('effects')} ({m.get('hazard_ratios')}).",
        f"A control-arm check passes within {100 * spec.get('control_tolerance', 0.03):g} points of the "
        "published figure; a difference check passes inside the published (or derived) interval."]))
    results = Section("Trial check").add(
        f"{checks.get('passed', 0)} checks pass and {checks.get('failed', 0)} fail.",
        Table(["arm and outcome", "simulated (5-95% range over re-runs)", "published", "check", "sources"],
              rows, numeric=frozenset({1, 2})))
    sc = m.get("scenario", {})
    sections = [results, design, *closing_sections(m, "trial", sc, "the trial's scenario")]
    return Brief(
        kind="trial",
        title=f"Virtual trial: {spec.get('name')}",
        question=(f"Does the model reproduce the published trial ({spec.get('description', '')}) when "
                  "the trial is re-run inside it?"),
        what=[spec.get("description", ""), _las_note(spec.get("las_note"))],
        headlines=heads,
        headline_note="Simulated arms and differences against the published figures; the range is "
                      "the 5th to 95th percentile of re-runs of a trial of the published size.",
        sections=sections,
        provenance=provenance(f),
        warnings=list(m.get("warnings", [])),
    )


# --- calibration and backtest -------------------------------------------------------------

def calibration_brief(f: Folder) -> Brief:
    m = f.manifest
    backtest = f.kind == "backtest"
    fit = f.table("fit.csv")
    if "qualifier" in fit:
        fit["qualifier"] = fit["qualifier"].astype("string").fillna("")
    if backtest:
        bt = m["backtest"]
        years = tuple(bt["held_out_years"])
    else:
        years = tuple(m["train_years"])
    summary = {"checks": m["checks"], "la_statistics": m["la_statistics"]} if "checks" in m else \
        fit_checks(fit, years, years[1])
    c = summary["checks"]
    passed = estimate(c["passed"], unit="number")
    heads = [Headline(f"National targets within their limit, {fy(years[0])} to {fy(years[1])}",
                      replace(passed, point_text=f"{c['passed']} of {c['total']}"), "fit.csv",
                      "checks", f"{years[0]}-{years[1]}", ENGLAND)]
    for r in summary["la_statistics"]["rows"]:
        corr = estimate(r["correlation"], unit="number")
        heads.append(Headline(
            f"{label(r['metric'])}, {r['year']}: correlation of simulated with published across "
            f"{r['las']} LAs (median absolute error {100 * r['median_abs_rel_error']:.0f}%)",
            replace(corr, point_text=f"{r['correlation']:.3f}"), "fit.csv", r["metric"], r["year"], "LAs"))
    checks = national_checks(fit, years)
    failing = checks[~checks.passes].sort_values(["metric", "year"])
    rows = []
    for r in failing.itertuples():
        share = r.kind not in ("stock", "flow")
        unit = "number" if share else unit_of(r.metric)
        err = f"{r.error:+.1f}" if share else f"{100 * r.rel_error:+.1f}%"
        rows.append([r.metric, str(r.year), estimate(r.published, unit=unit).point_text,
                     estimate(r.simulated, unit=unit).point_text, err.replace("-", "\u2212"),
                     f"{r.limit:.1f}" if share else f"{100 * r.limit:.0f}%"])
    fit_sec = Section("Fit to national targets").add(
        f"{c['passed']} of {c['total']} national targets are within their limit ({c['limits']}). "
        "The targets outside it are listed below; every target, with its source id, is in fit.csv.",
        f.figure("figures/fit_national.png",
                 f"Small multiples of published against simulated national series, {len(set(fit.metric))} "
                 f"metrics; {c['passed']} of {c['total']} checked values within their limit.",
                 "Published (points) and simulated (lines) national series."),
        Table(["metric", "year", "published", "simulated", "error", "limit"], rows,
              caption=f"National targets outside their limit ({len(rows)}); shares and durations in "
                      "points and weeks, others relative.", numeric=frozenset({2, 3, 4, 5})))
    la = summary["la_statistics"]
    la_sec = Section("Local authorities")
    if not la["rows"]:
        la_sec.add("No local-authority targets were fitted or checked in this configuration.")
    else:
        la_sec.add(
            f.figure("figures/fit_local_authorities.png",
                     "Scatter plots, log scales, of published against simulated values for each LA: "
                     + "; ".join(f"{r['metric']} correlation {r['correlation']:.2f}, median absolute "
                                 f"error {100 * r['median_abs_rel_error']:.0f}%" for r in la["rows"]) + ".",
                     f"Each local authority, {la['year']}: published against simulated."),
            Table(["measure", "LAs", "correlation", "median absolute error"],
                  [[label(r["metric"]), str(r["las"]), f"{r['correlation']:.2f}",
                    f"{100 * r['median_abs_rel_error']:.0f}%"] for r in la["rows"]],
                  numeric=frozenset({1, 2, 3})))
    params = m.get("parameters", [])
    par_sec = Section("Fitted parameters").add(Table(
        ["parameter", "path", "prior", "fitted", "95% interval", "at bound"],
        [[p["name"], f"`{p['path']}`", f"{p['prior']:.3g}", f"{p['fitted']:.3g}",
          f"{p['lower_95']:.3g} to {p['upper_95']:.3g}", "yes" if p.get("at_bound") else ""] for p in params],
        caption=m.get("method", ""), numeric=frozenset({2, 3, 4})))
    sections = [fit_sec, la_sec, par_sec, methods_section(m, f.kind, None)]
    if backtest:
        title = f"Backtest: trained to {fy(bt['train_until'])}, projected from {bt['projection_start']}"
        question = (f"Fitted only to figures up to {fy(bt['train_until'])}, how well does the model "
                    f"project {fy(years[0])} to {fy(years[1])}?")
        what = [f"Future inputs: {bt['future_inputs']}."]
    else:
        title = "Calibration fit"
        question = ("How closely does the calibrated baseline reproduce the published national and "
                    f"local-authority figures for {fy(years[0])} to {fy(years[1])}?")
        what = []
    what += [f"Targets: {m.get('targets_vintage')} ({m.get('targets')}).",
             f"{m.get('evaluations')} simulation evaluations at {m.get('scale'):g} of children, "
             f"{m.get('replications')} replications each; {m.get('wall_seconds')} s."]
    return Brief(kind=f.kind, title=title, question=question, what=what, headlines=heads,
                 headline_note=f"Limits: {c['limits']}. LA figures: Pearson correlation of simulated "
                               "with published counts.",
                 sections=sections, provenance=provenance(f), warnings=[])


BUILDERS.update({"sweep": sweep_brief, "trial": trial_brief, "calibration": calibration_brief,
                 "backtest": calibration_brief})
