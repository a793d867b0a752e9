"""The command line of the one-run analyses (`plan_pace`, `leavers`): a scenario run for a
few years at a small scale, with its LA table ready."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from caresim.runner.pipeline import prepare
from caresim.scenario.loader import load_scenario
from caresim.scenario.model import Scenario


def one_run_arguments(description: str, argv: list[str] | None = None
                      ) -> tuple[argparse.Namespace, Scenario, pd.DataFrame]:
    """Parse `--scenario`, `--years`, `--scale`, `--seed`; returns them with the loaded
    scenario and its LA inputs."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--scenario", type=Path, default=Path("scenarios/baseline.yaml"))
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    loaded = load_scenario(a.scenario)
    return a, loaded.scenario, prepare(loaded).la_inputs
