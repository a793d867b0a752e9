"""`caresim run` as a library call: scenario in, output folder out.

Loads the calibration tables the scenario names, runs the replications, and writes the
output contract (DESIGN.md): manifest.json, summary.csv, replications.parquet, fan charts,
and first_year_check.csv (the first simulated year against the latest published year).
Nothing is written to the final folder until everything has succeeded.
"""

from __future__ import annotations

import copy
import datetime as dt
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

import caresim
from caresim.errors import CaresimError
from caresim.report.fancharts import fan_charts
from caresim.results.firstyear import first_year_check
from caresim.results.store import OutputFolder, write_manifest, write_parquet
from caresim.results.summary import add_geographies, add_ratios, summarise, write_csv
from caresim.runner.replications import ReplicationResult, run_replications
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
    reps = replications or sc.run.replications
    seed = sc.run.seed if seed is None else seed
    scale = sc.run.scale if scale is None else scale
    if not 0 < scale <= 1:
        raise CaresimError(f"--scale must be in (0, 1], got {scale}")
    if reps < 1:
        raise CaresimError(f"--replications must be at least 1, got {reps}")
    la_inputs, history = load_inputs(loaded)
    las = LocalAuthorities.from_inputs(la_inputs, sc.geography)  # checks the geography early

    with OutputFolder(out, sc.name, force=force, root=output_root) as folder:
        t0 = time.perf_counter()
        per_rep = parameter_draws(loaded, reps) if parameter_uncertainty else None
        results = run_replications(sc, la_inputs, seed, reps, scale, jobs=jobs, on_done=on_done,
                                   history=history, scenarios=per_rep)
        wall = time.perf_counter() - t0
        records = pd.concat([r.records for r in results], ignore_index=True)
        full = add_ratios(add_geographies(records, las.regions))
        summary = summarise(full, sc.name)
        write_csv(summary, folder.path / "summary.csv")
        write_parquet(full, folder.path / "replications.parquet")
        first = first_year_check(summary, history, first_year=sc.start.year + 1,
                                 published_year=sc.start.year)
        write_csv(first, folder.path / "first_year_check.csv")
        fan_charts(summary, history, folder.path / "figures", FAN_METRICS)
        manifest = {
            "caresim_version": caresim.__version__,
            "scenario": loaded.resolved,
            "scenario_hash": loaded.hash,
            "scenario_files": [str(p) for p in loaded.files],
            "seed": seed,
            "replications": reps,
            "scale": scale,
            "scale_note": (f"{scale:g} of children (and of court and placement capacity) simulated; "
                           "counts and costs multiplied by 1/scale"),
            "jobs": jobs,
            "geography": {"las": len(las.codes), "regions": sorted(set(las.regions))},
            "calibration_vintage": "DfE 2023-24 releases (stocks at 31 March 2024); "
                                   "published_figures.csv as shared",
            "calibration_files": {k: str(v) for k, v in loaded.data_paths.items()},
            "uncertainty": ("parameter and stochastic: replication r uses draw r of "
                            f"{loaded.data_paths.get('parameter_samples')}"
                            if parameter_uncertainty else
                            "stochastic only (parameters fixed at the scenario's values)"),
            "wall_seconds": round(wall, 3),
            "replication_stats": [{"replication": r.replication, **r.stats} for r in results],
            "python": platform.python_version(),
            "started": dt.datetime.now().isoformat(timespec="seconds"),
        }
        write_manifest(folder.path, manifest)
    return RunOutcome(folder.final, summary, first, manifest)
