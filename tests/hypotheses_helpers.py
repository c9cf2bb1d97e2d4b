"""Shared by the hypothesis tests (test_hypotheses*.py): the library, planted patterns and the
position-level data they are tested on."""

from __future__ import annotations

import numpy as np

from discrete_transformer.extraction.hypotheses import Hypothesis, default_library, make_hypothesis

N, T = 5000, 10
T1 = T + 1
LIB = default_library(T1)
H = make_hypothesis


def make_data(n: int = N, T: int = T, seed: int = 0, k_bos: float = 0.0, v_bos: float = 0.0):
    """Position-level q, k, v (n, T+1): BOS column first. q in {0..3} and k in {-2..2} are small
    integer domains, so matches repeat and argmax/argmin ties are common; v is continuous, so
    different routings give different outputs."""
    rng = np.random.default_rng(seed)
    q = np.zeros((n, T + 1))
    k = np.full((n, T + 1), k_bos)
    v = np.full((n, T + 1), v_bos)
    q[:, 1:] = rng.integers(0, 4, (n, T))
    k[:, 1:] = rng.integers(-2, 3, (n, T))
    v[:, 1:] = rng.normal(size=(n, T))
    return q, k, v


def record(P: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A head's output: rows of `P` applied to `v`, 0 at the BOS row."""
    out = np.einsum("nij,nj->ni", P, v)
    out[:, 0] = 0.0
    return out


def random_lookup(T: int = T, seed: int = 1) -> Hypothesis:
    """A lookup hypothesis with a random table over q in {0..3}."""
    rng = np.random.default_rng(seed)
    table = []
    for qv in range(4):
        for i in range(T):
            d = int(rng.integers(-1, i + 1))
            table.append([float(qv), i, "bos" if d < 0 else d])
    return H("lookup", table=table, default="bos")


PLANTS = [h for h in LIB if h.name != "lookup"] + [random_lookup()]
