"""`caresim calibrate` and `caresim backtest` as library calls.

calibrate: load the config and its prior scenario, fit (see `caresim.analysis.calibrate`),
write `calibration/<fitted_dir>/` (parameters.yaml extending the prior, parameter_samples.csv,
la_multipliers.csv, manifest.json) and a report folder (fit.csv, figures, fit_summary.md,
manifest.json).

backtest: fit only on targets up to the training year, then project from the published
state at 31 March of that year, without using any later published figure (referrals and
UASC arrivals are held at the training year's level), and compare with what was published.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from caresim.analysis.calibrate import (
    CalibrationConfig,
    FitResult,
    Problem,
    fitted_yaml,
    final_fit_table,
    get_path,
    load_config,
    manifest,
    parameter_samples,
    parameters_table,
    calibrate,
)
from caresim.analysis.targets import fit_table, load_targets, simulated_values
from caresim.errors import CaresimError
from caresim.population.local import LocalAuthorities
from caresim.report.fitreport import fit_checks, la_charts, national_charts, summary_markdown
from caresim.results.store import OutputFolder, write_manifest
from caresim.results.summary import write_csv
from caresim.runner.pipeline import read_table
from caresim.scenario.loader import load_merged, load_scenario
from caresim.scenario.model import Geography

METHOD = ("Method: bounded least squares on the simulation (common random numbers), LA "
          "multipliers by damped fixed-point iteration, 95% intervals from the Gauss-Newton "
          "(Laplace) approximation. See docs/calibration.md.")


def build_problem(cfg: CalibrationConfig, cfg_path: Path, start: dt.date | None = None) -> Problem:
    """Load the prior scenario and the tables a calibration (or projection) needs."""
    loaded = load_scenario(cfg_path.parent / cfg.scenario)
    start = start or cfg.start
    la_rel = loaded.resolved["data"]["la_inputs"].replace("{year}", str(start.year))
    la_path = loaded.path.parent / la_rel
    if not la_path.is_file():
        raise CaresimError(f"{la_path}: no LA table for a start on {start.isoformat()}")
    la_inputs = read_table(la_path, "the LA inputs table")
    history = read_table(loaded.data_paths["history"], "the published history")
    targets = load_targets(cfg_path.parent / cfg.targets)
    regions = LocalAuthorities.from_inputs(la_inputs, Geography()).regions
    base = dict(loaded.resolved)
    base.pop("data", None)  # the engine gets the tables directly
    return Problem(base=base, la_inputs=la_inputs, history=history, targets=targets,
                   config=cfg, regions=regions)


def _write_report(folder: Path, fit: pd.DataFrame, params: pd.DataFrame | None,
                  check_years: tuple[int, int], la_year: int, title: str,
                  train: tuple[int, int] | None, extra: dict) -> None:
    write_csv(fit, folder / "fit.csv")
    national_charts(fit, folder / "figures", train)
    la_charts(fit, folder / "figures", la_year)
    (folder / "fit_summary.md").write_text(
        summary_markdown(fit, params, check_years, la_year, title, METHOD))
    write_manifest(folder, extra)


def run_calibration(config: Path, out: Path | None, force: bool, jobs: int,
                    progress: Callable[[str], None], write_fitted: bool = True,
                    command: str = "caresim calibrate", seed: int | None = None) -> tuple[Path, pd.DataFrame]:
    """Fit, write calibration/<fitted_dir>/ and the report; returns (report folder, fit).
    `seed` replaces the config's."""
    cfg, cfg_path = load_config(config, seed)
    problem = build_problem(cfg, cfg_path)
    prior = np.array([float(get_path(problem.base, s.path)) for s in cfg.parameters])
    with OutputFolder(out, "calibration", force=force) as folder, _executor(jobs) as ex:
        fit = calibrate(problem, progress=progress, executor=ex)
        table = final_fit_table(problem, fit.theta, ex)
        problem.note("fit table")
        params = parameters_table(cfg, fit, prior)
        man = {"kind": "calibration", **manifest(cfg, fit, cfg_path.parent / cfg.targets, command, params),
               **fit_checks(table, cfg.train, cfg.train[1])}
        _write_report(folder.path, table, params, cfg.train, cfg.train[1],
                      "Calibration fit", cfg.train, man)
        write_csv(params, folder.path / "parameters.csv")
        write_csv(pd.DataFrame(problem.log), folder.path / "fit_history.csv")
        if write_fitted:
            _write_fitted(cfg, cfg_path, fit, man, command, params, folder.path / "fit_summary.md")
    return folder.final, table


def _write_fitted(cfg: CalibrationConfig, cfg_path: Path, fit: FitResult, man: dict,
                  command: str, params: pd.DataFrame, summary: Path) -> Path:
    """calibration/<fitted_dir>/: written whole into a staging folder, then swapped in
    (with the report's one-page `summary`)."""
    target = cfg_path.parent / cfg.fitted_dir
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    prior = Path(os.path.relpath(cfg_path.parent / cfg.scenario, target)).as_posix()
    text = fitted_yaml(params, prior, command, "calibration/fitted/manifest.json",
                       {"la_multipliers": "la_multipliers.csv",
                        "parameter_samples": "parameter_samples.csv"},
                       prior_doc=load_merged(cfg_path.parent / cfg.scenario))
    (staging / "parameters.yaml").write_text(text)
    write_csv(parameter_samples(cfg, fit), staging / "parameter_samples.csv")
    if fit.la_multipliers is not None:
        write_csv(fit.la_multipliers, staging / "la_multipliers.csv")
    else:
        las = pd.DataFrame({"geography": []})
        write_csv(las, staging / "la_multipliers.csv")
    write_manifest(staging, man)
    shutil.copyfile(summary, staging / "fit_summary.md")
    try:  # the baseline extends this file: never swap in one that does not load
        load_scenario(staging / "parameters.yaml")
    except CaresimError as exc:
        raise CaresimError(f"the fitted scenario written by calibrate does not load, so "
                           f"{target} was left as it was; the rejected files are in "
                           f"{staging}:\n{exc}") from exc
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


class _executor:
    """A forkserver process pool for jobs > 1, else nothing (serial)."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.ex: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessPoolExecutor | None:
        if self.jobs > 1:
            self.ex = ProcessPoolExecutor(max_workers=self.jobs, mp_context=mp.get_context("forkserver"))
        return self.ex

    def __exit__(self, *exc) -> None:
        if self.ex is not None:
            self.ex.shutdown()


INPUTS = {"held": "none: referrals and UASC held at the training year's level",
          "published": "published LA referrals and national UASC arrivals (exogenous inputs) "
                       "of the held-out years"}


def run_backtest(config: Path, train_until: int, out: Path | None, force: bool, jobs: int,
                 progress: Callable[[str], None], command: str,
                 inputs: str = "held", seed: int | None = None) -> list[Path]:
    """Fit on targets up to `train_until`, project from 31 March `train_until`, compare.

    `inputs`: `held` (a true forecast: referrals and UASC arrivals stay at the training
    year's level), `published` (conditional on the exogenous inputs as they turned out:
    published LA referrals and national UASC arrivals of the held-out years, which a
    scenario would set; no published outcome is used either way) or `both`: one fit,
    projected both ways, each report in its own subfolder (`held/`, `published/`) of the
    output folder. Returns the report folders."""
    kinds = list(INPUTS) if inputs == "both" else [inputs]
    if not set(kinds) <= set(INPUTS):
        raise CaresimError(f"--inputs must be 'held', 'published' or 'both', got {inputs!r}")
    cfg, cfg_path = load_config(config, seed)
    if not cfg.train[0] <= train_until < cfg.train[1]:
        raise CaresimError(f"--train-until must be within {cfg.train[0]}..{cfg.train[1] - 1}, "
                           f"got {train_until}")
    local = cfg.local.model_copy(update={"years": [y for y in cfg.local.years if y <= train_until]
                                         or [train_until]}) if cfg.local else None
    fit_cfg = cfg.model_copy(update={"train": (cfg.train[0], train_until), "local": local,
                                     "parameters": trained_parameters(cfg.parameters, train_until)})
    problem = build_problem(fit_cfg, cfg_path)
    prior = np.array([float(get_path(problem.base, s.path)) for s in fit_cfg.parameters])
    last = int(problem.targets.year.max())
    with OutputFolder(out, "backtest", force=force) as folder, _executor(jobs) as ex:
        fit = calibrate(problem, progress=progress, executor=ex)
        # projection from the published state at 31 March train_until, no later data
        start = dt.date(train_until, 4, 1)
        proj_cfg = fit_cfg.model_copy(update={"start": start, "train": (train_until + 1, last)})
        proj = build_problem(proj_cfg, cfg_path, start=start)
        proj.la_multipliers = fit.la_multipliers
        trained = trained_years(proj.scenario(fit.theta, years=last - train_until), train_until)
        params = parameters_table(fit_cfg, fit, prior)
        from caresim.analysis.calibrate import simulate_means

        scale = cfg.local.scale if cfg.local else cfg.scale
        t = proj.targets[proj.targets.year > train_until]
        names = []
        for kind in kinds:
            sc = _held_inputs(trained, proj.history, train_until) if kind == "held" else trained
            means = simulate_means(proj, [sc], scale, max(cfg.replications, 2), ex)[0]
            table = fit_table(t, simulated_values(t, means), training=None)
            man = {"kind": "backtest", **manifest(fit_cfg, fit, cfg_path.parent / cfg.targets, command, params),
                   **fit_checks(table, (train_until + 1, last), last)}
            man["backtest"] = {"train_until": train_until, "projection_start": start.isoformat(),
                               "held_out_years": [train_until + 1, last], "inputs": kind,
                               "future_inputs": INPUTS[kind]}
            if len(kinds) > 1:
                man["backtest"]["same_fit_as"] = [f"../{k}" for k in kinds if k != kind]
            report = folder.path / kind if len(kinds) > 1 else folder.path
            report.mkdir(exist_ok=True)
            _write_report(report, table, params, (train_until + 1, last), last,
                          f"Backtest: trained to {train_until - 1}-{str(train_until)[2:]}, "
                          f"projected from 31 March {train_until} ({kind} inputs)", None, man)
            write_csv(params, report / "parameters.csv")
            write_csv(pd.DataFrame(problem.log), report / "fit_history.csv")
            names.append(kind if len(kinds) > 1 else None)
    return [folder.final / n if n else folder.final for n in names]


def trained_parameters(params: list, year: int) -> list:
    """The parameters a fit trained to `year` can fit: one year's parameters (court capacity
    by year) of later years are left out; they keep their priors, and the projection holds
    the last trained year's value (`trained_years`)."""
    return [s for s in params if s.year is None or s.year <= year]


def _by_year_through(by_year: dict, last: int) -> dict:
    """A by-financial-year mapping without its years after `last` (so the last kept value is
    held); if every year is later, the first year's value alone."""
    kept = {y: v for y, v in by_year.items() if y <= last}
    if by_year and not kept:
        first = min(by_year)
        kept = {first: by_year[first]}
    return kept


def trained_years(sc, year: int):
    """The scenario without year-indexed values after `year` (the last training year):
    court capacity by year is held at its value in `year`, and held trends stop at `year`.
    The adoption placement lead by year is kept through `year` + 1: adoptions in year + 1
    are the ones whose lead sets the placed-for-adoption stock at 31 March of `year`."""
    court = sc.court
    by_year = _by_year_through(court.capacity_by_year, year)
    pl = sc.placements
    lead = _by_year_through(pl.adoption_placement_lead_by_year, year + 1)
    trends = [t.model_copy(update={"through_year": max(min(t.through_year, year),
                                                       t.from_year or year)})
              if t.after == "held" else t for t in sc.trends]
    return sc.model_copy(update={"court": court.model_copy(update={"capacity_by_year": by_year}),
                                 "placements": pl.model_copy(
                                     update={"adoption_placement_lead_by_year": lead}),
                                 "trends": trends})


def _held_inputs(sc, history: pd.DataFrame, year: int):
    """The scenario with referrals and UASC arrivals held at `year`'s level."""
    a = sc.arrivals
    uasc = a.uasc.model_copy(update={"use_published": False,
                                     "per_year": _published_uasc(history, year, a.uasc.per_year)})
    referrals = a.referrals.model_copy(update={"use_published": False})
    return sc.model_copy(update={"arrivals": a.model_copy(update={"referrals": referrals,
                                                                   "uasc": uasc})})


def _published_uasc(history: pd.DataFrame, year: int, default: float) -> float:
    h = history[(history.metric == "care_starts.uasc") & (history.geography == "England")
                & (history.year == year)]
    return float(h.value.iloc[0]) if len(h) else default
