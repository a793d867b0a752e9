"""How many child protection plans run at the babies' pace.

A plan's length is a family draw (siblings in step share it), timed by the youngest
sibling's age, so a baby's shorter plan (the sojourn's `age_multiplier.under_1`) is also
its older siblings'. `caresim.population.cpp_lengths` fits the plan lengths of the other
children with that share of plans mixed in at the babies' pace (its `BABY_SHARE`); this
measures the share on a scenario's own simulation:

    python -m caresim.analysis.plan_pace [--scenario scenarios/baseline.yaml]
        [--years 3] [--scale 0.1] [--seed 1]

It prints the plans started, the share that are a baby's own (unborn or under 1 at the
start) and the share with a baby in the family in step, which is the one the plan lengths
need. Plans of the starting stock (already in progress) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from caresim.analysis.one_run import one_run_arguments
from caresim.engine.simulation import DAYS_PER_YEAR, S, Simulation, _youngest_in_family
from caresim.scenario.model import Scenario


class _PlanStarts(Simulation):
    """A simulation that notes every plan start: the child's own age, the age its plan's
    length is drawn at (the youngest sibling's in step) and the length drawn."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan_starts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _draw(self, r, idx, t, family=False, elapsed=None):
        e, dur = super()._draw(r, idx, t, family=family, elapsed=elapsed)
        if r.state == S["child_protection_plan"] and elapsed is None:
            own = (t - self.kids.birth[idx]) / DAYS_PER_YEAR
            timed = _youngest_in_family(self.kids.fam[idx], own) if family else own
            self.plan_starts.append((own, timed, dur.copy()))
        return e, dur


@dataclass(frozen=True)
class PlanPace:
    plans: pd.DataFrame  # one row a plan started: own_age, timed_age (years), days drawn

    @property
    def own_baby_share(self) -> float:
        """Plans of a child unborn or under 1 at the start."""
        return float((self.plans.own_age < 1.0).mean())

    @property
    def baby_paced_share(self) -> float:
        """Plans timed by a baby's age (its own or a sibling's in step)."""
        return float((self.plans.timed_age < 1.0).mean())


def plan_pace(scenario: Scenario, la_inputs: pd.DataFrame, seed: int = 1,
              scale: float = 0.1, years: int = 3) -> PlanPace:
    """Run one replication of `scenario` for `years` and count its plan starts."""
    sim = _PlanStarts(scenario.model_copy(update={"years": years}), la_inputs, seed=seed,
                      replication=0, scale=scale)
    sim.run()
    if not sim.plan_starts:
        raise ValueError("no child protection plan started in the run")
    cols = [np.concatenate(c) for c in zip(*sim.plan_starts)]
    return PlanPace(pd.DataFrame(dict(zip(("own_age", "timed_age", "days"), cols))))


def main(argv: list[str] | None = None) -> None:
    a, scenario, la_inputs = one_run_arguments(__doc__.splitlines()[0], argv)
    p = plan_pace(scenario, la_inputs, a.seed, a.scale, a.years)
    n = len(p.plans)
    se = np.sqrt(p.baby_paced_share * (1 - p.baby_paced_share) / n)
    print(f"plans started: {n:,} ({a.years} years at scale {a.scale:g}, seed {a.seed})")
    print(f"a baby's own plan: {p.own_baby_share:.3f}")
    print(f"timed by a baby (own or a sibling's): {p.baby_paced_share:.3f} (s.e. {se:.3f})")


if __name__ == "__main__":
    main()
