"""`caresim sweep` as a library call: a scenario's `uncertain:` block swept with SALib.

The evaluator (`ScenarioEvaluator`) runs the scenario at a design point's parameter values
for one replication and returns England's value of each requested output:

- `METRIC@YEAR`: the metric in financial year YEAR (ending 31 March), England;
- `METRIC@Y1-Y2`: a flow or cost summed over financial years Y1 to Y2;
- `diff:METRIC@...`: scenario minus baseline (`--baseline`), paired: both run with the same
  root seed and replication number (common random numbers), and the design point's values
  are applied to the baseline too wherever the path exists in it (court capacity,
  pre-proceedings volumes, placement costs...), so a difference such as care starts
  avoided is computed under the same assumptions in both.

Metrics are those of `caresim run` (README, Metrics) plus the derived metrics of
`caresim compare`: `cost.<component>.discounted` (discounted to the first simulated year
at the baseline's `costs.discount_rate`, or the scenario's without a baseline; 3.5% if
none) and `cumulative.<metric>`. Values are mean over the R replications of a point.

In a sweep every intervention effect is a point value: the sampled one for effects with
an `uncertain` entry, else the effect's `central` (the engine's per-replication draw from
the interval is switched off), so replications of a point differ only by simulation noise.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pydantic

from caresim.analysis.compare import CUMULATIVE_METRICS, DISCOUNTED_SUFFIX, GREEN_BOOK_RATE, derived_records
from caresim.analysis.sensitivity import DEFAULT_SAMPLES, SweptParameter, compile_parameters
from caresim.analysis.sweep import (
    Progress,
    SweepOutcome,
    SweepSettings,
    make_plan,
    plan_hash,
    run_sweep,
)
from caresim.errors import CaresimError
from caresim.results.metrics import RATIO_METRICS, metric_info
from caresim.results.summary import ENGLAND, add_ratios
from caresim.runner.pipeline import (
    CALIBRATION_VINTAGE,
    geography_manifest,
    prepare,
    scale_note,
    scenario_manifest,
)
from caresim.runner.replications import run_one
from caresim.scenario.loader import LoadedScenario
from caresim.scenario.model import Scenario
from caresim.scenario.uncertain import PathError, apply_value, get_value, value_kind

#: replications per design point when --replications is not given
DEFAULT_REPLICATIONS = 2
_OUTPUT = re.compile(r"^(?P<diff>diff:)?(?P<metric>[a-z0-9_.]+)@(?P<first>\d{4})(?:-(?P<last>\d{4}))?$")


@dataclass(frozen=True)
class OutputSpec:
    """One swept output: `metric` in England over financial years `first`..`last`
    (summed), as scenario minus baseline if `diff`."""

    text: str
    metric: str
    first: int
    last: int
    diff: bool
    unit: str


def parse_outputs(texts: list[str], scenario: Scenario, baseline: bool) -> list[OutputSpec]:
    """Parse `METRIC@YEAR`, `METRIC@Y1-Y2` and `diff:...` (see the module docstring);
    raises `CaresimError` for unknown metrics, years outside the run, ranges of stocks or
    ratios, or `diff:` without a baseline."""
    first_year, last_year = scenario.start.year + 1, scenario.start.year + scenario.years
    out, seen = [], set()
    for text in texts:
        text = text.strip()
        m = _OUTPUT.match(text)
        if m is None:
            raise CaresimError(f"--outputs {text!r}: write METRIC@YEAR, METRIC@YEAR1-YEAR2 or "
                               "diff:METRIC@YEAR (e.g. diff:care_starts@2030)")
        metric, diff = m["metric"], bool(m["diff"])
        first = int(m["first"])
        last = int(m["last"]) if m["last"] else first
        if diff and not baseline:
            raise CaresimError(f"--outputs {text!r}: a diff: output needs --baseline")
        base = metric.removeprefix("cumulative.").removesuffix(DISCOUNTED_SUFFIX)
        if metric.startswith("cumulative.") and metric.removeprefix("cumulative.") not in CUMULATIVE_METRICS:
            raise CaresimError(f"--outputs {text!r}: cumulative metrics are "
                               f"{', '.join('cumulative.' + c for c in CUMULATIVE_METRICS)}")
        if metric.endswith(DISCOUNTED_SUFFIX) and not base.startswith("cost."):
            raise CaresimError(f"--outputs {text!r}: only cost metrics are discounted")
        info = metric_info(base)
        if last != first and (info.kind in ("stock", "ratio") or metric.startswith("cumulative.")):
            raise CaresimError(f"--outputs {text!r}: a year range sums a flow or cost; {metric} is "
                               f"a {'running total' if metric.startswith('cumulative.') else info.kind}")
        if not first_year <= first <= last <= last_year:
            raise CaresimError(f"--outputs {text!r}: years must be within the run, {first_year} to "
                               f"{last_year} (financial years ending 31 March)")
        if text in seen:
            raise CaresimError(f"--outputs {text!r} is given twice")
        seen.add(text)
        out.append(OutputSpec(text, metric, first, last, diff, info.unit))
    return out


def default_outputs(scenario: Scenario, baseline: bool) -> list[str]:
    """Care starts and total cost in the last simulated year (differences with a baseline)."""
    year = scenario.start.year + scenario.years
    prefix = "diff:" if baseline else ""
    return [f"{prefix}care_starts@{year}", f"{prefix}cost.total@{year}"]


@dataclass(frozen=True)
class _Applied:
    """How a parameter is written into a scenario: path, value kind and written value."""

    name: str
    path: str
    kind: str
    written: Any


class ScenarioEvaluator:
    """Runs a scenario (and its baseline) at a design point for one replication and
    returns the requested England outputs. Picklable; holds the calibration tables."""

    def __init__(self, scenario: LoadedScenario, baseline: LoadedScenario | None,
                 parameters: list[SweptParameter], outputs: list[OutputSpec], seed: int, scale: float,
                 tables: dict[str, pd.DataFrame]):
        self.specs = outputs
        self.outputs = tuple(o.text for o in outputs)
        self.seed, self.scale = seed, scale
        self._hashes = {"scenario_hash": scenario.hash,
                        "baseline_hash": baseline.hash if baseline is not None else None}
        self._doc = _without_uncertain(scenario.resolved)
        self._base_doc = _without_uncertain(baseline.resolved) if baseline is not None else None
        self._tables = tables
        self._applied = [_Applied(p.name, p.path, p.kind, p.written) for p in parameters if p.path]
        self.applies_to_baseline = {a.name: self._base_doc is not None and _has(self._base_doc, a)
                                    for a in self._applied}
        rate_doc = self._base_doc if self._base_doc is not None else self._doc
        rate = (rate_doc.get("costs") or {}).get("discount_rate")
        self.rate = float(rate["value"]) if rate else GREEN_BOOK_RATE
        self.first_year = scenario.scenario.start.year + 1
        self._derived = any(o.metric.startswith("cumulative.") or o.metric.endswith(DISCOUNTED_SUFFIX)
                            for o in outputs)

    def identity(self) -> dict:
        return {"evaluator": "scenario", **self._hashes, "scale": self.scale, "seed": self.seed,
                "effects": "point values (no per-replication draws)"}

    def scenario_at(self, values: dict[str, float], baseline: bool = False) -> Scenario:
        """The scenario (or the baseline) with a design point's values applied."""
        doc = copy.deepcopy(self._base_doc if baseline else self._doc)
        for a in self._applied:
            if baseline and not self.applies_to_baseline[a.name]:
                continue
            apply_value(doc, a.path, values[a.name], a.kind, a.written)
        return Scenario.model_validate(doc)

    def __call__(self, values: dict[str, float], replication: int) -> dict[str, float]:
        sc = self._england(self.scenario_at(values), replication, "scenario")
        base = None
        if any(o.diff for o in self.specs):
            base = self._england(self.scenario_at(values, baseline=True), replication, "baseline")
        out = {}
        for o in self.specs:
            v = _output_value(sc, o)
            if o.diff:
                v -= _output_value(base, o)  # type: ignore[arg-type]
            if not np.isfinite(v):
                raise ValueError(f"{o.text} is undefined in replication {replication} "
                                 "(a ratio with no completed cases?)")
            out[o.text] = float(v)
        return out

    def _england(self, sc: Scenario, replication: int, which: str) -> dict[tuple[str, int], float]:
        res = run_one(sc, self._tables[f"{which}_la"], self.seed, replication, self.scale,
                      self._tables[f"{which}_history"], {"draw_effects": False})
        rec = res.records
        e = rec.groupby(["metric", "year"], sort=True)["value"].sum().reset_index()
        e["geography"] = ENGLAND
        e["replication"] = replication
        e = add_ratios(e[["metric", "year", "geography", "value", "replication"]])
        if self._derived:
            e = pd.concat([e, derived_records(e, self.rate, self.first_year)], ignore_index=True)
        return {(m, int(y)): float(v) for m, y, v in zip(e["metric"], e["year"], e["value"])}


def _without_uncertain(resolved: dict) -> dict:
    doc = copy.deepcopy(resolved)
    doc["uncertain"] = []
    return doc


def _has(doc: dict, a: _Applied) -> bool:
    try:
        value = get_value(doc, a.path)
    except PathError:
        return False
    if a.kind == "date":
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            return False
        return isinstance(value, str)
    kind = value_kind(value)
    return kind in ("number", "integer") and a.kind in ("number", "integer")


def _output_value(table: dict[tuple[str, int], float], o: OutputSpec) -> float:
    ratio = o.metric in RATIO_METRICS
    total = 0.0
    for y in range(o.first, o.last + 1):
        v = table.get((o.metric, y))
        if v is None:
            if ratio:
                return float("nan")
            v = 0.0  # an additive metric with no record is zero
        total += v
    return total


def _check_baseline(loaded: LoadedScenario, baseline: LoadedScenario, prep_s, prep_b) -> None:
    for key in ("start", "years"):
        a, b = getattr(baseline.scenario, key), getattr(loaded.scenario, key)
        if a != b:
            raise CaresimError(f"cannot pair {loaded.path} with the baseline {baseline.path}: they "
                               f"differ in `{key}` (baseline {a}, scenario {b})")
    if set(prep_s.las.codes) != set(prep_b.las.codes):
        raise CaresimError(f"cannot pair {loaded.path} with the baseline {baseline.path}: they "
                           "simulate different local authorities (`geography`)")


def _preflight(evaluator: ScenarioEvaluator, parameters: list[SweptParameter], baseline: LoadedScenario) -> None:
    """Every parameter at either end of its range must leave the baseline valid (the
    scenario itself was checked when it was loaded)."""
    medians = {p.name: float(p.values([0.5])[0]) for p in parameters}
    for p in parameters:
        if not p.path or not evaluator.applies_to_baseline.get(p.name):
            continue
        for end, u in (("low", 0.0), ("high", 1.0)):
            values = dict(medians, **{p.name: float(p.values([u])[0])})
            try:
                evaluator.scenario_at(values, baseline=True)
            except pydantic.ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(x) for x in first["loc"])
                raise CaresimError(
                    f"uncertain parameter {p.name!r} at its {end} end ({values[p.name]:g}) makes the "
                    f"baseline {baseline.path} invalid: {where + ': ' if where else ''}"
                    f"{first['msg'].removeprefix('Value error, ')}") from None


@dataclass
class ScenarioSweep:
    """Everything a scenario sweep needs before it runs (see `prepare_sweep`)."""

    evaluator: ScenarioEvaluator
    parameters: list[SweptParameter]
    settings: SweepSettings
    plan: dict
    folder: Path
    manifest_extra: dict
    units: dict[str, str]


def prepare_sweep(
    loaded: LoadedScenario,
    method: str = "sobol",
    samples: int | None = None,
    outputs: list[str] | None = None,
    baseline: LoadedScenario | None = None,
    replications: int | None = None,
    scale: float | None = None,
    seed: int | None = None,
    out: Path | None = None,
    second_order: bool = False,
    dummy: bool = False,
    output_root: Path = Path("outputs"),
) -> ScenarioSweep:
    """Check the options, read the calibration tables and build the evaluator, the swept
    parameters and the plan, without running anything (arguments as `run_scenario_sweep`)."""
    sc = loaded.scenario
    if not sc.uncertain:
        raise CaresimError(f"{loaded.path}: the scenario has no `uncertain:` block: nothing to sweep "
                           "(see docs/sweeps.md)")
    if method not in DEFAULT_SAMPLES:
        raise CaresimError(f"--method {method!r}: choose one of {', '.join(DEFAULT_SAMPLES)}")
    n = samples or DEFAULT_SAMPLES[method]
    reps = replications or DEFAULT_REPLICATIONS
    seed = sc.run.seed if seed is None else seed
    scale = sc.run.scale if scale is None else scale
    if not 0 < scale <= 1:
        raise CaresimError(f"--scale must be in (0, 1], got {scale}")
    specs = parse_outputs(outputs or default_outputs(sc, baseline is not None), sc, baseline is not None)
    prep = prepare(loaded)
    tables = {"scenario_la": prep.la_inputs, "scenario_history": prep.history}
    if baseline is not None:
        prep_b = prepare(baseline)
        _check_baseline(loaded, baseline, prep, prep_b)
        same = baseline.data_paths == loaded.data_paths
        tables["baseline_la"] = prep.la_inputs if same else prep_b.la_inputs
        tables["baseline_history"] = prep.history if same else prep_b.history
    parameters = compile_parameters(sc, dummy=dummy)
    evaluator = ScenarioEvaluator(loaded, baseline, parameters, specs, seed, scale, tables)
    if baseline is not None:
        _preflight(evaluator, parameters, baseline)
    settings = SweepSettings(method=method, samples=n, seed=seed, replications=reps,
                             second_order=second_order, batch_size=1)
    plan = make_plan(evaluator, parameters, settings)
    folder = out if out is not None else output_root / _safe(sc.name) / f"sweep-{method}-{plan_hash(plan)}"
    sims = 2 if baseline is not None and any(o.diff for o in specs) else 1
    extra = {
        **scenario_manifest(loaded),
        "baseline": None if baseline is None else {
            "path": str(baseline.path), "scenario_hash": baseline.hash,
            "scenario_files": [str(p) for p in baseline.files]},
        "applied_to_baseline": evaluator.applies_to_baseline if baseline is not None else {},
        "scale": scale,
        "scale_note": scale_note(scale),
        "simulations_per_run": sims * reps,
        "output_definitions": {o.text: {"metric": o.metric, "years": [o.first, o.last],
                                        "difference": o.diff, "unit": o.unit,
                                        "geography": ENGLAND} for o in specs},
        "output_note": ("England value, mean over the replications of a design point; diff: is "
                        "scenario minus baseline with common random numbers (same seed and "
                        "replication numbers), the point's values applied to both"),
        "effects_note": ("intervention effects are point values in a sweep: the sampled value, or "
                         "central; replications differ only by simulation noise"),
        "discount_rate": evaluator.rate,
        "geography": geography_manifest(prep.las),
        "calibration_vintage": CALIBRATION_VINTAGE,
    }
    return ScenarioSweep(evaluator, parameters, settings, plan, Path(folder), extra,
                         {o.text: o.unit for o in specs})


def run_scenario_sweep(
    loaded: LoadedScenario,
    method: str = "sobol",
    samples: int | None = None,
    outputs: list[str] | None = None,
    baseline: LoadedScenario | None = None,
    replications: int | None = None,
    scale: float | None = None,
    seed: int | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    dask_workers: int | None = None,
    out: Path | None = None,
    force: bool = False,
    second_order: bool = False,
    dummy: bool = False,
    progress: Progress | None = None,
    on_start: Callable[[dict], None] | None = None,
    output_root: Path = Path("outputs"),
) -> SweepOutcome:
    """Sweep a loaded scenario's `uncertain` parameters (see the module docstring).

    `samples` is SALib's N (default `DEFAULT_SAMPLES[method]`), `replications` per design
    point (default 2), `scale` and `seed` default to the scenario's `run:` settings. The
    folder defaults to `outputs/<scenario>/sweep-<method>-<plan hash>`, so the same command
    resumes the same sweep. Raises `CaresimError` for user mistakes, `SweepIncomplete` if
    runs failed twice, `SweepInterrupted` on Ctrl-C."""
    sw = prepare_sweep(loaded, method=method, samples=samples, outputs=outputs, baseline=baseline,
                       replications=replications, scale=scale, seed=seed, out=out,
                       second_order=second_order, dummy=dummy, output_root=output_root)
    return run_sweep(sw.evaluator, sw.parameters, sw.settings, sw.folder, force=force, jobs=jobs,
                     scheduler=scheduler, dask_workers=dask_workers, progress=progress,
                     manifest_extra=sw.manifest_extra, units=sw.units, on_start=on_start)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "scenario"
