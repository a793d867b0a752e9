"""Shared fixtures: the tiny scenario (2 LAs, 3 years) and the calibration table."""

from pathlib import Path

import pandas as pd
import pytest

from caresim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"
BASELINE = ROOT / "scenarios" / "baseline.yaml"


@pytest.fixture(scope="session")
def tiny():
    return load_scenario(TINY)


@pytest.fixture(scope="session")
def la_inputs(tiny):
    return pd.read_csv(tiny.data_paths["la_inputs"])
