"""Where bench jobs run: local processes (default) or a Ray runtime — the same job function.

- ``local``: ``jobs == 1`` runs the jobs one after another in this process; ``jobs > 1`` uses a
  ``spawn`` process pool of ``jobs`` workers (one torch thread each). Each job trains its restarts
  sequentially inside its worker, so busy processes ≈ ``jobs``.
- ``ray``: ``ray.init()`` (a fresh local instance with ``jobs`` CPUs, or an existing cluster with
  ``address``) and :func:`~.runner.run_job` wrapped as ``@ray.remote(num_cpus=1)``. On a cluster
  every node needs this package installed (``pip install ".[ray]"``) and OUT on a shared path.

Both are generators yielding rows as jobs finish. Interrupting the consumer (Ctrl-C) cancels what
has not started and stops what is running; finished jobs have already written their rows.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Iterator, Sequence

from .runner import Job, run_job

EXECUTORS = ("local", "ray")
KILL_GRACE_SECONDS = 3.0  # after SIGTERM, what an interrupted worker gets before SIGKILL
RAY_HINT = 'Ray is not installed; install the extra with: pip install ".[ray]"'


class ExecutorError(ValueError):
    """An executor that cannot be used (unknown name, Ray missing, bad job count)."""


def check_executor(name: str, jobs: int) -> None:
    """Validate before anything is written: raises :class:`ExecutorError` with one line."""
    if jobs < 1:
        raise ExecutorError(f"--jobs must be >= 1, got {jobs}")
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ExecutorError(RAY_HINT) from None


def run_jobs(jobs: Sequence[Job], executor: str = "local", n_jobs: int = 1, address: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield one row per job, in the order they finish."""
    check_executor(executor, n_jobs)
    if executor == "ray":
        return _ray(jobs, n_jobs, address)
    if n_jobs == 1 or len(jobs) <= 1:
        return (run_job(j) for j in jobs)
    return _pool(jobs, n_jobs)


def _pool(jobs: Sequence[Job], n_jobs: int) -> Iterator[dict[str, Any]]:
    from ..training.restarts import _worker_init

    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=ctx, initializer=_worker_init)
    futures: list[Future] = [pool.submit(run_job, j) for j in jobs]
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
    except BaseException:
        for f in futures:
            f.cancel()
        procs = list((getattr(pool, "_processes", None) or {}).values())
        for p in procs:
            try:
                if p.is_alive():
                    p.terminate()
            except Exception:
                pass
        # A worker inside a training run treats SIGTERM as Ctrl-C and carries on with its job
        # (the restart stops, extraction follows), and shutdown() below would wait for it: what
        # is still alive after a short grace is killed. Its job has no row, so a rerun redoes it.
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        for p in procs:
            try:
                p.join(max(0.0, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
            except Exception:
                pass
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray(jobs: Sequence[Job], n_jobs: int, address: str | None) -> Iterator[dict[str, Any]]:
    import ray

    started = False
    if not ray.is_initialized():
        opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **opts)
        else:
            ray.init(num_cpus=n_jobs, **opts)
        started = True
    remote = ray.remote(num_cpus=1, max_retries=0)(run_job)
    pending = [remote.remote(j) for j in jobs]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in done:
                yield ray.get(ref)
    except BaseException:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        raise
    finally:
        if started:
            ray.shutdown()


__all__ = ["EXECUTORS", "ExecutorError", "RAY_HINT", "check_executor", "run_jobs"]
