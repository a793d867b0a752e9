"""The pathway as arrays: each state's rules compiled for vectorised competing-risk draws.

A stay in a state ends by one of its exits. For a child with exit probabilities q (the
scenario's `p`, scaled by age and history multipliers and renormalised) and hazard
multipliers h on the named transitions, the cause-specific hazards are q_e * h_e times the
state's overall hazard. With h constant over the stay this is exact:
- the whole-stay hazard is multiplied by k = sum_e q_e h_e (see `SojournDist.sample`),
- the exit is e with probability q_e h_e / k.
With every h_e == 1, k == 1 and both draws are the same numbers as with no multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import get_args

import numpy as np

from caresim.pathway.sojourn import SojournDist
from caresim.scenario.model import (
    AGE_BAND_EDGES,
    HistoryFlag,
    AGE_BANDS,
    LEGAL_STATUSES,
    STATES,
    Scenario,
    StateRule,
)

STATE_INDEX = {s: i for i, s in enumerate(STATES)}
LEGAL_INDEX = {s: i for i, s in enumerate(LEGAL_STATUSES)}
HISTORY_FLAGS = get_args(HistoryFlag)  # the order of the history columns in draws
DAYS_PER_YEAR = 365.25


def age_band(age_years: np.ndarray) -> np.ndarray:
    """Index into AGE_BANDS of ages in years."""
    return np.searchsorted(np.asarray(AGE_BAND_EDGES[1:]), age_years, side="right")


@dataclass
class CompiledRule:
    """One state's (or one variant's) exits, ready for vectorised draws."""

    rule_id: int
    state: int
    variant: str
    sojourn: SojournDist
    labels: list[str]
    targets: np.ndarray  # int8 state index of each exit
    legal: np.ndarray  # int8 legal status on arrival (-1: none/unchanged)
    p: np.ndarray  # base exit probabilities
    age_mult: np.ndarray  # (n_age_bands, n_exits)
    hist_mult: np.ndarray  # (n_history_flags, n_exits)
    names: list[str]  # "from->to" per exit
    hazard: np.ndarray = field(default=None)  # (n_la, n_exits) hazard multipliers
    duration: np.ndarray = field(default=None)  # (n_la,) sojourn time multipliers
    age_duration: np.ndarray = field(default=None)  # (n_age_bands,) sojourn multipliers by age at entry, scale included
    trends: list = field(default_factory=list)  # (exit index, scenario Trend) pairs

    @property
    def n_exits(self) -> int:
        return len(self.labels)

    def time_scale(self, la: np.ndarray, band: np.ndarray) -> np.ndarray:
        """Multiplier of the sojourn's time for children of LAs `la` in age bands `band`
        (at the stay's start): the LA's (`duration`) times the age band's (the sojourn's
        `age_multiplier`, times its `scale`)."""
        return self.duration[la] * self.age_duration[band]

    def exit_probabilities(self, band: np.ndarray, history: np.ndarray,
                           year: np.ndarray | None = None) -> np.ndarray:
        """(n, n_exits) exit probabilities before hazard multipliers.

        `band`: age band index per child; `history`: (n, n_flags) boolean history flags;
        `year`: financial year (ending year) each stay starts in, for the trends.
        """
        q = self._exit_probabilities(band, history)
        if year is None or not self.trends:
            return q
        for e, tr in self.trends:
            m = tr.multiplier(year)
            # exit e's probability times m (at most 1); the other exits share the rest
            new = np.minimum(q[:, e] * m, 1.0)
            rest = 1.0 - q[:, e]
            scale = np.where(rest > 0, (1.0 - new) / np.where(rest > 0, rest, 1.0), 0.0)
            q = q * scale[:, None]
            q[:, e] = new
        return q

    def _exit_probabilities(self, band: np.ndarray, history: np.ndarray) -> np.ndarray:
        w = self.p[None, :] * self.age_mult[band]
        if history.any():
            for f in range(self.hist_mult.shape[0]):
                if (self.hist_mult[f] != 1.0).any():
                    w = np.where(history[:, f : f + 1], w * self.hist_mult[f][None, :], w)
        total = w.sum(axis=1, keepdims=True)
        return np.where(total > 0, w / np.where(total > 0, total, 1.0), self.p[None, :])

    def draw(
        self,
        u_exit: np.ndarray,
        u_time: np.ndarray,
        la: np.ndarray,
        band: np.ndarray,
        history: np.ndarray,
        extra_hazard: np.ndarray | None = None,
        elapsed: np.ndarray | None = None,
        year: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exit index and duration (days) for a batch of children starting (or, with
        `elapsed`, part-way through) a stay in this rule's state (in financial years
        `year`, for the trends)."""
        q = self.exit_probabilities(band, history, year)
        h = self.hazard[la]
        if extra_hazard is not None:
            h = h * extra_hazard
        qh = q * h
        k = qh.sum(axis=1)
        safe_k = np.where(k > 0, k, 1.0)
        cum = np.cumsum(qh / safe_k[:, None], axis=1)
        exit_idx = np.minimum((u_exit[:, None] > cum).sum(axis=1), self.n_exits - 1)
        if elapsed is None:
            t = self.sojourn.sample(u_time, safe_k)
        else:
            # elapsed is in stretched (LA duration) time; the distribution in base time
            d = self.time_scale(la, band)
            t = self.sojourn.sample_residual(u_time, elapsed / d, safe_k) * d
            return exit_idx, np.where(k > 0, t, np.inf)
        t = t * self.time_scale(la, band)
        return exit_idx, np.where(k > 0, t, np.inf)


    def draw_piecewise(
        self,
        u_exit: np.ndarray,
        u_time: np.ndarray,
        la: np.ndarray,
        band: np.ndarray,
        history: np.ndarray,
        breaks: np.ndarray,
        mults: np.ndarray,
        elapsed: np.ndarray | None = None,
        year: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like `draw`, with hazard multipliers that change during the stay.

        `breaks` (n, m): days since the stay started at which segments begin (column 0 is
        0; non-decreasing; inf pads unused segments); `mults` (n, m, n_exits): the
        multipliers in force in each segment. Exact for proportional cause-specific hazards:
        with base cumulative hazard H, the stay's cumulative hazard is
        sum_j k_j (H(min(t, b_j+1)) - H(b_j)) with k_j = sum_e q_e h_e m_je; the stay ends
        where it reaches -log(u_time) (plus its value at `elapsed`, for a stay in progress),
        and by exit e with probability q_e h_e m_je / k_j of the segment it ends in."""
        q = self.exit_probabilities(band, history, year)
        qh = (q * self.hazard[la])[:, None, :] * mults  # (n, m, E)
        k = qh.sum(axis=2)  # (n, m)
        d = self.time_scale(la, band)[:, None]
        b = breaks / d
        with np.errstate(divide="ignore"):
            hb = -np.log(self.sojourn.survival(b))
        hb = np.where(np.isfinite(b), hb, np.inf)
        hb_next = np.concatenate([hb[:, 1:], np.full((hb.shape[0], 1), np.inf)], axis=1)
        width = np.where(np.isfinite(hb), hb_next - hb, 0.0)
        with np.errstate(invalid="ignore"):
            seg = np.where(k > 0, k * width, 0.0)
        total = -np.log(np.clip(u_time, 1e-300, 1.0))
        if elapsed is not None:
            with np.errstate(divide="ignore"):
                he = -np.log(self.sojourn.survival(elapsed / d[:, 0]))
            covered = np.clip(np.minimum(he[:, None], hb_next) - hb, 0.0, None)
            covered = np.where(np.isfinite(hb), covered, 0.0)
            with np.errstate(invalid="ignore"):
                total = total + np.where(k > 0, k * covered, 0.0).sum(axis=1)
        cum = np.cumsum(seg, axis=1)
        j = np.minimum((total[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)
        rows = np.arange(j.size)
        ends = total < cum[:, -1]
        kj = k[rows, j]
        before = np.concatenate([np.zeros((cum.shape[0], 1)), cum[:, :-1]], axis=1)[rows, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            h_end = hb[rows, j] + (total - before) / np.where(kj > 0, kj, 1.0)
        t = self.sojourn.inverse_survival(np.exp(-np.where(ends, h_end, 0.0))) * d[:, 0]
        t = np.where(ends, t, np.inf)
        if elapsed is not None:
            t = np.maximum(t - elapsed, 0.0)
        w = qh[rows, j]
        kw = w.sum(axis=1)
        cumw = np.cumsum(w / np.where(kw > 0, kw, 1.0)[:, None], axis=1)
        exit_idx = np.minimum((u_exit[:, None] > cumw).sum(axis=1), self.n_exits - 1)
        return exit_idx, t


class Pathway:
    """All states' compiled rules. `rule(state, variant)` finds one."""

    def __init__(self, scenario: Scenario, n_la: int):
        self.rules: list[CompiledRule] = []
        self._index: dict[tuple[int, str], CompiledRule] = {}
        for state_name, spec in scenario.pathway.items():
            for variant, rule in spec.rules().items():
                self._add(state_name, variant, rule, n_la)
        self.transitions = sorted({n for r in self.rules for n in r.names})
        for tr in scenario.trends:
            found = False
            for r in self.rules:
                for e, name in enumerate(r.names):
                    if name == tr.transition:
                        r.trends.append((e, tr))
                        found = True
            if not found:
                raise KeyError(tr.transition)

    def _add(self, state_name: str, variant: str, rule: StateRule, n_la: int) -> None:
        probs = rule.probabilities()
        labels = list(rule.exits)
        exits = [rule.exits[k] for k in labels]
        compiled = CompiledRule(
            rule_id=len(self.rules),
            state=STATE_INDEX[state_name],
            variant=variant,
            sojourn=SojournDist.from_spec(rule.sojourn),
            labels=labels,
            targets=np.array([STATE_INDEX[e.to] for e in exits], dtype=np.int8),
            legal=np.array(
                [LEGAL_INDEX[e.legal_status] if e.legal_status else -1 for e in exits],
                dtype=np.int8,
            ),
            p=np.array([probs[k] for k in labels]),
            age_mult=np.array(
                [[e.age_multiplier.get(b, 1.0) for e in exits] for b in AGE_BANDS]
            ),
            hist_mult=np.array(
                [[e.history_multiplier.get(f, 1.0) for e in exits] for f in HISTORY_FLAGS]
            ),
            names=[f"{state_name}->{e.to}" for e in exits],
            hazard=np.ones((n_la, len(exits))),
            duration=np.ones(n_la),
            age_duration=rule.sojourn.scale * np.array(
                [rule.sojourn.age_multiplier.get(b, 1.0) for b in AGE_BANDS]),
        )
        self.rules.append(compiled)
        self._index[(compiled.state, variant)] = compiled

    def rule(self, state: int, variant: str = "default") -> CompiledRule:
        return self._index[(state, variant)]

    def has(self, state: int, variant: str = "default") -> bool:
        return (state, variant) in self._index

    def multiply_hazard(self, transition: str, per_la: np.ndarray) -> None:
        """Multiply the hazard of a named transition ("a->b") by a per-LA factor."""
        found = False
        for r in self.rules:
            for e, name in enumerate(r.names):
                if name == transition:
                    r.hazard[:, e] *= per_la
                    found = True
        if not found:
            raise KeyError(transition)

    def stretch_durations(self, state: int, per_la: np.ndarray) -> None:
        """Multiply the sojourn times of every rule of a state by a per-LA factor."""
        for r in self.rules:
            if r.state == state:
                r.duration *= per_la

    def mermaid(self) -> str:
        """The pathway as a Mermaid flowchart, generated from the rules."""
        edges: dict[tuple[str, str], list[str]] = {}
        for r in self.rules:
            src = STATES[r.state]
            for e, lab in enumerate(r.labels):
                dst = STATES[int(r.targets[e])]
                if dst == src:
                    continue
                tag = lab if r.variant == "default" else f"{r.variant}: {lab}"
                edges.setdefault((src, dst), []).append(tag)
        # arrivals and the 18th birthday are engine rules, not scenario exits
        edges.setdefault(("looked_after", "left_care"), []).append("18th birthday")
        edges.setdefault(("proceedings", "left_care"), []).append("18th birthday in interim care")
        lines = [
            "flowchart TD",
            '    new_referral(["new referrals (per LA)"]) --> referral',
            '    uasc_arrival(["UASC arrivals"]) --> looked_after',
        ]
        for (src, dst), labs in sorted(edges.items()):
            lines.append(f"    {src} -->|\"{'; '.join(sorted(set(labs)))}\"| {dst}")
        return "\n".join(lines)
