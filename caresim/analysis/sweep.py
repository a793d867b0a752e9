"""A resumable sensitivity sweep: design, runs on any backend, storage, analysis, outputs.

The sweep is generic in what it runs: an *evaluator* is any picklable callable
`evaluator(values, replication) -> {output: value}` with an `outputs` sequence (the output
names, in order) and an `identity()` dict (what its results depend on besides the values,
e.g. the scenario's hash, the scale and the seed). `caresim.analysis.sweep_scenario`
provides the scenario evaluator; `caresim.analysis.sensitivity.Ishigami` is a test
function that goes through exactly the same code.

**A run** is one design point: the evaluator at the point's values for replications
0..R-1 (the same replication numbers at every point: common random numbers). Runs are pure
functions of (evaluator, values, replication), so they can execute anywhere and in any
order: results are keyed by point id and assembled in point order, and the same seed gives
the same indices whatever the backend and number of workers.

**The sweep folder** is written progressively (unlike a `caresim run` folder, which appears
only when complete) so that an interrupted sweep can be resumed:

    plan.json        what identifies the sweep (written first; checked on every restart)
    design.parquet   the design: point id, kind, tornado label, unit values u_<p>, values <p>
    runs/part-<first point>.parquet   finished runs: point, replication, outputs, and the
                     wall and CPU seconds the worker spent on the point (`seconds`, `cpu_seconds`)
    failures.csv     runs that failed twice (only while there are any)
    indices.csv, indices_s2.csv, noise.csv, tornado.csv, samples.parquet, figures/,
    manifest.json    written when every run is there

Each part is written to a temporary name and renamed into place (atomic), as soon as its
batch finishes. Starting the same sweep again (same plan) reads the parts, and runs only
the points that have none; a different plan in the folder is an error that says what
differs (use another folder, or `force` to discard it). Ctrl-C or a killed process leaves
every finished part in place.

**Failures.** A point whose evaluation raises (or whose task is lost with a worker) is
retried once, in a new task. If it fails again it is listed in `failures.csv` with its
parameter values and the error, the analysis is not run, and `SweepIncomplete` is raised;
running the sweep again retries exactly those points.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import secrets
import shutil
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import caresim
from caresim.analysis.sensitivity import (
    INDEX_COLUMNS,
    SweptParameter,
    analyse,
    check_samples,
    design_size,
    noise_table,
    sample_size_warnings,
    sample_unit,
    stability_warnings,
    tornado_design,
)
from caresim.errors import CaresimError
from caresim.results.store import runtime_manifest, write_manifest, write_parquet
from caresim.results.summary import write_csv
from caresim.runner.executors import Backend, open_backend

PLAN_FORMAT = "caresim-sweep/1"
#: retries of a failed run before it is reported (so two attempts in all)
RETRIES = 1
_PART = re.compile(r"^part-(\d+)\.parquet$")


class Evaluator(Protocol):
    """What a sweep runs at each design point (see the module docstring)."""

    outputs: Sequence[str]

    def identity(self) -> dict: ...

    def __call__(self, values: dict[str, float], replication: int) -> dict[str, float]: ...


@dataclass(frozen=True)
class SweepSettings:
    """How to sweep: SALib `method`, its N (`samples`), the root `seed` (of the design,
    the bootstrap and the evaluator's runs), `replications` per point, Sobol'
    `second_order` indices, and `batch_size` points per task (1 for simulations; more for
    cheap evaluators, to save per-task overhead)."""

    method: str
    samples: int
    seed: int
    replications: int = 2
    second_order: bool = False
    batch_size: int = 1


@dataclass(frozen=True)
class RunCounts:
    """Runs (design points) of a sweep attempt."""

    total: int
    reused: int
    new: int
    failed: int
    wall_seconds: float

    @property
    def runs_per_minute(self) -> float:
        return 60.0 * self.new / self.wall_seconds if self.wall_seconds > 0 else math.nan

    def line(self) -> str:
        """The one-line summary printed at the end."""
        rate = f"{self.runs_per_minute:.1f} runs/min" if self.new else "no new runs"
        return (f"{self.total} runs: {self.reused} reused from a previous attempt, {self.new} new, "
                f"{self.failed} failed; wall {self.wall_seconds:.1f} s, {rate}")


@dataclass
class SweepOutcome:
    """What a completed sweep wrote (tables as in their CSV files)."""

    folder: Path
    indices: pd.DataFrame
    s2: pd.DataFrame | None
    noise: pd.DataFrame
    tornado: pd.DataFrame
    samples: pd.DataFrame
    counts: RunCounts
    warnings: list[str]
    manifest: dict
    backend: str = ""


class SweepIncomplete(CaresimError):
    """Some runs failed twice: they are in failures.csv and no indices were written."""

    def __init__(self, message: str, counts: RunCounts, failures: pd.DataFrame):
        super().__init__(message)
        self.counts = counts
        self.failures = failures


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep; finished runs are stored. Carries the counts so far."""

    def __init__(self, counts: RunCounts, folder: Path):
        super().__init__(f"interrupted: {counts.reused + counts.new} of {counts.total} runs are "
                         f"stored in {folder / 'runs'}; run the same command again to resume")
        self.counts = counts
        self.folder = folder


#: progress(done, total, reused, failed): called when the sweep starts and after each batch
Progress = Callable[[int, int, int, int], None]


# --- the plan and the folder ---------------------------------------------------------------


def make_plan(evaluator: Evaluator, parameters: list[SweptParameter], settings: SweepSettings) -> dict:
    """plan.json: everything the runs and indices depend on (not the backend)."""
    check_samples(settings.method, settings.samples, len(parameters))
    if settings.replications < 1:
        raise CaresimError(f"--replications must be at least 1, got {settings.replications}")
    n_design = design_size(settings.method, settings.samples, len(parameters), settings.second_order)
    plan = {
        "format": PLAN_FORMAT,
        "method": settings.method,
        "samples": settings.samples,
        "seed": settings.seed,
        "replications": settings.replications,
        "second_order": bool(settings.second_order and settings.method == "sobol"),
        "outputs": list(evaluator.outputs),
        "parameters": [p.describe() for p in parameters],
        "evaluator": evaluator.identity(),
        "design_points": n_design,
        "tornado_points": 2 * len(parameters) + 1,
    }
    return json.loads(json.dumps(plan, default=str))  # as read back from the file


def plan_hash(plan: dict) -> str:
    """Short hash of a plan (names a default sweep folder)."""
    import hashlib

    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:10]


def plan_differences(old: dict, new: dict) -> list[str]:
    """What differs between two plans, in words (empty if they match)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    out.append(f"{key}.{sub}: was {_short(a.get(sub))}, now {_short(b.get(sub))}")
        elif key == "parameters" and isinstance(a, list) and isinstance(b, list):
            na, nb = [p.get("name") for p in a], [p.get("name") for p in b]
            if na != nb:
                out.append(f"parameters: were {', '.join(map(str, na))}; now {', '.join(map(str, nb))}")
            else:
                changed = [p["name"] for p, q in zip(a, b) if p != q]
                out.append(f"parameters changed: {', '.join(changed)}")
        else:
            out.append(f"{key}: was {_short(a)}, now {_short(b)}")
    return out


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    if isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v):
        text = repr(v[:12] + "...")
    return text if len(text) <= 80 else text[:77] + "..."


def _check_folder_location(folder: Path) -> None:
    resolved = folder.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor) or resolved == cwd or resolved in cwd.parents:
        raise CaresimError(f"refusing to use {folder} as a sweep folder: it contains the current "
                           "folder; choose another folder with --out")
    if folder.exists() and not folder.is_dir():
        raise CaresimError(f"output path {folder} exists and is not a folder; choose --out")


def open_folder(folder: Path, plan: dict, force: bool) -> bool:
    """Make or reopen a sweep folder for `plan`; returns True when resuming.

    An empty or missing folder is started; a folder holding the same plan is resumed;
    anything else raises `CaresimError` unless `force`, which empties the folder first."""
    _check_folder_location(folder)
    plan_path = folder / "plan.json"
    if folder.is_dir() and any(folder.iterdir()):
        if force:
            shutil.rmtree(folder)
        elif not plan_path.is_file():
            raise CaresimError(f"{folder} is not empty and holds no sweep (no plan.json): choose "
                               "another folder with --out, or pass --force to replace it")
        else:
            try:
                old = json.loads(plan_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CaresimError(f"{plan_path}: cannot read the sweep plan ({exc}); use a new "
                                   "--out, or --force to start again") from exc
            diffs = plan_differences(old, plan)
            if diffs:
                raise CaresimError(
                    f"{folder} holds a different sweep ({'; '.join(diffs)}): use a new --out, "
                    "or --force to discard it and start again")
            return True
    try:
        (folder / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaresimError(f"cannot create sweep folder {folder}: {exc}") from exc
    _atomic_text(plan_path, json.dumps(plan, indent=2, sort_keys=True) + "\n")
    return False


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """Write a file through `write(tmp)` then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# --- the design --------------------------------------------------------------------------------


def build_design(parameters: list[SweptParameter], settings: SweepSettings) -> pd.DataFrame:
    """Every point of the sweep: the SALib design then the tornado's one-at-a-time points.

    Columns: `point` (0..), `kind` ('sample' or 'tornado'), `tornado` ('' for samples,
    'centre', or '<parameter>:low' / ':high'), `u_<p>` (probability scale) and `<p>`
    (natural units) for every parameter."""
    names = [p.name for p in parameters]
    x = sample_unit(settings.method, names, settings.samples, settings.seed, settings.second_order)
    t, labels = tornado_design(len(names))
    unit = np.vstack([x, t])
    df = pd.DataFrame({
        "point": np.arange(len(unit), dtype="int64"),
        "kind": ["sample"] * len(x) + ["tornado"] * len(t),
        "tornado": [""] * len(x) + [side if j is None else f"{names[j]}:{side}" for side, j in labels],
    })
    for j, p in enumerate(parameters):
        df[f"u_{p.name}"] = unit[:, j]
    for j, p in enumerate(parameters):
        df[p.name] = p.values(unit[:, j])
    return df


# --- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointResult:
    """One point's outcome in a task: `outputs[r]` per replication, or `error`; the wall
    and CPU seconds (user + system, this process) the worker spent on it."""

    point: int
    outputs: list[list[float]] | None
    error: str | None
    seconds: float
    cpu_seconds: float = 0.0


def run_batch(evaluator: Evaluator, batch: list[tuple[int, dict[str, float]]],
              replications: int) -> list[PointResult]:
    """Evaluate design points (point id, values) for replications 0..R-1 each. An error
    at a point is caught and returned for that point (the others still run). Executed by
    the backend's workers."""
    names = list(evaluator.outputs)
    out = []
    for point, values in batch:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            rows = []
            for r in range(replications):
                res = evaluator(values, r)
                row = [float(res[k]) for k in names]
                bad = [k for k, v in zip(names, row) if not math.isfinite(v)]
                if bad:
                    raise ValueError(f"output(s) {', '.join(bad)} not finite in replication {r}")
                rows.append(row)
            out.append(PointResult(point, rows, None, time.perf_counter() - t0, time.process_time() - c0))
        except Exception as exc:  # reported with the point, retried by the sweep
            out.append(PointResult(point, None, describe_error(exc), time.perf_counter() - t0,
                                   time.process_time() - c0))
    return out


def describe_error(exc: BaseException) -> str:
    """`Type: message` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RunStore:
    """The `runs/` folder: one Parquet part per finished batch, written atomically."""

    def __init__(self, folder: Path, outputs: Sequence[str], replications: int):
        self.dir = folder / "runs"
        self.outputs = list(outputs)
        self.replications = replications

    def clean(self) -> None:
        """Remove temporary files left by an interrupted write."""
        for p in self.dir.glob(".*.tmp*"):
            p.unlink(missing_ok=True)

    def load(self) -> pd.DataFrame:
        """Every stored run (rows point x replication), sorted; points with missing
        replications or outputs are dropped (rerun)."""
        cols = ["point", "replication", *self.outputs, "seconds", "cpu_seconds"]
        parts = []
        for p in sorted(self.dir.glob("part-*.parquet")):
            if not _PART.match(p.name):
                continue
            try:
                t = pq.read_table(p).to_pandas()
            except Exception:
                p.rename(p.with_name(p.name + ".unreadable"))  # rerun its points
                continue
            if set(cols) <= set(t.columns):
                parts.append(t[cols])
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype="float64" if c not in ("point", "replication")
                                              else "int64") for c in cols})
        df = pd.concat(parts, ignore_index=True)
        df = df.drop_duplicates(["point", "replication"]).sort_values(["point", "replication"])
        counts = df.groupby("point")["replication"].transform("nunique")
        df = df[(counts == self.replications) & df["replication"].between(0, self.replications - 1)]
        return df.reset_index(drop=True)

    def write(self, results: list[PointResult]) -> Path:
        """Store finished points as one part named after the first point."""
        rows = [(r.point, rep, *vals, r.seconds, r.cpu_seconds)
                for r in results for rep, vals in enumerate(r.outputs or [])]
        df = pd.DataFrame(rows, columns=["point", "replication", *self.outputs, "seconds", "cpu_seconds"])
        df = df.astype({"point": "int64", "replication": "int64"})
        first = min(r.point for r in results)
        return _atomic(self.dir / f"part-{first:07d}.parquet", lambda tmp: write_parquet(df, tmp))


def execute(backend: Backend, evaluator_points: list[tuple[int, dict[str, float]]],
            settings: SweepSettings, store: RunStore,
            on_batch: Callable[[int, int], None] = lambda ok, failed: None,
            ) -> dict[int, tuple[str, int]]:
    """Run the points on `backend`, storing each finished batch as it arrives; a failed
    point is retried once in a new task. Returns {point: (error, attempts)} for points
    that failed twice. `on_batch(n_ok, n_failed_for_good)` follows every batch."""
    values = dict(evaluator_points)
    order = [p for p, _ in evaluator_points]
    queue: deque[list[int]] = deque(order[i:i + settings.batch_size]
                                    for i in range(0, len(order), settings.batch_size))
    window = 1 if backend.kind == "inline" else max(2, 2 * backend.workers)
    attempts: dict[int, int] = {}
    failures: dict[int, tuple[str, int]] = {}
    inflight: dict[Future, list[int]] = {}

    def handle(points: list[int], results: list[PointResult]) -> None:
        ok = [r for r in results if r.error is None]
        if ok:
            store.write(ok)
        gone = 0
        for r in results:
            if r.error is None:
                continue
            attempts[r.point] = attempts.get(r.point, 0) + 1
            if attempts[r.point] <= RETRIES:
                queue.append([r.point])
            else:
                failures[r.point] = (r.error, attempts[r.point])
                gone += 1
        on_batch(len(ok), gone)

    try:
        while queue or inflight:
            while queue and len(inflight) < window:
                batch = queue.popleft()
                try:
                    fut = backend.submit(run_batch, [(p, values[p]) for p in batch], settings.replications)
                except Exception as exc:  # e.g. a pool broken by a worker that died
                    backend.recover(exc)
                    handle(batch, [PointResult(p, None, describe_error(exc), 0.0) for p in batch])
                    continue
                inflight[fut] = batch
            if not inflight:
                continue
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: inflight[f][0]):
                batch = inflight.pop(fut)
                try:
                    results = fut.result()
                except Exception as exc:  # the task itself was lost (worker died, ...)
                    backend.recover(exc, fut)
                    results = [PointResult(p, None, describe_error(exc), 0.0) for p in batch]
                handle(batch, results)
    finally:
        for fut in inflight:
            fut.cancel()
    return failures


# --- the sweep -----------------------------------------------------------------------------------


def run_sweep(
    evaluator: Evaluator,
    parameters: list[SweptParameter],
    settings: SweepSettings,
    folder: Path,
    *,
    force: bool = False,
    jobs: int = 1,
    scheduler: str | None = None,
    dask_workers: int | None = None,
    progress: Progress | None = None,
    manifest_extra: dict | None = None,
    units: dict[str, str] | None = None,
    on_start: Callable[[dict], None] | None = None,
) -> SweepOutcome:
    """Run (or resume) a sweep into `folder` and write its outputs.

    `jobs`, `scheduler` and `dask_workers` choose the backend
    (`caresim.runner.executors.open_backend`). `progress` is told how many runs are done.
    `manifest_extra` is merged into manifest.json; `units` maps output names to their unit
    (for figures). `on_start(info)` is called once the folder is open, with the plan, the
    backend description and the counts (for printing). Raises `SweepIncomplete` if runs
    failed twice, `SweepInterrupted` on Ctrl-C, `CaresimError` for a mismatched folder."""
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    plan = make_plan(evaluator, parameters, settings)
    started = dt.datetime.now().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    resumed = open_folder(folder, plan, force)
    design = _load_or_build_design(folder, parameters, settings, resumed)
    store = RunStore(folder, evaluator.outputs, settings.replications)
    store.clean()
    stored = store.load()
    done_points = set(stored["point"].unique().tolist())
    names = [p.name for p in parameters]
    todo = [(int(pt), {n: float(v) for n, v in zip(names, row)})
            for pt, row in zip(design["point"], design[names].to_numpy())
            if int(pt) not in done_points]
    total = len(design)
    reused = total - len(todo)
    state = {"new": 0, "failed": 0}

    def tell() -> None:
        if progress is not None:
            progress(reused + state["new"] + state["failed"], total, reused, state["failed"])

    def on_batch(ok: int, failed: int) -> None:
        state["new"] += ok
        state["failed"] += failed
        tell()

    def counts() -> RunCounts:
        return RunCounts(total, reused, state["new"], state["failed"], time.perf_counter() - t0)

    backend_text = "none needed (every run stored)"
    failures: dict[int, tuple[str, int]] = {}
    if todo:
        backend = open_backend(evaluator, jobs=jobs, scheduler=scheduler, dask_workers=dask_workers)
        backend_text = backend.description
        try:
            with backend:
                if on_start:
                    on_start({"plan": plan, "backend": backend_text, "total": total, "reused": reused,
                              "folder": folder, "resumed": resumed,
                              "warnings": sample_size_warnings(settings.method, settings.samples)})
                tell()
                try:
                    failures = execute(backend, todo, settings, store, on_batch)
                except KeyboardInterrupt:
                    backend.abort()
                    raise
        except KeyboardInterrupt:
            raise SweepInterrupted(counts(), folder) from None
    else:
        if on_start:
            on_start({"plan": plan, "backend": backend_text, "total": total, "reused": reused,
                      "folder": folder, "resumed": resumed, "warnings": []})
        tell()
    wall = time.perf_counter() - t0
    run_counts = RunCounts(total, reused, state["new"], len(failures), wall)

    base_manifest = {
        "kind": "sweep",
        "caresim_version": caresim.__version__,
        "plan": plan,
        "method": settings.method,
        "samples": settings.samples,
        "seed": settings.seed,
        "replications": settings.replications,
        "outputs": list(evaluator.outputs),
        "parameters": plan["parameters"],
        "executor": backend_text,
        "runs": {"total": total, "design": plan["design_points"], "tornado": plan["tornado_points"],
                 "reused": reused, "new": state["new"], "failed": len(failures)},
        "wall_seconds": round(wall, 3),
        "runs_per_minute": round(run_counts.runs_per_minute, 3) if state["new"] else None,
        "started": started,
        **runtime_manifest(),
        "salib_version": _salib_version(),
        **(manifest_extra or {}),
    }
    failures_path = folder / "failures.csv"
    if failures:
        table = _failure_table(design, names, failures)
        _atomic(failures_path, lambda tmp: write_csv(table, tmp))
        write_manifest(folder, {**base_manifest, "status": "incomplete",
                                "failures": "failures.csv"})
        raise SweepIncomplete(
            f"{len(failures)} of {total} runs failed twice (listed with their parameters and "
            f"errors in {failures_path}); no indices were computed from incomplete data. Run "
            "the same command again to retry them.", run_counts, table)
    failures_path.unlink(missing_ok=True)

    stored = store.load()
    return _finish(folder, design, stored, parameters, settings, evaluator, run_counts,
                   base_manifest, units or {}, backend_text)


def _salib_version() -> str:
    import SALib

    return getattr(SALib, "__version__", "unknown")


def _load_or_build_design(folder: Path, parameters: list[SweptParameter], settings: SweepSettings,
                          resumed: bool) -> pd.DataFrame:
    """The stored design when resuming (so a newer SALib cannot change it mid-sweep),
    else a new one, stored."""
    path = folder / "design.parquet"
    if resumed and path.is_file():
        design = pd.read_parquet(path)
        if len(design) == design_size(settings.method, settings.samples, len(parameters),
                                      settings.second_order) + 2 * len(parameters) + 1:
            return design
    design = build_design(parameters, settings)
    _atomic(path, lambda tmp: write_parquet(design, tmp))
    return design


def _failure_table(design: pd.DataFrame, names: list[str], failures: dict[int, tuple[str, int]]) -> pd.DataFrame:
    rows = design[design["point"].isin(list(failures))][["point", "kind", "tornado", *names]].copy()
    for n in names:  # full precision, so a failing point can be rerun exactly
        rows[n] = [repr(float(v)) for v in rows[n]]
    rows["attempts"] = [failures[int(p)][1] for p in rows["point"]]
    rows["error"] = [failures[int(p)][0] for p in rows["point"]]
    return rows.reset_index(drop=True)


def _finish(folder: Path, design: pd.DataFrame, stored: pd.DataFrame, parameters: list[SweptParameter],
            settings: SweepSettings, evaluator: Evaluator, counts: RunCounts, manifest: dict,
            units: dict[str, str], backend_text: str) -> SweepOutcome:
    """Analyse the complete runs and write the tables, figures and manifest."""
    from caresim.report.sensitivity import sensitivity_figures

    outputs = list(evaluator.outputs)
    names = [p.name for p in parameters]
    n_points, reps = len(design), settings.replications
    missing = sorted(set(design["point"]) - set(stored["point"]))
    if missing:  # a bug: every point ran or failed
        raise RuntimeError(f"runs missing for points {missing[:10]}")
    cube = stored[outputs].to_numpy(dtype=float).reshape(n_points, reps, len(outputs))
    means = cube.mean(axis=1)
    is_sample = (design["kind"] == "sample").to_numpy()
    x = design.loc[is_sample, [f"u_{n}" for n in names]].to_numpy()

    frames, s2_frames = [], []
    for k, out in enumerate(outputs):
        idx, s2 = analyse(settings.method, names, x, means[is_sample, k], settings.seed, settings.second_order)
        idx.insert(0, "output", out)
        idx.insert(2, "method", settings.method)
        frames.append(idx)
        if s2 is not None:
            s2.insert(0, "output", out)
            s2_frames.append(s2)
    indices = pd.concat(frames, ignore_index=True)[
        ["output", "parameter", "method", *INDEX_COLUMNS[settings.method]]]
    s2_all = pd.concat(s2_frames, ignore_index=True) if s2_frames else None
    noise = noise_table(outputs, cube[is_sample])
    tornado = _tornado_table(design, means, parameters, outputs)
    samples = _samples_table(design, cube, outputs)
    warns = stability_warnings(settings.method, settings.samples, len(names), indices, noise)
    flat = [o for k, o in enumerate(outputs) if np.ptp(means[is_sample, k]) == 0]
    warns += [f"{o}: the same at every sample point: no indices (is the metric affected by any "
              "parameter, or too small at this --scale?)" for o in flat]

    _atomic(folder / "indices.csv", lambda tmp: write_csv(indices, tmp))
    if s2_all is not None:
        _atomic(folder / "indices_s2.csv", lambda tmp: write_csv(s2_all, tmp))
    _atomic(folder / "noise.csv", lambda tmp: write_csv(noise, tmp))
    _atomic(folder / "tornado.csv", lambda tmp: write_csv(tornado, tmp))
    _atomic(folder / "samples.parquet", lambda tmp: write_parquet(samples, tmp))
    figures = sensitivity_figures(indices, tornado, folder / "figures", settings.method, units,
                                  title_note=f"N={settings.samples}, {reps} replication(s) per point")
    files = ["plan.json", "design.parquet", "runs/", "indices.csv", "noise.csv", "tornado.csv",
             "samples.parquet"] + (["indices_s2.csv"] if s2_all is not None else []) + \
            [f"figures/{p.name}" for p in figures]
    noise_share = {r.output: (None if r.noise_share != r.noise_share else round(float(r.noise_share), 6))
                   for r in noise.itertuples()}
    per_point = stored.drop_duplicates("point")
    full = {
        **manifest,
        "status": "complete",
        "worker_seconds": {"wall": round(float(per_point["seconds"].sum()), 3),
                           "cpu": round(float(per_point["cpu_seconds"].sum()), 3),
                           "note": "summed over every stored run, including reused ones"},
        "noise_share": noise_share,
        "noise_note": ("share of each output's variance across the design that is simulation noise "
                       "(mean within-point variance / R over the variance of the point means); an "
                       "upper bound under common random numbers; needs R >= 2"),
        "warnings": warns,
        "index_columns": list(INDEX_COLUMNS[settings.method]),
        "files": files,
    }
    write_manifest(folder, full)
    return SweepOutcome(folder, indices, s2_all, noise, tornado, samples, counts, warns, full, backend_text)


def _tornado_table(design: pd.DataFrame, means: np.ndarray, parameters: list[SweptParameter],
                   outputs: list[str]) -> pd.DataFrame:
    """One-at-a-time ranges: per output and parameter, the parameter's 5th and 95th
    percentile values and the output there (others at their medians), the centre (all at
    their medians), and the `swing`: the range of the output over those three runs (so a
    parameter whose effect is the same at both ends, a U-shaped response, still shows)."""
    label = dict(zip(design["tornado"], range(len(design))))
    rows = []
    for k, out in enumerate(outputs):
        centre = means[label["centre"], k]
        for p in parameters:
            lo, hi = label[f"{p.name}:low"], label[f"{p.name}:high"]
            y_lo, y_hi = means[lo, k], means[hi, k]
            rows.append({"output": out, "parameter": p.name,
                         "value_low": float(design.at[lo, p.name]), "value_high": float(design.at[hi, p.name]),
                         "output_low": y_lo, "output_high": y_hi, "output_centre": centre,
                         "swing": max(y_lo, y_hi, centre) - min(y_lo, y_hi, centre)})
    return pd.DataFrame(rows)


def _samples_table(design: pd.DataFrame, cube: np.ndarray, outputs: list[str]) -> pd.DataFrame:
    """samples.parquet: the design with, per output, the mean over replications
    (`<output>`) and each replication (`<output>[r]`)."""
    out = design.copy()
    for k, name in enumerate(outputs):
        out[name] = cube[:, :, k].mean(axis=1)
        for r in range(cube.shape[1]):
            out[f"{name}[{r}]"] = cube[:, r, k]
    return out
