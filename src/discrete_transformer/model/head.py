"""A learned-score head's output in few passes over its (P, B, H, T1, T1) scores.

The composed form (attention.py: scores, a pattern per tie rule, the mixture with the fixed
patterns, `pattern · v`) makes about forty element-wise passes over tensors of T1² entries per
head and step, forward and backward, and at T = 36 those passes were most of the search's time
(docs/journal/2026-12-07-target-scale-decision.md, §7). Here the learned pattern is never mixed
with the fixed ones: a head's output is the mixture of each pattern's *output* (linear in the
pattern, so the same value), and the fixed patterns act on `v` as small matrix products.

Two outputs per row i: `mean` = Σ_j a[i, j]·v_j (RASP's aggregate) and `width` = 1 / max_j a[i, j]
(the selector width a summing head multiplies by). Under the hard pattern (the row's near-tie set,
averaged) width is the size of the tie set; under the softmax it is Σ_j exp(s_ij − max_j s_ij).

Only the "average" tie rule is served here; the other rules, and every forward that records the
intermediates (`cache`), take the composed form, which stays the reference (tests compare both).
"""

from __future__ import annotations

import torch

from .functional import EXP_FLOOR


def _scores(row: torch.Tensor, k: torch.Tensor, col: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
    """(..., T1, T1) s[i, j] = row_i·k_j + col_j + causal[i, j] (-inf for keys after the query;
    an add, which on CPU took a seventh of a broadcast masked_fill_'s time)."""
    return torch.addcmul(col.unsqueeze(-2), row.unsqueeze(-1), k.unsqueeze(-2)).add_(causal)


def _at_least(scores: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """1.0 where scores >= threshold, else 0.0, written straight into a float tensor (a bool
    result converted afterwards took 3.5x as long)."""
    return torch.ge(scores, threshold, out=torch.empty_like(scores))


def _mat_vec(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(..., T1, T1) @ (..., T1) -> (..., T1): Σ_j a[i, j]·v_j."""
    return torch.matmul(a, v.unsqueeze(-1)).squeeze(-1)


def _vec_mat(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """(..., T1) @ (..., T1, T1) -> (..., T1): Σ_i g_i·a[i, j]."""
    return torch.matmul(g.unsqueeze(-2), a).squeeze(-2)


def hard_head(
    row: torch.Tensor, k: torch.Tensor, col: torch.Tensor, v: torch.Tensor, causal: torch.Tensor, margin: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, width), each (..., T1), of the hard pattern: keys within `margin` of the row's best
    score, averaged (attention.hard_pattern's "average"). No gradient reaches the scores (a
    comparison has none), as in the composed form; `v` gets Σ_i g_i·a[i, j]."""
    with torch.no_grad():
        scores = _scores(row, k, col, causal)
        sel = _at_least(scores, scores.amax(-1, keepdim=True) - margin)  # (..., T1, T1)
        width = sel.sum(-1)  # (..., T1) the tie set's size, >= 1 (the best key)
    return _mat_vec(sel, v) / width, width


class _LearnedHead(torch.autograd.Function):
    """Forward: the softmax pattern's (`hard=False`) or the hard pattern's (`hard=True`, the
    straight-through form) mean and width. Backward: always the softmax pattern's gradient with
    respect to the scores' parts (as attention's `straight_through_pattern`), and the forward
    pattern's with respect to `v`. The gradient a pattern entry gets from `width` = 1 / (row max)
    is split equally among the row's maximal entries, as autograd splits it for `amax`."""

    @staticmethod
    def forward(ctx, row, k, col, v, causal, visible, margin, hard: bool, with_width: bool):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        scores = _scores(row, k, col, causal)  # (..., T1, T1)
        top = scores.amax(-1, keepdim=True)
        e = (scores - top).clamp_min_(-EXP_FLOOR).exp_().mul_(visible)  # hidden keys exactly 0
        z = e.sum(-1, keepdim=True)  # (..., T1, 1) >= 1: the best key's e is 1
        if hard:
            # the forward pattern's maximal entries: the whole tie set (all 1 / width)
            top_set = _at_least(scores, top - margin)
            width = top_set.sum(-1)
            mean = _mat_vec(top_set, v) / width
        else:
            # the softmax's maximal entries (exp(0) = 1), needed only for width's gradient
            top_set = torch.eq(e, 1.0, out=torch.empty_like(e)) if with_width else None
            width = z.squeeze(-1)
        p = e.div_(z)
        pv = _mat_vec(p, v)
        if not hard:
            mean = pv
        ctx.hard = hard
        ctx.save_for_backward(row, k, v, p, pv, top_set, width)
        return mean, width

    @staticmethod
    def backward(ctx, g_mean, g_width):  # type: ignore[override]
        row, k, v, p, pv, top_set, width = ctx.saved_tensors
        if g_mean is None:
            g_mean = torch.zeros_like(pv)
        if ctx.hard:  # forward pattern = top_set / width: max 1 / width, reached n_top = width times
            g_v = _vec_mat(g_mean / width, top_set)
        else:
            g_v = _vec_mat(g_mean, p)
        # dL/da[i, j] = g_i·v_j - c_i·top_set[i, j], c_i = g_width_i·width_i² / n_top_i
        # (d width / d max = -width²); through the softmax: ds = p ⊙ (G - Σ_j G ⊙ p).
        shift = -g_mean * pv  # (..., T1): -Σ_j G ⊙ p
        if g_width is not None and top_set is not None:
            c = g_width * width * width / top_set.sum(-1)
            shift = shift + c * (top_set * p).sum(-1)
        ds = torch.addcmul(shift.unsqueeze(-1), g_mean.unsqueeze(-1), v.unsqueeze(-2))
        if g_width is not None and top_set is not None:
            ds.addcmul_(top_set, c.unsqueeze(-1), value=-1.0)
        ds.mul_(p)  # (..., T1, T1)
        g_row = _mat_vec(ds, k)
        both = torch.matmul(torch.stack([row, torch.ones_like(row)], dim=-2), ds)  # (..., 2, T1)
        return g_row, both[..., 0, :], both[..., 1, :], g_v, None, None, None, None, None


def learned_head(
    row: torch.Tensor,
    k: torch.Tensor,
    col: torch.Tensor,
    v: torch.Tensor,
    causal: torch.Tensor,
    visible: torch.Tensor,
    margin: float | torch.Tensor,
    hard: bool,
    with_width: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, width), each (..., T1), of the head whose scores are s[i, j] = row_i·k_j + col_j over
    the keys `visible` (float 0/1, (T1, T1); `causal` is 0 there and -inf elsewhere). Gradients as the
    composed soft pattern (`hard=False`) or straight-through pattern (`hard=True`) give them;
    `margin` (score units, broadcastable to (..., 1, 1)) sets the hard pattern's near-ties.
    `with_width=False` promises that width's gradient is not needed (no summing head)."""
    if not torch.is_tensor(margin):
        margin = torch.tensor(margin, dtype=row.dtype)
    return _LearnedHead.apply(row, k, col, v, causal, visible, margin, hard, with_width)
