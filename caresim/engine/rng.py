"""Random numbers keyed by child, event and purpose (counter-based), for common random numbers.

DESIGN.md asks that adding an intervention must not shift the draws of unrelated children.
Sequential generators cannot promise that once two scenarios process different numbers of
events. So every decision draws its uniform from a hash of (purpose key, child or family
id, the child's event counter): the k-th decision of a given kind for a given child gets
the same number in every scenario, whatever else happened. Purpose keys come from
`numpy.random.SeedSequence(root_seed)` spawned per replication and per purpose.

The mixer is SplitMix64's finaliser applied twice, a well-studied 64-bit avalanche
function; `tests/test_rng.py` checks uniformity and independence of the streams.
"""

from __future__ import annotations

import zlib

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_ODD = np.uint64(0xD1B54A32D192ED03)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


class Streams:
    """All the random numbers of one replication.

    `uniform(purpose, ids, counters)` is a pure function of its arguments; `generator(p)`
    gives a sequential numpy Generator for draws that do not depend on the path (arrival
    times, the starting population).
    """

    def __init__(self, root_seed: int, replication: int):
        self.root_seed = int(root_seed)
        self.replication = int(replication)

    def _seq(self, purpose: str) -> np.random.SeedSequence:
        tag = zlib.crc32(purpose.encode())  # stable across runs and platforms
        return np.random.SeedSequence(self.root_seed, spawn_key=(self.replication, tag))

    def key(self, purpose: str) -> np.uint64:
        """The 64-bit key of a purpose's stream."""
        return np.uint64(self._seq(purpose).generate_state(1, dtype=np.uint64)[0])

    def generator(self, purpose: str) -> np.random.Generator:
        """A sequential generator for path-independent draws of one purpose."""
        return np.random.Generator(np.random.PCG64(self._seq(purpose)))

    def uniform(self, purpose: str | np.uint64, ids: np.ndarray, counters: np.ndarray) -> np.ndarray:
        """Uniforms in (0, 1), one per (id, counter), reproducible for a purpose."""
        key = self.key(purpose) if isinstance(purpose, str) else purpose
        ids = np.asarray(ids).astype(np.uint64, copy=False)
        counters = np.asarray(counters).astype(np.uint64, copy=False)
        with np.errstate(over="ignore"):
            z = _mix(key ^ (ids * _GOLD))
            z = _mix(z + counters * _ODD + _GOLD)
        return ((z >> _S11).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
