"""Court processor sharing and placement pools."""

import numpy as np
import pytest
import simpy

from caresim.engine.court import CourtArea
from caresim.engine.placements import PlacementSupply


def _court(capacity, alpha=1.0):
    env = simpy.Environment()
    done = {}
    area = CourtArea(env, capacity, lambda p, t: done.__setitem__(p, t), alpha)
    return env, area, done


def test_under_capacity_cases_take_their_work():
    env, area, done = _court(10)
    for i, w in enumerate([50.0, 100.0, 150.0]):
        area.submit(i, w)
    env.run()
    assert done == pytest.approx({0: 50.0, 1: 100.0, 2: 150.0})


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_over_capacity_every_case_slows(alpha):
    env, area, done = _court(5, alpha)
    for i in range(10):
        area.submit(i, 100.0)
    env.run()
    expected = 100.0 / (5 / 10) ** alpha
    assert all(t == pytest.approx(expected) for t in done.values())


def test_processor_sharing_with_staggered_arrivals():
    # capacity 1, alpha 1: A (work 10) alone until t=5, then A and B (work 10) share
    env, area, done = _court(1)
    area.submit("A", 10.0)
    env.timeout(5).callbacks.append(lambda _e: area.submit("B", 10.0))
    env.run()
    # A has 5 left at t=5, progresses at 1/2: done at 15; B then has 5 left alone: done at 20
    assert done["A"] == pytest.approx(15.0)
    assert done["B"] == pytest.approx(20.0)


def test_placements_fall_back_then_over_capacity_then_release():
    env = simpy.Environment()
    cap = np.array([[1.0, 1.0, np.inf]])
    supply = PlacementSupply(env, cap, np.zeros_like(cap), [[0, 1], [1], [2]])
    assert supply.request(0, 0) == (0, True)
    assert supply.request(0, 0) == (1, True)  # preferred full: fallback
    assert supply.request(0, 0) == (1, False)  # chain full: spot purchase in the last type
    assert supply.over_capacity == 1
    assert supply.request(0, 2) == (2, False)  # unlimited type
    supply.release(0, 0)
    assert supply.request(0, 0) == (0, True)


def _poisson_court(rate_per_day, capacity=20.0, alpha=0.5, days=4000, seed=3):
    """Mean time in court of cases arriving at `rate_per_day` (work: 100 days each)."""
    env = simpy.Environment()
    start, done = {}, {}
    area = CourtArea(env, capacity, lambda p, t: done.__setitem__(p, t), alpha)
    g = np.random.default_rng(seed)

    def arrivals():
        i = 0
        while env.now < days:
            yield env.timeout(g.exponential(1 / rate_per_day))
            start[i] = env.now
            area.submit(i, 100.0)
            i += 1

    env.process(arrivals())
    env.run(until=days)
    late = [i for i in done if start[i] > days / 2]  # after the warm-up
    return float(np.mean([done[i] - start[i] for i in late]))


def test_durations_stretch_when_demand_rises():
    # capacity 20 cases at the normal pace; 100 days of work each: 0.15/day is under
    # capacity (15 in progress), 0.3/day and 0.45/day are over it
    light, busy, busier = (_poisson_court(r) for r in (0.15, 0.3, 0.45))
    assert light == pytest.approx(100.0, rel=0.02)
    assert busy > 1.2 * light
    assert busier > 1.2 * busy


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=60, deadline=None)
@given(
    cases=st.lists(st.tuples(st.floats(0, 500), st.floats(0.5, 400)), min_size=1, max_size=40),
    capacity=st.floats(0.5, 30),
    alpha=st.floats(0.1, 1.0),
)
def test_court_completes_every_case_once_never_faster_than_its_work(cases, capacity, alpha):
    env = simpy.Environment()
    done = {}

    def complete(p, t):
        assert p not in done
        done[p] = t

    area = CourtArea(env, capacity, complete, alpha)
    for i, (arrive, work) in enumerate(cases):
        env.timeout(arrive).callbacks.append(lambda _e, i=i, w=work: area.submit(i, w))
    env.run()
    assert set(done) == set(range(len(cases)))
    for i, (arrive, work) in enumerate(cases):
        assert done[i] - arrive >= work * (1 - 1e-9) - 1e-6
    assert area.in_progress == 0


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 2)), max_size=80),
       caps=st.tuples(st.integers(0, 5), st.integers(0, 5)))
def test_placement_pools_never_exceed_capacity(ops, caps):
    env = simpy.Environment()
    cap = np.array([[caps[0], caps[1], np.inf]], dtype=float)
    supply = PlacementSupply(env, cap, np.zeros_like(cap), [[0, 1], [1], [2]])
    held = []
    for is_request, t in ops:
        if is_request:
            plc, pooled = supply.request(0, t)
            if pooled:
                held.append(plc)
        elif held:
            supply.release(0, held.pop())
        if caps[0] == 0 and caps[1] == 0:
            assert not held
        occ = supply.occupancy()
        for (a, k), used in occ.items():
            assert 0 <= used <= cap[a, k]
            assert used == sum(1 for h in held if h == k)


def test_starting_occupancy_over_capacity_is_repaid_before_places_free():
    env = simpy.Environment()
    cap = np.array([[2.0]])
    supply = PlacementSupply(env, cap, np.array([[4.0]]), [[0]])
    assert supply.request(0, 0) == (0, False)  # full: spot purchase
    supply.release(0, 0)
    supply.release(0, 0)  # two releases repay the excess of two
    assert supply.occupancy()[(0, 0)] == 2.0
    assert supply.request(0, 0) == (0, False)
    supply.release(0, 0)
    assert supply.request(0, 0) == (0, True)
