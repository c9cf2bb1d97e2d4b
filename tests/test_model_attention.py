"""Unit tests of the attention heads, with known answers: prefix means, hard patterns and their
straight-through forms, summing heads, the BOS score offset, fixed patterns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_helpers import set_choice, small_model

from discrete_transformer.config import ModelConfig
from discrete_transformer.model import DiscreteTransformer, SelectMode
from discrete_transformer.model.attention import AttentionLayer, fixed_pattern, hard_pattern
from discrete_transformer.model.functional import softmax
from discrete_transformer.training.loop import HARD


def _set_head(model: DiscreteTransformer, q: str, k: str, v: str):
    """Set L0.H0 of member 0 to read q, k, v with scores w_k·k."""
    names = model.variable_names
    attn = model.layers[0]["attn"]
    for role, name in enumerate((q, k, v)):
        set_choice(attn.selector, (0, role), names.index(name))
    with torch.no_grad():
        attn.w_score[0, 0] = torch.tensor([0.0, 1.0, 0.0])
    return attn


def _uniform_prefix_head(model: DiscreteTransformer):
    """L0.H0 of member 0: q = k = `one`, v = x: uniform over the prefix."""
    return _set_head(model, "one", "one", "x")


def test_prefix_mean_keyed_on_one_excludes_bos() -> None:
    model = small_model(population=1)
    _uniform_prefix_head(model)
    x = torch.tensor([[[2.0], [4.0], [9.0], [1.0], [0.0], [8.0]]])
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model.eval()(x, HARD, 0.02, cache)
    expect = np.cumsum(x[0, :, 0].numpy()) / np.arange(1, 7)
    np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), expect, rtol=1e-6)


def test_hard_pattern_ties_average_and_near_ties_merge() -> None:
    s = torch.tensor([[0.0, 3.0, 3.0, -10.0], [0.0, 5.0, 5.0 - math.log(2) + 1e-6, 4.0]])
    p = hard_pattern(s)
    assert p[0].tolist() == [0.0, 0.5, 0.5, 0.0]
    assert p[1].tolist() == [0.0, 0.5, 0.5, 0.0]


def test_straight_through_attention_forward_is_hard_backward_reaches_scores() -> None:
    """The search's late phase (SelectMode.attention_st) runs the hard pattern forward, rounded at
    the final temperature as evaluation rounds it, while the soft pattern's gradient still trains
    the score weights."""
    model = small_model(population=2, seed=3).train()
    model.freeze_selectors()  # the same reads in both modes: only the attention differs
    model.stats_frozen.fill_(True)
    x = torch.rand(4, 6, 1) * 99
    tau_a, tau_hard = 0.3, 0.02
    st = SelectMode(tau=1.0, attention_st=torch.ones(2), attention_hard_tau=tau_hard)
    c_st: dict[str, torch.Tensor] = {}
    c_ref: dict[str, torch.Tensor] = {}
    model(x, st, tau_a, c_st)
    with torch.no_grad():
        model(x, SelectMode(hard=True, hard_attention=True), tau_hard, c_ref)
    for name, a in c_ref.items():
        if name.endswith(".pattern"):
            assert torch.allclose(c_st[name].detach(), a, atol=1e-6), name
    # every head's output, so the readout's choice does not matter
    outs = torch.stack([c_st[n] for n in c_st if n.endswith(".out")])
    outs.sum().backward()
    grads = [layer["attn"].w_score.grad for layer in model.layers]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    # the hard pattern itself is a step function: no gradient reaches the scores
    model.zero_grad()
    c_hard: dict[str, torch.Tensor] = {}
    model(x, SelectMode(hard=True, hard_attention=True), tau_hard, c_hard)
    torch.stack([c_hard[n] for n in c_hard if n.endswith(".out")]).sum().backward()
    assert all(
        layer["attn"].w_score.grad is None or layer["attn"].w_score.grad.abs().sum() == 0 for layer in model.layers
    )


# ----------------------------------------------------------------------------- summing heads


def test_summing_head_computes_the_prefix_sum_and_the_mean_when_told() -> None:
    """attention_sum: the head's aggregate selector picks mean (0) or sum (1). Keyed on `one`
    the hard pattern is uniform over the prefix; the sum is mean × selector width, exactly."""
    model = small_model(population=1, attention_sum=True)
    attn = _uniform_prefix_head(model)
    x = torch.tensor([[[2.0], [4.0], [9.0], [1.0], [0.0], [8.0]]])
    for option, expect in ((1, np.cumsum(x[0, :, 0].numpy())), (0, np.cumsum(x[0, :, 0].numpy()) / np.arange(1, 7))):
        set_choice(attn.aggregate, (0,), option)
        cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            model.eval()(x, HARD, 0.02, cache)
        np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), expect, rtol=1e-6)
        assert int(model.choices()["L0.agg"][0, 0]) == option
        assert ("sum)" if option else "mean)") in model.describe(0).splitlines()[0]


def test_summing_heads_off_add_nothing_and_on_add_one_selector_per_layer() -> None:
    """Off: no aggregate selector (the model of runs stored before the option, which load as
    they were trained); on: one 2-way selector per layer, starting from "mean", trained and
    frozen like the others."""
    plain = small_model(population=2, attention_sum=False)
    assert "L0.agg" not in plain.selectors() and not any("aggregate" in n for n, _ in plain.named_parameters())
    summing = small_model(population=2, attention_sum=True)
    sels = summing.selectors()
    assert sels["L0.agg"].theta.shape == (2, ModelConfig().n_heads, 2)
    assert sum(s is sels["L1.agg"] for s in summing.selectors().values()) == 1
    assert any(p is sels["L0.agg"].theta for p in summing.selector_parameters())
    assert bool((sels["L0.agg"].argmax() == 0).all())  # the mean-favoured prior
    summing.freeze_selectors()
    assert bool(sels["L0.agg"].frozen.all())
    with pytest.raises(ValueError, match="attention_sum"):
        ModelConfig(attention_sum="yes")  # type: ignore[arg-type]


def test_soft_summing_head_gradients_reach_its_aggregate_choice() -> None:
    model = small_model(population=1, attention_sum=True)
    x = torch.randn(4, 6, 1)
    mode = SelectMode(tau=1.0, generator=torch.Generator().manual_seed(0))
    model.train()(x, mode, 1.0).pow(2).mean().backward()
    g = model.layers[0]["attn"].aggregate.theta.grad
    assert g is not None and bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0


# ----------------------------------------------------------------------------- BOS score offset


def _argmax_head(model: DiscreteTransformer):
    """L0.H0 of member 0: q = one, k = v = x (a prefix argmax of x)."""
    return _set_head(model, "one", "x", "x")


def test_bos_offset_lets_an_argmax_of_negative_values_exclude_bos() -> None:
    """BOS reads 0, so a prefix argmax of all-negative values attends to BOS and returns 0; a
    negative BOS offset removes it and the head returns the true running maximum."""
    x = torch.tensor([[[-40.0], [-7.0], [-90.0], [-3.0], [-60.0], [-5.0]]])
    running_max = np.maximum.accumulate(x[0, :, 0].numpy())
    plain = small_model(population=1, attention_bos_bias=False)
    _argmax_head(plain)
    offset = small_model(population=1, attention_bos_bias=True)
    attn = _argmax_head(offset)
    for model, expect in ((plain, np.zeros(6)), (offset, np.zeros(6))):
        cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            model.eval()(x, HARD, 0.02, cache)
        np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), expect, atol=1e-6)
    with torch.no_grad():
        attn.w_bos[0, 0] = -5.0  # in score units: far below every key at tau_attn 0.02
    cache = {}
    with torch.no_grad():
        offset.eval()(x, HARD, 0.02, cache)
    np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), running_max, rtol=1e-6)
    assert "w_bos=-5.00" in offset.describe(0).splitlines()[0]


def test_bos_offset_off_adds_no_parameter_and_on_starts_at_zero_with_gradients() -> None:
    plain = small_model(population=2, attention_bos_bias=False)
    assert plain.layers[0]["attn"].w_bos is None
    assert not any("w_bos" in n for n, _ in plain.named_parameters())
    model = small_model(population=2, attention_bos_bias=True)
    w_bos = model.layers[0]["attn"].w_bos
    assert w_bos.shape == (2, ModelConfig().n_heads) and bool((w_bos == 0).all())
    assert any(p is w_bos for p in model.weight_parameters())
    mode = SelectMode(tau=1.0, generator=torch.Generator().manual_seed(0))
    model.train()(torch.randn(4, 6, 1), mode, 1.0).pow(2).mean().backward()
    assert w_bos.grad is not None and float(w_bos.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="attention_bos_bias"):
        ModelConfig(attention_bos_bias=1)  # type: ignore[arg-type]


def test_one_pass_straight_through_pattern_matches_the_composed_form() -> None:
    """functional.straight_through_pattern: value = hard near-tie pattern (at the final
    temperature) where flagged, softmax elsewhere; gradient = the softmax's everywhere — the same
    as soft + m·(hard(scores·r) − soft).detach(), which it replaced for speed."""
    from discrete_transformer.model.attention import TIE_MARGIN
    from discrete_transformer.model.functional import straight_through_pattern

    torch.manual_seed(0)
    scores = (torch.randn(3, 4, 2, 7, 7) * 3).tril() + torch.full((7, 7), float("-inf")).triu(1)
    scores[0, 0, 0, 5, :3] = 50.0  # an exact tie, far above the rest of the row
    flags = torch.tensor([1.0, 0.0, 1.0])
    ratio = torch.tensor([2.0, 5.0, 0.5]).view(3, 1, 1, 1, 1)  # tau_attn / hard tau, per member
    s1 = scores.clone().requires_grad_(True)
    s2 = scores.clone().requires_grad_(True)
    new = straight_through_pattern(s1, flags.view(3, 1, 1, 1, 1) > 0, TIE_MARGIN / ratio)
    soft = softmax(s2)
    old = soft + (flags.view(3, 1, 1, 1, 1) * (hard_pattern(s2 * ratio) - soft)).detach()
    assert torch.allclose(new, old, atol=1e-6)
    assert torch.equal(new[0, 0, 0, 5, :3], torch.full((3,), 1 / 3))
    g = torch.randn_like(new)
    (new * g).sum().backward()
    (old * g).sum().backward()
    assert torch.allclose(s1.grad, s2.grad, atol=1e-6)


# ----------------------------------------------------------------------------- fixed patterns


def test_fixed_patterns_are_causal_rows_that_route_exactly() -> None:
    from discrete_transformer.model.attention import FIXED_PATTERNS, fixed_pattern

    for name in FIXED_PATTERNS:
        a = fixed_pattern(name, 7)
        assert torch.allclose(a.sum(-1), torch.ones(7)) and bool((a.triu(1) == 0).all()), name
        assert float(a[0, 0]) == 1.0  # the BOS row reads BOS
    v = torch.tensor([0.0, 5, 7, 1, 3, 2, 8])  # BOS slot (0), then the sequence
    assert (fixed_pattern("shift2", 7) @ v).tolist() == [0, 0, 0, 5, 7, 1, 3]  # 0 before the start
    np.testing.assert_allclose(
        (fixed_pattern("prefix", 7) @ v)[1:].numpy(), np.cumsum(v[1:].numpy()) / np.arange(1, 7), rtol=1e-6
    )  # float32
    assert (fixed_pattern("shift5", 7) @ v).tolist() == [0, 0, 0, 0, 0, 0, 5]  # any shift c >= 1
    for bad in ("shift", "shift0", "shifts"):  # "shifts" is a family, expanded before use
        with pytest.raises(ValueError, match="unknown fixed attention pattern"):
            fixed_pattern(bad, 3)


def test_shifts_expand_to_every_shift_the_length_allows() -> None:
    from discrete_transformer.model.attention import expand_patterns

    assert expand_patterns(("shifts", "prefix"), 5) == (("prefix",), ("shift1", "shift2", "shift3", "shift4"))
    assert expand_patterns(("shift2", "shifts"), 3) == (("shift2",), ("shift1",))  # no duplicates
    model = small_model(population=1, attention_patterns=("shifts", "prefix"))
    named, group = expand_patterns(("shifts", "prefix"), model.data.T)
    assert model.layers[0]["attn"].patterns == group + named
    with pytest.raises(ValueError, match="attention_patterns"):
        ModelConfig(attention_patterns=("shift0",))


def test_a_head_that_chooses_a_fixed_pattern_routes_by_it() -> None:
    """With attention_patterns, each head's pattern selector picks its learned scores (0) or a
    fixed pattern; the hard model then routes exactly by the pattern, whatever q and k are."""
    model = small_model(population=1, attention_patterns=("shift1", "prefix"), attention_sum=True)
    attn = model.layers[0]["attn"]
    set_choice(attn.selector, (0, 2), model.variable_names.index("x"))
    x = torch.tensor([[[2.0], [4.0], [9.0], [1.0], [0.0], [8.0]]])
    xs = x[0, :, 0].numpy()
    for option, agg, expect in (
        (1, 0, np.r_[0.0, xs[:-1]]),
        (2, 0, np.cumsum(xs) / np.arange(1, 7)),
        (2, 1, np.cumsum(xs)),
    ):
        set_choice(attn.pattern_choice, (0,), option)
        set_choice(attn.aggregate, (0,), agg)
        cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            model.eval()(x, HARD, 0.02, cache)
        np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), expect, rtol=1e-6)
    assert model.describe(0).splitlines()[0] == "L0.H0 = attend(prefix, v=x, sum)"


def test_fixed_patterns_off_add_nothing_and_on_get_gradients() -> None:
    """Off (attention_patterns=(), how configs stored before the option load): no selector, no
    state; on (the default): one selector per layer over 1 + 4 options, starting uniform; with
    `shifts`, the other shifts (4..T-1) are one more option whose offset is a second selector."""
    plain = small_model(population=2, attention_patterns=())
    assert "L0.pat" not in plain.selectors() and not any("pattern_choice" in n for n in plain.state_dict())
    from discrete_transformer.config import from_dict

    assert from_dict(ModelConfig, {"n_layers": 2}).attention_patterns == ()
    model = small_model(population=2)
    assert model.config.attention_patterns == ("shift1", "shift2", "shift3", "prefix")
    sel = model.selectors()["L1.pat"]
    assert sel.theta.shape == (2, ModelConfig().n_heads, 5) and bool((sel.argmax() == 0).all())
    assert "L1.off" not in model.selectors()
    model = small_model(population=2, attention_patterns=("shift1", "shift2", "shift3", "shifts", "prefix"))
    assert model.selectors()["L1.pat"].theta.shape == (2, ModelConfig().n_heads, 6)
    assert model.layers[0]["attn"].shifts == ("shift4", "shift5")  # T = 6
    mode = SelectMode(tau=1.0, per_example=True, batch=4, generator=torch.Generator().manual_seed(0))
    model.train()(torch.randn(4, 6, 1), mode, 1.0).pow(2).mean().backward()
    for g in (model.layers[0]["attn"].pattern_choice.theta.grad, model.layers[0]["attn"].shift_choice.theta.grad):
        assert g is not None and bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0
    with pytest.raises(ValueError, match="attention_patterns"):
        ModelConfig(attention_patterns=("shift9", "shift9"))  # not distinct


def test_without_averaging_only_one_key_patterns_are_offered_and_the_choice_is_hard_forward() -> None:
    model = small_model(population=2, attention_averaging=False)
    assert model.layers[0]["attn"].patterns == ("shift1", "shift2", "shift3")
    mode = SelectMode(tau=1.0, per_example=True, batch=3, generator=torch.Generator().manual_seed(0))
    cache: dict[str, torch.Tensor] = {}
    model.train()(torch.randn(3, 6, 1), mode, 0.5, cache)
    for k, p in cache.items():
        if k.endswith(".pattern"):
            assert torch.allclose(p.amax(-1), torch.ones(())), k


@pytest.mark.parametrize("patterns", [tuple(f"shift{c}" for c in range(1, 12)), ("shift1", "shift5", "shift9")])
def test_shift_group_mixture_equals_the_weighted_sum_of_its_shift_patterns(patterns: tuple[str, ...]) -> None:
    """The shift group's pattern (a gather, never the S dense patterns) is exactly the mixture of
    the fixed shift patterns by the offset choice's weights, BOS column included."""
    attn = AttentionLayer(2, 2, 5, torch.Generator().manual_seed(0), patterns=("prefix",), shift_group=patterns)
    for T1 in (4, 9, 13):
        w = torch.rand(2, 3, 2, len(attn.shifts), dtype=torch.float64)
        dense = torch.stack([fixed_pattern(n, T1, torch.float64) for n in attn.shifts])
        expect = torch.einsum("pbhs,sij->pbhij", w, dense)
        torch.testing.assert_close(attn.shift_mixture(w, T1), expect, rtol=0, atol=1e-12)


def test_a_long_shift_is_one_choice_of_the_shift_group_and_reads_back_by_name() -> None:
    """With every shift the length allows (T = 6), a head that picks the shift group and its fifth
    offset routes x[i - 5] and is described as shift5."""
    model = small_model(population=1, attention_patterns=("shifts", "prefix"))
    attn = model.layers[0]["attn"]
    assert attn.groups == ("shift", "prefix") and attn.shifts == tuple(f"shift{c}" for c in range(1, 6))
    set_choice(attn.selector, (0, 2), model.variable_names.index("x"))
    set_choice(attn.pattern_choice, (0,), 1)
    set_choice(attn.shift_choice, (0,), 4)
    T = model.data.T
    x = torch.arange(1.0, T + 1).view(1, T, 1)
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model.eval()(x, HARD, 0.02, cache)
    xs = x[0, :, 0].numpy()
    np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), np.r_[np.zeros(5), xs[:-5]])
    assert model.describe(0).splitlines()[0] == "L0.H0 = attend(shift5, v=x)"


# ----------------------------------------------------------------------------- tie rules


def test_hard_pattern_tie_rules_pick_all_latest_or_earliest_of_the_tie_set() -> None:
    s = torch.tensor([[1.0, 5.0, 2.0, 5.0, 5.0 - 0.1, float("-inf")]])
    assert (hard_pattern(s) * 3).tolist() == [[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]]
    assert hard_pattern(s, "latest").tolist() == [[0.0, 0.0, 0.0, 0.0, 1.0, 0.0]]
    assert hard_pattern(s, "earliest").tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="tie rule"):
        hard_pattern(s, "middle")


def test_config_validates_tie_rules() -> None:
    assert ModelConfig(attention_ties="latest").attention_ties == ("latest",)
    assert ModelConfig(attention_ties=["average", "earliest"]).attention_ties == ("average", "earliest")
    for bad in ((), ("average", "average"), ("first",)):
        with pytest.raises(ValueError, match="attention_ties"):
            ModelConfig(attention_ties=bad)


@pytest.mark.parametrize("rule", ["average", "latest", "earliest"])
def test_head_with_a_tie_choice_routes_by_the_chosen_rule(rule: str) -> None:
    """A head keyed on x (argmax of x) with value pos: on tied maxima its output is the mean,
    the last or the first of the tied positions, as its tie selector chooses; the selector is a
    model selector (`L0.tie`), so hardening and extraction see it like every other choice."""
    model = small_model(population=1, attention_ties=("average", "latest", "earliest"))
    attn = _set_head(model, "one", "x", "pos")
    assert "L0.tie" in model.selectors() and "L0.tie" in model.choices()
    set_choice(attn.tie_choice, (0,), ("average", "latest", "earliest").index(rule))
    x = torch.tensor([[[1.0], [3.0], [0.0], [3.0], [2.0], [3.0]]])
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model.eval()(x, HARD, 0.02, cache)
    # pos reads 0..5 at positions 1..6 (BOS -1); ties of the maximum 3 at pos 1, 3, 5
    expect = {"average": [0, 1, 1, 2, 2, 3], "latest": [0, 1, 1, 3, 3, 5], "earliest": [0, 1, 1, 1, 1, 1]}[rule]
    np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), expect, atol=1e-5)
    if rule != "average":
        assert f", {rule}" in model.describe().splitlines()[0]


def test_one_key_tie_rules_train_by_straight_through() -> None:
    """In the search, a latest/earliest head's forward attends to one key while the gradient of
    the soft pattern still reaches the scores and the tie selector."""
    model = small_model(population=2, seed=1, attention_ties=("average", "latest")).train()
    x = torch.randn(4, 6, 1) * 50
    mode = SelectMode(hard=False, tau=1.0, generator=torch.Generator().manual_seed(0))
    y = model(x, mode, 0.5)
    y.pow(2).mean().backward()
    attn = model.layers[0]["attn"]
    assert attn.w_score.grad is not None and attn.w_score.grad.abs().sum() > 0
    assert attn.tie_choice.theta.grad is not None and attn.tie_choice.theta.grad.abs().sum() > 0
    assert small_model(attention_ties=("average",)).layers[0]["attn"].tie_choice is None
