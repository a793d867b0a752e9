"""Sensitivity analysis with SALib: parameters, designs, indices, noise and warnings.

Pure functions, no files: `caresim.analysis.sweep` runs the design and stores the runs.

**The unit hypercube.** SALib is given a problem whose every parameter has bounds [0, 1]
(`salib_problem`). A design point u is turned into parameter values by each parameter's
quantile function (`SweptParameter.values`), so the same design serves any distribution
(uniform, triangular, truncated normal, lognormal, an intervention's evidence) and the
parameters are independent with exactly their declared marginals. Variance-based indices
(Sobol', FAST) and the delta moment-independent index do not depend on this
reparameterisation. Morris elementary effects do: they are measured per unit of each
parameter's *probability* scale, so `mu_star` is comparable across parameters (the change
in the output for a move across the whole distribution), in the output's units.

**Methods** (`METHODS`) and the design size for N (`--samples`) and D parameters:

| method | sampler | points | analysis |
|---|---|---|---|
| `sobol` | `SALib.sample.sobol` (scrambled Sobol' sequence; Saltelli's scheme) | N(D+2), N(2D+2) with second order | `SALib.analyze.sobol`: S1, ST (and S2) with bootstrap intervals |
| `morris` | `SALib.sample.morris`, 4 levels, N trajectories | N(D+1) | `SALib.analyze.morris`: mu_star (with interval), sigma |
| `fast` | `SALib.sample.fast_sampler` (eFAST, M = 4; N > 64) | N D | `SALib.analyze.fast`: S1, ST with bootstrap intervals |
| `delta` | `SALib.sample.latin` (Latin hypercube) | N | `SALib.analyze.delta`: delta and S1 with bootstrap intervals |

Sampling and the bootstrap use the sweep's seed, so the indices are a pure function of
the design and the outputs.

**Tornado.** One-at-a-time runs (`tornado_design`): a centre point with every parameter at
its median, and each parameter at its 5th and 95th percentiles with the others at their
medians.

**Simulation noise** (`noise_table`): each design point is run with R replications (the
same replication numbers and seed at every point: common random numbers), and the output
is their mean. The noise in a point's mean has variance s^2/R, s^2 the variance between its
replications; averaged over the points and divided by the variance of the point means
across the design, it is the share of the output's variance that is simulation noise
rather than parameter variation. Under common random numbers part of the noise is shared
by all points and does not spread their means, so this share is an upper bound.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import special
from threadpoolctl import threadpool_limits

from caresim.errors import CaresimError
from caresim.scenario.uncertain import UncertainParam, clip_tails, effect_of, get_value, value_kind

METHODS: tuple[str, ...] = ("sobol", "morris", "fast", "delta")
#: default N per method (--samples)
DEFAULT_SAMPLES: dict[str, int] = {"sobol": 64, "morris": 10, "fast": 65, "delta": 128}
#: indices.csv columns per method (after output, parameter, method)
INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "sobol": ("S1", "S1_conf", "ST", "ST_conf"),
    "fast": ("S1", "S1_conf", "ST", "ST_conf"),
    "morris": ("mu_star", "mu_star_conf", "sigma"),
    "delta": ("delta", "delta_conf", "S1", "S1_conf"),
}
MORRIS_LEVELS = 4
FAST_M = 4
#: bootstrap resamples and confidence level of every interval
RESAMPLES = 100
CONF_LEVEL = 0.95
#: confidence half-width above which an index is called unstable
UNSTABLE_CONF = 0.1
#: noise share above which the sweep warns
NOISY_SHARE = 0.1
#: percentiles of the tornado's low and high runs
TORNADO_LOW, TORNADO_HIGH = 0.05, 0.95
#: name of the optional dummy parameter (it changes nothing: a yardstick for noise)
DUMMY = "_dummy"


@dataclass(frozen=True)
class SweptParameter:
    """A parameter as a sweep uses it: its quantile function on [0, 1] and how to apply it.

    `kind` is 'number', 'integer' or 'date' (values are then days of offset from
    `written`), or 'dummy'. `quantile` maps probabilities to values (before rounding)."""

    name: str
    path: str | None
    kind: str
    written: Any
    quantile: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    spec: dict = field(default_factory=dict)

    def values(self, u: Any) -> np.ndarray:
        """Values (natural units; integers and date offsets rounded) at probabilities `u`."""
        x = np.asarray(self.quantile(np.asarray(u, dtype=float)), dtype=float)
        return np.round(x) if self.kind in ("integer", "date") else x

    def describe(self) -> dict:
        """For the manifest: the entry as written plus its 5th/50th/95th percentiles."""
        p05, p50, p95 = (float(v) for v in self.values([0.05, 0.5, 0.95]))
        written = self.written.isoformat() if isinstance(self.written, dt.date) else self.written
        return {"name": self.name, "path": self.path, "kind": self.kind, "written": written,
                **self.spec, "p05": p05, "p50": p50, "p95": p95}


def compile_parameters(scenario: Any, dummy: bool = False) -> list[SweptParameter]:
    """The scenario's `uncertain` entries as `SweptParameter`s (validated already by the
    scenario model). `evidence` uses the intervention effect's split lognormal,
    `draw_ratio(hr, Phi^-1(u))`. With `dummy`, a last parameter `_dummy` (uniform on [0, 1],
    applied to nothing) is added."""
    from caresim.interventions.effect import draw_ratio

    python = scenario.model_dump()
    out = []
    for p in scenario.uncertain:
        p = p.resolved(python)
        written = get_value(python, p.path)
        kind = value_kind(written) or "number"
        spec = p.model_dump(exclude_none=True, exclude={"name", "path"})
        if p.dist == "evidence":
            name, k = effect_of(p.path)  # type: ignore[misc]
            hr = scenario.interventions[name].effects[k]

            def q(u: np.ndarray, hr=hr) -> np.ndarray:
                z = special.ndtri(clip_tails(u))
                return np.array([draw_ratio(hr, float(v)) for v in np.atleast_1d(z)]).reshape(np.shape(u))

            spec.update(central=hr.central, interval=list(hr.interval), level=hr.level)
            out.append(SweptParameter(p.name, p.path, kind, written, q, spec))
        else:
            out.append(SweptParameter(p.name, p.path, kind, written, p.quantile, spec))
    if dummy:
        out.append(dummy_parameter())
    return out


def dummy_parameter() -> SweptParameter:
    """A parameter that changes nothing: its index measures the indices' noise floor."""
    return SweptParameter(DUMMY, None, "dummy", None, lambda u: np.asarray(u, dtype=float),
                          {"dist": "uniform", "low": 0.0, "high": 1.0,
                           "note": "dummy: applied to nothing"})


def uniform_parameter(name: str, low: float, high: float) -> SweptParameter:
    """A free-standing uniform parameter (for test functions such as Ishigami)."""
    p = UncertainParam(name=name, path=name, dist="uniform", low=low, high=high)
    return SweptParameter(name, None, "number", None, p.quantile, {"dist": "uniform", "low": low, "high": high})


# --- designs -----------------------------------------------------------------------------


def salib_problem(names: list[str]) -> dict:
    """SALib's problem: every parameter on [0, 1] (its probability scale)."""
    return {"num_vars": len(names), "names": list(names), "bounds": [[0.0, 1.0]] * len(names)}


def check_samples(method: str, n: int, d: int) -> None:
    """Raise `CaresimError` if N cannot give a design for `method` with d parameters."""
    if method not in METHODS:
        raise CaresimError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if d < 1:
        raise CaresimError("nothing to sweep: no uncertain parameters")
    minimum = {"sobol": 2, "morris": 2, "fast": 4 * FAST_M ** 2 + 1, "delta": 10}[method]
    if n < minimum:
        raise CaresimError(f"--samples {n} is too small for {method}: at least {minimum}")
    if method == "morris" and d < 2:
        raise CaresimError("morris needs at least 2 parameters")


def design_size(method: str, n: int, d: int, second_order: bool = False) -> int:
    """Number of design points SALib gives for N and D."""
    return {"sobol": n * (2 * d + 2 if second_order else d + 2), "morris": n * (d + 1),
            "fast": n * d, "delta": n}[method]


def sample_unit(method: str, names: list[str], n: int, seed: int, second_order: bool = False) -> np.ndarray:
    """The design in the unit hypercube: rows are points, columns parameters."""
    check_samples(method, n, len(names))
    problem = salib_problem(names)
    with warnings.catch_warnings():
        # SALib warns for N not a power of 2; the sweep's own warnings say so
        warnings.simplefilter("ignore")
        if method == "sobol":
            from SALib.sample import sobol

            x = sobol.sample(problem, n, calc_second_order=second_order, scramble=True, seed=seed)
        elif method == "morris":
            from SALib.sample import morris

            x = morris.sample(problem, n, num_levels=MORRIS_LEVELS, seed=seed)
        elif method == "fast":
            from SALib.sample import fast_sampler

            x = fast_sampler.sample(problem, n, M=FAST_M, seed=seed)
        else:
            from SALib.sample import latin

            x = latin.sample(problem, n, seed=seed)
    x = np.asarray(x, dtype=float)
    assert x.shape == (design_size(method, n, len(names), second_order), len(names))
    return x


def tornado_design(d: int) -> tuple[np.ndarray, list[tuple[str, int | None]]]:
    """One-at-a-time points: the centre (every parameter at its median), then parameter j
    at its 5th and at its 95th percentile with the others at their medians. Returns the
    unit points and their labels: ('centre', None), ('low', j), ('high', j), ..."""
    rows = [np.full(d, 0.5)]
    labels: list[tuple[str, int | None]] = [("centre", None)]
    for j in range(d):
        for side, q in (("low", TORNADO_LOW), ("high", TORNADO_HIGH)):
            r = np.full(d, 0.5)
            r[j] = q
            rows.append(r)
            labels.append((side, j))
    return np.array(rows), labels


# --- analysis ----------------------------------------------------------------------------


def analyse(method: str, names: list[str], x: np.ndarray, y: np.ndarray, seed: int,
            second_order: bool = False) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Indices of one output: a frame with `parameter` and `INDEX_COLUMNS[method]`, one row
    per parameter in order, and (sobol with second order) a frame of S2 by pair.

    `x` is the unit design and `y` the output at each point. An output that does not vary
    gets NaN indices (no variance to apportion)."""
    cols = INDEX_COLUMNS[method]
    y = np.asarray(y, dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError("outputs must be finite")
    if np.ptp(y) == 0:
        frame = pd.DataFrame({"parameter": names, **{c: np.nan for c in cols}})
        return frame, None
    problem = salib_problem(names)
    s2 = None
    # one BLAS thread: the delta method's many tiny kernel-density solves are up to 10x
    # slower when OpenBLAS threads spin against busy cores
    with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        if method == "sobol":
            from SALib.analyze import sobol

            r = sobol.analyze(problem, y, calc_second_order=second_order, num_resamples=RESAMPLES,
                              conf_level=CONF_LEVEL, seed=seed)
            values = {c: r[c] for c in cols}
            if second_order:
                pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
                s2 = pd.DataFrame({
                    "parameter_1": [names[i] for i, _ in pairs],
                    "parameter_2": [names[j] for _, j in pairs],
                    "S2": [r["S2"][i, j] for i, j in pairs],
                    "S2_conf": [r["S2_conf"][i, j] for i, j in pairs]})
        elif method == "morris":
            from SALib.analyze import morris

            r = morris.analyze(problem, x, y, num_resamples=RESAMPLES, conf_level=CONF_LEVEL,
                               num_levels=MORRIS_LEVELS, seed=seed)
            values = {c: r[c] for c in cols}
        elif method == "fast":
            from SALib.analyze import fast

            r = fast.analyze(problem, y, M=FAST_M, num_resamples=RESAMPLES, conf_level=CONF_LEVEL, seed=seed)
            values = {c: r[c] for c in cols}
        else:
            from SALib.analyze import delta

            # SALib's delta draws from numpy's global generator and seeds it only for a
            # non-zero seed; it also replaces warnings.formatwarning
            np.random.seed(seed % 2 ** 32)
            formatwarning = warnings.formatwarning
            try:
                r = delta.analyze(problem, x, y, num_resamples=RESAMPLES, conf_level=CONF_LEVEL,
                                  seed=seed)
            finally:
                warnings.formatwarning = formatwarning
            # SALib >= 1.5 names Borgonovo's delta on the sample as drawn `delta_raw` (its
            # `balanced` and `step` variants re-bin the inputs); earlier versions `delta`
            raw = "delta_raw" if "delta_raw" in r else "delta"
            values = {"delta": r[raw], "delta_conf": r[f"{raw}_conf"], "S1": r["S1"], "S1_conf": r["S1_conf"]}
    frame = pd.DataFrame({"parameter": names,
                          **{c: np.asarray(values[c], dtype=float) for c in cols}})
    return frame, s2


def noise_table(outputs: list[str], reps: np.ndarray) -> pd.DataFrame:
    """Simulation noise against parameter variation, per output.

    `reps` has shape (points, R, outputs): each design point's replications. Columns:
    `output, replications, within_variance` (mean over points of the variance between
    replications), `noise_variance` (within_variance / R: the noise in a point's mean),
    `total_variance` (variance of the point means across the design) and `noise_share`
    (noise_variance / total_variance). With R = 1 the noise cannot be measured: NaN."""
    points, r, _ = reps.shape
    rows = []
    for k, name in enumerate(outputs):
        y = reps[:, :, k]
        means = y.mean(axis=1)
        total = float(np.var(means, ddof=1)) if points > 1 else math.nan
        within = float(np.mean(np.var(y, axis=1, ddof=1))) if r > 1 else math.nan
        noise = within / r if r > 1 else math.nan
        share = noise / total if r > 1 and total > 0 else math.nan
        rows.append({"output": name, "replications": r, "within_variance": within,
                     "noise_variance": noise, "total_variance": total, "noise_share": share})
    return pd.DataFrame(rows)


def sample_size_warnings(method: str, n: int) -> list[str]:
    """Warnings about N alone (known before anything runs): Sobol' N not a power of 2 or
    below 64, Morris with fewer than 10 trajectories."""
    out: list[str] = []
    if method == "sobol":
        if n & (n - 1):
            out.append(f"--samples {n} is not a power of 2: the Sobol' sequence is balanced only "
                       "for powers of 2 (use e.g. 64, 128, 256)")
        if n < 64:
            out.append(f"--samples {n} is small for Sobol' indices (at least 64, better 512 or more)")
    if method == "morris" and n < 10:
        out.append(f"--samples {n} Morris trajectories: 10 to 20 are usual for stable rankings")
    return out


def stability_warnings(method: str, n: int, d: int, indices: pd.DataFrame,
                       noise: pd.DataFrame | None = None) -> list[str]:
    """Plain-English warnings when N is too small for stable indices or noise is large.

    - sobol: N not a power of 2 (the Sobol' sequence's balance properties need it), N
      below 64, or a confidence half-width above `UNSTABLE_CONF` on one of the three
      largest S1 or ST of an output;
    - fast, delta: the same half-width rule on their indices;
    - morris: fewer than 10 trajectories, or a mu_star interval wider than half of mu_star
      among the three largest;
    - any method: simulation noise above `NOISY_SHARE` of an output's variance."""
    out = sample_size_warnings(method, n)
    for output, g in indices.groupby("output", sort=False):
        if method == "morris":
            top = g.nlargest(3, "mu_star")
            wide = top[top["mu_star_conf"] > 0.5 * top["mu_star"].abs()]
            if len(wide):
                out.append(f"{output}: mu_star intervals wider than half of mu_star for "
                           f"{', '.join(wide['parameter'])}: more trajectories needed")
            continue
        pairs = [c for c in INDEX_COLUMNS[method] if not c.endswith("_conf")]
        unstable = []
        for c in pairs:
            top = g.nlargest(3, c)
            bad = top[top[f"{c}_conf"] > UNSTABLE_CONF]
            unstable += [f"{c}({p})={v:.2f}±{h:.2f}" for p, v, h in
                         zip(bad["parameter"], bad[c], bad[f"{c}_conf"])]
        if unstable:
            out.append(f"{output}: confidence half-widths above {UNSTABLE_CONF} on the largest "
                       f"indices ({', '.join(unstable)}): increase --samples")
    if noise is not None:
        for row in noise.itertuples():
            if row.noise_share == row.noise_share and row.noise_share > NOISY_SHARE:
                out.append(f"{row.output}: simulation noise is {row.noise_share:.0%} of the output's "
                           "variance across samples: increase --replications or --scale")
    return out


# --- reference functions -------------------------------------------------------------------


@dataclass(frozen=True)
class Ishigami:
    """The Ishigami function, f = sin x1 + a sin^2 x2 + b x3^4 sin x1 with x_i uniform on
    [-pi, pi]: a test model with known Sobol' indices (`analytic`). As a sweep evaluator it
    takes a dict of values and a replication number and returns {'y': f}; `noise` adds
    normal noise of that sd, a pure function of the point and the replication."""

    a: float = 7.0
    b: float = 0.1
    noise: float = 0.0

    outputs: tuple[str, ...] = ("y",)

    def parameters(self) -> list[SweptParameter]:
        return [uniform_parameter(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)]

    def identity(self) -> dict:
        return {"evaluator": "ishigami", "a": self.a, "b": self.b, "noise": self.noise}

    def __call__(self, values: dict[str, float], replication: int) -> dict[str, float]:
        x1, x2, x3 = values["x1"], values["x2"], values["x3"]
        y = math.sin(x1) + self.a * math.sin(x2) ** 2 + self.b * x3 ** 4 * math.sin(x1)
        if self.noise:
            key = np.frombuffer(np.array([x1, x2, x3]).tobytes(), dtype=np.uint32)
            y += self.noise * float(np.random.default_rng([replication, *key.tolist()]).standard_normal())
        return {"y": y}

    def analytic(self) -> dict[str, dict[str, float]]:
        """Exact S1 and ST of x1, x2, x3."""
        a, b, pi = self.a, self.b, math.pi
        v1 = 0.5 * (1 + b * pi ** 4 / 5) ** 2
        v2 = a ** 2 / 8
        v13 = b ** 2 * pi ** 8 * (1 / 18 - 1 / 50)
        v = v1 + v2 + v13
        return {"S1": {"x1": v1 / v, "x2": v2 / v, "x3": 0.0},
                "ST": {"x1": (v1 + v13) / v, "x2": v2 / v, "x3": v13 / v}}
