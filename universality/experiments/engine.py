"""Run experiment jobs in parallel through an existing engine.

- default: :class:`concurrent.futures.ProcessPoolExecutor` with ``workers`` processes forked from a
  fork server that preloads torch (so no worker inherits torch's thread pools, and torch is imported
  once); ``workers == 1`` runs the jobs in this process;
- ``scheduler``: a ``dask.distributed`` cluster, either an address (``tcp://host:8786``) or an
  existing :class:`distributed.Client` / ``LocalCluster`` object (the tests pass a LocalCluster).

Each job sets ``torch.set_num_threads(job.threads)`` (1, see :func:`threads_per_worker`) so the
workers do not oversubscribe the machine. Results come back as they complete; ``on_done(job,
result)`` is called in this process (progress bars).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from typing import Callable, Iterable

from .runs import Job, run_job


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))


def threads_per_worker(workers: int) -> int:
    """Torch threads per job: 1. The models are small (<= 40,000 parameters), so intra-op threads
    buy little and, on a loaded machine, OpenMP spin-waits cost a lot (measured: a tiny sinusoid job
    took 40 s with 2 threads at load 6 on 2 cores, 5 s with 1). Parallelism comes from the jobs."""
    return 1


def run_jobs(jobs: Iterable[Job], workers: int = 1, scheduler=None,
             on_done: Callable[[Job, dict], None] | None = None) -> list[tuple[Job, dict]]:
    """Run ``jobs``; return (job, result) pairs in the jobs' order."""
    jobs = list(jobs)
    results: dict[int, dict] = {}

    def done(i, res):
        results[i] = res
        if on_done is not None:
            on_done(jobs[i], res)

    if scheduler is not None:
        _run_dask(jobs, scheduler, done)
    elif workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            done(i, run_job(job))
    else:
        ex = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=_context())
        try:
            futures = {ex.submit(run_job, job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
        except BaseException:  # Ctrl-C or a failed job: drop the queue, do not wait for running jobs
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()
    return [(job, results[i]) for i, job in enumerate(jobs)]


def _context():
    """A fork server that has imported torch once (it never runs torch, so it holds no thread pools)
    and forks the workers from it; spawn where there is no fork server (Windows)."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "universality.experiments.runs"])
    return ctx


def _run_dask(jobs: list[Job], scheduler, done) -> None:
    from distributed import Client, as_completed as dask_completed

    own = isinstance(scheduler, str)
    client = Client(scheduler) if own else (scheduler if isinstance(scheduler, Client) else Client(scheduler))
    try:
        futures = [client.submit(run_job, job, pure=False) for job in jobs]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in dask_completed(futures):
                done(index[fut.key], fut.result())
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        if own or not isinstance(scheduler, Client):
            client.close()


def with_threads(jobs: Iterable[Job], threads: int) -> list[Job]:
    return [replace(j, threads=threads) for j in jobs]
