"""Placement supply: SimPy containers of places per area and type, with fallback.

A child entering care asks for its preferred placement type; if that type's pool in its
area is empty it takes the first type with a free place in the scenario's `fallback`
order (e.g. in-house foster -> agency foster -> residential). If every pool in the chain is
full the child is still placed, in the last type of the chain, as a spot purchase outside
the modelled supply (counted as `placements_over_capacity`): children are never left
without a placement. Types without a capacity are unlimited.

When a pooled place is given back (and not owed as debt), `on_free(area, type)` is called,
if set: the simulation uses it to move a child waiting in a fallback placement into the
freed place (see `Simulation._place_freed`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import simpy


class PlacementSupply:
    """Pools of places: one `simpy.Container` per (area, placement type) with a capacity."""

    def __init__(
        self,
        env: simpy.Environment,
        capacity: np.ndarray,  # (n_areas, n_types), np.inf = unlimited
        occupied: np.ndarray,  # (n_areas, n_types) places taken at the start
        fallback: list[list[int]],  # per preferred type: the chain of types to try, itself first
    ):
        self.env = env
        self.fallback = fallback
        self.pools: dict[tuple[int, int], simpy.Container] = {}
        self.no_places: set[tuple[int, int]] = set()  # capacity 0: always full
        self.debt: dict[tuple[int, int], float] = {}
        for a, t in zip(*np.nonzero(np.isfinite(capacity))):
            key = (int(a), int(t))
            cap, occ = float(capacity[a, t]), float(occupied[a, t])
            # children already placed at the start keep their places even over capacity:
            # the excess is a debt repaid by their releases before places free up
            self.debt[key] = max(occ - cap, 0.0)
            if cap <= 0:
                self.no_places.add(key)
                continue
            self.pools[key] = simpy.Container(env, capacity=cap, init=max(cap - occ, 0.0))
        self.over_capacity = 0
        self.on_free: Callable[[int, int], None] | None = None

    def request(self, area: int, preferred: int) -> tuple[int, bool]:
        """Place a child now: returns (placement type, holds a pooled place)."""
        chain = self.fallback[preferred]
        for t in chain:
            if (area, t) in self.no_places:
                continue
            pool = self.pools.get((area, t))
            if pool is None:
                return t, False  # unlimited type
            if pool.level >= 1:
                pool.get(1)
                return t, True
        self.over_capacity += 1
        return chain[-1], False

    def release(self, area: int, placement: int) -> None:
        """Give a pooled place back."""
        key = (area, placement)
        if self.debt.get(key, 0.0) >= 1.0:
            self.debt[key] -= 1.0
            return
        pool = self.pools.get(key)
        if pool is not None and pool.level + 1 <= pool.capacity:
            pool.put(1)
            if self.on_free is not None:
                self.on_free(area, placement)

    def take(self, area: int, placement: int) -> bool:
        """Take a free place of this pool, if there is one."""
        pool = self.pools.get((area, placement))
        if pool is None or pool.level < 1:
            return False
        pool.get(1)
        return True

    def occupancy(self) -> dict[tuple[int, int], float]:
        """Places taken per (area, type) pool."""
        return {k: c.capacity - c.level + self.debt.get(k, 0.0) for k, c in self.pools.items()}
