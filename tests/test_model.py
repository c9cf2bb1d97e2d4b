"""Unit tests of the model primitives, with known answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.model import DataSpec, DiscreteTransformer, SelectMode, Selector
from discrete_transformer.model.attention import hard_pattern
from discrete_transformer.model.functional import row_dot, softmax
from discrete_transformer.training import schedules
from discrete_transformer.training.loop import HARD, Split, data_spec, member_state, subset, train_restart

SPEC = DataSpec(input_names=("x",), output_names=("y",), input_rms=(50.0,), target_rms=50.0, T=6)


def _model(population: int = 3, seed: int = 0, **kw) -> DiscreteTransformer:
    return DiscreteTransformer(ModelConfig(**kw), SPEC, population=population, seed=seed)


def _set_choice(selector: Selector, role: tuple[int, ...], option: int) -> None:
    with torch.no_grad():
        selector.theta[(slice(None), *role)] = 0.0
        selector.theta[(slice(None), *role, option)] = 10.0


@pytest.mark.parametrize("mode", [SelectMode(hard=True, hard_attention=True), SelectMode(hard=True)])
def test_causal_mask_no_future_leak(mode: SelectMode) -> None:
    """Changing x[j] must not change any variable at positions i < j, in any module."""
    torch.manual_seed(0)
    model = _model(population=4).eval()
    x = torch.randint(0, 100, (8, 6, 1)).float()
    for j in range(6):
        x2 = x.clone()
        x2[:, j] += torch.randint(1, 50, (8, 1)).float()
        c1: dict[str, torch.Tensor] = {}
        c2: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            y1 = model(x, mode, 0.5, c1)
            y2 = model(x2, mode, 0.5, c2)
        # stream position j + 1 holds sequence index j (position 0 is BOS)
        assert torch.equal(c1["resid"][:, :, : j + 1], c2["resid"][:, :, : j + 1])
        assert torch.equal(y1[:, :, :j], y2[:, :, :j])


def test_soft_attention_is_causal() -> None:
    model = _model(population=2).eval()
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model(torch.rand(4, 6, 1) * 99, SelectMode(hard=True), 0.7, cache)
    for name, a in cache.items():
        if name.endswith(".pattern"):
            assert torch.all(a.triu(1) == 0), name
            assert torch.allclose(a.sum(-1), torch.ones(a.shape[:-1]))


def test_bos_semantics_shift_reads_zero_at_start() -> None:
    """A head with q = k = pos and the score of shift(2) reads x[i-2], and 0 for i < 2."""
    model = _model(population=1)
    names = model.variable_names
    attn = model.layers[0]["attn"]
    pos = names.index("pos")
    _set_choice(attn.selector, (0, 0), pos)
    _set_choice(attn.selector, (0, 1), pos)
    _set_choice(attn.selector, (0, 2), names.index("x"))
    rms = math.sqrt(float(model.ms[0, pos]))
    c = 2.0 / rms  # shift by 2 in normalised units: s = -(k - (q - c))^2 = 2qk - 2ck - k^2 + const
    with torch.no_grad():
        attn.w_score[0, 0] = torch.tensor([2.0, -2.0 * c, -1.0]) * 10.0
    x = torch.tensor([[[5.0], [7.0], [11.0], [13.0], [17.0], [19.0]]])
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model.eval()(x, HARD, 0.02, cache)
    out = cache["L0.H0.out"][0, 0]  # (T1,) including BOS
    assert out.tolist() == [0.0, 0.0, 0.0, 5.0, 7.0, 11.0, 13.0]


def test_attention_patterns_keep_the_key_axis_innermost_in_the_search() -> None:
    """Scores and patterns are built from contiguous (P, B, H, T1) queries and keys: with the head
    axis innermost instead (transposed views), every (T1, T1) op of a training step ran strided,
    ~1.5-2x slower."""
    model = _model(population=2, n_heads=2)
    cfg = TrainConfig()
    mode = SelectMode(tau=torch.full((2,), 1.0), per_example=True, generator=torch.Generator().manual_seed(0), batch=4)
    cache: dict[str, torch.Tensor] = {}
    model(torch.rand(4, 6, 1) * 99, mode, cfg.tau_attn_start, cache)
    for h in range(2):
        pattern = cache[f"L0.H{h}.pattern"]  # (P, B, T1, T1)
        assert pattern.stride(-1) == 1 and pattern.stride(-2) == pattern.shape[-1]


def test_every_variable_is_zero_at_bos_except_pos() -> None:
    model = _model(population=3).eval()
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model(torch.rand(5, 6, 1) * 99, HARD, 0.02, cache)
    bos = cache["resid"][:, :, 0]  # (P, B, V)
    pos = model.variable_names.index("pos")
    assert torch.all(bos[..., pos] == -1)
    others = [i for i in range(model.n_vars) if i != pos]
    assert torch.all(bos[..., others] == 0)


def _set_head(model: DiscreteTransformer, q: str, k: str, v: str):
    """Set L0.H0 of member 0 to read q, k, v with scores w_k·k."""
    names = model.variable_names
    attn = model.layers[0]["attn"]
    for role, name in enumerate((q, k, v)):
        _set_choice(attn.selector, (0, role), names.index(name))
    with torch.no_grad():
        attn.w_score[0, 0] = torch.tensor([0.0, 1.0, 0.0])
    return attn


def _uniform_prefix_head(model: DiscreteTransformer):
    """L0.H0 of member 0: q = k = `one`, v = x: uniform over the prefix."""
    return _set_head(model, "one", "one", "x")


def test_prefix_mean_keyed_on_one_excludes_bos() -> None:
    model = _model(population=1)
    _uniform_prefix_head(model)
    x = torch.tensor([[[2.0], [4.0], [9.0], [1.0], [0.0], [8.0]]])
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model.eval()(x, HARD, 0.02, cache)
    expect = np.cumsum(x[0, :, 0].numpy()) / np.arange(1, 7)
    np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), expect, rtol=1e-6)


def test_selector_becomes_one_hot_as_tau_goes_to_zero() -> None:
    sel = Selector(population=16, roles=(4,), n_options=5)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        sel.theta.copy_(torch.randn(sel.theta.shape, generator=gen))
    mean_max = []
    for tau in (2.0, 0.5, 0.1, 0.01, 0.001):
        w = sel.weights(SelectMode(tau=tau, generator=gen)).detach()
        assert torch.allclose(w.sum(-1), torch.ones(16, 4))
        mean_max.append(float(w.max(-1).values.mean()))
    assert all(a < b for a, b in zip(mean_max, mean_max[1:]))
    assert mean_max[0] < 0.6
    assert mean_max[-1] > 0.99


def test_selector_hard_mode_is_argmax() -> None:
    sel = Selector(population=2, roles=(2,), n_options=4)
    with torch.no_grad():
        sel.theta.copy_(torch.tensor([[[0, 3, 1, 0], [5, 0, 0, 1]], [[0, 0, 0, 2], [1, 2, 3, 4]]]).float())
    w = sel.weights(SelectMode(hard=True))
    assert torch.equal(w.argmax(-1), torch.tensor([[1, 0], [3, 3]]))
    assert torch.equal(w.sum(-1), torch.ones(2, 2))


def test_frozen_selector_returns_its_argmax_even_when_sampling() -> None:
    sel = Selector(population=3, roles=(2,), n_options=6)
    with torch.no_grad():
        sel.theta.normal_()
    sel.freeze()
    gen = torch.Generator().manual_seed(1)
    for per_example in (False, True):
        w = sel.weights(SelectMode(tau=5.0, generator=gen, per_example=per_example, batch=7))
        expect = sel.argmax()
        got = w.argmax(-1) if not per_example else w.argmax(-1)[:, 0]
        assert torch.equal(got, expect)
        assert torch.all((w == 0) | (w == 1))


def test_a_partly_frozen_selector_samples_only_its_free_choices() -> None:
    """Frozen rows read their argmax and get no gradient; free rows are Gumbel-softmax samples
    (the search's fast path with nothing frozen must give the same free rows)."""
    sel = Selector(population=2, roles=(3,), n_options=5)
    with torch.no_grad():
        sel.theta.normal_()
        sel.frozen[0, 1] = True
        sel.frozen[1, 2] = True
    for per_example in (False, True):
        mode = SelectMode(tau=0.7, generator=torch.Generator().manual_seed(3), per_example=per_example, batch=4)
        w = sel.weights(mode)
        sel.theta.grad = None
        (w * torch.arange(5.0)).sum().backward()
        assert torch.all(sel.theta.grad[sel.frozen] == 0)
        assert torch.all(sel.theta.grad[~sel.frozen].abs().sum(-1) > 0)
        frozen = sel.frozen.clone()
        sel.frozen.fill_(False)  # the same noise with nothing frozen
        free = sel.weights(dataclasses.replace(mode, generator=torch.Generator().manual_seed(3)))
        sel.frozen.copy_(frozen)
        mask = frozen if not per_example else frozen.unsqueeze(1).expand(2, 4, 3)
        hard = torch.nn.functional.one_hot(sel.argmax(), 5).float()
        hard = hard if not per_example else hard.unsqueeze(1).expand(2, 4, 3, 5)
        assert torch.equal(w[mask], hard[mask].detach())
        assert torch.equal(w[~mask], free[~mask])


def test_hardening_keeps_the_argmaxes() -> None:
    """After the search, the choices the hardened model makes are the argmaxes it had."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 100, (600, 6, 1)).astype(float)
    y = x.copy()
    y[:, 1:] += x[:, :-1]
    cfg = TrainConfig(
        steps=60,
        harden_fraction=0.5,
        population=4,
        harden_top=2,
        polish_iters=3,
        eval_every=1000,
        batch_size=8,
        val_size=100,
        stop_on_exact=False,
    )
    split = Split.from_arrays(x, y, "discrete", cfg.val_size, 0)
    spec = data_spec(x, y, ("x",), ("y",))
    seen: dict[str, torch.Tensor] = {}

    import discrete_transformer.training.loop as loop

    original = loop._harden

    def spy(model, *args, **kwargs):
        seen.update({k: v.clone() for k, v in model.choices().items()})
        out_model, step, solved = original(model, *args, **kwargs)
        seen["kept"] = torch.tensor(
            np.argsort(
                loop.member_score(
                    split.kind,
                    loop.evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end),
                ),
                kind="stable",
            )[: cfg.harden_top].tolist()
        )
        seen["after"] = out_model.choices()
        return out_model, step, solved

    loop._harden = spy
    try:
        train_restart(ModelConfig(), cfg, split, spec, seed=0)
    finally:
        loop._harden = original
    kept = seen["kept"]
    for name, after in seen["after"].items():
        assert torch.equal(after, seen[name][kept]), name


def test_same_seed_same_model_different_seed_different() -> None:
    a, b, c = _model(seed=3), _model(seed=3), _model(seed=4)
    for (n1, t1), (_, t2), (_, _t3) in zip(a.state_dict().items(), b.state_dict().items(), c.state_dict().items()):
        assert torch.equal(t1, t2), n1
    assert any(not torch.equal(t1, t3) for t1, t3 in zip(a.parameters(), c.parameters()))


def test_same_seed_same_training_run() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, (300, 6, 1)).astype(float)
    y = np.maximum.accumulate(x, axis=1)
    cfg = TrainConfig(
        steps=30,
        population=2,
        harden_top=1,
        polish_iters=2,
        eval_every=10,
        batch_size=8,
        val_size=50,
        stop_on_exact=False,
    )
    split = Split.from_arrays(x, y, "discrete", cfg.val_size, 0)
    spec = data_spec(x, y, ("x",), ("y",))
    r1 = train_restart(ModelConfig(), cfg, split, spec, seed=5)
    r2 = train_restart(ModelConfig(), cfg, split, spec, seed=5)
    for name in r1.state:
        assert torch.equal(r1.state[name], r2.state[name]), name


def test_population_members_are_independent() -> None:
    """Member 0 of a population trains exactly like... itself: its gradients do not depend on
    the other members (the summed loss separates)."""
    model = _model(population=3)
    x = torch.rand(4, 6, 1) * 99
    y = torch.rand(4, 6, 1) * 99
    mode = SelectMode(tau=1.0, generator=torch.Generator().manual_seed(0))
    pred = model(x, mode, 0.5)
    loss = ((pred - y) ** 2).mean(dim=(1, 2, 3))
    loss[0].backward()
    for p in model.parameters():
        if p.grad is not None and p.dim() > 0 and p.shape[0] == 3:
            assert torch.all(p.grad[1:] == 0)


def test_subset_round_trip() -> None:
    model = _model(population=4, seed=2)
    one = subset(model, [2])
    st = member_state(model, [2])
    for name, t in one.state_dict().items():
        assert torch.equal(t, st[name])
    x = torch.rand(3, 6, 1) * 99
    with torch.no_grad():
        assert torch.allclose(model.eval()(x, HARD, 0.02)[2], one.eval()(x, HARD, 0.02)[0])


def test_hard_pattern_ties_average_and_near_ties_merge() -> None:
    s = torch.tensor([[0.0, 3.0, 3.0, -10.0], [0.0, 5.0, 5.0 - math.log(2) + 1e-6, 4.0]])
    p = hard_pattern(s)
    assert p[0].tolist() == [0.0, 0.5, 0.5, 0.0]
    assert p[1].tolist() == [0.0, 0.5, 0.5, 0.0]


def test_fast_softmax_matches_torch() -> None:
    x = torch.randn(5, 7, 11, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    g = torch.randn(5, 7, 11, dtype=torch.float64)
    (softmax(x) * g).sum().backward()
    (torch.softmax(x2, -1) * g).sum().backward()
    assert torch.allclose(softmax(x), torch.softmax(x2, -1))
    assert torch.allclose(x.grad, x2.grad)
    # Scores far below the row's best (floored before exp, for speed) and masked ones (-inf).
    far = torch.tensor([[0.0, -200.0, float("-inf"), -3.0, -1e30]])
    p = softmax(far)
    assert p[0, 2] == 0.0 and float(p[0, 1]) < 1e-30 and float(p[0, 4]) < 1e-30
    assert torch.allclose(p, torch.softmax(far, -1), atol=1e-30)


def test_row_dot_matches_the_batched_matrix_vector_product_and_its_gradients() -> None:
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, 7, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(row_dot(x, w), torch.bmm(x, w.transpose(1, 2)).squeeze(-1))
    assert torch.autograd.gradcheck(row_dot, (x, w))


def test_schedules_are_pure_and_monotone() -> None:
    cfg = TrainConfig(steps=1000)
    taus = [schedules.tau(cfg, s) for s in range(0, 1000, 50)]
    assert taus[0] == pytest.approx(cfg.tau_start)
    assert all(a >= b for a, b in zip(taus, taus[1:]))
    assert schedules.tau(cfg, cfg.search_steps) == pytest.approx(cfg.tau_end)
    assert schedules.tau(cfg, 10) == schedules.tau(cfg, 10)
    assert schedules.cosine(0, 100) == pytest.approx(1.0)
    assert schedules.cosine(100, 100) == pytest.approx(0.01)


def test_straight_through_attention_forward_is_hard_backward_reaches_scores() -> None:
    """The search's late phase (SelectMode.attention_st) runs the hard pattern forward, rounded at
    the final temperature as evaluation rounds it, while the soft pattern's gradient still trains
    the score weights."""
    model = _model(population=2, seed=3).train()
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


def test_logging_frequency_does_not_change_training() -> None:
    """Evaluation and the attention-entropy probe draw no random numbers from the training
    generator, so how often a run logs never changes the model it ends with."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, (300, 6, 1)).astype(float)
    y = np.maximum.accumulate(x, axis=1)
    split = Split.from_arrays(x, y, "discrete", 50, 0)
    spec = data_spec(x, y, ("x",), ("y",))
    states = []
    for every in (3, 25):
        cfg = TrainConfig(
            steps=40,
            population=2,
            harden_top=1,
            polish_iters=0,
            eval_every=every,
            batch_size=8,
            val_size=50,
            stop_on_exact=False,
        )
        states.append(train_restart(ModelConfig(), cfg, split, spec, seed=5).state)
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_periodic_units_represent_every_integer_function_of_small_period(k: int) -> None:
    """With mlp_periods=6 the read-out of the periodic units can express any period-k (k <= 6)
    function of an integer input exactly: the frequency bank spans them (least squares is exact)."""
    from discrete_transformer.model.mlp import PERIODIC_GAIN, MLPLayer

    layer = MLPLayer(1, 1, 1, 2, 0, 1, 1.0, torch.Generator().manual_seed(0), periods=6).double()
    s = torch.arange(-20, 40, dtype=torch.float64)
    rng = np.random.default_rng(k)
    table = torch.from_numpy(rng.normal(size=k))
    target = table[(s % k).long()]
    with torch.no_grad():
        for p in (layer.c_b, layer.d, layer.e, layer.rho):
            p.zero_()
        phase = s.view(-1, 1) * layer.omega.double()
        feats = torch.cat([torch.ones(len(s), 1, dtype=torch.float64), phase.cos(), phase.sin()], dim=1)
        coef = torch.linalg.lstsq(feats, target.view(-1, 1), driver="gelsd").solution.view(-1)
        layer.e.fill_(coef[0])
        F = layer.omega.numel()
        layer.c_p[0, 0, 0, :, 0] = coef[1 : 1 + F] / PERIODIC_GAIN
        layer.c_p[0, 0, 0, :, 1] = coef[1 + F :] / PERIODIC_GAIN
        u = (s / 7.0).view(1, -1, 1, 1)  # the normalised input is ignored by these units
        out = layer.function(u, s.view(1, -1, 1, 1))[0, :, 0]
    assert torch.allclose(out, target, atol=1e-9)


def test_periodic_units_can_be_off_and_start_silent() -> None:
    """mlp_periods=0 adds no parameter (checkpoints from before the units load); with periodic
    units the read-out weights start at 0, so at initialisation the model computes what it
    would without them."""
    spec = DataSpec(("x",), ("y",), (1.0,), 1.0, 6)
    plain = DiscreteTransformer(ModelConfig(mlp_periods=0), spec, population=2, seed=3)
    assert not any("c_p" in n for n, _ in plain.named_parameters())
    per = DiscreteTransformer(ModelConfig(mlp_periods=6), spec, population=2, seed=3)
    assert sum("c_p" in n for n, _ in per.named_parameters()) == ModelConfig().n_layers
    x = torch.randint(0, 5, (4, 6, 1)).float()
    per.eval(), plain.eval()
    assert torch.allclose(per(x, HARD, 0.05), plain(x, HARD, 0.05))
    with pytest.raises(ValueError, match="mlp_periods"):
        ModelConfig(mlp_periods=1)


def test_periodic_units_do_not_see_the_position() -> None:
    """Variables in periodic_skip (the model passes pos and one) read 0 in the periodic units:
    with only periodic read-out weights non-zero, changing such a variable changes nothing,
    changing another one does."""
    from discrete_transformer.model.mlp import MLPLayer

    layer = MLPLayer(1, 1, 1, 2, 0, 1, 1.0, torch.Generator().manual_seed(0), periods=6, periodic_skip=(0,)).double()
    with torch.no_grad():
        for p in (layer.c_b, layer.d, layer.e):
            p.zero_()
        layer.c_p.normal_()
    stream = torch.rand(1, 3, 5, 2, dtype=torch.float64) * 5

    def out(col: int, s: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            layer.selector.theta.zero_()
            layer.selector.theta[0, 0, 0, col] = 10.0  # read variable `col`
            layer.selector.freeze()
            return layer(s / 3.0, HARD, stream=s)

    moved = stream.clone()
    moved[..., 0] += 1.37
    moved[..., 1] += 1.37
    assert torch.allclose(out(0, stream), out(0, moved))  # skipped: the periodic units see 0
    assert not torch.allclose(out(1, stream), out(1, moved))


def test_a_soft_selector_feeds_the_periodic_units_the_mixture_of_each_candidates_features() -> None:
    """periodic_mix="features": under soft weights the periodic units give sum_v w_v·c·(cos ω v,
    sin ω v), not c·(cos, sin)(ω·sum_v w_v·v); with one-hot weights both modes agree."""
    from discrete_transformer.model.mlp import PERIODIC_GAIN, MLPLayer

    def layer(n_mlps: int = 1, arity: int = 1, **kw: object) -> MLPLayer:  # 3 variables, periods <= 4
        return MLPLayer(1, n_mlps, arity, 3, 0, 1, 1.0, torch.Generator().manual_seed(0), periods=4, **kw).double()

    feat = layer(periodic_mix="features")
    with torch.no_grad():
        feat.c_p.copy_(torch.randn(feat.c_p.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64).view(1, 1, 1, 3)
    stream = torch.tensor([[[[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [2.0, 5.0, 7.0]]]], dtype=torch.float64)
    c = PERIODIC_GAIN * feat.c_p[0, 0, 0]  # (F, 2)

    def units(v: torch.Tensor) -> torch.Tensor:  # the periodic units' output on raw values v
        phase = v.unsqueeze(-1) * feat.omega.double()
        return (phase.cos() * c[:, 0] + phase.sin() * c[:, 1]).sum(-1)

    mixed = feat._periodic_mixture(stream, w, batched=False)[0]  # (B·T1,)
    assert torch.allclose(mixed, (units(stream[0, 0]) * w.view(3)).sum(-1))
    assert not torch.allclose(mixed, units(stream[0, 0] @ w.view(3)))  # the "value" mode's term
    batched = feat._periodic_mixture(stream, w.unsqueeze(1), batched=True)  # a weight per sequence
    assert torch.allclose(batched[0], mixed)
    # One-hot weights (two inputs per MLP, two MLPs, so that the layout matters): the mixture
    # term is the value path's periodic units on the chosen variables
    two = layer(2, 2)
    with torch.no_grad():
        two.c_p.copy_(torch.randn(two.c_p.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    pick = torch.tensor([[2, 1], [1, 0]])  # (M, a): the variable each input reads
    one_hot = torch.nn.functional.one_hot(pick, 3).double().unsqueeze(0)  # (P, M, a, V)
    raw = stream[0, 0][:, pick].reshape(1, 3, 2, 2)  # (P, N, M, a)
    u = raw / 3.0
    assert torch.allclose(
        two.function(u, None, two._periodic_mixture(stream, one_hot, batched=False)), two.function(u, raw)
    )
    # A variable the periodic units skip (the model's `pos`, `one`) is seen as 0 in both paths
    skip = layer(2, 2, periodic_skip=(1,))
    with torch.no_grad():
        skip.c_p.copy_(two.c_p)
    soft_w = torch.softmax(torch.randn(1, 2, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64), -1)
    zeroed = stream.clone()
    zeroed[..., 1] = 0.0
    assert torch.allclose(
        skip._periodic_mixture(stream, soft_w, batched=False), two._periodic_mixture(zeroed, soft_w, batched=False)
    )
    assert torch.allclose(
        skip.function(u, None, skip._periodic_mixture(stream, one_hot, batched=False)),
        two.function(u, raw * (pick != 1)),
    )
    # ... and a frozen selector takes the value path in a soft forward pass: the same output
    with torch.no_grad():
        two.selector.theta.copy_(one_hot * 10.0)
        two.selector.freeze()
    out = two(stream / 3.0, SelectMode(tau=1.0), stream=stream)[0, 0]  # (T1, M); the BOS row is 0
    assert torch.allclose(out[1:], two.function(u, raw)[0, 1:])
    # periodic_mix_tau: the mixture while tau >= it, the value path below
    late, plain = layer(2, 2, periodic_mix="features", periodic_mix_tau=0.5), layer(2, 2)
    with torch.no_grad():
        late.c_p.copy_(two.c_p)
        plain.c_p.copy_(two.c_p)
    x_n = stream / 3.0
    for tau, same_as_value in ((torch.tensor([1.0]), False), (torch.tensor([0.2]), True)):
        gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731 - the same Gumbel draw for both
        got = late(x_n, SelectMode(tau=tau, generator=gen()), stream=stream)
        ref = plain(x_n, SelectMode(tau=tau, generator=gen()), stream=stream)
        assert torch.allclose(got, ref) == same_as_value
    with pytest.raises(ValueError, match="mlp_periodic_mix_tau"):
        ModelConfig(mlp_periodic_mix_tau=-1.0)
    with pytest.raises(ValueError, match="periodic_mix"):
        layer(periodic_mix="values")
    with pytest.raises(ValueError, match="mlp_periodic_mix"):
        ModelConfig(mlp_periodic_mix="mixed")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- summing heads


def test_summing_head_computes_the_prefix_sum_and_the_mean_when_told() -> None:
    """attention_sum: the head's aggregate selector picks mean (0) or sum (1). Keyed on `one`
    the hard pattern is uniform over the prefix; the sum is mean × selector width, exactly."""
    model = _model(population=1, attention_sum=True)
    attn = _uniform_prefix_head(model)
    x = torch.tensor([[[2.0], [4.0], [9.0], [1.0], [0.0], [8.0]]])
    for option, expect in ((1, np.cumsum(x[0, :, 0].numpy())), (0, np.cumsum(x[0, :, 0].numpy()) / np.arange(1, 7))):
        _set_choice(attn.aggregate, (0,), option)
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
    plain = _model(population=2, attention_sum=False)
    assert "L0.agg" not in plain.selectors() and not any("aggregate" in n for n, _ in plain.named_parameters())
    summing = _model(population=2, attention_sum=True)
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
    model = _model(population=1, attention_sum=True)
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
    plain = _model(population=1, attention_bos_bias=False)
    _argmax_head(plain)
    offset = _model(population=1, attention_bos_bias=True)
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
    plain = _model(population=2)
    assert plain.layers[0]["attn"].w_bos is None
    assert not any("w_bos" in n for n, _ in plain.named_parameters())
    model = _model(population=2, attention_bos_bias=True)
    w_bos = model.layers[0]["attn"].w_bos
    assert w_bos.shape == (2, ModelConfig().n_heads) and bool((w_bos == 0).all())
    assert any(p is w_bos for p in model.weight_parameters())
    mode = SelectMode(tau=1.0, generator=torch.Generator().manual_seed(0))
    model.train()(torch.randn(4, 6, 1), mode, 1.0).pow(2).mean().backward()
    assert w_bos.grad is not None and float(w_bos.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="attention_bos_bias"):
        ModelConfig(attention_bos_bias=1)  # type: ignore[arg-type]


# ============================================================================ readout gain (option)


def test_readout_gain_off_adds_no_parameter_and_on_starts_at_the_target_scale() -> None:
    plain = _model(population=2)
    assert plain.readout_gamma is None and not any("readout_gamma" in n for n, _ in plain.named_parameters())
    model = _model(population=2, readout_gain=True)
    assert model.readout_gamma.shape == (2, 1, model.n_vars) and bool((model.readout_gamma == 0).all())
    g = model.readout_gains()  # (P, C_out, V): target_rms / rms(v) at init
    rms = model.ms.sqrt()
    torch.testing.assert_close(g[:, 0], SPEC.target_rms / rms)
    mode = SelectMode(tau=1.0, generator=torch.Generator().manual_seed(0))
    model.train()(torch.randn(4, 6, 1) * 50, mode, 1.0).pow(2).mean().backward()
    assert model.readout_gamma.grad is not None and float(model.readout_gamma.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="readout_gain"):
        ModelConfig(readout_gain="yes")  # type: ignore[arg-type]


def test_hard_readout_with_gain_is_the_gain_times_the_variable() -> None:
    """In the discretised model the output is g · v for the variable v the readout picks."""
    model = _model(population=1, readout_gain=True).eval()
    ix = model.variable_names.index("x")
    _set_choice(model.readout, (0,), ix)
    with torch.no_grad():
        model.readout_gamma[0, 0, ix] = math.log(3.0)  # g = target_rms / rms(x) · 3 = 3
    x = torch.randint(-100, 100, (5, 6, 1)).float()
    y = model(x, HARD, 0.02)[0]
    torch.testing.assert_close(y, 3.0 * x)


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

    assert expand_patterns(("shifts", "prefix"), 5) == ("shift1", "shift2", "shift3", "shift4", "prefix")
    assert expand_patterns(("shift2", "shifts"), 3) == ("shift2", "shift1")  # no duplicates
    model = _model(population=1, attention_patterns=("shifts", "prefix"))
    assert model.layers[0]["attn"].patterns == expand_patterns(("shifts", "prefix"), model.data.T)
    with pytest.raises(ValueError, match="attention_patterns"):
        ModelConfig(attention_patterns=("shift0",))


def test_a_head_that_chooses_a_fixed_pattern_routes_by_it() -> None:
    """With attention_patterns, each head's pattern selector picks its learned scores (0) or a
    fixed pattern; the hard model then routes exactly by the pattern, whatever q and k are."""
    model = _model(population=1, attention_patterns=("shift1", "prefix"), attention_sum=True)
    attn = model.layers[0]["attn"]
    _set_choice(attn.selector, (0, 2), model.variable_names.index("x"))
    x = torch.tensor([[[2.0], [4.0], [9.0], [1.0], [0.0], [8.0]]])
    xs = x[0, :, 0].numpy()
    for option, agg, expect in (
        (1, 0, np.r_[0.0, xs[:-1]]),
        (2, 0, np.cumsum(xs) / np.arange(1, 7)),
        (2, 1, np.cumsum(xs)),
    ):
        _set_choice(attn.pattern_choice, (0,), option)
        _set_choice(attn.aggregate, (0,), agg)
        cache: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            model.eval()(x, HARD, 0.02, cache)
        np.testing.assert_allclose(cache["L0.H0.out"][0, 0, 1:].numpy(), expect, rtol=1e-6)
    assert model.describe(0).splitlines()[0] == "L0.H0 = attend(prefix, v=x, sum)"


def test_fixed_patterns_off_add_nothing_and_on_get_gradients() -> None:
    """Off (attention_patterns=(), how configs stored before the option load): no selector, no
    state; on (the default): one selector per layer over 1 + 4 options, starting uniform."""
    plain = _model(population=2, attention_patterns=())
    assert "L0.pat" not in plain.selectors() and not any("pattern_choice" in n for n in plain.state_dict())
    from discrete_transformer.config import from_dict

    assert from_dict(ModelConfig, {"n_layers": 2}).attention_patterns == ()
    model = _model(population=2)
    assert model.config.attention_patterns == ("shift1", "shift2", "shift3", "prefix")
    sel = model.selectors()["L1.pat"]
    assert sel.theta.shape == (2, ModelConfig().n_heads, 5) and bool((sel.argmax() == 0).all())
    mode = SelectMode(tau=1.0, per_example=True, batch=4, generator=torch.Generator().manual_seed(0))
    model.train()(torch.randn(4, 6, 1), mode, 1.0).pow(2).mean().backward()
    g = model.layers[0]["attn"].pattern_choice.theta.grad
    assert g is not None and bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0
    with pytest.raises(ValueError, match="attention_patterns"):
        ModelConfig(attention_patterns=("shift9", "shift9"))  # not distinct


def test_without_averaging_only_one_key_patterns_are_offered_and_the_choice_is_hard_forward() -> None:
    model = _model(population=2, attention_averaging=False)
    assert model.layers[0]["attn"].patterns == ("shift1", "shift2", "shift3")
    mode = SelectMode(tau=1.0, per_example=True, batch=3, generator=torch.Generator().manual_seed(0))
    cache: dict[str, torch.Tensor] = {}
    model.train()(torch.randn(3, 6, 1), mode, 0.5, cache)
    for k, p in cache.items():
        if k.endswith(".pattern"):
            assert torch.allclose(p.amax(-1), torch.ones(())), k


def test_periodic_bank_from_the_data_follows_the_target_levels() -> None:
    """With mlp_periods_from_data the largest period is the integer target's number of distinct
    values, capped by mlp_periods; a real-valued target gets no periodic units."""
    from discrete_transformer.model.mlp import periodic_frequencies
    from discrete_transformer.model.transformer import periods_for
    from discrete_transformer.training.loop import data_spec

    x = np.zeros((4, 5, 1))
    cfg = ModelConfig(mlp_periods=16, mlp_periods_from_data=True)
    for y, K in (
        (np.arange(20).reshape(4, 5, 1) % 7, 7),
        (np.arange(20.0).reshape(4, 5, 1), 16),
        (np.full((4, 5, 1), 0.5), 0),
        (np.arange(20).reshape(4, 5, 1) % 2, 2),
    ):
        spec = data_spec(x, y, ("x",), ("y",))
        assert periods_for(cfg, spec) == K
        model = DiscreteTransformer(cfg, spec, population=1)
        assert model.layers[0]["mlp"].omegas == tuple(periodic_frequencies(K))
    assert periods_for(ModelConfig(mlp_periods=6), data_spec(x, np.full((4, 5, 1), 0.5), ("x",), ("y",))) == 6


def test_retired_options_load_only_at_the_value_the_code_behaves_as() -> None:
    """A stored config from before an option was retired loads when the option held the value
    today's code always behaves as (the field is dropped), and is refused otherwise."""
    from discrete_transformer.config import RETIRED, from_dict, to_dict

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert RETIRED["TrainConfig"] and not set(RETIRED["TrainConfig"]) & fields
    old = {
        **to_dict(TrainConfig()),
        "straight_through": False,
        "readout_loss": "mixture",
        "rebirth_every": 0,
        "rebirth_fraction": 0.3,  # only qualified rebirth_every: any value
        "rebirth_until": 0.5,
        "harden_attention_grad": False,
        "attention_st_spread": 0.0,
        "attention_st_share": 1.0,
    }
    assert from_dict(TrainConfig, old) == TrainConfig()
    for key, value in (("rebirth_every", 300), ("readout_loss", "scaled"), ("attention_st_share", 0.5)):
        with pytest.raises(ValueError, match=f"TrainConfig.{key}=.*retired option"):
            from_dict(TrainConfig, {**old, key: value})
    with pytest.raises(TypeError):
        TrainConfig(straight_through=True)  # type: ignore[call-arg]
