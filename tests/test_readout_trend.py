"""The data's trend along the sequence as a fixed term of every output (ModelConfig.readout_trend):
known answers for the fit, the model's output, the spec's round trip and the search variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs
from discrete_transformer.model import DataSpec, DiscreteTransformer
from discrete_transformer.training.checkpoint import spec_from_dict, spec_to_dict
from discrete_transformer.training.evaluation import HARD, data_spec, sequence_trend


def test_the_trend_of_a_linear_target_is_exact_and_leaves_nothing() -> None:
    pos = np.arange(6, dtype=float)
    y = np.stack([3.0 + 2.0 * pos, -1.0 + 0.0 * pos], axis=-1)[None].repeat(4, axis=0)  # (4, 6, 2)
    trend, rest = sequence_trend(y)
    assert np.allclose(trend, ((3.0, 2.0), (-1.0, 0.0)))
    assert rest == pytest.approx(0.0, abs=1e-12)


def test_a_prefix_sum_keeps_its_content_after_the_trend() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(4000, 32, 1)).astype(float)
    y = np.cumsum(x, axis=1)
    spec = data_spec(x, y, ("x",), ("y",))
    ((a, b),) = spec.trend
    assert b == pytest.approx(0.5, abs=0.01) and a == pytest.approx(0.5, abs=0.05)
    assert spec.trend_residual_rms < 0.5 * spec.target_rms  # the trend held most of the scale
    assert spec_from_dict(spec_to_dict(spec)) == spec
    old = spec_to_dict(spec)
    del old["trend"], old["trend_residual_rms"]
    assert spec_from_dict(old).trend == () and spec_from_dict(old).trend_residual_rms == 0.0


def test_the_model_adds_the_trend_to_every_output() -> None:
    T = 7
    spec = DataSpec(("x",), ("y", "z"), (1.0,), 5.0, T, trend=((1.5, 0.25), (-2.0, 1.0)), trend_residual_rms=1.0)
    model = DiscreteTransformer(ModelConfig(readout_trend=True), spec, population=2, seed=0).eval()
    x = torch.randn(3, T, 1)
    with_trend = model(x, HARD, 0.02)
    model.trend = None
    without = model(x, HARD, 0.02)
    pos = torch.arange(T, dtype=torch.float32).view(1, 1, T, 1)
    expected = torch.tensor([1.5, -2.0]) + torch.tensor([0.25, 1.0]) * pos  # (1, 1, T, 2)
    assert torch.allclose(with_trend - without, expected.expand_as(without), atol=1e-5)


def test_a_model_without_the_trend_option_ignores_the_fit_and_the_option_needs_it() -> None:
    spec = DataSpec(("x",), ("y",), (1.0,), 5.0, 6, trend=((1.0, 1.0),), trend_residual_rms=1.0)
    assert DiscreteTransformer(ModelConfig(), spec).trend is None
    with pytest.raises(ValueError, match="trend"):
        DiscreteTransformer(ModelConfig(readout_trend=True), DataSpec(("x",), ("y",), (1.0,), 5.0, 6))


def test_the_arithmetic_trend_variant() -> None:
    m, _, name = restart_configs(ModelConfig(), TrainConfig(portfolio=("arithmetic_trend",)), 0)
    assert name == "arithmetic_trend" and m.readout_trend and m.attention_sum and m.readout_gain
