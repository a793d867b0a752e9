"""The intervention library in scenarios/: every file loads with its evidence written
beside it, each intervention is delivered and costed, a null result stays null, and a
phased national rollout leaves LAs not yet rolled out exactly as in the baseline."""

from pathlib import Path

import pytest

from caresim.analysis.compare import run_compare
from caresim.engine.simulation import Simulation
from caresim.runner.pipeline import load_inputs
from caresim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SC = ROOT / "scenarios"
LIBRARY = ["fgc_pre_proceedings", "fgc_national_rollout", "fdac", "family_safeguarding",
           "kinship_support", "swis"]


def short(tmp_path: Path, name: str, years: int) -> Path:
    """A copy of a library scenario cut to `years` years (same everything else)."""
    p = tmp_path / f"{name}_{years}y.yaml"
    p.write_text(f"extends: {SC / (name + '.yaml')}\nyears: {years}\n")
    return p


@pytest.mark.parametrize("name", LIBRARY)
def test_library_scenario_states_its_evidence(name):
    loaded = load_scenario(SC / f"{name}.yaml")
    ivs = loaded.scenario.interventions
    assert ivs, name
    for key, iv in ivs.items():
        for hr in iv.effects:  # every effect: a published source or a named assumption
            assert hr.sources or hr.assumption, (name, key, hr.transitions)
            assert hr.interval is not None, (name, key)  # with its uncertainty
        if iv.cost is not None:
            assert iv.cost.sources or iv.cost.assumption, (name, key)
        assert iv.uptake.sources or iv.uptake.assumption or iv.uptake.note, (name, key)


@pytest.mark.parametrize("name", ["fdac", "family_safeguarding", "kinship_support", "swis"])
def test_library_intervention_is_delivered_and_costed(name, tmp_path):
    loaded = load_scenario(short(tmp_path, name, 2))
    la_inputs, history = load_inputs(loaded)
    rec = Simulation(loaded.scenario, la_inputs, seed=3, replication=0, scale=0.01,
                     history=history).run()
    for key, iv in loaded.scenario.interventions.items():
        started = rec[rec.metric == f"intervention.{key}.started"]
        assert started[started.year == 2026].value.sum() > 0, key  # offered from April 2025
        assert started[started.year == 2025].value.sum() == 0, key  # not before
        if iv.cost is not None:
            assert rec[rec.metric == f"cost.intervention.{key}"].value.sum() > 0, key


@pytest.fixture(scope="module")
def swis_vs_baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("swis")
    a = load_scenario(short(tmp, "baseline", 3))
    b = load_scenario(short(tmp, "swis", 3))
    return run_compare(a, b, out=tmp / "out", replications=8, scale=0.02, jobs=2, seed=11)


def test_swis_null_result_interval_contains_zero(swis_vs_baseline):
    d = swis_vs_baseline.difference
    row = d[(d.metric == "cumulative.care_starts") & (d.geography == "England")].sort_values("year").iloc[-1]
    assert row.p05 < 0 < row.p95, row.to_dict()
    cost = d[(d.metric == "cost.intervention.swis") & (d.geography == "England") & (d.year == 2026)].iloc[0]
    assert cost.p05 > 0  # it costs money for certain


@pytest.fixture(scope="module")
def rollout_vs_baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollout")
    a = load_scenario(short(tmp, "baseline", 4))
    b = load_scenario(short(tmp, "fgc_national_rollout", 4))
    return run_compare(a, b, out=tmp / "out", replications=4, scale=0.02, jobs=2, seed=7)


def test_rollout_waves_leave_later_regions_untouched(rollout_vs_baseline):
    """London joins in wave 3 (April 2027): until then its LAs are simulated exactly as in
    the baseline (courts and placements are regional, and draws are common), so every
    paired difference there is zero; the North (wave 1, April 2025) already differs."""
    d = rollout_vs_baseline.difference
    london = d[(d.geography == "London") & (d.year <= 2027)]
    assert len(london) > 100
    assert (london[["mean", "p05", "p95"]].abs().to_numpy() == 0).all()
    ne = d[(d.geography == "North East") & (d.metric == "intervention.fgc.started")]
    assert ne[ne.year == 2026]["mean"].iloc[0] > 0
    lon = d[(d.geography == "London") & (d.metric == "intervention.fgc.started")]
    assert lon[lon.year == 2028]["mean"].iloc[0] > 0


def test_rollout_reduces_care_starts_at_a_cost(rollout_vs_baseline):
    d = rollout_vs_baseline.difference
    eng = d[d.geography == "England"].set_index(["metric", "year"])
    assert eng.loc[("cumulative.care_starts", 2028), "mean"] < 0
    assert eng.loc[("cost.intervention.fgc", 2028), "p05"] > 0
    # the FGC cost is the unit cost times the children who started it
    started = eng.loc[("intervention.fgc.started", 2028), "mean"]
    cost = load_scenario(SC / "fgc_national_rollout.yaml").scenario.interventions["fgc"].cost
    unit = cost.amount * cost.uplift
    assert eng.loc[("cost.intervention.fgc", 2028), "mean"] == pytest.approx(unit * started, rel=1e-9)
