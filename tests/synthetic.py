"""The synthetic calibration problem shared by the calibration tests: the 2-LA test
scenario's own output at known parameter values, as targets."""

import datetime as dt

import numpy as np
import pandas as pd

from caresim.analysis.calibrate import CalibrationConfig, ParamSpec, Problem, simulate_means
from caresim.analysis.targets import simulated_values
from caresim.population.local import LocalAuthorities
from caresim.scenario.model import Geography
from conftest import TINY

METRICS = {"s47_enquiries": "flow", "cpp_starts": "flow", "child_in_need": "stock",
           "child_protection_plan": "stock", "referrals": "flow"}
TRUE = {"pathway.referral.exits.s47_enquiry.p": 0.17,
        "pathway.child_in_need.sojourn.mean": 420.0}
PARAMS = [ParamSpec(name="referral_s47", path="pathway.referral.exits.s47_enquiry.p", bounds=(0.05, 0.3)),
          ParamSpec(name="cin_mean", path="pathway.child_in_need.sojourn.mean", bounds=(100, 900), log=True)]


def fit_config(**kw):
    base = dict(scenario=str(TINY), start=dt.date(2024, 4, 1), train=(2025, 2026),
                metrics=list(METRICS), parameters=PARAMS, scale=1.0, replications=2, seed=3,
                max_evaluations=25, refine_evaluations=5, posterior_draws=50, diff_step=0.05,
                uncertainty_replications=8)
    base.update(kw)
    return CalibrationConfig(**base)


def synthetic_targets(tiny, la_inputs, history, seed=999, start=dt.date(2024, 4, 1),
                       years=(2025, 2026), reps=8, la_cpp_factors=None):
    """Targets made by the model at TRUE parameters, with other seeds (so: noisy): the mean
    of `reps` replications, with their standard error as the tolerance, as a published
    figure states its own uncertainty. `la_cpp_factors` ({LA code: factor}) adds each LA's
    CPP starts times its factor: LA targets a local fit of `cpp_index` should match with
    multipliers near the factors."""
    base = {k: v for k, v in tiny.resolved.items() if k != "data"}
    regions = LocalAuthorities.from_inputs(la_inputs, Geography()).regions
    rows = [{"target_id": f"T-{m}-{y}", "metric": m, "year": y, "geography": "England",
             "kind": k, "unit": "children", "tolerance": 0.01, "qualifier": "",
             "source_id": "synthetic", "source_url": "", "note": ""}
            for m, k in METRICS.items() for y in years]
    rows += [{**rows[0], "target_id": f"T-cpp-{la}-{y}", "metric": "cpp_starts", "year": y,
              "geography": la, "kind": "flow"} for la in la_cpp_factors or {} for y in years]
    t = pd.DataFrame(rows)
    truth = np.array([TRUE[p.path] for p in PARAMS])
    values = []
    for r in range(reps):  # one replication per seed: independent streams
        cfg = fit_config(seed=seed * 1000 + r, start=start, train=(years[0], years[-1]))
        prob = Problem(base=base, la_inputs=la_inputs, history=history, targets=pd.DataFrame(),
                       config=cfg, regions=regions)
        values.append(simulated_values(t, simulate_means(prob, [prob.scenario(truth)], 1.0, 1, None)[0]).to_numpy())
    values = np.array(values)
    t["published"] = values.mean(axis=0) * t.geography.map(la_cpp_factors or {}).fillna(1.0)
    t["tolerance"] = values.std(axis=0, ddof=1) / np.sqrt(reps) / np.abs(t["published"])
    return t, base, regions
