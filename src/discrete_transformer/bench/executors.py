"""Where bench units run: local processes (default) or a Ray runtime — the same unit functions,
the same scheduler (:mod:`.schedule`), ``jobs`` workers.

- ``local``: ``jobs == 1`` runs the units one after another in this process; ``jobs > 1`` uses a
  ``spawn`` process pool of ``jobs`` workers (one torch thread each), so busy processes ≈ ``jobs``.
- ``ray``: ``ray.init()`` (a fresh local instance with ``jobs`` CPUs, or an existing cluster with
  ``address``) and each unit function wrapped as ``@ray.remote(num_cpus=1)``; ``jobs`` units are
  in flight at a time. On a cluster every node needs this package installed
  (``pip install ".[ray]"``) and OUT on a shared path (a task's units share its run directory).

Both yield rows as jobs finish. Interrupting the consumer (Ctrl-C) cancels what has not started
and stops what is running; finished jobs have already written their rows.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from ..training.restarts import worker_init
from ..training.workers import terminate_pool
from .runner import Job
from .schedule import schedule

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
            import ray  # noqa: F401  # optional extra (pip install ".[ray]"): imported only for --executor ray
        except ImportError:
            raise ExecutorError(RAY_HINT) from None


def run_jobs(
    jobs: Sequence[Job], executor: str = "local", n_jobs: int = 1, address: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield one row per job, in the order they finish."""
    check_executor(executor, n_jobs)
    if executor == "ray":
        return _ray(jobs, n_jobs, address)
    if n_jobs == 1:
        return schedule(jobs, _InProcess(), 1)
    return _pool(jobs, n_jobs)


class _InProcess:
    """Runs each unit when it is submitted, in this process."""

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Future:
        f: Future = Future()
        f.set_result(fn(*args))  # a KeyboardInterrupt propagates: units catch only Exception
        return f

    def wait(self, handles: list[Future], timeout: float) -> list[Future]:
        return list(handles)

    def result(self, handle: Future) -> dict[str, Any]:
        return handle.result()


class _Pool:
    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Future:
        return self.pool.submit(fn, *args)

    def wait(self, handles: list[Future], timeout: float) -> list[Future]:
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [h for h in handles if h in done]  # in submission order

    def result(self, handle: Future) -> dict[str, Any]:
        return handle.result()


def _pool(jobs: Sequence[Job], n_jobs: int) -> Iterator[dict[str, Any]]:
    with spawn_pool(n_jobs) as pool:
        yield from schedule(jobs, _Pool(pool), n_jobs)


@contextmanager
def spawn_pool(n_jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A ``spawn`` pool of ``n_jobs`` workers (one torch thread each). When the code using it is
    interrupted, what has not started is cancelled and what is running is stopped: a worker
    inside a training run treats SIGTERM as Ctrl-C and carries on with its unit (the restart
    stops and is saved), and shutdown() would wait for it, so what is still alive after a short
    grace is killed. Its job has no row, so a rerun redoes it."""
    pool = ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("spawn"), initializer=worker_init)
    try:
        yield pool
    except BaseException:
        procs = terminate_pool(pool)
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        for p in procs:
            try:
                p.join(max(0.0, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
            except Exception:  # noqa: BLE001 - best effort while interrupted
                pass
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Ray:
    def __init__(self) -> None:
        import ray  # optional extra: imported only for --executor ray (check_executor checked it)

        self.ray = ray
        self.remote: dict[Callable[..., Any], Any] = {}
        self.handles: list[Any] = []  # every unit submitted, for cancelling on interruption

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Any:
        if fn not in self.remote:
            self.remote[fn] = self.ray.remote(num_cpus=1, max_retries=0)(fn)
        h = self.remote[fn].remote(*args)
        self.handles.append(h)
        return h

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def result(self, handle: Any) -> dict[str, Any]:
        return self.ray.get(handle)


def _ray(jobs: Sequence[Job], n_jobs: int, address: str | None) -> Iterator[dict[str, Any]]:
    import ray  # optional extra: imported only for --executor ray (check_executor checked it)

    started = False
    if not ray.is_initialized():
        opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **opts)
        else:
            ray.init(num_cpus=n_jobs, **opts)
        started = True
    runner = _Ray()
    try:
        yield from schedule(jobs, runner, n_jobs)
    except BaseException:
        for ref in runner.handles:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        raise
    finally:
        if started:
            ray.shutdown()


__all__ = ["EXECUTORS", "RAY_HINT", "ExecutorError", "check_executor", "run_jobs", "spawn_pool"]
