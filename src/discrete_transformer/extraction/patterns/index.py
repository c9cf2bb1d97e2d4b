"""`at_index(c)`: attend to the position the query names, j = q_i + c (RASP's
`select(indices, q, ==)`). A head that reads a table by a stored index needs it; the model
builds it from any key that separates positions (`pos` or a function of it), so the hypothesis
reads only q and v."""

from __future__ import annotations

import numpy as np

from .base import Hypothesis, Pattern, need
from .routing import Observed, Routing

__all__ = ["Index"]

INDEX_ATOL = 1e-6  # q_i + c names a position only when it is this close to an integer


class Index(Pattern):
    """`at_index(c)` — attend to position q_i + c when it is an integer in 0..i; otherwise to
    BOS (reads 0)."""

    name = "at_index"
    helper = "at_index"
    reads = frozenset({"q", "v"})
    python_source = f'''def at_index(qs, xs, c=0, bos=0):
    """xs[j] with j = qs[i] + c, the position the query names; `bos` (0) when j is not a
    position at or before i."""
    out = []
    for i, q in enumerate(qs):
        t = q + c
        j = round(t) if abs(t) <= len(xs) else -1  # (a NaN or infinite q names no position)
        named = abs(t - j) < {INDEX_ATOL} and 0 <= j <= i
        out.append(xs[j] if named else bos)
    return out
'''
    numpy_source = f'''def np_at_index(qs, xs, c=0, bos=0):
    """xs[:, j] with j = qs[:, i] + c, the position the query names; `bos` (0) when j is not a
    position at or before i."""
    import numpy as np
    qs, xs = np.asarray(qs, dtype=float) + c, np.asarray(xs, dtype=float)
    j = np.rint(qs)
    with np.errstate(invalid="ignore"):  # a NaN or infinite q names no position
        named = (np.abs(qs - j) < {INDEX_ATOL}) & (j >= 0) & (j <= np.arange(xs.shape[1]))
    got = np.take_along_axis(xs, np.where(named, j, 0).astype(np.int64), axis=1)
    return np.where(named, got, float(bos))
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        c = int(params.get("c", 0))
        at = "q[i]" + (f" + {c}" if c > 0 else f" - {-c}" if c < 0 else "")
        return {"c": c}, f"v[{at}], the position the query names (0 when it is not at or before i)"

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        q = need(q, "query", h)
        j = q + h.params["c"]  # (n, T1) named sequence position (0-based)
        r = np.rint(j)
        row = np.arange(T1)  # query row r reads sequence positions 0..r-1 (columns 1..r)
        named = (np.abs(j - r) < INDEX_ATOL) & (r >= 0) & (r <= row - 1)
        t = np.where(named, r + 1, 0).astype(np.int64)
        t[:, 0] = 0
        return Routing(target=t)

    def fitted(self, obs: Observed, q: np.ndarray, k: np.ndarray, T1: int) -> list[dict]:
        """The most common offset between the attended position and q (when it is not 0, the
        library's entry): a head may name positions counted from another origin."""
        top = obs.top[:, 1:]
        d = (top - 1) - q[:, 1:]
        seen = d[(top >= 1) & (np.abs(d - np.rint(d)) < INDEX_ATOL)]
        if seen.size == 0:
            return []
        vals, counts = np.unique(np.rint(seen).astype(np.int64), return_counts=True)
        c = int(vals[counts.argmax()])
        return [{"c": c}] if c != 0 and abs(c) < T1 else []

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"{x}_at_{q_name}"

    def label(self, params: dict, q: str, k: str) -> str:
        c = params["c"]
        return f"at_index(q={q}" + (f", c={c})" if c else ")")

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        return [q, v, *([f"c={params['c']}"] if params["c"] else []), *bos_kw]
