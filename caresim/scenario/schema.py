"""JSON Schema (draft 2020-12) of a scenario file as users write it, for editors.

It is `Scenario.model_json_schema()` plus an optional `extends` key. A file without
`extends` must be a complete scenario. A file with `extends` only overrides some values of
its base, so there nothing is required: the top-level `properties` use copies of the
definitions without `required` (suffix `_partial`), and the complete `Scenario` applies
only when `extends` is absent. Checks that span several values (probabilities summing to
1, ...) are made by the loader, not the schema.

Write it out with e.g.
`python -c "import json, caresim.scenario as s; print(json.dumps(s.json_schema(), indent=2))"`.
"""

from __future__ import annotations

from typing import Any

from caresim.scenario.model import Scenario

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_DEFS = "#/$defs/"
_PARTIAL = "_partial"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (with optional `extends`)."""
    full = Scenario.model_json_schema()
    defs = full.pop("$defs", {})
    top = _partial(full)
    top["properties"]["extends"] = {
        "type": "string",
        "title": "Extends",
        "description": "a scenario file (relative to this one) whose values this file overrides;"
        " mappings merge key by key, lists and values replace",
    }
    return {
        "$schema": DRAFT,
        **top,
        "title": "caresim scenario",
        "$defs": {
            **defs,
            **{name + _PARTIAL: _partial(d) for name, d in defs.items()},
            "Scenario": full,
        },
        "if": {"required": ["extends"]},
        "else": {"$ref": _DEFS + "Scenario"},
    }


def _partial(schema: Any, in_properties: bool = False) -> Any:
    """A copy of `schema` with no `required` lists and `$ref`s to the `_partial` definitions.

    `in_properties` is true for the values of a `properties` mapping, whose keys are field
    names rather than schema keywords.
    """
    if isinstance(schema, list):
        return [_partial(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if in_properties:
            out[key] = _partial(value)
        elif key == "required" and isinstance(value, list):
            continue
        elif key == "$ref" and isinstance(value, str) and value.startswith(_DEFS):
            out[key] = value + _PARTIAL
        else:
            out[key] = _partial(value, in_properties=key in ("properties", "$defs"))
    return out
