"""Placement moves during a stay in care: steps at given ages, returns from a fallback
placement when a place frees, capacity bookkeeping, costs and determinism."""

import numpy as np
import pytest
import simpy

from caresim.engine.placements import PlacementSupply
from caresim.engine.simulation import PLC, Simulation
from caresim.scenario.model import PLACEMENTS, NonNegParam, PlacementStep, ProbParam

STEP_SHARE = 0.4


def _scenario(tiny, steps=True, capacity=30.0):
    """The tiny scenario with scarce in-house foster places (overflow to agency foster, whose
    children return when a place frees) and a step to supported accommodation at 16."""
    sc = tiny.scenario.model_copy(deep=True)
    pl = sc.placements
    pl.supply["foster_inhouse"].capacity = NonNegParam(value=capacity, assumption="test_places")
    pl.supply["foster_agency"].capacity = NonNegParam(value=capacity, assumption="test_places")
    pl.supply["foster_agency"].fallback = ["residential"]
    pl.return_from_fallback = ["foster_agency", "residential"]
    if steps:
        share = {p: ProbParam(value=STEP_SHARE, assumption="test_step")
                 for p in ("foster_inhouse", "foster_agency", "residential")}
        pl.steps = [PlacementStep(age=16.0, to="supported", share=share)]
    return sc


def _sim(scenario, la_inputs, seed=5, scale=0.3):
    return Simulation(scenario, la_inputs, seed=seed, replication=0, scale=scale)


@pytest.fixture(scope="module")
def moved(tiny, la_inputs):
    """A run whose step events are logged: (child, type before, type after)."""
    sim = _sim(_scenario(tiny, capacity=100.0), la_inputs, scale=1.0)
    log = []
    step = sim._step

    def logged(i, j, episode):
        k = sim.kids
        live = k.in_care[i] and k.cep[i] == episode and not k.done[i] and k.plc[i] >= 0 \
            and k.t_pfa[i] > sim.env.now
        before = int(k.plc[i])
        step(i, j, episode)
        if live:
            log.append((i, before, int(k.plc[i])))

    sim._step = logged
    rec = sim.run()
    return sim, rec, log


def test_supply_calls_on_free_only_when_a_place_frees():
    env = simpy.Environment()
    cap = np.array([[1.0, np.inf]])
    # two children hold the one place at the start: one release repays the debt
    supply = PlacementSupply(env, cap, np.array([[2.0, 0.0]]), [[0, 1], [1]])
    freed = []
    supply.on_free = lambda a, t: freed.append((a, t))
    assert supply.request(0, 0) == (1, False)  # full: falls back to the unlimited type
    supply.release(0, 0)
    assert freed == [] and supply.occupancy()[(0, 0)] == 1.0
    supply.release(0, 0)
    assert freed == [(0, 0)] and supply.occupancy()[(0, 0)] == 0.0
    assert supply.take(0, 0) and not supply.take(0, 0)
    assert not supply.take(0, 1)  # unlimited types have no pool


def test_pooled_children_match_pool_occupancy_and_stay_within_capacity(moved):
    sim, _, _ = moved
    k = sim.kids
    n = k.n
    area = sim.plc_area[k.la[:n]]
    held = k.in_care[:n] & k.pooled[:n]
    occ = sim.supply.occupancy()
    assert occ, "the test scenario has capacity-limited pools"
    for (a, t), places in occ.items():
        children = int(np.sum(held & (area == a) & (k.plc[:n] == t)))
        assert children == pytest.approx(places), (a, PLACEMENTS[t])
        assert sim.supply.pools[(a, t)].level >= 0
        assert places <= sim.supply.pools[(a, t)].capacity + sim.supply.debt[(a, t)] + 1e-9
    # nobody holds a place of an unlimited type
    assert not np.any(held & ~np.isfinite(sim._plc_capacity[area, np.maximum(k.plc[:n], 0)]))


def test_children_in_a_fallback_return_when_their_preferred_type_has_a_place(moved):
    sim, rec, _ = moved
    k = sim.kids
    n = k.n
    assert sim.supply.over_capacity + rec[rec.metric == "placement_moves"].value.sum() > 0
    returns = 0
    for (a, t), q in sim._waiting.items():
        returns += 1
        if sim.supply.pools[(a, t)].level < 1:
            continue
        # a place is free: no child is still waiting for it
        for i, ep, frm in q:
            waiting = (k.in_care[i] and k.cep[i] == ep and k.plc[i] == frm and not k.done[i]
                       and k.t_pfa[i] > sim.env.now)
            assert not waiting, (i, PLACEMENTS[t])
    assert returns > 0, "some children overflowed and waited"
    # and children in a fallback type while their preferred one has free places: none
    area = sim.plc_area[k.la[:n]]
    inhouse, agency = PLC["foster_inhouse"], PLC["foster_agency"]
    stuck = (k.in_care[:n] & (k.pref[:n] == inhouse) & (k.plc[:n] == agency)
             & (k.t_pfa[:n] == np.inf) & ~k.done[:n])
    for a in np.unique(area[stuck]):
        assert sim.supply.pools[(int(a), inhouse)].level < 1


def test_children_move_back_from_their_fallback(tiny, la_inputs):
    rec = _sim(_scenario(tiny, steps=False), la_inputs).run()
    moves = rec[rec.metric == "placement_moves"].value.sum()
    assert moves > 0  # only returns from a fallback can move anyone here
    plain = _scenario(tiny, steps=False)
    plain.placements.return_from_fallback = []
    rec0 = _sim(plain, la_inputs).run()
    assert rec0[rec0.metric == "placement_moves"].value.sum() == 0


def test_step_at_16_moves_the_stated_share(moved):
    sim, _, log = moved
    listed = [PLC[p] for p in ("foster_inhouse", "foster_agency", "residential")]
    eligible = [(b, a) for _, b, a in log if b in listed]
    assert len(eligible) >= 100, len(eligible)
    share = np.mean([a == PLC["supported"] for _, a in eligible])
    se = np.sqrt(STEP_SHARE * (1 - STEP_SHARE) / len(eligible))
    assert abs(share - STEP_SHARE) < 4 * se, (share, len(eligible))
    # children in types the step does not list stay where they are
    assert all(a == b for _, b, a in log if b not in listed)
    # children who stepped and are still in care prefer their new type (no waiting to return)
    k = sim.kids
    moved_ids = np.array([i for i, b, a in log if a != b])
    still = moved_ids[k.in_care[moved_ids] & (k.plc[moved_ids] == PLC["supported"])]
    assert np.all(k.pref[still] == PLC["supported"])


def test_moved_child_costs_each_placement_for_its_days(tiny, la_inputs):
    sc = _scenario(tiny, steps=False)
    sim = _sim(sc, la_inputs)
    sim._initial()
    k = sim.kids
    n = k.n
    cand = np.flatnonzero(k.in_care[:n] & (k.plc[:n] == PLC["placed_with_parents"])
                          & (k.t_pfa[:n] == np.inf))
    assert cand.size
    i = int(cand[0])
    k.t_cost[i] = 0.0
    sim.env.run(until=10.0)
    before = {m: v.copy() for m, v in sim.rec.flows.items()}
    sim._move(i, PLC["supported"])
    assert k.plc[i] == PLC["supported"]
    sim._accrue_costs(np.array([i]), 24.0)
    la = int(k.la[i])

    def added(name):
        m = f"cost.placements.{name}"
        return float(sim.rec.flows[m][0, la] - (before[m][0, la] if m in before else 0.0))

    week = {p: sc.placements.supply[p].weekly_cost.value for p in ("placed_with_parents", "supported")}
    assert added("placed_with_parents") == pytest.approx(10.0 * week["placed_with_parents"] / 7.0)
    assert added("supported") == pytest.approx(14.0 * week["supported"] / 7.0)
    assert float(sim.rec.flows["placement_moves"][0, la]) == pytest.approx(1.0)


def test_same_seed_same_records_with_moves(tiny, la_inputs):
    sc = _scenario(tiny)
    a = _sim(sc, la_inputs, seed=9).run()
    b = _sim(sc, la_inputs, seed=9).run()
    assert a.equals(b)
    assert a[a.metric == "placement_moves"].value.sum() > 0


def test_step_schema_rejects_bad_input(tiny):
    from pydantic import ValidationError

    p = ProbParam(value=0.2, assumption="x")
    with pytest.raises(ValidationError, match="the type children move to"):
        PlacementStep(age=16, to="supported", share={"supported": p})
    with pytest.raises(ValidationError):
        PlacementStep(age=19, to="supported", share={"residential": p})
    with pytest.raises(ValidationError, match="placed_for_adoption"):
        PlacementStep(age=16, to="placed_for_adoption", share={"residential": p})
    data = tiny.scenario.model_dump()
    data["placements"]["steps"] = [{"age": 16, "to": "supported",
                                    "share": {"foster_inhouse": {"value": 0.2, "assumption": "x"}}}]
    del data["placements"]["supply"]["supported"]
    with pytest.raises(ValidationError, match="not in placements.supply"):
        type(tiny.scenario).model_validate(data)
