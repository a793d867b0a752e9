"""Load scenario YAML files safely, resolving `extends:` and reporting errors by file:line:col.

A scenario file is read with ruamel.yaml's round-trip parser (YAML 1.2, so `no` and `on`
stay strings) into a node tree. The tree is turned into plain Python data by hand-walking
the nodes (scalars are built by ruamel's own constructor), which lets the loader

- reject every tag outside the YAML core schema (`!!python/...`, `!foo`, `!!binary`, ...),
  so a scenario can never construct a Python object;
- remember, for every key path, the file, line and column it was written at.

`extends: base.yaml` loads the base first and deep-merges the file over it (mappings merge
key by key, lists and scalars replace). The merged mapping is validated with
`caresim.scenario.model.Scenario`; every pydantic error is translated back to the key path
and the file:line:col its value came from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple, Union

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from caresim.errors import CaresimError
from caresim.scenario.model import DataFiles, Scenario

#: a key path: mapping keys (str or int) and list indices (int)
KeyPath = tuple[Any, ...]

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_DATA_KEYS = ("la_inputs", "history", "la_multipliers", "parameter_samples")


class ScenarioError(CaresimError):
    """A problem in a scenario file, located by file, line, column (1-based) and key path.

    `str()` reads `file:line:col: key: message`. An error that gathers several problems
    (`ScenarioError.many`) keeps the first one's attributes and lists every problem, one per
    line, in `str()`; `problems` holds them all (a single error is its own only problem).
    """

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = Path(file) if file is not None else None
        self.line = line
        self.column = column
        self.key = key or None
        self.problems: tuple[ScenarioError, ...] = (self,)
        super().__init__(self._one_line())

    @classmethod
    def many(cls, problems: list[ScenarioError]) -> ScenarioError:
        """One error listing several problems (the first gives the attributes)."""
        if len(problems) == 1:
            return problems[0]
        first = problems[0]
        err = cls(first.message, file=first.file, line=first.line, column=first.column, key=first.key)
        err.problems = tuple(problems)
        err.args = ("\n".join(p._one_line() for p in problems),)
        return err

    def _one_line(self) -> str:
        where = [str(self.file)] if self.file is not None else []
        if self.file is not None and self.line is not None:
            where.append(str(self.line))
            if self.column is not None:
                where.append(str(self.column))
        parts = [":".join(where)] if where else []
        if self.key:
            parts.append(self.key)
        parts.append(self.message)
        return ": ".join(parts)

    def __str__(self) -> str:
        return str(self.args[0])


class Origin(NamedTuple):
    """Where a key (or list item) was written: file, 1-based line and column."""

    file: Path
    line: int
    column: int


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from.

    `files` is the `extends` chain, base first, ending with `path`; `resolved` is the
    validated scenario as JSON-able data; `data_paths` holds the absolute, existing paths of
    the calibration tables (`la_inputs`, `history`).
    """

    scenario: Scenario
    path: Path
    files: list[Path]
    resolved: dict
    data_paths: dict[str, Path] = field(default_factory=dict)

    @cached_property
    def hash(self) -> str:
        """sha256 hex digest of the canonical JSON of `resolved`."""
        text = json.dumps(self.resolved, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_scenario(path: str | os.PathLike[str]) -> LoadedScenario:
    """Read, merge (`extends`), validate and resolve a scenario file.

    Raises `ScenarioError` for anything wrong with the file, its bases, its values or the
    data files it names.
    """
    top = Path(path)
    data, origins, chain = _load_chain(top, ())
    data_paths, problems = _resolve_data_paths(data, origins, top)
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = _translate(exc, data, origins, top) + problems
    if problems:
        order = {f: i for i, f in enumerate(chain)}
        problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line or 0, p.column or 0))
        raise ScenarioError.many(problems)
    assert scenario is not None
    return LoadedScenario(
        scenario=scenario,
        path=_absolute(top),
        files=[_absolute(f) for f in chain],
        resolved=scenario.model_dump(mode="json"),
        data_paths=data_paths,
    )


def load_merged(path: str | os.PathLike[str]) -> dict:
    """The file's data merged over its `extends` chain, as written (not validated, no
    defaults filled in): what an overlay copies when it must replace a whole list."""
    return _load_chain(Path(path), ())[0]


def load_document(path: str | os.PathLike[str], model: type[pydantic.BaseModel],
                  file_keys: tuple[str, ...] = (),
                  check: Callable[[Any], Iterable[tuple[KeyPath, str]]] | None = None):
    """Read and validate another kind of YAML document (e.g. a virtual trial) against
    `model`, with `extends:` and the same file:line:col errors as scenarios. Top-level
    `file_keys` hold paths relative to the file that set them; they are made absolute.
    `check(document)` finds what the schema cannot (a key that must name something in
    another file): it yields (key path, message), reported at the key's line like the
    schema's errors."""
    top = Path(path)
    data, origins, _chain = _load_chain(top, ())
    for key in file_keys:
        if isinstance(data.get(key), str) and (key,) in origins:
            data[key] = str(_absolute(origins[(key,)].file.parent / data[key]))
    try:
        document = model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = _translate(exc, data, origins, top)
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise ScenarioError.many(problems) from None
    if check is not None:
        problems = []
        for keypath, message in check(document):
            at = _nearest_origin(keypath, origins, top)
            problems.append(ScenarioError(message, file=at.file, line=at.line, column=at.column,
                                          key=_dotted(keypath, data)))
        if problems:
            problems.sort(key=lambda p: (p.line or 0, p.column or 0))
            raise ScenarioError.many(problems)
    return document


# --- reading one file -------------------------------------------------------------------


def _absolute(path: Path) -> Path:
    """Absolute, normalised path (symlinks kept)."""
    return Path(os.path.abspath(path))


def _read_yaml(path: Path) -> tuple[dict, dict[KeyPath, Origin]]:
    """Parse one YAML file into plain data and the origin of every key path."""
    if path.is_dir():
        raise ScenarioError("is a directory, not a scenario file", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text ({exc.reason})", file=path) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read file: {exc.strerror or exc}", file=path) from None
    yaml = YAML(typ="rt")
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = "; ".join(str(m) for m in (exc.context, exc.problem) if m)
        raise ScenarioError(
            f"invalid YAML: {message}",
            file=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", file=path) from None
    if root is None:
        raise ScenarioError("file is empty (a scenario is a mapping of keys)", file=path)
    if not isinstance(root, MappingNode):
        raise ScenarioError(
            "the top level must be a mapping of keys (name:, pathway:, ...)",
            file=path,
            line=root.start_mark.line + 1,
            column=root.start_mark.column + 1,
        )
    origins: dict[KeyPath, Origin] = {(): _origin(path, root)}
    data = _build(root, (), "", path, yaml, origins, ())
    return data, origins


def _origin(path: Path, node: Node) -> Origin:
    """1-based position of a node."""
    return Origin(path, node.start_mark.line + 1, node.start_mark.column + 1)


def _show_tag(tag: str) -> str:
    """`tag:yaml.org,2002:x` as users write it, `!!x`."""
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _build(
    node: Node,
    keypath: KeyPath,
    dotted: str,
    file: Path,
    yaml: YAML,
    origins: dict[KeyPath, Origin],
    active: tuple[int, ...],
) -> Any:
    """Turn a node into plain data, checking tags and recording the origin of every key.

    `dotted` is the key path as shown to users; `active` holds the ids of the collection
    nodes being built, to catch recursive aliases.
    """

    def fail(message: str, at: Node = node, key: str = dotted) -> ScenarioError:
        pos = _origin(file, at)
        return ScenarioError(message, file=file, line=pos.line, column=pos.column, key=key)

    tag = str(node.tag)
    if isinstance(node, ScalarNode):
        if tag == _CORE + "merge":
            raise fail("YAML merge keys (<<) are not supported; use extends: to share settings")
        if tag not in _SCALAR_TAGS:
            raise fail(f"tag {_show_tag(tag)} is not allowed (scenario files hold plain data only)")
        try:
            value = yaml.constructor.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            kind = "date" if tag == _CORE + "timestamp" else _show_tag(tag)[2:]
            raise fail(f"invalid {kind} {node.value!r}: {exc}") from None
        return _plain(value)
    if id(node) in active:
        raise fail("recursive alias: a value may not contain itself")
    active = active + (id(node),)
    if isinstance(node, SequenceNode):
        if tag != _CORE + "seq":
            raise fail(f"tag {_show_tag(tag)} is not allowed (scenario files hold plain data only)")
        items = []
        for i, item in enumerate(node.value):
            origins[keypath + (i,)] = _origin(file, item)
            items.append(_build(item, keypath + (i,), f"{dotted}[{i}]", file, yaml, origins, active))
        return items
    assert isinstance(node, MappingNode)
    if tag != _CORE + "map":
        raise fail(f"tag {_show_tag(tag)} is not allowed (scenario files hold plain data only)")
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise fail("a key must be a plain word or number, not a list or mapping", key_node)
        key = _build(key_node, keypath, dotted, file, yaml, origins, active)
        child = f"{dotted}.{key}" if dotted else str(key)
        if key in mapping:
            where = origins[keypath + (key,)]
            raise fail(f"duplicate key {key!r} (first given at line {where.line})", key_node, child)
        origins[keypath + (key,)] = _origin(file, key_node)
        mapping[key] = _build(value_node, keypath + (key,), child, file, yaml, origins, active)
    return mapping


def _plain(value: Any) -> Any:
    """ruamel's round-trip scalar subclasses (ScalarFloat, ScalarInt, ...) as plain types."""
    if isinstance(value, (bool, ScalarBoolean)):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(value.isoformat())
    return value


# --- extends ----------------------------------------------------------------------------


def _load_chain(
    path: Path, seen: tuple[Path, ...]
) -> tuple[dict, dict[KeyPath, Origin], list[Path]]:
    """Load a file and, first, the chain of files it extends.

    Returns the merged data, the origin of every key path, and the files, base first.
    `seen` holds the (absolute) files extending this one, to detect cycles.
    """
    data, origins = _read_yaml(path)
    if "extends" not in data:
        return data, origins, [path]
    base_name = data.pop("extends")
    at = origins.pop(("extends",))
    where = dict(file=path, line=at.line, column=at.column, key="extends")
    if not isinstance(base_name, str) or not base_name.strip():
        raise ScenarioError(f"extends must be a file name, got {base_name!r}", **where)
    base = Path(os.path.normpath(path.parent / base_name))
    chain = seen + (_absolute(path),)
    if _absolute(base) in chain:
        cycle = " -> ".join(str(p) for p in chain[chain.index(_absolute(base)) :] + (_absolute(base),))
        raise ScenarioError(f"extends cycle: {path} extends {base}, which leads back to it ({cycle})", **where)
    if not base.is_file():
        reason = "is a directory" if base.is_dir() else "does not exist"
        raise ScenarioError(f"cannot extend {base_name!r}: {base} {reason}", **where)
    base_data, base_origins, files = _load_chain(base, chain)
    merged = _merge(base_data, data, base_origins, origins, ())
    return merged, base_origins, files + [path]


def _merge(
    base: dict,
    over: dict,
    origins: dict[KeyPath, Origin],
    over_origins: dict[KeyPath, Origin],
    prefix: KeyPath,
) -> dict:
    """Deep-merge `over` onto `base`: mappings merge key by key, anything else replaces.

    `origins` (the base's) is updated in place so that every key path of the result points
    at the file that gave its final value.
    """
    out = dict(base)
    origins[prefix] = over_origins[prefix]
    for key, value in over.items():
        path = prefix + (key,)
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, origins, over_origins, path)
            continue
        out[key] = value
        for stale in [p for p in origins if p[: len(path)] == path]:
            del origins[stale]
        origins.update({p: o for p, o in over_origins.items() if p[: len(path)] == path})
    return out


# --- data files -------------------------------------------------------------------------


def _resolve_data_paths(
    data: dict, origins: dict[KeyPath, Origin], top: Path
) -> tuple[dict[str, Path], list[ScenarioError]]:
    """Absolute paths of `data.la_inputs` and `data.history`, and errors for missing ones.

    A path is relative to the file that set it (the top file for defaults). Paths written
    in the merged data are rewritten relative to the top file, so the resolved scenario
    means the same files wherever its values came from.
    """
    section = data.get("data")
    if section is None:
        section = {}
    if not isinstance(section, dict):
        return {}, []  # the model reports the wrong type
    paths: dict[str, Path] = {}
    problems: list[ScenarioError] = []
    start = data.get("start", Scenario.model_fields["start"].default)
    year = getattr(start, "year", None)
    for key in _DATA_KEYS:
        value = section.get(key, DataFiles.model_fields[key].default)
        if not isinstance(value, str):
            continue  # the model reports the wrong type (or an optional file is not set)
        origin = origins.get(("data", key))
        setter = origin.file if origin else top
        # `{year}` stands for the start year: the starting state of a run starting on
        # 1 April Y is the table for 31 March Y
        actual = value.replace("{year}", str(year)) if year is not None else value
        resolved = _absolute(setter.parent / Path(actual).expanduser())
        paths[key] = resolved
        if key in section and not Path(value).is_absolute():
            rel = Path(os.path.relpath(setter.parent / value, _absolute(top).parent)).as_posix()
            section[key] = rel
        if not resolved.is_file():
            reason = "is a directory, not a file" if resolved.is_dir() else "not found"
            problems.append(
                ScenarioError(
                    f"data file {value!r} {reason} (looked for {resolved})",
                    file=setter,
                    line=origin.line if origin else None,
                    column=origin.column if origin else None,
                    key=f"data.{key}",
                )
            )
    return paths, problems


# --- validation errors ------------------------------------------------------------------


def _translate(
    exc: pydantic.ValidationError, data: dict, origins: dict[KeyPath, Origin], top: Path
) -> list[ScenarioError]:
    """pydantic errors as ScenarioErrors at the key path and origin of the offending value.

    The errors of the alternatives of a union (`p: 1.3` is neither a probability nor
    'rest') are folded into one.
    """
    found: list[tuple[KeyPath, str, str]] = []  # key path, key shown, message
    alternatives: dict[KeyPath, list[dict]] = {}
    for err in exc.errors(include_url=False):
        keypath, rest = _split_loc(err["loc"], data)
        key = _dotted(keypath, data)
        if err["type"] == "missing":
            key = ".".join([key, *map(str, rest)] if key else map(str, rest))
        elif rest and rest[0] != "[key]":
            alternatives.setdefault(keypath, []).append(err)
            continue
        found.append((keypath, key, _message(err, keypath)))
    for keypath, errs in alternatives.items():
        found.append((keypath, _dotted(keypath, data), _union_message(errs, keypath)))
    problems = []
    for keypath, key, message in found:
        origin = _nearest_origin(keypath, origins, top)
        if not keypath:  # about the whole file (e.g. a missing top-level key): no line
            problems.append(ScenarioError(message, file=origin.file, key=key))
            continue
        problems.append(
            ScenarioError(message, file=origin.file, line=origin.line, column=origin.column, key=key)
        )
    return problems


def _split_loc(loc: tuple, data: Any) -> tuple[KeyPath, tuple]:
    """Split a pydantic `loc` into the key path present in the data and the rest
    (a missing field, `[key]`, or the names of union alternatives)."""
    keypath: list[Any] = []
    current = data
    for i, seg in enumerate(loc):
        if isinstance(current, dict):
            key = seg if seg in current else next((k for k in current if str(k) == str(seg)), None)
            if key is None:
                return tuple(keypath), tuple(loc[i:])
            keypath.append(key)
            current = current[key]
        elif isinstance(current, list) and isinstance(seg, int) and 0 <= seg < len(current):
            keypath.append(seg)
            current = current[seg]
        else:
            return tuple(keypath), tuple(loc[i:])
    return tuple(keypath), ()


def _dotted(keypath: KeyPath, data: Any) -> str:
    """A key path as users read it: `pathway.referral.exits.closed.p`, `local_variation[1].index`."""
    text = ""
    current = data
    for seg in keypath:
        if isinstance(current, list):
            text += f"[{seg}]"
        else:
            text += f".{seg}" if text else str(seg)
        current = current[seg]
    return text


def _nearest_origin(keypath: KeyPath, origins: dict[KeyPath, Origin], top: Path) -> Origin:
    """Origin of a key path, or of its nearest ancestor that has one."""
    for n in range(len(keypath), -1, -1):
        if keypath[:n] in origins:
            return origins[keypath[:n]]
    return Origin(top, 1, 1)


def _union_message(errs: list[dict], keypath: KeyPath) -> str:
    """One message for a value that fits none of a union's alternatives: the first error
    that is not a mere type mismatch (e.g. 'less than or equal to 1'), else all of them."""
    specific = [e for e in errs if not _is_type_mismatch(e["type"])]
    if specific:
        return _message(specific[0], keypath)
    first, *others = dict.fromkeys(_message(e, keypath, got=False) for e in errs)
    others = [m.removeprefix("Input should be ") for m in others]
    return ", or ".join([first, *others]) + _got(errs[0])


def _is_type_mismatch(error_type: str) -> bool:
    """Whether a pydantic error only says the value is of another kind than expected."""
    return error_type == "literal_error" or error_type.endswith(("_type", "_parsing"))


def _message(err: dict, keypath: KeyPath, got: bool = True) -> str:
    """A readable message for one pydantic error."""
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        return f"unknown key {keypath[-1]!r}" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
    if kind == "missing":
        return "required key is missing"
    message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if err["loc"][-1:] == ("[key]",):
        return f"invalid key {err['input']!r}: {message}"
    return message + (_got(err) if got else "")


def _got(err: dict) -> str:
    """` (got X)`: the offending scalar, unless the message already shows it."""
    value = err.get("input")
    if isinstance(value, (dict, list)) or err["type"] in ("missing", "extra_forbidden"):
        return ""
    if isinstance(value, (bool, type(None))):
        shown = json.dumps(value)
    elif isinstance(value, (int, float)):
        return f" (got {value})"
    else:
        shown = repr(value) if isinstance(value, str) else str(value)
    return "" if str(value) in err["msg"] else f" (got {shown})"


def _allowed_keys(loc: tuple) -> list[str]:
    """Field names of the schema model at `loc` (empty if it is not a model)."""
    candidates: list[Any] = [Scenario]
    for seg in loc:
        nxt: list[Any] = []
        for tp in _unwrap(candidates):
            if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
                if isinstance(seg, str) and seg in tp.model_fields:
                    nxt.append(tp.model_fields[seg].annotation)
            elif typing.get_origin(tp) is dict:
                nxt.append(typing.get_args(tp)[1])
            elif typing.get_origin(tp) in (list, tuple):
                nxt.extend(typing.get_args(tp)[:1])
        candidates = nxt
    models = [t for t in _unwrap(candidates) if isinstance(t, type) and issubclass(t, pydantic.BaseModel)]
    return list(models[0].model_fields) if models else []


def _unwrap(types_: list[Any]) -> list[Any]:
    """Strip `Annotated[...]` and split unions (`X | None`) into their members."""
    out: list[Any] = []
    for tp in types_:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            out.extend(_unwrap([typing.get_args(tp)[0]]))
        elif origin in (Union, types.UnionType):
            out.extend(_unwrap(list(typing.get_args(tp))))
        else:
            out.append(tp)
    return out
