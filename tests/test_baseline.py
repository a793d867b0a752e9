"""The baseline's derived defaults are sane: its first simulated year (2024-25) is within
15% of the latest published year (2023-24) on the headline national volumes."""

import pandas as pd
import pytest

from caresim.engine.simulation import Simulation
from caresim.results.firstyear import FIRST_YEAR_METRICS
from caresim.runner.pipeline import load_inputs
from caresim.scenario.loader import load_scenario
from conftest import BASELINE


@pytest.fixture(scope="module")
def first_year():
    loaded = load_scenario(BASELINE)
    sc = loaded.scenario.model_copy(update={"years": 1})
    la, hist = load_inputs(loaded)  # with the fitted LA multipliers
    sims = [Simulation(sc, la, seed=99, replication=r, scale=0.05).run() for r in range(2)]
    rec = pd.concat(sims)
    sim = rec[rec.year == 2025].groupby("metric").value.sum() / len(sims)
    pub = hist[(hist.geography == "England") & (hist.year == 2024)].set_index("metric").value
    return sim, pub


@pytest.mark.parametrize("metric", FIRST_YEAR_METRICS)
def test_first_year_within_15_percent_of_published(first_year, metric):
    sim, pub = first_year
    # at scale 0.05 the sampling error of these national totals is under 2%
    assert abs(sim[metric] / pub[metric] - 1) < 0.15, (metric, sim[metric], pub[metric])
