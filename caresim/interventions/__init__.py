"""Interventions: what a scenario's `interventions:` block does to children.

An intervention is data, not code (`caresim.scenario.model.Intervention`): the families of
DESIGN.md (family group conferences, FDAC, Family Safeguarding, kinship support, social
workers in schools) differ only in their stage, eligibility, effects, costs and rollout,
so each is a scenario file in `scenarios/`, and this package holds the mechanics they
share, one module per aspect:

- `effect`: hazard ratios drawn from their evidence's interval, and onset and waning as a
  piecewise-constant schedule over time since the intervention started;
- `compiled`: an intervention ready for the engine (per-LA rollout start and ramp,
  eligibility prevalence, affected exits of each pathway rule, unit costs, places).

The engine (`caresim.engine.simulation`) offers the intervention to children entering its
stage and applies the schedules exactly when it draws their stays
(`caresim.pathway.compiled.CompiledRule.draw_piecewise`).
"""

from caresim.interventions.compiled import CompiledIntervention, compile_interventions
from caresim.interventions.effect import draw_ratio, waning_schedule

__all__ = ["CompiledIntervention", "compile_interventions", "draw_ratio", "waning_schedule"]
