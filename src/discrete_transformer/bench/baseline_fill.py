"""``dtx baselines``: train baselines into the baseline cache for a suite, outside any bench.

Why: a recipe such as MIPS's (:mod:`.mips_rnn`) takes minutes to half an hour per task, far more
than a bench's per-task budget; trained here once, without the budget's cap, it is read back by
every ``dtx bench`` with the same baseline configuration (the cache key is the same: same data,
same :class:`.BaselineConfig` settings, same seed — :mod:`.baseline_cache`). A baseline already
in the cache is not trained again, so an interrupted fill resumes where it stopped.

Each (task, seed, baseline) is one unit, run in this process (``jobs == 1``) or on a ``spawn``
pool of ``jobs`` workers with one torch thread each, as the bench runs its units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from .executors import spawn_pool
from .report import git_commit
from .runner import BenchConfig, Job, baseline_unit, cached_baselines
from .suite import resolve_suite

BY = "dtx baselines"  # the source a filled entry records
OnResult = Callable[[Job, str, dict[str, Any]], None]


def plan_fill(items: Sequence[str], seeds: int, config: BenchConfig) -> list[Job]:
    """The jobs of a fill (every task × seed of the suite); nothing is written. Their data and
    keys are the bench's for the same suite, seeds, ``--set`` overrides and baseline settings."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if config.baseline_cache is None:
        raise ValueError("dtx baselines fills the baseline cache: it needs one (no --no-baseline-cache)")
    tasks = resolve_suite(items)
    commit = git_commit()
    return [Job(t, s, "", config, commit) for t in tasks for s in range(seeds)]


def fill(jobs: Sequence[Job], names: Sequence[str], n_jobs: int = 1, on_result: OnResult | None = None) -> list[dict]:
    """Train every (job, baseline) the cache does not hold yet; returns one record per (job,
    baseline): ``{task, seed, baseline, cached, fields | error}`` (``cached``: found, not trained)."""
    if n_jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {n_jobs}")
    out: list[dict] = []

    def record(job: Job, name: str, fields: dict[str, Any], cached: bool) -> None:
        rec = {"task": job.task.label, "seed": job.seed, "baseline": name, "cached": cached, **fields}
        out.append(rec)
        if on_result is not None:
            on_result(job, name, rec)

    todo: list[tuple[Job, str]] = []
    for job in jobs:
        hits = cached_baselines(job)
        for name in names:
            if name in hits:
                record(job, name, hits[name], True)
            else:
                todo.append((job, name))
    for (job, name), fields in _run(todo, n_jobs):
        record(job, name, fields, False)
    return out


def _run(todo: list[tuple[Job, str]], n_jobs: int) -> Iterator[tuple[tuple[Job, str], dict[str, Any]]]:
    if n_jobs == 1 or len(todo) <= 1:
        for job, name in todo:
            yield (job, name), baseline_unit(job, name, BY)
        return
    with spawn_pool(n_jobs) as pool:
        futures: dict[Future, tuple[Job, str]] = {pool.submit(baseline_unit, j, n, BY): (j, n) for j, n in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield futures[f], f.result()


__all__ = ["BY", "fill", "plan_fill"]
