"""Sensitivity sweeps: known indices recovered through the sweep code (Ishigami), the same
indices on every executor (this process, local processes, Dask), resume after an interrupt
or a killed process, failed runs retried then reported, and the `caresim sweep` command on
the tiny scenario."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from caresim.analysis.sensitivity import Ishigami
from caresim.analysis.sweep import (
    SweepIncomplete,
    SweepInterrupted,
    SweepSettings,
    build_design,
    run_sweep,
)
from caresim.cli import app
from caresim.errors import CaresimError
from conftest import TINY

runner = CliRunner()
ISHIGAMI = Ishigami()

# --- known indices ----------------------------------------------------------------------------


def test_ishigami_sobol_indices_recovered(tmp_path):
    """S1 and ST within their confidence intervals of the analytic values (a=7, b=0.1)."""
    out = run_sweep(ISHIGAMI, ISHIGAMI.parameters(),
                    SweepSettings("sobol", 4096, seed=11, replications=1, batch_size=2048), tmp_path / "s")
    exact = ISHIGAMI.analytic()
    assert exact["S1"]["x1"] == pytest.approx(0.3139, abs=1e-4)
    assert exact["ST"]["x3"] == pytest.approx(0.2437, abs=1e-4)
    idx = out.indices.set_index("parameter")
    for p in ("x1", "x2", "x3"):
        for kind in ("S1", "ST"):
            est, conf = idx.at[p, kind], idx.at[p, f"{kind}_conf"]
            assert abs(est - exact[kind][p]) <= conf, (p, kind, est, conf, exact[kind][p])
            assert conf < 0.05  # N large enough to be stable
    assert list(out.indices.columns) == ["output", "parameter", "method", "S1", "S1_conf", "ST", "ST_conf"]
    assert out.counts.total == 4096 * 5 + 7 and out.counts.new == out.counts.total
    assert out.warnings == []
    # the tornado: x1 moves y both ways; x3 does nothing with x1 at its median (sin 0 = 0)
    t = out.tornado.set_index("parameter")
    assert t.at["x1", "output_high"] > t.at["x1", "output_centre"] > t.at["x1", "output_low"]
    assert t.at["x3", "swing"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method, n, checks", [
    ("fast", 1024, {"S1": 0.02, "ST": None}),
    ("morris", 40, {}),
    ("delta", 128, {}),
])
def test_other_methods_on_ishigami(tmp_path, method, n, checks):
    out = run_sweep(ISHIGAMI, ISHIGAMI.parameters(),
                    SweepSettings(method, n, seed=5, replications=1, batch_size=4096), tmp_path / method)
    idx = out.indices.set_index("parameter")
    exact = ISHIGAMI.analytic()
    for kind, tol in checks.items():  # FAST is slightly biased: a tolerance beside its interval
        for p in ("x1", "x2", "x3"):
            allowed = max(idx.at[p, f"{kind}_conf"], tol or 0.0)
            assert abs(idx.at[p, kind] - exact[kind][p]) <= allowed, (kind, p)
    if method == "morris":
        assert list(idx.columns) == ["output", "method", "mu_star", "mu_star_conf", "sigma"]
        assert (idx["mu_star"] > 1).all()  # every input matters (x3 through its interaction)
    if method == "delta":
        assert list(idx.columns) == ["output", "method", "delta", "delta_conf", "S1", "S1_conf"]
        assert idx.at["x3", "S1"] < 0.15  # x3 has no first-order effect
    assert (out.folder / f"figures/{method}_y.png").stat().st_size > 5000


def test_dummy_parameter_has_no_effect(tmp_path):
    from caresim.analysis.sensitivity import DUMMY, dummy_parameter

    out = run_sweep(ISHIGAMI, [*ISHIGAMI.parameters(), dummy_parameter()],
                    SweepSettings("morris", 20, seed=1, replications=1, batch_size=1000), tmp_path / "d")
    idx = out.indices.set_index("parameter")
    assert idx.at[DUMMY, "mu_star"] == 0 and idx.at[DUMMY, "sigma"] == 0
    assert (idx.drop(DUMMY)["mu_star"] > 1).all()


# --- executors, resume, failures -------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit=0)
    yield cluster
    cluster.close()


def _files(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in ("indices.csv", "noise.csv", "tornado.csv", "samples.parquet")}


def test_same_indices_on_every_executor(tmp_path, dask_cluster):
    """This process, two local processes, and a Dask scheduler (by address) give
    byte-identical tables; noise share matches the noise put in."""
    ish = Ishigami(noise=0.5)
    settings = SweepSettings("sobol", 256, seed=3, replications=3, batch_size=100)
    runs = {
        "inline": run_sweep(ish, ish.parameters(), settings, tmp_path / "inline"),
        "processes": run_sweep(ish, ish.parameters(), settings, tmp_path / "proc", jobs=2),
        "dask": run_sweep(ish, ish.parameters(), settings, tmp_path / "dask",
                          scheduler=dask_cluster.scheduler_address),
    }
    files = {k: _files(o.folder) for k, o in runs.items()}
    assert files["inline"] == files["processes"] == files["dask"]
    assert "Dask scheduler" in runs["dask"].backend and "local worker" in runs["processes"].backend
    noise = runs["inline"].noise.iloc[0]
    # noise variance 0.25 per replication, over 3 replications, against Var(y) ~ 13.8
    assert noise["within_variance"] == pytest.approx(0.25, rel=0.15)
    assert noise["noise_share"] == pytest.approx(0.25 / 3 / 13.84, rel=0.25)
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert manifest["noise_share"]["y"] == pytest.approx(noise["noise_share"], rel=1e-3)


def test_interrupted_sweep_resumes_with_only_the_missing_runs(tmp_path):
    settings = SweepSettings("sobol", 512, seed=4, replications=2, batch_size=300)
    folder = tmp_path / "s"
    calls = []

    def stop_after_two_batches(done, total, reused, failed):
        calls.append(done)
        if len(calls) == 3:  # the start, then two batches stored
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as exc:
        run_sweep(ISHIGAMI, ISHIGAMI.parameters(), settings, folder, progress=stop_after_two_batches)
    assert exc.value.counts.new == 600 and "run the same command again" in str(exc.value)
    assert len(list((folder / "runs").glob("part-*.parquet"))) == 2
    assert not (folder / "indices.csv").exists()
    (folder / "runs" / ".part-0000999.abcd.tmp.parquet").write_bytes(b"half a file")  # a torn write

    resumed = run_sweep(ISHIGAMI, ISHIGAMI.parameters(), settings, folder)
    total = 512 * 5 + 7
    assert (resumed.counts.total, resumed.counts.reused, resumed.counts.new) == (total, 600, total - 600)
    assert resumed.manifest["runs"]["reused"] == 600
    assert not list((folder / "runs").glob(".*.tmp*"))
    fresh = run_sweep(ISHIGAMI, ISHIGAMI.parameters(), settings, tmp_path / "fresh")
    assert _files(folder) == _files(fresh.folder)

    # again: everything is reused and the same tables are written
    again = run_sweep(ISHIGAMI, ISHIGAMI.parameters(), settings, folder)
    assert (again.counts.reused, again.counts.new) == (total, 0)
    assert _files(folder) == _files(fresh.folder)

    # another plan in the same folder is refused, saying what differs; --force starts again
    other = SweepSettings("sobol", 256, seed=4, replications=2, batch_size=300)
    with pytest.raises(CaresimError, match=r"holds a different sweep \(.*samples: was 512, now 256.*--force"):
        run_sweep(ISHIGAMI, ISHIGAMI.parameters(), other, folder)
    forced = run_sweep(ISHIGAMI, ISHIGAMI.parameters(), other, folder, force=True)
    assert forced.counts.reused == 0
    # a folder that holds something else is not taken over
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(CaresimError, match="holds no sweep"):
        run_sweep(ISHIGAMI, ISHIGAMI.parameters(), other, tmp_path / "busy")


class FailingIshigami(Ishigami):
    """Fails at the points whose values are in `bad` (always), or, with a `marker` folder,
    only the first time each of them is tried."""

    def __init__(self, bad: list[tuple[float, ...]], marker: str | None = None):
        super().__init__()
        object.__setattr__(self, "bad", [tuple(round(v, 12) for v in b) for b in bad])
        object.__setattr__(self, "marker", marker)

    def __call__(self, values, replication):
        key = tuple(round(values[k], 12) for k in ("x1", "x2", "x3"))
        if key in self.bad:
            if self.marker is None:
                raise RuntimeError(f"model blew up at x1={key[0]}")
            flag = Path(self.marker) / str(self.bad.index(key))
            if not flag.exists():
                flag.write_text("tried")
                raise RuntimeError("transient failure")
        return super().__call__(values, replication)


def test_failed_runs_are_retried_then_reported(tmp_path):
    params = ISHIGAMI.parameters()
    settings = SweepSettings("sobol", 64, seed=9, replications=2, batch_size=50)
    design = build_design(params, settings)
    bad_point = 17
    bad = tuple(float(design.at[bad_point, k]) for k in ("x1", "x2", "x3"))
    bad_x1 = bad[0]
    folder = tmp_path / "s"
    with pytest.raises(SweepIncomplete) as exc:
        run_sweep(FailingIshigami([bad]), params, settings, folder)
    assert exc.value.counts.failed == 1 and "no indices were computed" in str(exc.value)
    failures = pd.read_csv(folder / "failures.csv")
    assert list(failures.columns) == ["point", "kind", "tornado", "x1", "x2", "x3", "attempts", "error"]
    row = failures.iloc[0]
    assert row["point"] == bad_point and row["attempts"] == 2
    assert (row["x1"], row["x2"], row["x3"]) == bad  # full precision
    assert row["error"] == f"RuntimeError: model blew up at x1={round(bad_x1, 12)}"
    assert not (folder / "indices.csv").exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and manifest["runs"]["failed"] == 1

    # fixed: the same sweep reruns only the failed point, then analyses
    done = run_sweep(ISHIGAMI, params, settings, folder)
    assert (done.counts.reused, done.counts.new) == (done.counts.total - 1, 1)
    assert not (folder / "failures.csv").exists() and (folder / "indices.csv").exists()

    # a transient failure is retried once and succeeds
    (tmp_path / "marks").mkdir()
    flaky = run_sweep(FailingIshigami([bad], marker=str(tmp_path / "marks")), params, settings,
                      tmp_path / "flaky")
    assert flaky.counts.failed == 0
    assert _files(flaky.folder) == _files(folder)


class KillsItsWorker(Ishigami):
    """Ends its own worker process (as the OOM killer would) the first time it meets the
    point whose x1 is `bad`."""

    def __init__(self, bad: float, marker: str):
        super().__init__()
        object.__setattr__(self, "bad", round(bad, 12))
        object.__setattr__(self, "marker", marker)

    def __call__(self, values, replication):
        if round(values["x1"], 12) == self.bad and not Path(self.marker).exists():
            Path(self.marker).write_text("killed")
            os._exit(9)
        return super().__call__(values, replication)


def test_a_killed_worker_process_is_replaced_and_its_runs_retried(tmp_path):
    params = ISHIGAMI.parameters()
    settings = SweepSettings("sobol", 64, seed=2, replications=1, batch_size=10)
    bad = float(build_design(params, settings).at[100, "x1"])
    out = run_sweep(KillsItsWorker(bad, str(tmp_path / "marker")), params, settings, tmp_path / "k", jobs=2)
    assert (tmp_path / "marker").exists()  # a worker did die
    assert out.counts.failed == 0 and out.counts.new == out.counts.total
    ref = run_sweep(ISHIGAMI, params, settings, tmp_path / "ref")
    assert _files(out.folder) == _files(ref.folder)


# --- the scenario sweep (tiny fixture) ----------------------------------------------------------

SWEEP_YAML = f"""
extends: {TINY}
name: tiny_sweep
years: 2
interventions:
  fgc:
    stage: pre_proceedings
    uptake: {{value: 0.8, assumption: test_uptake}}
    effects:
      - transitions: [pre_proceedings->proceedings]
        central: 0.5
        interval: [0.3, 0.8]
        assumption: test_effect
    cost: {{amount: 5000, per: child, price_base: 2024-25}}
    rollout:
      waves:
        - start: 2025-04-01
          rest: true
uncertain:
  - name: fgc_hr
    path: interventions.fgc.effects[0].central
    dist: evidence
    assumption: test
  - name: cpp_to_pre_proceedings
    path: pathway.child_protection_plan.exits.pre_proceedings.p
    dist: triangular
    low: 0.05
    mode: 0.1
    high: 0.2
    assumption: test
  - name: wave_delay
    path: interventions.fgc.rollout.waves[0].start
    dist: uniform
    low: 0
    high: 300
    assumption: test
"""
OUTPUTS = "diff:cost.total@2025-2026,diff:intervention.fgc.started@2026,pre_proceedings_starts@2026"


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "base.yaml").write_text(f"extends: {TINY}\nname: tiny_base\nyears: 2\n")
    path = folder / "tiny_sweep.yaml"
    path.write_text(SWEEP_YAML)
    return path


def _args(sweep_file: Path, out: Path, *extra) -> list[str]:
    base = sweep_file.parent / "base.yaml"
    return ["sweep", str(sweep_file), "--method", "sobol", "--samples", "2", "--baseline", str(base),
            "--outputs", OUTPUTS, "--replications", "2", "--scale", "0.05", "--seed", "3",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def reference(sweep_file, tmp_path_factory):
    """An uninterrupted sweep on two local processes."""
    out = tmp_path_factory.mktemp("ref") / "sweep"
    r = runner.invoke(app, _args(sweep_file, out, "--jobs", "2"))
    assert r.exit_code == 0, r.output
    return out, r.output


def test_scenario_sweep_writes_the_output_contract(reference):
    out, text = reference
    idx = pd.read_csv(out / "indices.csv")
    assert list(idx.columns) == ["output", "parameter", "method", "S1", "S1_conf", "ST", "ST_conf"]
    assert list(dict.fromkeys(idx.output)) == OUTPUTS.split(",")
    assert set(idx.parameter) == {"fgc_hr", "cpp_to_pre_proceedings", "wave_delay"}
    samples = pq.read_table(out / "samples.parquet").to_pandas()
    assert len(samples) == 2 * 5 + 7
    diff = "diff:cost.total@2025-2026"
    assert {"point", "kind", "tornado", "u_fgc_hr", "fgc_hr", "wave_delay", diff, f"{diff}[0]",
            f"{diff}[1]"} <= set(samples.columns)
    np.testing.assert_allclose(samples[diff], samples[[f"{diff}[0]", f"{diff}[1]"]].mean(axis=1))
    assert samples[diff].nunique() > 2  # the parameters move the paired difference
    assert (samples["wave_delay"] == samples["wave_delay"].round()).all()  # whole days
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["runs"]["total"] == 17
    assert manifest["applied_to_baseline"] == {"fgc_hr": False, "cpp_to_pre_proceedings": True,
                                               "wave_delay": False}
    assert manifest["simulations_per_run"] == 4 and manifest["scale"] == 0.05
    assert set(manifest["noise_share"]) == set(OUTPUTS.split(","))
    assert any("--samples 2 is small" in w for w in manifest["warnings"])
    noise = pd.read_csv(out / "noise.csv")
    assert list(noise.columns) == ["output", "replications", "within_variance", "noise_variance",
                                   "total_variance", "noise_share"]
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "tornado_diff_cost_total_2025_2026.png" in figures
    assert "sobol_diff_cost_total_2025_2026.png" in figures
    assert "17 runs: 0 reused from a previous attempt, 17 new, 0 failed" in text
    assert "noise share" in text and "warning:" in text
    tor = pd.read_csv(out / "tornado.csv")
    assert list(tor.columns) == ["output", "parameter", "value_low", "value_high", "output_low",
                                 "output_high", "output_centre", "swing"]
    # a later rollout (the wave starts up to 300 days late): fewer families served in 2025-26
    started = tor[(tor.output == "diff:intervention.fgc.started@2026") & (tor.parameter == "wave_delay")].iloc[0]
    assert started.value_low == 15 and started.value_high == 285
    assert started.output_high <= started.output_low


def test_dask_local_cluster_gives_identical_indices(reference, sweep_file, tmp_path):
    ref, _ = reference
    out = tmp_path / "dask"
    r = runner.invoke(app, _args(sweep_file, out, "--dask-workers", "2"))
    assert r.exit_code == 0, r.output
    assert "Dask LocalCluster (2 worker processes" in r.output
    for name in ("indices.csv", "noise.csv", "tornado.csv", "samples.parquet"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_killed_sweep_resumes_and_matches_an_uninterrupted_one(reference, sweep_file, tmp_path):
    ref, _ = reference
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "caresim.cli", *_args(sweep_file, out, "--jobs", "2")]
    env = {**os.environ, "CARESIM_PROGRESS": "0"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "runs").glob("part-*.parquet"))) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep, its forkserver and its workers
        proc.wait()
    stored = pd.concat([pd.read_parquet(p) for p in (out / "runs").glob("part-*.parquet")])
    done = stored["point"].nunique()
    assert 3 <= done < 17 and not (out / "indices.csv").exists()

    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"17 runs: {done} reused from a previous attempt, {17 - done} new, 0 failed" in r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["runs"]["reused"], manifest["runs"]["new"]) == (done, 17 - done)
    for name in ("indices.csv", "noise.csv", "tornado.csv", "samples.parquet"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


@pytest.mark.parametrize("args, text", [
    (["--outputs", "diff:care_starts@2026"], "a diff: output needs --baseline"),
    (["--outputs", "care_strats@2026"], "unknown metric 'care_strats'"),
    (["--outputs", "looked_after@2025-2026"], "a year range sums a flow or cost"),
    (["--outputs", "care_starts@2031"], "years must be within the run, 2025 to 2026"),
    (["--method", "saltelli"], "choose one of sobol, morris, fast, delta"),
    (["--samples", "20", "--method", "fast"], "too small for fast"),
])
def test_sweep_cli_user_errors(sweep_file, tmp_path, args, text):
    r = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(tmp_path / "x"), *args])
    assert r.exit_code == 2, r.output
    assert text in " ".join(r.output.split())
    assert not (tmp_path / "x").exists()


def test_sweep_needs_an_uncertain_block_and_refuses_another_sweeps_folder(reference, sweep_file, tmp_path):
    r = runner.invoke(app, ["sweep", str(TINY), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no `uncertain:` block" in " ".join(r.output.split())
    ref, _ = reference
    r = runner.invoke(app, _args(sweep_file, ref, "--seed", "4"))
    assert r.exit_code == 2
    assert "holds a different sweep (evaluator.seed: was 3, now 4; seed: was 3, now 4)" in " ".join(r.output.split())


def test_sweep_brief_reports_the_design_and_names_the_drivers(reference, browser):
    """`caresim report` on a sweep folder: headline values are the all-medians run and the
    design's 5-95% range; the sentence per output names the parameter with the largest
    total-order index; every uncertain parameter and scenario change is listed."""
    from briefcheck import agrees, assumptions_listed, check_common, in_chromium, render

    out, _ = reference
    p = render(out)
    check_common(p, out)
    manifest = json.loads((out / "manifest.json").read_text())
    tornado = pd.read_csv(out / "tornado.csv")
    samples = pq.read_table(out / "samples.parquet").to_pandas()
    design = samples[samples["kind"] == "sample"]
    assert [h["metric"] for h in p.headlines] == OUTPUTS.split(",")
    for h in p.headlines:
        unit = manifest["output_definitions"][h["metric"]]["unit"]
        centre = tornado[tornado.output == h["metric"]].output_centre.iloc[0]
        lo, hi = design[h["metric"]].quantile(0.05), design[h["metric"]].quantile(0.95)
        assert agrees(h["estimate"], centre, lo, hi, unit), h
        assert agrees(h["low"], lo, lo, hi, unit) and agrees(h["high"], hi, lo, hi, unit), h
    idx = pd.read_csv(out / "indices.csv")
    for output, rows in idx.groupby("output"):
        top = rows.sort_values("ST", kind="mergesort").iloc[-1].parameter
        assert f"the largest driver is <strong>{top}</strong>" in p.html, output
    params = next(t for t in p.tables if t[0][:3] == ["parameter", "path", "distribution"])
    assert {r[0] for r in params[1:]} == {"fgc_hr", "cpp_to_pre_proceedings", "wave_delay"}
    assert all(r[-1] for r in params[1:])  # a source, an assumption or the unsourced flag
    assumptions_listed(p, manifest["assumptions"], require_source=False)
    assert "not yet reliable" in p.html  # 2 samples: the brief says the ranking cannot be trusted
    in_chromium(browser, out / "brief.html", "brief_sweep")
