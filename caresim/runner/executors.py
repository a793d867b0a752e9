"""Where the runs of a sweep execute: in this process, in local worker processes, or on a
Dask cluster, behind one small interface.

A `Backend` runs `fn(payload, *args)` somewhere and returns a `concurrent.futures.Future`.
The `payload` (e.g. a sweep's evaluator, holding a scenario and its calibration tables) is
shipped to each worker once, not with every task:

- `InlineBackend` (`jobs=1`): runs each task in this process when it is submitted.
- `ProcessBackend` (`jobs > 1`): a `ProcessPoolExecutor` with the `forkserver` context
  (DESIGN.md, "Performance"); the payload is installed in each worker by the pool's
  initializer (one copy per worker process, for the pool's lifetime). A pool broken by a
  worker that died (`BrokenProcessPool`) can be replaced with `recover()`.
- `DaskBackend`: a `distributed.Client`, either connected to a running scheduler
  (`--scheduler tcp://HOST:PORT`) or to a `LocalCluster` it starts (`--dask-workers N`:
  N worker processes with one thread each). Tasks go through `client.get_executor(pure=False)`,
  the standard `Executor` interface (so a resubmitted task really runs again); the payload is
  scattered to every worker once (`broadcast=True`). The LocalCluster's nanny would set
  `MALLOC_TRIM_THRESHOLD_` in its workers, which made numpy-heavy tasks 1.8x slower on this
  kind of machine (DESIGN.md), so it is unset for the workers started here; workers you start
  yourself for `--scheduler` should not set it either (see docs/sweeps.md). Every worker
  must be able to import caresim (same version).

Results are returned to this process, which alone writes them, so workers on other
machines need no shared file system.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import secrets
import signal
import weakref
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from caresim.errors import CaresimError

#: payloads installed in this worker process by `ProcessBackend`'s initializer, by token
_WORKER_PAYLOADS: dict[str, Any] = {}


def _install(token: str, payload: Any) -> None:
    # Ctrl-C is the parent's to handle: it stops the sweep and ends the workers (`abort`)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_PAYLOADS[token] = payload


def _call_installed(token: str, fn: Callable, *args: Any) -> Any:
    return fn(_WORKER_PAYLOADS[token], *args)


class Backend:
    """Runs `fn(payload, *args)` tasks; a context manager that releases its workers."""

    #: plain-English description for progress lines and the manifest
    description: str = ""
    #: worker processes (or threads) available: how many tasks to keep in flight
    workers: int = 1
    #: a short name: inline, processes, dask
    kind: str = ""

    def submit(self, fn: Callable, *args: Any) -> Future:
        raise NotImplementedError

    def recover(self, exc: BaseException, future: Future | None = None) -> bool:
        """After a task (`future`, None if submitting failed) failed with `exc`: restart
        broken workers if that is what happened. Returns True if the backend was restarted."""
        return False

    def abort(self) -> None:
        """Stop running tasks now (after Ctrl-C); `close` follows."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InlineBackend(Backend):
    """Runs each task in this process, at submission."""

    kind = "inline"

    def __init__(self, payload: Any):
        self.payload = payload
        self.description = "this process (--jobs 1)"

    def submit(self, fn: Callable, *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(self.payload, *args))
        except Exception as exc:  # a task's failure is reported through its future
            fut.set_exception(exc)
        return fut


class ProcessBackend(Backend):
    """Local worker processes (`forkserver`), the payload installed once per worker."""

    kind = "processes"

    def __init__(self, payload: Any, jobs: int):
        self.payload = payload
        self.workers = jobs
        self.description = f"{jobs} local worker processes (--jobs {jobs})"
        self._token = secrets.token_hex(8)
        self._pool = self._start()
        self._futures: weakref.WeakKeyDictionary[Future, ProcessPoolExecutor] = weakref.WeakKeyDictionary()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("forkserver"),
                                   initializer=_install, initargs=(self._token, self.payload))

    def submit(self, fn: Callable, *args: Any) -> Future:
        fut = self._pool.submit(_call_installed, self._token, fn, *args)
        self._futures[fut] = self._pool
        return fut

    def recover(self, exc: BaseException, future: Future | None = None) -> bool:
        # Restart only the pool that broke: the other tasks of a broken pool fail with the
        # same error, maybe after a new pool has taken work, and must not shut that one down.
        pool = self._futures.get(future, self._pool) if future is not None else self._pool
        if isinstance(exc, BrokenProcessPool) and pool is self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return True
        return False

    def abort(self) -> None:
        # the pool has no public way to stop a running task: end its worker processes
        for proc in list(getattr(self._pool, "_processes", {}).values()):
            proc.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskBackend(Backend):
    """A Dask distributed client: to a running scheduler, or to a LocalCluster it starts."""

    kind = "dask"

    def __init__(self, payload: Any, scheduler: str | None = None, n_workers: int | None = None):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover (a declared dependency)
            raise CaresimError(f"Dask executors need dask[distributed] installed: {exc}") from exc
        self._cluster = None
        try:
            if scheduler is not None:
                self.client = Client(scheduler, timeout="20s")
                where = f"Dask scheduler {scheduler}"
            else:
                with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                    self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                                 processes=True, dashboard_address=None,
                                                 memory_limit=0, silence_logs=logging.ERROR)
                self.client = Client(self._cluster)
                where = f"Dask LocalCluster ({n_workers} worker processes, --dask-workers {n_workers})"
        except (OSError, TimeoutError) as exc:
            self._shutdown_cluster()
            target = scheduler or "a local cluster"
            raise CaresimError(f"cannot connect to {target}: {exc}") from exc
        try:
            self.client.wait_for_workers(1, timeout=60)
            self.workers = max(1, sum(self.client.nthreads().values()))
            self._payload = self.client.scatter(payload, broadcast=True, hash=False)
            self._executor: Executor = self.client.get_executor(pure=False)
        except Exception as exc:
            self.close()
            raise CaresimError(f"{where}: no usable workers ({exc})") from exc
        self.description = f"{where}, {self.workers} worker threads"

    def submit(self, fn: Callable, *args: Any) -> Future:
        return self._executor.submit(fn, self._payload, *args)

    def abort(self) -> None:
        try:
            self._executor.shutdown(wait=False)  # cancels the tasks not finished
        except Exception:
            pass

    def close(self) -> None:
        try:
            self._executor.shutdown(wait=False)
        except Exception:
            pass
        try:
            self.client.close()
        finally:
            self._shutdown_cluster()

    def _shutdown_cluster(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def open_backend(payload: Any, jobs: int = 1, scheduler: str | None = None,
                 dask_workers: int | None = None) -> Backend:
    """The backend for a sweep's options: `scheduler` (a Dask scheduler address) or
    `dask_workers` (start a local Dask cluster with that many worker processes), else
    `jobs` local processes (1: this process). Raises `CaresimError` for conflicting
    options or a scheduler that cannot be reached."""
    if scheduler is not None and dask_workers is not None:
        raise CaresimError("give either --scheduler or --dask-workers, not both")
    if scheduler is not None:
        if not scheduler.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")):
            raise CaresimError(f"--scheduler {scheduler!r}: give an address such as tcp://HOST:8786")
        return DaskBackend(payload, scheduler=scheduler)
    if dask_workers is not None:
        if dask_workers < 1:
            raise CaresimError(f"--dask-workers must be at least 1, got {dask_workers}")
        return DaskBackend(payload, n_workers=dask_workers)
    if jobs < 1:
        raise CaresimError(f"--jobs must be at least 1, got {jobs}")
    return InlineBackend(payload) if jobs == 1 else ProcessBackend(payload, jobs)
