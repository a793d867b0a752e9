"""Virtual trials: a published trial's design re-created inside the model (`caresim trial`).

The trial's scenario runs for the trial's LAs only. Its intervention is offered, in those
LAs, to children entering its stage during the recruitment window; each eligible family
(or child, as the intervention decides uptake) is randomised once, at its first eligible
entry, to the intervention arm with probability `allocation` (then takes it up with the
intervention's `uptake`, as in an intention-to-treat analysis) or to control. The engine
traces trial children from randomisation (care episodes, proceedings issued), and each
replication is analysed like the trial:

- `in_care` at M months: share of children looked after M months after entry;
- `proceedings_issued` within M months: share with care proceedings issued by then;
- `days_in_care` within M months: mean days looked after in the M months after entry.

Each replication is one re-run of the trial (about as many children as the real one when
the LAs and window match), so the spread of an arm's estimate over replications is the
sampling spread of a trial of that size; `trial.csv` gives its mean and 5th/95th
percentiles beside the published figure. The effect sizes are the intervention's central
values (`draw_effects=False`): a virtual trial checks the effect a user entered.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

import caresim
from caresim.engine.simulation import TrialArms
from caresim.errors import CaresimError
from caresim.results.store import OutputFolder, runtime_manifest, write_manifest
from caresim.results.summary import write_csv
from caresim.runner.pipeline import load_inputs, scenario_manifest
from caresim.runner.replications import run_replications
from caresim.scenario.loader import LoadedScenario, load_document, load_scenario
from caresim.scenario.model import Scenario, TrialSpec

DAYS_PER_MONTH = 365.25 / 12
ARMS = {1: "control", 2: "intervention"}


@dataclass(frozen=True)
class TrialOutcome:
    folder: Path
    table: pd.DataFrame
    per_replication: pd.DataFrame
    manifest: dict


def trial_scenario(spec: TrialSpec, loaded: LoadedScenario) -> Scenario:
    """The scenario as the trial runs it: the trial's LAs, a horizon covering recruitment
    and follow-up, and the intervention offered everywhere in them during recruitment."""
    sc = loaded.scenario
    if spec.intervention not in sc.interventions:
        raise CaresimError(f"{loaded.path}: the trial's intervention {spec.intervention!r} is not "
                           f"in the scenario (it has: {', '.join(sc.interventions) or 'none'})")
    rec = spec.recruitment
    if rec.start < sc.start:
        raise CaresimError(f"trial recruitment starts {rec.start} before the scenario's start {sc.start}")
    end = _add_months(rec.start, rec.months)
    last = _add_months(end, max(spec.follow_up_months))
    years = int(np.ceil((last - sc.start).days / 365.25)) + 1
    doc = copy.deepcopy(loaded.resolved)
    doc["geography"] = {"las": list(spec.las), "region": None}
    doc["years"] = years
    iv = doc["interventions"][spec.intervention]
    iv["rollout"] = {"waves": [{"start": rec.start.isoformat(), "rest": True}],
                     "ramp_up_days": 0.0, "end": end.isoformat(),
                     "note": f"virtual trial {spec.name}: offered during recruitment only"}
    return Scenario.model_validate(doc)


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    return dt.date(d.year + y, m + 1, min(d.day, 28))


def outcomes(trace: dict[str, pd.DataFrame], months: list[int], horizon: float) -> pd.DataFrame:
    """Per arm and follow-up: children, and the three outcomes (one replication)."""
    entry = trace["entry"].drop_duplicates("child")[["child", "t", "arm"]].rename(columns={"t": "t0"})
    starts = trace["care_start"].sort_values(["child", "t"], kind="stable")
    ends = trace["care_end"].sort_values(["child", "t"], kind="stable")
    starts = starts.assign(n=starts.groupby("child").cumcount())[["child", "n", "t"]]
    ends = ends.assign(n=ends.groupby("child").cumcount())[["child", "n", "t"]]
    episodes = starts.merge(ends, on=["child", "n"], how="left", suffixes=("_s", "_e"))
    episodes["t_e"] = episodes["t_e"].fillna(np.inf)
    episodes = episodes.merge(entry, on="child")
    issued = trace["issued"].groupby("child")["t"].min().rename("t_issue")
    e = entry.set_index("child").join(issued)
    rows = []
    for m in months:
        h = m * DAYS_PER_MONTH
        ok = e["t0"] + h <= horizon  # followed up for the whole period
        ep = episodes[episodes["t0"] + h <= horizon]
        at = ep["t0"] + h
        in_care = ep[(ep["t_s"] <= at) & (ep["t_e"] > at)].groupby("child").size() > 0
        overlap = (np.minimum(ep["t_e"], at) - np.maximum(ep["t_s"], ep["t0"])).clip(lower=0)
        days = overlap.groupby(ep["child"]).sum()
        sub = e[ok]
        df = pd.DataFrame({
            "arm": sub["arm"].map(ARMS),
            "in_care": in_care.reindex(sub.index, fill_value=False).astype(float),
            "proceedings_issued": ((sub["t_issue"] - sub["t0"]) <= h).astype(float),
            "days_in_care": days.reindex(sub.index, fill_value=0.0),
        })
        g = df.groupby("arm")
        for arm, part in g:
            for name in ("in_care", "proceedings_issued", "days_in_care"):
                rows.append({"outcome": name, "months": m, "arm": arm,
                             "value": float(part[name].mean()), "children": len(part)})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    wide = out.pivot_table(index=["outcome", "months"], columns="arm", values="value")
    if {"control", "intervention"} <= set(wide.columns):
        diff = (wide["intervention"] - wide["control"]).rename("value").reset_index()
        diff["arm"] = "difference"
        diff["children"] = np.nan
        out = pd.concat([out, diff], ignore_index=True)
    return out


def summarise_trial(per_rep: pd.DataFrame, spec: TrialSpec) -> pd.DataFrame:
    """trial.csv: simulated mean and 5-95% range over replications beside the published."""
    g = per_rep.groupby(["outcome", "months", "arm"])["value"]
    table = pd.DataFrame({
        "simulated": g.mean(), "simulated_p05": g.quantile(0.05), "simulated_p95": g.quantile(0.95),
        "children": per_rep.groupby(["outcome", "months", "arm"])["children"].mean(),
        "replications": g.size(),
    }).reset_index()
    pub = pd.DataFrame([{
        "outcome": p.outcome, "months": p.months, "arm": p.arm, "published": p.value,
        "published_low": p.interval[0] if p.interval else np.nan,
        "published_high": p.interval[1] if p.interval else np.nan,
        "sources": " ".join(p.sources), "note": p.note or p.assumption or "",
    } for p in spec.published])
    if pub.empty:
        pub = pd.DataFrame(columns=["outcome", "months", "arm", "published", "published_low",
                                    "published_high", "sources", "note"])
    table = table.merge(pub, on=["outcome", "months", "arm"], how="left")
    table["check"] = [_check(r, spec) for r in table.itertuples()]
    table["outcome"] = [f"{o}_{m}m" for o, m in zip(table["outcome"], table["months"])]
    order = {"control": 0, "intervention": 1, "difference": 2}
    table = table.sort_values(["months", "outcome", "arm"], key=lambda c: c.map(order) if c.name == "arm" else c)
    cols = ["outcome", "arm", "simulated", "published", "simulated_p05", "simulated_p95",
            "published_low", "published_high", "children", "replications", "check", "sources", "note"]
    return table[cols].reset_index(drop=True)


def _check(r, spec: TrialSpec) -> str:
    """The trial's checks: a control arm share within `control_tolerance` of the published;
    a difference inside its published interval. '' where nothing is checked."""
    if pd.isna(r.published):
        return ""
    if r.arm == "control" and r.outcome != "days_in_care":
        return "pass" if abs(r.simulated - r.published) <= spec.control_tolerance else "FAIL"
    if r.arm == "difference" and not pd.isna(r.published_low):
        return "pass" if r.published_low <= r.simulated <= r.published_high else "FAIL"
    return ""


def run_trial(trial_path: Path, out: Path | None = None, replications: int | None = None,
              seed: int | None = None, scale: float | None = None, jobs: int = 1,
              force: bool = False, on_done: Callable | None = None,
              output_root: Path = Path("outputs")) -> TrialOutcome:
    """Run a virtual trial file and write trial.csv, trial_replications.csv, manifest.json."""
    trial_path = Path(trial_path)
    spec = load_document(trial_path, TrialSpec, file_keys=("scenario",))
    loaded = load_scenario(spec.scenario)
    sc = trial_scenario(spec, loaded)
    reps = replications or spec.run.replications
    seed = spec.run.seed if seed is None else seed
    scale = spec.run.scale if scale is None else scale
    la_inputs, history = load_inputs(loaded)
    unknown = sorted(set(spec.las) - set(la_inputs["geography"]))
    if unknown:
        raise CaresimError(f"{trial_path}: las: unknown LA code(s) {', '.join(unknown)}")
    with OutputFolder(out, spec.name, force=force, root=output_root) as folder:
        t0 = time.perf_counter()
        results = run_replications(
            sc, la_inputs, seed, reps, scale, jobs=jobs, on_done=on_done, history=history,
            options={"draw_effects": False, "trial": TrialArms(spec.intervention, spec.allocation)})
        wall = time.perf_counter() - t0
        horizon = float((dt.date(sc.start.year + sc.years, 4, 1) - sc.start).days)
        parts = []
        for r in results:
            o = outcomes(r.trace, spec.follow_up_months, horizon)
            o.insert(0, "replication", r.replication)
            parts.append(o)
        per_rep = pd.concat(parts, ignore_index=True)
        table = summarise_trial(per_rep, spec)
        write_csv(table, folder.path / "trial.csv")
        write_csv(per_rep, folder.path / "trial_replications.csv")
        manifest = {
            "kind": "trial",
            "caresim_version": caresim.__version__,
            "trial": spec.model_dump(mode="json"),
            "trial_file": str(trial_path.resolve()),
            **scenario_manifest(loaded),
            "scenario": sc.model_dump(mode="json"),
            "seed": seed, "replications": reps, "scale": scale, "jobs": jobs,
            "effects": "central values of the intervention's hazard ratios",
            "hazard_ratios": results[0].hazard_ratios if results else {},
            "checks": {"failed": int((table["check"] == "FAIL").sum()),
                       "passed": int((table["check"] == "pass").sum())},
            "wall_seconds": round(wall, 3),
            **runtime_manifest(),
            "started": dt.datetime.now().isoformat(timespec="seconds"),
        }
        write_manifest(folder.path, manifest)
    return TrialOutcome(folder.final, table, per_rep, manifest)
