"""Restarts: K seeds of :func:`train_restart`, run in parallel processes; keep the best.

- Seeds ``seed, seed+1, …, seed+K-1``, one restart each, in a ``spawn`` process pool of
  ``min(K, os.cpu_count())`` workers, each with ``torch.set_num_threads(1)`` (two processes with
  one thread each beat one process with two threads on these small models, and several processes
  with several threads each oversubscribe the cores badly). With K == 1 (or ``parallel=False``)
  restarts run in this process, one after another: simplest to test and debug.
- Early stop across processes: a ``Manager().Event()`` is set as soon as one restart is solved
  (exact on validation for discrete tasks, nMSE ≤ ``ENOUGH_TOL`` for continuous ones, only
  when ``train_cfg.stop_on_exact``); every other restart polls it at each evaluation and ends,
  and restarts not yet started are cancelled.
- Metrics: restart N appends its rows to ``out_dir/metrics_seed{N}.jsonl`` while it runs (so a
  live run can be followed with ``tail -f``); when all have finished (or on Ctrl-C) the files are
  concatenated, in seed order, into ``out_dir/metrics.jsonl`` and removed. Each row has ``seed``.
- Progress: a Rich progress bar, one line per restart (step/steps, τ, best validation so far),
  fed from the workers' ``progress`` callbacks through a Manager queue. With ``progress=False``
  nothing is printed; when stdout is not a terminal, one plain line per finished restart.
- Ctrl-C: workers and the Manager ignore SIGINT (so they print no tracebacks); the parent sets
  the stop event, cancels what has not started, terminates what is still running after a short
  grace period, and re-raises ``KeyboardInterrupt``.

Best = lowest ``val["score"]``, ties broken by the lower seed.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig, restart_configs
from ..model import DataSpec
from .checkpoint import atomic_write_text
from .loop import RestartResult, Split, train_restart
from .resume import write_history

CONTINUOUS_TOL = 1e-7
# No further restart starts once one is within the verification rule's tolerance for continuous
# tasks (extraction/verify.CONTINUOUS_NMSE). A restart's own search and polish aim at the stricter
# `continuous_tol`, which is cheap there; another restart is not (a whole search), and buys
# nothing the verification can see: bench p_order's four continuous rows whose first restart
# ended at 1.2e-7..3.3e-7 ran a second one and verified with the first one's model.
ENOUGH_TOL = 1e-6
INTERRUPT_GRACE_SECONDS = 3.0


# ----------------------------------------------------------------------------- helpers


def is_solved(kind: str, val: dict[str, float], continuous_tol: float = CONTINUOUS_TOL) -> bool:
    """The criterion of :func:`train_restart`: exact on validation, or nMSE within tolerance."""
    if kind == "discrete":
        return val["exact"] >= 1.0
    return val["nmse"] <= continuous_tol


def ends_portfolio(kind: str, val: dict[str, float], continuous_tol: float = CONTINUOUS_TOL) -> bool:
    """Whether a finished restart makes the remaining ones unnecessary: solved, or (continuous)
    within ENOUGH_TOL (or `continuous_tol`, if looser)."""
    return is_solved(kind, val, max(continuous_tol, ENOUGH_TOL))


def fits(deadline: float | None, longest: float) -> bool:
    """Whether a restart as long as ``longest`` seconds, started now, ends by ``deadline``
    (wall clock, ``time.time()``; None = no budget)."""
    return deadline is None or time.time() + longest <= deadline


def within(train_cfg: TrainConfig, deadline: float | None) -> TrainConfig:
    """``train_cfg`` whose per-restart time limit is at most what is left until ``deadline``."""
    if deadline is None:
        return train_cfg
    left = max(deadline - time.time(), 1e-3)
    limit = left if train_cfg.time_limit is None else min(train_cfg.time_limit, left)
    return dataclasses.replace(train_cfg, time_limit=limit)


def seed_log_path(out_dir: Path, seed: int) -> Path:
    return out_dir / f"metrics_seed{seed}.jsonl"


def _split_to_numpy(split: Split) -> dict[str, Any]:
    """Plain arrays for the trip to a worker (no torch shared-memory handles)."""
    return {
        "x_train": split.x_train.numpy(),
        "y_train": split.y_train.numpy(),
        "x_val": split.x_val.numpy(),
        "y_val": split.y_val.numpy(),
        "kind": split.kind,
        "var_y": split.var_y.numpy(),
    }


def _split_from_numpy(d: dict[str, Any]) -> Split:
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in d.items() if k != "kind"}
    return Split(kind=d["kind"], **t)


def _state_to_numpy(result: RestartResult) -> RestartResult:
    result.state = {k: v.detach().cpu().numpy() for k, v in result.state.items()}
    return result


def _state_to_torch(result: RestartResult) -> RestartResult:
    result.state = {
        k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v for k, v in result.state.items()
    }
    return result


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def term_as_interrupt() -> Any:
    """Treat SIGTERM like Ctrl-C while restarts run (workers are stopped, logs merged); returns
    the previous handler, or None when not in the main thread (handlers cannot be set there)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _exit_when_orphaned(parent: int) -> None:
    """Daemon thread body: a worker whose parent died (killed, not interrupted) exits at once
    instead of training on, unseen, to the end of its restart."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def worker_init() -> None:
    """Initialiser of a worker process (restarts here, bench jobs too): Ctrl-C is the parent's,
    one torch thread, and exit when the parent dies."""
    import threading

    _ignore_sigint()
    torch.set_num_threads(1)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


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
    longest: Any = None,
) -> RestartResult | None:
    """One restart in a pool worker. Returns None when the run was already solved elsewhere, or
    when the restart would not end within the budget (``longest``: a shared value, the longest
    finished restart's seconds)."""
    if stop_event.is_set():
        return None
    if deadline is not None:
        if longest.value > 0 and not fits(deadline, longest.value):
            return None  # the first restarts always start (under what is left of the budget)
        train_cfg = within(train_cfg, deadline)
    split = _split_from_numpy(split_np)

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
    if longest is not None:  # here, not in the parent: this worker may take the next restart at once
        longest.value = max(longest.value, float(result.seconds))
    return _state_to_numpy(result)


def merge_metrics(out_dir: Path, seeds: list[int]) -> Path:
    """Concatenate the per-seed logs (seed order) into metrics.jsonl, atomically; remove them."""
    target = out_dir / "metrics.jsonl"
    parts = []
    for s in sorted(seeds):
        p = seed_log_path(out_dir, s)
        if p.exists():
            text = p.read_text(encoding="utf-8")
            if text and not text.endswith("\n"):
                text += "\n"
            parts.append(text)
    atomic_write_text(target, "".join(parts))
    for s in seeds:
        p = seed_log_path(out_dir, s)
        if p.exists():
            p.unlink()
    return target


# ----------------------------------------------------------------------------- display


class _Display:
    """Rich progress bar (terminal), plain end-of-restart lines (not a terminal), or nothing."""

    def __init__(self, steps: dict[int, int], kind: str, enabled: bool) -> None:
        """`steps`: each restart's (seed's) step count (its portfolio variant may scale them)."""
        from rich.console import Console

        self.console = Console()
        self.kind = kind
        self.steps = dict(steps)
        seeds = list(steps)
        self.mode = "off" if not enabled else ("rich" if self.console.is_terminal else "plain")
        self.best: dict[int, float] = {}
        self.progress = None
        self.tasks: dict[int, Any] = {}
        if self.mode == "rich":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("seed {task.fields[seed]:>3}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("τ {task.fields[tau]}"),
                TextColumn("best val {task.fields[best]}"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            for s in seeds:
                self.tasks[s] = self.progress.add_task(
                    "", total=self.steps[s], seed=s, tau="  -  ", best="-", status=""
                )

    def _fmt_best(self, seed: int) -> str:
        v = self.best.get(seed)
        if v is None:
            return "-"
        return f"exact {100 * v:6.2f}%" if self.kind == "discrete" else f"nMSE {v:.2e}"

    def __enter__(self) -> _Display:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def row(self, seed: int, row: dict) -> None:
        if self.kind == "discrete":
            v = float(row.get("val_exact", 0.0))
            self.best[seed] = max(self.best.get(seed, -1.0), v)
        else:
            v = float(row.get("val_nmse", float("inf")))
            self.best[seed] = min(self.best.get(seed, float("inf")), v)
        if self.progress is not None:
            self.progress.update(
                self.tasks[seed],
                completed=int(row["step"]) + 1,
                tau=f"{float(row['tau']):.3f}",
                best=self._fmt_best(seed),
            )

    def done(self, result: RestartResult, solved: bool) -> None:
        steps = self.steps[result.seed]
        status = "solved" if solved else ("stopped" if result.steps_run < steps else "done")
        if self.progress is not None:
            self.progress.update(
                self.tasks[result.seed],
                completed=steps if solved or status == "done" else result.steps_run,
                status=status,
            )
        elif self.mode == "plain":
            v = result.val
            score = (
                f"val exact {100 * v['exact']:.2f}% (nMSE {v['nmse']:.2e})"
                if self.kind == "discrete"
                else f"val nMSE {v['nmse']:.2e}"
            )
            print(
                f"restart seed {result.seed}: {score}, {result.steps_run} steps, {result.seconds:.1f} s, {status}",
                flush=True,
            )

    def cancelled(self, seed: int) -> None:
        if self.progress is not None:
            self.progress.update(self.tasks[seed], status="skipped")


# ----------------------------------------------------------------------------- main entry


def run_restarts(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    split: Split,
    spec: DataSpec,
    seed: int,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    continuous_tol: float = CONTINUOUS_TOL,
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
    seconds of this call, and a restart starts only if it can (:func:`fits`); skipped restarts are
    not in the list either.
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
    display = _Display({s: cfgs[s][1].total_steps for s in seeds}, split.kind, progress)
    previous_term = term_as_interrupt()
    try:
        with display:
            if len(seeds) == 1 or not parallel:
                results = _run_in_process(
                    cfgs, train_cfg, split, spec, seeds, out, display, continuous_tol, fn, on_finished, deadline
                )
            else:
                workers = max_workers if max_workers is not None else (os.cpu_count() or 1)
                workers = max(1, min(len(seeds), workers))
                results = _run_in_pool(
                    cfgs,
                    train_cfg,
                    split,
                    spec,
                    seeds,
                    out,
                    display,
                    continuous_tol,
                    workers,
                    fn,
                    on_finished,
                    deadline,
                )
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


def _run_in_process(
    cfgs: dict[int, tuple[ModelConfig, TrainConfig]],
    train_cfg: TrainConfig,
    split: Split,
    spec: DataSpec,
    seeds: list[int],
    out: Path | None,
    display: _Display,
    continuous_tol: float,
    train_fn: Callable[..., RestartResult],
    on_finished: Callable[[RestartResult], None] | None = None,
    deadline: float | None = None,
) -> list[RestartResult]:
    results: list[RestartResult] = []
    for s in seeds:
        if (
            results
            and train_cfg.stop_on_exact
            and any(ends_portfolio(split.kind, r.val, continuous_tol) for r in results)
        ):
            display.cancelled(s)
            continue
        if results and not fits(deadline, max(r.seconds for r in results)):
            display.cancelled(s)
            continue
        on_row: Callable[[int, dict], None] = lambda step, row, s=s: display.row(s, row)  # noqa: E731
        r = train_fn(
            cfgs[s][0],
            within(cfgs[s][1], deadline),
            split,
            spec,
            s,
            log_path=seed_log_path(out, s) if out is not None else None,
            progress=on_row,
            continuous_tol=continuous_tol,
        )
        display.done(r, is_solved(split.kind, r.val, continuous_tol))
        results.append(r)
        if on_finished is not None:
            on_finished(r)
    return results


def _drain(rows: Any, display: _Display) -> None:
    while True:
        try:
            msg = rows.get_nowait()
        except queue_mod.Empty:
            return
        except (EOFError, OSError, BrokenPipeError):
            return
        if msg[0] == "row":
            display.row(msg[1], msg[2])


def _run_in_pool(
    cfgs: dict[int, tuple[ModelConfig, TrainConfig]],
    train_cfg: TrainConfig,
    split: Split,
    spec: DataSpec,
    seeds: list[int],
    out: Path | None,
    display: _Display,
    continuous_tol: float,
    workers: int,
    train_fn: Callable[..., RestartResult],
    on_finished: Callable[[RestartResult], None] | None = None,
    deadline: float | None = None,
) -> list[RestartResult]:
    ctx = mp.get_context("spawn")
    manager = SyncManager(ctx=ctx)
    manager.start(_ignore_sigint)
    executor: ProcessPoolExecutor | None = None
    stop_event: Any = None
    futures: dict[Future, int] = {}
    results: list[RestartResult] = []
    try:
        stop_event = manager.Event()
        longest = manager.Value("d", 0.0) if deadline is not None else None
        rows = manager.Queue() if display.mode != "off" else None
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init)
        split_np = _split_to_numpy(split)
        for s in seeds:
            log = str(seed_log_path(out, s)) if out is not None else None
            f = executor.submit(
                _run_one,
                *cfgs[s],
                split_np,
                spec,
                s,
                log,
                stop_event,
                rows,
                continuous_tol,
                train_fn,
                deadline,
                longest,
            )
            futures[f] = s
        pending = set(futures)
        while pending:
            if rows is not None:
                _drain(rows, display)
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            for f in done:
                if f.cancelled():
                    display.cancelled(futures[f])
                    continue
                r = f.result()  # re-raises a worker's exception here
                if r is None:
                    display.cancelled(futures[f])
                    continue
                r = _state_to_torch(r)
                results.append(r)
                if on_finished is not None:
                    on_finished(r)
                if rows is not None:
                    _drain(rows, display)
                display.done(r, is_solved(split.kind, r.val, continuous_tol))
            if stop_event.is_set():
                for f in pending:
                    f.cancel()  # only succeeds for restarts that have not started
        if rows is not None:
            _drain(rows, display)
        return results
    except BaseException:
        # Ctrl-C or a failed worker: stop the others, give them a moment, then terminate.
        _stop_pool(executor, futures, stop_event)
        raise
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        manager.shutdown()


def _stop_pool(executor: ProcessPoolExecutor | None, futures: dict[Future, int], stop_event: Any) -> None:
    """Cancel what has not started, ask running restarts to stop (they ignore SIGINT and poll the
    event at each evaluation), wait a short grace period, then terminate what is still running."""
    try:
        for f in futures:
            f.cancel()
        grace = 0.0
        if stop_event is not None:
            stop_event.set()
            grace = INTERRUPT_GRACE_SECONDS
        running = [f for f in futures if not f.done()]
        if running and grace > 0:
            wait(running, timeout=grace)
    except BaseException:  # a second Ctrl-C, or the Manager already gone: terminate at once
        pass
    if executor is None:
        return
    procs = list((getattr(executor, "_processes", None) or {}).values())
    for p in procs:
        try:
            if p.is_alive():
                p.terminate()
        except Exception:
            pass
    for p in procs:
        try:
            p.join(timeout=2)
        except Exception:
            pass


__all__ = [
    "CONTINUOUS_TOL",
    "ENOUGH_TOL",
    "ends_portfolio",
    "fits",
    "is_solved",
    "within",
    "merge_metrics",
    "run_restarts",
    "seed_log_path",
    "term_as_interrupt",
    "worker_init",
]
