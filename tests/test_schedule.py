"""The bench scheduler (bench/schedule.py) with fake units: which units run, in what order, and
when a task's restarts stop one another. Threads stand in for worker processes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest

from discrete_transformer.bench import schedule as sched
from discrete_transformer.bench.runner import ROW_FILE, STOP_FILE, BenchConfig, Job, read_row
from discrete_transformer.bench.suite import BenchTask


class Threads:
    def __init__(self, n: int) -> None:
        self.pool = ThreadPoolExecutor(n)
        self.submitted: list[tuple[str, tuple[Any, ...]]] = []

    def submit(self, fn, *args) -> Future:
        self.submitted.append((fn.__name__, args[1:]))
        return self.pool.submit(fn, *args)

    def wait(self, handles, timeout):
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [h for h in handles if h in done]

    def result(self, h):
        return h.result()


class Fake:
    """Restart i of task t sleeps `time[t][i]` seconds (polling the stop file) and solves the task
    when `solves[t][i]`; the log lists (event, task, index) in order."""

    def __init__(
        self,
        times: dict[str, list[float]],
        solves: dict[str, list[bool]],
        fail: str | None = None,
        verifies: dict[str, list[bool]] | None = None,
        extract_s: float = 0.0,
    ) -> None:
        self.times, self.solves, self.fail, self.extract_s = times, solves, fail, extract_s
        # verifies[t][n]: whether the program of task t's first n restarts verifies (default: yes)
        self.verifies = verifies or {}
        self.log: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()

    def note(self, *e: Any) -> None:
        with self.lock:
            self.log.append(e)

    def restart_unit(self, job: Job, index: int, deadline: float) -> dict[str, Any]:
        t = job.task.label
        if t == self.fail:
            return {"error": "RuntimeError: boom", "traceback": "..."}
        self.note("start", t, index)
        end = time.monotonic() + self.times[t][index]
        stopped = False
        while time.monotonic() < end:
            if (job.run_dir / STOP_FILE).exists():
                stopped = True
                break
            time.sleep(0.01)
        self.note("stopped" if stopped else "end", t, index)
        return {
            "seed": job.seed + index,
            "variant": "x",
            "ends": self.solves[t][index] and not stopped,
            "steps": 1,
            "seconds": self.times[t][index],
        }

    def baseline_unit(self, job: Job, name: str) -> dict[str, Any]:
        self.note("baseline", job.task.label, name)
        return {
            f"{name}_test_exact": 0.5,
            f"{name}_test_nmse": 0.1,
            f"{name}_solved": False,
            f"{name}_s": 0.0,
            f"{name}_steps": 1,
            f"{name}_params": 1,
        }

    def extract_unit(self, job: Job, deadline: float, restarts: int | None = None) -> dict[str, Any]:
        self.note("extract", job.task.label, restarts)
        time.sleep(self.extract_s)
        n = restarts if restarts is not None else len(self.times[job.task.label])
        verified = self.verifies.get(job.task.label, [True] * (n + 1))[n]
        assert not any(
            e[0] == "start"
            and e[1] == job.task.label
            and ("end", *e[1:]) not in self.log
            and ("stopped", *e[1:]) not in self.log
            for e in self.log
        ), "a restart still ran"
        return {
            "kind": "discrete",
            "T": 4,
            "finish_s": 0.0,
            "dt_test_exact": 1.0,
            "dt_test_nmse": 0.0,
            "n_test": 1,
            "dt_model_solved": True,
            "dt_restarts_run": 2,
            "dt_steps": 1,
            "extract_s": 0.0,
            "program_verified": verified,
            "program_lines": 1,
            "program_modules": 1,
            "program_ops": 1,
            "program_test_exact": 1.0,
            "program_test_nmse": 0.0,
            "length_gen": True,
        }


def _jobs(tmp_path: Path, names: list[str], restarts: int = 2, budget: float = 60) -> list[Job]:
    cfg = BenchConfig(budget=budget, restarts=restarts)
    return [Job(BenchTask(n, n, "mips"), 0, str(tmp_path), cfg) for n in names]


@pytest.fixture
def fake(monkeypatch):
    def install(**kw: Any) -> Fake:
        f = Fake(**kw)
        for name in ("restart_unit", "baseline_unit", "extract_unit"):
            monkeypatch.setattr(sched, name, getattr(f, name))
        return f

    return install


def test_a_quick_second_restart_stops_the_first_and_the_task_is_finished_without_waiting(tmp_path, fake):
    f = fake(times={"A": [5.0, 0.05]}, solves={"A": [False, True]})
    t0 = time.monotonic()
    rows = list(sched.schedule(_jobs(tmp_path, ["A"]), Threads(2), 2))
    assert time.monotonic() - t0 < 3.0  # restart 0 (5 s) was stopped
    assert ("stopped", "A", 0) in f.log and ("end", "A", 1) in f.log
    assert [r["task"] for r in rows] == ["A"] and rows[0]["error"] is None
    assert read_row(tmp_path / "tasks" / "A") is not None


def test_one_worker_runs_the_portfolio_in_order_and_stops_at_the_first_solve(tmp_path, fake):
    f = fake(times={"A": [0.01, 0.01], "B": [0.01, 0.01]}, solves={"A": [True, True], "B": [False, True]})
    rows = list(sched.schedule(_jobs(tmp_path, ["A", "B"]), Threads(1), 1))
    assert [r["task"] for r in rows] == ["A", "B"]
    starts = [e[1:] for e in f.log if e[0] == "start"]
    assert starts == [("A", 0), ("B", 0), ("B", 1)]  # A's restart 1 never ran: restart 0 solved it
    # each task's units are done before the next task's begin
    tasks_in_order = [e[1] for e in f.log]
    assert tasks_in_order == sorted(tasks_in_order)


def test_a_later_task_starts_only_on_a_worker_the_earlier_one_leaves_idle(tmp_path, fake):
    f = fake(times={"A": [0.3, 0.3], "B": [0.01, 0.01]}, solves={"A": [False, False], "B": [True, True]})
    list(sched.schedule(_jobs(tmp_path, ["A", "B"]), Threads(2), 2))
    first_b = next(i for i, e in enumerate(f.log) if e[1] == "B")
    # both of A's restarts started before anything of B, and A's baselines filled the gap before B
    assert {e[1:] for e in f.log[:first_b] if e[0] == "start"} == {("A", 0), ("A", 1)}
    assert f.log.index(("extract", "A", None)) > f.log.index(("end", "A", 0))


def test_a_failed_unit_gives_an_error_row_that_is_not_written(tmp_path, fake):
    fake(times={"A": [0.01, 0.01], "B": [0.01, 0.01]}, solves={"A": [True, True], "B": [True, True]}, fail="A")
    rows = {r["task"]: r for r in sched.schedule(_jobs(tmp_path, ["A", "B"]), Threads(2), 2)}
    assert rows["A"]["error"] == "RuntimeError: boom" and not (tmp_path / "tasks" / "A" / ROW_FILE).exists()
    assert rows["B"]["error"] is None and (tmp_path / "tasks" / "B" / ROW_FILE).exists()


def test_restarts_share_the_task_budget_counted_from_its_start(tmp_path, fake):
    fake(times={"A": [0.01, 0.01]}, solves={"A": [False, False]})
    runner = Threads(1)
    t0 = time.time()
    list(sched.schedule(_jobs(tmp_path, ["A"]), runner, 1))
    deadlines = [args[-1] for name, args in runner.submitted if name in ("restart_unit", "extract_unit")]
    assert len(deadlines) == 3 and len(set(deadlines)) == 1  # two restarts and the extraction
    assert t0 + 60 <= deadlines[0] <= time.time() + 60


def test_a_fallback_restart_runs_only_after_the_first_two_ended_and_their_program_did_not_verify(tmp_path, fake):
    # three workers: restart 2 does not take the free one at once; it waits for restarts 0 and 1
    # to end unsolved and for the probe extraction of their program, which does not verify
    f = fake(times={"A": [0.4, 0.1, 0.01]}, solves={"A": [False, False, True]}, verifies={"A": [False] * 4})
    rows = list(sched.schedule(_jobs(tmp_path, ["A"], restarts=3), Threads(3), 3))
    probe = f.log.index(("extract", "A", 2))
    assert f.log.index(("end", "A", 0)) < probe < f.log.index(("start", "A", 2))
    assert f.log.index(("end", "A", 1)) < probe
    assert f.log.index(("extract", "A", None)) > f.log.index(("end", "A", 2))  # the final extraction
    assert rows[0]["program_verified"] is False  # the final extraction's row (the fake says no)
    f = fake(times={"B": [0.1, 0.5, 0.01]}, solves={"B": [True, False, False]})
    list(sched.schedule(_jobs(tmp_path, ["B"], restarts=3), Threads(3), 3))
    assert ("start", "B", 2) not in f.log  # restart 0 solved the task before any restart ended unsolved
    assert [e for e in f.log if e[0] == "extract"] == [("extract", "B", None)]  # no probe either


def test_no_fallback_restart_runs_when_the_first_two_models_program_verifies(tmp_path, fake):
    # neither model is exact, but the program of the better one verifies (Add_Mod_4's case)
    f = fake(
        times={"A": [0.05, 0.05, 0.01]}, solves={"A": [False, False, True]}, verifies={"A": [False, False, True, True]}
    )
    rows = list(sched.schedule(_jobs(tmp_path, ["A"], restarts=3), Threads(2), 2))
    assert ("start", "A", 2) not in f.log
    assert [e for e in f.log if e[0] == "extract"] == [("extract", "A", 2)]  # the probe was the extraction
    assert rows[0]["program_verified"] is True and rows[0]["error"] is None
    assert read_row(tmp_path / "tasks" / "A") is not None


def test_no_fallback_starts_when_it_would_not_end_within_the_budget(tmp_path, fake):
    # restarts 0 and 1 take 0.3 s of a 0.5 s budget: a third as long would end past it, so neither
    # it nor the probe before it runs, and the extraction finishes the run from the two that ran
    f = fake(times={"A": [0.3, 0.3, 0.01, 0.01]}, solves={"A": [False] * 4}, verifies={"A": [False] * 5})
    rows = list(sched.schedule(_jobs(tmp_path, ["A"], restarts=4, budget=0.5), Threads(2), 2))
    assert not any(e[0] == "start" and e[2] >= 2 for e in f.log)
    assert [e for e in f.log if e[0] == "extract"] == [("extract", "A", 2)]
    assert rows[0]["error"] is None and read_row(tmp_path / "tasks" / "A") is not None


def test_a_probe_after_which_no_fallback_fits_is_the_extraction(tmp_path, fake):
    # at 0.3 s a 0.3 s fallback fits the 1 s budget, so the probe runs; it takes 0.5 s, after
    # which the fallback would end past the budget: no restart starts and the probe is the extraction
    f = fake(times={"A": [0.3, 0.3, 0.01]}, solves={"A": [False] * 3}, verifies={"A": [False] * 4}, extract_s=0.5)
    rows = list(sched.schedule(_jobs(tmp_path, ["A"], restarts=3, budget=1.0), Threads(2), 2))
    assert ("start", "A", 2) not in f.log
    assert [e for e in f.log if e[0] == "extract"] == [("extract", "A", 2)]
    assert rows[0]["error"] is None and rows[0]["program_verified"] is False


def test_fallbacks_that_fit_the_budget_run_side_by_side_after_the_probe(tmp_path, fake):
    f = fake(times={"A": [0.1, 0.1, 0.1, 0.1]}, solves={"A": [False] * 4}, verifies={"A": [False] * 5})
    list(sched.schedule(_jobs(tmp_path, ["A"], restarts=4, budget=30), Threads(2), 2))
    probe = f.log.index(("extract", "A", 2))
    assert probe < f.log.index(("start", "A", 2)) < f.log.index(("end", "A", 2))
    assert f.log.index(("start", "A", 3)) < f.log.index(("end", "A", 2))  # the two fallbacks overlap
    assert [e for e in f.log if e[0] == "extract"] == [("extract", "A", 2), ("extract", "A", None)]
