"""Run independent tasks through joblib: local processes (loky), threads, or a Dask cluster.

Stages hand their per-shard or per-trial work to :func:`map_unordered`; the same task functions run on one
machine or on a cluster (``--backend dask --scheduler tcp://HOST:PORT``), which is why tasks write their
results to files under the storage root (a shared file system on a cluster) and return small summaries.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, TypeVar, get_args

import joblib

from audiobench.errors import AudiobenchError
from audiobench.progress import progress

Backend = Literal["loky", "threading", "dask"]
BACKENDS: tuple[str, ...] = get_args(Backend)

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def joblib_backend(backend: Backend, *, jobs: int, scheduler: str | None = None) -> Iterator[int]:
    """Configure joblib for ``backend``; yields the ``n_jobs`` to pass to ``Parallel``.

    With ``dask`` and no scheduler address, a ``LocalCluster`` of ``jobs`` worker processes on 127.0.0.1 is
    started for the duration (handy to try the cluster path on one machine).
    """
    if backend not in BACKENDS:
        raise AudiobenchError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if jobs < 1:
        raise AudiobenchError(f"--jobs must be at least 1, got {jobs}")
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
