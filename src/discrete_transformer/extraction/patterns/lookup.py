"""The fallback `lookup(table, default)` for small discrete domains (≤ `LOOKUP_MAX_VALUES`
distinct q and k values): a table (q_i, i) → relative offset d (attend to i − d) or "bos",
fitted on recorded rows (`fit_table`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Hypothesis, Pattern, literal, need
from .routing import Routing

__all__ = ["LOOKUP_MAX_VALUES", "Lookup", "fit_table", "offset"]

LOOKUP_MAX_VALUES = 16  # the lookup fallback is tried only for q, k with at most this many values


def offset(d: Any) -> int | str:
    """A canonical lookup offset: an int >= 0 or "bos"."""
    if d == "bos" or d is None:
        return "bos"
    d = int(d)
    if d < 0:
        raise ValueError(f"lookup offsets must be >= 0 (causal) or 'bos', got {d}")
    return d


def fit_table(A: np.ndarray, q: np.ndarray) -> tuple[list, int | str]:
    """(table, default) fitted on recorded rows: each key (q_i, i) gets the most common offset of
    the observed row's argmax (BOS → "bos"); the overall most common offset is the default for
    keys never seen."""
    A = np.asarray(A, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    n, T1 = q.shape
    T = T1 - 1
    tgt = A[:, 1:, :].argmax(-1)  # (n, T) attended position
    pos = np.arange(1, T1)
    dcode = np.where(tgt == 0, T1, pos - tgt)  # offsets 0..T-1, T1 = "bos"
    uq, qi = np.unique(q[:, 1:].ravel(), return_inverse=True)
    key = qi.reshape(n, T) * T + (pos - 1)
    counts = np.bincount((key * (T1 + 1) + dcode).ravel(), minlength=uq.size * T * (T1 + 1))
    counts = counts.reshape(uq.size * T, T1 + 1)
    best = counts.argmax(1)
    seen = np.flatnonzero(counts.sum(1) > 0)

    def as_d(c: int) -> int | str:
        return "bos" if c == T1 else int(c)

    table = [[float(uq[kk // T]), int(kk % T), as_d(best[kk])] for kk in seen]
    default = as_d(np.bincount(dcode.ravel(), minlength=T1 + 1).argmax())
    return table, default


class Lookup(Pattern):
    """`lookup(table, default)`: attend to i − d with d looked up from (q_i, i); the library
    entry is a placeholder (empty table) that `test_head` fits on the data."""

    name = "lookup"
    helper = "lookup"
    reads = frozenset({"q", "v"})
    python_source = '''def lookup(qs, xs, table, default="bos", bos=0):
    """Routing by table: (qs[i], i) -> offset d, read xs[i - d]; offset "bos" (or one running
    past the start) reads `bos` (0). Keys missing from the table use `default`."""
    out = []
    for i in range(len(xs)):
        d = table.get((qs[i], i), default)
        out.append(bos if d == "bos" or i - d < 0 else xs[i - d])
    return out
'''
    numpy_source = '''def np_lookup(qs, xs, table, default="bos", bos=0):
    """Routing by table: (qs[:, i], i) -> offset d, read xs[:, i - d]; offset "bos" (or one
    running past the start) reads `bos` (0). Keys missing from the table use `default`."""
    import numpy as np
    qs, xs = np.asarray(qs, dtype=float), np.asarray(xs, dtype=float)
    n, T = xs.shape

    def read(d, i):
        return np.full(n, float(bos)) if d == "bos" or i - d < 0 else xs[:, i - d]

    out = np.stack([read(default, i) for i in range(T)], axis=1) if T else np.empty((n, 0))
    for (qv, i), d in table.items():
        if 0 <= i < T:
            hit = qs[:, i] == qv
            out[hit, i] = read(d, i)[hit]
    return out
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        table = [[float(qv), int(i), offset(d)] for qv, i, d in params.get("table", [])]
        p = {"table": table, "default": offset(params.get("default", "bos"))}
        text = f"v[i-d] with d looked up from (q[i], i) ({len(table)} entries, default {p['default']!r}; 'bos' reads 0)"
        return p, text

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        q = need(q, "query", h)
        table = h.params.get("table")
        if not table:
            raise ValueError("lookup hypothesis has no table: fit it with fit_lookup first")
        BOS, UNSET = -1, -2

        def code(d: int | str) -> int:
            return BOS if d == "bos" else int(d)

        tq = np.array([e[0] for e in table], dtype=np.float64)
        uq = np.unique(tq)
        G = np.full((uq.size, T1), UNSET, dtype=np.int64)
        for qv, i, d in table:
            if 0 <= i + 1 < T1:
                G[np.searchsorted(uq, qv), i + 1] = code(d)
        idx = np.clip(np.searchsorted(uq, q), 0, uq.size - 1)
        found = uq[idx] == q
        c = np.where(found, G[idx, np.arange(T1)], UNSET)
        c = np.where(c == UNSET, code(h.params["default"]), c)
        pos = np.arange(T1)
        t = np.where(c == BOS, 0, pos - c)
        t[t < 1] = 0
        t[:, 0] = 0
        return Routing(target=t)

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"lookup_{x}"

    def label(self, params: dict, q: str, k: str) -> str:
        return f"lookup(q={q}, {len(params['table'])} entries)"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        table = ", ".join(f"({literal(qv)}, {i}): {literal(d)}" for qv, i, d in params["table"])
        args = [q, v, "{" + table + "}"]
        if params["default"] != "bos":
            args.append(f"default={literal(params['default'])}")
        return [*args, *bos_kw]
