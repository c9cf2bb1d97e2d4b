"""The Selector: the one discrete primitive of the Discrete Transformer.

A selector holds logits `theta` over the variables a module may read. In training it returns
Gumbel-softmax weights `softmax((theta + g) / tau)`; once frozen (hardening) or in evaluation
it returns the one-hot `argmax theta`. Reading a variable is then `R @ w`.

All selectors of one kind in a layer are stored in one tensor with a leading population axis
`P` (independent models trained in lockstep): logits have shape `(P, *roles, n_options)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .functional import softmax


@dataclass(frozen=True)
class SelectMode:
    """How selectors produce their weights for one forward pass."""

    tau: float | torch.Tensor = 1.0  # scalar, or (P,): one temperature per population member
    hard: bool = False  # one-hot argmax (evaluation / extraction)
    per_example: bool = False  # one Gumbel sample per sequence instead of per model
    generator: torch.Generator | None = None
    batch: int = 1
    # Attention as a program: argmax over keys, exactly tied scores averaged (RASP semantics).
    hard_attention: bool = False
    # Temperature at which the hard pattern is taken (None: the forward's own tau_attn). The
    # search's straight-through phase rounds at the final temperature, as evaluation does.
    attention_hard_tau: float | None = None
    # Soft mode only: (P,) 0/1 per member; members with 1 run the hard pattern forward with the
    # soft pattern's gradient (straight-through), the others stay soft. None: all soft.
    attention_st: torch.Tensor | None = None

    @property
    def batched(self) -> bool:
        """True when selector weights carry a batch axis: (P, B, *roles, n)."""
        return self.per_example and not self.hard


def gumbel_like(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(shape, generator=generator).clamp_(1e-9, 1.0 - 1e-9)
    return u.log_().neg_().log_().neg_()  # -log(-log u), in place: one allocation, not four


class Selector(nn.Module):
    """A bank of categorical choices; `theta`: (P, *roles, n_options).

    `allowed` (optional, bool `(*roles, n_options)`) is an inductive-bias mask: a False option is
    never chosen — its logit reads -inf in sampling, argmax and hardening alike. It is derived
    from the ModelConfig, so it is not part of the saved state.
    """

    def __init__(
        self, population: int, roles: tuple[int, ...], n_options: int, allowed: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.n_options = n_options
        self.theta = nn.Parameter(torch.zeros(population, *roles, n_options))
        # frozen[p, *roles] -> the choice is fixed at its argmax (hardening)
        self.register_buffer("frozen", torch.zeros(population, *roles, dtype=torch.bool))
        if allowed is not None:
            allowed = allowed.to(torch.bool).expand(*roles, n_options).clone()
            if not bool(allowed.any(-1).all()):
                raise ValueError("a selector mask leaves some selector with no variable to read")
            if bool(allowed.all()):
                allowed = None  # no restriction: keep the unmasked (bit-identical) path
        self.register_buffer("allowed", allowed, persistent=False)
        # REINFORCE (training/reinforce.py) sets sampled one-hot weights here for one forward pass.
        self.forced: torch.Tensor | None = None

    def logits(self) -> torch.Tensor:
        """theta with disallowed options at -inf: (P, *roles, n)."""
        if self.allowed is None:
            return self.theta
        return self.theta.masked_fill(~self.allowed, float("-inf"))

    def argmax(self) -> torch.Tensor:
        """(P, *roles) long: the choice each selector makes at evaluation."""
        return self.logits().argmax(dim=-1)

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits(), dim=-1)

    def entropy(self) -> torch.Tensor:
        """Normalised entropy in [0, 1] of each selector's distribution: (P, *roles)."""
        if self.allowed is None:
            if self.n_options == 1:
                return torch.zeros(self.theta.shape[:-1])
            logp = torch.log_softmax(self.theta, dim=-1)
            h = -(logp.exp() * logp).sum(-1)
            return h / math.log(self.n_options)
        logp = torch.log_softmax(self.logits(), dim=-1)
        h = -torch.where(self.allowed, logp.exp() * logp, torch.zeros_like(logp)).sum(-1)
        n = self.allowed.sum(-1).to(h.dtype)
        return torch.where(n > 1, h / n.clamp_min(2).log(), torch.zeros_like(h))

    def freeze(self) -> None:
        self.frozen.fill_(True)

    def weights(self, mode: SelectMode) -> torch.Tensor:
        """Selection weights: (P, *roles, n), or (P, B, *roles, n) when `mode.batched`."""
        logits = theta = self.logits()
        if mode.hard:
            return self._one_hot(logits)
        if self.forced is not None:
            return self.forced
        # During the search no choice is frozen: the one-hot and the select below are skipped
        # (the same values and gradients; a few fewer tensor operations in every training step).
        any_frozen = bool(self.frozen.any())
        if mode.per_example:
            theta = theta.unsqueeze(1).expand(theta.shape[0], mode.batch, *theta.shape[1:])
        g = gumbel_like(tuple(theta.shape), mode.generator)
        tau = mode.tau
        if isinstance(tau, torch.Tensor):
            tau = tau.view(-1, *([1] * (theta.dim() - 1)))
        soft = softmax((theta + g) / tau, masked=self.allowed is not None)  # finite unless masked
        if not any_frozen:
            return soft
        hard = self._one_hot(logits)
        frozen = self.frozen
        if mode.per_example:
            hard = hard.unsqueeze(1).expand_as(theta)
            frozen = frozen.unsqueeze(1).expand(theta.shape[:-1])
        return torch.where(frozen.unsqueeze(-1), hard, soft)

    def _one_hot(self, theta: torch.Tensor) -> torch.Tensor:
        """The argmax of the last axis as one-hot weights, in theta's dtype (no gradient)."""
        return nn.functional.one_hot(theta.argmax(-1), self.n_options).to(theta.dtype)
