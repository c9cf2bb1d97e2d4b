"""The polish: float64 full-batch L-BFGS of one member's continuous weights, where continuous
tasks reach their precision (docs/design.md, Three training phases). Phase 3 of a restart
(:func:`final_polish`) and, during the search, the trial polish of a promising member
(:func:`trial_polish`, docs/design.md, Trial polish).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from ..config import TrainConfig
from ..model import DiscreteTransformer
from ..verdict import solved_each
from .evaluation import HARD, Seen, Split, eval_row, evaluate, member_score, per_member_loss, subset, write_member

Log = Callable[[dict], None]  # one metrics row to the restart's log

# The polish runs only for a best member within this validation nMSE of the targets. It is for
# precision (Kinematics_1D with the right structure: Adam 2e-5, polish 1.3e-7); a member further
# off has the wrong structure, and its ~300 float64 L-BFGS iterations (~9 s, a sixth of a restart)
# bought nothing.
POLISH_MAX_NMSE = 0.05


def final_polish(
    model: DiscreteTransformer,
    cfg: TrainConfig,
    split: Split,
    gen: torch.Generator,
    log: Log,
    tol: float,
    step: int,
    seen: Seen | None = None,
) -> DiscreteTransformer:
    """Phase 3: float64 full-batch L-BFGS of the best member's continuous weights (selectors and
    attention patterns are fixed by now, so this is a small smooth least-squares problem).

    The polished member is then polished once more with its MLPs' ReLU units switched off
    (their output weights zeroed; the polish may bring them back). This is an Occam restart:
    when the function is a product or a linear map, the bilinear and linear terms express it
    exactly, but the ReLU units Adam recruited leave the L-BFGS optimum at an approximation
    (Sum_All, readout MLP of (prefix_mean_x, pos): test exact 99.67 % after the first polish,
    99.99 % after the lean one). The lean model is polished only when it is itself within
    POLISH_MAX_NMSE on validation, so a member that needs its ReLUs pays one evaluation. The
    lower final training loss is kept."""
    metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
    best = int(np.argmin(member_score(split.kind, metrics)))
    if not float(metrics["nmse"][best]) <= POLISH_MAX_NMSE:
        return model  # the structure is wrong: precision cannot make it right
    xb, yb, var = polish_batch(split, cfg, gen)
    polished, end = polish_member(subset(model, [best]), xb, yb, var, split, cfg, tol, seen)
    write_member(model, best, polished)
    row, _ = eval_row(model, split, tol, cfg)
    row.update(step=step, phase="polish", tau=0.0, tau_attn=0.0, loss=end, loss_min=end, attention_entropy=0.0)
    log(row)
    return model


def polish_batch(
    split: Split, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`polish_size` training sequences drawn with `gen`, and the target variance, in float64."""
    idx = torch.randperm(split.x_train.shape[0], generator=gen)[: cfg.polish_size]
    return split.x_train[idx].double(), split.y_train[idx].double(), split.var_y.double()


def polish_member(
    member: DiscreteTransformer,
    xb: torch.Tensor,
    yb: torch.Tensor,
    var: torch.Tensor,
    split: Split,
    cfg: TrainConfig,
    tol: float,
    seen: Seen | None = None,
) -> tuple[DiscreteTransformer, float]:
    """L-BFGS of a one-member model, then of its lean copy (MLP ReLU outputs zeroed) when that is
    within POLISH_MAX_NMSE on validation, each stopping once it solves the validation set.
    Kept: the lean copy if it solves (its MLPs are the linear/bilinear maps symbolic regression
    reads exactly), else the member if it solves, else the lower training loss."""
    done = solves(split, cfg, tol)
    polished, end = lbfgs(member, xb, yb, var, cfg, cfg.polish_iters, until=done, seen=seen)
    polished_ok = done(polished)
    lean = lean_copy(polished, split, cfg)
    if lean is not None:
        lean, lean_end = lbfgs(lean, xb, yb, var, cfg, cfg.polish_iters, until=done, seen=seen)
        if done(lean) or (not polished_ok and lean_end < end):
            polished, end = lean, lean_end
    return polished, end


def solves(split: Split, cfg: TrainConfig, tol: float) -> Callable[[DiscreteTransformer], bool]:
    """Whether a one-member model (any dtype) solves the whole validation set, judged on its
    float32 copy: the precision it is stored and extracted at."""

    def done(member: DiscreteTransformer) -> bool:
        m = evaluate(copy.deepcopy(member).float(), split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
        return bool(solved_each(split.kind, m, tol)[0])

    return done


def lean_copy(member: DiscreteTransformer, split: Split, cfg: TrainConfig) -> DiscreteTransformer | None:
    """A float32 copy of a one-member model with its MLPs' ReLU outputs zeroed, or None when that
    copy is further than POLISH_MAX_NMSE from the targets (the ReLUs carry the function)."""
    lean = copy.deepcopy(member).float()
    with torch.no_grad():
        for layer in lean.layers:
            layer["mlp"].c_r.zero_()
    lean_nmse = float(evaluate(lean, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)["nmse"][0])
    return lean if lean_nmse <= POLISH_MAX_NMSE else None


# L-BFGS runs in chunks of this many iterations when it may stop at a solved validation: one
# evaluation of one member on the validation set (~10 ms) per chunk, against the ~0.1-0.2 s an
# iteration costs. The optimiser's state carries over between chunks.
POLISH_CHUNK = 25


def lbfgs(
    member: DiscreteTransformer,
    xb: torch.Tensor,
    yb: torch.Tensor,
    var: torch.Tensor,
    cfg: TrainConfig,
    iters: int,
    until: Callable[[DiscreteTransformer], bool] | None = None,
    seen: Seen | None = None,
) -> tuple[DiscreteTransformer, float]:
    """float64 L-BFGS (`iters` iterations) of a one-member model's continuous weights on one full
    batch; returns the model and its final loss (never worse than at the start: a failed run is
    undone). With `until`, the iterations run in chunks of POLISH_CHUNK and stop at the first
    chunk after which `until(member)` is true (the task is solved: more precision buys nothing
    the rounding rule or the tolerance can see, and Sum_All's polish ran 61 s for it). Every
    loss evaluation adds the batch to ``seen``."""
    member = member.double()
    member.stats_frozen.fill_(True)
    params = member.weight_parameters()
    before = [p.detach().clone() for p in params]
    chunk = iters if until is None else min(iters, POLISH_CHUNK)
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=chunk,
        history_size=50,
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        if seen is not None:
            seen.add(xb.shape[0])
        opt.zero_grad(set_to_none=True)
        loss = per_member_loss(member(xb, HARD, cfg.tau_attn_end), yb, var).sum()
        loss.backward()
        return loss

    start = float(closure().detach())
    state = opt.state[params[0]]
    left = iters
    while left > 0:
        n = min(chunk, left)
        # One evaluation budget for all chunks (LBFGS's default, 1.25 per iteration).
        opt.param_groups[0].update(max_iter=n, max_eval=max(1, iters * 5 // 4 - state.get("func_evals", 0)))
        ran = -state.get("n_iter", 0)
        opt.step(closure)
        ran += state.get("n_iter", 0)
        left -= n
        # A chunk that stopped short converged (or ran out of evaluations): one long run would
        # have ended there too, and the next chunk would only start it again.
        if ran < n or (until is not None and left > 0 and until(member)):
            break
    end = float(closure().detach())
    if not np.isfinite(end) or end > start:  # never let the polish make things worse
        with torch.no_grad():
            for p, b in zip(params, before):
                p.copy_(b)
        end = start
    return member, end


class Trials:
    """When the search tries a polish (TrainConfig.trial_polish_nmse): the best member within the
    threshold, at most `trial_polish_max` times, each at half the previous trial's nMSE or less
    (a member that did not polish to a solution at 1e-4 will not at 0.9e-4)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.left = cfg.trial_polish_max if cfg.trial_polish_nmse > 0 else 0
        self.below = cfg.trial_polish_nmse

    def due(self, nmse: float) -> bool:
        if self.left <= 0 or not nmse <= self.below:
            return False
        self.left -= 1
        self.below = nmse / 2
        return True


def trial_polish(
    model: DiscreteTransformer,
    best: int,
    cfg: TrainConfig,
    split: Split,
    log: Log,
    tol: float,
    step: int,
    seen: Seen | None = None,
) -> bool:
    """Polish a discretised copy of member `best` now (phase 3 on a copy). If the copy solves the
    task on the whole validation set it replaces the member and True is returned; otherwise the
    population is untouched and the search goes on.

    Why: the search usually has the right structure long before the end of the anneal (Sum_Last2:
    discretised validation nMSE 2e-4 at step 600 of 1,300); what it lacks is the precision that
    hardening and the polish add. The trial's batch comes from its own generator, so the search
    after a failed trial is exactly the search without it."""
    xb, yb, var = polish_batch(split, cfg, torch.Generator().manual_seed(step))

    def polish(member: DiscreteTransformer) -> tuple[DiscreteTransformer, float, dict[str, np.ndarray], bool]:
        out, end = lbfgs(member, xb, yb, var, cfg, cfg.trial_polish_iters, until=solves(split, cfg, tol), seen=seen)
        out = out.float()
        metrics = evaluate(out, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
        return out, end, metrics, bool(solved_each(split.kind, metrics, tol)[0])

    # The lean copy first: when it solves, its MLPs are the plain linear/bilinear maps that
    # symbolic regression reads exactly (Sum_Last4: 21 s of extraction with the ReLUs kept).
    member = subset(model, [best])
    lean = lean_copy(member, split, cfg)
    ok = False
    if lean is not None:
        polished, end, metrics, ok = polish(lean)
    if not ok:
        polished, end, metrics, ok = polish(member)
    log(
        {
            "step": step,
            "phase": "trial",
            "val_nmse": float(metrics["nmse"][0]),
            "val_exact": float(metrics["exact"][0]),
            "val_solved": int(ok),
            "tau": 0.0,
            "tau_attn": 0.0,
            "loss": end,
            "loss_min": end,
            "attention_entropy": 0.0,
        }
    )
    if ok:
        write_member(model, best, polished)
    return ok
