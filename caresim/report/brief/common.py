"""What every brief shares: reading an output folder, metric labels and units, alt text,
and the sections that do not depend on the kind of folder (assumptions, calibration,
methods in the STRESS-DES order, provenance)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from caresim.errors import CaresimError
from caresim.report.brief.document import Figure, Section, Table
from caresim.report.numbers import estimate
from caresim.results.metrics import metric_info
from caresim.scenario.differences import evidence_text

ENGLAND = "England"

#: output folder kinds, and the file that marks a folder of that kind without `kind` in its
#: manifest (folders written before caresim recorded it)
KIND_MARKERS = (("compare", "difference.csv"), ("sweep", "indices.csv"), ("trial", "trial.csv"),
                ("calibration", "fit.csv"), ("run", "summary.csv"))
KINDS = ("run", "compare", "sweep", "trial", "calibration", "backtest")


@dataclass
class Folder:
    """An output folder and its manifest; tables are read on first use."""

    path: Path
    manifest: dict
    kind: str
    _tables: dict = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            file = self.path / name
            if not file.is_file():
                raise CaresimError(f"{file}: missing; a {self.kind} folder has it (was the folder "
                                   "written by an interrupted or older command?)")
            self._tables[name] = pd.read_csv(file)
        return self._tables[name]

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def figure(self, relative: str, alt: str, caption: str) -> Figure | None:
        path = self.path / relative
        return Figure(path, relative, alt, caption) if path.is_file() else None

    @cached_property
    def years(self) -> list[int]:
        """The simulated years: flows and costs exist only for these (the first year's
        stock at 31 March of the start year is the published starting state)."""
        s = self.table("summary.csv")
        flows = s[s["metric"] == "care_starts"]["year"] if "care_starts" in set(s["metric"]) else s["year"]
        return sorted(int(y) for y in flows.unique())


def open_folder(path: Path) -> Folder:
    """Read an output folder's manifest and tell its kind; a clear error if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise CaresimError(f"{path}: no such folder; give an output folder written by caresim "
                           "run, compare, sweep, trial, calibrate or backtest")
    file = path / "manifest.json"
    if not file.is_file():
        raise CaresimError(f"{path}: no manifest.json, so this is not a caresim output folder "
                           "(or its command did not finish)")
    try:
        manifest = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise CaresimError(f"{file}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    kind = manifest.get("kind")
    if kind is None:
        kind = next((k for k, marker in KIND_MARKERS if (path / marker).is_file()), None)
        if kind == "calibration" and "backtest" in manifest:
            kind = "backtest"
    if kind not in KINDS:
        raise CaresimError(f"{file}: kind {kind!r} is not one caresim report knows "
                           f"({', '.join(KINDS)})")
    if manifest.get("status") == "incomplete":
        raise CaresimError(f"{path}: the sweep is incomplete (see failures.csv); rerun the same "
                           "command to finish it, then report")
    return Folder(path, manifest, kind)


# --- metrics: labels, units, when --------------------------------------------------------

#: plain words for the metrics a brief leads with; others use the registry's definition
LABELS = {
    "looked_after": "Children looked after",
    "care_starts": "Children starting care",
    "child_in_need": "Children in need",
    "child_protection_plan": "Children on a child protection plan",
    "cpp_starts": "Child protection plans started",
    "proceedings_issued": "Children in care proceedings issued",
    "referrals": "Referrals",
    "pre_proceedings_starts": "Children entering pre-proceedings",
    "special_guardianship": "Children under special guardianship orders",
    "sgo_granted": "Special guardianship orders made",
    "care_reentries": "Children re-entering care",
    "proceedings_mean_weeks": "Mean duration of care proceedings",
    "proceedings_within_26_weeks": "Care proceedings completed within 26 weeks",
    "cost.total": "Cost of placements, courts and interventions",
    "cost.placements": "Placement costs",
    "cost.court": "Court costs",
    "cost.intervention": "Intervention costs",
}


def base_metric(metric: str) -> str:
    """`cumulative.cost.total.discounted` -> `cost.total` (the registry's name)."""
    m = metric.removeprefix("cumulative.")
    return m.removesuffix(".discounted")


def unit_of(metric: str) -> str:
    try:
        return metric_info(base_metric(metric)).unit
    except CaresimError:
        return "number"


def kind_of(metric: str) -> str:
    try:
        return metric_info(base_metric(metric)).kind
    except CaresimError:
        return "flow"


def label(metric: str) -> str:
    """A metric in plain words, with `cumulative` and `discounted` spelt out."""
    base = base_metric(metric)
    text = LABELS.get(base)
    if text is None:
        try:
            text = metric_info(base).definition.split(" (")[0].rstrip(".")
        except CaresimError:
            text = base
    if metric.endswith(".discounted"):
        text += ", discounted"
    if metric.startswith("cumulative."):
        text += ", cumulative"
    return text


def fy(year: int) -> str:
    """The financial year ending 31 March `year`: `2033-34`."""
    return f"{year - 1}-{str(year)[2:]}"


def when(metric: str, year: int, first_year: int | None = None) -> str:
    """`at 31 March 2030` for a stock, `in 2029-30` for a flow or cost, `2025-26 to 2029-30`
    for a cumulative total."""
    if metric.startswith("cumulative.") and first_year is not None:
        return f"{fy(first_year)} to {fy(year)}"
    if kind_of(metric) == "stock":
        return f"at 31 March {year}"
    return f"in {fy(year)}"


def row_of(df: pd.DataFrame, metric: str, year: int, geography: str = ENGLAND, **where) -> pd.Series | None:
    mask = (df["metric"] == metric) & (df["year"] == year) & (df["geography"] == geography)
    for k, v in where.items():
        mask &= df[k] == v
    rows = df[mask]
    return None if rows.empty else rows.iloc[0]


def est(row: pd.Series, metric: str, signed: bool = False, difference: bool = False,
        short: bool = False):
    """The rounded estimate of a summary/difference row: mean, 90% interval p05 to p95
    (`short` money, `£1.2m`, for table cells)."""
    unit = unit_of(metric)
    if difference and unit == "percent":
        unit = "points"
    return estimate(float(row["mean"]), float(row["p05"]), float(row["p95"]), unit=unit,
                    signed=signed, short=short)


# --- alt text -----------------------------------------------------------------------------

def series_alt(df: pd.DataFrame, metric: str, what: str, geography: str = ENGLAND,
               difference: bool = False, **where) -> str:
    """Alt text for a chart of one series: its first and last values and last interval."""
    d = df[(df["metric"] == metric) & (df["geography"] == geography)]
    for k, v in where.items():
        d = d[d[k] == v]
    d = d.sort_values("year")
    if d.empty:
        return f"{what}: no data."
    first, last = d.iloc[0], d.iloc[-1]
    a = est(first, metric, signed=difference, difference=difference)
    b = est(last, metric, signed=difference, difference=difference)
    return (f"{what}, {geography}: the mean is {a.point_text} {when(metric, int(first.year))} and "
            f"{b.point_text} {when(metric, int(last.year))} (90% interval {b.interval_text}).")


# --- shared sections ----------------------------------------------------------------------

def _value_text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list):
        if all(isinstance(v, (int, float)) for v in value) and len(value) == 2:
            return f"{value[0]:g} to {value[1]:g}"
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value_text(v)}" for k, v in value.items())
    return str(value)


def _fields_text(values: dict) -> str:
    return "; ".join(f"{k.replace('_', ' ')} {_value_text(v)}" for k, v in values.items())


def assumptions_rows(assumptions: dict | None) -> list[dict]:
    return [] if not assumptions or assumptions.get("rows") is None else assumptions["rows"]


def assumptions_table(assumptions: dict | None, who: str) -> list:
    """The table of every parameter block that differs from the calibrated baseline."""
    if not assumptions:
        return [f"The manifest of this folder does not record {who}'s differences from the "
                "calibrated baseline (it was written by an older caresim); rerun it to list them."]
    if assumptions.get("rows") is None:
        return [f"{who}'s differences from the calibrated baseline could not be worked out: "
                f"{assumptions.get('error', 'the baseline was not found')}."]
    rows = assumptions["rows"]
    if not rows:
        return [f"{who} is the calibrated baseline: no parameter differs from it."]
    body = []
    for r in rows:
        evidence = evidence_text(r["sources"], r.get("assumption"))
        if r.get("inherited") and evidence:
            evidence += " (of the enclosing block)"
        before = r.get("baseline") or {}
        body.append([
            f"`{r['path']}`",
            _fields_text(r["values"]),
            _fields_text(before) if before else "not in the baseline",
            _value_text(r["range"]) if r.get("range") else "",
            evidence or "**no source given**",
        ])
    unsourced = sum(1 for b in body if b[-1] == "**no source given**")
    note = (f"{unsourced} of {len(body)} rows name no source or assumption." if unsourced else
            "Every row names its published source (ids in calibration/published_figures.csv, or "
            "dfe:<table>) or a named assumption.")
    return [Table(["parameter", "value", "calibrated baseline", "range", "source"], body,
                  caption=f"What {who} changes from the calibrated baseline "
                          f"({Path(assumptions.get('baseline', 'scenarios/baseline.yaml')).name}).",
                  note=note)]


def calibration_section(cal: dict | None, title: str = "Calibration") -> Section:
    s = Section(title)
    if cal is None:
        return s.add("This scenario does not use fitted parameters (it names no "
                     "`data.parameter_samples`), so no calibration stands behind it; its values are "
                     "those written in its file.")
    if cal.get("missing"):
        return s.add(f"The scenario names fitted parameters, but their manifest "
                     f"({cal['manifest']}) was missing when it ran.")
    s.add(f"The baseline's uncertain parameters were fitted by `{cal.get('command', 'caresim calibrate')}` "
          f"on {cal.get('date', 'an unrecorded date')[:10]} (seed {cal.get('seed', '?')}) to "
          f"{cal.get('targets_vintage', 'the published targets')}, training years "
          f"{fy(cal['train_years'][0])} to {fy(cal['train_years'][1])}. Method: {cal.get('method', '?')}.")
    checks = cal.get("checks")
    if checks:
        y0, y1 = checks["years"]
        s.add(f"National targets {fy(y0)} to {fy(y1)}: {checks['passed']} of {checks['total']} "
              f"within their limit ({checks['limits']}).")
        kinds = checks.get("by_kind", {})
        if kinds:
            s.add(Table(["kind of target", "within limit", "targets"],
                        [[k, str(v["passed"]), str(v["total"])] for k, v in sorted(kinds.items())],
                        numeric=frozenset({1, 2})))
    la = cal.get("la_statistics")
    if la:
        s.add(Table(["local-authority measure", "LAs", "correlation", "median absolute error"],
                    [[label(r["metric"]) + f" ({r['year']})", str(r["las"]), f"{r['correlation']:.2f}",
                      f"{100 * r['median_abs_rel_error']:.0f}%"] for r in la["rows"]],
                    caption=f"Simulated against published, across local authorities, {la['year']}.",
                    numeric=frozenset({1, 2, 3})))
    if not checks:
        s.add("The calibration's manifest does not record its checks; its fit_summary.md has them.")
    return s


AIMS = {
    "run": "project the scenario's stocks, flows and costs, with their uncertainty",
    "compare": "estimate the difference a change makes, paired with common random numbers",
    "sweep": "find which uncertain parameters drive the result (global sensitivity analysis)",
    "trial": "check that the model reproduces a published randomised trial",
    "calibration": "fit the baseline's uncertain parameters to published figures",
    "backtest": "test the calibrated model's projections against figures it was not fitted to",
}


def _stress_rows(m: dict, kind: str, scenario: dict | None) -> list[list[str]]:
    """The STRESS-DES items (Monks et al. 2019), each answered for this output."""
    sc = scenario or {}
    states = sorted((sc.get("pathway") or {}).keys())
    reps = m.get("replications")
    cal = m.get("calibration") or ((m.get("scenarios") or {}).get("A") or {}).get("calibration")
    interventions = sorted((sc.get("interventions") or {}).keys())
    scale = m.get("scale")
    both = "parameter and stochastic" in str(m.get("uncertainty", ""))
    return [
        ["1.1 Purpose of the model", "Simulate children's journeys through English children's "
         "social care and the family courts, to project demand and cost and to test policy "
         "changes before they are made."],
        ["1.2 Model outputs", "Stocks at 31 March, flows and costs per financial year ending 31 "
         "March, by local authority, region and England (definitions in the README's metric "
         "table); the tables and figures named in this brief."],
        ["1.3 Experimentation aims", f"This output's aim: {AIMS[kind]}."],
        ["2.1 Base model overview diagram", "The pathway chart in the README (`caresim pathway "
         "SCENARIO.yaml` draws it for any scenario)."],
        ["2.2 Base model logic", "Each child moves between the states of the pathway ("
         + (", ".join(x.replace("_", " ") for x in states) or "see the scenario") + ") after a "
         "time drawn from the state's duration distribution, leaving by competing exits with "
         "the state's probabilities; siblings move together."],
        ["2.3 Scenario logic", ("Interventions: " + ", ".join(interventions) + ", each a set of "
                                "hazard ratios on named transitions for the families that take "
                                "it up, with onset, waning, costs, places and rollout. "
                                if interventions else "No interventions. ")
         + "What the scenario changes is listed in the assumptions table."],
        ["2.4 Algorithms", "Time-varying hazards are drawn exactly by inverting the piecewise "
         "cumulative hazard; durations from exponential, gamma, Weibull, lognormal or piecewise "
         "distributions; costs accrue per day in a state."],
        ["2.5 Components", "Entities: children in sibling groups. Activities: assessment, plans, "
         "pre-proceedings, proceedings, placements. Resources: court capacity (cases in progress) "
         "and placement supply by type and region; intervention places. Queues: first come, "
         "first served for court and places. Entry: referrals from each LA's published volume "
         "and unaccompanied asylum-seeking arrivals; exit: closure, orders, adoption, 18th "
         "birthday."],
        ["3.1 Data sources", "DfE children in need and children looked after statistics (LA "
         "tables), Cafcass and MoJ family court statistics, and published evaluations; each "
         "value names its source id in calibration/published_figures.csv."],
        ["3.2 Pre-processing", "LA inputs are built from the DfE tables for 31 March of the start "
         "year (calibration/la_inputs_<year>.csv); suppressed cells are read as missing, never "
         "zero, and imputed by stated rules (calibration/la_inputs_2024.columns.md); targets "
         "keep their source and tolerance (calibration/targets.md)."],
        ["3.3 Input parameters", "Every parameter with its value, source and range: "
         "docs/parameters.md; fitted values and their 95% intervals from the calibration"
         + (f" (`{cal['command']}`)" if cal and cal.get("command") else "") + "."],
        ["3.4 Assumptions", "Named assumptions with ranges where nothing is published; those this "
         "output depends on beyond the calibrated baseline are in the assumptions table."],
        ["4.1 Initialisation", "No warm-up: the simulation starts from the published stock at 31 "
         "March (children in need, on plans, in proceedings and in care, with their published "
         "characteristics)" + (f", starting {sc.get('start')}" if sc.get("start") else "") + "."],
        ["4.2 Run length", f"{sc.get('years')} years." if sc.get("years") else "As stated above."],
        ["4.3 Estimation approach", (f"{reps} replications" if reps else "Replications")
         + (f" at {scale:g} of children, counts and costs scaled back up" if scale else "")
         + "; intervals are the 5th to 95th percentiles across replications"
         + (", each drawing the fitted parameters" if both else "") + "."],
        ["5.1 Software", f"caresim {m.get('caresim_version', '?')}, Python {m.get('python', '')}, "
         "SimPy, NumPy, pandas, SciPy, SALib."],
        ["5.2 Random sampling", "One NumPy generator per replication, local authority and purpose, "
         f"spawned from the root seed {m.get('seed', '?')}; the same seed gives the same results "
         "whatever the number of processes."],
        ["5.3 Model execution", f"{m.get('jobs', 1)} worker process(es); wall time "
         f"{m.get('wall_seconds', '?')} s."],
        ["5.4 System specification", (f"{m['platform']}, {m.get('cpus')} CPUs."
                                      if m.get("platform") else "Not recorded in this manifest.")],
        ["6 Code access", "The caresim repository (README: quick start, `make run`, `make test`); "
         "the footer gives the command that regenerates this output."],
    ]


def methods_section(m: dict, kind: str, scenario: dict | None) -> Section:
    return Section("Methods").add(
        "Reported against the STRESS-DES checklist for discrete-event simulation (Monks et al. "
        "2019): 1 objectives, 2 logic, 3 data, 4 experimentation, 5 implementation, 6 code access.",
        Table(["STRESS-DES item", "this output"], _stress_rows(m, kind, scenario)))


def closing_sections(m: dict, kind: str, scenario: dict, who: str) -> list[Section]:
    """Assumptions, calibration and methods: the last sections of a run, sweep or trial brief."""
    return [Section("Assumptions").add(*assumptions_table(m.get("assumptions"), who)),
            calibration_section(m.get("calibration")),
            methods_section(m, kind, scenario)]


def command_for(folder: Folder) -> str:
    """The command that regenerates the folder (as far as the manifest records it)."""
    m, k = folder.manifest, folder.kind
    if k in ("calibration", "backtest"):
        return m.get("command", f"caresim {'calibrate' if k == 'calibration' else 'backtest'}")
    common = f"--seed {m.get('seed')} --scale {m.get('scale')} -n {m.get('replications')}"
    if k == "run":
        return (f"caresim run {m['scenario_files'][-1]} {common}"
                + (" --parameter-uncertainty" if "parameter and" in str(m.get("uncertainty")) else ""))
    if k == "compare":
        s = m["scenarios"]
        return (f"caresim compare {s['A']['path']} {s['B']['path']} {common}"
                + ("" if m.get("crn", True) else " --no-crn"))
    if k == "trial":
        return f"caresim trial {m['trial_file']} --seed {m.get('seed')} -n {m.get('replications')}"
    outputs = ",".join(m.get("outputs", []))
    base = m.get("baseline") or {}
    return (f"caresim sweep {m.get('scenario_files', ['?'])[-1]} --method {m.get('method')} "
            f"--samples {m.get('samples')} --replications {m.get('replications')} --seed {m.get('seed')} "
            f"--scale {m.get('scale')}" + (f" --baseline {base['path']}" if base else "")
            + (f" --outputs {outputs}" if outputs else ""))


def provenance(folder: Folder) -> list[tuple[str, str]]:
    m = folder.manifest
    rows = [("output folder", str(folder.path)), ("kind", folder.kind),
            ("caresim version", str(m.get("caresim_version", "?")))]
    if folder.kind == "compare":
        for k in ("A", "B"):
            s = m["scenarios"][k]
            rows.append((f"scenario {k}", f"{s['label']} ({s['path']}), hash {s['scenario_hash'][:16]}"))
    elif "scenario_hash" in m:
        rows.append(("scenario", f"{m.get('scenario_files', ['?'])[-1]}, hash {m['scenario_hash'][:16]}"))
    if "targets_sha256_16" in m:
        rows.append(("targets", f"{m.get('targets')}, sha256 {m['targets_sha256_16']}"))
    rows.append(("seed", str(m.get("seed", "?"))))
    vintage = m.get("calibration_vintage") or m.get("targets_vintage")
    cal = m.get("calibration") or ((m.get("scenarios") or {}).get("A") or {}).get("calibration")
    if cal and cal.get("date"):
        vintage = f"{vintage}; fitted {cal['date'][:10]} ({cal.get('manifest', '')})"
    if vintage:
        rows.append(("calibration vintage", vintage))
    rows.append(("written", str(m.get("started") or m.get("date") or "?")))
    rows.append(("regenerate with", f"`{command_for(folder)}` then `caresim report {folder.path}`"))
    return rows


def replication_note(reps: int | None) -> str:
    if not reps:
        return ""
    text = f"Intervals are the 5th to 95th percentiles across {reps} replications (90% intervals)"
    if reps < 20:
        text += (f"; with {reps} replications the ends of the interval are rough (at least 20 "
                 "give stable 5th and 95th percentiles)")
    return text + "."
