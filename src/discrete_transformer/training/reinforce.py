"""REINFORCE: a score-function estimator for the selectors, the alternative to Gumbel-softmax.

With ``TrainConfig.estimator = "reinforce"`` every search step

1. samples a one-hot choice for every selector from ``softmax(theta / tau)`` (masked options
   excluded) — one sample per sequence when ``sample_per_example`` (B sampled programs per member
   and step, the same cost as one forward pass), else one per member;
2. runs the model with those *hard* choices, so the continuous weights (MLPs, attention scores)
   train by ordinary backprop through the chosen variables;
3. moves the selector logits along the score-function gradient
   ``(loss − b) · ∇ log p(choice)``, where ``b`` is a moving average of each member's loss
   (``reinforce_baseline_decay``), minus an optional entropy bonus
   (``reinforce_entropy_bonus`` × mean normalised selector entropy).

The selector temperature schedule still applies: it divides the logits before sampling, so late
in the search samples concentrate on the argmax exactly as Gumbel samples do. Attention rows stay
soft (``tau_attn``), as in the Gumbel search; hardening and polishing are unchanged.

Because the sampled weights do not depend on ``theta``, the two gradients never mix: the data
loss reaches only continuous weights, the surrogate only the logits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from ..config import TrainConfig
from ..model import DiscreteTransformer, SelectMode, Selector
from ..model.selector import gumbel_like

REWARD_CLIP = 10.0  # per-sequence losses above this count as this much (one outlier ≠ a signal)


def sample_choices(
    selectors: Mapping[str, Selector],
    tau: torch.Tensor | float,
    batch: int,
    per_example: bool,
    generator: torch.Generator | None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Sample every selector from softmax(logits / tau) (Gumbel-max: an exact categorical draw).

    Returns (one-hot weights per selector — `(P, B, *roles, n)` when `per_example`, else
    `(P, *roles, n)` — and the summed log-probability of the sampled program, `(P, B)` or `(P, 1)`).
    The log-probability carries the gradient with respect to every `theta`.
    """
    onehots: dict[str, torch.Tensor] = {}
    logp_total: torch.Tensor | None = None
    for name, sel in selectors.items():
        logits = sel.logits()
        P = logits.shape[0]
        if isinstance(tau, torch.Tensor):
            logits = logits / tau.view(-1, *([1] * (logits.dim() - 1)))
        else:
            logits = logits / tau
        logp = torch.log_softmax(logits, dim=-1)
        if per_example:
            logp = logp.unsqueeze(1).expand(P, batch, *logp.shape[1:])
        with torch.no_grad():
            idx = (logp + gumbel_like(tuple(logp.shape), generator)).argmax(-1)
        onehots[name] = nn.functional.one_hot(idx, sel.n_options).to(sel.theta.dtype)
        lp = logp.gather(-1, idx.unsqueeze(-1)).squeeze(-1)  # (P, B, *roles) or (P, *roles)
        lp = lp.reshape(P, batch, -1).sum(-1) if per_example else lp.reshape(P, 1, -1).sum(-1)
        logp_total = lp if logp_total is None else logp_total + lp
    assert logp_total is not None, "a model has at least the readout selector"
    return onehots, logp_total


def surrogate(per_example_loss: torch.Tensor, logp: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """The scalar whose gradient is the score-function estimate of ∇ E[loss], summed over members:
    mean over samples of (loss − baseline) · log p(choice). per_example_loss (P, B), logp (P, B)
    or (P, 1), baseline (P,)."""
    adv = (per_example_loss.clamp_max(REWARD_CLIP) - baseline.unsqueeze(1)).detach()
    return (adv * logp).mean(dim=1).sum()


@contextmanager
def forced(selectors: Mapping[str, Selector], onehots: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Make each selector return its sampled one-hot weights for the forward passes inside."""
    try:
        for name, sel in selectors.items():
            sel.forced = onehots[name]
        yield
    finally:
        for sel in selectors.values():
            sel.forced = None


class ScoreFunction:
    """The REINFORCE search step for one population; holds the per-member moving baselines."""

    def __init__(self, cfg: TrainConfig, population: int) -> None:
        self.decay = cfg.reinforce_baseline_decay
        self.entropy_bonus = cfg.reinforce_entropy_bonus
        self.baseline: torch.Tensor | None = None
        self.population = population

    def backward(
        self,
        model: DiscreteTransformer,
        xb: torch.Tensor,
        yb: torch.Tensor,
        var_y: torch.Tensor,
        mode: SelectMode,
        tau_attn: torch.Tensor | float,
    ) -> torch.Tensor:
        """Sample, run, accumulate gradients (weights: backprop; logits: score function).
        Returns the per-member data loss (P,), detached. The caller zeroes and steps optimisers."""
        sels = model.selectors()
        onehots, logp = sample_choices(sels, mode.tau, xb.shape[0], mode.per_example, mode.generator)
        with forced(sels, onehots):
            pred = model(xb, mode, tau_attn)  # (P, B, T, C)
        per_ex = ((pred - yb.unsqueeze(0)).pow(2) / var_y).mean(dim=(2, 3))  # (P, B)
        loss = per_ex.mean(dim=1)
        with torch.no_grad():
            level = loss.detach().clamp_max(REWARD_CLIP)
            if self.baseline is None:
                self.baseline = level.clone()  # first step: advantage centred on its own batch
        total = loss.sum() + surrogate(per_ex, logp, self.baseline)
        if self.entropy_bonus > 0.0:
            total = total - self.entropy_bonus * model.selector_entropy().sum()
        total.backward()
        with torch.no_grad():
            self.baseline.mul_(self.decay).add_((1.0 - self.decay) * level)
        return loss.detach()
