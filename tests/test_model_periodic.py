"""Unit tests of the MLPs' periodic units, with known answers: what they represent, when they are
off or silent, what they see, their soft-selector mixture, and their bank from the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discrete_transformer.config import ModelConfig
from discrete_transformer.model import DataSpec, DiscreteTransformer, SelectMode
from discrete_transformer.training.loop import HARD


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
