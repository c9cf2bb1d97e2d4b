"""Numerical helpers shared by the modules."""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch

# exp(x - max) is taken of max(x - max, -EXP_FLOOR): e^-80 ≈ 1.8e-35 is still a normal float32 and
# nothing beside the row's largest weight (1) can see it. torch's CPU exp is ~80x slower on inputs
# whose result underflows (measured: 2.4 ms vs 30 µs on a (16, 16, 2, 11, 11) tensor of scores at
# tau_attn 0.02, with the causal mask's -inf), and such inputs are the rule late in the search.
EXP_FLOOR = 80.0


def _shifted_exp(x: torch.Tensor, top: torch.Tensor, masked: bool = True) -> torch.Tensor:
    """exp(x - top) with inputs floored at -EXP_FLOOR; -inf (masked) entries stay exactly 0.
    `masked=False` promises that `x` has no -inf entry (the test for them is then skipped)."""
    e = (x - top).clamp_min_(-EXP_FLOOR).exp_()
    return e.masked_fill_(x == float("-inf"), 0.0) if masked else e


class _Softmax(torch.autograd.Function):
    """Softmax over the last axis.

    `torch.softmax` over a short last axis (≤ a few dozen entries, our case everywhere) is ~4×
    slower on CPU than this fused exp/normalise with a hand-written backward (measured with
    torch 2.13 CPU on (16, 64, 2, 11, 11): 6.8 ms vs 1.8 ms forward+backward). Exactly equal
    inputs still get exactly equal weights, which attention's tie averaging relies on.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, masked: bool) -> torch.Tensor:  # type: ignore[override]
        e = _shifted_exp(x, x.amax(-1, keepdim=True), masked)
        e.div_(e.sum(-1, keepdim=True))
        ctx.save_for_backward(e)
        return e

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (p,) = ctx.saved_tensors
        return p * (g - (g * p).sum(-1, keepdim=True)), None


def softmax(x: torch.Tensor, masked: bool = True) -> torch.Tensor:
    """Softmax over the last axis (see `_Softmax`). `masked=False` when `x` is known to hold no
    -inf (e.g. Gumbel logits of an unmasked selector): two fewer tensor operations."""
    return _Softmax.apply(x, masked)


class _StraightThroughPattern(torch.autograd.Function):
    """Attention pattern whose value is the *hard* pattern for the members flagged in `use_hard`
    and the softmax for the others, and whose gradient is always the softmax's.

    The same as ``soft + use_hard * (hard(scores) - soft).detach()`` with ``hard`` the rows'
    near-tie sets (keys within `margin` of the row's best score, averaged), in one pass that
    shares the row maximum between the two patterns (about half the tensor operations of the
    composed form, which dominated the search step on CPU).
    """

    @staticmethod
    def forward(ctx, scores: torch.Tensor, use_hard: torch.Tensor, margin: torch.Tensor, visible) -> torch.Tensor:  # type: ignore[override]
        top = scores.amax(-1, keepdim=True)
        # the tie set written straight into a float tensor: a bool result converted afterwards
        # took 3.5x as long on CPU
        sel = torch.ge(scores, top - margin, out=torch.empty_like(scores))
        if visible is None:
            e = _shifted_exp(scores, top)
        else:  # the -inf entries are known: zeroed by a product, not found by a comparison
            e = _shifted_exp(scores, top, masked=False).mul_(visible)
        p = e.div_(e.sum(-1, keepdim=True))
        ctx.save_for_backward(p)
        hard = sel.div_(sel.sum(-1, keepdim=True))
        return hard if bool(use_hard.all()) else torch.where(use_hard, hard, p)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (p,) = ctx.saved_tensors
        return p * (g - (g * p).sum(-1, keepdim=True)), None, None, None


def straight_through_pattern(
    scores: torch.Tensor, use_hard: torch.Tensor, margin: torch.Tensor | float, visible: torch.Tensor | None = None
) -> torch.Tensor:
    """Hard near-tie pattern forward where `use_hard` (bool, broadcastable), softmax elsewhere;
    softmax gradient everywhere (see `_StraightThroughPattern`). `margin` is in score units.
    `visible` (0/1, broadcastable), when given, is 0 exactly where `scores` is -inf."""
    margin = torch.as_tensor(margin, dtype=scores.dtype)
    return _StraightThroughPattern.apply(scores, use_hard, margin, visible)


class _RowDot(torch.autograd.Function):
    """out[g, n] = Σ_k x[g, n, k]·w[g, 0, k]: one weight vector per group, dotted with every row.

    A matrix-vector product per group is one of MKL's slow shapes on CPU, and its autograd
    backward (an outer product as bmm) slower still; the broadcast forms written out here ran
    forward+backward in about half the time of `baddbmm` (32 groups, 176 rows, 30–54 features),
    and in ~70 % of autograd's own backward for `(x * w).sum(-1)`, whose weight gradient
    multiplies an expanded (stride-0) tensor.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, w)
        return (x * w).sum(-1)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        g3 = g.unsqueeze(-1)  # (G, N, 1)
        return g3 * w, (x * g3).sum(1, keepdim=True)


def row_dot(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x: (G, N, K), w: (G, 1, K) -> (G, N), the dot product of every row of x with its group's w."""
    return _RowDot.apply(x, w)


def cached(cache: dict, key: Hashable, build: Callable[[], torch.Tensor]) -> torch.Tensor:
    """`cache[key]`, built by `build()` on first use: a layer's constant tensors (masks, cast
    frequencies) are made once per length and dtype instead of in every forward pass. The
    tensors are shared: callers only read them."""
    if key not in cache:
        cache[key] = build()
    return cache[key]
