"""A learned-score head's output in few passes over its (P, B, H, T1, T1) scores.

The composed form (attention.py: scores, a pattern per tie rule, the mixture with the fixed
patterns, `pattern · v`) makes about forty element-wise passes over tensors of T1² entries per
head and step, forward and backward, and at T = 36 those passes were most of the search's time
(docs/journal/2026-12-07-target-scale-decision.md, §7). Here the learned pattern is never mixed
with the fixed ones: a head's output is the mixture of each pattern's *output* (linear in the
pattern, so the same value), and the fixed patterns act on `v` as small matrix products.

The output of row i is `mean` = Σ_j a[i, j]·v_j (RASP's aggregate); the hard pattern (evaluation,
hardening) also gives its `width`, the size of the row's tie set, which a summing head multiplies
by. Only the "average" tie rule is served here. The other rules, summing heads while their pattern
choice is soft (their width is the *mixed* pattern's, 1 / its row max), and every forward that
records the intermediates (`cache`) take the composed form, the reference the tests compare with.
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
    straight-through form) mean. Backward: always the softmax pattern's gradient with respect to
    the scores' parts (as attention's `straight_through_pattern`), and the forward pattern's with
    respect to `v`."""

    @staticmethod
    def forward(ctx, row, k, col, v, causal, visible, margin, hard: bool):  # type: ignore[override]
        scores = _scores(row, k, col, causal)  # (..., T1, T1)
        top = scores.amax(-1, keepdim=True)
        tie_set = _at_least(scores, top - margin) if hard else None  # before `scores` is reused
        e = scores.sub_(top).clamp_min_(-EXP_FLOOR).exp_().mul_(visible)  # hidden keys exactly 0
        p = e.div_(e.sum(-1, keepdim=True))
        pv = _mat_vec(p, v)
        if hard:
            width = tie_set.sum(-1)  # (..., T1) >= 1: the best key
            mean = _mat_vec(tie_set, v) / width
        else:
            width, mean = None, pv
        ctx.save_for_backward(row, k, v, p, pv, tie_set, width)
        return mean

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        row, k, v, p, pv, tie_set, width = ctx.saved_tensors
        g_v = _vec_mat(g, p) if tie_set is None else _vec_mat(g / width, tie_set)
        # dL/da[i, j] = g_i·v_j; through the softmax: ds = p ⊙ (G - Σ_j G ⊙ p) = p ⊙ g_i·(v_j - pv_i)
        ds = torch.addcmul((-g * pv).unsqueeze(-1), g.unsqueeze(-1), v.unsqueeze(-2)).mul_(p)  # (..., T1, T1)
        g_row = _mat_vec(ds, k)
        both = torch.matmul(torch.stack([row, torch.ones_like(row)], dim=-2), ds)  # (..., 2, T1)
        return g_row, both[..., 0, :], both[..., 1, :], g_v, None, None, None, None


def learned_head(
    row: torch.Tensor,
    k: torch.Tensor,
    col: torch.Tensor,
    v: torch.Tensor,
    causal: torch.Tensor,
    visible: torch.Tensor,
    margin: float | torch.Tensor,
    hard: bool,
) -> torch.Tensor:
    """(..., T1) the output Σ_j a[i, j]·v_j of the head whose scores are s[i, j] = row_i·k_j + col_j
    over the keys `visible` (float 0/1, (T1, T1); `causal` is 0 there and -inf elsewhere).
    Gradients as the composed soft pattern (`hard=False`) or straight-through pattern
    (`hard=True`) give them; `margin` (score units, broadcastable to (..., 1, 1)) sets the hard
    pattern's near-ties."""
    if not torch.is_tensor(margin):
        margin = torch.tensor(margin, dtype=row.dtype)
    return _LearnedHead.apply(row, k, col, v, causal, visible, margin, hard)
