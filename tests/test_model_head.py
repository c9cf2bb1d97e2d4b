"""The fused learned-score head (model/head.py) against the composed form it replaces in the search:
the same outputs and gradients in every attention mode, and the summing head's meaning under a soft
pattern choice (the mixed pattern's width)."""

from __future__ import annotations

import itertools

import pytest
import torch

from discrete_transformer.model.attention import AttentionLayer, fixed_pattern
from discrete_transformer.model.selector import SelectMode

P, B, T1, V, H = 3, 4, 9, 5, 2
MODES = ("soft", "straight-through", "hard")


def _layer(
    summing: bool,
    patterns: tuple[str, ...],
    shifts: bool,
    bos: bool,
    ties: tuple[str, ...] = ("average",),
    averaging: bool = True,
) -> AttentionLayer:
    gen = torch.Generator().manual_seed(0)
    group = tuple(f"shift{c}" for c in range(3, T1 - 1)) if shifts else ()
    layer = AttentionLayer(
        P,
        H,
        V,
        gen,
        summing=summing,
        bos_bias=bos,
        patterns=patterns,
        shift_group=group,
        ties=ties,
        averaging=averaging,
    )
    layer = layer.double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 1.0, generator=gen)
    return layer


def _mode(name: str) -> SelectMode:
    if name == "hard":
        return SelectMode(hard=True, hard_attention=True)
    st = torch.ones(P) if name == "straight-through" else None
    gen = torch.Generator().manual_seed(5)  # the same Gumbel draws for both forms
    return SelectMode(tau=1.0, per_example=True, generator=gen, batch=B, attention_st=st, attention_hard_tau=0.02)


def _run(layer: AttentionLayer, mode: str, fused: bool) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """The layer's output on an integer stream (exact score ties) and every gradient of a fixed
    random projection of it."""
    layer.fused = fused
    layer.zero_grad(set_to_none=True)
    stream = torch.randn(P, B, T1, V, generator=torch.Generator().manual_seed(2), dtype=torch.float64).round()
    stream[:, :, 0] = 0.0
    stream.requires_grad_(True)
    tau = 0.02 if mode == "hard" else torch.tensor([0.5, 1.0, 0.2], dtype=torch.float64)
    out = layer(stream, stream / 2, _mode(mode), tau)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * weights).sum().backward()
    grads = [stream.grad] + [p.grad for p in layer.parameters()]
    return out.detach(), grads


@pytest.mark.parametrize(
    "summing,patterns,shifts,bos,mode",
    list(itertools.product([False, True], [(), ("shift1", "shift2", "prefix")], [False, True], [False, True], MODES)),
)
def test_fused_head_matches_the_composed_form(
    summing: bool, patterns: tuple[str, ...], shifts: bool, bos: bool, mode: str
) -> None:
    layer = _layer(summing, patterns, shifts, bos)
    out_fused, grads_fused = _run(layer, mode, fused=True)
    out_composed, grads_composed = _run(layer, mode, fused=False)
    torch.testing.assert_close(out_fused, out_composed, rtol=1e-12, atol=1e-12)
    for g_fused, g_composed in zip(grads_fused, grads_composed, strict=True):
        assert (g_fused is None) == (g_composed is None)  # hard attention: no gradient to the scores
        if g_fused is not None:
            torch.testing.assert_close(g_fused, g_composed, rtol=1e-10, atol=1e-12)


def _assert_same(layer: AttentionLayer, mode: str) -> None:
    out_fused, grads_fused = _run(layer, mode, fused=True)
    out_composed, grads_composed = _run(layer, mode, fused=False)
    torch.testing.assert_close(out_fused, out_composed, rtol=1e-12, atol=1e-12)
    for g_fused, g_composed in zip(grads_fused, grads_composed, strict=True):
        assert (g_fused is None) == (g_composed is None)
        if g_fused is not None:
            torch.testing.assert_close(g_fused, g_composed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ties", [("latest",), ("earliest",), ("average", "latest", "earliest")])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("summing", [False, True])
def test_fused_tie_rules_match_the_composed_form(ties: tuple[str, ...], mode: str, summing: bool) -> None:
    _assert_same(_layer(summing, ("shift1", "prefix"), True, True, ties=ties), mode)


@pytest.mark.parametrize("mode", MODES)
def test_fused_one_key_heads_without_averaging_match_the_composed_form(mode: str) -> None:
    _assert_same(_layer(False, ("shift1", "shift2"), True, True, averaging=False), mode)


def test_a_summing_head_under_a_soft_pattern_choice_multiplies_by_the_mixed_patterns_width() -> None:
    """Pattern choice half learned (scores all 0: uniform over the prefix and BOS), half `shift1`;
    aggregate choice "sum": the output is the mixed pattern's mean times 1 / its row max (what
    the composed form computes), not the mixture of each pattern's own sum, which lost
    Evens_Counter (docs/journal/2026-12-07-fused-attention-head.md)."""
    T1 = 5
    layer = AttentionLayer(1, 1, 3, torch.Generator().manual_seed(0), summing=True, patterns=("shift1",))
    x = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])  # BOS, then the sequence
    pos = torch.arange(-1.0, T1 - 1)
    one = torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0])
    stream = torch.stack([x, pos, one], dim=-1).view(1, 1, T1, 3)
    with torch.no_grad():
        layer.w_score.zero_()  # every visible key (BOS included) ties
        layer.selector.theta.fill_(-100.0)
        layer.selector.theta[0, 0, 2, 0] = 100.0  # v = x (q, k: any, their scores are 0)
        layer.aggregate.theta.copy_(torch.tensor([[[-100.0, 100.0]]]))  # sum
    layer.pattern_choice.forced = torch.tensor([[[0.5, 0.5]]])  # learned, shift1
    mixed = 0.5 * torch.ones(T1, T1).tril() / torch.arange(1.0, T1 + 1).view(T1, 1) + 0.5 * fixed_pattern("shift1", T1)
    want = (mixed @ x) / mixed.amax(-1)
    want[0] = 0.0  # every variable reads 0 at BOS
    for mode in ("soft", "straight-through"):
        st = torch.ones(1) if mode == "straight-through" else None
        gen = torch.Generator().manual_seed(0)
        out = layer(stream, stream, SelectMode(tau=1.0, generator=gen, attention_st=st, attention_hard_tau=1.0), 1.0)
        torch.testing.assert_close(out[0, 0, :, 0], want)
    each_sum = 0.5 * torch.cumsum(x, 0) + 0.5 * (fixed_pattern("shift1", T1) @ x)
    assert not torch.allclose(want[1:], each_sum[1:])
