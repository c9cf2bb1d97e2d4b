"""Shared by the symbolic-regression tests (test_symbolic*.py): the planted expressions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _u(lo: float, hi: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: rng.uniform(lo, hi, n)


def _ints(lo: int, hi: int) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: rng.integers(lo, hi + 1, n).astype(np.float64)


def _rare(hi: int, rare: int, p: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    """Integers on [0, hi], and with probability p the value `rare`."""
    return lambda rng, n: np.where(rng.random(n) < p, rare, rng.integers(0, hi + 1, n)).astype(np.float64)


@dataclass(frozen=True)
class Planted:
    """A planted expression: how to sample its inputs, the function, its smallest exact size."""

    id: str
    names: tuple[str, ...]
    samplers: tuple[Callable[[np.random.Generator, int], np.ndarray], ...]
    f: Callable[..., np.ndarray]
    size: int  # size of the smallest exact expression
    n: int = 400
    tol: float = 1e-6

    def sample(self, seed: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        X = np.stack([s(rng, n or self.n) for s in self.samplers], axis=1)
        return X, self.f(*X.T)


U3 = _u(-3, 3)
PLANTED = [
    Planted("a+b", ("a", "b"), (U3, U3), lambda a, b: a + b, 3),
    Planted("a-b", ("a", "b"), (U3, U3), lambda a, b: a - b, 3),
    Planted("a*b", ("a", "b"), (U3, U3), lambda a, b: a * b, 3),
    Planted("a%3", ("a",), (_ints(0, 20),), lambda a: np.mod(a, 3), 3),
    Planted("|a-b|", ("a", "b"), (U3, U3), lambda a, b: np.abs(a - b), 4),
    Planted("0.5*a*b**2", ("a", "b"), (_u(0.5, 2), U3), lambda a, b: 0.5 * a * b**2, 6),
    Planted("sqrt(a2+b2)", ("a", "b"), (U3, U3), lambda a, b: np.sqrt(a**2 + b**2), 6),
    Planted("(a+b)>=2 bits", ("a", "b"), (_ints(0, 1), _ints(0, 1)), lambda a, b: (a + b >= 2) * 1.0, 3),
    Planted("min(a,b)", ("a", "b"), (U3, U3), lambda a, b: np.minimum(a, b), 3),
    Planted("a*(b+1)", ("a", "b"), (U3, U3), lambda a, b: a * (b + 1), 5),
    Planted("0.01*x", ("x",), (_u(-100, 100),), lambda x: 0.01 * x, 3),
    Planted("x", ("x",), (_u(-5, 5),), lambda x: x, 1),
    Planted("a+b+c", ("a", "b", "c"), (U3, U3, U3), lambda a, b, c: a + b + c, 5),
    Planted("-2.5*(a-b)", ("a", "b"), (U3, U3), lambda a, b: -2.5 * (a - b), 5),
    Planted("a+a", ("a", "b"), (U3, U3), lambda a, b: a + a, 3),
    Planted("a (a>=0)", ("a",), (_u(0, 5),), lambda a: a, 1),
    Planted("where(c,a,b)", ("a", "b", "c"), (U3, U3, _ints(0, 1)), lambda a, b, c: np.where(c != 0, a, b), 4),
    Planted("(a+b)%3", ("a", "b"), (_ints(0, 9), _ints(0, 9)), lambda a, b: np.mod(a + b, 3), 5),
    Planted(
        "a+(a==50) rare", ("a", "b"), (_rare(3000, 50, 0.001), _ints(0, 50)), lambda a, b: a + (a == 50), 5, n=6000
    ),
]
