"""Scenario loading: the tiny fixture, `extends`, and one test per kind of bad input.

Bad files are made in tmp_path by editing the text of tests/fixtures/tiny.yaml; expected
line numbers are found in the edited text, never hard-coded. tmp_path is laid out like the
repository (tests/fixtures/ beside calibration/, with empty placeholder tables) so the
fixture's `../../calibration/...` paths resolve without touching calibration/.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from caresim.errors import CaresimError
from caresim.scenario import (
    STATES,
    TERMINAL_STATES,
    LoadedScenario,
    ScenarioError,
    json_schema,
    load_scenario,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tiny.yaml"
TINY = FIXTURE.read_text(encoding="utf-8")
REPO_CALIBRATION = Path(__file__).parents[1] / "calibration"
TABLES = ("la_inputs_2024.csv", "history.csv")


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """tmp_path/tests/fixtures, with tmp_path/calibration holding placeholder tables."""
    (tmp_path / "calibration").mkdir()
    for name in TABLES:
        (tmp_path / "calibration" / name).write_text("", encoding="utf-8")
    here = tmp_path / "tests" / "fixtures"
    here.mkdir(parents=True)
    return here


def write(folder: Path, text: str, name: str = "tiny.yaml") -> Path:
    """Write a scenario file and return its path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, start: str) -> int:
    """1-based number of the one line that starts with `start`."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start)]
    assert len(found) == 1, f"{start!r} starts lines {found}"
    return found[0]


def col_of(text: str, line: int, key: str) -> int:
    """1-based column of `key` in a line."""
    return text.splitlines()[line - 1].index(key) + 1


def error_of(path: Path) -> ScenarioError:
    """The ScenarioError raised by loading `path`."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def check(err: ScenarioError, path: Path, line: int | None, key: str | None, text: str) -> None:
    """The error names the file, line and key, and its str() says so with `text`."""
    assert err.file == path
    assert err.line == line
    assert err.key == key
    first = str(err).splitlines()[0]
    where = f"{path}:{line}:" if line is not None else f"{path}: "
    assert first.startswith(where), first
    if key:
        assert f": {key}: " in first, first
    assert text in first, first


# --- valid scenarios --------------------------------------------------------------------


def test_tiny_loads(folder: Path) -> None:
    path = write(folder, TINY)
    loaded = load_scenario(path)
    assert isinstance(loaded, LoadedScenario)
    assert loaded.scenario.name == "tiny"
    assert loaded.path == path and loaded.files == [path]
    assert loaded.data_paths == {
        "la_inputs": folder.parents[1] / "calibration" / "la_inputs_2024.csv",
        "history": folder.parents[1] / "calibration" / "history.csv",
    }
    canonical = json.dumps(loaded.resolved, sort_keys=True, separators=(",", ":"))
    assert loaded.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert loaded.resolved["start"] == "2024-04-01"
    assert load_scenario(path).hash == loaded.hash


def test_tiny_fixture_covers_the_pathway(folder: Path) -> None:
    scenario = load_scenario(write(folder, TINY)).scenario
    assert set(scenario.pathway) == set(STATES) - set(TERMINAL_STATES)
    assert set(scenario.pathway["looked_after"].rules()) == {"s20", "care_order", "placement_order", "uasc"}
    closed = scenario.pathway["closed"].rules()["default"]
    assert {k: (e.to, e.p) for k, e in closed.exits.items()} == {
        "referral": ("referral", 0.2),
        "closed": ("closed", "rest"),
    }
    assert closed.probabilities() == {"referral": 0.2, "closed": 0.8}


def test_tiny_fixture_in_repo() -> None:
    if not all((REPO_CALIBRATION / name).is_file() for name in TABLES):
        pytest.skip("calibration tables not written yet")
    loaded = load_scenario(FIXTURE)
    assert loaded.data_paths["la_inputs"] == REPO_CALIBRATION.resolve() / "la_inputs_2024.csv"


def test_no_stays_a_string(folder: Path) -> None:
    text = edit(TINY, "price_base: 2024-25", "price_base: no")
    text = edit(text, "description: Small scenario for fast tests of the loader and the engine.", "description: on")
    scenario = load_scenario(write(folder, text)).scenario
    assert scenario.costs.price_base == "no"
    assert scenario.description == "on"


def test_extends_overrides_one_nested_value(folder: Path) -> None:
    base = write(folder, TINY)
    # in another folder: data paths stay relative to the base file that set them
    child = write(
        folder.parents[1] / "variants",
        "extends: ../tests/fixtures/tiny.yaml\nname: busier\narrivals:\n  referrals:\n    multiplier: 1.1\n",
        "busier.yaml",
    )
    loaded = load_scenario(child)
    base_loaded = load_scenario(base)
    arrivals = loaded.scenario.arrivals
    assert loaded.scenario.name == "busier"
    assert arrivals.referrals.multiplier == 1.1
    assert arrivals.referrals.new_child_share == 0.78  # inherited beside the override
    assert arrivals.uasc == base_loaded.scenario.arrivals.uasc
    assert loaded.scenario.pathway == base_loaded.scenario.pathway
    assert loaded.files == [base, child]
    assert loaded.data_paths == base_loaded.data_paths
    # resolved paths are relative to the top file
    assert loaded.resolved["data"]["history"] == "../calibration/history.csv"
    assert "extends" not in loaded.resolved
    assert loaded.hash != base_loaded.hash


def test_extends_chain_and_lists_replace(folder: Path) -> None:
    write(folder, TINY)
    write(folder, "extends: tiny.yaml\nname: mid\nrun:\n  seed: 99\n", "mid.yaml")
    top = write(folder, "extends: mid.yaml\nname: top\ngeography:\n  las: [E10000003]\n", "top.yaml")
    loaded = load_scenario(top)
    assert [f.name for f in loaded.files] == ["tiny.yaml", "mid.yaml", "top.yaml"]
    assert loaded.scenario.name == "top"
    assert loaded.scenario.run.seed == 99 and loaded.scenario.run.replications == 2
    assert loaded.scenario.geography.las == ["E10000003"]


# --- errors located in the file they come from ------------------------------------------


def test_error_in_inherited_value_points_at_base(folder: Path) -> None:
    bad = edit(TINY, "s47_enquiry: {to: s47_enquiry, p: 0.12}", "s47_enquiry: {to: s47_enquiry, p: 1.3}")
    base = write(folder, bad)
    child = write(folder.parent / "other", "extends: ../fixtures/tiny.yaml\nyears: 5\n", "child.yaml")
    line = line_of(bad, "      s47_enquiry: {to: s47_enquiry, p: 1.3}")
    err = error_of(child)
    check(err, base, line, "pathway.referral.exits.s47_enquiry.p", "less than or equal to 1 (got 1.3)")
    assert err.column == col_of(bad, line, "p: 1.3")


def test_error_in_override_points_at_child(folder: Path) -> None:
    write(folder, TINY)
    text = "extends: tiny.yaml\nrun:\n  replications: 0\n"
    child = write(folder, text, "child.yaml")
    check(error_of(child), child, 3, "run.replications", "Input should be greater than 0 (got 0)")


# --- one test per kind of bad input ------------------------------------------------------


def test_unknown_key(folder: Path) -> None:
    text = edit(TINY, "  seed: 7\n", "  seed: 7\n  bogus: 1\n")
    path = write(folder, text)
    err = error_of(path)
    check(err, path, line_of(text, "  bogus:"), "run.bogus", "unknown key 'bogus'")
    assert str(err).endswith("allowed here: replications, seed, scale")
    assert err.column == 3


def test_unknown_state(folder: Path) -> None:
    text = edit(TINY, "  early_help:\n    sojourn", "  early_hepl:\n    sojourn")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "  early_hepl:"), "pathway.early_hepl", "invalid key 'early_hepl'")


def test_wrong_type(folder: Path) -> None:
    text = edit(TINY, "years: 3", "years: three")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "years:"), "years", "Input should be a valid integer")


def test_no_where_a_number_is_expected(folder: Path) -> None:
    text = edit(TINY, "  replications: 2", "  replications: no")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "  replications:"), "run.replications", "(got 'no')")


def test_probability_above_one(folder: Path) -> None:
    text = edit(TINY, "s47_enquiry: {to: s47_enquiry, p: 0.12}", "s47_enquiry: {to: s47_enquiry, p: 1.3}")
    path = write(folder, text)
    line = line_of(text, "      s47_enquiry: {to: s47_enquiry, p: 1.3}")
    err = error_of(path)
    key = "pathway.referral.exits.s47_enquiry.p"
    col = col_of(text, line, "p: 1.3")
    assert str(err) == f"{path}:{line}:{col}: {key}: Input should be less than or equal to 1 (got 1.3)"
    assert err.message == "Input should be less than or equal to 1 (got 1.3)"


def test_probability_not_a_number(folder: Path) -> None:
    text = edit(TINY, "s47_enquiry: {to: s47_enquiry, p: 0.12}", "s47_enquiry: {to: s47_enquiry, p: lots}")
    path = write(folder, text)
    line = line_of(text, "      s47_enquiry: {to: s47_enquiry, p: lots}")
    check(error_of(path), path, line, "pathway.referral.exits.s47_enquiry.p", "Input should be a valid number")
    assert str(error_of(path)).endswith(", or 'rest' (got 'lots')")


def test_error_about_the_whole_file(folder: Path) -> None:
    text = edit(TINY, "transition: proceedings->special_guardianship", "transition: proceedings->adopted")
    path = write(folder, text)
    check(error_of(path), path, None, None, "unknown transition(s) proceedings->adopted")


def test_missing_top_level_key(folder: Path) -> None:
    text = TINY[: TINY.index("costs:")] + TINY[TINY.index("initial_state:") :]
    path = write(folder, text)
    check(error_of(path), path, None, "costs", "required key is missing")


@pytest.mark.parametrize(
    ("old", "new", "start", "key", "text"),
    [
        ("per_year: 5500", "per_year: -5", "    per_year:", "arrivals.uasc.per_year", "greater than or equal to 0 (got -5)"),
        (
            "sojourn: {dist: exponential, mean: 30,",
            "sojourn: {dist: exponential, mean: -30,",
            "    sojourn: {dist: exponential, mean: -30,",
            "pathway.referral.sojourn.mean",
            "greater than 0 (got -30)",
        ),
        ("  - transition: proceedings->special_guardianship\n    value: 1.0", "  - transition: proceedings->special_guardianship\n    value: -1",
         "    value: -1", "hazard_multipliers[0].value", "greater than or equal to 0 (got -1)"),
    ],
)
def test_negative_value(folder: Path, old: str, new: str, start: str, key: str, text: str) -> None:
    content = edit(TINY, old, new)
    path = write(folder, content)
    check(error_of(path), path, line_of(content, start), key, text)


def test_exits_sum_above_one(folder: Path) -> None:
    text = edit(TINY, "early_help: {to: early_help, p: 0.2}", "early_help: {to: early_help, p: 0.9}")
    path = write(folder, text)
    line = line_of(text, "  referral:")
    check(error_of(path), path, line, "pathway.referral", "exit probabilities sum to 1.32 > 1, nothing left for 'rest'")


def test_exits_not_summing_to_one(folder: Path) -> None:
    text = edit(TINY, "left_care: {to: left_care, p: 1.0}", "left_care: {to: left_care, p: 0.9}")
    path = write(folder, text)
    line = line_of(text, "      uasc:")
    check(error_of(path), path, line, "pathway.looked_after.variants.uasc", "exit probabilities sum to 0.9, not 1")


def test_missing_required_key(folder: Path) -> None:
    text = edit(TINY, "    new_child_share: 0.78\n", "")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "  referrals:"), "arrivals.referrals.new_child_share", "required key is missing")


def test_missing_extends_file(folder: Path) -> None:
    path = write(folder, "extends: nowhere.yaml\nname: x\n", "child.yaml")
    err = error_of(path)
    check(err, path, 1, "extends", "cannot extend 'nowhere.yaml'")
    assert str(folder / "nowhere.yaml") in str(err)


def test_extends_cycle(folder: Path) -> None:
    a = write(folder, "name: a\nextends: b.yaml\n", "a.yaml")
    b = write(folder, "extends: a.yaml\nname: b\n", "b.yaml")
    err = error_of(a)
    check(err, b, 1, "extends", "extends cycle")
    assert str(a) in str(err) and str(b) in str(err)


def test_missing_data_file(folder: Path) -> None:
    text = edit(TINY, "history: ../../calibration/history.csv", "history: ../../calibration/histroy.csv")
    path = write(folder, text)
    err = error_of(path)
    check(err, path, line_of(text, "  history:"), "data.history", "data file '../../calibration/histroy.csv' not found")


def test_missing_data_file_set_in_base(folder: Path) -> None:
    text = edit(TINY, "history: ../../calibration/history.csv", "history: ../calibration/history.csv")
    base = write(folder, text)
    # from the child's folder ../calibration/history.csv would exist: the base's folder counts
    child = write(folder.parents[1] / "variants", "extends: ../tests/fixtures/tiny.yaml\n", "child.yaml")
    check(error_of(child), base, line_of(text, "  history:"), "data.history", "not found")


def test_impossible_date(folder: Path) -> None:
    text = edit(TINY, "start: 2024-04-01", "start: 2024-02-30")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "start:"), "start", "invalid date '2024-02-30'")


def test_start_not_1_april(folder: Path) -> None:
    text = edit(TINY, "start: 2024-04-01", "start: 2024-05-01")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "start:"), "start", "start must be 1 April")


@pytest.mark.parametrize(
    "tagged",
    ['!!python/object/apply:os.system ["touch {pwned}"]', "!!python/name:os.system", "!secret abc", "!!binary aGk="],
)
def test_unsafe_tag(folder: Path, tagged: str) -> None:
    pwned = folder / "pwned"
    line = "description: Small scenario for fast tests of the loader and the engine."
    text = edit(TINY, line, "description: " + tagged.format(pwned=pwned))
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "description:"), "description", "is not allowed")
    assert not pwned.exists()


def test_yaml_syntax_error(folder: Path) -> None:
    text = edit(TINY, "  seed: 7\n", "  seed: 7: 8\n")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "  seed:"), None, "invalid YAML: mapping values are not allowed here")


def test_duplicate_key(folder: Path) -> None:
    text = edit(TINY, "years: 3\n", "years: 3\nyears: 4\n")
    path = write(folder, text)
    check(error_of(path), path, line_of(text, "years: 4"), "years", "duplicate key 'years'")


def test_several_problems(folder: Path) -> None:
    text = edit(edit(TINY, "years: 3", "years: 0"), "  seed: 7", "  seed: -1")
    path = write(folder, text)
    err = error_of(path)
    lines = str(err).splitlines()
    assert len(lines) == 2 and len(err.problems) == 2
    check(err, path, line_of(text, "years:"), "years", "greater than or equal to 1")
    assert lines[1].startswith(f"{path}:{line_of(text, '  seed:')}:3: run.seed: ")


# --- files that are not scenarios -------------------------------------------------------


def test_file_not_found(tmp_path: Path) -> None:
    check(error_of(tmp_path / "none.yaml"), tmp_path / "none.yaml", None, None, "file not found")


def test_directory(tmp_path: Path) -> None:
    check(error_of(tmp_path), tmp_path, None, None, "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing here\n", "empty.yaml")
    check(error_of(path), path, None, None, "file is empty")


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "# a list\n- name: tiny\n", "list.yaml")
    check(error_of(path), path, 2, None, "top level must be a mapping")


def test_scenario_error_is_a_caresim_error() -> None:
    err = ScenarioError("bad", file="a.yaml", line=3, column=5, key="x.y")
    assert isinstance(err, CaresimError)
    assert str(err) == "a.yaml:3:5: x.y: bad"
    assert str(ScenarioError("bad", file="a.yaml")) == "a.yaml: bad"


# --- JSON Schema ------------------------------------------------------------------------


def test_json_schema() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    assert "pathway" in schema["properties"]
    assert schema["properties"]["extends"]["type"] == "string"
    # a complete scenario is required only when the file extends nothing
    assert "required" not in schema
    assert schema["else"] == {"$ref": "#/$defs/Scenario"}
    assert "pathway" in schema["$defs"]["Scenario"]["required"]
    assert "required" not in schema["$defs"]["Exit_partial"]
    json.dumps(schema)


@pytest.mark.parametrize(
    ("weeks", "text"),
    [("[28, 8]", "weeks_before_birth must be [low, high] with low < high, not [28.0, 8.0]"),
     ("[8, 45]", "weeks_before_birth 45.0 is longer than a pregnancy (40 weeks)")],
)
def test_pre_birth_weeks_out_of_order_or_too_long(folder: Path, weeks: str, text: str) -> None:
    content = edit(TINY, "  age_at_referral:", "  pre_birth:\n    share: {value: 0.5, assumption: test}\n"
                                     f"    weeks_before_birth: {weeks}\n  age_at_referral:")
    path = write(folder, content)
    check(error_of(path), path, line_of(content, "  pre_birth:"), "arrivals.pre_birth", text)


def test_pre_birth_loads(folder: Path) -> None:
    content = edit(TINY, "  age_at_referral:", "  pre_birth:\n    share: {value: 0.5, assumption: test}\n"
                                     "    weeks_before_birth: [8, 28]\n  age_at_referral:")
    pb = load_scenario(write(folder, content)).scenario.arrivals.pre_birth
    assert pb.share.value == 0.5 and pb.weeks_before_birth == (8, 28)
