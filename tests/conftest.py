"""Shared test settings: one torch thread (small models run fastest that way, and two test
processes on a 2-core machine do not oversubscribe it) and a tiny training configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch

from discrete_transformer.config import ModelConfig, TrainConfig

torch.set_num_threads(1)


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


TINY_TRAIN = {
    "steps": 30,
    "population": 2,
    "restarts": 1,
    "batch_size": 32,
    "eval_every": 10,
    "val_size": 200,
    "harden_top": 2,  # phase-specific knobs are only passed when TrainConfig has them
    "polish_iters": 0,
    "polish_size": 256,
}
TINY_MODEL = {"n_layers": 1, "n_heads": 2, "n_mlps": 1, "mlp_hidden": 8, "mlp_bilinear": 2}


def tiny_train(**overrides: Any) -> TrainConfig:
    return TrainConfig(**_known(TrainConfig, {**TINY_TRAIN, **overrides}))


def tiny_model(**overrides: Any) -> ModelConfig:
    return ModelConfig(**_known(ModelConfig, {**TINY_MODEL, **overrides}))


@pytest.fixture
def tiny_training() -> Callable[..., TrainConfig]:
    """Factory for a TrainConfig small enough for unit tests (seconds, not minutes)."""
    return tiny_train


@pytest.fixture
def tiny_model_config() -> Callable[..., ModelConfig]:
    return tiny_model


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's baseline cache (bench/baseline_cache.py, under $XDG_CACHE_HOME) is its own
    temporary directory: tests neither read the user's cached baselines nor write to them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
