"""Run independent tasks through joblib: local processes (loky), threads, or a Dask cluster.

Stages hand their per-shard or per-trial work to :func:`map_unordered`; the same task functions run on one
machine or on a cluster (``--backend dask --scheduler tcp://HOST:PORT``), which is why tasks write their
results to files under the storage root (a shared file system on a cluster) and return small summaries.

Local worker processes never outlive the process that started them: each watches its parent and exits
within a second of its death (kill -9 included), and :func:`stop_workers` ends them at once (the command
line calls it on SIGTERM and SIGINT).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, TypeVar, get_args

import joblib

from audiobench.core.errors import AudiobenchError
from audiobench.core.progress import progress

Backend = Literal["loky", "threading", "dask"]
BACKENDS: tuple[str, ...] = get_args(Backend)

T = TypeVar("T")
R = TypeVar("R")
_PARENT_POLL_S = 1.0  # how often a worker checks that the process that started it is alive


def check_backend(backend: object) -> Backend:
    """Refuse an unknown backend name, whatever ``jobs`` is (with one job it would go unnoticed)."""
    if backend not in BACKENDS:
        raise AudiobenchError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    return backend  # type: ignore[return-value]


def stop_workers(*, timeout: float = 5.0) -> None:
    """Kill the worker processes this process started (loky's, a local Dask cluster's) and reap them.

    For an interrupted run: the workers' tasks are abandoned (their outputs are written atomically or
    redone by a rerun), so there is nothing to wait for.
    """
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
    for child in children:
        child.join(timeout)


_watched_parent: int | None = None


def _exit_with_parent(parent: int) -> None:
    """In a worker process (its initializer): a daemon thread that ends it once ``parent`` is not its parent.

    A worker whose parent died (kill -9, a crash) is adopted by another process; without this it would
    finish its task and then idle for minutes, holding memory and CPU for nobody.
    """
    global _watched_parent
    if _watched_parent == parent or os.getpid() == parent or os.getppid() != parent:
        return  # already watching; or in the parent itself (one job); or not its direct child (Dask)
    _watched_parent = parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="audiobench-parent-watch", daemon=True).start()


@contextmanager
def joblib_backend(backend: Backend, *, jobs: int, scheduler: str | None = None) -> Iterator[int]:
    """Configure joblib for ``backend``; yields the ``n_jobs`` to pass to ``Parallel``.

    With ``dask`` and no scheduler address, a ``LocalCluster`` of ``jobs`` worker processes on 127.0.0.1 is
    started for the duration (handy to try the cluster path on one machine).
    """
    check_backend(backend)
    if jobs < 1:
        raise AudiobenchError(f"--jobs must be at least 1, got {jobs}")
    if backend == "loky":  # each worker process watches this one from its start, busy or idle
        with joblib.parallel_config(backend=backend, n_jobs=jobs, initializer=_exit_with_parent,
                                    initargs=(os.getpid(),)):
            yield jobs
        return
    if backend != "dask":
        with joblib.parallel_config(backend=backend, n_jobs=jobs):
            yield jobs
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise AudiobenchError("--backend dask needs Dask: pip install 'audiobench[dask]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise AudiobenchError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        cluster = None
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                               processes=True)
        client = Client(cluster)
    try:
        with joblib.parallel_config(backend="dask"):
            yield -1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def map_unordered(fn: Callable[[T], R], items: Sequence[T], *, jobs: int = 1, backend: Backend = "loky",
                  scheduler: str | None = None, desc: str = "", quiet: bool = False,
                  unit: str = "task", fresh_workers: bool = False) -> Iterator[R]:
    """Yield ``fn(item)`` for every item as each finishes, with a progress bar.

    ``jobs == 1`` with a local backend runs in this process (no pickling, easy to debug). Tasks should catch
    their own per-item failures and return them as data: an exception here stops the whole map.
    ``fresh_workers`` (loky) starts new worker processes instead of reusing those an earlier map left:
    loky restarts a worker whose memory grew by 300 MB since its first task (its leak guard) and warns "A
    worker stopped while some jobs were given to the executor"; a featurize worker that goes on to train
    trips it at the first trial. Reuse is the default because starting workers costs seconds.
    """
    check_backend(backend)
    if not items:
        return
    if jobs == 1 and backend != "dask":
        yield from progress(map(fn, items), total=len(items), desc=desc, quiet=quiet, unit=unit)
        return
    if fresh_workers and backend == "loky":
        from joblib.externals.loky import get_reusable_executor

        # loky keeps one reusable executor per process; asking for it and shutting it down stops the workers
        # an earlier map left, and joblib starts new ones for this map.
        get_reusable_executor().shutdown(wait=True)
    with joblib_backend(backend, jobs=jobs, scheduler=scheduler) as n_jobs:
        parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        results = parallel(joblib.delayed(fn)(item) for item in items)
        yield from progress(results, total=len(items), desc=desc, quiet=quiet, unit=unit)
