"""Averaging windows: `prefix_mean`, `window_mean(c)` and `lag_window_mean(lo, hi)`.

The start rule is the model's: BOS carries `pos = −1`, so a window over pos values reaching
back past the start contains the BOS slot as *one* more key (reading 0) exactly when
`include_bos` is set and the window's lower end is ≤ −1; a hardened head averages uniformly
over the keys in its window.
"""

from __future__ import annotations

import numpy as np

from .base import Hypothesis, Pattern
from .routing import Routing, bos_row, causal

__all__ = ["LagWindowMean", "PrefixMean", "WindowMean"]


def _bos_args(params: dict, bos_kw: list[str]) -> list[str]:
    return ["include_bos=True", *bos_kw] if params["include_bos"] else []


class PrefixMean(Pattern):
    """`prefix_mean(include_bos)` — uniform over positions 1..i; with `include_bos` the BOS slot
    is one more key (reads 0), i.e. sum / (i + 2) for sequence index i."""

    name = "prefix_mean"
    helper = "prefix_mean"
    python_source = '''def prefix_mean(xs, include_bos=False, bos=0, agg="mean"):
    """Mean of xs[0..i] (agg="sum": their sum); with include_bos the start slot is one more
    value `bos` (0)."""
    out, total = [], bos if include_bos else 0
    for i, x in enumerate(xs):
        total += x
        out.append(total if agg == "sum" else total / (i + 2 if include_bos else i + 1))
    return out
'''
    numpy_source = '''def np_prefix_mean(xs, include_bos=False, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[:, 0..i]; with include_bos the start slot is one more value
    `bos` (0)."""
    import numpy as np
    xs = np.asarray(xs, dtype=float)
    i = np.arange(xs.shape[1])
    total = np.cumsum(xs, axis=1)
    if agg == "sum":
        return total + bos if include_bos else total
    if include_bos:
        return (total + bos) / (i + 2)
    return total / (i + 1)
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        ib = bool(params.get("include_bos", False))
        text = "sum(v[0..i]) / (i+2) (BOS counts as one more 0)" if ib else "mean(v[0..i])"
        return {"include_bos": ib}, text

    def library(self, T1: int) -> list[tuple[str, dict]]:
        return [(self.name, {"include_bos": ib}) for ib in (False, True)]

    def averages(self, params: dict) -> bool:
        return True

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        sel = causal(T1)
        if not h.params["include_bos"]:
            sel[:, 0] = False
        return Routing(sel=bos_row(sel)[None])

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"padded_prefix_mean_{x}" if params["include_bos"] else f"prefix_mean_{x}"

    def describe_sum(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"padded_prefix_sum_{x}" if params["include_bos"] else f"prefix_sum_{x}"

    def label(self, params: dict, q: str, k: str) -> str:
        return "prefix_mean(with BOS)" if params["include_bos"] else "prefix_mean"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        return [v, *_bos_args(params, bos_kw)]


class WindowMean(Pattern):
    """`window_mean(c, include_bos)` — uniform over sequence indices max(0, i−c)..i. With
    `include_bos`, a window that reaches back past the start (i − c < 0) also contains the BOS
    slot as one more key reading 0. c = 1..T−1."""

    name = "window_mean"
    helper = "window_mean"
    python_source = '''def window_mean(xs, c, include_bos=False, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[i - c..i] clipped at the start; with include_bos a window
    reaching past the start also takes in one start-slot value `bos` (0)."""
    out = []
    for i in range(len(xs)):
        window = list(xs[max(0, i - c): i + 1])
        if include_bos and i - c < 0:
            window.append(bos)
        out.append(sum(window) if agg == "sum" else sum(window) / len(window))
    return out
'''
    numpy_source = '''def np_window_mean(xs, c, include_bos=False, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[:, i - c..i] clipped at the start; with include_bos a window
    reaching past the start also takes in one start-slot value `bos` (0)."""
    import numpy as np
    xs = np.asarray(xs, dtype=float)
    T = xs.shape[1]
    total = np.zeros_like(xs)
    count = np.zeros(T)
    for d in range(min(c, T - 1) + 1):
        total[:, d:] += xs[:, : T - d]
        count[d:] += 1
    if include_bos:
        past = np.arange(T) - c < 0
        total = total + np.where(past, bos, 0.0)
        count = count + past
    return total if agg == "sum" else total / count
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        c, ib = int(params["c"]), bool(params.get("include_bos", False))
        if c < 1:
            raise ValueError(f"window_mean needs c >= 1, got {c}")
        text = (
            f"mean(v[i-{c}..i]), a window past the start also averaging in one 0 (BOS)"
            if ib
            else f"mean(v[max(0, i-{c})..i])"
        )
        return {"c": c, "include_bos": ib}, text

    def library(self, T1: int) -> list[tuple[str, dict]]:
        return [(self.name, {"c": c, "include_bos": ib}) for c in range(1, T1 - 1) for ib in (False, True)]

    def averages(self, params: dict) -> bool:
        return True

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        p = np.arange(T1)
        c = h.params["c"]
        j = p[None, :]
        sel = (j <= p[:, None]) & (j >= p[:, None] - c) & (j >= 1)
        if h.params["include_bos"]:
            sel[:, 0] = p - c <= 0  # the window over pos values reaches BOS's pos = -1
        return Routing(sel=bos_row(sel)[None])

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        base = f"mean_last{params['c'] + 1}_{x}"
        return f"padded_{base}" if params["include_bos"] else base

    def describe_sum(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"sum_last{params['c'] + 1}_{x}"

    def label(self, params: dict, q: str, k: str) -> str:
        return f"window_mean({params['c']}{', with BOS' if params['include_bos'] else ''})"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        return [v, str(params["c"]), *_bos_args(params, bos_kw)]


class LagWindowMean(Pattern):
    """`lag_window_mean(lo, hi, include_bos)` — uniform over the *lagged* window of sequence
    indices max(0, i−hi)..i−lo (i itself excluded), 1 ≤ lo < hi ≤ T−1 (lo = hi is `shift`). The
    start rule is `window_mean`'s: with `include_bos`, a window reaching back past the start
    (i − hi < 0) also contains the BOS slot as one more key reading 0; a window entirely before
    the start (i − lo < 0) reads BOS alone (0) in both variants."""

    name = "lag_window_mean"
    helper = "lag_window_mean"
    python_source = '''def lag_window_mean(xs, lo, hi, include_bos=False, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[i - hi..i - lo] clipped at the start (i itself excluded);
    with include_bos a window reaching past the start also takes in one start-slot value `bos`
    (0). A window entirely before the start reads `bos` (0)."""
    out = []
    for i in range(len(xs)):
        window = list(xs[max(0, i - hi): max(0, i - lo + 1)])
        if not window or (include_bos and i - hi < 0):
            window.append(bos)
        out.append(sum(window) if agg == "sum" else sum(window) / len(window))
    return out
'''
    numpy_source = '''def np_lag_window_mean(xs, lo, hi, include_bos=False, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[:, i - hi..i - lo] clipped at the start (i itself excluded);
    with include_bos a window reaching past the start also takes in one start-slot value `bos`
    (0). A window entirely before the start reads `bos` (0)."""
    import numpy as np
    xs = np.asarray(xs, dtype=float)
    T = xs.shape[1]
    total = np.zeros_like(xs)
    count = np.zeros(T)
    for d in range(lo, min(hi, T - 1) + 1):
        total[:, d:] += xs[:, : T - d]
        count[d:] += 1
    extra = count == 0
    if include_bos:
        extra = extra | (np.arange(T) - hi < 0)
    total = total + np.where(extra, bos, 0.0)
    count = count + extra
    return total if agg == "sum" else total / count
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        lo, hi = int(params["lo"]), int(params["hi"])
        ib = bool(params.get("include_bos", False))
        if not 1 <= lo < hi:
            raise ValueError(f"lag_window_mean needs 1 <= lo < hi, got lo={lo}, hi={hi}")
        text = (
            f"mean(v[i-{hi}..i-{lo}]), a window past the start also averaging in one 0 (BOS); "
            "0 when the whole window is before the start"
            if ib
            else f"mean(v[max(0, i-{hi})..i-{lo}]) (0 when the whole window is before the start)"
        )
        return {"lo": lo, "hi": hi, "include_bos": ib}, text

    def library(self, T1: int) -> list[tuple[str, dict]]:
        return [
            (self.name, {"lo": lo, "hi": hi, "include_bos": ib})
            for hi in range(2, T1 - 1)
            for lo in range(1, hi)
            for ib in (False, True)
        ]

    def averages(self, params: dict) -> bool:
        return True

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        p = np.arange(T1)
        lo, hi = h.params["lo"], h.params["hi"]
        j = p[None, :]
        sel = (j <= p[:, None] - lo) & (j >= p[:, None] - hi) & (j >= 1)
        empty = ~sel.any(-1)  # the whole window is before the start: BOS alone
        sel[:, 0] = empty | (h.params["include_bos"] & (p - hi <= 0))  # as window_mean's BOS rule
        return Routing(sel=bos_row(sel)[None])

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        base = f"mean_lag{params['lo']}to{params['hi']}_{x}"
        return f"padded_{base}" if params["include_bos"] else base

    def describe_sum(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"sum_lag{params['lo']}to{params['hi']}_{x}"

    def label(self, params: dict, q: str, k: str) -> str:
        bos = ", with BOS" if params["include_bos"] else ""
        return f"lag_window_mean({params['lo']}..{params['hi']} back{bos})"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        # reads BOS even without include_bos (an empty window)
        args = [v, str(params["lo"]), str(params["hi"])]
        return [*args, *(["include_bos=True"] if params["include_bos"] else []), *bos_kw]
