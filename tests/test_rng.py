"""Counter-based streams: uniform, independent across purposes, reproducible per (id, counter)."""

import numpy as np
from scipy import stats

from caresim.engine.rng import Streams


def test_uniform_and_in_open_interval():
    s = Streams(1, 0)
    u = s.uniform("x", np.arange(100_000), np.zeros(100_000, np.uint32))
    assert u.min() > 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_same_arguments_same_numbers_and_order_free():
    s = Streams(5, 3)
    ids = np.arange(1000)
    c = np.arange(1000) % 7
    a = s.uniform("exit:3", ids, c)
    perm = np.random.default_rng(0).permutation(1000)
    b = s.uniform("exit:3", ids[perm], c[perm])
    assert np.array_equal(a[perm], b)


def test_purposes_replications_and_counters_are_independent():
    ids = np.arange(50_000)
    z = np.zeros(50_000, np.uint32)
    a = Streams(1, 0).uniform("a", ids, z)
    for other in (Streams(1, 0).uniform("b", ids, z), Streams(1, 1).uniform("a", ids, z),
                  Streams(2, 0).uniform("a", ids, z), Streams(1, 0).uniform("a", ids, z + 1)):
        r = np.corrcoef(a, other)[0, 1]
        assert abs(r) < 4 / np.sqrt(50_000)
        assert not np.array_equal(a, other)
