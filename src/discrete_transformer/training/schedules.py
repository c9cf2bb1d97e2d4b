"""Annealing and learning-rate schedules: pure functions of the step.

The run has two phases. *Search* (steps [0, S)): selectors sample with Gumbel-softmax at a
temperature annealed exponentially from `tau_start` to `tau_end`, attention temperature likewise.
*Hardening* (steps [S, steps)): every selector is frozen at its argmax and only continuous
weights train, with a cosine learning-rate decay so the MLPs settle to full precision.
"""

from __future__ import annotations

import math

import torch

from ..config import TrainConfig


def anneal(frac, start: float, end: float):
    """The exponential curve start → end at progress `frac` in [0, 1] (float or tensor)."""
    return start * (end / start) ** frac


def member_temperatures(cfg: TrainConfig, step: int, population: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tau, tau_attn) at search step `step`, each a float32 (P,) tensor (one temperature per
    member, as the search's SelectMode takes them), on the curves of `tau`/`tau_attn`."""
    frac = (torch.full((population,), float(step)) / max(cfg.search_steps, 1)).clamp(0.0, 1.0)
    return anneal(frac, cfg.tau_start, cfg.tau_end), anneal(frac, cfg.tau_attn_start, cfg.tau_attn_end)


def _progress(cfg: TrainConfig, step: int) -> float:
    return min(max(step / max(cfg.search_steps, 1), 0.0), 1.0)


def tau(cfg: TrainConfig, step: int) -> float:
    """Selector Gumbel-softmax temperature of a member born at step 0."""
    return anneal(_progress(cfg, step), cfg.tau_start, cfg.tau_end)


def tau_attn(cfg: TrainConfig, step: int) -> float:
    """Attention softmax temperature; reaches its floor when the search ends."""
    return anneal(_progress(cfg, step), cfg.tau_attn_start, cfg.tau_attn_end)


def cosine(k: int, n: int, floor: float = 0.01) -> float:
    """Learning-rate multiplier for step k of an n-step hardening phase: 1 → floor."""
    frac = min(max(k / max(n, 1), 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))
