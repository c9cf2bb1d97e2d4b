"""A screen of the data for the lags that explain the target, before any search.

A task whose target is a function of the current input and the input c steps back (equal to,
compare with, differ from) is a needle for the search: the offset selector of the shift group gets
no gradient towards lag c until the module after the head already computes the comparison. The
data says which lag it is. For each lag c = 1 .. T-1, input channel k and output o,

    H_c = H(y_o[i] | x_k[i], x_k[i - c])          (bits; x before the start reads 0, as BOS does)

is 0 when the pair determines the target. Each variable is quantised to at most `LEVELS` values
(quantile bins beyond that), so that inputs with many distinct values do not make every pair
look unique. The lag's score is ``max(0, 1 - H_c / median over lags of H)``, the largest over
channels and outputs: 1 for a lag that determines the target, 0 for a typical lag.
docs/journal/2026-12-07-pos-trap.md, §7.
"""

from __future__ import annotations

import numpy as np

LEVELS = 16  # values per variable in the screen; a variable with more is binned by quantile
ROWS = 2000  # training sequences the screen reads


def quantise(a: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Integer codes 0 .. levels-1 of `a` (any shape): its distinct values when there are at most
    `levels`, else quantile bins."""
    values = np.unique(a)
    if values.size <= levels:
        return np.searchsorted(values, a)
    edges = np.unique(np.quantile(a, np.linspace(0.0, 1.0, levels + 1)[1:-1]))
    return np.searchsorted(edges, a, side="right")


def conditional_entropy(key: np.ndarray, y: np.ndarray, n_key: int, n_y: int) -> float:
    """H(y | key) in bits, for integer codes key < n_key and y < n_y of the same length."""
    n = key.size
    joint = np.bincount(key * n_y + y, minlength=n_key * n_y).astype(np.float64)
    marginal = np.bincount(key, minlength=n_key).astype(np.float64)
    joint, marginal = joint[joint > 0], marginal[marginal > 0]
    return float(((marginal * np.log2(marginal)).sum() - (joint * np.log2(joint)).sum()) / n)


def lag_scores(x: np.ndarray, y: np.ndarray, rows: int = ROWS) -> tuple[float, ...]:
    """(T - 1,) the score of each lag c = 1 .. T-1 (index c - 1) for inputs x (n, T, C_in) and
    targets y (n, T, C_out); () when T < 2."""
    x, y = np.asarray(x[:rows], dtype=np.float64), np.asarray(y[:rows], dtype=np.float64)
    n, T, C = x.shape
    if T < 2:
        return ()
    best = np.zeros(T - 1)
    for k in range(C):
        padded = quantise(np.concatenate([np.zeros((n, T - 1)), x[:, :, k]], axis=1))  # (n, 2T - 1)
        n_x = int(padded.max()) + 1
        current = padded[:, T - 1 :]  # (n, T)
        for o in range(y.shape[2]):
            yq = quantise(y[:, :, o])
            n_y = int(yq.max()) + 1
            h = np.array(
                [
                    conditional_entropy(
                        (current * n_x + padded[:, T - 1 - c : 2 * T - 1 - c]).ravel(), yq.ravel(), n_x * n_x, n_y
                    )
                    for c in range(1, T)
                ]
            )
            median = float(np.median(h))
            if median > 0:
                best = np.maximum(best, np.clip(1.0 - h / median, 0.0, 1.0))
    return tuple(float(s) for s in best)


__all__ = ["LEVELS", "ROWS", "conditional_entropy", "lag_scores", "quantise"]
