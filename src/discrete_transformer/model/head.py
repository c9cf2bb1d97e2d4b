"""A learned-score head's output in few passes over its (P, B, H, T1, T1) scores.

The composed form (attention.py: scores, a pattern per tie rule, the mixture with the fixed
patterns, `pattern · v`) makes about forty element-wise passes over tensors of T1² entries per
head and step, forward and backward, and at T = 36 those passes were most of the search's time
(docs/journal/2026-12-07-target-scale-decision.md, §7). Here the learned pattern is never mixed
with the fixed ones: a head's output is the mixture of each pattern's *output* (linear in the
pattern, so the same value), and the fixed patterns act on `v` as small matrix products.

The output of row i is Σ_j a[i, j]·v_j, one per tie rule (RASP's aggregate for "average", the
tie set's latest or earliest key's value); the hard pattern (evaluation, hardening) also gives its
selector width, which a summing head multiplies by. Summing heads while their pattern choice is
soft (their width is the *mixed* pattern's, 1 / its row max) and every forward that records the
intermediates (`cache`) take the composed form, the reference the tests compare with.
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


def _rule_output(rule: str, tie_set: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, key) of a one-key tie rule (attention.hard_pattern): the value at the latest
    (earliest) key of each row's tie set, and that key's index (..., T1)."""
    if rule == "latest":
        key = (tie_set.shape[-1] - 1) - tie_set.flip(-1).argmax(-1)
    else:  # "earliest"
        key = tie_set.argmax(-1)  # the first maximal entry
    return v.gather(-1, key), key


def hard_head(
    row: torch.Tensor,
    k: torch.Tensor,
    col: torch.Tensor,
    v: torch.Tensor,
    causal: torch.Tensor,
    margin: float,
    rules: tuple[str, ...] = ("average",),
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per tie rule, the output and the selector width (each (..., T1)) of the hard pattern:
    keys within `margin` of the row's best score, averaged ("average", width: their number) or
    the latest / earliest of them (width 1), as attention.hard_pattern. No gradient reaches the
    scores (a comparison has none), as in the composed form; `v` gets Σ_i g_i·a[i, j]."""
    with torch.no_grad():
        scores = _scores(row, k, col, causal)
        sel = _at_least(scores, scores.amax(-1, keepdim=True) - margin)  # (..., T1, T1)
        count = sel.sum(-1)  # (..., T1) the tie set's size, >= 1 (the best key)
    means, widths = [], []
    for rule in rules:
        if rule == "average":
            means.append(_mat_vec(sel, v) / count)
            widths.append(count)
        else:
            means.append(_rule_output(rule, sel, v)[0])
            widths.append(torch.ones_like(count))
    return means, widths


class _LearnedHead(torch.autograd.Function):
    """Forward, per tie rule: the output of the softmax pattern ("average" while `hard_average`
    is False), of the averaged tie set ("average" in the straight-through form) or of the tie
    set's latest / earliest key. Backward: always the softmax pattern's gradient with respect to
    the scores' parts (as attention's `straight_through_pattern` and one-key patterns), and each
    forward pattern's with respect to `v`."""

    @staticmethod
    def forward(ctx, row, k, col, v, causal, visible, margin, rules: tuple[str, ...], hard_average: bool):  # type: ignore[override]
        scores = _scores(row, k, col, causal)  # (..., T1, T1)
        top = scores.amax(-1, keepdim=True)
        needs_ties = hard_average or any(rule != "average" for rule in rules)
        tie_set = _at_least(scores, top - margin) if needs_ties else None  # before `scores` is reused
        e = scores.sub_(top).clamp_min_(-EXP_FLOOR).exp_().mul_(visible)  # hidden keys exactly 0
        p = e.div_(e.sum(-1, keepdim=True))
        pv = _mat_vec(p, v)
        outs, keys, width = [], [], None
        for rule in rules:
            if rule != "average":
                out, key = _rule_output(rule, tie_set, v)
                outs.append(out)
                keys.append(key)
            elif hard_average:
                width = tie_set.sum(-1)  # (..., T1) >= 1: the best key
                outs.append(_mat_vec(tie_set, v) / width)
            else:
                outs.append(pv)
        ctx.rules, ctx.hard_average = rules, hard_average
        ctx.save_for_backward(row, k, v, p, pv, tie_set, width, *keys)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        row, k, v, p, pv, tie_set, width, *keys = ctx.saved_tensors
        keys = iter(keys)
        g = g_v = None
        for rule, g_rule in zip(ctx.rules, grads, strict=True):
            key = next(keys) if rule != "average" else None
            if g_rule is None:
                continue
            g = g_rule if g is None else g + g_rule
            if key is not None:  # one key per row
                part = torch.zeros_like(v).scatter_add_(-1, key, g_rule)
            elif ctx.hard_average:
                part = _vec_mat(g_rule / width, tie_set)
            else:
                part = _vec_mat(g_rule, p)
            g_v = part if g_v is None else g_v + part
        if g is None:
            return (None,) * 9
        # dL/da[i, j] = g_i·v_j (g: every rule's, as all share the softmax's gradient); through the
        # softmax: ds = p ⊙ (G - Σ_j G ⊙ p) = p ⊙ g_i·(v_j - pv_i)
        ds = torch.addcmul((-g * pv).unsqueeze(-1), g.unsqueeze(-1), v.unsqueeze(-2)).mul_(p)  # (..., T1, T1)
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
    hard_average: bool,
    rules: tuple[str, ...] = ("average",),
) -> tuple[torch.Tensor, ...]:
    """Per tie rule, the (..., T1) output Σ_j a[i, j]·v_j of the head whose scores are
    s[i, j] = row_i·k_j + col_j over the keys `visible` (float 0/1, (T1, T1); `causal` is 0 there
    and -inf elsewhere). Gradients as the composed patterns give them: the softmax's for the
    scores; "average" is the softmax pattern, or with `hard_average` the straight-through tie-set
    pattern. `margin` (score units, broadcastable to (..., 1, 1)) sets the tie set's near-ties."""
    if not torch.is_tensor(margin):
        margin = torch.tensor(margin, dtype=row.dtype)
    return _LearnedHead.apply(row, k, col, v, causal, visible, margin, tuple(rules), hard_average)
