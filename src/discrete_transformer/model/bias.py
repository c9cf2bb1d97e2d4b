"""Inductive-bias masks: which variables each selector may read, derived from a ModelConfig.

The knobs (`attention_routing`, `forbid_reads`) never add anything to the model; they only
remove candidates from selectors, so that the same search is steered towards a different
program (docs/inductive_bias.md). A mask is a bool tensor `(*roles, n_options)` handed to the
Selector, which puts -inf on disallowed logits in sampling, argmax and hardening alike.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import torch

from ..config import ModelConfig

POSITIONAL_VARIABLES = ("pos", "one")  # what q and k may read under attention_routing="positional"
ATTN_ROLES = ("q", "k", "v")


class MaskBuilder:
    """Builds the masks of one model and checks that every forbid_reads pair was used."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.used = [False] * len(config.forbid_reads)

    def _forbidden(self, module: str, role: str, variable: str) -> bool:
        hit = False
        for i, (mp, vp) in enumerate(self.config.forbid_reads):
            if (fnmatchcase(module, mp) or fnmatchcase(f"{module}.{role}", mp)) and fnmatchcase(variable, vp):
                self.used[i] = True
                hit = True
        return hit

    def mask(
        self, modules: list[str], roles: list[str], names: list[str], positional_roles: tuple[str, ...] = ()
    ) -> torch.Tensor:
        """(len(modules), len(roles), len(names)) bool: True where module.role may read the name."""
        out = torch.ones(len(modules), len(roles), len(names), dtype=torch.bool)
        for a, module in enumerate(modules):
            for b, role in enumerate(roles):
                for c, var in enumerate(names):
                    if (
                        role in positional_roles
                        and var not in POSITIONAL_VARIABLES
                        or self._forbidden(module, role, var)
                    ):
                        out[a, b, c] = False
                if not bool(out[a, b].any()):
                    raise ValueError(
                        f"ModelConfig: selector {module}.{role} has no variable left to read "
                        f"(attention_routing={self.config.attention_routing!r}, forbid_reads={list(self.config.forbid_reads)})"
                    )
        return out

    def attention(self, layer: int, n_heads: int, names: list[str]) -> torch.Tensor:
        positional = ("q", "k") if self.config.attention_routing == "positional" else ()
        return self.mask([f"L{layer}.H{h}" for h in range(n_heads)], list(ATTN_ROLES), names, positional)

    def mlp(self, layer: int, n_mlps: int, arity: int, names: list[str]) -> torch.Tensor:
        return self.mask([f"L{layer}.M{m}" for m in range(n_mlps)], [f"in{i}" for i in range(arity)], names)

    def readout(self, output_names: tuple[str, ...], names: list[str]) -> torch.Tensor:
        return self.mask(["readout"], list(output_names), names)[0]

    def check_all_used(self) -> None:
        """A forbid_reads pair that matches nothing is almost certainly a typo: refuse it."""
        for used, pair in zip(self.used, self.config.forbid_reads):
            if not used:
                raise ValueError(f"ModelConfig.forbid_reads {pair!r} matches no (module, variable) of this model")
