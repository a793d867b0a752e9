"""Calibration recovers known parameters from targets the model generated itself (other
seeds), within its stated intervals. Its own file, so that these fits (the suite's
longest setup) run on another worker than the calibration CLI tests."""

import numpy as np
import pytest

from caresim.analysis.calibrate import Problem, calibrate
from synthetic import PARAMS, TRUE, fit_config, synthetic_targets


#: independent fits of the same synthetic targets: each freezes its own Monte Carlo noise
#: (common random numbers from its seed), which its interval has to cover
FIT_SEEDS = (3, 4, 5)


@pytest.fixture(scope="module")
def recovered(tiny, la_inputs, history):
    targets, base, regions = synthetic_targets(tiny, la_inputs, history)
    return [calibrate(Problem(base=base, la_inputs=la_inputs, history=history, targets=targets,
                              config=fit_config(seed=s), regions=regions)) for s in FIT_SEEDS]


def test_recovers_known_parameters_within_their_intervals(recovered):
    """A 95% interval misses now and then by design (measured on this problem: fit seeds 4
    to 9 missed each parameter once in six, about 2 sd out; fit seed 3 missed the CIN mean
    on 3 of 4 sets of targets; docs/calibration.md), so one fit passing or failing says little.
    Each parameter must be covered in at least 2 of 3 fits: a correct
    method fails this about 1 time in 140 per parameter, while intervals half as wide as
    they should be miss about 1 time in 3 and fail it about 1 time in 4."""
    truth = np.array([TRUE[p.path] for p in PARAMS])
    prior = np.array([0.12, 300.0])
    covered = np.array([(r.lower <= truth) & (truth <= r.upper) for r in recovered])
    assert np.all(covered.sum(axis=0) >= 2), [(r.lower, r.theta, r.upper) for r in recovered]
    for r in recovered:
        # moved from the prior towards the truth, with informative intervals
        assert np.all(np.abs(r.theta - truth) < 0.5 * np.abs(prior - truth)), r.theta
        assert r.upper[0] - r.lower[0] < 0.06
        assert r.upper[1] / r.lower[1] < 1.8


def test_posterior_draws_are_within_bounds_and_centred(recovered):
    r = recovered[0]
    d = r.draws
    assert d.shape == (50, 2)
    for j, p in enumerate(PARAMS):
        assert d[:, j].min() >= p.bounds[0] and d[:, j].max() <= p.bounds[1]
    assert np.all(np.abs(np.median(d, axis=0) / r.theta - 1) < 0.1)
