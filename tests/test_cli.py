"""End-to-end CLI: outputs and their columns, determinism across --jobs, user errors."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from caresim.cli import app
from conftest import TINY

runner = CliRunner()
SUMMARY_COLUMNS = ["scenario", "metric", "year", "geography", "mean", "p05", "p50", "p95",
                   "replications"]


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def outdirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    res = {}
    for jobs in (1, 2):
        out = base / f"j{jobs}"
        r = _run("run", TINY, "--out", out, "--replications", 3, "--seed", 5, "--scale", 0.2,
                 "--jobs", jobs)
        assert r.exit_code == 0, r.output
        res[jobs] = out
    return res


def test_run_writes_the_output_contract(outdirs):
    out = outdirs[1]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert set(summary.geography) >= {"England", "North East", "London", "E06000001", "E09000002"}
    ratio = summary.metric.isin(["proceedings_mean_weeks", "proceedings_within_26_weeks"])
    assert (summary.replications[~ratio] == 3).all()
    # a ratio is summarised over the replications where it is defined (cases completed)
    assert summary.replications[ratio].between(1, 3).all()
    assert (summary.p05 <= summary.p50).all() and (summary.p50 <= summary.p95).all()
    for m in ("looked_after", "care_starts", "proceedings_mean_weeks", "cost.total",
              "looked_after.interim_care_order", "care_ceased.adopted", "in_proceedings"):
        assert m in set(summary.metric), m
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("scenario", "scenario_hash", "caresim_version", "seed", "replications", "scale",
                "calibration_vintage", "wall_seconds"):
        assert key in manifest
    assert manifest["seed"] == 5 and manifest["scale"] == 0.2 and manifest["replications"] == 3
    reps = pd.read_parquet(out / "replications.parquet")
    assert {"replication", "metric", "year", "geography", "value"} <= set(reps.columns)
    assert sorted(reps.replication.unique()) == [0, 1, 2]
    pngs = list((out / "figures").glob("*.png"))
    assert len(pngs) >= 5 and all(p.stat().st_size > 10_000 for p in pngs)
    first = pd.read_csv(out / "first_year_check.csv")
    assert list(first.metric) == ["referrals", "child_in_need", "cpp_starts", "care_starts",
                                  "care_ceased", "looked_after"]


def test_same_seed_same_bytes_whatever_jobs(outdirs):
    for name in ("summary.csv", "replications.parquet", "first_year_check.csv"):
        assert (outdirs[1] / name).read_bytes() == (outdirs[2] / name).read_bytes(), name


def test_refuses_non_empty_folder_without_force(outdirs):
    before = (outdirs[1] / "summary.csv").read_bytes()
    r = _run("run", TINY, "--out", outdirs[1], "-n", 1, "--scale", 0.1)
    assert r.exit_code == 2 and "--force" in r.output
    assert (outdirs[1] / "summary.csv").read_bytes() == before


def _bad(tmp_path, old, new):
    text = TINY.read_text()
    assert old in text
    p = tmp_path / "bad.yaml"
    p.write_text(text.replace(old, new, 1).replace("../../calibration", str(TINY.parents[2] / "calibration")))
    line = next(i for i, l in enumerate(p.read_text().splitlines(), 1) if new.strip() and new.strip().split(":")[0] in l and new in l)
    return p, line


@pytest.mark.parametrize("old,new,key", [
    ("years: 3", "years: three", "years"),
    ("  seed: 7", "  seed: -7", "run.seed"),
    ("  replications: 2", "  replicates: 2", "run.replicates"),
    ("start: 2024-04-01", "start: 2024-02-30", "start"),
])
def test_bad_scenarios_exit_2_with_location_and_no_folder(tmp_path, old, new, key):
    p, line = _bad(tmp_path, old, new)
    out = tmp_path / "out"
    for cmd in (["validate", p], ["run", p, "--out", out]):
        r = _run(*cmd)
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output
        assert f"bad.yaml:{line}:" in r.output and key in r.output
    assert not out.exists()
    assert not any(x.name.startswith(".out") for x in tmp_path.iterdir())


def test_missing_scenario_file(tmp_path):
    r = _run("validate", tmp_path / "nope.yaml")
    assert r.exit_code == 2 and "nope.yaml" in r.output


def test_validate_and_schema_and_pathway():
    r = _run("validate", TINY)
    assert r.exit_code == 0 and "valid" in r.output
    r = _run("schema")
    schema = json.loads(r.output)
    assert "pathway" in schema["properties"]
    r = _run("pathway", TINY)
    assert r.exit_code == 0 and r.output.startswith("flowchart TD")
