"""The family court as a processor-sharing server on the SimPy clock.

Care proceedings are not a first-come-first-served queue: every issued case is in progress
at once, and when a court area has more cases than its judges can progress at the normal
pace, every case slows down. So each area is an egalitarian processor-sharing server: a
case needs `work` days of progress at the normal pace; with N cases in progress and
capacity C, each progresses at rate min(1, (C/N)**alpha). Durations therefore stretch as
demand rises above capacity and the share finished within 26 weeks falls.

`alpha` (the congestion elasticity, 0 < alpha <= 1) says how far a court flexes: with
alpha = 1 throughput is capped at C cases' worth of progress, so any demand above that
makes the backlog grow without bound; with alpha < 1 the court gets through more as its
list grows (shorter hearings, more sitting days), and a stable, stretched duration is
reached. Published durations (41 weeks against 27 uncongested) with stable volumes say
the courts are in the second regime.

Implementation: a virtual-work clock V(t) = integral of the rate; a case arriving at V_a
with work w finishes when V reaches V_a + w. A heap of finishing virtual times gives the
next completion in O(log N) per event, whatever N is (a national court holds about 15k
cases), and only one completion event is pending per area at any time (DESIGN: schedule
fewer events, not more).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import simpy


@dataclass
class CourtArea:
    """One court area's cases in progress."""

    env: simpy.Environment
    capacity: float  # cases progressed at the normal pace at once
    on_complete: Callable[[Any, float], None]  # (case payload, completion time)
    alpha: float = 1.0  # congestion elasticity
    _heap: list = field(default_factory=list)
    _v: float = 0.0  # virtual work clock (days of normal-pace progress per case)
    _t: float = 0.0  # real time of the last update
    _version: int = 0
    _seq: itertools.count = field(default_factory=itertools.count)

    @property
    def in_progress(self) -> int:
        return len(self._heap)

    def rate(self) -> float:
        """Progress per day of each case (1 = normal pace)."""
        n = len(self._heap)
        if n == 0:
            return 1.0
        if self.capacity <= 0:
            return 0.0
        return 1.0 if n <= self.capacity else (self.capacity / n) ** self.alpha

    def _advance(self) -> None:
        now = self.env.now
        self._v += self.rate() * (now - self._t)
        self._t = now

    def submit(self, payload: Any, work: float) -> None:
        """Start a case needing `work` days at the normal pace, now."""
        self._advance()
        heapq.heappush(self._heap, (self._v + work, next(self._seq), payload))
        self._reschedule()

    def set_capacity(self, capacity: float) -> None:
        """Change the capacity now (e.g. at a financial year's start): progress so far ran
        at the old pace, the rest runs at the new one."""
        self._advance()
        self.capacity = capacity
        self._reschedule()

    def preload(self, payload: Any, remaining_work: float) -> None:
        """Put a case already in progress at the start (same as submit at time 0)."""
        self.submit(payload, remaining_work)

    def _reschedule(self) -> None:
        self._version += 1
        if not self._heap:
            return
        r = self.rate()
        if r <= 0:
            return
        delay = max(0.0, (self._heap[0][0] - self._v) / r)
        ev = self.env.timeout(delay, value=self._version)
        ev.callbacks.append(self._fire)

    def _fire(self, ev: simpy.Event) -> None:
        if ev.value != self._version:
            return  # superseded by a later arrival or completion
        self._advance()
        # complete every case whose work is done (ties finish together)
        done = []
        while self._heap and self._heap[0][0] <= self._v + 1e-9:
            done.append(heapq.heappop(self._heap)[2])
        for payload in done:
            self.on_complete(payload, self.env.now)
        self._reschedule()
