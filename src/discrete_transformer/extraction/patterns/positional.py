"""Position-only patterns: `self`, `shift(c)` and `first`."""

from __future__ import annotations

import numpy as np

from .base import Hypothesis, Pattern
from .routing import Routing

__all__ = ["First", "Self", "Shift"]


class Self(Pattern):
    """`self` — attend to i."""

    name = "self"
    helper = "identity"
    python_source = '''def identity(xs):
    """xs[i]: the value at the same position."""
    return list(xs)
'''
    numpy_source = '''def np_identity(xs):
    """xs[:, i]: the value at the same position."""
    import numpy as np
    return np.array(xs, dtype=float)
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        return {}, "v[i]"

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        return Routing(target=np.arange(T1)[None].copy())

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return x


class Shift(Pattern):
    """`shift(c)` — attend to i − c; BOS (reads 0) before the start. c = 1..T−1."""

    name = "shift"
    helper = "shift"
    python_source = '''def shift(xs, c, bos=0):
    """xs[i - c], or `bos` (0) before the start."""
    return [xs[i - c] if i >= c else bos for i in range(len(xs))]
'''
    numpy_source = '''def np_shift(xs, c, bos=0):
    """xs[:, i - c], or `bos` (0) before the start."""
    import numpy as np
    xs = np.asarray(xs, dtype=float)
    out = np.full_like(xs, bos)
    if c < xs.shape[1]:
        out[:, c:] = xs[:, : xs.shape[1] - c]
    return out
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        c = int(params["c"])
        if c < 1:
            raise ValueError(f"shift needs c >= 1, got {c}")
        return {"c": c}, f"v[i-{c}] (0 before the start)"

    def library(self, T1: int) -> list[tuple[str, dict]]:
        return [(self.name, {"c": c}) for c in range(1, T1 - 1)]

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        t = np.arange(T1) - h.params["c"]
        t[t < 1] = 0
        return Routing(target=t[None])

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"prev{params['c']}_{x}"

    def label(self, params: dict, q: str, k: str) -> str:
        return f"shift({params['c']})"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        return [v, str(params["c"]), *bos_kw]


class First(Pattern):
    """`first` — attend to the first sequence position."""

    name = "first"
    helper = "first"
    python_source = '''def first(xs):
    """xs[0] at every position."""
    return [xs[0] for _ in xs]
'''
    numpy_source = '''def np_first(xs):
    """xs[:, 0] at every position."""
    import numpy as np
    xs = np.asarray(xs, dtype=float)
    return np.repeat(xs[:, :1], xs.shape[1], axis=1)
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        return {}, "v[0] (the first element)"

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        t = np.ones(T1, dtype=np.int64)
        t[0] = 0
        return Routing(target=t[None])

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"first_{x}"
