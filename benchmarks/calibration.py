"""Benchmark: wall time of a calibration on this machine.

    .venv/bin/python benchmarks/calibration.py              # the CI-sized calibration
    .venv/bin/python benchmarks/calibration.py --full       # calibration/config.yaml (writes
                                                            # nothing: report into a temp dir)

The CI-sized one is one fit of the recovery tests' synthetic problem (tests/synthetic.py:
the tiny scenario, 2 LAs, 2 parameters). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def ci_sized() -> tuple[float, int]:
    """One fit of the recovery tests' synthetic problem (tests/synthetic.py)."""
    import pandas as pd

    from caresim.analysis.calibrate import Problem, calibrate
    from caresim.scenario.loader import load_scenario
    from conftest import TINY
    from synthetic import fit_config, synthetic_targets

    tiny = load_scenario(TINY)
    la = pd.read_csv(tiny.data_paths["la_inputs"])
    hist = pd.read_csv(tiny.data_paths["history"])
    targets, base, regions = synthetic_targets(tiny, la, hist)
    t0 = time.perf_counter()
    fit = calibrate(Problem(base=base, la_inputs=la, history=hist, targets=targets,
                            config=fit_config(), regions=regions))
    return time.perf_counter() - t0, fit.evaluations


def full(jobs: int) -> tuple[float, int]:
    import json

    from caresim.analysis.calibration_pipeline import run_calibration

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder, _ = run_calibration(ROOT / "calibration" / "config.yaml", Path(tmp) / "report",
                                    force=True, jobs=jobs, progress=lambda s: None,
                                    write_fitted=False, command="benchmarks/calibration.py --full")
        wall = time.perf_counter() - t0
        evaluations = json.loads((folder / "manifest.json").read_text())["evaluations"]
    return wall, evaluations


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    wall, n = full(args.jobs) if args.full else ci_sized()
    kind = "full (calibration/config.yaml)" if args.full else "CI-sized (tiny, synthetic targets)"
    print(f"calibration         {kind}")
    print(f"wall time           {wall:.1f} s")
    print(f"simulation runs     {n}")
    print(f"seconds per run     {wall / max(n, 1):.2f}")


if __name__ == "__main__":
    main()
