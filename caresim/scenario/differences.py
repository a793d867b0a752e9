"""What a scenario changes from the calibrated baseline, with each change's evidence.

Every command that runs a scenario records `assumptions` in its manifest
(`differences_from_baseline`), and the policy brief prints them: one row per block of
the scenario that carries provenance (`sources`, `assumption`, `note`, `range`) and has at
least one value different from `scenarios/baseline.yaml` as calibrated (a block the
baseline does not have, such as a new intervention, differs in every value).

Choices, written down:

- A block's evidence is its own `sources` and `assumption`; a block that names neither
  takes its nearest enclosing block's (an intervention's `uptake` inherits the
  intervention's sources) and the row says so (`inherited`). A row with neither, even
  inherited, is listed with no source: the brief shows it as unsourced rather than hiding it.
- A row's `range` is the block's `range` or, for an intervention effect, its `interval`.
- Scope is not a parameter: `name`, `description`, `start`, `years`, `geography`, `run`,
  `data` (file paths) and `uncertain` (the sweep's own table) are left out.
- Text (`note`, `description`) is not compared; everything else is (numbers, dates,
  choices such as `when_full`, lists such as `transitions`), and a value equal to the
  baseline's is not listed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SCOPE_KEYS = frozenset({"name", "description", "start", "years", "geography", "run", "data",
                        "uncertain", "extends"})
PROVENANCE_KEYS = frozenset({"sources", "assumption", "note", "range"})
TEXT_KEYS = frozenset({"description"})  # `note` is a provenance key

#: the calibrated baseline every scenario is compared with
BASELINE_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "baseline.yaml"


@dataclass
class Difference:
    """One block of a scenario that differs from the baseline."""

    path: str
    values: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)
    range: list[float] | None = None
    sources: list[str] = field(default_factory=list)
    assumption: str | None = None
    inherited: bool = False
    note: str | None = None



def evidence_text(sources: list[str], assumption: str | None) -> str:
    """`S003, S004` or `assumption fgc_diversion` (or both), or empty if unsourced."""
    parts = [", ".join(sources)] if sources else []
    if assumption:
        parts.append(f"assumption {assumption}")
    return "; ".join(parts)


def _blocks(node: Any) -> bool:
    """A list of mappings (possibly empty): `trends`, an intervention's `effects`."""
    return isinstance(node, list) and all(isinstance(x, dict) for x in node)


def _is_block(node: dict) -> bool:
    return "sources" in node and "assumption" in node


def _walk(node: Any, base: Any, path: str, evidence: tuple, out: list[Difference]) -> None:
    if isinstance(node, list):
        if node and all(isinstance(x, dict) for x in node):
            base_list = base if isinstance(base, list) else []
            for i, item in enumerate(node):
                _walk(item, base_list[i] if i < len(base_list) else None, f"{path}[{i}]", evidence, out)
        return
    if not isinstance(node, dict):
        return
    base = base if isinstance(base, dict) else {}
    own = _is_block(node) and bool(node.get("sources") or node.get("assumption"))
    here = (list(node.get("sources") or []), node.get("assumption"), node.get("note")) if own else evidence
    values, before, children = {}, {}, []
    for key, value in node.items():
        if key in PROVENANCE_KEYS or key in TEXT_KEYS or (not path and key in SCOPE_KEYS):
            continue
        sub = f"{path}.{key}" if path else key
        was = base.get(key)
        if _blocks(value) and _blocks(was) and len(value) != len(was):
            # blocks added or dropped (e.g. a scenario without the baseline's `trends`): a row
            # of their own, then the items both have are compared one by one
            out.append(Difference(sub, {key: f"{len(value)} item(s)"}, {key: f"{len(was)} item(s)"},
                                  None, [], None, inherited=False, note=None))
            if not value:
                continue
        if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(x, dict) for x in value)):
            children.append((value, base.get(key), sub))
        elif value is not None and value != base.get(key):
            values[key] = value
            if base.get(key) is not None:
                before[key] = base[key]
    if values:
        sources, assumption, note = here
        rng = node.get("range") or node.get("interval")
        out.append(Difference(path, values, before, list(rng) if rng else None, sources,
                              assumption, inherited=not own, note=note))
    for value, base_value, sub in children:
        _walk(value, base_value, sub, here, out)


def differences(resolved: dict, baseline: dict) -> list[Difference]:
    """The blocks of `resolved` (a scenario's manifest form) that differ from `baseline`."""
    out: list[Difference] = []
    _walk(resolved, baseline, "", ([], None, None), out)
    return out


@lru_cache(maxsize=1)
def _baseline_resolved() -> tuple[dict, str]:
    from caresim.scenario.loader import load_scenario

    loaded = load_scenario(BASELINE_SCENARIO)
    return loaded.resolved, loaded.hash


def differences_from_baseline(resolved: dict) -> dict:
    """The manifest's `assumptions`: what `resolved` changes from the calibrated baseline.

    Returns `{"baseline": path, "baseline_hash": ..., "rows": [...]}`; `rows` is empty for
    the baseline itself, and `None` (with an `error`) when the baseline cannot be loaded
    (e.g. an installed package without the project's scenarios)."""
    try:
        base, digest = _baseline_resolved()
    except Exception as exc:  # noqa: BLE001 - the manifest records why, the run goes on
        return {"baseline": str(BASELINE_SCENARIO), "rows": None, "error": str(exc)}
    rows = [asdict(d) for d in differences(resolved, base)]
    return {"baseline": str(BASELINE_SCENARIO), "baseline_hash": digest, "rows": rows}
