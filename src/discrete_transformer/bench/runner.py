"""One bench job (one task, one seed -> one result row), as units of work a scheduler runs.

A job is split into independent units so that the bench's workers stay busy and a task's
restarts run side by side (as ``dtx run`` runs them on a 2-core machine):

- ``restart`` i — restart i of the portfolio (seed + i), trained under what is left of the task's
  wall-time budget, kept as ``restarts/seed{N}`` in the job's run directory. It polls the
  directory's stop file (:data:`STOP_FILE`) at each evaluation: a sibling restart that solved the
  task writes it.
- ``baseline`` name — a baseline (GRU, small Transformer) on the same split; its row fields.
- ``extract`` — once the restarts are resolved: the run resumed from its finished restarts (no
  training), its test score, program extraction and verification (test split; longer sequences and
  off-range inputs reported beside it).

:mod:`.schedule` decides what runs when and assembles the row with :func:`assemble_row`; it writes
the row (:data:`ROW_FILE` in ``OUT/tasks/<label>/``) atomically and last, so that its presence is
what "this job is finished" means to a resumed bench. The job's directory is a normal run directory:
``dtx extract`` and :func:`~..api.load_run` work on it.

Units never raise for a failure of the task itself: they return ``{"error", "traceback"}`` and
the job's row then has ``error`` set and is not written, so a rerun retries it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..api import execute, extract, prepare
from ..config import TrainConfig, restart_configs
from ..extraction.simplify_fits import program_ops
from ..overrides import configs_from_overrides
from ..rundir import ROW_FILE, STOP_FILE, RunDir
from ..runplan import write_run_config
from ..tasks import get_task
from ..training.loop import Split, data_spec, total_sequences, train_restart
from ..training.policy import ends_portfolio
from ..training.restarts import within
from ..training.resume import save_restart
from ..verdict import CONTINUOUS_NMSE, RESTART_NMSE, Kind, solved
from .baseline_cache import BaselineCache, cache_key, data_digest, default_cache_dir, key_material, source_now
from .baselines import BASELINES, BaselineConfig, BaselineResult, train_baseline
from .suite import BenchTask

ROW_FORMAT = "dtx-bench-row"


@dataclass(frozen=True)
class BenchConfig:
    """Run controls of a bench (the model and training configurations stay at their defaults).

    ``max_steps`` caps DT training steps per restart and ``baseline`` may be shrunk: both exist
    for fast tests only and are recorded in every row."""

    # wall seconds from a task's start within which all its restarts end (they may run side by side
    # or one after another, as workers are free): the portfolio's plain restart of 2,000 steps takes
    # ~45-55 s on one core of a busy 2-core machine, the arithmetic one (periodic units) ~60-90 s
    # (bench21, 2026-11-30): 150 s lets the second one finish when they run in sequence
    budget: float = 150.0
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    max_steps: int | None = None
    restarts: int | None = None  # None: TrainConfig's default
    # `--set section.field=value` strings: one configuration for every task, measured as a
    # candidate default (empty = the defaults). Kept as text so that rows, reports and Ray
    # workers all carry the same record of what ran.
    overrides: tuple[str, ...] = ()
    # the baseline cache's directory (bench/baseline_cache.py), None: no cache (always train)
    baseline_cache: str | None = field(default_factory=lambda: str(default_cache_dir()))

    def __post_init__(self) -> None:
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
    doc = RunDir(Path(run_dir)).read_row()
    return doc if doc is not None and doc.get("format") == ROW_FORMAT else None


def _accuracy_ge(kind: str, dt: dict[str, float], other: dict[str, float]) -> bool:
    """DT at least as accurate as another model on the test split: exact-match fraction for
    discrete tasks, normalised MSE for continuous ones (both within the tolerance counts as equal)."""
    if kind == Kind.DISCRETE:
        return dt["exact"] >= other["exact"]
    if dt["nmse"] <= CONTINUOUS_NMSE and other["nmse"] <= CONTINUOUS_NMSE:
        return True
    return dt["nmse"] <= other["nmse"]


def prepare_dir(d: Path) -> None:
    """A job directory without a row is an interrupted job: start it again from scratch."""
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)


def _plan(job: Job) -> Any:
    """The job's validated run plan (its data and configs), the run directory set, nothing written."""
    return dataclasses.replace(_job_plan(job), t0=time.perf_counter())


def job_configs(job: Job) -> tuple[Any, TrainConfig, Any]:
    """The (model, training, extraction) configs every unit of the job runs with: the defaults, the
    bench's ``--set`` overrides, and its run controls (restarts, the testing step cap)."""
    model_cfg, train_cfg, extract_cfg = configs_from_overrides(job.config.overrides)
    training = train_cfg or TrainConfig()
    controls: dict[str, Any] = {}
    if job.config.restarts is not None:
        controls["restarts"] = job.config.restarts
    if job.config.max_steps is not None:
        controls["steps"] = min(training.steps, job.config.max_steps)
    return model_cfg, dataclasses.replace(training, **controls), extract_cfg


@functools.lru_cache(maxsize=2)
def _job_plan(job: Job) -> Any:
    """Kept per worker process: a task's units often follow one another on the same worker, and
    generating a task's data takes up to ~1.5 s (plans are only read; ``_plan`` copies)."""
    model_cfg, train_cfg, _ = job_configs(job)
    plan = prepare(job.task.source, None, job.seed, model_cfg, train_cfg, None, None, None, False, 0)
    return dataclasses.replace(plan, run_dir=job.run_dir)


def _split_spec(plan: Any) -> tuple[Any, Any]:
    """The job's train/validation split and data spec: the ones ``execute`` builds for the run."""
    ds = plan.ds
    split = Split.from_arrays(ds.x_train, ds.y_train, ds.kind, plan.train_cfg.val_size, plan.seed)
    return split, data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)


def _budgeted_restart(
    deadline: float, max_steps: int | None, model_cfg, train_cfg: TrainConfig, split, spec, seed, **kw
):
    """``train_restart`` whose time limit is what is left of the task's budget (``deadline`` is
    wall-clock time, ``time.time()``: units of one task may run in different processes), and
    whose steps are at most the bench's testing cap ``max_steps`` — after its portfolio variant,
    which may scale them."""
    if max_steps is not None and train_cfg.total_steps > max_steps:
        train_cfg = dataclasses.replace(train_cfg, steps=max_steps, steps_scale=1.0)
    return train_restart(model_cfg, within(train_cfg, deadline), split, spec, seed, **kw)


def _interrupted(e: BaseException) -> bool:
    """Whether a Ctrl-C / SIGTERM is what caused ``e``: an interrupt that lands while a module is
    imported can reach the unit wrapped in another exception (a ``RuntimeError`` from
    ``__set_name__``), and must still stop the bench rather than count as the task's failure."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def guarded(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A unit: one torch thread, and a failure of the task returned as ``error``, not raised."""

    @functools.wraps(fn)
    def unit(*args: Any, **kw: Any) -> dict[str, Any]:
        torch.set_num_threads(1)
        try:
            return fn(*args, **kw)
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if _interrupted(e):  # e.g. Python wraps an interrupt raised in a class body's __set_name__
                raise KeyboardInterrupt from e
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            return {"error": f"{type(e).__name__}: {msg}", "traceback": traceback.format_exc(limit=8)}

    return unit


@guarded
def restart_unit(job: Job, index: int, deadline: float) -> dict[str, Any]:
    """Train restart ``index`` of the job and keep it in the run directory."""
    plan = _plan(job)
    ds, run_dir = plan.ds, job.run_dir
    split, spec = _split_spec(plan)
    model_cfg, train_cfg, variant = restart_configs(plan.model_cfg, plan.train_cfg, index)
    run_dir.mkdir(parents=True, exist_ok=True)
    rd = RunDir(run_dir)
    seed = job.seed + index
    log = rd.seed_log(seed)
    if log.exists():
        log.unlink()
    r = _budgeted_restart(
        deadline,
        job.config.max_steps,
        model_cfg,
        train_cfg,
        split,
        spec,
        seed,
        log_path=log,
        continuous_tol=RESTART_NMSE,
        should_stop=rd.stop_requested,  # a sibling restart that solved the task asked
    )
    save_restart(run_dir, r)
    return {
        "seed": seed,
        "variant": variant,
        "ends": ends_portfolio(ds.kind, r.val, RESTART_NMSE),
        "steps": int(r.steps_run),
        "seconds": float(r.seconds),
    }


def _baseline_inputs(job: Job) -> tuple[Any, Split, Any, BaselineConfig, str]:
    """The job's data, split and spec, the baselines' configuration (capped at the task's budget
    unless it sets its own cap) and the digest of the arrays they see (:func:`data_digest`)."""
    plan = _plan(job)
    ds = plan.ds
    split, spec = _split_spec(plan)
    cfg = job.config
    bcfg = (
        cfg.baseline
        if cfg.baseline.time_limit is not None
        else dataclasses.replace(cfg.baseline, time_limit=cfg.budget)
    )
    arrays = (split.x_train, split.y_train, split.x_val, split.y_val, ds.x_test, ds.y_test)
    digest = data_digest(arrays, ds.kind, spec.input_names, spec.output_names)
    return ds, split, spec, bcfg, digest


def baseline_fields(name: str, kind: str, b: BaselineResult, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """A baseline's row fields; ``source`` (date, commit, by) when the result came from the cache."""
    return {
        f"{name}_test_exact": b.test["exact"],
        f"{name}_test_nmse": b.test["nmse"],
        f"{name}_solved": solved(kind, b.test, CONTINUOUS_NMSE),
        f"{name}_s": round(b.seconds, 3),
        f"{name}_steps": b.steps_run,
        f"{name}_params": b.parameters,
        f"{name}_ended": b.ended,
        f"{name}_seqs": b.sequences,  # training sequences seen (None: a cache entry from before the count)
        f"{name}_cached": source is not None,
        **({f"{name}_cache_source": source} if source is not None else {}),
    }


@guarded
def baseline_unit(job: Job, name: str, by: str = "dtx bench") -> dict[str, Any]:
    """Train baseline ``name`` on the job's split (the one the Discrete Transformer trains on) and
    keep its result in the baseline cache (when the bench has one and the result may be kept),
    recording the command ``by`` as its source."""
    ds, split, spec, bcfg, digest = _baseline_inputs(job)
    b = train_baseline(name, spec, split, ds.x_test, ds.y_test, bcfg, seed=job.seed)
    if job.config.baseline_cache is not None:
        key = cache_key(name, bcfg, job.seed, digest)
        material = key_material(name, bcfg, job.seed, digest)
        BaselineCache(job.config.baseline_cache).put(key, b, material, source_now(job.commit, by))
    return baseline_fields(name, ds.kind, b)


def cached_baselines(job: Job) -> dict[str, dict[str, Any]]:
    """The row fields of the job's baselines found in the cache, by name ({} without a cache).

    Run by the scheduler before it queues the job's units: a cached baseline is then no unit at
    all. It generates the task's data to hash it (about a second); a task whose data cannot be
    made finds nothing here, and its units then report the error."""
    if job.config.baseline_cache is None:
        return {}
    cache = BaselineCache(job.config.baseline_cache)
    if not cache.dir.is_dir():
        return {}
    try:
        ds, _, _, bcfg, digest = _baseline_inputs(job)
    except Exception:  # noqa: BLE001 - the task's own failure, reported by its units, not by the lookup
        return {}
    hits = {name: cache.get(cache_key(name, bcfg, job.seed, digest)) for name in BASELINES}
    return {name: baseline_fields(name, ds.kind, *hit) for name, hit in hits.items() if hit is not None}


@guarded
def extract_unit(job: Job, deadline: float, restarts: int | None = None) -> dict[str, Any]:
    """Finish the run from its kept restarts (any restart missing is trained here, within the
    budget), score it on the test split, extract and verify its program. With ``restarts``, the
    run is finished from its first ``restarts`` restarts only (the scheduler's probe before a
    fallback restart); a later extract unit finishes it again with all of them."""
    t0 = time.perf_counter()
    # The run's wall time (in its result) counts from the task's start, not from this unit's.
    started = time.perf_counter() - (time.time() - (deadline - job.config.budget))
    plan = dataclasses.replace(_plan(job), resume=True, t0=started)
    if restarts is not None:
        plan = dataclasses.replace(plan, train_cfg=dataclasses.replace(plan.train_cfg, restarts=restarts))
    write_run_config(plan)
    result = execute(
        plan,
        progress=False,
        parallel=False,
        train_fn=functools.partial(_budgeted_restart, deadline, job.config.max_steps),
    )
    RunDir(job.run_dir).clear_stop()
    ds = plan.ds
    part: dict[str, Any] = {
        "kind": ds.kind,
        "T": int(ds.T),
        "finish_s": round(time.perf_counter() - t0, 3),
        "dt_test_exact": result.test["exact"],
        "dt_test_nmse": result.test["nmse"],
        "n_test": result.test["n"],
        "dt_model_solved": solved(ds.kind, result.test, CONTINUOUS_NMSE),
        "dt_restarts_run": len(result.restarts),
        "dt_steps": result.best.steps_run,
        "dt_phase_s": phase_seconds([r.history for r in result.restarts]),
        "dt_seqs": total_sequences(result.restarts),  # training/evaluation.Seen, over the restarts that ran
        "dt_restarts_s": round(sum(r.seconds for r in result.restarts), 3),  # one thread each; side by side add up
    }
    t1 = time.perf_counter()
    program = extract(result, config=job_configs(job)[2])
    program.save(job.run_dir)
    v = program.verification
    part.update(
        {
            "extract_s": round(time.perf_counter() - t1, 3),
            "program_verified": bool(v.verified),
            "program_lines": len(program.source.splitlines()),
            "program_modules": len([n for n in program.ir.nodes if not n.is_alias]),
            "program_ops": program_ops(program.ir),
            "program_test_exact": v.test.exact,
            "program_test_nmse": v.test.nmse,
            "length_gen": None if v.longer is None else bool(v.longer.passed),
            "longer_factor": v.longer_factor,  # length_gen's T multiple (rows without it: 2)
            "wider_gen": v.holds_off_range,  # inputs a little off the trained range (None: no such check)
        }
    )
    return part


def _jsonable(v: Any) -> Any:
    """A task parameter as plain JSON (tuples as lists, numpy scalars as numbers, anything else
    as its text, non-finite floats as "inf"/"nan" like :func:`_finite`), so a row stays
    readable whatever a task generator stores."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    item = getattr(v, "item", None)
    return _jsonable(item()) if callable(item) and getattr(v, "ndim", None) == 0 else str(v)


def _task_fields(task: BenchTask) -> dict[str, Any]:
    """What the registry says about a built-in task (its generator family, the public task it
    generalises, parameter bands, reference program size, T), copied into the row so that the
    per-family report reads rows alone, as they were when the bench ran. Empty for data files
    and for a task the registry no longer resolves."""
    if task.family == "file":
        return {}
    try:
        spec = get_task(task.source)
    except Exception:  # noqa: BLE001 - a task renamed or a generator changed since: the row is still written
        return {}
    ref = getattr(spec, "reference_ops", None)
    return {
        "generator": str(getattr(spec, "generator", "") or ""),
        "generalises": str(getattr(spec, "generalises", "") or ""),
        "params": {str(k): _jsonable(v) for k, v in dict(getattr(spec, "params", None) or ()).items()},
        "bands": {str(k): str(v) for k, v in dict(getattr(spec, "bands", None) or ()).items()},
        "reference_ops": None if ref is None else int(ref),
        "T": int(spec.T),
    }


def new_row(job: Job) -> dict[str, Any]:
    """The fields of a row known before anything runs."""
    cfg = job.config
    return {
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
        **_task_fields(job.task),
    }


def assemble_row(
    job: Job, extract_part: dict[str, Any], baseline_parts: dict[str, dict[str, Any]], restarts_s: float, wall_s: float
) -> dict[str, Any]:
    """The finished row: the units' fields, the comparisons, and the task's times.

    ``restarts_s``: wall time from the task's first unit to the end of its last restart;
    ``dt_train_s`` adds the extract unit's finishing of the run (loading, test score)."""
    row = new_row(job)
    part = dict(extract_part)
    finish_s = float(part.pop("finish_s", 0.0))
    row.update(part)
    row["dt_train_s"] = round(restarts_s + finish_s, 3)
    for name in BASELINES:
        row.update(baseline_parts[name])
    kind = row["kind"]
    dt = {"exact": row["dt_test_exact"], "nmse": row["dt_test_nmse"]}
    row["dt_ge_gru"] = _accuracy_ge(kind, dt, {"exact": row["gru_test_exact"], "nmse": row["gru_test_nmse"]})
    row["dt_ge_transformer"] = _accuracy_ge(
        kind, dt, {"exact": row["transformer_test_exact"], "nmse": row["transformer_test_nmse"]}
    )
    row["wall_s"] = round(wall_s, 3)
    row["error"] = None
    return row


def write_row(job: Job, row: dict[str, Any]) -> None:
    RunDir(job.run_dir).write_row(_finite(row))


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON without NaN/inf literals: non-finite floats become strings ("inf", "nan")."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def phase_seconds(histories: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Seconds each training phase took, summed over restarts (process seconds: side-by-side
    restarts add up). A restart's history rows carry the seconds since its start; the span up to
    a row is that row's phase (the search's evaluations count as search). Why: a row's wall time
    hides whether the search, the trial polishes, hardening or the final polish cost it."""
    out: dict[str, float] = {}
    for history in histories:
        prev = 0.0
        for row in history:
            now = as_float(row.get("seconds"))
            if not math.isfinite(now):
                continue
            phase = str(row.get("phase", "search"))
            out[phase] = out.get(phase, 0.0) + max(now - prev, 0.0)
            prev = now
    return {k: round(v, 3) for k, v in out.items()}


def row_verified(row: dict[str, Any]) -> bool:
    """Whether a bench row's program verified: the one reading of a row's verdict (a row that
    failed with an error never counts, whatever its other fields say)."""
    return bool(row.get("program_verified")) and not row.get("error")


def as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


__all__ = [
    "BenchConfig",
    "Job",
    "ROW_FILE",
    "STOP_FILE",
    "assemble_row",
    "baseline_fields",
    "baseline_unit",
    "cached_baselines",
    "extract_unit",
    "guarded",
    "job_configs",
    "new_row",
    "phase_seconds",
    "prepare_dir",
    "read_row",
    "restart_unit",
    "write_row",
    "as_float",
    "row_verified",
]
