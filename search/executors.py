"""Where evaluations run, behind one small interface over ``concurrent.futures``.

The engine never knows which executor it has: it submits batches and waits on futures.

- ``InlineExecutor``: in the driver's own process, synchronously (one worker: deterministic and
  free of start-up cost).
- ``LocalExecutor``: a ``ProcessPoolExecutor`` with the *spawn* start method (JAX and ``fork``
  deadlock).  A worker that hangs past the evaluation timeout or dies is replaced by restarting
  the pool.
- ``DaskExecutor``: a Dask distributed cluster through ``Client.get_executor()`` (a real
  ``concurrent.futures.Executor``), either a scheduler address or a ``LocalCluster`` it starts.
  A Dask task costs milliseconds, so send batches of candidates per task.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from typing import Callable


class InlineExecutor:
    name = "inline"
    workers = 1

    def submit(self, fn: Callable, *args) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future, like a pool
            fut.set_exception(exc)
        return fut

    def restart(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class LocalExecutor:
    name = "local"

    def __init__(self, workers: int, initializer: Callable | None = None, initargs: tuple = ()):
        self.workers = workers
        self._initializer, self._initargs = initializer, initargs
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=self._initializer,
            initargs=self._initargs,
        )

    def submit(self, fn: Callable, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def restart(self) -> None:
        """Kill every worker (a hung one cannot be stopped otherwise) and start a fresh pool."""
        pool = self._pool
        for proc in list(getattr(pool, "_processes", {}).values()):  # the pool keeps no public handle
            try:
                proc.kill()
            except Exception:  # already gone
                pass
        pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    name = "dask"

    def __init__(self, scheduler: str | None = None, local_workers: int | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise RuntimeError("Dask is not installed: pip install 'autonumerics[dask]'") from None
        self._cluster = None
        if scheduler:
            self._client = Client(scheduler, timeout="20s")
        else:
            self._cluster = LocalCluster(n_workers=local_workers or 1, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        self.workers = max(1, sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))
        self._executor = self._client.get_executor(pure=False)

    def submit(self, fn: Callable, *args) -> cf.Future:
        return self._executor.submit(fn, *args)

    def restart(self) -> None:
        self._client.restart()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(workers: int, scheduler: str | None = None, dask_local: int | None = None,
                  initializer: Callable | None = None, initargs: tuple = ()):
    if scheduler or dask_local:
        return DaskExecutor(scheduler, dask_local)
    if workers <= 1:
        return InlineExecutor()
    return LocalExecutor(workers, initializer, initargs)
