"""Numbers as a statistician would print them: no false precision, units always, intervals
beside every estimate.

The rule (used by the policy brief, `caresim report`):

- An estimate and its interval are rounded to the same step, and the step is set by the
  interval: two significant figures of the interval's width (76,912 to 80,148 is 3,236
  wide, so the step is 100). A point estimate never shows more than three significant
  figures, however narrow its interval, and an estimate with no interval (width 0, or a
  single replication) shows three.
- Counts (children, referrals, plans...) are whole numbers; percentages and weeks keep at
  most one decimal; money is shown in pounds, millions or billions of pounds, on the point
  estimate's scale (`£978 million (90% interval £955 million to £1,010 million)`).
- Differences carry their sign (+ or the true minus sign, U+2212); a difference rounded to
  zero is shown as 0.

`Estimate.point`, `.low` and `.high` are the rounded numbers as floats, so a test can check
what the brief printed against the table it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MINUS = "\u2212"

#: unit names of the metric registry (caresim.results.metrics) -> how they are written
COUNT_UNITS = frozenset({"children", "referrals", "enquiries", "plans", "cases", "families",
                         "case-weeks", "runs"})
#: the smallest step each kind of unit is rounded to
_MIN_STEP = {"count": 1.0, "percent": 0.1, "points": 0.1, "weeks": 0.1, "days": 1.0,
             "money": 1.0, "number": 1e-6}


def unit_kind(unit: str) -> str:
    """`count`, `money`, `percent`, `points`, `weeks`, `days` or `number` for a unit name."""
    if unit in COUNT_UNITS:
        return "count"
    if unit in ("GBP", "money"):
        return "money"
    if unit in ("percent", "points", "weeks", "days"):
        return unit
    return "number"


def _magnitude(x: float) -> int:
    return math.floor(math.log10(abs(x))) if x else 0


def rounding_step(point: float, low: float | None = None, high: float | None = None,
                  unit: str = "number") -> float:
    """The step that `point`, `low` and `high` are all rounded to (see the module rule)."""
    kind = unit_kind(unit)
    three_sf = 10.0 ** (_magnitude(point) - 2) if point else 1.0
    step = three_sf
    if low is not None and high is not None and all(map(math.isfinite, (low, high))):
        width = abs(high - low)
        if width > 0:
            step = max(10.0 ** (_magnitude(width) - 1), three_sf)
    return max(step, _MIN_STEP[kind])


def _round(x: float, step: float) -> float:
    r = round(x / step) * step
    # repair binary noise (0.30000000000000004) at the step's decimals
    decimals = max(0, -_magnitude(step))
    r = round(r, decimals)
    return 0.0 if r == 0 else r


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _plain(x: float, step: float, signed: bool) -> str:
    """`x` (already rounded to `step`) with thousands separators and a typographic sign."""
    text = f"{abs(x):,.{_decimals(step)}f}"
    if x < 0:
        return MINUS + text
    return ("+" + text) if signed and x > 0 else text


_MONEY_SCALES = ((1e9, " billion"), (1e6, " million"), (1.0, ""))
_SHORT = {" billion": "bn", " million": "m", "": ""}


def _money_scale(largest: float) -> tuple[float, str]:
    for size, word in _MONEY_SCALES:
        if largest >= size:
            return size, word
    return 1.0, ""


def _money(x: float, step: float, signed: bool, scale: tuple[float, str], short: bool) -> str:
    size, word = scale
    if short:
        word = _SHORT[word]
    body = _plain(x / size, step / size if step < size else 1.0, False)
    sign = ""
    if body.startswith(MINUS):
        sign, body = MINUS, body[1:]
    elif signed and x > 0:
        sign = "+"
    return f"{sign}£{body}{word}"


@dataclass(frozen=True)
class Estimate:
    """A rounded estimate with its interval, and the text to print."""

    point: float
    low: float | None
    high: float | None
    step: float
    unit: str
    point_text: str
    low_text: str | None
    high_text: str | None
    interval_name: str

    @property
    def text(self) -> str:
        """`78,400 children (90% interval 76,900 to 80,100)`."""
        if self.low_text is None:
            return self.point_text
        return f"{self.point_text} ({self.interval_name} {self.low_text} to {self.high_text})"

    @property
    def interval_text(self) -> str:
        return "" if self.low_text is None else f"{self.low_text} to {self.high_text}"


def _with_unit(number: str, unit: str, kind: str) -> str:
    if kind == "percent":
        return f"{number}%"
    if kind == "points":
        return f"{number} points"
    if kind in ("count", "weeks", "days") and unit:
        return f"{number} {unit}"
    return number


def estimate(point: float, low: float | None = None, high: float | None = None, *,
             unit: str = "number", signed: bool = False,
             interval_name: str = "90% interval", unit_on_interval: bool = False,
             short: bool = False) -> Estimate:
    """Round `point` and its interval together and write them with their unit.

    `unit` is a metric registry unit (`children`, `GBP`, `percent`, `weeks`...) or `points`
    (percentage points, for differences of shares) or `days`. The unit is written after the
    point estimate (and after each end of the interval with `unit_on_interval`); money is
    always written with its £ and scale (`£1.2 million`, or `£1.2m` with `short`, for tables)."""
    kind = unit_kind(unit)
    if low is not None and high is not None and (math.isnan(low) or math.isnan(high)):
        low = high = None
    step = rounding_step(point, low, high, unit)
    p = _round(point, step)
    lo = None if low is None else _round(low, step)
    hi = None if high is None else _round(high, step)
    if kind == "money":
        # the point estimate's scale, so `£978m (£955m to £1,010m)`, not `£0.978bn (...)`
        size = abs(p) if p else max(abs(v) for v in (p, lo, hi) if v is not None)
        scale = _money_scale(max(size, step))
        texts = [None if v is None else _money(v, step, signed, scale, short) for v in (p, lo, hi)]
    else:
        texts = [None if v is None else _plain(v, step, signed) for v in (p, lo, hi)]
        texts[0] = _with_unit(texts[0], unit, kind)
        if unit_on_interval or kind == "percent":
            texts[1:] = [None if t is None else _with_unit(t, unit, kind) for t in texts[1:]]
    return Estimate(p, lo, hi, step, unit, texts[0], texts[1], texts[2], interval_name)


def number(x: float, unit: str = "number", signed: bool = False) -> str:
    """One number with no interval, to three significant figures, with its unit."""
    return estimate(x, unit=unit, signed=signed).point_text


def as_published(x: float, unit: str = "number", signed: bool = False) -> str:
    """A published figure as it was published (up to four significant figures, no trailing
    zeros, not re-rounded to a simulated interval), with its unit."""
    text = f"{abs(x):,.4g}"
    if "e" in text:
        text = f"{abs(x):,.0f}"
    text = (MINUS if x < 0 else ("+" if signed and x > 0 else "")) + text
    return _with_unit(text, unit, unit_kind(unit))


def parse_number(text: str) -> float:
    """The value of a number as `estimate` writes it (`−£1.2 million`, `+3,400`, `45.2%`),
    for tests and for reading a brief back."""
    t = text.strip().replace(MINUS, "-").replace(",", "").replace("£", "").rstrip("%")
    factor = 1.0
    for size, word in _MONEY_SCALES:
        for ending in (word, _SHORT[word]):
            if ending and t.endswith(ending):
                t, factor = t[: -len(ending)], size
                break
        if factor != 1.0:
            break
    return float(t.split()[0]) * factor
