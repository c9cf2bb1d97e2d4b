"""Unit tests of the model primitives, with known answers: causality, selectors and hardening,
seeds, the population, the functional helpers and schedules, the readout gain, retired options.
Attention heads: test_model_attention.py; periodic MLP units: test_model_periodic.py."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from model_helpers import SPEC, set_choice, small_model

from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.model import SelectMode, Selector
from discrete_transformer.model.functional import row_dot, softmax
from discrete_transformer.training import schedules
from discrete_transformer.training.loop import HARD, Split, data_spec, member_state, subset, train_restart


@pytest.mark.parametrize("mode", [SelectMode(hard=True, hard_attention=True), SelectMode(hard=True)])
def test_causal_mask_no_future_leak(mode: SelectMode) -> None:
    """Changing x[j] must not change any variable at positions i < j, in any module."""
    torch.manual_seed(0)
    model = small_model(population=4).eval()
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
    model = small_model(population=2).eval()
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model(torch.rand(4, 6, 1) * 99, SelectMode(hard=True), 0.7, cache)
    for name, a in cache.items():
        if name.endswith(".pattern"):
            assert torch.all(a.triu(1) == 0), name
            assert torch.allclose(a.sum(-1), torch.ones(a.shape[:-1]))


def test_bos_semantics_shift_reads_zero_at_start() -> None:
    """A head with q = k = pos and the score of shift(2) reads x[i-2], and 0 for i < 2."""
    model = small_model(population=1)
    names = model.variable_names
    attn = model.layers[0]["attn"]
    pos = names.index("pos")
    set_choice(attn.selector, (0, 0), pos)
    set_choice(attn.selector, (0, 1), pos)
    set_choice(attn.selector, (0, 2), names.index("x"))
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
    model = small_model(population=2, n_heads=2)
    cfg = TrainConfig()
    mode = SelectMode(tau=torch.full((2,), 1.0), per_example=True, generator=torch.Generator().manual_seed(0), batch=4)
    cache: dict[str, torch.Tensor] = {}
    model(torch.rand(4, 6, 1) * 99, mode, cfg.tau_attn_start, cache)
    for h in range(2):
        pattern = cache[f"L0.H{h}.pattern"]  # (P, B, T1, T1)
        assert pattern.stride(-1) == 1 and pattern.stride(-2) == pattern.shape[-1]


def test_every_variable_is_zero_at_bos_except_pos() -> None:
    model = small_model(population=3).eval()
    cache: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        model(torch.rand(5, 6, 1) * 99, HARD, 0.02, cache)
    bos = cache["resid"][:, :, 0]  # (P, B, V)
    pos = model.variable_names.index("pos")
    assert torch.all(bos[..., pos] == -1)
    others = [i for i in range(model.n_vars) if i != pos]
    assert torch.all(bos[..., others] == 0)


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
    a, b, c = small_model(seed=3), small_model(seed=3), small_model(seed=4)
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
    model = small_model(population=3)
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
    model = small_model(population=4, seed=2)
    one = subset(model, [2])
    st = member_state(model, [2])
    for name, t in one.state_dict().items():
        assert torch.equal(t, st[name])
    x = torch.rand(3, 6, 1) * 99
    with torch.no_grad():
        assert torch.allclose(model.eval()(x, HARD, 0.02)[2], one.eval()(x, HARD, 0.02)[0])


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


# ============================================================================ readout gain (option)


def test_readout_gain_off_adds_no_parameter_and_on_starts_at_the_target_scale() -> None:
    plain = small_model(population=2)
    assert plain.readout_gamma is None and not any("readout_gamma" in n for n, _ in plain.named_parameters())
    model = small_model(population=2, readout_gain=True)
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
    model = small_model(population=1, readout_gain=True).eval()
    ix = model.variable_names.index("x")
    set_choice(model.readout, (0,), ix)
    with torch.no_grad():
        model.readout_gamma[0, 0, ix] = math.log(3.0)  # g = target_rms / rms(x) · 3 = 3
    x = torch.randint(-100, 100, (5, 6, 1)).float()
    y = model(x, HARD, 0.02)[0]
    torch.testing.assert_close(y, 3.0 * x)


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
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    assert RETIRED["ModelConfig"] and not set(RETIRED["ModelConfig"]) & model_fields
    assert from_dict(ModelConfig, {**to_dict(ModelConfig()), "target_scale": "rms"}) == ModelConfig()
    with pytest.raises(ValueError, match="ModelConfig.target_scale=.*retired option"):
        from_dict(ModelConfig, {**to_dict(ModelConfig()), "target_scale": "steps"})
