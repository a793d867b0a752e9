"""Shared fixtures: the tiny scenario (2 LAs, 3 years) and the calibration table."""

from pathlib import Path

import pandas as pd
import pytest

from caresim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"
BASELINE = ROOT / "scenarios" / "baseline.yaml"

#: test files by their measured cost, heaviest first. pytest-xdist hands whole files to
#: the workers in collection order (`--dist loadfile --no-loadscope-reorder`, pyproject),
#: so the longest go first and no long file is left running alone at the end (xdist's own
#: order, by number of tests, started the 2-test recovery file, the longest, last)
HEAVY_FIRST = ("test_calibrate_recovery.py", "test_sweep.py", "test_library.py",
               "test_calibrate.py", "test_trends.py", "test_adoption_lead.py", "test_engine.py",
               "test_targets.py", "test_compare.py", "test_trial.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


@pytest.fixture(scope="session")
def tiny():
    return load_scenario(TINY)


@pytest.fixture(scope="session")
def la_inputs(tiny):
    return pd.read_csv(tiny.data_paths["la_inputs"])


@pytest.fixture(scope="session")
def history(tiny):
    return pd.read_csv(tiny.data_paths["history"])


CHROMIUM = "/usr/bin/chromium"
#: as the machine notes say: without the background-networking flags Chromium tries (and is
#: refused) to reach Google's hosts at every start
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's package, installed by `make test`), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), (f"{CHROMIUM} is missing: `make test` installs Debian's "
                                      "chromium package (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
