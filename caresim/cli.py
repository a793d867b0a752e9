"""The `caresim` command: a thin layer that parses, calls the library, prints, and exits.

User mistakes (`CaresimError`, including scenario errors with file:line:col) are printed
without a traceback and exit with status 2; bugs keep their traceback.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from caresim.errors import CaresimError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Simulate children's journeys through English children's social care "
                       "and the family courts.")
err = Console(stderr=True)
out = Console(width=None if Console().is_terminal else 120)


def _fail(exc: CaresimError) -> None:
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def run(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default outputs/<scenario>/<timestamp>)"),
    replications: Optional[int] = typer.Option(None, "--replications", "-n", min=1, help="replications (default: the scenario's)"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="root seed (default: the scenario's)"),
    scale: Optional[float] = typer.Option(None, "--scale", help="fraction of children simulated, in (0, 1]"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="worker processes"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty output folder"),
    parameter_uncertainty: bool = typer.Option(
        False, "--parameter-uncertainty",
        help="each replication draws the fitted parameters from their calibrated ranges"),
) -> None:
    """Run a scenario and write its outputs (summary.csv, manifest.json, Parquet, figures)."""
    from caresim.runner.pipeline import run_scenario
    from caresim.scenario.loader import load_scenario

    try:
        loaded = load_scenario(scenario)
        reps = replications or loaded.scenario.run.replications
        with _replication_progress(f"{loaded.scenario.name}: replications", reps) as advance:
            outcome = run_scenario(loaded, out=out_dir, replications=replications, seed=seed,
                                   scale=scale, jobs=jobs, force=force,
                                   on_done=advance,
                                   parameter_uncertainty=parameter_uncertainty)
    except CaresimError as exc:
        _fail(exc)
        return
    _print_first_year(outcome.first_year)
    _outputs_written(outcome.folder)


@app.command()
def compare(
    scenario_a: Path = typer.Argument(..., metavar="A.yaml", help="scenario A (the baseline)"),
    scenario_b: Path = typer.Argument(..., metavar="B.yaml", help="scenario B (the change)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default outputs/compare_<A>_vs_<B>/<timestamp>)"),
    replications: Optional[int] = typer.Option(None, "--replications", "-n", min=1, help="replications of each scenario (default: A's)"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="root seed (default: A's)"),
    scale: Optional[float] = typer.Option(None, "--scale", help="fraction of children simulated, in (0, 1] (default: A's)"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="worker processes"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty output folder"),
    no_crn: bool = typer.Option(False, "--no-crn", help="run B from a different seed (independent runs; "
                                "only to measure what common random numbers buy)"),
) -> None:
    """Compare two scenarios, paired by replication: writes difference.csv (B minus A), summary.csv, manifest.json, Parquet, figures."""
    from caresim.analysis.compare import run_compare
    from caresim.scenario.loader import load_scenario

    try:
        loaded_a = load_scenario(scenario_a)
        loaded_b = load_scenario(scenario_b)
        reps = replications or loaded_a.scenario.run.replications
        label = f"{loaded_a.scenario.name} vs {loaded_b.scenario.name}: replications"
        with _replication_progress(label, 2 * reps) as advance:
            outcome = run_compare(loaded_a, loaded_b, out=out_dir, replications=replications,
                                  seed=seed, scale=scale, jobs=jobs, force=force, crn=not no_crn,
                                  on_done=advance)
    except CaresimError as exc:
        _fail(exc)
        return
    _print_difference(outcome, "care_starts")
    for w in outcome.manifest.get("warnings", []):
        err.print(f"[bold yellow]warning:[/] {w}", markup=True, highlight=False, soft_wrap=True)
    _outputs_written(outcome.folder)


@app.command()
def sweep(
    scenario: Path = typer.Argument(..., help="scenario YAML file with an `uncertain:` block"),
    method: str = typer.Option("sobol", "--method", "-m", help="sobol, morris, fast or delta"),
    samples: Optional[int] = typer.Option(None, "--samples", "-N", min=1,
                                          help="SALib's N (default: sobol 64, morris 10, fast 65, delta 128)"),
    outputs: Optional[list[str]] = typer.Option(
        None, "--outputs", "-o", help="METRIC@YEAR, METRIC@Y1-Y2 or diff:METRIC@YEAR (England); "
        "repeat the option or separate with commas (default: care_starts and cost.total in the last year)"),
    baseline: Optional[Path] = typer.Option(None, "--baseline", "-b", metavar="A.yaml",
                                            help="baseline scenario for diff: outputs (paired, common random numbers)"),
    replications: int = typer.Option(2, "--replications", "-n", min=1, help="replications per sample (2+ measures noise)"),
    scale: Optional[float] = typer.Option(None, "--scale", help="fraction of children simulated, in (0, 1] (default: the scenario's)"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="root seed of the design and the runs (default: the scenario's)"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="local worker processes"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address, tcp://HOST:PORT"),
    dask_workers: Optional[int] = typer.Option(None, "--dask-workers", min=1, help="start a local Dask cluster with N worker processes"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="sweep folder (default outputs/<scenario>/sweep-<method>-<plan hash>); "
                                           "the same command resumes it"),
    force: bool = typer.Option(False, "--force", help="discard a different (or any) sweep in the folder and start again"),
    second_order: bool = typer.Option(False, "--second-order", help="sobol: also second-order indices (indices_s2.csv; about twice the runs)"),
    dummy: bool = typer.Option(False, "--dummy", help="add a dummy parameter that changes nothing (the indices' noise floor)"),
) -> None:
    """Sensitivity sweep of a scenario's uncertain parameters (SALib): indices.csv, tornado and index figures, noise share. Resumable."""
    from caresim.analysis.sweep import SweepIncomplete, SweepInterrupted
    from caresim.analysis.sweep_scenario import run_scenario_sweep
    from caresim.scenario.loader import load_scenario

    wanted = [o for text in (outputs or []) for o in text.split(",") if o.strip()] or None
    try:
        loaded = load_scenario(scenario)
        base = load_scenario(baseline) if baseline is not None else None
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      _RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                      console=err, transient=False,
                      disable=not err.is_terminal and not _force_progress()) as progress:
            task = progress.add_task(f"{loaded.scenario.name}: {method} runs", total=None)

            def show(done: int, total: int, reused: int, failed: int) -> None:
                progress.update(task, total=total, completed=done)

            def started(info: dict) -> None:
                plan = info["plan"]
                resumed = f"; resuming: {info['reused']} runs already stored" if info["reused"] else ""
                progress.console.print(
                    f"sweep {plan['method']} N={plan['samples']} over {len(plan['parameters'])} parameters: "
                    f"{info['total']} runs ({plan['design_points']} design + {plan['tornado_points']} tornado) "
                    f"x {plan['replications']} replications{resumed}\n"
                    f"executor: {info['backend']}\nfolder: {info['folder']}", highlight=False, markup=False)
                for w in info["warnings"]:
                    progress.console.print(f"[bold yellow]warning:[/] {escape(w)}", markup=True,
                                           highlight=False, soft_wrap=True)

            outcome = run_scenario_sweep(
                loaded, method=method, samples=samples, outputs=wanted, baseline=base,
                replications=replications, scale=scale, seed=seed, jobs=jobs, scheduler=scheduler,
                dask_workers=dask_workers, out=out_dir, force=force, second_order=second_order,
                dummy=dummy, progress=show, on_start=started)
    except SweepIncomplete as exc:
        err.print(exc.counts.line(), highlight=False, markup=False)
        _fail(exc)
        return
    except SweepInterrupted as exc:
        err.print(exc.counts.line(), highlight=False, markup=False)
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(130)
    except CaresimError as exc:
        _fail(exc)
        return
    _print_indices(outcome)
    err.print(outcome.counts.line(), highlight=False, markup=False)
    for w in outcome.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(w)}", markup=True, highlight=False, soft_wrap=True)
    _outputs_written(outcome.folder)


class _RateColumn(ProgressColumn):
    """Runs per minute, from rich's recent-speed estimate."""

    def render(self, task) -> Text:
        speed = task.speed
        return Text(f"{speed * 60:.1f} runs/min" if speed else "", style="progress.data.speed")


def _print_indices(outcome) -> None:
    idx, method = outcome.indices, outcome.manifest["method"]
    key = "mu_star" if method == "morris" else "delta" if method == "delta" else "ST"
    cols = list(outcome.manifest["index_columns"])
    for output, g in idx.groupby("output", sort=False):
        share = outcome.manifest["noise_share"].get(output)
        reps = outcome.manifest["replications"]
        noise = (f"noise share {share:.1%}" if share is not None else
                 "noise share n/a: 1 replication" if reps < 2 else "noise share n/a")
        table = Table(title=f"{output}: {method} indices ({noise})")
        table.add_column("parameter", justify="left")
        for c in cols:
            table.add_column(c, justify="right")
        for r in g.sort_values(key, ascending=False, kind="mergesort").itertuples():
            table.add_row(r.parameter, *[f"{getattr(r, c):.3g}" for c in cols])
        out.print(table)


@app.command()
def trial(
    trial_file: Path = typer.Argument(..., metavar="TRIAL.yaml", help="virtual trial file (e.g. scenarios/trials/fgc_pre_proceedings_trial.yaml)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default outputs/<trial>/<timestamp>)"),
    replications: Optional[int] = typer.Option(None, "--replications", "-n", min=1, help="re-runs of the trial (default: the file's)"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="root seed (default: the file's)"),
    scale: Optional[float] = typer.Option(None, "--scale", help="fraction of children simulated, in (0, 1] (default: the file's)"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="worker processes"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty output folder"),
) -> None:
    """Re-create a published trial in the model: writes trial.csv (simulated arms beside the published figures)."""
    from caresim.analysis.trial import run_trial
    from caresim.scenario.loader import load_document
    from caresim.scenario.model import TrialSpec

    try:
        spec = load_document(trial_file, TrialSpec)
        reps = replications or spec.run.replications
        with _replication_progress(f"{spec.name}: replications", reps) as advance:
            outcome = run_trial(trial_file, out=out_dir, replications=replications, seed=seed,
                                scale=scale, jobs=jobs, force=force,
                                on_done=advance)
    except CaresimError as exc:
        _fail(exc)
        return
    t = outcome.table
    table = Table(title=f"{spec.name}: simulated ({outcome.manifest['replications']} re-runs of "
                        "the trial) against published")
    for col in ("outcome", "arm", "simulated", "5-95% of re-runs", "published", "check"):
        table.add_column(col, justify="left" if col in ("outcome", "arm") else "right")
    for r in t.itertuples():
        days = r.outcome.startswith("days")
        fmt = (lambda v: f"{v:+.1f}" if r.arm == "difference" else f"{v:.1f}") if days else \
              (lambda v: f"{100 * v:+.1f} pts" if r.arm == "difference" else f"{100 * v:.1f}%")
        pub = "" if r.published != r.published else fmt(r.published)
        table.add_row(r.outcome, r.arm, fmt(r.simulated),
                      f"{fmt(r.simulated_p05)} to {fmt(r.simulated_p95)}", pub, r.check)
    out.print(table)
    _outputs_written(outcome.folder)


def _print_difference(outcome, metric: str) -> None:
    d = outcome.difference
    d = d[(d["metric"] == metric) & (d["geography"] == "England")].sort_values("year")
    a, b = (outcome.manifest["scenarios"][k]["label"] for k in ("A", "B"))
    crn = "paired, common random numbers" if outcome.manifest["crn"] else "independent runs (--no-crn)"
    table = Table(title=f"{metric}, England: {b} minus {a} ({crn}, "
                        f"{outcome.manifest['replications']} replications)")
    for col in ("year", "mean difference", "90% interval (p05 - p95)"):
        table.add_column(col, justify="right")
    for r in d.itertuples():
        table.add_row(str(r.year), f"{r.mean:+,.0f}", f"{r.p05:+,.0f} to {r.p95:+,.0f}")
    out.print(table)


@contextmanager
def _replication_progress(description: str, total: int):
    """A progress bar on stderr (shown on a terminal, or with CARESIM_PROGRESS=1); yields
    the callback that advances it by one replication."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False,
                  disable=not err.is_terminal and not _force_progress()) as progress:
        task = progress.add_task(description, total=total)
        yield lambda _result: progress.advance(task)


def _force_progress() -> bool:
    import os

    return os.environ.get("CARESIM_PROGRESS") == "1"


def _print_first_year(df) -> None:
    table = Table(title="First simulated year against the latest published year (England)")
    for col in ("metric", "published", "simulated (mean)", "90% interval", "difference", "within 15%"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for r in df.itertuples():
        table.add_row(
            r.metric, f"{r.published:,.0f} ({r.published_year}, {r.source_id})",
            f"{r.simulated_mean:,.0f} ({r.simulated_year})",
            f"{r.simulated_p05:,.0f} - {r.simulated_p95:,.0f}",
            f"{r.rel_diff:+.1%}", "yes" if r.within_tolerance else "NO")
    out.print(table)


def _outputs_written(folder: Path) -> None:
    """Say where the outputs are, and write their policy brief (DESIGN's output contract:
    every output folder has its brief; `caresim report` rewrites it)."""
    from caresim.report.brief import write_brief

    out.print(f"outputs written to [bold]{escape(str(folder))}[/]", highlight=False)
    try:
        paths = write_brief(folder)
    except CaresimError as exc:
        _fail(exc)
        return
    out.print(f"brief: [bold]{escape(str(paths[0]))}[/] (and brief.md)", highlight=False)


@app.command()
def report(
    out_dir: Path = typer.Argument(..., metavar="OUTDIR", help="an output folder of run, compare, sweep, trial, calibrate or backtest"),
    formats: Optional[list[str]] = typer.Option(None, "--format", "-f", help="html or md (repeatable; default both)"),
) -> None:
    """Write the policy brief of an output folder: brief.html (self-contained) and brief.md."""
    from caresim.report.brief import FORMATS, write_brief

    try:
        written = write_brief(out_dir, tuple(formats) if formats else FORMATS)
    except CaresimError as exc:
        _fail(exc)
        return
    for path in written:
        out.print(f"brief written to [bold]{escape(str(path))}[/]", highlight=False)


@app.command()
def calibrate(
    config: Path = typer.Option(Path("calibration/config.yaml"), "--config", help="calibration config"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="report folder (default outputs/calibration/<timestamp>)"),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="worker processes"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty report folder"),
    no_write: bool = typer.Option(False, "--no-write", help="report only; leave calibration/fitted untouched"),
    seed: Optional[int] = typer.Option(None, "--seed", help="replace the config's seed (to see how much the fit moves with it)"),
) -> None:
    """Fit the uncertain parameters to published targets; write calibration/fitted and a fit report."""
    from caresim.analysis.calibration_pipeline import run_calibration

    command = " ".join(["caresim"] + sys.argv[1:])
    try:
        folder, _fit = run_calibration(config, out_dir, force, jobs, progress=_say,
                                       write_fitted=not no_write, command=command, seed=seed)
    except CaresimError as exc:
        _fail(exc)
        return
    out.print((folder / "fit_summary.md").read_text(), highlight=False, markup=False)
    _outputs_written(folder)


@app.command()
def backtest(
    train_until: int = typer.Option(..., "--train-until", help="last financial year fitted (ending 31 March)"),
    config: Path = typer.Option(Path("calibration/config.yaml"), "--config", help="calibration config"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="report folder (default outputs/backtest/<timestamp>)"),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, help="worker processes"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty report folder"),
    inputs: str = typer.Option("held", "--inputs",
                               help="held: referrals and UASC arrivals stay at the training year's "
                                    "level (a forecast); published: as they turned out (conditional); "
                                    "both: one fit, a report for each in held/ and published/"),
    seed: Optional[int] = typer.Option(None, "--seed", help="replace the config's seed (to see how much the fit moves with it)"),
) -> None:
    """Fit on targets up to a year, project from that 31 March, compare with what was published."""
    from caresim.analysis.calibration_pipeline import run_backtest

    command = " ".join(["caresim"] + sys.argv[1:])
    try:
        folders = run_backtest(config, train_until, out_dir, force, jobs, progress=_say,
                               command=command, inputs=inputs, seed=seed)
    except CaresimError as exc:
        _fail(exc)
        return
    for folder in folders:
        out.print((folder / "fit_summary.md").read_text(), highlight=False, markup=False)
        _outputs_written(folder)


def _say(message: str) -> None:
    err.print(message, highlight=False, markup=False)


@app.command()
def validate(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Check a scenario file (schema, extends, data files) without running it."""
    from caresim.scenario.loader import load_scenario

    try:
        loaded = load_scenario(scenario)
    except CaresimError as exc:
        _fail(exc)
        return
    out.print(f"{scenario}: valid scenario '{loaded.scenario.name}' (hash {loaded.hash[:12]})",
              highlight=False)


@app.command()
def schema(output: Optional[Path] = typer.Option(None, "--output", "-o", help="write to this file instead of stdout")) -> None:
    """Print the JSON Schema of scenario files (for editor completion and checking)."""
    from caresim.scenario.schema import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


@app.command()
def pathway(scenario: Path = typer.Argument(Path("scenarios/baseline.yaml"), help="scenario YAML file")) -> None:
    """Print the scenario's care pathway as a Mermaid flowchart."""
    from caresim.pathway.compiled import Pathway
    from caresim.scenario.loader import load_scenario

    try:
        loaded = load_scenario(scenario)
    except CaresimError as exc:
        _fail(exc)
        return
    sys.stdout.write(Pathway(loaded.scenario, n_la=1).mermaid() + "\n")


@app.command()
def docs(root: Path = typer.Option(Path("."), help="project root")) -> None:
    """Regenerate README's pathway diagram and metric table, and docs/parameters.md."""
    from caresim.report.docs import write_docs
    from caresim.scenario.loader import load_scenario

    try:
        loaded = load_scenario(root / "scenarios" / "baseline.yaml")
    except CaresimError as exc:
        _fail(exc)
        return
    for p in write_docs(root, loaded):
        out.print(f"wrote {p}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
