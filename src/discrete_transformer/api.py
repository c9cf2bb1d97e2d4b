"""The public, estimator-like API: ``train(source) -> TrainResult``, ``load_run(dir)`` and
``extract(result_or_run_dir) -> Program``.

```python
import discrete_transformer as dtx
result = dtx.train("sum_last2", out="runs/sum_last2", seed=0)
result.test  # {"exact": ..., "nmse": ..., "n": ...}
program = dtx.extract(result)
print(program.source)
program.verify()  # Verification(verified=True, ...)
```

What a run directory holds, and all reading and writing in it: :mod:`.rundir`. The steps of a
run (validate, own the directory, execute) and the checks on its directory: :mod:`.runplan`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ModelConfig, TrainConfig, from_dict, restart_configs
from .model import DataSpec, DiscreteTransformer
from .rundir import NOT_A_RUN, RUN_FORMAT, RUN_VERSION, RunDir, RunDirError
from .runplan import RunPlan, check_out_dir, check_resumable, owning, write_run_config
from .tasks import Dataset, infer_kind, load_source
from .training.checkpoint import CheckpointError, load_checkpoint, save_run_checkpoint
from .training.loop import HARD, RestartResult, Split, data_spec, evaluate
from .training.restarts import run_restarts
from .training.resume import load_restarts, save_restart
from .verdict import RESTART_NMSE, Kind, solved


@dataclass
class TrainResult:
    """Everything a finished run produced. ``model`` is the best restart's model, in eval mode."""

    dataset: Dataset | None
    model: DiscreteTransformer
    model_config: ModelConfig
    train_config: TrainConfig
    spec: DataSpec
    best: RestartResult
    restarts: list[RestartResult] = field(repr=False)
    test: dict[str, float]
    seconds: float
    run_dir: Path | None
    source: str = ""
    kind: str = ""
    seed: int = 0

    @property
    def val(self) -> dict[str, float]:
        """Validation metrics of the best restart."""
        return self.best.val

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions of the discretised model for inputs ``(n, T)`` or ``(n, T, C_in)``."""
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 2:
            a = a[:, :, None]
        dtype = next(self.model.parameters()).dtype
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.array(a)).to(dtype), HARD, self.train_config.tau_attn_end)
        return out[0].double().numpy()


# ----------------------------------------------------------------------------- run directories


def is_run_dir(path: str | os.PathLike) -> bool:
    """True when `path` is a directory holding a configuration written by :func:`train`."""
    return RunDir(Path(path)).is_run()


def _restart_summary(r: RestartResult) -> dict[str, Any]:
    return {
        "seed": r.seed,
        "best_member": r.best_member,
        "val": dict(r.val),
        "steps_run": r.steps_run,
        "seconds": r.seconds,
        "stopped_early": r.stopped_early,
    }


# ----------------------------------------------------------------------------- train


def train(
    source: str | os.PathLike | Dataset,
    out: str | os.PathLike | None = None,
    seed: int = 0,
    model: ModelConfig | None = None,
    training: TrainConfig | None = None,
    restarts: int | None = None,
    steps: int | None = None,
    progress: bool = True,
    kind: str | None = None,
    force: bool = False,
    data_seed: int = 0,
) -> TrainResult:
    """Train a Discrete Transformer on a built-in task, a data file or a :class:`Dataset`.

    The validation set is carved from the training split; the test split is used only for the
    final report, never for selection. ``restarts`` / ``steps`` override ``training``.
    ``data_seed`` generates built-in task data (fixed at 0 by default, so that different training
    seeds see the same data). With ``out``, the run directory is written (layout: :mod:`.rundir`);
    an existing run directory is overwritten only with ``force=True``, and never while another
    process uses it (:class:`RunDirError`).
    """
    plan = prepare(source, out, seed, model, training, restarts, steps, kind, force, data_seed)
    name = source.name if isinstance(source, Dataset) else os.fspath(source)
    with owning(plan, f"dtx.train({name})", force):
        return execute(plan, progress)


# ----------------------------------------------------------------------------- the steps of train()
# prepare -> owning -> execute (resume_plan for resume()): also used by cli.py, whose train / run
# commands hold the directory across training and extraction, and by bench/runner.py's workers.
# Not in __all__: the public API is train() / resume(). RunPlan and owning: see .runplan.


MIN_TRAIN_SEQUENCES = 2  # the validation carve-out takes at least one training sequence


def prepare(
    source: str | os.PathLike | Dataset,
    out: str | os.PathLike | None,
    seed: int,
    model: ModelConfig | None,
    training: TrainConfig | None,
    restarts: int | None,
    steps: int | None,
    kind: str | None,
    force: bool,
    data_seed: int,
) -> RunPlan:
    """Validate options, load the data and check `out`. Raises ValueError subclasses only
    (UnknownTaskError, DataFileError, RunDirError, config errors); writes nothing."""
    t0 = time.perf_counter()
    model_cfg = model if model is not None else ModelConfig()
    train_cfg = training if training is not None else TrainConfig()
    overrides = {k: v for k, v in (("restarts", restarts), ("steps", steps)) if v is not None}
    if overrides:
        train_cfg = dataclasses.replace(train_cfg, **overrides)  # validated by __post_init__
    if kind is not None and kind not in ("discrete", "continuous"):
        raise ValueError(f"invalid kind {kind!r}; expected 'discrete' or 'continuous'")
    run_dir = check_out_dir(out, force) if out is not None else None
    if isinstance(source, Dataset):
        if kind == Kind.DISCRETE and Kind.CONTINUOUS in (infer_kind(source.y_train), infer_kind(source.y_test)):
            raise ValueError(f"dataset {source.name}: targets are not all integers; it cannot be 'discrete'")
        ds = source if kind is None or kind == source.kind else dataclasses.replace(source, kind=kind)
    else:
        ds = load_source(source, seed=data_seed, kind=kind)
    if ds.n_train < MIN_TRAIN_SEQUENCES:
        where = source if not isinstance(source, Dataset) else f"dataset {ds.name}"
        raise ValueError(
            f"{os.fspath(where)}: x_train: has {ds.n_train} sequence; training needs at least "
            f"{MIN_TRAIN_SEQUENCES} (one is held out for validation)"
        )
    return RunPlan(ds, model_cfg, train_cfg, run_dir, seed, data_seed, t0)


def execute(plan: RunPlan, progress: bool = True, parallel: bool = True, train_fn: Any = None) -> TrainResult:
    """Train, evaluate on the test split and (with a run directory) write the run.

    ``parallel=False`` runs the restarts one after another in this process (the benchmark's
    workers do, so that busy processes ≈ jobs); ``train_fn`` is :func:`run_restarts`' seam.
    The caller owns the run directory (:func:`~.runplan.owning`; the benchmark's workers through the bench's)."""
    ds, model_cfg, train_cfg, run_dir, seed = plan.ds, plan.model_cfg, plan.train_cfg, plan.run_dir, plan.seed
    split = Split.from_arrays(ds.x_train, ds.y_train, ds.kind, train_cfg.val_size, seed)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)

    finished: list[RestartResult] = []
    if run_dir is not None and plan.resume:
        finished = load_restarts(run_dir)  # CheckpointError if one is corrupted
    elif run_dir is not None:
        if run_dir.is_dir() and is_run_dir(run_dir):
            RunDir(run_dir).clear()  # check_out_dir allowed it: a previous run, with force
        write_run_config(plan)

    keep = (lambda r: save_restart(run_dir, r)) if run_dir is not None else None  # noqa: E731
    best, results = run_restarts(
        model_cfg,
        train_cfg,
        split,
        spec,
        seed,
        out_dir=run_dir,
        progress=progress,
        finished=finished,
        on_finished=keep,
        parallel=parallel,
        train_fn=train_fn,
    )

    net, model_cfg, train_cfg = restart_model(model_cfg, train_cfg, spec, best, seed)
    dtype = next(net.parameters()).dtype
    x_test = torch.from_numpy(np.array(ds.x_test, dtype=np.float64)).to(dtype)  # a writable copy
    y_test = torch.from_numpy(np.array(ds.y_test, dtype=np.float64)).to(dtype)
    # nMSE normalised by the training targets' variance, as for validation.
    m = evaluate(net, x_test, y_test, ds.kind, split.var_y, train_cfg.tau_attn_end)
    test = {"exact": float(m["exact"][0]), "nmse": float(m["nmse"][0]), "n": int(ds.n_test)}
    seconds = time.perf_counter() - plan.t0

    result = TrainResult(
        dataset=ds,
        model=net,
        model_config=model_cfg,
        train_config=train_cfg,
        spec=spec,
        best=best,
        restarts=results,
        test=test,
        seconds=seconds,
        run_dir=run_dir,
        source=ds.source,
        kind=ds.kind,
        seed=seed,
    )
    if run_dir is not None:
        meta = {"source": ds.source, "kind": ds.kind, "seed": best.seed, "val": dict(best.val), "test": test}
        save_run_checkpoint(run_dir, net, model_cfg, train_cfg, spec, meta)
        RunDir(run_dir).write_result(_result_doc(result))
    return result


def restart_model(
    model_cfg: ModelConfig, train_cfg: TrainConfig, spec: DataSpec, restart: RestartResult, seed: int
) -> tuple[DiscreteTransformer, ModelConfig, TrainConfig]:
    """A finished restart's model (eval mode, in its state's dtype) with that restart's own configs:
    its portfolio variant's, restart number ``restart.seed - seed`` of a run whose first seed is
    `seed` and whose configs are `model_cfg` and `train_cfg`."""
    model_cfg, train_cfg, _ = restart_configs(model_cfg, train_cfg, restart.seed - seed)
    net = DiscreteTransformer(model_cfg, spec, population=1, seed=0)
    dtype = next(iter(v for v in restart.state.values() if v.is_floating_point())).dtype
    net = net.to(dtype)
    net.load_state_dict(restart.state)
    return net.eval(), model_cfg, train_cfg


def _result_doc(r: TrainResult) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "source": r.source,
        "kind": r.kind,
        "seed": r.seed,
        "best_seed": r.best.seed,
        "val": dict(r.best.val),
        "test": dict(r.test),
        "solved_val": solved(r.kind, r.best.val, RESTART_NMSE),
        "steps": r.best.steps_run,
        "seconds": r.seconds,
        "restarts": [
            {
                **_restart_summary(x),
                "variant": r.train_config.portfolio[(x.seed - r.seed) % len(r.train_config.portfolio)],
            }
            for x in r.restarts
        ],
    }


def resume(dir: str | os.PathLike, progress: bool = True) -> TrainResult:
    """Continue an interrupted run directory: its configuration, data source and seed come from
    the directory; restarts that had finished are reused, the others run from their start
    (see :mod:`.training.resume`). Raises :class:`RunDirError` when `dir` is not an unfinished run
    or another process uses it."""
    plan = resume_plan(dir)
    with owning(plan, "dtx.resume()"):
        return execute(plan, progress)


def resume_plan(dir: str | os.PathLike) -> RunPlan:
    """Validate a run directory for resuming and rebuild its plan; writes nothing."""
    t0 = time.perf_counter()
    d = Path(dir)
    cfg = check_resumable(d)
    try:
        model_cfg = from_dict(ModelConfig, cfg["model"])
        train_cfg = from_dict(TrainConfig, cfg["train"])
        source, kind = str(cfg["source"]), str(cfg["kind"])
        seed, data_seed = int(cfg["seed"]), int(cfg.get("data_seed", 0))
    except (KeyError, TypeError, ValueError) as e:
        where = RunDir(d).config_path
        raise RunDirError(f"--resume {where}: invalid run configuration ({str(e).splitlines()[0]})") from None
    name = source.removeprefix("task:") if source.startswith("task:") else source
    ds = load_source(name, seed=data_seed, kind=kind)
    return RunPlan(ds, model_cfg, train_cfg, d, seed, data_seed, t0, resume=True)


# ----------------------------------------------------------------------------- load_run


def load_run(dir: str | os.PathLike) -> TrainResult:
    """Reopen a run directory written by :func:`train`.

    The dataset is not reloaded (``dataset`` is None: the source may be a file that has moved);
    ``best.state`` is the checkpoint's state, other restarts carry their summaries only, and
    ``best.history`` holds the best seed's rows of the metrics log.
    """
    d = Path(dir)
    if not d.is_dir():
        raise RunDirError(f"{d}: run directory not found")
    rd = RunDir(d)
    cfg = rd.read_config()
    res = rd.read_result()
    net, model_cfg, train_cfg, spec, _meta = load_checkpoint(d)
    history: dict[int, list[dict]] = {}
    for row in rd.metrics_rows():
        history.setdefault(int(row.get("seed", -1)), []).append(row)
    restarts = []
    best = None
    for s in res.get("restarts", []):
        r = RestartResult(
            seed=int(s["seed"]),
            best_member=int(s["best_member"]),
            val=dict(s["val"]),
            steps_run=int(s["steps_run"]),
            seconds=float(s["seconds"]),
            stopped_early=bool(s["stopped_early"]),
            state={},
            history=history.get(int(s["seed"]), []),
        )
        if r.seed == res["best_seed"]:
            r.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = r
        restarts.append(r)
    if best is None:
        raise RunDirError(f"{rd.result_path}: best seed {res.get('best_seed')!r} is not among its restarts")
    return TrainResult(
        dataset=None,
        model=net,
        model_config=model_cfg,
        train_config=train_cfg,
        spec=spec,
        best=best,
        restarts=restarts,
        test=dict(res["test"]),
        seconds=float(res["seconds"]),
        run_dir=d,
        source=str(cfg.get("source", "")),
        kind=str(cfg.get("kind", "")),
        seed=int(cfg.get("seed", 0)),
    )


# ----------------------------------------------------------------------------- extract


def extract(
    result_or_run_dir: TrainResult | str | os.PathLike,
    dataset: Dataset | None = None,
    config: Any = None,
    progress: Any = None,
) -> Any:
    """Extract the program of a trained model and verify it (DESIGN §4).

    ``result_or_run_dir`` is a :class:`TrainResult` or a run directory written by :func:`train`;
    the run's data is reloaded from its source unless ``dataset`` is given (needed when a data
    file has moved). ``config`` is an :class:`~.extraction.pipeline.ExtractConfig`; ``progress`` an
    optional callable receiving one line of text per step. Returns a
    :class:`~.extraction.pipeline.Program`: ``.source``, ``.run(*channels)``, ``.run_batch(X)``,
    ``.verify(dataset=None)``, ``.verification``, ``.ir``, ``.sr_tables``, ``.save(dir)``.
    Raises :class:`RunDirError` for a path that is not a run directory (or one another process
    is writing) and :class:`~.extraction.pipeline.ExtractionError` when the data cannot be found.
    """
    # Imported here, not at the top, for start-up time only (extraction does not import this
    # module): .extraction loads sympy, about +0.3 s on every `import discrete_transformer` and
    # every `dtx` command (measured on the 2-core machine), most of which never extract.
    from .extraction.pipeline import extract as _extract

    if isinstance(result_or_run_dir, (str, os.PathLike)):
        d = Path(result_or_run_dir)
        if not d.is_dir():
            raise RunDirError(f"{d}: run directory not found")
        if not is_run_dir(d):
            raise RunDirError(f"{d}: {NOT_A_RUN}")
        with RunDir(d).hold("dtx.extract()"):
            return _extract(load_run(d), dataset=dataset, config=config, progress=progress)
    if not isinstance(result_or_run_dir, TrainResult):
        raise TypeError(f"extract() takes a TrainResult or a run directory, got {type(result_or_run_dir).__name__}")
    return _extract(result_or_run_dir, dataset=dataset, config=config, progress=progress)


__all__ = [
    "CheckpointError",
    "RunDirError",
    "TrainResult",
    "check_out_dir",
    "extract",
    "is_run_dir",
    "load_run",
    "restart_model",
    "resume",
    "train",
]
