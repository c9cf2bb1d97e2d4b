"""Training loop for one restart: a population of P models searched, hardened, then polished.

:func:`train_restart` is the list of the stages; the search and the hardening are here, the
scoring shared by all phases in training/evaluation.py, the polish in training/polish.py.

The loss of each member is MSE normalised by the target variance (per output channel), so that
tasks of any scale share one set of hyperparameters. Members are independent: the summed loss
gives each its own gradient, and Adam's per-parameter statistics keep them apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig
from ..model import DataSpec, DiscreteTransformer, SelectMode
from ..verdict import RESTART_NMSE
from . import reinforce, schedules
from .evaluation import (
    HARD,
    SEARCH_PROBE,
    Seen,
    Split,
    attention_entropy,
    data_spec,
    eval_row,
    evaluate,
    first_solved,
    member_score,
    member_state,
    per_member_loss,
    subset,
    target_levels,
)
from .polish import Trials, final_polish, trial_polish

Progress = Callable[[int, dict], None]


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
    sequences: int | None = None  # training sequences seen (evaluation.Seen); None: not recorded


def total_sequences(results: Iterable[RestartResult]) -> int | None:
    """The training sequences a run's restarts saw, summed; None when one of them has no count
    (kept by code from before the count): a partial sum would understate the run's compute."""
    counts = [r.sequences for r in results]
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


class _Logger:
    """Metrics rows → JSONL file, progress callback and in-memory history."""

    def __init__(self, path: Path | None, progress: Progress | None, seed: int, t0: float) -> None:
        self.file = open(path, "a") if path else None  # noqa: SIM115 (closed by close())
        self.progress, self.seed, self.t0 = progress, seed, t0
        self.history: list[dict] = []

    def __call__(self, row: dict) -> None:
        row = {**row, "seconds": round(time.perf_counter() - self.t0, 3), "seed": self.seed}
        self.history.append(row)
        if self.file:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        if self.progress:
            self.progress(int(row["step"]), row)

    def close(self) -> None:
        if self.file:
            self.file.close()


def train_restart(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    split: Split,
    spec: DataSpec,
    seed: int,
    log_path: Path | None = None,
    progress: Progress | None = None,
    continuous_tol: float = RESTART_NMSE,
    should_stop: Callable[[], bool] | None = None,
) -> RestartResult:
    """Search, hardening and polishing for one seed; returns the best population member.

    1. *Search*: P members with Gumbel-softmax selectors, annealed temperatures.
    2. *Hardening*: keep the `harden_top` members whose discretised model (argmax selectors,
       hard attention) validates best, freeze them, and fine-tune the continuous weights.
    3. *Polish*: float64 L-BFGS on each survivor's MLP and score weights, full batch, which is
       where continuous tasks reach 1e-9 normalised MSE.

    `progress(step, row)` is called at every evaluation; `should_stop()` is polled there too
    (another restart already solved the task, or the user interrupted) and ends the run early.
    """
    torch.manual_seed(seed)  # only for ops without an explicit generator; all sampling uses `gen`
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    log = _Logger(log_path, progress, seed, t0)
    out_of_time = lambda: train_cfg.time_limit is not None and time.perf_counter() - t0 > train_cfg.time_limit  # noqa: E731
    stop = lambda: (should_stop is not None and should_stop()) or out_of_time()  # noqa: E731
    model = DiscreteTransformer(model_cfg, spec, population=train_cfg.population, seed=seed)
    seen = Seen()
    try:
        # Late in the search, softmaxes at tau 0.05 / tau_attn 0.02 produce denormal floats, and
        # x86 arithmetic on denormals is slow: the last third of the search ran 2x slower
        # (45 vs 20 ms/step). Flushing them to zero changes nothing a float32 weight can show.
        torch.set_flush_denormal(True)
        step, solved_idx = _search(model, train_cfg, split, gen, log, stop, continuous_tol, seen)
        stopped_early = solved_idx is not None
        if solved_idx is None and not stop():
            model, step, solved_idx = _harden(model, train_cfg, split, gen, log, stop, continuous_tol, step, seen)
        if solved_idx is None and not stop() and train_cfg.polish_iters > 0:
            model = final_polish(model, train_cfg, split, gen, log, continuous_tol, step, seen=seen)
    finally:
        torch.set_flush_denormal(False)
        log.close()
    metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, train_cfg.tau_attn_end)
    score = member_score(split.kind, metrics)
    i = int(np.argmin(score)) if solved_idx is None else solved_idx
    return RestartResult(
        seed=seed,
        best_member=i,
        val={"nmse": float(metrics["nmse"][i]), "exact": float(metrics["exact"][i]), "score": float(score[i])},
        steps_run=step + 1,
        seconds=time.perf_counter() - t0,
        stopped_early=stopped_early,
        state=member_state(model, [i]),
        history=log.history,
        sequences=seen.n,
    )


def sample_batch(split: Split, gen: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(0, split.x_train.shape[0], (min(size, split.x_train.shape[0]),), generator=gen)
    return split.x_train[idx], split.y_train[idx]


def straight_through_from(cfg: TrainConfig) -> float:
    """The search step from which every member's forward pass uses hard attention, soft backward,
    so the structure the members settle on is one that survives discretisation (docs/design.md,
    Straight-through hard attention). A float32 product, as the members' flags compare against it."""
    return float(torch.tensor(cfg.attention_st_from, dtype=torch.float32) * cfg.search_steps)


def search_mode(
    cfg: TrainConfig, step: int, population: int, gen: torch.Generator, batch: int, st_start: float
) -> tuple[SelectMode, torch.Tensor]:
    """The selectors' mode at search step `step` (Gumbel temperatures per member, straight-through
    attention from `st_start`) and the attention temperatures (P,)."""
    tau, tau_a = schedules.member_temperatures(cfg, step, population)
    mode = SelectMode(
        tau=tau,
        per_example=cfg.sample_per_example,
        generator=gen,
        batch=batch,
        attention_st=torch.ones(population) if step >= st_start else None,
        attention_hard_tau=cfg.tau_attn_end,
    )
    return mode, tau_a


def _search(model, cfg: TrainConfig, split: Split, gen, log, stop, tol, seen: Seen) -> tuple[int, int | None]:
    """Phase 1. Returns (last step, index of a member already solved or None)."""
    model.train()
    P = model.population
    opt_w = torch.optim.Adam(model.weight_parameters(), lr=cfg.lr, fused=True)
    opt_s = torch.optim.Adam(model.selector_parameters(), lr=cfg.lr_selector, fused=True)
    st_start = straight_through_from(cfg)
    step = 0
    trials = Trials(cfg)
    score_fn = reinforce.ScoreFunction(cfg, P) if cfg.estimator == "reinforce" else None
    for step in range(cfg.search_steps):
        xb, yb = sample_batch(split, gen, cfg.batch_size)
        seen.add(xb.shape[0], P)
        mode, tau_a = search_mode(cfg, step, P, gen, xb.shape[0], st_start)
        opt_w.zero_grad(set_to_none=True)
        opt_s.zero_grad(set_to_none=True)
        if score_fn is not None:  # REINFORCE: sampled hard choices, score-function logits
            loss = score_fn.backward(model, xb, yb, split.var_y, mode, tau_a)
        else:
            loss = per_member_loss(model(xb, mode, tau_a), yb, split.var_y)
            loss.sum().backward()
        opt_w.step()
        opt_s.step()
        if step % cfg.eval_every == 0 or step == cfg.search_steps - 1:
            row, metrics = eval_row(model, split, tol, cfg, probe=SEARCH_PROBE)
            row.update(
                step=step,
                phase="search",
                tau=float(mode.tau.median()),
                tau_attn=float(tau_a.median()),
                loss=float(loss.detach().mean()),
                loss_min=float(loss.detach().min()),
                attention_entropy=attention_entropy(model, xb[:16], mode, tau_a),
            )
            log(row)
            done = first_solved(split.kind, metrics, tol)
            if cfg.stop_on_exact and done is not None:
                return step, done
            best = int(np.argmin(member_score(split.kind, metrics)))
            if (
                cfg.stop_on_exact
                and trials.due(float(metrics["nmse"][best]))
                and trial_polish(model, best, cfg, split, log, tol, step, seen=seen)
            ):
                return step, best
            if stop():
                break
    return step, None


def _harden(model, cfg: TrainConfig, split: Split, gen, log, stop, tol, step0: int, seen: Seen):
    """Phase 2: keep the best `harden_top` discretised members, freeze them, fine-tune."""
    metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
    keep = np.argsort(member_score(split.kind, metrics), kind="stable")[: cfg.harden_top].tolist()
    model = subset(model, keep)
    model.freeze_selectors()
    model.train()
    opt = torch.optim.Adam(model.weight_parameters(), lr=cfg.lr, fused=True)
    n = max(cfg.total_steps - cfg.search_steps, 1)
    step = step0
    for k in range(n):
        step = step0 + 1 + k
        for g in opt.param_groups:
            g["lr"] = cfg.lr * schedules.cosine(k, n)
        if k == n // 2:
            model.stats_frozen.fill_(True)
        xb, yb = sample_batch(split, gen, cfg.harden_batch_size)
        seen.add(xb.shape[0], model.population)
        loss = per_member_loss(model(xb, HARD, cfg.tau_attn_end), yb, split.var_y)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if k % cfg.eval_every == 0 or k == n - 1:
            row, metrics = eval_row(model, split, tol, cfg)
            row.update(
                step=step,
                phase="harden",
                tau=0.0,
                tau_attn=0.0,
                loss=float(loss.detach().mean()),
                loss_min=float(loss.detach().min()),
                attention_entropy=0.0,
            )
            log(row)
            done = first_solved(split.kind, metrics, tol)
            if cfg.stop_on_exact and done is not None:
                return model, step, done
            if stop():
                break
    model.stats_frozen.fill_(True)
    return model, step, None


# Names other modules import from here (the scoring moved to training/evaluation.py).
__all__ = [
    "HARD",
    "Progress",
    "RestartResult",
    "Split",
    "data_spec",
    "evaluate",
    "member_score",
    "member_state",
    "per_member_loss",
    "sample_batch",
    "search_mode",
    "straight_through_from",
    "subset",
    "target_levels",
    "total_sequences",
    "train_restart",
]
