"""Annealing and learning-rate schedules: pure functions of the step.

The run has two phases. *Search* (steps [0, S)): selectors sample with Gumbel-softmax at a
temperature annealed exponentially from `tau_start` to `tau_end`, attention temperature likewise.
*Hardening* (steps [S, steps)): every selector is frozen at its argmax and only continuous
weights train, with a cosine learning-rate decay so the MLPs settle to full precision.
"""

from __future__ import annotations

import math

import torch
from typing import Literal

from ..config import TrainConfig


def exponential(step: int, total: int, start: float, end: float) -> float:
    """start → end geometrically over `total` steps, then constant."""
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return start * (end / start) ** frac


def member_temperatures(cfg: TrainConfig, step: int, birth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tau, tau_attn), each (P,): every member anneals over its own life, from its birth step
    (0, or the step it was reborn) to the end of the search, on the same exponential curve."""
    life = (cfg.search_steps - birth).clamp_min(1.0)
    frac = ((step - birth) / life).clamp(0.0, 1.0)
    tau = cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** frac
    tau_a = cfg.tau_attn_start * (cfg.tau_attn_end / cfg.tau_attn_start) ** frac
    return tau, tau_a


def phase(cfg: TrainConfig, step: int) -> Literal["search", "harden"]:
    return "search" if step < cfg.search_steps else "harden"


def tau(cfg: TrainConfig, step: int) -> float:
    """Selector Gumbel-softmax temperature."""
    return exponential(step, cfg.search_steps, cfg.tau_start, cfg.tau_end)


def tau_attn(cfg: TrainConfig, step: int) -> float:
    """Attention softmax temperature; reaches its floor when the search ends."""
    return exponential(step, cfg.search_steps, cfg.tau_attn_start, cfg.tau_attn_end)


def cosine(k: int, n: int, floor: float = 0.01) -> float:
    """Learning-rate multiplier for step k of an n-step hardening phase: 1 → floor."""
    frac = min(max(k / max(n, 1), 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))
