"""One bench job: one task, one seed -> one result row.

Train the Discrete Transformer with the default configuration under the per-task wall-time
budget (restarts run one after another in this process, and together stay within the budget),
extract and verify its program (test split and 2xT sequences), train the two baselines on the
same split, and write ``OUT/tasks/<label>/bench_row.json`` — atomically and last, so that its
presence is what "this job is finished" means to a resumed bench. The job's directory is a normal
run directory: ``dtx extract`` and :func:`~..api.load_run` work on it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from .baselines import BASELINES, BaselineConfig, train_baseline
from .suite import BenchTask

ROW_FILE = "bench_row.json"
ROW_FORMAT = "dtx-bench-row"
CONTINUOUS_TOL = 1e-6  # the verification rule for continuous tasks (extract/verify.py)


@dataclass(frozen=True)
class BenchConfig:
    """Run controls of a bench (the model and training configurations stay at their defaults).

    ``max_steps`` caps DT training steps per restart and ``baseline`` may be shrunk: both exist
    for fast tests only and are recorded in every row."""

    # seconds of DT training per task, all restarts included: the portfolio's plain restart of 2,000
    # steps takes ~45-55 s under the bench's own 2-job load on a 2-core machine, the arithmetic one
    # (periodic units) ~60-90 s (bench21, 2026-11-30): 150 s lets the second one finish
    budget: float = 150.0
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    max_steps: int | None = None
    restarts: int | None = None  # None: TrainConfig's default
    # `--set section.field=value` strings: one configuration for every task, measured as a
    # candidate default (empty = the defaults). Kept as text so that rows, reports and Ray
    # workers all carry the same record of what ran.
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from ..overrides import configs_from_overrides

        if not self.budget > 0:
            raise ValueError(f"--budget must be > 0 seconds, got {self.budget}")
        object.__setattr__(self, "overrides", tuple(self.overrides))
        configs_from_overrides(self.overrides)  # a bad override fails here, before any job runs
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")


@dataclass(frozen=True)
class Job:
    task: BenchTask
    seed: int
    out: str  # the bench's OUT directory
    config: BenchConfig
    commit: str = "unknown"  # the code's commit when the bench was planned; recorded in the row

    @property
    def key(self) -> str:
        return self.task.label if self.seed == 0 else f"{self.task.label}.seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / "tasks" / self.key


def read_row(run_dir: Path) -> dict[str, Any] | None:
    """The finished row of a job, or None when the job has not finished (or its row is unreadable)."""
    p = Path(run_dir) / ROW_FILE
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == ROW_FORMAT else None


def _budgeted_restart(deadline: float, model_cfg, train_cfg: TrainConfig, split, spec, seed, **kw):
    """``train_restart`` whose time limit is what is left of the task's budget: restarts run
    in sequence, so the budget covers all of them (the first one may use it all)."""
    from ..training.loop import train_restart

    left = max(deadline - time.perf_counter(), 1e-3)
    return train_restart(model_cfg, dataclasses.replace(train_cfg, time_limit=left), split, spec, seed, **kw)


def _program_ops(program: Any) -> int:
    """Operations of a program: one per routing head, the expression size of each MLP line."""
    from ..extract.graph import MLPNode

    return int(sum(n.size if isinstance(n, MLPNode) else 1 for n in program.ir.nodes if not n.is_alias))


def _accuracy_ge(kind: str, dt: dict[str, float], other: dict[str, float]) -> bool:
    """DT at least as accurate as another model on the test split: exact-match fraction for
    discrete tasks, normalised MSE for continuous ones (both within the tolerance counts as equal)."""
    if kind == "discrete":
        return dt["exact"] >= other["exact"]
    if dt["nmse"] <= CONTINUOUS_TOL and other["nmse"] <= CONTINUOUS_TOL:
        return True
    return dt["nmse"] <= other["nmse"]


def model_solved(kind: str, test: dict[str, float]) -> bool:
    return test["exact"] >= 1.0 if kind == "discrete" else test["nmse"] <= CONTINUOUS_TOL


def _prepare_dir(d: Path) -> None:
    """A job directory without a row is an interrupted job: start it again from scratch."""
    if d.exists():
        shutil.rmtree(d)
    d.parent.mkdir(parents=True, exist_ok=True)


def run_job(job: Job) -> dict[str, Any]:
    """Run one job (or return its row when it already finished). Never raises for a failure of
    the task itself: the row then has ``error`` set and is not written, so a rerun retries it."""
    import torch

    from ..api import _execute, _prepare, extract
    from ..overrides import configs_from_overrides
    from ..training.checkpoint import atomic_write_json
    from ..training.loop import Split

    done = read_row(job.run_dir)
    if done is not None:
        return {**done, "resumed": True}
    torch.set_num_threads(1)
    cfg = job.config
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "format": ROW_FORMAT,
        "task": job.task.label,
        "source": job.task.source,
        "family": job.task.family,
        "seed": job.seed,
        "budget_s": cfg.budget,
        "max_steps": cfg.max_steps,
        "overrides": list(cfg.overrides),
        "run_dir": str(job.run_dir),
        "commit": job.commit,
    }
    try:
        _prepare_dir(job.run_dir)
        model_cfg, train_cfg, extract_cfg = configs_from_overrides(cfg.overrides)
        training = train_cfg or TrainConfig()
        overrides: dict[str, Any] = {}
        if cfg.max_steps is not None:
            overrides["steps"] = min(training.steps, cfg.max_steps)
        if cfg.restarts is not None:
            overrides["restarts"] = cfg.restarts
        plan = _prepare(job.task.source, job.run_dir, job.seed, model_cfg, train_cfg,
                        overrides.get("restarts"), overrides.get("steps"), None, False, 0)
        ds = plan.ds
        row["kind"] = ds.kind
        row["T"] = int(ds.T)
        deadline = time.perf_counter() + cfg.budget
        result = _execute(plan, progress=False, parallel=False,
                          train_fn=functools.partial(_budgeted_restart, deadline))
        row["dt_train_s"] = round(time.perf_counter() - t0, 3)
        row["dt_test_exact"] = result.test["exact"]
        row["dt_test_nmse"] = result.test["nmse"]
        row["n_test"] = result.test["n"]
        row["dt_model_solved"] = model_solved(ds.kind, result.test)
        row["dt_restarts_run"] = len(result.restarts)
        row["dt_steps"] = result.best.steps_run

        t1 = time.perf_counter()
        program = extract(result, config=extract_cfg)
        program.save(job.run_dir)
        v = program.verification
        row["extract_s"] = round(time.perf_counter() - t1, 3)
        row["program_verified"] = bool(v.verified)
        row["program_lines"] = len(program.source.splitlines())
        row["program_modules"] = len([n for n in program.ir.nodes if not n.is_alias])
        row["program_ops"] = _program_ops(program)
        row["program_test_exact"] = v.test.exact
        row["program_test_nmse"] = v.test.nmse
        row["length_gen"] = None if v.longer is None else bool(v.longer.passed)

        split = Split.from_arrays(ds.x_train, ds.y_train, ds.kind, result.train_config.val_size, job.seed)
        bcfg = cfg.baseline if cfg.baseline.time_limit is not None else dataclasses.replace(
            cfg.baseline, time_limit=cfg.budget)
        for name in BASELINES:
            b = train_baseline(name, result.spec, split, ds.x_test, ds.y_test, bcfg, seed=job.seed)
            row[f"{name}_test_exact"] = b.test["exact"]
            row[f"{name}_test_nmse"] = b.test["nmse"]
            row[f"{name}_solved"] = model_solved(ds.kind, b.test)
            row[f"{name}_s"] = round(b.seconds, 3)
            row[f"{name}_steps"] = b.steps_run
            row[f"{name}_params"] = b.parameters
        dt = {"exact": result.test["exact"], "nmse": result.test["nmse"]}
        row["dt_ge_gru"] = _accuracy_ge(ds.kind, dt, {"exact": row["gru_test_exact"], "nmse": row["gru_test_nmse"]})
        row["dt_ge_transformer"] = _accuracy_ge(
            ds.kind, dt, {"exact": row["transformer_test_exact"], "nmse": row["transformer_test_nmse"]})
        row["wall_s"] = round(time.perf_counter() - t0, 3)
        row["error"] = None
        atomic_write_json(job.run_dir / ROW_FILE, _finite(row))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a failed task is a result of the bench, not the end of it
        row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        row["traceback"] = traceback.format_exc(limit=8)
        row["wall_s"] = round(time.perf_counter() - t0, 3)
    return row


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON without NaN/inf literals: non-finite floats become strings ("inf", "nan")."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


__all__ = ["BenchConfig", "Job", "ROW_FILE", "model_solved", "read_row", "run_job", "as_float"]
