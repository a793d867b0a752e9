"""The `uncertain:` block of a scenario: parameters a sensitivity sweep varies, with their
distributions, and the dotted paths that name them.

An entry names one value of the scenario by its path and gives its distribution and
provenance::

    uncertain:
      - name: court_capacity
        path: court.capacity_cases.value
        dist: lognormal
        interval: [3855, 4891]          # 95% interval (level: 0.95) -> median and sigma
        sources: [calibration/fitted/manifest.json]
      - name: fgc_delay_hr
        path: interventions.fgc.effects[0].central
        dist: evidence                  # the effect's own interval (split lognormal)

Paths are dotted keys into the scenario as resolved (after `extends:`), with `[k]` for
the k-th item of a list: `interventions.fgc.effects[0].central`,
`pathway.child_protection_plan.exits.pre_proceedings.p`,
`interventions.fgc.rollout.waves[2].start`. A path must reach an existing number or date.

Distributions (all in the value's own units):

- `uniform`: `low`, `high`.
- `triangular`: `low`, `mode`, `high`.
- `normal`: `mean`, `sd`, optional `bounds: [low, high]` (either may be null) at which it
  is truncated.
- `lognormal`: `median` and `sigma` (of the log), or an `interval` with its `level`
  (default 0.95), whose geometric midpoint is the median.
- `evidence`: only for an intervention effect's `central`
  (`interventions.<name>.effects[<k>].central`): the effect's own split lognormal, with
  median `central` and the quantiles (1 -/+ level)/2 at the ends of its `interval`
  (`caresim.interventions.effect.draw_ratio`, applied in the analysis layer).

**Dates** (e.g. a rollout wave's `start`) are uncertain as an offset in days from the date
written in the scenario: `dist: uniform, low: 0, high: 365` on
`interventions.fgc.rollout.waves[2].start` means "the third wave starts up to a year late".
Offsets are rounded to whole days; samples and indices report the offset in days.
Integer values are rounded to the nearest integer.

**Sampling.** Every distribution is sampled through its quantile function: a sweep draws
a point u in the unit hypercube (SALib, with bounds [0, 1] for every parameter) and each
parameter takes the value `quantile(u)`. So SALib's designs (Sobol', Morris grids, FAST
curves, Latin hypercubes) apply unchanged to any distribution, and indices are about the
parameters' probability scales. Distributions with an unbounded tail (normal without a
bound on that side, lognormal, evidence) are clipped at their 0.1st and 99.9th percentiles
(`TAIL`), so the corners of a design (Morris uses u = 0 and 1) stay finite.

The checks made when a scenario is validated (`check_uncertain`, called by the `Scenario`
model, so the loader reports `file:line:col`): names and paths unique; every path reaches
an existing number or date (with a suggestion for a misspelt key); `evidence` only on an
effect's `central` that has an interval; and the scenario stays valid with each parameter
at either end of its distribution (all others as written), e.g. a probability cannot be
swept above 1.

This module is the lowest layer (like `caresim.scenario.model`, which imports it) and must
not import the rest of caresim.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError
from scipy import special

#: Unbounded tails are clipped at these quantiles (0.1% and 99.9%).
TAIL = 1e-3

DistName = Literal["uniform", "triangular", "normal", "lognormal", "evidence"]

#: parameters each distribution needs and those it may take
_NEEDS: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "normal": ("mean", "sd"),
    "lognormal": (),
    "evidence": (),
}
_TAKES: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "normal": ("mean", "sd", "bounds"),
    "lognormal": ("median", "sigma", "interval", "level"),
    "evidence": (),
}
#: distributions that can take their ends from the scenario's `range` (from_range)
_FROM_RANGE = ("uniform", "triangular", "lognormal")
_DIST_FIELDS = ("low", "high", "mode", "mean", "sd", "bounds", "median", "sigma", "interval", "level")
#: an intervention effect's central value: where `evidence` may be used
_EFFECT_CENTRAL = re.compile(r"^interventions\.([a-z0-9_]+)\.effects\[(\d+)\]\.central$")
#: top-level keys whose values are not model parameters
_NOT_SWEPT = ("name", "description", "run", "data", "uncertain")


class UncertainParam(BaseModel):
    """One uncertain parameter: a value of the scenario (by `path`) and its distribution.

    Give the fields of the chosen `dist` only (see the module docstring), and say where
    the distribution comes from (`sources`, `assumption`, `note`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = Field(
        description="short name used in outputs (indices.csv, samples.parquet, figures)")
    path: str = Field(description="dotted path of a number or date in the scenario, "
                                  "e.g. interventions.fgc.effects[0].central")
    dist: DistName
    low: float | None = Field(None, description="uniform, triangular: lower end")
    high: float | None = Field(None, description="uniform, triangular: upper end")
    mode: float | None = Field(None, description="triangular: most likely value")
    mean: float | None = Field(None, description="normal: mean")
    sd: PositiveFloat | None = Field(None, description="normal: standard deviation")
    bounds: tuple[float | None, float | None] | None = Field(
        None, description="normal: truncate at [low, high] (either may be null)")
    median: PositiveFloat | None = Field(None, description="lognormal: median")
    sigma: PositiveFloat | None = Field(None, description="lognormal: sd of the log")
    interval: tuple[PositiveFloat, PositiveFloat] | None = Field(
        None, description="lognormal: interval at `level`, instead of median and sigma")
    level: float | None = Field(None, gt=0.5, lt=1.0, description="lognormal: coverage of `interval` (default 0.95)")
    from_range: bool = Field(
        False, description="take low and high (uniform, triangular) or the interval (lognormal) from "
                           "the `range` written beside the value; triangular's mode defaults to the value")
    sources: list[str] = Field(default_factory=list, description="ids in calibration/published_figures.csv or dfe:<table>")
    note: str | None = Field(None, description="how the distribution was derived")
    assumption: str | None = Field(None, description="name of the assumption when nothing is published")

    @model_validator(mode="after")
    def _fields_for_dist(self) -> "UncertainParam":
        given = [f for f in _DIST_FIELDS if f in self.model_fields_set and getattr(self, f) is not None]
        extra = [f for f in given if f not in _TAKES[self.dist]]
        if extra:
            takes = ", ".join(_TAKES[self.dist]) or "no parameters (they come from the effect)"
            raise ValueError(f"dist '{self.dist}' takes {takes}; remove {', '.join(extra)}")
        if self.from_range:
            if self.dist not in _FROM_RANGE:
                raise ValueError(f"from_range works with {', '.join(_FROM_RANGE)}, not '{self.dist}'")
            clash = [f for f in ("low", "high", "interval") if f in given]
            if clash:
                raise ValueError(f"from_range takes {', '.join(clash)} from the scenario's range; remove them")
            return self
        missing = [f for f in _NEEDS[self.dist] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"dist '{self.dist}' needs {', '.join(missing)}")
        if self.dist in ("uniform", "triangular"):
            assert self.low is not None and self.high is not None
            if not self.low < self.high:
                raise ValueError(f"low {self.low} must be below high {self.high}")
            if self.dist == "triangular" and not self.low <= self.mode <= self.high:  # type: ignore[operator]
                raise ValueError(f"mode {self.mode} is outside [{self.low}, {self.high}]")
        if self.dist == "normal" and self.bounds is not None:
            lo, hi = self.bounds
            if lo is not None and hi is not None and not lo < hi:
                raise ValueError(f"bounds must be increasing, got [{lo}, {hi}]")
            if (lo is not None and self.mean < lo) or (hi is not None and self.mean > hi):  # type: ignore[operator]
                raise ValueError(f"mean {self.mean} is outside bounds [{lo}, {hi}]")
        if self.dist == "lognormal":
            by_sigma = self.median is not None and self.sigma is not None
            by_interval = self.interval is not None
            if by_sigma == by_interval or (by_interval and (self.median is not None or self.sigma is not None)):
                raise ValueError("dist 'lognormal' needs either median and sigma, or interval "
                                 "(and optionally level)")
            if self.level is not None and not by_interval:
                raise ValueError("level goes with interval")
            if by_interval and not self.interval[0] < self.interval[1]:  # type: ignore[index]
                raise ValueError(f"interval must be increasing, got {list(self.interval)}")  # type: ignore[arg-type]
        return self

    # --- the distribution -----------------------------------------------------------

    def lognormal_parameters(self) -> tuple[float, float]:
        """(median, sigma) of a lognormal entry."""
        if self.interval is not None:
            lo, hi = self.interval
            z = float(special.ndtri(0.5 + (self.level or 0.95) / 2.0))
            return float(np.sqrt(lo * hi)), float((np.log(hi) - np.log(lo)) / (2.0 * z))
        assert self.median is not None and self.sigma is not None
        return float(self.median), float(self.sigma)

    def quantile(self, u: Any) -> np.ndarray:
        """The values at probabilities `u` (array-like in [0, 1]), in the value's units
        (days of offset for a date). Unbounded tails are clipped at `TAIL`. Raises
        `ValueError` for `evidence`, whose quantiles need the effect (see
        `caresim.analysis.sensitivity`)."""
        u = np.asarray(u, dtype=float)
        if self.dist == "uniform":
            return self.low + u * (self.high - self.low)  # type: ignore[operator]
        if self.dist == "triangular":
            lo, c, hi = float(self.low), float(self.mode), float(self.high)  # type: ignore[arg-type]
            split = (c - lo) / (hi - lo)
            left = lo + np.sqrt(u * (hi - lo) * (c - lo))
            right = hi - np.sqrt((1.0 - u) * (hi - lo) * (hi - c))
            return np.where(u < split, left, right)
        if self.dist == "normal":
            mean, sd = float(self.mean), float(self.sd)  # type: ignore[arg-type]
            lo, hi = self.bounds if self.bounds is not None else (None, None)
            pa = float(special.ndtr((lo - mean) / sd)) if lo is not None else 0.0
            pb = float(special.ndtr((hi - mean) / sd)) if hi is not None else 1.0
            p = pa + u * (pb - pa)
            p = np.clip(p, pa if lo is not None else TAIL, pb if hi is not None else 1.0 - TAIL)
            x = mean + sd * special.ndtri(p)
            return np.clip(x, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
        if self.dist == "lognormal":
            median, sigma = self.lognormal_parameters()
            return np.exp(np.log(median) + sigma * special.ndtri(clip_tails(u)))
        raise ValueError("the evidence distribution's quantiles come from the intervention "
                         "effect (caresim.analysis.sensitivity.compile_parameters)")

    def ends(self) -> tuple[float, float]:
        """The smallest and largest values a sweep can give (quantiles 0 and 1, tails
        clipped). Not for `evidence`."""
        lo, hi = self.quantile([0.0, 1.0])
        return float(lo), float(hi)

    def resolved(self, doc: Any) -> "UncertainParam":
        """The entry with `from_range` filled in from the scenario `doc` (a dump of the
        validated scenario): `low`/`high` or `interval` from the `range` beside the value,
        triangular's `mode` from the value unless given. Other entries are returned as they
        are. Raises `PathError` or `ValueError` (no range there, or a mode outside it)."""
        if not self.from_range:
            return self
        parent, key = resolve_path(doc, self.path)
        rng = parent.get("range") if isinstance(parent, dict) else None
        if rng is None:
            where = format_path(parse_path(self.path)[:-1]) or "the top level"
            raise ValueError(f"from_range: no range is written in {where} (beside {key})")
        lo, hi = (float(v) for v in rng)
        data = self.model_dump(exclude_none=True, exclude={"from_range"})
        if self.dist == "lognormal":
            data["interval"] = (lo, hi)
        else:
            data.update(low=lo, high=hi)
            if self.dist == "triangular" and self.mode is None:
                data["mode"] = float(parent[key])
        try:
            return UncertainParam.model_validate(data)
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"from_range {[lo, hi]}: {msg}") from None


def clip_tails(u: Any) -> np.ndarray:
    """Probabilities clipped to [TAIL, 1 - TAIL] (for distributions with unbounded tails)."""
    return np.clip(np.asarray(u, dtype=float), TAIL, 1.0 - TAIL)


# --- paths -------------------------------------------------------------------------------

_SEGMENT = re.compile(r"^(?P<key>[^.\[\]\s]+)?(?P<idx>(?:\[\d+\])*)$")


class PathError(ValueError):
    """A path that does not parse or does not lead to a value. `suggestion` is a corrected
    path when a key looks misspelt."""

    def __init__(self, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


def parse_path(path: str) -> tuple[str | int, ...]:
    """`a.b[2].c` -> ('a', 'b', 2, 'c'). Keys are strings; list indices are ints (a key
    made of digits is also accepted as an index into a list by `resolve_path`)."""
    if not isinstance(path, str) or not path or path != path.strip():
        raise PathError(f"malformed path {path!r}: write dotted keys, e.g. court.capacity_cases.value")
    out: list[str | int] = []
    for part in path.split("."):
        m = _SEGMENT.match(part)
        if m is None or not (m["key"] or m["idx"]):
            raise PathError(f"malformed path {path!r}: write dotted keys with [k] for list "
                            "items, e.g. interventions.fgc.effects[0].central")
        if m["key"]:
            out.append(m["key"])
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m["idx"]))
    return tuple(out)


def format_path(keys: tuple[str | int, ...]) -> str:
    """('a', 'b', 2, 'c') -> `a.b[2].c`."""
    text = ""
    for k in keys:
        text += f"[{k}]" if isinstance(k, int) else (f".{k}" if text else str(k))
    return text


def resolve_path(doc: Any, path: str) -> tuple[Any, Any]:
    """The container holding the value at `path` in nested dicts/lists, and the key or
    index of the value in it. Raises `PathError` naming the first key that is missing (with
    a suggested path if a key is close to an existing one)."""
    keys = parse_path(path)
    node = doc
    for i, k in enumerate(keys):
        here = format_path(keys[:i]) or "the top level"
        if isinstance(node, list):
            idx = k if isinstance(k, int) else (int(k) if str(k).isdigit() else None)
            if idx is None:
                raise PathError(f"{here} is a list: use an index such as [0] to pick an item, not .{k}")
            if not 0 <= idx < len(node):
                raise PathError(f"no item [{idx}] in {here}: it has {len(node)} item(s)")
            k = idx
        elif isinstance(node, dict):
            if isinstance(k, int):
                raise PathError(f"{here} is a mapping, not a list: no item [{k}]")
            if k not in node:
                alt = next((key for key in node if str(key) == k), None)
                if alt is None:
                    close = difflib.get_close_matches(k, [str(x) for x in node], n=1)
                    suggestion = format_path(keys[:i] + (close[0],) + keys[i + 1:]) if close else None
                    raise PathError(f"no key {k!r} in {here}", suggestion)
                k = alt
        else:
            raise PathError(f"{here} is a value ({node!r}), it has no key {k!r}")
        if i == len(keys) - 1:
            return node, k
        node = node[k]
    raise PathError(f"malformed path {path!r}")  # pragma: no cover (parse_path rejects "")


def get_value(doc: Any, path: str) -> Any:
    """The value at `path` (raises `PathError`)."""
    parent, key = resolve_path(doc, path)
    return parent[key]


def set_value(doc: Any, path: str, value: Any) -> None:
    """Set the existing value at `path` (raises `PathError`)."""
    parent, key = resolve_path(doc, path)
    parent[key] = value


def value_kind(value: Any) -> str | None:
    """'integer', 'number' or 'date' for a value a sweep can vary; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return "date"
    return None


def apply_value(doc: dict, path: str, value: float, kind: str, written: Any = None) -> None:
    """Set the value at `path` in a resolved (JSON-able) scenario `doc`.

    `kind` is from `value_kind`: an integer is rounded; a date is `written` (the date in
    the swept scenario) plus `value` days, rounded. Setting an intervention effect's
    `central` drops its `interval`: in a sweep the effect is a point value (the sample's),
    so it may fall outside the published interval."""
    if kind == "integer":
        new: Any = int(round(value))
    elif kind == "date":
        base = written if isinstance(written, dt.date) else dt.date.fromisoformat(str(written))
        new = (base + dt.timedelta(days=int(round(value)))).isoformat()
    else:
        new = float(value)
    set_value(doc, path, new)
    if _EFFECT_CENTRAL.match(normal_path(path)):
        parent, _ = resolve_path(doc, path)
        parent["interval"] = None


def normal_path(path: str) -> str:
    """A path written one way: `effects.0.central` and `effects[0].central` both read
    `effects[0].central` (for comparing paths)."""
    return format_path(tuple(int(k) if isinstance(k, str) and k.isdigit() else k
                             for k in parse_path(path)))


def effect_of(path: str) -> tuple[str, int] | None:
    """(intervention name, effect index) if `path` is an effect's `central`, else None."""
    m = _EFFECT_CENTRAL.match(normal_path(path))
    return (m.group(1), int(m.group(2))) if m else None


# --- validation inside the Scenario model ------------------------------------------------


def check_uncertain(scenario: Any) -> None:
    """Check a validated scenario's `uncertain` entries against the scenario itself.

    Raises `pydantic_core.ValidationError` with one error per problem located at
    `uncertain[i].<field>`, so the loader reports the file, line and key. Called by
    `Scenario`'s validator (it has to see the whole scenario)."""
    originals = list(getattr(scenario, "uncertain", []) or [])
    entries = list(originals)  # with from_range resolved
    if not originals:
        return
    errors: list[InitErrorDetails] = []

    def fail(i: int, field: str, message: str, value: Any) -> None:
        errors.append(InitErrorDetails(
            type=PydanticCustomError("uncertain", "{message}", {"message": message}),
            loc=("uncertain", i, field), input=value))

    python = scenario.model_dump()  # dates as dates, to tell them from numbers
    seen_names: dict[str, int] = {}
    seen_paths: dict[str, int] = {}
    kinds: dict[int, tuple[str, Any]] = {}
    for i, p in enumerate(entries):
        if p.name in seen_names:
            fail(i, "name", f"duplicate name {p.name!r} (also uncertain[{seen_names[p.name]}])", p.name)
        seen_names.setdefault(p.name, i)
        try:
            canonical = normal_path(p.path)
            if parse_path(p.path)[0] in _NOT_SWEPT:
                raise PathError(f"{parse_path(p.path)[0]}: is not a model parameter "
                                "(run settings are the sweep's options: --seed, --scale, --replications)")
            value = get_value(python, p.path)
        except PathError as exc:
            hint = f"; did you mean {exc.suggestion!r}?" if exc.suggestion else ""
            fail(i, "path", f"{exc.message} (path {p.path!r}){hint}", p.path)
            continue
        if canonical in seen_paths:
            fail(i, "path", f"duplicate path {p.path!r} (also uncertain[{seen_paths[canonical]}])", p.path)
            continue
        seen_paths[canonical] = i
        try:
            entries[i] = p = p.resolved(python)
        except ValueError as exc:
            fail(i, "from_range", str(exc), True)
            continue
        kind = value_kind(value)
        if kind is None:
            shown = "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) \
                else f"{value!r}"
            fail(i, "path", f"{p.path!r} is {shown}, not a number or date", p.path)
            continue
        effect = effect_of(p.path)
        if p.dist == "evidence":
            if effect is None:
                fail(i, "dist", "dist 'evidence' is for an intervention effect's central value "
                     "(interventions.<name>.effects[<k>].central)", p.dist)
                continue
            name, k = effect
            if scenario.interventions[name].effects[k].interval is None:
                fail(i, "dist", f"dist 'evidence': interventions.{name}.effects[{k}] has no interval "
                     "to draw from (give one, or another distribution)", p.dist)
                continue
        kinds[i] = (kind, value)
    if errors:
        raise ValidationError.from_exception_data("Scenario", errors)
    _check_ends(scenario, entries, kinds, fail, [p.from_range for p in originals])
    if errors:
        raise ValidationError.from_exception_data("Scenario", errors)


def _check_ends(scenario: Any, entries: list[UncertainParam], kinds: dict[int, tuple[str, Any]],
                fail, from_range: list[bool]) -> None:
    """Each parameter at either end of its distribution, the others as written: the
    scenario must stay valid (e.g. a swept probability stays in [0, 1], exits still sum to
    at most 1)."""
    base = scenario.model_dump(mode="json")
    base["uncertain"] = []
    model = type(scenario)
    for i, p in enumerate(entries):
        if p.dist == "evidence" or i not in kinds:
            continue  # an effect's ratio is positive whatever the draw
        kind, written = kinds[i]
        for end, value in zip(("low", "high"), p.ends()):
            doc = copy.deepcopy(base)
            apply_value(doc, p.path, value, kind, written)
            try:
                model.model_validate(doc)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = format_path(_present(doc, tuple(first["loc"])))
                msg = first["msg"].removeprefix("Value error, ")
                shown = f"{value:g} days from {written}" if kind == "date" else f"{value:g}"
                field = "from_range" if from_range[i] else _end_field(p, end)
                fail(i, field, f"at its {end} end ({shown}) the scenario is invalid: "
                     f"{where + ': ' if where else ''}{msg}", getattr(p, field, None))
                break


def _present(doc: Any, loc: tuple) -> tuple:
    """The part of a pydantic error location that exists in `doc` (drops union tags)."""
    out: list[Any] = []
    node = doc
    for seg in loc:
        if isinstance(node, dict) and seg in node:
            node = node[seg]
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            node = node[seg]
        else:
            break
        out.append(seg)
    return tuple(out)


def _end_field(p: UncertainParam, end: str) -> str:
    """The entry's key to point at when its `end` ('low'/'high') breaks the scenario."""
    if p.dist in ("uniform", "triangular"):
        return end
    if p.dist == "normal" and p.bounds is not None:
        return "bounds"
    if p.dist == "lognormal" and p.interval is not None:
        return "interval"
    return "dist"
