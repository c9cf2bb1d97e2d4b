"""Predicted attention patterns in compact form, and observed patterns summarised for comparison.

A :class:`Routing` is what a routing pattern predicts: one-hot rows (an attended position per
query) or rows uniform over a set of keys. It expands to the dense `(n, T1, T1)` pattern, routes
values (mean, or sum, of the selected keys) and compares itself row by row with an
:class:`Observed` pattern. Row 0 (the BOS query) always attends to BOS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PATTERN_ATOL", "Observed", "Routing", "bos_row", "causal", "pack"]

PATTERN_ATOL = 1e-6  # a predicted attention row "equals" the observed one within this max abs diff


def pack(mask: np.ndarray) -> np.ndarray:
    """Bool (..., T1) → (..., W) uint64 words, W = ceil(T1 / 64): rows compare as W integers."""
    T1 = mask.shape[-1]
    W = -(-T1 // 64)
    padded = np.zeros(mask.shape[:-1] + (W * 64,), dtype=bool)
    padded[..., :T1] = mask
    return np.packbits(padded, axis=-1).view(np.uint64)


def causal(T1: int) -> np.ndarray:
    """(T1, T1) bool: key j <= query i."""
    return np.tril(np.ones((T1, T1), dtype=bool))


def bos_row(sel: np.ndarray) -> np.ndarray:
    """`sel` with its BOS query row (row 0) attending to BOS alone (in place)."""
    sel[..., 0, :] = False
    sel[..., 0, 0] = True
    return sel


@dataclass
class Observed:
    """Per-row summary of an observed pattern, enough to compare it with any `Routing` row
    exactly (predicted weights are all >= 1/T1 >> 2·PATTERN_ATOL)."""

    packed: np.ndarray  # (n, T1, W) uint64: bits of the support |A| > PATTERN_ATOL
    count: np.ndarray  # (n, T1) support size
    top: np.ndarray  # (n, T1) argmax |A|
    vmax: np.ndarray  # (n, T1) max of A over the support (-inf if empty)
    vmin: np.ndarray  # (n, T1) min of A over the support (+inf if empty)

    @classmethod
    def of(cls, A: np.ndarray, chunk: int = 4096) -> Observed:
        parts = []
        for s in range(0, A.shape[0], chunk):
            a = A[s : s + chunk]
            absa = np.abs(a)
            supp = absa > PATTERN_ATOL
            parts.append(
                (
                    pack(supp),
                    supp.sum(-1),
                    absa.argmax(-1),
                    np.where(supp, a, -np.inf).max(-1),
                    np.where(supp, a, np.inf).min(-1),
                )
            )
        return cls(*(np.concatenate(col) for col in zip(*parts)))

    def rows(self, sl: slice) -> Observed:
        return Observed(self.packed[sl], self.count[sl], self.top[sl], self.vmax[sl], self.vmin[sl])


@dataclass
class Routing:
    """A predicted pattern in compact form: either one-hot rows (`target`, (m, T1) int) or rows
    uniform over a set (`sel`, (m, T1, T1) bool), with m = 1 (the same for every sequence) or n.
    Row 0 is always BOS → BOS."""

    target: np.ndarray | None = None
    sel: np.ndarray | None = None

    def dense(self, n: int, T1: int) -> np.ndarray:
        if self.target is not None:
            P = (self.target[..., None] == np.arange(T1)).astype(np.float64)
        else:
            P = self.sel / self.sel.sum(-1, keepdims=True)
        return np.broadcast_to(P, (n, T1, T1)).copy()

    def output(self, v: np.ndarray, agg: str = "mean") -> np.ndarray:
        """The routed values: mean (or, with agg="sum", sum) of v over each row's keys."""
        n, T1 = v.shape
        if self.target is not None:
            out = np.take_along_axis(v, np.broadcast_to(self.target, (n, T1)), axis=1)
        elif self.sel.shape[0] == 1:
            W = self.sel[0].astype(np.float64)
            if agg != "sum":
                W = W / W.sum(-1, keepdims=True)
            out = v @ np.ascontiguousarray(W.T)  # a transposed operand is slow in OpenBLAS
        else:
            out = np.einsum("nij,nj->ni", self.sel, v)
            if agg != "sum":
                out = out / self.sel.sum(-1)
        out = np.array(out, dtype=np.float64)
        out[:, 0] = 0.0
        return out

    def matches(self, obs: Observed) -> np.ndarray:
        """(n, T1) bool: predicted row == observed row (max abs diff <= PATTERN_ATOL)."""
        if self.target is not None:
            one = np.abs(obs.vmax - 1.0) <= PATTERN_ATOL
            return (obs.count == 1) & (obs.top == self.target) & one
        w = 1.0 / self.sel.sum(-1)
        same = obs.packed == pack(self.sel)
        return (
            (same[..., 0] if same.shape[-1] == 1 else same.all(-1))
            & (obs.vmax - w <= PATTERN_ATOL)
            & (w - obs.vmin <= PATTERN_ATOL)
        )
