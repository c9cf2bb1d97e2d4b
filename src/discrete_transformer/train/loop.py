"""Training loop for one restart: a population of P models searched, then hardened.

The loss of each member is MSE normalised by the target variance (per output channel), so that
tasks of any scale share one set of hyperparameters. Members are independent: the summed loss
gives each its own gradient, and Adam's per-parameter statistics keep them apart.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig
from ..model import DataSpec, DiscreteTransformer, SelectMode
from . import schedules

Progress = Callable[[int, dict], None]


@dataclass
class Split:
    """Training/validation tensors for one run (float32)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    kind: str
    var_y: torch.Tensor  # (C_out,) target variance, for the normalised loss

    @staticmethod
    def from_arrays(x: np.ndarray, y: np.ndarray, kind: str, val_size: int, seed: int) -> "Split":
        """Carve a validation set out of the training split (the test set is never touched)."""
        n = x.shape[0]
        rng = np.random.default_rng(seed + 7919)
        perm = rng.permutation(n)
        n_val = min(val_size, max(1, n // 5)) if n > 1 else 0
        val, tr = perm[:n_val], perm[n_val:] if n_val < n else perm
        to = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        y_tr = to(y[tr])
        var = y_tr.reshape(-1, y_tr.shape[-1]).var(dim=0, unbiased=False).clamp_min(1e-12)
        return Split(to(x[tr]), y_tr, to(x[val]), to(y[val]), kind, var)


def data_spec(x: np.ndarray, y: np.ndarray, input_names: tuple[str, ...], output_names: tuple[str, ...]) -> DataSpec:
    rms_in = tuple(float(np.sqrt(np.mean(np.square(x[..., c])))) for c in range(x.shape[-1]))
    return DataSpec(
        input_names=tuple(input_names),
        output_names=tuple(output_names),
        input_rms=rms_in,
        target_rms=float(np.sqrt(np.mean(np.square(y)))),
        T=int(x.shape[1]),
    )


def per_member_loss(pred: torch.Tensor, y: torch.Tensor, var_y: torch.Tensor) -> torch.Tensor:
    """pred (P, B, T, C), y (B, T, C) -> (P,) normalised MSE."""
    return ((pred - y.unsqueeze(0)).pow(2) / var_y).mean(dim=(1, 2, 3))


@torch.no_grad()
def evaluate(
    model: DiscreteTransformer, x: torch.Tensor, y: torch.Tensor, kind: str, var_y: torch.Tensor, tau_attn: float
) -> dict[str, np.ndarray]:
    """Hard (argmax) evaluation of every member: exact-match fraction per sequence and nMSE, (P,)."""
    was = model.training
    model.eval()
    preds = []
    for i in range(0, x.shape[0], 1024):
        preds.append(model(x[i : i + 1024], SelectMode(hard=True), tau_attn))
    model.train(was)
    pred = torch.cat(preds, dim=1)
    nmse = ((pred - y.unsqueeze(0)).pow(2) / var_y).mean(dim=(1, 2, 3))
    exact = (pred.round() == y.round().unsqueeze(0)).all(dim=-1).all(dim=-1).float().mean(dim=1)
    return {"nmse": nmse.double().numpy(), "exact": exact.double().numpy()}


def member_score(kind: str, metrics: dict[str, np.ndarray]) -> np.ndarray:
    """Lower is better: discrete ranks by exact match then nMSE; continuous by nMSE."""
    if kind == "discrete":
        return (1.0 - metrics["exact"]) + np.minimum(metrics["nmse"], 1.0) * 1e-3
    return metrics["nmse"]


def solved(kind: str, metrics: dict[str, np.ndarray], tol: float) -> np.ndarray:
    if kind == "discrete":
        return metrics["exact"] >= 1.0
    return metrics["nmse"] <= tol


@torch.no_grad()
def attention_entropy(model: DiscreteTransformer, x: torch.Tensor, mode: SelectMode, tau_attn: float) -> float:
    """Mean normalised entropy of attention rows (rows with ≥ 2 visible keys)."""
    cache: dict[str, torch.Tensor] = {}
    was = model.training
    model.eval()  # do not let this probe move the running statistics
    model(x, dataclasses.replace(mode, batch=x.shape[0]), tau_attn, cache)
    model.train(was)
    vals = []
    for name, a in cache.items():
        if not name.endswith(".pattern"):
            continue
        T1 = a.shape[-1]
        h = -(a.clamp_min(1e-12).log() * a).sum(-1)[..., 1:]  # rows 1..T, (P, B, T)
        norm = torch.log(torch.arange(2, T1 + 1, dtype=a.dtype))  # row i sees i+1 keys
        vals.append((h / norm).mean().item())
    return float(np.mean(vals)) if vals else 0.0


@dataclass
class RestartResult:
    seed: int
    best_member: int
    val: dict[str, float]
    steps_run: int
    seconds: float
    stopped_early: bool
    state: dict[str, torch.Tensor] = field(repr=False)  # population-1 state dict of the best
    history: list[dict] = field(default_factory=list, repr=False)


def train_restart(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    split: Split,
    spec: DataSpec,
    seed: int,
    log_path: Path | None = None,
    progress: Progress | None = None,
    continuous_tol: float = 1e-7,
) -> RestartResult:
    """Search + hardening for one seed; returns the best population member."""
    torch.manual_seed(seed)  # only for ops without an explicit generator; all sampling uses `gen`
    gen = torch.Generator().manual_seed(seed)
    P = train_cfg.population
    model = DiscreteTransformer(model_cfg, spec, population=P, seed=seed)
    model.train()
    opt_w = torch.optim.Adam(model.weight_parameters(), lr=train_cfg.lr)
    opt_s = torch.optim.Adam(model.selector_parameters(), lr=train_cfg.lr_selector)
    n = split.x_train.shape[0]
    B = min(train_cfg.batch_size, n)
    t0 = time.perf_counter()
    history: list[dict] = []
    log = open(log_path, "a") if log_path else None
    hardened = False
    stopped_early = False
    best = {"score": math.inf, "member": 0, "metrics": None, "state": None}
    step = 0
    try:
        for step in range(train_cfg.steps):
            if not hardened and schedules.phase(train_cfg, step) == "harden":
                model.freeze_selectors()
                hardened = True
            if schedules.freeze_stats(train_cfg, step):
                model.stats_frozen.fill_(True)
            tau = schedules.tau(train_cfg, step)
            tau_a = schedules.tau_attn(train_cfg, step)
            for g in opt_w.param_groups:
                g["lr"] = train_cfg.lr * schedules.lr_factor(train_cfg, step)
            idx = torch.randint(0, n, (B,), generator=gen)
            xb, yb = split.x_train[idx], split.y_train[idx]
            mode = SelectMode(
                tau=tau,
                straight_through=train_cfg.straight_through,
                per_example=train_cfg.sample_per_example,
                generator=gen,
                batch=B,
            )
            pred = model(xb, mode, tau_a)
            loss = per_member_loss(pred, yb, split.var_y)
            opt_w.zero_grad(set_to_none=True)
            opt_s.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt_w.step()
            if not hardened:
                opt_s.step()

            last = step == train_cfg.steps - 1
            if step % train_cfg.eval_every == 0 or last:
                metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, tau_a)
                score = member_score(split.kind, metrics)
                i = int(np.argmin(score))
                row = {
                    "step": step,
                    "phase": "harden" if hardened else "search",
                    "tau": tau,
                    "tau_attn": tau_a,
                    "loss": float(loss.detach().mean()),
                    "loss_min": float(loss.detach().min()),
                    "val_nmse": float(metrics["nmse"][i]),
                    "val_exact": float(metrics["exact"][i]),
                    "val_solved": int(solved(split.kind, metrics, continuous_tol).sum()),
                    "selector_entropy": float(model.selector_entropy().mean()),
                    "attention_entropy": attention_entropy(model, xb[:16], mode, tau_a),
                    "seconds": time.perf_counter() - t0,
                    "seed": seed,
                }
                history.append(row)
                if log:
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                if progress:
                    progress(step, row)
                if hardened and score[i] <= best["score"]:
                    best = {"score": float(score[i]), "member": i, "metrics": metrics, "state": member_state(model, i)}
                ok = solved(split.kind, metrics, continuous_tol)
                if train_cfg.stop_on_exact and ok.any():
                    i = int(np.argmin(np.where(ok, score, np.inf)))
                    best = {"score": float(score[i]), "member": i, "metrics": metrics, "state": member_state(model, i)}
                    stopped_early = not last
                    break
            if train_cfg.time_limit is not None and time.perf_counter() - t0 > train_cfg.time_limit:
                break
    finally:
        if log:
            log.close()
    if best["state"] is None:  # stopped before hardening: take the current best
        metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, schedules.tau_attn(train_cfg, step))
        score = member_score(split.kind, metrics)
        i = int(np.argmin(score))
        best = {"score": float(score[i]), "member": i, "metrics": metrics, "state": member_state(model, i)}
    m = best["metrics"]
    i = best["member"]
    return RestartResult(
        seed=seed,
        best_member=i,
        val={"nmse": float(m["nmse"][i]), "exact": float(m["exact"][i]), "score": best["score"]},
        steps_run=step + 1,
        seconds=time.perf_counter() - t0,
        stopped_early=stopped_early,
        state=best["state"],
        history=history,
    )


NON_POPULATION_BUFFERS = ("ms_seen", "stats_frozen")


def member_state(model: DiscreteTransformer, i: int) -> dict[str, torch.Tensor]:
    """State dict of population member i, as a population-1 model."""
    out = {}
    for name, t in model.state_dict().items():
        if name.split(".")[-1] in NON_POPULATION_BUFFERS:
            out[name] = t.detach().clone()
        else:
            out[name] = t[i : i + 1].detach().clone()
    return out
