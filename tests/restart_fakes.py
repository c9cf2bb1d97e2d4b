"""Stand-ins for `train_restart`, importable by spawned pool workers (tests/ is on their path).

They follow the real signature and protocol (log rows, progress callback, should_stop polling)
but take no training time, so cross-process behaviour can be tested exactly and fast.
"""

from __future__ import annotations

import json
import time

import torch

from discrete_transformer.training.loop import RestartResult


def _row(seed: int, step: int, exact: float) -> dict:
    return {"step": step, "tau": 1.0, "val_exact": exact, "val_nmse": 1.0 - exact, "seed": seed}


def _log(log_path, row: dict) -> None:
    if log_path:
        with open(log_path, "a") as f:
            f.write(json.dumps(row) + "\n")


def even_seeds_solve(
    model_cfg, train_cfg, split, spec, seed, log_path=None, progress=None, continuous_tol=1e-7, should_stop=None
) -> RestartResult:
    """Even seeds solve the task after 0.3 s; odd seeds run until told to stop (at most 60 s)."""
    t0 = time.perf_counter()
    step, stopped = 0, False
    if seed % 2 == 0:
        time.sleep(0.3)
        exact = 1.0
    else:
        exact = 0.0
        while time.perf_counter() - t0 < 60:
            step += 1
            time.sleep(0.02)
            if step % 5 == 0:
                row = _row(seed, step, exact)
                _log(log_path, row)
                if progress:
                    progress(step, row)
                if should_stop is not None and should_stop():
                    stopped = True
                    break
    _log(log_path, _row(seed, step, exact))
    val = {"nmse": 1.0 - exact, "exact": exact, "score": 1.0 - exact}
    return RestartResult(
        seed,
        0,
        val,
        step + 1,
        time.perf_counter() - t0,
        stopped or exact == 1.0,
        {"w": torch.tensor([float(seed)])},
        [],
    )


def never_finishes(
    model_cfg, train_cfg, split, spec, seed, log_path=None, progress=None, continuous_tol=1e-7, should_stop=None
) -> RestartResult:
    """Writes one log row, then sleeps (ignoring should_stop) for up to 120 s: only termination
    ends it quickly."""
    _log(log_path, _row(seed, 0, 0.0))
    time.sleep(120)
    return RestartResult(seed, 0, {"nmse": 1.0, "exact": 0.0, "score": 1.0}, 1, 120.0, False, {}, [])


def takes_two_seconds(
    model_cfg, train_cfg, split, spec, seed, log_path=None, progress=None, continuous_tol=1e-7, should_stop=None
) -> RestartResult:
    """Every restart takes 2 s, unsolved."""
    time.sleep(2.0)
    val = {"nmse": 0.5, "exact": 0.0, "score": 0.5}
    return RestartResult(seed, 0, val, 1, 2.0, False, {"w": torch.tensor([float(seed)])}, [])
