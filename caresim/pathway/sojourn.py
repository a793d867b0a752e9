"""Sojourn-time distributions, sampled by inversion so hazard multipliers act exactly.

Every stay is drawn from a survival probability `v` in (0, 1]: the duration is the time
`t` at which S(t) = v. A hazard multiplier `k` on the whole stay (the sum of the
cause-specific multipliers, weighted by the exit probabilities) turns the survival
function into S(t)**k, so its draw is S^-1(v**(1/k)); with k == 1 the draw is unchanged,
bit for bit. Durations are in days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from caresim.scenario.model import Sojourn


@dataclass(frozen=True)
class SojournDist:
    """A compiled sojourn distribution (days). Build with `SojournDist.from_spec`."""

    dist: str
    mean: float
    shape: float = 1.0  # weibull k / gamma k
    sigma: float = 1.0  # lognormal sigma
    edges: tuple[float, ...] = ()  # piecewise: band edges, starting at 0
    cum: tuple[float, ...] = ()  # piecewise: cumulative probability at each edge

    @classmethod
    def from_spec(cls, spec: Sojourn) -> "SojournDist":
        """Compile a validated scenario `Sojourn` into a sampler."""
        if spec.dist == "piecewise":
            assert spec.bands is not None
            edges = (0.0,) + tuple(float(b.upto) for b in spec.bands)
            cum = tuple(np.concatenate([[0.0], np.cumsum([b.p for b in spec.bands])]))
            cum = cum[:-1] + (1.0,)
            mids = np.diff(edges) / 2 + np.array(edges[:-1])
            mean = float(np.sum(np.diff(cum) * mids))
            return cls("piecewise", mean, edges=edges, cum=cum)
        assert spec.mean is not None
        return cls(
            spec.dist,
            float(spec.mean),
            shape=float(spec.shape or 1.0),
            sigma=float(spec.sigma or 1.0),
        )

    # -- parameters of the standard forms -------------------------------------------------
    @property
    def _weibull_scale(self) -> float:
        return self.mean / float(special.gamma(1.0 + 1.0 / self.shape))

    @property
    def _lognormal_mu(self) -> float:
        return float(np.log(self.mean) - 0.5 * self.sigma**2)

    # -- survival and its inverse ---------------------------------------------------------
    def survival(self, t: np.ndarray) -> np.ndarray:
        """S(t) = P(stay > t days)."""
        t = np.maximum(np.asarray(t, dtype=float), 0.0)
        if self.dist == "exponential":
            return np.exp(-t / self.mean)
        if self.dist == "weibull":
            return np.exp(-((t / self._weibull_scale) ** self.shape))
        if self.dist == "gamma":
            return special.gammaincc(self.shape, t * self.shape / self.mean)
        if self.dist == "lognormal":
            with np.errstate(divide="ignore"):
                z = (np.log(t) - self._lognormal_mu) / self.sigma
            return special.ndtr(-z)
        return 1.0 - np.interp(t, self.edges, self.cum)

    def inverse_survival(self, v: np.ndarray) -> np.ndarray:
        """The duration t with S(t) = v, for survival probabilities v in (0, 1]."""
        v = np.clip(np.asarray(v, dtype=float), 1e-300, 1.0)
        if self.dist == "exponential":
            return -self.mean * np.log(v)
        if self.dist == "weibull":
            return self._weibull_scale * (-np.log(v)) ** (1.0 / self.shape)
        if self.dist == "gamma":
            return special.gammainccinv(self.shape, v) * self.mean / self.shape
        if self.dist == "lognormal":
            return np.exp(self._lognormal_mu - self.sigma * special.ndtri(v))
        return np.interp(1.0 - v, self.cum, self.edges)

    def sample(self, u: np.ndarray, hazard: np.ndarray | float = 1.0) -> np.ndarray:
        """Durations from uniforms `u`, with the whole-stay hazard multiplied by `hazard`."""
        u = np.asarray(u, dtype=float)
        hazard = np.asarray(hazard, dtype=float)
        v = np.where(hazard == 1.0, u, u ** (1.0 / np.maximum(hazard, 1e-12)))
        return self.inverse_survival(v)

    def sample_residual(
        self, u: np.ndarray, elapsed: np.ndarray, hazard: np.ndarray | float = 1.0
    ) -> np.ndarray:
        """Remaining durations of stays that have lasted `elapsed` days already."""
        hazard = np.asarray(hazard, dtype=float)
        s_e = self.survival(elapsed)
        v = np.asarray(u, dtype=float) ** (1.0 / np.maximum(hazard, 1e-12)) * s_e
        t = self.inverse_survival(np.maximum(v, 1e-300))
        return np.maximum(t - elapsed, 0.0)

    def quantile(self, q: np.ndarray | float) -> np.ndarray:
        """The q-quantile of the duration."""
        return self.inverse_survival(1.0 - np.asarray(q, dtype=float))

    def sample_elapsed(self, u: np.ndarray, cap: np.ndarray | float = np.inf) -> np.ndarray:
        """Time already spent by stays in progress at a random moment of a steady flow.

        Under a constant entry rate the elapsed time of a stay in progress has density
        S(t)/E[T] (the renewal equilibrium). `cap` truncates it (e.g. a child's age).
        Drawn by inversion on a fine grid.
        """
        upper = float(self.quantile(1.0 - 1e-7))
        grid = np.linspace(0.0, upper, 4001)
        s = self.survival(grid)
        cdf = np.concatenate([[0.0], np.cumsum((s[1:] + s[:-1]) / 2 * np.diff(grid))])
        cdf /= cdf[-1]
        cap_q = np.interp(np.minimum(cap, upper), grid, cdf)
        return np.interp(np.asarray(u) * cap_q, cdf, grid)
