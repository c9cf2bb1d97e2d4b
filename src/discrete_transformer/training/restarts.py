"""Restarts: K seeds of :func:`train_restart`, run in parallel processes; keep the best.

- Seeds ``seed, seed+1, …, seed+K-1``; restart i runs the portfolio's variant i
  (``TrainConfig.portfolio``). Which restart starts when is the restart policy's
  (:class:`.policy.Portfolio`, the one the bench follows too): at most one restart per worker at
  once, a restart after the first ones only if it can end within ``train_cfg.budget``, and none
  after one that ends the portfolio (:func:`.policy.ends_portfolio`, only when
  ``train_cfg.stop_on_exact``).
- Processes: a ``spawn`` pool of ``min(K, os.cpu_count())`` workers with one torch thread each
  (:mod:`.workers`). With K == 1 (or ``parallel=False``) restarts run in this process, one after
  another: simplest to test and debug.
- Early stop across processes: a ``Manager().Event()`` is set as soon as one restart ends the
  portfolio; every other restart polls it at each evaluation and ends.
- Metrics: restart N appends its rows to its own log in ``out_dir`` while it runs (so a live run
  can be followed with ``tail -f``); when all have finished (or on Ctrl-C) the logs are
  concatenated, in seed order, into the run's ``metrics.jsonl`` and removed. Each row has ``seed``.
- Progress: :class:`.display.RestartDisplay`, fed from the workers' ``progress`` callbacks through
  a Manager queue.
- Ctrl-C: workers and the Manager ignore SIGINT (so they print no tracebacks); the parent sets
  the stop event, terminates what is still running after a short grace period, and re-raises
  ``KeyboardInterrupt``.

Best = lowest ``val["score"]``, ties broken by the lower seed.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

from ..config import ModelConfig, TrainConfig, restart_configs
from ..model import DataSpec
from ..rundir import RunDir
from ..verdict import RESTART_NMSE, solved
from .display import RestartDisplay
from .evaluation import Split
from .loop import RestartResult, train_restart
from .policy import RESTART, Portfolio, ends_portfolio, time_limit
from .resume import write_history
from .workers import (
    drain,
    ignore_sigint,
    split_from_numpy,
    split_to_numpy,
    state_to_numpy,
    state_to_torch,
    stop_pool,
    term_as_interrupt,
    worker_init,
)


def within(train_cfg: TrainConfig, deadline: float | None) -> TrainConfig:
    """``train_cfg`` whose per-restart time limit is at most what is left until ``deadline``
    (wall clock, ``time.time()``; None = no budget)."""
    if deadline is None:
        return train_cfg
    return dataclasses.replace(train_cfg, time_limit=time_limit(train_cfg.time_limit, deadline, time.time()))


def seed_log_path(out_dir: Path, seed: int) -> Path:
    return RunDir(out_dir).seed_log(seed)


def merge_metrics(out_dir: Path, seeds: list[int]) -> Path:
    """Concatenate the per-seed logs (seed order) into the run's metrics log, atomically; remove them."""
    return RunDir(out_dir).merge_seed_logs(seeds)


def _run_one(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    split_np: dict[str, Any],
    spec: DataSpec,
    seed: int,
    log_path: str | None,
    stop_event: Any,
    rows: Any,
    continuous_tol: float,
    train_fn: Callable[..., RestartResult],
    deadline: float | None = None,
) -> RestartResult | None:
    """One restart in a pool worker, under what is left of the budget. Returns None when another
    restart ended the portfolio before this one began."""
    if stop_event.is_set():
        return None
    train_cfg = within(train_cfg, deadline)
    split = split_from_numpy(split_np)

    def progress(step: int, row: dict) -> None:
        if rows is not None:
            rows.put(("row", seed, row))

    result = train_fn(
        model_cfg,
        train_cfg,
        split,
        spec,
        seed,
        log_path=Path(log_path) if log_path else None,
        progress=progress,
        continuous_tol=continuous_tol,
        should_stop=stop_event.is_set,
    )
    if train_cfg.stop_on_exact and ends_portfolio(split.kind, result.val, continuous_tol):
        stop_event.set()
    return state_to_numpy(result)


def run_restarts(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    split: Split,
    spec: DataSpec,
    seed: int,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    continuous_tol: float = RESTART_NMSE,
    parallel: bool = True,
    max_workers: int | None = None,
    train_fn: Callable[..., RestartResult] | None = None,
    finished: list[RestartResult] | None = None,
    on_finished: Callable[[RestartResult], None] | None = None,
) -> tuple[RestartResult, list[RestartResult]]:
    """Run ``train_cfg.restarts`` seeds and return ``(best, all finished restarts by seed)``.

    ``max_workers`` defaults to ``min(K, os.cpu_count())``. Restarts skipped because another one
    had already solved the task are not in the list. ``train_fn`` replaces :func:`train_restart`
    (same signature; a module-level function, so that pool workers can import it): a seam for
    tests and experiments.

    Resuming (see :mod:`.resume`): ``finished`` are restarts of an earlier, interrupted session;
    their seeds are not run again (nothing more runs if one of them solved the task and
    ``stop_on_exact``). ``on_finished(result)`` is called as each restart finishes, in this
    process (the run keeps it on disk). With ``train_cfg.budget``, restarts end within that many
    seconds of this call, and a later restart starts only if it can (:class:`.policy.Portfolio`);
    skipped restarts are not in the list either.
    """
    deadline = None if train_cfg.budget is None else time.time() + train_cfg.budget
    K = train_cfg.restarts
    all_seeds = [seed + i for i in range(K)]
    done = {r.seed: r for r in (finished or []) if r.seed in all_seeds}
    seeds = [s for s in all_seeds if s not in done]
    if train_cfg.stop_on_exact and any(ends_portfolio(split.kind, r.val, continuous_tol) for r in done.values()):
        seeds = []
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for s in seeds:  # train_restart appends: start every log empty
            p = seed_log_path(out, s)
            if p.exists():
                p.unlink()
        for r in done.values():  # finished earlier: their rows go back into metrics.jsonl
            write_history(seed_log_path(out, r.seed), r.history)
    if not seeds:
        if out is not None:
            merge_metrics(out, all_seeds)
        results = sorted(done.values(), key=lambda r: r.seed)
        return min(results, key=lambda r: (r.val["score"], r.seed)), results
    fn = train_fn if train_fn is not None else train_restart
    # Restart i runs the portfolio's variant i (TrainConfig.portfolio).
    cfgs = {s: restart_configs(model_cfg, train_cfg, s - seed)[:2] for s in seeds}
    display = RestartDisplay({s: cfgs[s][1].total_steps for s in seeds}, split.kind, progress)
    in_process = len(seeds) == 1 or not parallel
    workers = max_workers if max_workers is not None else (os.cpu_count() or 1)
    workers = 1 if in_process else max(1, min(len(seeds), workers))
    # this session's restarts (a resumed run's finished ones are not in it), at most one per worker
    policy = Portfolio(len(seeds), workers, deadline=deadline, stop_on_solved=train_cfg.stop_on_exact)
    run = _Run(policy, cfgs, split, spec, seeds, out, display, continuous_tol, fn, on_finished, deadline)
    previous_term = term_as_interrupt()
    try:
        with display:
            results = run.in_process() if in_process else run.in_pool(workers)
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if out is not None:
            merge_metrics(out, all_seeds)
    results = list(done.values()) + results
    if not results:  # cannot happen: the first restart always runs
        raise RuntimeError("no restart finished")
    results.sort(key=lambda r: r.seed)
    best = min(results, key=lambda r: (r.val["score"], r.seed))
    return best, results


@dataclasses.dataclass
class _Run:
    """One session's restarts, driven through the policy: in this process or in a pool."""

    policy: Portfolio
    cfgs: dict[int, tuple[ModelConfig, TrainConfig]]
    split: Split
    spec: DataSpec
    seeds: list[int]  # restart i of the policy is seeds[i]
    out: Path | None
    display: RestartDisplay
    continuous_tol: float
    train_fn: Callable[..., RestartResult]
    on_finished: Callable[[RestartResult], None] | None
    deadline: float | None

    def _ended(self, r: RestartResult) -> None:
        self.policy.ended(r.seconds, ends_portfolio(self.split.kind, r.val, self.continuous_tol))

    def _finish(self, r: RestartResult) -> None:
        if self.on_finished is not None:
            self.on_finished(r)

    def _log(self, seed: int) -> Path | None:
        return seed_log_path(self.out, seed) if self.out is not None else None

    def _skipped(self) -> None:
        for s in self.seeds[self.policy.started :]:  # never started: solved before, or no time left
            self.display.cancelled(s)

    def in_process(self) -> list[RestartResult]:
        results: list[RestartResult] = []
        while self.policy.next(time.time()) == RESTART:
            s = self.seeds[self.policy.start()]
            on_row: Callable[[int, dict], None] = lambda step, row, s=s: self.display.row(s, row)  # noqa: E731
            r = self.train_fn(
                self.cfgs[s][0],
                within(self.cfgs[s][1], self.deadline),
                self.split,
                self.spec,
                s,
                log_path=self._log(s),
                progress=on_row,
                continuous_tol=self.continuous_tol,
            )
            self._ended(r)
            self.display.done(r, solved(self.split.kind, r.val, self.continuous_tol))
            results.append(r)
            self._finish(r)
        self._skipped()
        return results

    def in_pool(self, workers: int) -> list[RestartResult]:
        ctx = mp.get_context("spawn")
        manager = SyncManager(ctx=ctx)
        manager.start(ignore_sigint)
        executor: ProcessPoolExecutor | None = None
        stop_event: Any = None
        futures: dict[Future, int] = {}
        results: list[RestartResult] = []
        try:
            stop_event = manager.Event()
            rows = manager.Queue() if self.display.mode != "off" else None
            executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init)
            split_np = split_to_numpy(self.split)
            pending: set[Future] = set()
            while True:
                # a set stop event: a restart ended the portfolio and its result is on its way
                while not stop_event.is_set() and self.policy.next(time.time()) == RESTART:
                    s = self.seeds[self.policy.start()]
                    log = self._log(s)
                    args = (split_np, self.spec, s, str(log) if log else None, stop_event, rows)
                    f = executor.submit(
                        _run_one, *self.cfgs[s], *args, self.continuous_tol, self.train_fn, self.deadline
                    )
                    futures[f] = s
                    pending.add(f)
                if not pending:
                    break
                if rows is not None:
                    drain(rows, self.display.row)
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                for f in finished:
                    r = f.result()  # re-raises a worker's exception here
                    if r is None:
                        self.policy.ended(0.0, False)
                        self.display.cancelled(futures[f])
                        continue
                    r = state_to_torch(r)
                    self._ended(r)
                    results.append(r)
                    self._finish(r)
                    if rows is not None:
                        drain(rows, self.display.row)
                    self.display.done(r, solved(self.split.kind, r.val, self.continuous_tol))
            if rows is not None:
                drain(rows, self.display.row)
            self._skipped()
            return results
        except BaseException:
            # Ctrl-C or a failed worker: stop the others, give them a moment, then terminate.
            stop_pool(executor, futures, stop_event)
            raise
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            manager.shutdown()


__all__ = [
    "merge_metrics",
    "run_restarts",
    "seed_log_path",
    "term_as_interrupt",
    "within",
    "worker_init",
]
