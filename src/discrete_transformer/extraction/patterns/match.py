"""Key matching: `match(tie)` — the most recent ("latest") or first ("earliest") j ≤ i with
k_j == q_i (equal up to float rounding: |k_j − q_i| ≤ 1e-9·max(1, |q_i|)); `match_all` —
uniform over all such j. BOS (reads 0) when there is none."""

from __future__ import annotations

import numpy as np

from .base import Hypothesis, Pattern, need
from .routing import Routing, bos_row, causal

__all__ = ["Match", "MatchAll", "matching_keys"]


def matching_keys(h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> np.ndarray:
    """(n, T1, T) bool: sequence key j + 1 <= query i has k == q (keys 1..T)."""
    q, k = need(q, "query", h), need(k, "key", h)
    # equal up to float rounding (a key computed as a mean, 2/3·3, may miss an integer query by 1 ulp)
    close = np.abs(k[:, None, 1:] - q[:, :, None]) <= 1e-9 * np.maximum(1.0, np.abs(q[:, :, None]))
    return close & causal(T1)[None, :, 1:]


class Match(Pattern):
    """`match(tie)`: v at the most recent (tie="latest") or first ("earliest") matching key."""

    name = "match"
    helper = "match"
    reads = frozenset({"q", "k", "v"})
    python_source = '''def match(qs, ks, xs, tie="latest", bos=0):
    """xs[j] for the most recent (tie="latest") or first (tie="earliest") j <= i with
    ks[j] == qs[i]; `bos` (0) when there is none."""
    out = []
    for i in range(len(xs)):
        hits = [xs[j] for j in range(i + 1) if abs(ks[j] - qs[i]) <= 1e-9 * max(1.0, abs(qs[i]))]
        if not hits:
            out.append(bos)
        else:
            out.append(hits[-1] if tie == "latest" else hits[0])
    return out
'''
    numpy_source = '''def np_match(qs, ks, xs, tie="latest", bos=0):
    """xs[:, j] for the most recent (tie="latest") or first (tie="earliest") j <= i with
    ks[:, j] == qs[:, i]; `bos` (0) when there is none."""
    import numpy as np
    qs, ks, xs = (np.asarray(a, dtype=float) for a in (qs, ks, xs))
    n, T = xs.shape
    rows = np.arange(n)
    out = np.empty((n, T))
    for i in range(T):
        eq = np.abs(ks[:, : i + 1] - qs[:, i : i + 1]) <= 1e-9 * np.maximum(1.0, np.abs(qs[:, i : i + 1]))
        j = i - eq[:, ::-1].argmax(axis=1) if tie == "latest" else eq.argmax(axis=1)
        out[:, i] = np.where(eq.any(axis=1), xs[rows, j], bos)
    return out
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        tie = str(params.get("tie", "latest"))
        if tie not in ("latest", "earliest"):
            raise ValueError(f"match tie must be 'latest' or 'earliest', got {tie!r}")
        which = "most recent" if tie == "latest" else "first"
        return {"tie": tie}, f"v[j] for the {which} j <= i with k[j] == q[i] (0 if none)"

    def library(self, T1: int) -> list[tuple[str, dict]]:
        # the match family, simplest first: the latest match, all matches, the earliest match
        return [(self.name, {"tie": "latest"}), (MatchAll.name, {}), (self.name, {"tie": "earliest"})]

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        eq = matching_keys(h, q, k, T1)
        hit = eq.any(-1)
        if h.params["tie"] == "latest":
            j = (T1 - 1) - eq[..., ::-1].argmax(-1)
        else:
            j = eq.argmax(-1) + 1
        t = np.where(hit, j, 0)
        t[:, 0] = 0
        return Routing(target=t)

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        which = "match" if params["tie"] == "latest" else "first_match"
        return f"{x}_at_{which}_{q_name}_{k_name}"

    def label(self, params: dict, q: str, k: str) -> str:
        return f"match(q={q}, k={k}, {params['tie']})"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        return [q, k, v, *([] if params["tie"] == "latest" else ['tie="earliest"']), *bos_kw]


class MatchAll(Pattern):
    """`match_all`: the mean of v over every matching key."""

    name = "match_all"
    helper = "match_all"
    reads = frozenset({"q", "k", "v"})
    python_source = '''def match_all(qs, ks, xs, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[j] over every j <= i with ks[j] == qs[i]; `bos` (0) when
    there is none."""
    out = []
    for i in range(len(xs)):
        hits = [xs[j] for j in range(i + 1) if abs(ks[j] - qs[i]) <= 1e-9 * max(1.0, abs(qs[i]))]
        out.append((sum(hits) if agg == "sum" else sum(hits) / len(hits)) if hits else bos)
    return out
'''
    numpy_source = '''def np_match_all(qs, ks, xs, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[:, j] over every j <= i with ks[:, j] == qs[:, i]; `bos` (0)
    when none."""
    import numpy as np
    qs, ks, xs = (np.asarray(a, dtype=float) for a in (qs, ks, xs))
    n, T = xs.shape
    out = np.empty((n, T))
    for i in range(T):
        eq = np.abs(ks[:, : i + 1] - qs[:, i : i + 1]) <= 1e-9 * np.maximum(1.0, np.abs(qs[:, i : i + 1]))
        count = eq.sum(axis=1)
        total = np.where(eq, xs[:, : i + 1], 0.0).sum(axis=1)
        out[:, i] = np.where(count > 0, total if agg == "sum" else total / np.maximum(count, 1), bos)
    return out
'''

    def canonical(self, params: dict) -> tuple[dict, str]:
        return {}, "mean of v[j] over all j <= i with k[j] == q[i] (0 if none)"

    def library(self, T1: int) -> list[tuple[str, dict]]:
        return []  # listed by `Match.library`, between the latest and the earliest match

    def averages(self, params: dict) -> bool:
        return True

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        eq = matching_keys(h, q, k, T1)
        sel = np.concatenate([~eq.any(-1)[..., None], eq], axis=-1)
        return Routing(sel=bos_row(sel))

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"mean_{x}_at_match_{q_name}_{k_name}"

    def describe_sum(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"sum_{x}_at_match_{q_name}_{k_name}"

    def label(self, params: dict, q: str, k: str) -> str:
        return f"match_all(q={q}, k={k})"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        return [q, k, v, *bos_kw]
