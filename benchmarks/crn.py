"""Benchmark: what common random numbers (CRN) buy in a paired comparison.

Runs `caresim compare` of the baseline against the FGC national rollout twice, with CRN
and without (B from another seed), and prints, per year, the ratio of the standard
deviation across replications of the England care-starts difference (annual and
cumulative) and of its 5-95% width. With `--central-effects` the intervention's hazard
ratios are fixed at their central values, which isolates the stochastic noise CRN
removes from the effect-size uncertainty it cannot (and should not) remove.

    .venv/bin/python benchmarks/crn.py [--scale 0.1] [-n 8] [--central-effects]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from caresim.analysis.compare import run_compare
from caresim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def paired(folder: Path) -> pd.DataFrame:
    r = pd.read_parquet(folder / "replications.parquet")
    r = r[(r.geography == "England") & (r.metric == "care_starts")]
    p = r.pivot_table(index=["replication", "year"], columns="scenario", values="value")
    d = (p.iloc[:, 1] - p.iloc[:, 0]).rename("annual").to_frame()
    d["cumulative"] = d["annual"].groupby("replication").cumsum()
    return d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("-n", "--replications", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--central-effects", action="store_true")
    ap.add_argument("--b", default=str(ROOT / "scenarios" / "fgc_national_rollout.yaml"))
    args = ap.parse_args()
    a = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    b = load_scenario(args.b)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for crn in (True, False):
            o = run_compare(a, b, out=Path(tmp) / str(crn), replications=args.replications,
                            scale=args.scale, jobs=args.jobs, crn=crn,
                            central_effects=args.central_effects)
            out[crn] = paired(o.folder)
    rows = []
    for kind in ("annual", "cumulative"):
        sd = {c: out[c][kind].groupby("year").std() for c in out}
        q = {c: out[c][kind].groupby("year").quantile(0.95) - out[c][kind].groupby("year").quantile(0.05)
             for c in out}
        rows.append(pd.DataFrame({"kind": kind, "sd_crn": sd[True], "sd_no_crn": sd[False],
                                  "sd_ratio": sd[True] / sd[False],
                                  "width_ratio": q[True] / q[False]}))
    table = pd.concat(rows).reset_index()
    print(f"care starts difference, England, {b.scenario.name} minus baseline, scale "
          f"{args.scale}, {args.replications} replications, effects "
          f"{'central' if args.central_effects else 'drawn per replication'}")
    print(table.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
