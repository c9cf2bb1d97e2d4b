"""The data's lag screen (training/lag_screen.py) and the shift options' start from it
(ModelConfig.shift_prior): known answers on planted data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs
from discrete_transformer.model import DataSpec, DiscreteTransformer
from discrete_transformer.training.checkpoint import spec_from_dict, spec_to_dict
from discrete_transformer.training.evaluation import data_spec
from discrete_transformer.training.lag_screen import conditional_entropy, lag_scores, quantise


def _lagged(x: np.ndarray, c: int) -> np.ndarray:
    return np.concatenate([np.zeros((x.shape[0], c)), x[:, :-c]], axis=1)


def test_quantise_keeps_few_values_and_bins_many() -> None:
    a = np.array([3.0, -1.0, 3.0, 7.0])
    assert quantise(a).tolist() == [1, 0, 1, 2]
    many = np.arange(1000.0)
    codes = quantise(many, levels=16)
    assert codes.min() == 0 and codes.max() == 15
    assert np.all(np.diff(codes) >= 0)  # order kept


def test_conditional_entropy_known_answers() -> None:
    key = np.array([0, 0, 1, 1])
    assert conditional_entropy(key, np.array([0, 0, 1, 1]), 2, 2) == 0.0  # y determined by the key
    assert conditional_entropy(key, np.array([0, 1, 0, 1]), 2, 2) == pytest.approx(1.0)  # a fair coin each


@pytest.mark.parametrize(("shift", "rule"), [(7, "equal"), (11, "less"), (3, "absdiff")])
def test_the_screen_singles_out_the_lag_of_a_two_input_rule(shift: int, rule: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(2000, 20)).astype(float)
    lag = _lagged(x, shift)
    y = {"equal": x == lag, "less": x < lag, "absdiff": np.abs(x - lag)}[rule].astype(float)
    scores = lag_scores(x[..., None], y[..., None])
    assert len(scores) == 19
    assert int(np.argmax(scores)) + 1 == shift and scores[shift - 1] == pytest.approx(1.0)
    assert sorted(scores)[-2] < 0.3


def test_a_target_no_single_lag_explains_scores_low_everywhere() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(2000, 16)).astype(float)
    scores = lag_scores(x[..., None], np.cumsum(x, axis=1)[..., None])  # a prefix sum
    assert max(scores) < 0.2


def test_the_spec_carries_the_scores_and_older_specs_load_without_them() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, size=(300, 8, 1)).astype(float)
    y = (x == np.concatenate([np.zeros((300, 2, 1)), x[:, :-2]], axis=1)).astype(float)
    spec = data_spec(x, y, ("x",), ("y",))
    assert len(spec.lag_scores) == 7 and int(np.argmax(spec.lag_scores)) == 1
    assert spec_from_dict(spec_to_dict(spec)) == spec
    old = spec_to_dict(spec)
    del old["lag_scores"]
    assert spec_from_dict(old).lag_scores == ()


def test_the_shift_options_start_from_the_prior() -> None:
    """With shift_prior, the screened lag's offset and the shift group lead at initialisation;
    without it (the default) every option starts at 0."""
    T = 12
    scores = tuple(1.0 if c == 7 else 0.1 for c in range(1, T))
    spec = DataSpec(("x",), ("y",), (1.0,), 1.0, T, lag_scores=scores)
    model_cfg, _, name = restart_configs(ModelConfig(), TrainConfig(portfolio=("lags",)), 0)
    assert name == "lags" and model_cfg.shift_prior == 3.0
    attn = DiscreteTransformer(model_cfg, spec, population=2, seed=0).layers[0]["attn"]
    offsets = attn.shift_choice.theta  # (P, H, S) over shift4 .. shift11
    assert [attn.shifts[i] for i in offsets.argmax(-1).unique().tolist()] == ["shift7"]
    assert torch.allclose(offsets[..., attn.shifts.index("shift7")], torch.tensor(3.0))
    pattern = attn.pattern_choice.theta  # (P, H, 1 + group + named): learned, group, shift1..3, prefix
    assert pattern[0, 0].tolist() == pytest.approx([0.0, 3.0, 0.3, 0.3, 0.3, 0.0])
    plain = DiscreteTransformer(ModelConfig(attention_patterns=("shifts",)), spec, population=2, seed=0)
    assert not bool(plain.layers[0]["attn"].shift_choice.theta.any())
    with pytest.raises(ValueError, match="shift_prior"):
        ModelConfig(shift_prior=-1.0)
