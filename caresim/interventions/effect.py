"""Effect sizes with uncertainty, and how an effect runs over time.

A published effect comes as a point and an interval. `draw_ratio` turns a standard normal
draw into a hazard ratio from the split lognormal with median `central` whose
(1 - level)/2 and (1 + level)/2 quantiles are the interval's ends: the log ratio is normal
with a different spread below and above the median, so an asymmetric published interval
is reproduced exactly. z = 0 gives the central value.

`waning_schedule` turns `Waning` into breakpoints (days since onset) and the share of the
log hazard ratio in force from each: the ratio in force is HR ** share. Linear waning on
the log scale is represented by `steps` equal steps, each at the share of its midpoint,
so the schedule stays piecewise constant and stays can be drawn exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from caresim.scenario.model import HazardRatio, Waning


def draw_ratio(hr: HazardRatio, z: float) -> float:
    """The hazard ratio at standard normal deviate `z` (0: the central value)."""
    if hr.interval is None or z == 0.0:
        return float(hr.central)
    zq = float(special.ndtri(0.5 + hr.level / 2.0))
    lo, hi = hr.interval
    side = hi if z > 0 else lo
    sigma = abs(np.log(side) - np.log(hr.central)) / zq
    return float(np.exp(np.log(hr.central) + z * sigma))


def waning_schedule(w: Waning) -> tuple[np.ndarray, np.ndarray]:
    """(breaks, shares): from `breaks[j]` days after onset the share of the log hazard ratio
    in force is `shares[j]`; before breaks[0] (= 0) nothing. The last share is 0 when the
    effect ends, else 1 (lasting)."""
    breaks = [0.0]
    shares = [0.0 if w.onset_days > 0 else 1.0]
    if w.onset_days > 0:
        breaks.append(w.onset_days)
        shares.append(1.0)
    if w.full_days is not None:
        t = w.onset_days + w.full_days
        if w.waning_days > 0:
            step = w.waning_days / w.steps
            for i in range(w.steps):
                breaks.append(t + i * step)
                shares.append(1.0 - (i + 0.5) / w.steps)
            t += w.waning_days
        breaks.append(t)
        shares.append(0.0)
    return np.array(breaks), np.array(shares)
