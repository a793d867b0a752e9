"""Sojourn distributions reproduce their means and quantiles; hazard multipliers act exactly."""

import numpy as np
import pytest
from scipy import stats

from caresim.pathway.sojourn import SojournDist
from caresim.scenario.model import Sojourn

N = 200_000
SPECS = {
    "exponential": Sojourn(dist="exponential", mean=100),
    "weibull": Sojourn(dist="weibull", mean=300, shape=0.8),
    "gamma": Sojourn(dist="gamma", mean=33, shape=2.0),
    "lognormal": Sojourn(dist="lognormal", mean=189, sigma=0.67),
    "piecewise": Sojourn(dist="piecewise", bands=[{"upto": 91, "p": 0.2}, {"upto": 365, "p": 0.5},
                                                 {"upto": 730, "p": 0.3}]),
}
SCIPY = {
    "exponential": stats.expon(scale=100),
    "weibull": stats.weibull_min(0.8, scale=300 / float(np.exp(np.log(__import__("math").gamma(1 + 1 / 0.8))))),
    "gamma": stats.gamma(2.0, scale=33 / 2.0),
    "lognormal": stats.lognorm(0.67, scale=np.exp(np.log(189) - 0.67**2 / 2)),
}


def _u(n=N, seed=1):
    return np.random.default_rng(seed).random(n)


@pytest.mark.parametrize("name", list(SPECS))
def test_mean_within_sampling_error(name):
    d = SojournDist.from_spec(SPECS[name])
    x = d.sample(_u())
    se = x.std() / np.sqrt(N)
    assert abs(x.mean() - d.mean) < 4 * se


@pytest.mark.parametrize("name", list(SCIPY))
def test_quantiles_match_scipy(name):
    d = SojournDist.from_spec(SPECS[name])
    x = d.sample(_u())
    for q in (0.1, 0.5, 0.9):
        exact = SCIPY[name].ppf(q)
        # sampling error of a quantile: sqrt(q(1-q)/n) / f(x_q)
        se = np.sqrt(q * (1 - q) / N) / SCIPY[name].pdf(exact)
        assert abs(np.quantile(x, q) - exact) < 4 * se
    assert stats.kstest(x, SCIPY[name].cdf).pvalue > 1e-3


def test_piecewise_band_probabilities_and_uniform_within():
    d = SojournDist.from_spec(SPECS["piecewise"])
    x = d.sample(_u())
    for lo, hi, p in ((0, 91, 0.2), (91, 365, 0.5), (365, 730, 0.3)):
        share = np.mean((x > lo) & (x <= hi))
        assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / N)
    inside = x[(x > 91) & (x <= 365)]
    assert stats.kstest(inside, stats.uniform(91, 274).cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", list(SPECS))
def test_hazard_multiplier_one_is_bit_identical(name):
    d = SojournDist.from_spec(SPECS[name])
    u = _u(1000)
    assert np.array_equal(d.sample(u), d.sample(u, np.ones(1000)))


@pytest.mark.parametrize("name", ["weibull", "lognormal", "piecewise"])
@pytest.mark.parametrize("k", [0.5, 2.0])
def test_hazard_multiplier_powers_the_survival(name, k):
    d = SojournDist.from_spec(SPECS[name])
    x = d.sample(_u(), k)
    for t in d.quantile(np.array([0.25, 0.5, 0.75])):
        expected = float(d.survival(t)) ** k
        assert abs(np.mean(x > t) - expected) < 4 * np.sqrt(expected * (1 - expected) / N) + 1e-9


@pytest.mark.parametrize("name", ["gamma", "lognormal", "weibull"])
def test_residual_is_conditional_distribution(name):
    d = SojournDist.from_spec(SPECS[name])
    e = float(d.quantile(0.3))
    r = d.sample_residual(_u(), np.full(N, e))
    t = float(d.quantile(0.7)) - e
    expected = float(d.survival(e + t) / d.survival(e))
    assert abs(np.mean(r > t) - expected) < 4 * np.sqrt(expected * (1 - expected) / N)


def test_elapsed_has_equilibrium_density():
    d = SojournDist.from_spec(SPECS["exponential"])  # equilibrium of an exponential is itself
    e = d.sample_elapsed(_u())
    assert abs(e.mean() - 100) < 4 * 100 / np.sqrt(N) + 0.5
    capped = d.sample_elapsed(_u(), cap=50.0)
    assert capped.max() <= 50.0 + 1e-9
