"""Competing risks: exit probabilities, age multipliers and exact hazard multipliers."""

import numpy as np
import pytest

from caresim.pathway.compiled import Pathway, STATE_INDEX, age_band

N = 200_000


@pytest.fixture(scope="module")
def pathway(tiny):
    return Pathway(tiny.scenario, n_la=1)


def _draw(rule, extra=None, band=3, seed=0):
    g = np.random.default_rng(seed)
    return rule.draw(g.random(N), g.random(N), np.zeros(N, int), np.full(N, band),
                     np.zeros((N, 4), bool), extra_hazard=extra)


def test_exit_shares_follow_probabilities(pathway):
    r = pathway.rule(STATE_INDEX["s47_enquiry"])
    e, t = _draw(r)
    q = r.exit_probabilities(np.array([3]), np.zeros((1, 4), bool))[0]
    for j in range(r.n_exits):
        share = np.mean(e == j)
        assert abs(share - q[j]) < 4 * np.sqrt(q[j] * (1 - q[j]) / N) + 1e-12


def test_multiplier_one_changes_no_draw(pathway):
    r = pathway.rule(STATE_INDEX["child_protection_plan"])
    e0, t0 = _draw(r)
    e1, t1 = _draw(r, extra=np.ones((N, r.n_exits)))
    assert np.array_equal(e0, e1) and np.array_equal(t0, t1)


def test_hazard_multiplier_is_exact_competing_risk(pathway):
    """Doubling one cause-specific hazard: P(that exit) = 2q/(1+q) and the whole stay's
    survival becomes S(t)**(1+q)."""
    r = pathway.rule(STATE_INDEX["child_protection_plan"])
    j = r.labels.index("pre_proceedings")
    h = np.ones((N, r.n_exits))
    h[:, j] = 2.0
    e, t = _draw(r, extra=h)
    q = r.exit_probabilities(np.array([3]), np.zeros((1, 4), bool))[0][j]
    expected = 2 * q / (1 + q)
    assert abs(np.mean(e == j) - expected) < 4 * np.sqrt(expected * (1 - expected) / N)
    t_med = float(r.sojourn.quantile(0.5))
    s_exp = float(r.sojourn.survival(t_med)) ** (1 + q)
    assert abs(np.mean(t > t_med) - s_exp) < 4 * np.sqrt(s_exp * (1 - s_exp) / N)


def test_age_multiplier_shifts_destinations(tiny):
    from caresim.scenario.model import Scenario

    data = tiny.scenario.model_dump()
    exits = data["pathway"]["child_in_need"]["exits"]
    exits["looked_after"]["age_multiplier"] = {"16-17": 3.0}
    p = Pathway(Scenario.model_validate(data), n_la=1).rule(STATE_INDEX["child_in_need"])
    j = p.labels.index("looked_after")
    teen = p.exit_probabilities(np.array([4]), np.zeros((1, 4), bool))[0][j]
    child = p.exit_probabilities(np.array([2]), np.zeros((1, 4), bool))[0][j]
    q = float(exits["looked_after"]["p"])
    assert child == pytest.approx(q)
    assert teen == pytest.approx(3 * q / (1 + 2 * q))


def test_sojourn_age_multiplier_stretches_stays_of_that_band_only(tiny):
    """A sojourn's age_multiplier scales the stay of a child whose band it names, for new
    stays and for stays in progress (the residual of a stretched stay is stretched), and
    leaves the exits and other bands alone."""
    from caresim.scenario.model import Scenario

    data = tiny.scenario.model_dump()
    data["pathway"]["child_in_need"]["sojourn"]["age_multiplier"] = {"16-17": 2.5}
    r = Pathway(Scenario.model_validate(data), n_la=1).rule(STATE_INDEX["child_in_need"])
    base = Pathway(tiny.scenario, n_la=1).rule(STATE_INDEX["child_in_need"])
    e4, t4 = _draw(r, band=4)
    _, t3 = _draw(r, band=3)
    b4, s4 = _draw(base, band=4)
    assert np.array_equal(e4, b4)  # the same uniforms: the same exits
    assert np.allclose(t4, 2.5 * s4)  # and every stay 2.5 times as long
    _, s3 = _draw(base, band=3)
    assert np.array_equal(t3, s3)
    # a stay in progress: P(T > elapsed + x | T > elapsed) of the stretched distribution
    g = np.random.default_rng(1)
    elapsed = np.full(N, 2.5 * float(base.sojourn.quantile(0.5)))
    _, rem = r.draw(g.random(N), g.random(N), np.zeros(N, int), np.full(N, 4), np.zeros((N, 4), bool),
                    elapsed=elapsed)
    x = 2.5 * float(base.sojourn.quantile(0.75)) - elapsed[0]
    expected = 0.25 / 0.5
    assert abs(np.mean(rem > x) - expected) < 4 * np.sqrt(expected * (1 - expected) / N)



def test_piecewise_scale_stretches_every_stay_on_top_of_the_age_multiplier(tiny):
    """A piecewise sojourn's `scale` multiplies every age band's stay (babies' own
    multiplier then applies to the scaled bands); other distributions are scaled by their
    mean, and a `scale` on them is refused."""
    from pydantic import ValidationError

    from caresim.scenario.model import Scenario

    data = tiny.scenario.model_dump()
    bands = [{"upto": 91, "p": 0.2}, {"upto": 365, "p": 0.5}, {"upto": 730, "p": 0.3}]
    data["pathway"]["child_protection_plan"]["sojourn"] = {
        "dist": "piecewise", "bands": bands, "age_multiplier": {"under_1": 0.4}}
    base = Pathway(Scenario.model_validate(data), n_la=1).rule(STATE_INDEX["child_protection_plan"])
    data["pathway"]["child_protection_plan"]["sojourn"]["scale"] = 1.25
    r = Pathway(Scenario.model_validate(data), n_la=1).rule(STATE_INDEX["child_protection_plan"])
    for band in (0, 3):
        e, t = _draw(r, band=band)
        b, s = _draw(base, band=band)
        assert np.array_equal(e, b)  # the same uniforms: the same exits
        assert np.allclose(t, 1.25 * s)  # every stay 1.25 times as long
    _, t0 = _draw(r, band=0)
    _, t3 = _draw(r, band=3)
    assert np.allclose(t0, 0.4 * t3)  # the baby's multiplier on the scaled bands
    data["pathway"]["child_in_need"]["sojourn"]["scale"] = 1.25
    with pytest.raises(ValidationError, match="scale is for piecewise"):
        Scenario.model_validate(data)

def test_age_bands():
    assert list(age_band(np.array([0.5, 1.0, 4.99, 5.0, 12, 16.0, 17.9]))) == [0, 1, 1, 2, 3, 4, 4]


def test_mermaid_lists_every_transition(pathway):
    text = pathway.mermaid()
    assert text.startswith("flowchart TD")
    for r in pathway.rules:
        for j in range(r.n_exits):
            src, dst = r.names[j].split("->")
            if src != dst:
                assert f"{src} -->" in text and f"| {dst}" in text


def test_a_state_reached_by_an_exit_needs_a_rule(tiny):
    from pydantic import ValidationError

    from caresim.scenario.model import Scenario

    data = tiny.scenario.model_dump()
    del data["pathway"]["early_help"]
    with pytest.raises(ValidationError, match="early_help are reached by an exit but have no rule"):
        Scenario.model_validate(data)
