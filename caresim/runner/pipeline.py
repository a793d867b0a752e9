"""`caresim run` as a library call: scenario in, output folder out.

Loads the calibration tables the scenario names, runs the replications, and writes the
output contract (DESIGN.md): manifest.json, summary.csv, replications.parquet, fan charts,
and first_year_check.csv (the first simulated year against the latest published year).
Nothing is written to the final folder until everything has succeeded.

The steps that do not write (`resolve_settings`, `prepare`, `run_records`) and the shared
manifest fields are separate functions so that `caresim compare` runs each of its two
scenarios exactly as `caresim run` would.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

import caresim
from caresim.errors import CaresimError
from caresim.report.fancharts import fan_charts
from caresim.results.firstyear import first_year_check
from caresim.results.store import OutputFolder, runtime_manifest, write_manifest, write_parquet
from caresim.results.summary import add_geographies, add_ratios, summarise, write_csv
from caresim.runner.replications import ReplicationResult, run_replications
from caresim.scenario.differences import differences_from_baseline
from caresim.scenario.loader import LoadedScenario
from caresim.population.local import LocalAuthorities

FAN_METRICS = (
    "referrals", "child_in_need", "child_protection_plan", "cpp_starts", "proceedings_issued",
    "in_proceedings", "proceedings_mean_weeks", "care_starts", "care_ceased", "looked_after",
    "cost.total",
)


@dataclass(frozen=True)
class RunOutcome:
    folder: Path
    summary: pd.DataFrame
    first_year: pd.DataFrame
    manifest: dict


def read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a calibration CSV, with a user error if it cannot be read."""
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CaresimError(f"{path}: cannot read {what}: {exc}") from exc


def load_inputs(loaded: LoadedScenario) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The start year's LA table (with fitted LA multipliers merged in as `<index>_fit`
    columns, if the scenario names them) and the published history."""
    la_inputs = read_table(loaded.data_paths["la_inputs"], "the LA inputs table")
    history = read_table(loaded.data_paths["history"], "the published history")
    mult_path = loaded.data_paths.get("la_multipliers")
    if mult_path is not None:
        from caresim.analysis.calibrate import with_multipliers

        mult = read_table(mult_path, "the fitted LA multipliers")
        if "geography" not in mult.columns:
            raise CaresimError(f"{mult_path}: needs a 'geography' column (LA ONS codes)")
        la_inputs = with_multipliers(la_inputs, mult)
    return la_inputs, history


def parameter_draws(loaded: LoadedScenario, replications: int) -> list:
    """One scenario per replication, each with one joint draw of the fitted parameters."""
    from caresim.analysis.calibrate import set_path
    from caresim.scenario.model import Scenario

    path = loaded.data_paths.get("parameter_samples")
    if path is None:
        raise CaresimError(f"{loaded.path}: --parameter-uncertainty needs data.parameter_samples "
                           "(written by caresim calibrate)")
    samples = read_table(path, "the parameter samples")
    need = {"draw", "path", "value"}
    if not need <= set(samples.columns):
        raise CaresimError(f"{path}: needs columns {', '.join(sorted(need))}")
    draws = sorted(samples["draw"].unique())
    out = []
    for r in range(replications):
        doc = copy.deepcopy(loaded.resolved)
        d = samples[samples["draw"] == draws[r % len(draws)]]
        for p, v in zip(d["path"], d["value"]):
            set_path(doc, p, float(v))
        out.append(Scenario.model_validate(doc))
    return out


CALIBRATION_VINTAGE = ("DfE 2023-24 releases (stocks at 31 March 2024); "
                       "published_figures.csv as shared")


def resolve_settings(loaded: LoadedScenario, replications: int | None = None,
                     seed: int | None = None, scale: float | None = None) -> tuple[int, int, float]:
    """The run's (replications, root seed, scale): options given here override the
    scenario's `run:` settings. Raises `CaresimError` for a scale outside (0, 1] or fewer
    than one replication."""
    sc = loaded.scenario
    reps = replications or sc.run.replications
    seed = sc.run.seed if seed is None else seed
    scale = sc.run.scale if scale is None else scale
    if not 0 < scale <= 1:
        raise CaresimError(f"--scale must be in (0, 1], got {scale}")
    if reps < 1:
        raise CaresimError(f"--replications must be at least 1, got {reps}")
    return reps, seed, scale


@dataclass(frozen=True)
class PreparedScenario:
    """A loaded scenario with its calibration tables read and its geography checked."""

    loaded: LoadedScenario
    la_inputs: pd.DataFrame
    history: pd.DataFrame
    las: LocalAuthorities


#: years of published history drawn behind fan charts
HISTORY_YEARS_SHOWN = 5


def chart_history(prepared: PreparedScenario) -> pd.DataFrame | None:
    """The published history to draw behind fan charts: the last few years, and only when
    the scenario simulates all of England (otherwise the simulated `England` row is the sum
    of a subset of LAs and the published figures would mislead)."""
    geo = prepared.loaded.scenario.geography
    if geo.las is not None or geo.region is not None:
        return None
    h = prepared.history
    return h[h["year"] >= prepared.loaded.scenario.start.year - HISTORY_YEARS_SHOWN]


def prepare(loaded: LoadedScenario) -> PreparedScenario:
    """Read the scenario's calibration tables and resolve its local authorities (raises
    `CaresimError` early, before any output folder is made, if either is wrong)."""
    la_inputs, history = load_inputs(loaded)
    las = LocalAuthorities.from_inputs(la_inputs, loaded.scenario.geography)
    return PreparedScenario(loaded, la_inputs, history, las)


@dataclass(frozen=True)
class ScenarioRecords:
    """One scenario's replications: `records` holds every replication's metrics at LA,
    region and England level (court ratios added), in the units of the output contract;
    `wall_seconds` is the time spent drawing parameters and running the replications."""

    results: list[ReplicationResult]
    records: pd.DataFrame
    wall_seconds: float


def run_records(
    prepared: PreparedScenario,
    seed: int,
    replications: int,
    scale: float,
    jobs: int = 1,
    on_done: Callable[[ReplicationResult], None] | None = None,
    parameter_uncertainty: bool = False,
    executor: Executor | None = None,
    options: dict | None = None,
) -> ScenarioRecords:
    """Run replications 0..replications-1 of a prepared scenario from root `seed` at
    `scale` (fraction of children simulated) and return their LA + region + England
    records. Writes nothing. `options` go to every `Simulation` (e.g. draw_effects)."""
    sc = prepared.loaded.scenario
    t0 = time.perf_counter()
    per_rep = parameter_draws(prepared.loaded, replications) if parameter_uncertainty else None
    results = run_replications(sc, prepared.la_inputs, seed, replications, scale, jobs=jobs,
                               executor=executor, on_done=on_done, history=prepared.history,
                               scenarios=per_rep, options=options)
    wall = time.perf_counter() - t0
    records = pd.concat([r.records for r in results], ignore_index=True)
    full = add_ratios(add_geographies(records, prepared.las.regions))
    return ScenarioRecords(results, full, wall)


def scenario_manifest(loaded: LoadedScenario) -> dict:
    """The manifest fields that say which scenario ran: resolved scenario, hash, files, what
    it changes from the calibrated baseline (`assumptions`) and the calibration behind it."""
    return {
        "scenario": loaded.resolved,
        "scenario_hash": loaded.hash,
        "scenario_files": [str(p) for p in loaded.files],
        "calibration_files": {k: str(v) for k, v in loaded.data_paths.items()},
        "assumptions": differences_from_baseline(loaded.resolved),
        "calibration": calibration_manifest(loaded),
    }


#: the fields of a calibration's manifest (calibration/fitted/manifest.json) repeated in the
#: manifest of every run that uses its fitted parameters
CALIBRATION_FIELDS = ("command", "date", "method", "seed", "targets_vintage", "targets_sha256_16",
                      "train_years", "start", "checks", "la_statistics", "caresim_version")


def calibration_manifest(loaded: LoadedScenario) -> dict | None:
    """Which calibration fitted this scenario's parameters (from the `manifest.json` beside
    its `data.parameter_samples`), or None for a scenario with no fitted parameters."""
    samples = loaded.data_paths.get("parameter_samples")
    if samples is None:
        return None
    path = Path(samples).parent / "manifest.json"
    if not path.is_file():
        return {"manifest": str(path), "missing": True}
    fitted = json.loads(path.read_text())
    return {"manifest": str(path), **{k: fitted[k] for k in CALIBRATION_FIELDS if k in fitted}}


def geography_manifest(las: LocalAuthorities) -> dict:
    """The manifest's `geography`: how many LAs and which regions were simulated."""
    return {"las": len(las.codes), "regions": sorted(set(las.regions))}


def scale_note(scale: float) -> str:
    """The manifest's plain-English note of what `scale` means."""
    return (f"{scale:g} of children (and of court and placement capacity) simulated; "
            "counts and costs multiplied by 1/scale")


def run_scenario(
    loaded: LoadedScenario,
    out: Path | None = None,
    replications: int | None = None,
    seed: int | None = None,
    scale: float | None = None,
    jobs: int = 1,
    force: bool = False,
    on_done: Callable[[ReplicationResult], None] | None = None,
    output_root: Path = Path("outputs"),
    parameter_uncertainty: bool = False,
) -> RunOutcome:
    """Run a loaded scenario and write its outputs; CLI options override `run:` settings.

    With `parameter_uncertainty`, replication r runs with draw r (cycling) of the fitted
    parameters (`data.parameter_samples`), so the ensemble carries parameter and stochastic
    uncertainty together."""
    sc = loaded.scenario
    reps, seed, scale = resolve_settings(loaded, replications, seed, scale)
    prepared = prepare(loaded)  # checks the geography early
    history, las = prepared.history, prepared.las

    with OutputFolder(out, sc.name, force=force, root=output_root) as folder:
        run = run_records(prepared, seed, reps, scale, jobs=jobs, on_done=on_done,
                          parameter_uncertainty=parameter_uncertainty)
        results, full = run.results, run.records
        summary = summarise(full, sc.name)
        write_csv(summary, folder.path / "summary.csv")
        write_parquet(full, folder.path / "replications.parquet")
        first = first_year_check(summary, history, first_year=sc.start.year + 1,
                                 published_year=sc.start.year)
        write_csv(first, folder.path / "first_year_check.csv")
        fan_charts(summary, chart_history(prepared), folder.path / "figures", FAN_METRICS)
        manifest = {
            "kind": "run",
            "caresim_version": caresim.__version__,
            **scenario_manifest(loaded),
            "seed": seed,
            "replications": reps,
            "scale": scale,
            "scale_note": scale_note(scale),
            "jobs": jobs,
            "geography": geography_manifest(las),
            "calibration_vintage": CALIBRATION_VINTAGE,
            "uncertainty": ("parameter and stochastic: replication r uses draw r of "
                            f"{loaded.data_paths.get('parameter_samples')}"
                            if parameter_uncertainty else
                            "stochastic only (parameters fixed at the scenario's values)"),
            "wall_seconds": round(run.wall_seconds, 3),
            "replication_stats": [{"replication": r.replication, **r.stats} for r in results],
            **runtime_manifest(),
            "started": dt.datetime.now().isoformat(timespec="seconds"),
        }
        write_manifest(folder.path, manifest)
    return RunOutcome(folder.final, summary, first, manifest)
