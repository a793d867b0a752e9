"""Generated documentation matches the code: README's diagram and metric table, parameters."""

from caresim.report.docs import parameters_markdown, render_readme
from caresim.scenario.loader import load_scenario
from conftest import BASELINE, ROOT


def test_readme_and_parameters_are_up_to_date():
    loaded = load_scenario(BASELINE)
    readme = (ROOT / "README.md").read_text()
    assert render_readme(readme, loaded) == readme, "run `caresim docs`"
    assert (ROOT / "docs" / "parameters.md").read_text() == parameters_markdown(loaded), "run `caresim docs`"


def test_every_baseline_number_has_provenance():
    """Every parameter node in the baseline names sources, a derivation or an assumption."""
    loaded = load_scenario(BASELINE)
    text = parameters_markdown(loaded)
    rows = [r for r in text.splitlines() if r.startswith("| `")]
    assert len(rows) > 60
    for r in rows:
        cells = [c.strip() for c in r.split("|")[1:-1]]
        if cells[1] == "rest":  # the remainder of the other exits
            continue
        assert cells[2] != "—" or cells[3] != "—" or cells[4], r
