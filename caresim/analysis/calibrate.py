"""Calibration: fit a scenario's uncertain parameters to published targets, with ranges.

Method (documented for reviewers in docs/calibration.md):

1. **National parameters** (`parameters:` in the config: a dotted path into the scenario, bounds,
   log or linear scale) are fitted by bounded nonlinear least squares
   (`scipy.optimize.least_squares`, trust region reflective) on the simulation itself, run
   from the published state at the start date with published referrals and UASC arrivals as
   inputs. Every evaluation uses the same seed: common random numbers make the objective
   smooth enough for finite differences, whose columns run in parallel. Residuals are
   (simulated - published) / (published x max(tolerance, floor)) for counts, and absolute
   differences over max(tolerance, 1 point or 1 week) for shares and durations.
2. **Local authority multipliers**: each LA index (e.g. care entries per referral) gets a
   fitted correction per LA by damped fixed-point iteration, m <- m x (published /
   simulated)^damping, on the LA's targets (e.g. care starts) averaged over the chosen years,
   at a larger scale to keep LA sampling noise down. Then the national fit is refined.
3. **Ranges**: a sandwich (Gauss-Newton) covariance at the optimum, in the unit-scaled
   parameter space: A^-1 (J' S_mc J / R + s^2 J' T J + P) A^-1 with A = J'J + P, where
   P = 12 I is each parameter's bounds as a weak prior (a uniform over them has variance
   1/12), so a parameter the targets do not identify spans its bounds; S_mc is the
   covariance of the weighted residuals across extra replications with other seeds (the
   Monte Carlo noise frozen into the fit by common random numbers, correlations across
   targets included), R the replications per evaluation, T the published tolerances in
   residual units, and s^2 = max(1, residual variance) so misfit widens the ranges. 95%
   intervals and `posterior_draws` joint draws (multivariate normal, clipped to the bounds)
   are written out; `caresim run --parameter-uncertainty` runs each replication with one
   draw.

The engine is only reached through `runner.run_one`; nothing here touches its internals.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import hashlib
import io
import json
import re
import multiprocessing as mp
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

import numpy as np
import pandas as pd
import pydantic
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt
from ruamel.yaml import YAML
from scipy.optimize import least_squares

from caresim.analysis.targets import fit_table, is_la, load_targets, mean_values, simulated_values
from caresim.errors import CaresimError
from caresim.results.summary import add_geographies, add_ratios
from caresim.runner.replications import run_one
from caresim.scenario.loader import load_document, load_scenario
from caresim.scenario.model import LaIndex, Scenario
from caresim.scenario.uncertain import PathError, get_value, set_value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParamSpec(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    path: str = Field(description="dotted path into the scenario, e.g. court.capacity_cases.value")
    also: list[str] = Field(
        default_factory=list,
        description="further paths set to the same value: one parameter shared by several "
                    "transitions (their prior values must be equal)")
    bounds: tuple[float, float]
    log: bool = False
    year: int | None = Field(
        None, description="the financial year (ending year) the parameter is for, if it is one "
                          "year's value: a backtest trained to an earlier year does not fit it")

    @pydantic.model_validator(mode="after")
    def _ok(self) -> "ParamSpec":
        lo, hi = self.bounds
        if not lo < hi:
            raise ValueError(f"bounds must be increasing, got {self.bounds}")
        if self.log and lo <= 0:
            raise ValueError("log-scale parameters need positive bounds")
        if len(set(self.paths)) < len(self.paths):
            raise ValueError(f"a path is given twice in path and also: {self.paths}")
        return self

    @property
    def paths(self) -> list[str]:
        """Every scenario path the parameter sets: `path`, then `also`."""
        return [self.path, *self.also]


class LocalSpec(_Strict):
    indices: dict[LaIndex, str] = Field(description="LA index -> the LA target metric it is fitted to")
    years: list[int]
    scale: Annotated[float, Field(gt=0, le=1)] = 0.5
    replications: PositiveInt = 1
    iterations: PositiveInt = 3
    damping: Annotated[float, Field(gt=0, le=1)] = 0.7
    bounds: tuple[PositiveFloat, PositiveFloat] = (0.2, 5.0)


class UnpublishedUasc(_Strict):
    """UASC arrivals in fitted years without a published national figure, derived from
    published ones (say how in `note`); used only by fitting runs, never by projections."""

    per_year: Annotated[float, Field(ge=0)]
    sources: list[str] = Field(default_factory=list)
    note: str = ""


class CalibrationConfig(_Strict):
    """calibration/config.yaml: what to fit, to what, and how hard to try."""

    scenario: str = Field(description="the prior scenario, relative to this file")
    targets: str = "targets.csv.gz"
    start: dt.date
    train: tuple[int, int] = Field(description="financial years (ending 31 March) fitted")
    metrics: list[str] = Field(description="England target metrics in the objective")
    floor: PositiveFloat = Field(0.02, description="smallest relative sd of a count in the objective")
    scale: Annotated[float, Field(gt=0, le=1)] = 0.1
    replications: PositiveInt = 2
    seed: int = 20190401
    max_evaluations: PositiveInt = 200
    refine_evaluations: PositiveInt = 60
    diff_step: PositiveFloat = 0.04
    parameters: list[ParamSpec]
    local: LocalSpec | None = None
    uasc_unpublished: UnpublishedUasc | None = Field(
        None, description="UASC arrivals per year in fitted years DfE's tables lack (else the "
                          "scenario's per_year, a projection assumption)")
    posterior_draws: PositiveInt = 200
    uncertainty_replications: Annotated[int, Field(ge=3)] = Field(
        8, description="extra replications at the optimum (other seeds) to measure Monte Carlo noise")
    fitted_dir: str = "fitted"


def load_config(path: Path | str, seed: int | None = None) -> tuple[CalibrationConfig, Path]:
    """Read and validate a calibration config (with `seed`, if given, for its own). Errors
    name the file, line and key: the schema's, and keys that must name something elsewhere
    (a parameter path missing from the prior scenario or a prior outside its bounds, a metric
    with no England target in the fitted years, an LA index fitted to a metric no LA
    publishes)."""
    path = Path(path)
    cfg = load_document(path, CalibrationConfig, check=lambda c: _config_problems(c, path.resolve().parent))
    if seed is not None:
        cfg = cfg.model_copy(update={"seed": seed})
    return cfg, path.resolve()


def _config_problems(cfg: CalibrationConfig, folder: Path):
    """(key path, message) for each key of a valid config that names nothing in the prior
    scenario or the targets (see `load_config`)."""
    for key in ("scenario", "targets"):
        if not (folder / getattr(cfg, key)).is_file():
            yield (key,), f"file not found: {folder / getattr(cfg, key)}"
            return
    prior = load_scenario(folder / cfg.scenario).resolved
    for i, spec in enumerate(cfg.parameters):
        first = None
        for j, path in enumerate(spec.paths):
            key = ("parameters", i, "path") if j == 0 else ("parameters", i, "also", j - 1)
            try:
                value = get_value(prior, path)
            except PathError as exc:
                hint = f"; did you mean {exc.suggestion!r}?" if exc.suggestion else ""
                yield key, f"not in the prior scenario ({cfg.scenario}): {exc.message}{hint}"
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                yield key, f"{path} is {value!r} in the prior scenario, not a number"
            elif j == 0:
                first = value
                if not spec.bounds[0] <= value <= spec.bounds[1]:
                    yield ("parameters", i, "bounds"), (f"the prior scenario's value {value:g} is outside "
                                                        f"the bounds {list(spec.bounds)}")
            elif first is not None and value != first:
                yield key, (f"{path} is {value:g} in the prior scenario, {spec.path} is {first:g}: "
                            "a shared parameter's paths must start equal")
    targets = load_targets(folder / cfg.targets)
    fitted = targets[targets.year.between(*cfg.train)]
    england = set(fitted.metric[fitted.geography == "England"])
    for i, metric in enumerate(cfg.metrics):
        if metric not in england:
            yield ("metrics", i), (f"no England target for {metric!r} in {cfg.train[0]}-{cfg.train[1]}"
                                   f"{_allowed(metric, england)}")
    if cfg.local is not None:
        years = targets[targets.year.isin(cfg.local.years)]
        la = set(years.metric[is_la(years.geography)])
        for index, metric in cfg.local.indices.items():
            if metric not in la:
                yield ("local", "indices", index), (
                    f"no LA target for {metric!r} in the years {cfg.local.years}{_allowed(metric, la)}")


def _allowed(name: str, names: set[str]) -> str:
    """'; did you mean ...?' if some names are close, else the names allowed."""
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return f"; did you mean {' or '.join(map(repr, close))}?"
    return f"; allowed: {', '.join(sorted(names))}"


def set_path(doc: dict, path: str, value: Any) -> None:
    """Set an existing value at a dotted path in a nested mapping: `court.capacity_cases.value`,
    with `[k]` for the k-th item of a list (`interventions.fgc.effects[0].central`).
    Raises `CaresimError` naming the missing key."""
    try:
        set_value(doc, path, value)
    except PathError as exc:
        hint = f"; did you mean {exc.suggestion!r}?" if exc.suggestion else ""
        raise CaresimError(f"parameter path {path!r}: {exc.message}{hint}") from None


def get_path(doc: dict, path: str) -> Any:
    """The value at a dotted path (as `set_path`); raises `KeyError` if it is missing."""
    try:
        return get_value(doc, path)
    except PathError as exc:
        raise KeyError(f"{path}: {exc.message}") from None


class Transform:
    """Parameters <-> unit coordinates x in [0, 1] (log or linear between the bounds)."""

    def __init__(self, specs: list[ParamSpec]):
        self.specs = specs
        self.lo = np.array([np.log(s.bounds[0]) if s.log else s.bounds[0] for s in specs])
        self.hi = np.array([np.log(s.bounds[1]) if s.log else s.bounds[1] for s in specs])
        self.log = np.array([s.log for s in specs])

    def to_x(self, theta: np.ndarray) -> np.ndarray:
        g = np.where(self.log, np.log(np.maximum(theta, 1e-300)), theta)
        return (g - self.lo) / (self.hi - self.lo)

    def to_theta(self, x: np.ndarray) -> np.ndarray:
        g = self.lo + np.clip(x, 0.0, 1.0) * (self.hi - self.lo)
        return np.where(self.log, np.exp(g), g)


@dataclass
class Problem:
    """Everything an evaluation needs, picklable for worker processes."""

    base: dict  # the prior scenario, resolved (JSON-able)
    la_inputs: pd.DataFrame
    history: pd.DataFrame
    targets: pd.DataFrame
    config: CalibrationConfig
    regions: pd.Series
    la_multipliers: pd.DataFrame | None = None
    evaluations: int = 0
    log: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def note(self, stage: str, cost: float | None = None) -> None:
        """One row of the fit's history (`fit_history.csv`): the stage, the objective's
        cost where there is one, simulation runs and seconds since the problem was built."""
        self.log.append({"stage": stage, "cost": cost, "simulations": self.evaluations,
                         "seconds": round(time.perf_counter() - self.started, 1)})

    def scenario(self, theta: np.ndarray, years: int | None = None) -> Scenario:
        doc = copy.deepcopy(self.base)
        for spec, v in zip(self.config.parameters, theta):
            for path in spec.paths:
                set_path(doc, path, float(v))
        doc["start"] = self.config.start.isoformat()
        doc["years"] = years or (self.config.train[1] - self.config.start.year)
        doc["arrivals"]["referrals"]["use_published"] = True
        doc["arrivals"]["uasc"]["use_published"] = True
        if self.config.uasc_unpublished is not None:
            doc["arrivals"]["uasc"]["per_year"] = self.config.uasc_unpublished.per_year
        return Scenario.model_validate(doc)

    def inputs(self) -> pd.DataFrame:
        return with_multipliers(self.la_inputs, self.la_multipliers)


def with_multipliers(la_inputs: pd.DataFrame, mult: pd.DataFrame | None) -> pd.DataFrame:
    """LA table with fitted multipliers as `<index>_fit` columns."""
    if mult is None:
        return la_inputs
    m = mult.rename(columns={c: f"{c}_fit" for c in mult.columns if c != "geography"})
    return la_inputs.drop(columns=[c for c in m.columns if c in la_inputs.columns and c != "geography"]).merge(
        m, on="geography", how="left")


def _simulate(args: tuple) -> pd.DataFrame:
    scenario, la_inputs, history, seed, rep, scale = args
    return run_one(scenario, la_inputs, seed, rep, scale, history).records


def simulate_means(problem: Problem, scenarios: list[Scenario], scale: float, reps: int,
                   executor: Executor | None) -> list[pd.Series]:
    """Ensemble means (metric, year, geography incl. regions and England) per scenario.
    All scenarios share the seed: common random numbers."""
    la = problem.inputs()
    tasks = [(sc, la, problem.history, problem.config.seed, r, scale)
             for sc in scenarios for r in range(reps)]
    if executor is None:
        out = [_simulate(t) for t in tasks]
    else:
        out = list(executor.map(_simulate, tasks))
    means = []
    for i in range(len(scenarios)):
        frames = []
        for r in range(reps):
            frames.append(out[i * reps + r])  # run_one has set its `replication` column
        full = add_ratios(add_geographies(pd.concat(frames, ignore_index=True), problem.regions))
        means.append(mean_values(full))
    problem.evaluations += len(tasks)
    return means


def residuals(problem: Problem, means: pd.Series, rows: pd.DataFrame) -> np.ndarray:
    """Weighted residuals of the national objective targets."""
    sim = simulated_values(rows, means).to_numpy()
    pub = rows["published"].to_numpy(float)
    tol = rows["tolerance"].to_numpy(float)
    count = rows["kind"].isin(["stock", "flow"]).to_numpy()
    floor = problem.config.floor
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(count, (sim - pub) / (np.abs(pub) * np.maximum(tol, floor)),
                     (sim - pub) / np.maximum(tol, 1.0))
    return np.nan_to_num(r, nan=0.0)


def objective_rows(problem: Problem) -> pd.DataFrame:
    """The targets in the national objective: England, chosen metrics, training years,
    not stocks at the start date (those are inputs), no one-sided bounds."""
    t = problem.targets
    c = problem.config
    rows = t[(t.geography == "England") & t.metric.isin(c.metrics) & t.year.between(*c.train)
             & (t.qualifier == "") & ~((t.kind == "stock") & (t.year <= c.start.year))]
    if rows.empty:
        raise CaresimError("no targets in the objective: check metrics and train years")
    return rows


@dataclass
class FitResult:
    theta: np.ndarray
    x: np.ndarray
    jac: np.ndarray
    cost: float
    n_residuals: int
    lower: np.ndarray
    upper: np.ndarray
    sd_x: np.ndarray
    draws: np.ndarray
    la_multipliers: pd.DataFrame | None
    evaluations: int
    wall_seconds: float
    history: list[dict]


def _national_fit(problem: Problem, x0: np.ndarray, tr: Transform, executor: Executor | None,
                  max_nfev: int, progress: Callable[[str], None], stage: str = "national") -> Any:
    rows = objective_rows(problem)
    cfg = problem.config
    h = cfg.diff_step
    cache: dict[bytes, np.ndarray] = {}

    def batch(xs: list[np.ndarray]) -> list[np.ndarray]:
        todo = [x for x in xs if x.tobytes() not in cache]
        if todo:
            scs = [problem.scenario(tr.to_theta(x)) for x in todo]
            for x, m in zip(todo, simulate_means(problem, scs, cfg.scale, cfg.replications, executor)):
                cache[x.tobytes()] = residuals(problem, m, rows)
        return [cache[x.tobytes()] for x in xs]

    def fun(x: np.ndarray) -> np.ndarray:
        r = batch([x])[0]
        problem.note(stage, float(0.5 * r @ r))
        done = sum(e["cost"] is not None for e in problem.log)
        progress(f"{stage} evaluation {done}: cost {0.5 * r @ r:.2f}")
        return r

    def jac(x: np.ndarray) -> np.ndarray:
        steps = []
        for i in range(x.size):
            xi = x.copy()
            # forward difference, backward at the upper bound
            xi[i] = x[i] + h if x[i] + h <= 1.0 else x[i] - h
            steps.append(xi)
        f0, *fs = batch([x] + steps)
        return np.stack([(f - f0) / (s[i] - x[i]) for i, (f, s) in enumerate(zip(fs, steps))], axis=1)

    return least_squares(fun, x0, jac=jac, bounds=(0.0, 1.0), method="trf", x_scale=1.0,
                         max_nfev=max_nfev, xtol=1e-3, ftol=1e-4)


def _local_fit(problem: Problem, theta: np.ndarray, executor: Executor | None,
               progress: Callable[[str], None]) -> pd.DataFrame:
    spec = problem.config.local
    assert spec is not None
    las = problem.la_inputs[problem.la_inputs.level == "la"]["geography"].sort_values().to_numpy()
    mult = pd.DataFrame({"geography": las, **{idx: 1.0 for idx in spec.indices}})
    if problem.la_multipliers is not None:
        mult = problem.la_multipliers.copy()
    t = problem.targets
    for it in range(spec.iterations):
        problem.la_multipliers = mult
        sc = problem.scenario(theta)
        means = simulate_means(problem, [sc], spec.scale, spec.replications, executor)[0]
        err = {}
        for idx, metric in spec.indices.items():
            pub = t[(t.metric == metric) & t.year.isin(spec.years) & t.geography.isin(las)]
            pub_mean = pub.groupby("geography")["published"].mean()
            sim = means.xs(metric, level="metric").reset_index()
            sim = sim[sim.year.isin(spec.years) & sim.geography.isin(las)].groupby("geography")["value"].mean()
            err[metric] = float(np.nanmedian(np.abs(sim.reindex(pub_mean.index) / pub_mean - 1)))
            ratio = (pub_mean / sim).reindex(mult.geography)
            ratio = ratio.where(np.isfinite(ratio) & (ratio > 0), 1.0)
            mult[idx] = np.clip(mult[idx].to_numpy() * ratio.to_numpy() ** spec.damping, *spec.bounds)
        problem.note("local")
        progress(f"LA iteration {it + 1}: median |relative error| before update "
                 + ", ".join(f"{m} {e:.1%}" for m, e in err.items()))
    problem.la_multipliers = mult
    return mult


def calibrate(problem: Problem, jobs: int = 1, progress: Callable[[str], None] = lambda s: None,
              executor: Executor | None = None) -> FitResult:
    """Fit national parameters, then LA multipliers, then refine; return the fit and ranges."""
    cfg = problem.config
    t0 = time.perf_counter()
    tr = Transform(cfg.parameters)
    theta0 = np.array([float(get_path(problem.base, s.path)) for s in cfg.parameters])
    for s, v in zip(cfg.parameters, theta0):
        if not s.bounds[0] <= v <= s.bounds[1]:
            raise CaresimError(f"parameter {s.name}: prior value {v} outside bounds {s.bounds}")
    own = executor is None and jobs > 1
    if own:
        executor = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("forkserver"))
    try:
        res = _national_fit(problem, tr.to_x(theta0), tr, executor, cfg.max_evaluations, progress)
        if cfg.local is not None:
            _local_fit(problem, tr.to_theta(res.x), executor, progress)
            res = _national_fit(problem, res.x, tr, executor, cfg.refine_evaluations, progress, "refine")
        J = res.jac
        n, p = J.shape
        s2 = max(1.0, 2.0 * res.cost / max(n - p, 1))
        cov = _sandwich(problem, tr, res.x, J, s2, executor, progress)
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        lower = tr.to_theta(res.x - 1.96 * sd)
        upper = tr.to_theta(res.x + 1.96 * sd)
        g = np.random.default_rng(cfg.seed)
        xs = g.multivariate_normal(res.x, cov, size=cfg.posterior_draws, method="svd")
        draws = np.stack([tr.to_theta(x) for x in xs])
    finally:
        if own and executor is not None:
            executor.shutdown()
    return FitResult(theta=tr.to_theta(res.x), x=res.x, jac=J, cost=float(res.cost),
                     n_residuals=n, lower=lower, upper=upper, sd_x=sd, draws=draws,
                     la_multipliers=problem.la_multipliers, evaluations=problem.evaluations,
                     wall_seconds=time.perf_counter() - t0, history=problem.log)


def _sandwich(problem: Problem, tr: Transform, x: np.ndarray, J: np.ndarray, s2: float,
              executor: Executor | None, progress: Callable[[str], None]) -> np.ndarray:
    """Covariance of the fitted unit-scaled parameters (see the module docstring)."""
    cfg = problem.config
    rows = objective_rows(problem)
    k = cfg.uncertainty_replications
    # replications 1000.. are other random streams than the fit's 0..R-1
    sc = problem.scenario(tr.to_theta(x))
    la = problem.inputs()
    tasks = [(sc, la, problem.history, cfg.seed, 1000 + r, cfg.scale) for r in range(k)]
    recs = list(executor.map(_simulate, tasks)) if executor is not None else [_simulate(t) for t in tasks]
    problem.evaluations += k
    res = np.stack([residuals(problem, mean_values(add_ratios(add_geographies(r, problem.regions))), rows)
                    for r in recs])
    s_mc = np.cov(res, rowvar=False)
    tol = rows["tolerance"].to_numpy(float)
    count = rows["kind"].isin(["stock", "flow"]).to_numpy()
    t_diag = np.where(count, tol / np.maximum(tol, cfg.floor), tol / np.maximum(tol, 1.0)) ** 2
    problem.note("uncertainty")
    progress(f"Monte Carlo noise measured on {k} extra replications")
    return sandwich_covariance(J, s_mc / cfg.replications + s2 * np.diag(t_diag))


# A uniform distribution over a parameter's bounds has variance 1/12 in unit coordinates.
BOUNDS_PRECISION = 12.0


def sandwich_covariance(J: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """A^-1 (J' noise J + P) A^-1 with A = J'J + P, P = 12 I: the sandwich covariance of
    unit-scaled parameters fitted by least squares, with each parameter's bounds as a weak
    prior (a uniform over them, as a normal of the same variance). Where the targets
    identify a parameter, J'J is orders of magnitude larger than 12 and the prior changes
    little (docs/calibration.md gives the measured change); where they do not (a zero or
    near-zero direction of J), the range is the bounds' spread instead of the zero or
    arbitrary width a truncated pseudo-inverse gives."""
    prior = BOUNDS_PRECISION * np.eye(J.shape[1])
    a_inv = np.linalg.inv(J.T @ J + prior)
    return a_inv @ (J.T @ noise @ J + prior) @ a_inv


def final_fit_table(problem: Problem, theta: np.ndarray, executor: Executor | None,
                    years: int | None = None) -> pd.DataFrame:
    """Every target against the calibrated model (all geographies, all simulated years)."""
    cfg = problem.config
    sc = problem.scenario(theta, years)
    scale = cfg.local.scale if cfg.local else cfg.scale
    reps = max(cfg.replications, cfg.local.replications if cfg.local else 1)
    means = simulate_means(problem, [sc], scale, reps, executor)[0]
    t = problem.targets
    t = t[t.year.between(cfg.start.year, cfg.start.year + sc.years)]
    return fit_table(t, simulated_values(t, means), training=cfg.train)


def targets_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def fitted_yaml(params: pd.DataFrame, prior_rel: str, command: str, manifest_rel: str,
                data: dict[str, str], prior_doc: dict | None = None) -> str:
    """A partial scenario: `extends` the prior and sets the fitted values (and the fitted
    data files). Where the fitted number is a parameter's own value (`value`, `p`, `mean`),
    its `note` says it was fitted and its `range` becomes the 95% interval, so sensitivity
    sweeps use the calibrated range. `params` is `parameters_table`'s output.

    `extends` merges mappings key by key but replaces lists, so a path through a list item
    (`trends[0].per_year.value`) copies the whole list from `prior_doc` (the prior as
    written, `caresim.scenario.loader.load_merged`) and sets the value in the copy."""
    doc: dict = {"extends": prior_rel, "data": dict(data)}
    lines = [
        "# Fitted by `caresim calibrate` — do not edit by hand; rerun the command instead.",
        f"# command: {command}",
        f"# manifest: {manifest_rel} (targets vintage, method, seed, 95% intervals)",
        "# Fitted values (95% interval):",
    ]
    for r in params.itertuples():
        paths = [r.path, *filter(None, r.also.split(";"))]
        for path in paths:
            *parents, last = path.split(".")
            node, prior_node = doc, prior_doc
            for seg in parents:
                node, prior_node = _descend(node, prior_node, seg, path)
            node[last] = round(float(r.fitted), 6)
            if last in ("value", "p", "mean"):
                node["note"] = (f"fitted by caresim calibrate ({manifest_rel}): {r.fitted:.4g}, 95% "
                                f"interval {r.lower_95:.4g} to {r.upper_95:.4g}; prior {r.prior:.4g} "
                                "(scenarios/baseline_derived.yaml)")
                node["range"] = [round(float(r.lower_95), 6), round(float(r.upper_95), 6)]
        lines.append(f"#   {r.name:<32} {' = '.join(paths)} = {r.fitted:.6g}  [{r.lower_95:.4g}, {r.upper_95:.4g}]")
    y = YAML()
    y.default_flow_style = False
    buf = io.StringIO()
    y.dump(doc, buf)
    return "\n".join(lines) + "\n" + buf.getvalue()


def _descend(node: dict, prior: Any, seg: str, path: str) -> tuple[dict, Any]:
    """One step of a fitted path (`court`, `effects[0]`) in the overlay being built, and
    in the prior alongside it; a list met on the way is copied whole from the prior."""
    m = re.fullmatch(r"([^\[\]]+)((?:\[\d+\])*)", seg)
    if m is None:
        raise CaresimError(f"parameter path {path!r}: cannot read {seg!r}")
    key, indices = m[1], [int(i) for i in re.findall(r"\d+", m[2])]
    if isinstance(prior, dict):  # the prior's own key: YAML reads `2021:` as a number
        key = next((k for k in prior if str(k) == key), key)
        prior = prior.get(key)
    else:
        prior = None
    if not indices:
        return node.setdefault(key, {}), prior
    if key not in node:
        if not isinstance(prior, list):
            raise CaresimError(f"parameter path {path!r}: {key!r} is not a list in the prior scenario")
        node[key] = copy.deepcopy(prior)
    node, prior = node[key], prior
    for i in indices:
        if not isinstance(node, list) or i >= len(node):
            raise CaresimError(f"parameter path {path!r}: {key} has no item {i}")
        node, prior = node[i], prior[i] if isinstance(prior, list) and i < len(prior) else None
    return node, prior


def parameter_samples(cfg: CalibrationConfig, fit: FitResult) -> pd.DataFrame:
    rows = []
    for d, theta in enumerate(fit.draws):
        for s, v in zip(cfg.parameters, theta):
            rows.extend({"draw": d, "name": s.name, "path": path, "value": float(v)} for path in s.paths)
    return pd.DataFrame(rows)


def parameters_table(cfg: CalibrationConfig, fit: FitResult, prior: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "name": [s.name for s in cfg.parameters],
        "path": [s.path for s in cfg.parameters],
        "also": [";".join(s.also) for s in cfg.parameters],
        "prior": prior,
        "fitted": fit.theta,
        "lower_95": fit.lower,
        "upper_95": fit.upper,
        "bound_low": [s.bounds[0] for s in cfg.parameters],
        "bound_high": [s.bounds[1] for s in cfg.parameters],
        "at_bound": [bool(x <= 1e-3 or x >= 1 - 1e-3) for x in fit.x],
    })


def targets_vintage(path: Path) -> str:
    """What a targets file holds, read from it: its last financial year and row count."""
    years = pd.read_csv(path, usecols=["year"]).year
    last = int(years.max())
    return (f"published figures to {last - 1}-{last % 100:02d} (stocks at 31 March {last}), "
            f"the latest release of each year; {len(years):,} rows")


def _as_given(path: Path) -> str:
    """`path` relative to the working directory when it is inside it (as the recorded
    command's own paths are), so a committed manifest names no one's machine."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def manifest(cfg: CalibrationConfig, fit: FitResult, targets_path: Path, command: str,
             params: pd.DataFrame) -> dict:
    import caresim

    return {
        "caresim_version": caresim.__version__,
        "command": command,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "method": "bounded least squares (TRF) on the simulation with common random numbers; "
                  "LA multipliers by damped fixed-point iteration; 95% intervals from the "
                  "Gauss-Newton (Laplace) approximation",
        "targets": _as_given(targets_path),
        "targets_sha256_16": targets_hash(targets_path),
        "targets_vintage": targets_vintage(targets_path),
        "seed": cfg.seed,
        "scale": cfg.scale,
        "replications": cfg.replications,
        "train_years": list(cfg.train),
        "start": cfg.start.isoformat(),
        "evaluations": fit.evaluations,
        "objective_cost": fit.cost,
        "residuals": fit.n_residuals,
        "wall_seconds": round(fit.wall_seconds, 1),
        "parameters": json.loads(params.to_json(orient="records")),
        "config": json.loads(cfg.model_dump_json()),
    }
