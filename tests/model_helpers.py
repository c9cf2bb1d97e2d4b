"""Shared by the model tests (test_model*.py): a small data spec, a model on it, and setting a
selector's choice by hand."""

from __future__ import annotations

import torch

from discrete_transformer.config import ModelConfig
from discrete_transformer.model import DataSpec, DiscreteTransformer, Selector

SPEC = DataSpec(input_names=("x",), output_names=("y",), input_rms=(50.0,), target_rms=50.0, T=6)


def small_model(population: int = 3, seed: int = 0, **kw) -> DiscreteTransformer:
    """A model on SPEC's data (one input, T = 6); `kw`: ModelConfig fields."""
    return DiscreteTransformer(ModelConfig(**kw), SPEC, population=population, seed=seed)


def set_choice(selector: Selector, role: tuple[int, ...], option: int) -> None:
    """Make `selector` choose `option` for `role` in every member (a large logit)."""
    with torch.no_grad():
        selector.theta[(slice(None), *role)] = 0.0
        selector.theta[(slice(None), *role, option)] = 10.0
