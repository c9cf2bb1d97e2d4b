"""The data's trend along the sequence as a fixed term of every output (ModelConfig.readout_trend):
known answers for the fit, the model's output, the spec's round trip and the search variant."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from extract_helpers import hand_made_result

import discrete_transformer as dtx
from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs
from discrete_transformer.extraction.codegen import affine_text
from discrete_transformer.extraction.graph import OutputNode, Variable, read_graph
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


@pytest.mark.parametrize(
    ("gain", "offset", "slope", "want"),
    [
        (1.0, 0.0, 0.0, "v"),
        (3.0, 0.0, 0.0, "3.0 * v"),
        (1.0, 0.5, 0.5, "v + 0.5 + 0.5 * i"),
        (-2.0, -1.5, 1.0, "-2.0 * v - 1.5 + i"),
        (1.0, 0.0, -0.25, "v - 0.25 * i"),
    ],
)
def test_an_output_is_written_as_gain_value_offset_and_slope(gain, offset, slope, want) -> None:
    var = Variable("L0.H0", 3, "attn", "v")
    o = OutputNode(0, "y", var, gain, "" if (gain, offset, slope) == (1.0, 0.0, 0.0) else "y", offset, slope)
    assert affine_text(o, "v", "i") == want
    assert o.plain == (want == "v")


def test_the_trend_readout_is_refitted_and_the_program_verifies() -> None:
    """A hand-set Sum_Last2 model whose readout reads shift(x, 1), with the data's trend added
    (ModelConfig.readout_trend), on targets prev(x) + 3 + 2·pos: the model's trend is the data's
    least-squares one, not the rule's; the output's gain, offset and slope are refitted to the
    targets (1, 3, 2), written in one output line, and the program verifies."""
    hand = hand_made_result()
    base = hand.dataset
    T = base.x_train.shape[1]

    def rule(x: np.ndarray) -> np.ndarray:
        prev = np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
        return prev + 3 + 2 * np.arange(T).reshape(1, T, 1)

    ds = dataclasses.replace(
        base, y_train=rule(base.x_train), y_test=rule(base.x_test), name="trend_prev", source="task:trend_prev"
    )
    cfg = dataclasses.replace(hand.model_config, readout_trend=True)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    model = DiscreteTransformer(cfg, spec, population=1, seed=0)
    model.load_state_dict(hand.model.state_dict())
    ix = model.variable_names.index("L0.H0")
    with torch.no_grad():
        model.ms.copy_(hand.model.ms)
        model.readout.theta.zero_()
        model.readout.theta[0, 0, ix] = 10.0
    run = dataclasses.replace(hand, dataset=ds, model=model.eval(), model_config=cfg, spec=spec, source=ds.source)
    a, b = read_graph(model).trend(0)
    assert (a, b) == pytest.approx(spec.trend[0]) and (a, b) != pytest.approx((3.0, 2.0), abs=0.1)
    p = dtx.extract(run, dataset=ds)
    assert p.verified, p.verification.lines()
    out = p.ir.outputs[0]
    assert (out.gain, out.offset, out.slope) == (1.0, 3.0, 2.0)
    assert p.ir.to_dict()["outputs"][0]["offset"] == 3.0
    body = p.source[p.source.index("def program") :]
    assert "+ 3.0 + 2.0 * " in body and "enumerate(prev1_x)" in body, body
    X = ds.x_test[:50]
    np.testing.assert_allclose(p.run_batch(X), rule(X))
    assert p.run(list(X[0, :, 0])) == pytest.approx(list(rule(X[:1])[0, :, 0]))


def test_a_readout_mlp_absorbs_the_outputs_trend_when_that_is_smaller() -> None:
    """Bitwise_Not (y = 1 - x) trained briefly by the trend search: the model's MLP computes
    about -x and the readout adds the data's offset. The program that first verifies reads
    `-x` with an offset of 1 (two lines); the simplification stage refits the readout MLP to the
    targets with the output's offset counted as operations, and one line `1 - x` remains."""
    from conftest import tiny_model, tiny_train

    from discrete_transformer.extraction.simplify_fits import program_ops

    r = dtx.train(
        "Bitwise_Not",
        seed=0,
        model=tiny_model(attention_patterns=()),
        training=tiny_train(steps=300, eval_every=10, attention_st_from=1.0, portfolio=("arithmetic_trend",)),
        progress=False,
    )
    p = dtx.extract(r)
    assert p.verified, p.verification.lines()
    body = p.source[p.source.index("def program") : p.source.index("return y")]
    assert "1 - a" in body and "+ 1.0" not in body, body
    assert p.ir.outputs[0].plain and program_ops(p.ir) == 3
