"""Children as columns: one numpy array per attribute, grown as children arrive.

Holding children as arrays (rather than one Python object each) lets uncontended stays be
drawn in vectorised batches; only the capacity-limited stages go through SimPy events.
Times are days since the run's start date (1 April); -inf/inf mean never.
"""

from __future__ import annotations

import numpy as np

# name -> (dtype, fill value for new children)
FIELDS: dict[str, tuple[type, object]] = {
    "la": (np.int32, 0),
    "fam": (np.int64, 0),  # family id (id of the first sibling); siblings share family draws
    "birth": (np.float64, 0.0),  # day of birth (negative: before the start)
    "state": (np.int8, 0),
    "legal": (np.int8, -1),  # legal status index while looked after, -1 otherwise
    "plc": (np.int8, -1),  # placement type index while looked after, -1 otherwise
    "pref": (np.int8, -1),  # preferred placement type of the current care episode
    "pooled": (np.bool_, False),  # holds a place from a capacity-limited pool
    "in_care": (np.bool_, False),  # looked after (including interim care in proceedings)
    "uasc": (np.bool_, False),
    "prior_care": (np.bool_, False),
    "prior_cpp": (np.bool_, False),
    "nref": (np.int16, 0),  # referrals so far
    "cep": (np.int32, 0),  # care episodes so far
    "t_enter": (np.float64, 0.0),  # entry time into the current state
    "t_next": (np.float64, np.inf),  # time of the next scheduled transition
    "nxt": (np.int16, 0),  # exit index (in `rule`) of the next transition; -1 = 18th birthday
    "rule": (np.int16, -1),  # compiled rule the next transition belongs to
    "nev": (np.uint32, 0),  # transitions so far: the counter of the child's random draws
    "t_lastref": (np.float64, -np.inf),
    "t_closed": (np.float64, -np.inf),
    "t_cost": (np.float64, 0.0),  # placement cost accrued up to this time
    "t_pfa": (np.float64, np.inf),  # moves to placed_for_adoption at this time
    "done": (np.bool_, False),  # left children's services for good (adopted, 18, closed for good)
}


class Children:
    """Struct-of-arrays store. `add(n, **values)` returns the new children's indices."""

    def __init__(self, capacity: int = 1 << 16,
                 extra: dict[str, tuple[type, object]] | None = None):
        """`extra`: more fields (name -> (dtype, fill)), e.g. one per intervention."""
        self.n = 0
        self._cap = capacity
        self.fields = {**FIELDS, **(extra or {})}
        for name, (dtype, fill) in self.fields.items():
            setattr(self, name, np.full(capacity, fill, dtype=dtype))

    def _grow(self, need: int) -> None:
        cap = self._cap
        while cap < need:
            cap *= 2
        for name, (dtype, fill) in self.fields.items():
            old = getattr(self, name)
            new = np.full(cap, fill, dtype=dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        self._cap = cap

    def add(self, n: int, **values: np.ndarray | float | int) -> np.ndarray:
        """Append `n` children with the given attribute values; returns their indices."""
        if self.n + n > self._cap:
            self._grow(self.n + n)
        idx = np.arange(self.n, self.n + n)
        for name, v in values.items():
            getattr(self, name)[idx] = v
        self.n += n
        return idx

    def nbytes(self) -> int:
        return sum(getattr(self, f).nbytes for f in self.fields)
