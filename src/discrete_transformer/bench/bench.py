"""``dtx bench``: every task × seed as a job, rows streamed into a live table, reports written.

Resume: a job whose ``OUT/tasks/<task>/bench_row.json`` exists is not run again (its row is
read back); a job directory without one is an interrupted job and is redone from scratch. The
reports are rewritten after every finished job and on interruption, so nothing finished is lost.

One bench at a time per directory: :func:`run_bench` holds OUT's lock (:mod:`..rundir_lock`) while
it runs; the job directories inside are written only by its workers, which take no lock.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_json
from ..rundir_lock import contents, hold
from ..training.restarts import term_as_interrupt
from .executors import check_executor, run_jobs
from .generalization import GENERATED, write_generalization
from .report import git_commit, headline, machine, now_utc, previous_wall, write_reports
from .runner import BenchConfig, Job, read_row
from .suite import resolve_suite

MARKER = "bench.json"  # marks OUT as a bench directory (resumable)
OnRow = Callable[[dict[str, Any], int, int], None]


def plan_jobs(items: Sequence[str], seeds: int, out: str | Path, config: BenchConfig) -> list[Job]:
    """Validate the suite and options and list the jobs (nothing is written)."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(contents(out)) and not (out / MARKER).is_file():  # a leftover lock file is not content
        raise ValueError(f"--out {out}: directory is not empty and is not a bench directory; choose a new directory")
    if (out / MARKER).is_file():  # resuming: the rows already there must come from the same configuration
        try:
            recorded = tuple(json.loads((out / MARKER).read_text(encoding="utf-8")).get("overrides", []))
        except (OSError, ValueError, AttributeError):
            recorded = ()
        if recorded != tuple(config.overrides):
            was = ", ".join(recorded) or "the defaults"
            now = ", ".join(config.overrides) or "the defaults"
            raise ValueError(
                f"--out {out}: this bench ran with {was}; resuming it with {now} would mix "
                "configurations. Use the same --set options or a new directory"
            )
    tasks = resolve_suite(items)
    commit = git_commit()
    return [Job(t, s, str(out), config, commit) for t in tasks for s in range(seeds)]


def run_bench(
    jobs: Sequence[Job],
    out: str | Path,
    executor: str = "local",
    n_jobs: int = 1,
    command: str = "dtx bench",
    docs: Path | None = None,
    address: str | None = None,
    on_row: OnRow | None = None,
    public_results: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the jobs and write the reports; returns the summary (with ``headline``).

    Generated tasks also get the per-family report (``generalization.md``, which ``docs`` gets
    instead of the benchmark table when every task is generated); ``public_results``
    (:func:`.generalization.load_public_results`) says which public tasks the library verifies.
    Raises :class:`~..api.RunDirError` while another process runs a bench in `out`."""
    check_executor(executor, n_jobs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = jobs[0].config if jobs else BenchConfig()
    with hold(out, command, noun="bench directory"):  # one bench per directory; its workers take no lock
        return _run_owned(jobs, out, executor, n_jobs, command, docs, address, on_row, public_results, cfg)


def _run_owned(
    jobs: Sequence[Job],
    out: Path,
    executor: str,
    n_jobs: int,
    command: str,
    docs: Path | None,
    address: str | None,
    on_row: OnRow | None,
    public_results: dict[str, Any] | None,
    cfg: BenchConfig,
) -> dict[str, Any]:
    """:func:`run_bench` once it owns `out`."""
    if not (out / MARKER).is_file():  # what lets a rerun (and nothing else) reuse this directory
        atomic_write_json(out / MARKER, {"format": "dtx-bench-dir", "version": 1, "overrides": list(cfg.overrides)})
    t0 = time.perf_counter()
    wall0 = previous_wall(out)
    order = {j.key: i for i, j in enumerate(jobs)}
    rows: dict[str, dict[str, Any]] = {}
    todo: list[Job] = []
    for j in jobs:
        r = read_row(j.run_dir)
        if r is not None:
            rows[j.key] = {**r, "resumed": True}
        else:
            todo.append(j)
    meta = {
        "date": now_utc(),
        "machine": machine(),
        "commit": git_commit(),
        "command": command,
        "executor": executor,
        "jobs": n_jobs,
        "seeds": len({j.seed for j in jobs}),
        "budget": cfg.budget,
        "baseline": asdict(cfg.baseline),
        "max_steps": cfg.max_steps,
        "overrides": list(cfg.overrides),
        "wall_s": wall0,
    }
    if public_results is not None:
        meta["public_results"] = public_results
    every_generated = bool(jobs) and all(j.task.family == GENERATED for j in jobs)

    def key_of(row: dict[str, Any]) -> str:
        return row["task"] if int(row.get("seed", 0)) == 0 else f"{row['task']}.seed{row['seed']}"

    def write(final: bool = False) -> dict[str, Any]:
        meta["wall_s"] = wall0 + time.perf_counter() - t0
        ordered = [rows[k] for k in sorted(rows, key=lambda k: order.get(k, len(order)))]
        # DIR's reports are rewritten as rows finish; `docs` (typically a file under version
        # control) only once every job has a row, so an interrupted bench never leaves a
        # partial table there.
        complete = final and len(rows) >= len(jobs)
        done_docs = docs if complete else None
        s = write_reports(out, ordered, meta, None if every_generated else done_docs)
        per_family = write_generalization(out, ordered, meta, done_docs if every_generated else None)
        s["headline"] = per_family if every_generated and per_family else headline(s)
        return s

    for r in sorted(rows.values(), key=lambda r: order.get(key_of(r), 0)):
        if on_row is not None:
            on_row(r, len(rows), len(jobs))
    # SIGTERM (a scheduler, `kill`, or a background job whose SIGINT the shell ignores) stops the
    # bench like Ctrl-C: workers terminated, the reports written with the rows finished so far.
    previous_term = term_as_interrupt()
    try:
        for row in run_jobs(todo, executor, n_jobs, address):
            rows[key_of(row)] = row
            write()
            if on_row is not None:
                on_row(row, len(rows), len(jobs))
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        summary = write(final=True)
    return summary


__all__ = ["plan_jobs", "run_bench"]
