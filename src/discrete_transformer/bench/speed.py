"""Micro-benchmarks behind ``dtx speed``.

- :func:`train_speed`: training steps/s of the default model and TrainConfig (population and
  batch as configured; optionally one search variant of the portfolio) on one task, through the
  real :func:`~..training.loop.train_restart` (search phase only, timed in blocks between
  evaluations, each block's evaluation subtracted), so that any speed-up of the loop shows here.
- :func:`program_vs_model`: sequences/s of an extracted program's NumPy ``run_batch`` and of the
  trained model's forward pass (discretised, no grad) on the *same* batch of inputs, measured in
  one run, and their ratio.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..api import load_run
from ..config import ModelConfig, TrainConfig, restart_configs
from ..extraction.pipeline import load_module, reload_dataset
from ..model import DiscreteTransformer
from ..rundir import PROGRAM_FILE, RunDir
from ..tasks import load_source
from ..training.loop import HARD, Split, data_spec, evaluate, train_restart


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def train_speed(
    task: str, steps: int = 200, seed: int = 0, variant: str | None = None, block: int = 50
) -> dict[str, Any]:
    """Steps/s of one restart's search phase with the default configurations.

    `variant`: a search variant of the default portfolio (``train.portfolio``; None: the plain
    defaults). The search is timed in blocks of `block` steps between evaluations (each block's
    evaluation, timed separately, is subtracted); ``steps_per_s`` is the best block's rate and
    ``median_steps_per_s`` the median's, so that a neighbour's burst of load on a shared machine
    shows as a spread, not as a slower step.
    """
    if steps < 2:
        raise ValueError(f"--steps must be >= 2, got {steps}")
    torch.set_num_threads(1)
    ds = load_source(task)
    model_cfg, base = ModelConfig(), TrainConfig()
    if variant is not None:
        model_cfg, base, _ = restart_configs(model_cfg, dataclasses.replace(base, portfolio=(variant,)), 0)
    block = max(1, min(block, steps - 1))
    cfg = dataclasses.replace(
        base,
        steps=steps,
        steps_scale=1.0,
        harden_fraction=0.0,
        polish_iters=0,
        eval_every=block,
        stop_on_exact=False,
        time_limit=None,
        trial_polish_nmse=0.0,
    )
    split = Split.from_arrays(ds.x_train, ds.y_train, ds.kind, cfg.val_size, seed)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    r = train_restart(model_cfg, cfg, split, spec, seed)
    rows = [h for h in r.history if h["phase"] == "search"]
    # Rows are logged after the evaluation at every block boundary (and at step steps-1): the time
    # between two rows is the block's training steps plus one evaluation, timed separately.
    model = DiscreteTransformer(model_cfg, spec, population=cfg.population, seed=seed)
    eval_s = _best_of(lambda: evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end), 2)
    rates = []
    for a, b in zip(rows, rows[1:]):
        n_b = int(b["step"] - a["step"])
        rates.append(n_b / max(b["seconds"] - a["seconds"] - eval_s, 1e-9))
    span = max(rows[-1]["seconds"] - rows[0]["seconds"] - (len(rows) - 1) * eval_s, 1e-9)
    n = int(rows[-1]["step"] - rows[0]["step"])
    return {
        "task": ds.name,
        "variant": variant or "defaults",
        "steps": n,
        "seconds": span,
        "steps_per_s": max(rates),
        "median_steps_per_s": float(np.median(rates)),
        "blocks": len(rates),
        "eval_s": eval_s,
        "population": cfg.population,
        "batch_size": cfg.batch_size,
        "torch_threads": torch.get_num_threads(),
    }


def program_vs_model(run_dir: str | Path, n: int = 10_000, repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Throughput of ``run_batch`` vs. the model's forward on the same ``n`` test-like inputs."""
    if n < 1 or repeats < 1:
        raise ValueError("--n and --repeats must be >= 1")
    torch.set_num_threads(1)
    d = Path(run_dir)
    run = load_run(d)  # RunDirError / CheckpointError on a bad directory
    rd = RunDir(d)
    if not rd.program_path.is_file():
        raise ValueError(f"{d}: no {PROGRAM_FILE}; run `dtx extract {d}` first")
    mod = load_module(rd.read_program())
    ds = reload_dataset(d, rd.read_config())
    rng = np.random.default_rng(seed)
    X = np.ascontiguousarray(ds.x_test[rng.integers(0, ds.x_test.shape[0], n)], dtype=np.float64)
    model = run.model.eval()
    dtype = next(model.parameters()).dtype
    xt = torch.from_numpy(X).to(dtype)
    tau = run.train_config.tau_attn_end

    def forward() -> np.ndarray:
        with torch.no_grad():
            return model(xt, HARD, tau)[0].double().numpy()

    y_model = forward()  # warm-up, and the agreement check below
    y_prog = mod.run_batch(X)
    t_model = _best_of(forward, repeats)
    t_prog = _best_of(lambda: mod.run_batch(X), repeats)
    if ds.kind == "discrete":
        agree = float((np.round(y_prog) == np.round(y_model)).reshape(n, -1).all(axis=1).mean())
    else:
        agree = float(np.mean(np.abs(y_prog - y_model) <= 1e-3 * (np.std(y_model) + 1e-12)))
    return {
        "run_dir": str(d),
        "n": n,
        "T": int(X.shape[1]),
        "model_seq_per_s": n / t_model,
        "program_seq_per_s": n / t_prog,
        "ratio": t_model / t_prog,
        "model_s": t_model,
        "program_s": t_prog,
        "agreement": agree,
        "repeats": repeats,
    }


__all__ = ["program_vs_model", "train_speed"]
