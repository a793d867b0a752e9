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
