"""What runs when: the bench's jobs as units of work (:mod:`.runner`) on ``slots`` workers.

Each job (task, seed) is ``restarts`` restart units, one unit per baseline and an extract unit.
Whenever a worker is free it takes the first ready unit of the earliest unfinished job, in the
order restarts > extract > baselines. When a task's restarts and its probe are ready is the restart
policy's (:class:`..training.policy.Portfolio`, the one ``dtx train``/``dtx run`` follow), with
``SIDE_BY_SIDE`` restarts at once and the probe step enabled:

- the restarts of a task start side by side when two workers are free (as ``dtx run`` runs them),
  so a task whose second restart solves it quickly (Max_Seen: the plain search, 3 s) does not wait
  for the first one; the first restart to solve the task writes the run's stop file, which ends
  the others at their next evaluation, and restarts not yet started are dropped;
- at most ``SIDE_BY_SIDE`` (2) of a task's restarts run at once: restart i >= 2 of a longer
  portfolio (a fallback search) is ready only once i - 1 earlier ones have ended unsolved, so it
  never runs beside the first two while one of them may still solve the task;
- before the first fallback restart, a *probe* extract unit extracts the program of the first
  two restarts' best model: a task counts as solved when its program verifies, which an inexact
  model's often does (Add_Mod_4: model 0.1 %, program verified), and then no fallback runs;
- a fallback restart (and the probe before the first one) starts only when it can end within the
  budget, judged by the longest restart the task has run so far (they ran their whole schedule):
  a restart cut short by the budget is compute spent on a search whose temperatures never fell,
  so on a slower machine the portfolio simply ends sooner; a probe after which no fallback fits
  is the job's extraction;
- a job's extract unit is ready once its restarts are resolved (one solved, all finished, the
  probe's program verified — then the probe is the job's extraction — or no fallback fits);
- baselines fill a worker the job's restarts leave idle; a later job starts only when the earlier
  ones have nothing ready, so no worker waits while there is work;
- a baseline found in the baseline cache (:mod:`.baseline_cache`) when the job starts is no unit:
  its cached fields go straight into the row.

All restarts of a task end within ``budget`` seconds of the task's first unit. A task's times in
its row are wall-clock times seen here: ``wall_s`` from its first unit's start to its last unit's
end, restarts included however they overlapped. With one slot the units run one after another in
this process, the restarts in portfolio order, and a restart that solves the task ends them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..rundir import RunDir
from ..training.policy import PROBE, RESTART, Portfolio
from .baselines import BASELINES
from .runner import (
    Job,
    assemble_row,
    baseline_unit,
    cached_baselines,
    extract_unit,
    job_configs,
    new_row,
    prepare_dir,
    restart_unit,
    write_row,
)

# A task's restarts that may run at once: the default portfolio's two searches side by side; a
# longer portfolio's later restarts wait for earlier ones to end unsolved (docs/bench.md).
SIDE_BY_SIDE = 2


class Runner(Protocol):
    """Runs units somewhere: a handle per submitted unit, its result once done."""

    def submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[Any]: ...

    def result(self, handle: Any) -> dict[str, Any]: ...


@dataclass
class _JobState:
    job: Job
    restarts: Portfolio  # the policy of the job's restarts and its probe
    start: float | None = None  # wall clock (time.time) of the first unit
    restarts_end: float | None = None  # wall clock when the job's latest restart ended
    running: int = 0  # units in flight
    baselines_left: list[str] = field(default_factory=lambda: list(BASELINES))
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    extract_started: bool = False
    extract: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    done: bool = False
    cache_checked: bool = False  # the baseline cache was looked up for this job

    def next_kind(self, now: float) -> str | None:
        """The kind of the job's first ready unit (restart, probe, extract, baseline), or None."""
        if self.done or self.error is not None:
            return None
        p = self.restarts
        step = p.next(now)
        if step is not None:
            return step
        # a probe that closed the portfolio is already the job's extraction (self.extract)
        if p.done and not self.extract_started and not p.probe_verified and self.extract is None:
            return "extract"
        return "baseline" if self.baselines_left else None

    def use_cached(self, parts: dict[str, dict[str, Any]]) -> None:
        """Take the cached baselines' row fields: those baselines are not queued."""
        self.baselines.update(parts)
        self.baselines_left = [b for b in self.baselines_left if b not in parts]

    def take(self, kind: str) -> tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]:
        """Mark a unit of that kind as started; its function and arguments."""
        assert self.start is not None
        deadline = self.start + self.job.config.budget
        p = self.restarts
        self.running += 1
        if kind == RESTART:
            return restart_unit, (self.job, p.start(), deadline)
        if kind == "extract":
            self.extract_started = True
            # restarts never started (no time left for them) stay untrained: the run ends with the rest
            return extract_unit, (self.job, deadline) + ((p.started,) if p.closed else ())
        if kind == PROBE:
            p.start_probe()
            return extract_unit, (self.job, deadline, p.started)
        return baseline_unit, (self.job, self.baselines_left.pop(0))


def schedule(jobs: Sequence[Job], runner: Runner, slots: int) -> Iterator[dict[str, Any]]:
    """Run the jobs' units on ``slots`` workers; yield each job's row as it finishes (written to its
    run directory first, unless the job failed: then the row has ``error`` and is not written)."""
    states = [_JobState(j, Portfolio(job_configs(j)[1].restarts, SIDE_BY_SIDE, probe=True)) for j in jobs]
    flight: dict[Any, tuple[_JobState, str]] = {}
    while True:
        while len(flight) < slots:
            pick = next(((s, k) for s in states if (k := _next_kind(s)) is not None), None)
            if pick is None:
                break
            s, kind = pick
            if s.start is None:
                prepare_dir(s.job.run_dir)  # an interrupted job starts again from scratch
                s.start = time.time()  # the budget's deadline counts from here
                s.restarts.deadline = s.start + s.job.config.budget
            fn, args = s.take(kind)
            flight[runner.submit(fn, *args)] = (s, kind)
        if not flight:
            return
        for h in runner.wait(list(flight), timeout=0.5):
            s, kind = flight.pop(h)
            s.running -= 1
            out = runner.result(h)
            row = _record(s, kind, out)
            if row is not None:
                yield row


def _next_kind(s: _JobState) -> str | None:
    """:meth:`_JobState.next_kind`; a job not yet started first takes its cached baselines. Jobs
    are considered in order and an earlier one with a ready unit stops the search, so the lookup
    (which generates the task's data) runs when the job is about to start, before its budget's
    clock does."""
    if s.start is None and not s.cache_checked:
        s.cache_checked = True
        s.use_cached(cached_baselines(s.job))
    return s.next_kind(time.time())


def _record(s: _JobState, kind: str, out: dict[str, Any]) -> dict[str, Any] | None:
    """Take a unit's result into its job's state; the job's row when the job is finished."""
    now = time.time()
    assert s.start is not None
    if out.get("error"):
        s.error = s.error or out  # the job ends with an error row: its policy no longer matters
    elif kind == RESTART:
        if s.restarts.ended(float(out.get("seconds", 0.0)), bool(out["ends"])):
            RunDir(s.job.run_dir).request_stop()  # the task's other running restarts end
    elif kind == "extract":
        s.extract = out
    elif kind == PROBE:
        if s.restarts.probe_ended(bool(out.get("program_verified")), now):
            s.extract = out  # verified, or no fallback fits after it: the job's extraction
    else:
        s.baselines.update({k: out for k in BASELINES if f"{k}_test_exact" in out})
    if kind == RESTART:
        s.restarts_end = now  # no restart starts once they are resolved: the last one sets it
    if s.running > 0:
        return None
    if s.error is not None:
        s.done = True
        return {
            **new_row(s.job),
            "error": s.error["error"],
            "traceback": s.error.get("traceback"),
            "wall_s": round(now - s.start, 3),
        }
    if s.extract is None or len(s.baselines) < len(BASELINES):
        return None
    s.done = True
    restarts_s = (s.restarts_end or now) - s.start
    row = assemble_row(s.job, s.extract, s.baselines, restarts_s, now - s.start)
    write_row(s.job, row)
    return row


__all__ = ["Runner", "schedule"]
