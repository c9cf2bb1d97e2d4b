"""Attention heads characterised by hypothesis testing (DESIGN §4.2).

A hardened head is recorded on held-out sequences: its attention pattern `A[n, i, j]` over
positions 0..T (0 is the BOS slot, 1..T the sequence; sequence index = position − 1), its query,
key and value variables `q, k, v` per position and its output `out[n, i] = Σ_j A[n, i, j]·v[n, j]`
(forced to 0 at BOS). This module tests a library of routing patterns against that record,
simplest first, and accepts the first one whose agreement with the observed output is at least
`threshold` (99.5 %) *with confidence*: the one-sided Clopper–Pearson lower bound on the agreement
must clear the threshold.

Every hypothesis predicts where each query attends from q/k values and positions only — never
from v. Its predicted output is `Σ_j P[n, i, j]·v[n, j]`; "agreement" is the fraction of query
rows (BOS rows excluded) whose predicted output equals the observed one, i.e. routing agrees
where it matters. `pattern_agreement` (the predicted row equals the observed row) is reported
beside it.

The library, simplest first (`default_library`):

1. `self`                     — attend to i.
2. `shift(c)`                 — attend to i − c; BOS (reads 0) before the start. c = 1..T−1.
3. `first`                    — attend to the first sequence position.
4. `prefix_mean(include_bos)` — uniform over positions 1..i; with `include_bos` the BOS slot
   is one more key (reads 0), i.e. sum / (i + 2) for sequence index i.
5. `window_mean(c, include_bos)` — uniform over sequence indices max(0, i−c)..i. With
   `include_bos`, a window that reaches back past the start (i − c < 0) also contains the BOS
   slot as *one* more key reading 0 — the model-native rule: BOS carries `pos = −1`, so a
   window over pos values [i−c, i] contains it exactly when i − c ≤ −1, and a hardened head
   averages uniformly over the keys in its window. c = 1..T−1.
6. `lag_window_mean(lo, hi, include_bos)` — uniform over the *lagged* window of sequence
   indices max(0, i−hi)..i−lo (i itself excluded), 1 ≤ lo < hi ≤ T−1 (lo = hi is `shift`). The
   start rule is `window_mean`'s: with `include_bos`, a window reaching back past the start
   (i − hi < 0) also contains the BOS slot as one more key reading 0; a window entirely before
   the start (i − lo < 0) reads BOS alone (0) in both variants.
7. `prefix_argmax` / `prefix_argmin(tie, include_bos)` — the largest (smallest) k over
   positions 1..i (with `include_bos`: 0..i, BOS competing with its own k value); ties
   "average" (uniform over all tied keys: the model's native semantics), "latest", "earliest".
8. `match(tie)` — the most recent ("latest") or first ("earliest") j ≤ i with k_j == q_i
   (equal up to float rounding: |k_j − q_i| ≤ 1e-9·max(1, |q_i|));
   `match_all` — uniform over all such j. BOS (reads 0) when there is none.
9. `lookup(table, default)` — fallback for small discrete domains (≤ 16 distinct q and k
   values): a table (q_i, i) → relative offset d (attend to i − d) or "bos", fitted on the first
   half of the sequences and scored on the second half only.

For program synthesis each hypothesis also has: `describe` (a variable name such as `prev1_x`),
a standard-library helper operating on lists (`python_helper`, called via `python_call`) and a
NumPy batch helper operating on `(n, T)` arrays along axis 1 (`numpy_helper`, `numpy_call`).
The helpers work on the *sequence* (index 0..T−1, no BOS slot): reading "before the start" yields
`bos`, the value v takes at the BOS slot (0 for every variable except `pos`, which is −1), and a
competing BOS key has value `k_bos`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "Hypothesis",
    "TestResult",
    "TIES",
    "PATTERN_ATOL",
    "LOOKUP_MAX_VALUES",
    "make_hypothesis",
    "with_aggregate",
    "averages",
    "AGGREGATES",
    "default_library",
    "fit_lookup",
    "test_head",
    "clopper_pearson_lower",
    "regularized_beta",
    "describe",
    "python_helper",
    "python_call",
    "numpy_helper",
    "numpy_call",
    "helper_sources",
]

TIES = ("average", "latest", "earliest")
PATTERN_ATOL = 1e-6  # a predicted attention row "equals" the observed one within this max abs diff
LOOKUP_MAX_VALUES = 16  # the lookup fallback is tried only for q, k with at most this many values

NAMES = (
    "self", "shift", "first", "prefix_mean", "window_mean", "lag_window_mean", "prefix_argmax",
    "prefix_argmin", "match", "match_all", "lookup",
)


# ============================================================================ data classes


@dataclass(frozen=True)
class Hypothesis:
    """One routing pattern. `params` is JSON-serialisable; `description` is human text."""

    name: str
    params: dict = field(default_factory=dict)
    description: str = ""

    def pattern(self, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> np.ndarray:
        """The predicted attention pattern `(n, T1, T1)` for query/key values `q, k` of shape
        `(n, T1)` (position-only hypotheses accept `None` and return `n = 1`). Row 0 (BOS)
        is `[1, 0, …]`; every row sums to 1."""
        q_arr = None if q is None else np.asarray(q, dtype=np.float64)
        k_arr = None if k is None else np.asarray(k, dtype=np.float64)
        n = next((a.shape[0] for a in (q_arr, k_arr) if a is not None), 1)
        return _route(self, q_arr, k_arr, T1).dense(n, T1)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k not in ("table",))
        if "table" in self.params:
            args = ", ".join(filter(None, [args, f"table[{len(self.params['table'])}]"]))
        return f"{self.name}({args})"


@dataclass(frozen=True)
class TestResult:
    """The verdict on one hypothesis for one head."""

    __test__ = False  # not a pytest test class, despite the name

    hypothesis: Hypothesis
    n_queries: int  # query rows tested (BOS rows excluded)
    agreement: float  # fraction of rows whose predicted output equals the observed output
    pattern_agreement: float  # fraction of rows whose predicted attention row equals the observed
    lower_bound: float  # one-sided Clopper–Pearson lower bound on `agreement` at `confidence`
    accepted: bool  # lower_bound >= threshold


# ============================================================================ construction


def make_hypothesis(name: str, **params: Any) -> Hypothesis:
    """A library hypothesis with its canonical parameters and description."""
    if name not in NAMES:
        raise ValueError(f"unknown hypothesis {name!r}; known: {', '.join(NAMES)}")
    p = dict(params)
    if name == "shift":
        c = int(p["c"])
        if c < 1:
            raise ValueError(f"shift needs c >= 1, got {c}")
        p = {"c": c}
        text = f"v[i-{c}] (0 before the start)"
    elif name == "self":
        p, text = {}, "v[i]"
    elif name == "first":
        p, text = {}, "v[0] (the first element)"
    elif name == "prefix_mean":
        ib = bool(p.get("include_bos", False))
        p = {"include_bos": ib}
        text = "sum(v[0..i]) / (i+2) (BOS counts as one more 0)" if ib else "mean(v[0..i])"
    elif name == "window_mean":
        c, ib = int(p["c"]), bool(p.get("include_bos", False))
        if c < 1:
            raise ValueError(f"window_mean needs c >= 1, got {c}")
        p = {"c": c, "include_bos": ib}
        text = (
            f"mean(v[i-{c}..i]), a window past the start also averaging in one 0 (BOS)"
            if ib
            else f"mean(v[max(0, i-{c})..i])"
        )
    elif name == "lag_window_mean":
        lo, hi, ib = int(p["lo"]), int(p["hi"]), bool(p.get("include_bos", False))
        if not 1 <= lo < hi:
            raise ValueError(f"lag_window_mean needs 1 <= lo < hi, got lo={lo}, hi={hi}")
        p = {"lo": lo, "hi": hi, "include_bos": ib}
        text = (
            f"mean(v[i-{hi}..i-{lo}]), a window past the start also averaging in one 0 (BOS); "
            "0 when the whole window is before the start"
            if ib
            else f"mean(v[max(0, i-{hi})..i-{lo}]) (0 when the whole window is before the start)"
        )
    elif name in ("prefix_argmax", "prefix_argmin"):
        tie, ib = str(p.get("tie", "average")), bool(p.get("include_bos", False))
        if tie not in TIES:
            raise ValueError(f"{name} tie must be one of {TIES}, got {tie!r}")
        p = {"tie": tie, "include_bos": ib}
        word = "largest" if name == "prefix_argmax" else "smallest"
        where = "k over BOS and k[0..i] (BOS reads 0)" if ib else "k[0..i]"
        text = f"v at the {word} {where}, ties: {tie}"
    elif name == "match":
        tie = str(p.get("tie", "latest"))
        if tie not in ("latest", "earliest"):
            raise ValueError(f"match tie must be 'latest' or 'earliest', got {tie!r}")
        p = {"tie": tie}
        which = "most recent" if tie == "latest" else "first"
        text = f"v[j] for the {which} j <= i with k[j] == q[i] (0 if none)"
    elif name == "match_all":
        p, text = {}, "mean of v[j] over all j <= i with k[j] == q[i] (0 if none)"
    else:  # lookup
        table = [[float(qv), int(i), _offset(d)] for qv, i, d in p.get("table", [])]
        p = {"table": table, "default": _offset(p.get("default", "bos"))}
        text = (
            f"v[i-d] with d looked up from (q[i], i) ({len(table)} entries, "
            f"default {p['default']!r}; 'bos' reads 0)"
        )
    agg = str(params.get("agg", "mean"))
    if agg not in AGGREGATES:
        raise ValueError(f"agg must be one of {AGGREGATES}, got {agg!r}")
    if agg == "sum" and averages(Hypothesis(name, p)):
        # a head that sums its selected values (ModelConfig.attention_sum); on a one-key pattern
        # the sum is the mean, so only averaging patterns carry the parameter
        p = {**p, "agg": "sum"}
        text = f"{text}; the SUM over the selected positions instead of their mean"
    return Hypothesis(name, p, text)


AGGREGATES = ("mean", "sum")


def averages(h: Hypothesis) -> bool:
    """True when the pattern may attend to several keys at once (so mean and sum differ)."""
    if h.name in ("prefix_mean", "window_mean", "lag_window_mean", "match_all"):
        return True
    return h.name in ("prefix_argmax", "prefix_argmin") and h.params.get("tie") == "average"


def with_aggregate(h: Hypothesis, agg: str) -> Hypothesis:
    """`h` aggregating its selected values by `agg` ("mean" or "sum")."""
    if agg == h.params.get("agg", "mean") or not averages(h):
        return h
    params = {k: v for k, v in h.params.items() if k != "agg"}
    return make_hypothesis(h.name, **params, agg=agg)


def _offset(d: Any) -> int | str:
    if d == "bos" or d is None:
        return "bos"
    d = int(d)
    if d < 0:
        raise ValueError(f"lookup offsets must be >= 0 (causal) or 'bos', got {d}")
    return d


def default_library(T1: int, lookup: bool = True) -> list[Hypothesis]:
    """The library for heads over `T1` positions (BOS + T), simplest first. The lookup entry is
    a placeholder (empty table) that `test_head` fits on the data."""
    T = T1 - 1
    H = make_hypothesis
    lib = [H("self")]
    lib += [H("shift", c=c) for c in range(1, T)]
    lib += [H("first")]
    lib += [H("prefix_mean", include_bos=ib) for ib in (False, True)]
    lib += [H("window_mean", c=c, include_bos=ib) for c in range(1, T) for ib in (False, True)]
    lib += [
        H("lag_window_mean", lo=lo, hi=hi, include_bos=ib)
        for hi in range(2, T)
        for lo in range(1, hi)
        for ib in (False, True)
    ]
    for name in ("prefix_argmax", "prefix_argmin"):
        lib += [H(name, tie=t, include_bos=ib) for ib in (False, True) for t in TIES]
    lib += [H("match", tie="latest"), H("match_all"), H("match", tie="earliest")]
    if lookup:
        lib += [H("lookup")]
    return lib


# ============================================================================ routing


@dataclass
class _Routing:
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

    def matches(self, obs: "_Observed") -> np.ndarray:
        """(n, T1) bool: predicted row == observed row (max abs diff <= PATTERN_ATOL)."""
        if self.target is not None:
            one = np.abs(obs.vmax - 1.0) <= PATTERN_ATOL
            return (obs.count == 1) & (obs.top == self.target) & one
        w = 1.0 / self.sel.sum(-1)
        same = obs.packed == _pack(self.sel)
        return (
            (same[..., 0] if same.shape[-1] == 1 else same.all(-1))
            & (obs.vmax - w <= PATTERN_ATOL)
            & (w - obs.vmin <= PATTERN_ATOL)
        )


@dataclass
class _Observed:
    """Per-row summary of an observed pattern, enough to compare it with any `_Routing` row
    exactly (predicted weights are all >= 1/T1 >> 2·PATTERN_ATOL)."""

    packed: np.ndarray  # (n, T1, W) uint64: bits of the support |A| > PATTERN_ATOL
    count: np.ndarray  # (n, T1) support size
    top: np.ndarray  # (n, T1) argmax |A|
    vmax: np.ndarray  # (n, T1) max of A over the support (-inf if empty)
    vmin: np.ndarray  # (n, T1) min of A over the support (+inf if empty)

    @classmethod
    def of(cls, A: np.ndarray, chunk: int = 4096) -> "_Observed":
        parts = []
        for s in range(0, A.shape[0], chunk):
            a = A[s : s + chunk]
            absa = np.abs(a)
            supp = absa > PATTERN_ATOL
            parts.append((
                _pack(supp),
                supp.sum(-1),
                absa.argmax(-1),
                np.where(supp, a, -np.inf).max(-1),
                np.where(supp, a, np.inf).min(-1),
            ))
        return cls(*(np.concatenate(col) for col in zip(*parts)))

    def rows(self, sl: slice) -> "_Observed":
        return _Observed(
            self.packed[sl], self.count[sl], self.top[sl], self.vmax[sl], self.vmin[sl]
        )


def _pack(mask: np.ndarray) -> np.ndarray:
    """Bool (..., T1) → (..., W) uint64 words, W = ceil(T1 / 64): rows compare as W integers."""
    T1 = mask.shape[-1]
    W = -(-T1 // 64)
    padded = np.zeros(mask.shape[:-1] + (W * 64,), dtype=bool)
    padded[..., :T1] = mask
    return np.packbits(padded, axis=-1).view(np.uint64)


def _causal(T1: int) -> np.ndarray:
    return np.tril(np.ones((T1, T1), dtype=bool))


def _bos_row(sel: np.ndarray) -> np.ndarray:
    sel[..., 0, :] = False
    sel[..., 0, 0] = True
    return sel


def _need(arr: np.ndarray | None, what: str, h: Hypothesis) -> np.ndarray:
    if arr is None:
        raise ValueError(f"hypothesis {h} needs the {what} values")
    return arr


def _route(h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> _Routing:
    p = np.arange(T1)
    name, prm = h.name, h.params
    if name == "self":
        return _Routing(target=p[None].copy())
    if name == "shift":
        t = p - prm["c"]
        t[t < 1] = 0
        return _Routing(target=t[None])
    if name == "first":
        t = np.ones(T1, dtype=np.int64)
        t[0] = 0
        return _Routing(target=t[None])
    if name == "prefix_mean":
        sel = _causal(T1)
        if not prm["include_bos"]:
            sel[:, 0] = False
        return _Routing(sel=_bos_row(sel)[None])
    if name == "window_mean":
        c = prm["c"]
        j = p[None, :]
        sel = (j <= p[:, None]) & (j >= p[:, None] - c) & (j >= 1)
        if prm["include_bos"]:
            sel[:, 0] = p - c <= 0  # the window over pos values reaches BOS's pos = -1
        return _Routing(sel=_bos_row(sel)[None])
    if name == "lag_window_mean":
        lo, hi = prm["lo"], prm["hi"]
        j = p[None, :]
        sel = (j <= p[:, None] - lo) & (j >= p[:, None] - hi) & (j >= 1)
        empty = ~sel.any(-1)  # the whole window is before the start: BOS alone
        sel[:, 0] = empty | (prm["include_bos"] & (p - hi <= 0))  # as window_mean's BOS rule
        return _Routing(sel=_bos_row(sel)[None])
    if name in ("prefix_argmax", "prefix_argmin"):
        return _route_argext(h, _need(k, "key", h), T1)
    if name in ("match", "match_all"):
        q, k = _need(q, "query", h), _need(k, "key", h)
        # equal up to float rounding (a key computed as a mean, 2/3·3, may miss an integer query by 1 ulp)
        close = np.abs(k[:, None, 1:] - q[:, :, None]) <= 1e-9 * np.maximum(1.0, np.abs(q[:, :, None]))
        eq = close & _causal(T1)[None, :, 1:]  # (n, T1, T): keys 1..T
        hit = eq.any(-1)
        if name == "match_all":
            sel = np.concatenate([~hit[..., None], eq], axis=-1)
            return _Routing(sel=_bos_row(sel))
        if prm["tie"] == "latest":
            j = (T1 - 1) - eq[..., ::-1].argmax(-1)
        else:
            j = eq.argmax(-1) + 1
        t = np.where(hit, j, 0)
        t[:, 0] = 0
        return _Routing(target=t)
    if name == "lookup":
        return _route_lookup(h, _need(q, "query", h), T1)
    raise ValueError(f"unknown hypothesis {h.name!r}")


def _route_argext(h: Hypothesis, k: np.ndarray, T1: int) -> _Routing:
    kk = k if h.name == "prefix_argmax" else -k
    lo = 0 if h.params["include_bos"] else 1
    tie = h.params["tie"]
    n = kk.shape[0]
    if tie == "average":
        cm = np.full((n, T1), np.inf)
        cm[:, lo:] = np.maximum.accumulate(kk[:, lo:], axis=1)
        sel = (kk[:, None, :] == cm[:, :, None]) & _causal(T1)[None]
        sel[:, :, :lo] = False
        return _Routing(sel=_bos_row(sel))
    t = np.zeros((n, T1), dtype=np.int64)
    if lo < T1:
        best = kk[:, lo].copy()
        idx = np.full(n, lo, dtype=np.int64)
        t[:, lo] = lo
        for pos in range(lo + 1, T1):
            x = kk[:, pos]
            upd = x >= best if tie == "latest" else x > best
            best = np.where(upd, x, best)
            idx = np.where(upd, pos, idx)
            t[:, pos] = idx
    t[:, 0] = 0
    return _Routing(target=t)


def _route_lookup(h: Hypothesis, q: np.ndarray, T1: int) -> _Routing:
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
    return _Routing(target=t)


def fit_lookup(A: np.ndarray, q: np.ndarray) -> Hypothesis:
    """Fit the lookup table (q_i, i) → offset d on recorded rows: each key gets the most common
    offset of the observed row's argmax (BOS → "bos"); the overall most common offset is the
    default for keys never seen."""
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
    as_d = lambda c: "bos" if c == T1 else int(c)  # noqa: E731
    table = [[float(uq[kk // T]), int(kk % T), as_d(best[kk])] for kk in seen]
    default = as_d(np.bincount(dcode.ravel(), minlength=T1 + 1).argmax())
    return make_hypothesis("lookup", table=table, default=default)


# ============================================================================ statistics


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


@lru_cache(maxsize=4096)
def clopper_pearson_lower(successes: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper–Pearson lower confidence bound on a success probability after
    `successes` of `n` trials: the p with P(X >= successes | n, p) = 1 − confidence, i.e. the
    (1 − confidence) quantile of Beta(successes, n − successes + 1). 0 when successes == 0."""
    successes, n = int(successes), int(n)
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    if successes == 0:
        return 0.0
    if successes == n:
        return alpha ** (1.0 / n)
    a, b = float(successes), float(n - successes + 1)
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    # Safeguarded Newton on f(p) = I_p(a, b) − alpha, increasing in p, with f' the Beta density.
    # The root lies below the point estimate successes / n (where f > 0 for alpha < 1/2).
    lo, hi = 0.0, 1.0
    p = successes / n
    for _ in range(200):
        f = regularized_beta(a, b, p) - alpha
        if f < 0:
            lo = p
        else:
            hi = p
        if f == 0.0 or hi - lo <= 1e-15 * max(1.0, hi):
            break
        dens = math.exp(log_norm + (a - 1.0) * math.log(p) + (b - 1.0) * math.log1p(-p))
        step = p - f / dens if dens > 0 else lo - 1.0
        if not lo < step < hi:
            step = 0.5 * (lo + hi)
        if abs(step - p) <= 1e-15 * p:
            p = step
            break
        p = step
    return p


# ============================================================================ testing


def _as_2d(name: str, a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (n, T1), got {arr.shape}")
    return arr


def _distinct_at_most(a: np.ndarray, m: int) -> bool:
    return np.unique(a).size <= m


def test_head(
    A: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    threshold: float = 0.995,
    confidence: float = 0.95,
    atol: float = 1e-6,
    rtol: float = 1e-6,
    library: Sequence[Hypothesis] | None = None,
    exhaustive: bool = False,
    aggregate: str = "mean",
) -> tuple[TestResult | None, list[TestResult]]:
    """Test a recorded head against `library` (default: `default_library(T1)`) simplest first.
    Returns (the first accepted result or None, every result tried). Testing stops at the first
    accepted hypothesis unless `exhaustive`. A lookup entry with no table is fitted on the first
    half of the sequences and scored on the second half; it is skipped unless q and k take at
    most `LOOKUP_MAX_VALUES` distinct values on the sequence positions. `aggregate="sum"`: the
    head sums its selected values (`out = Σ_j [A_ij > 0]·v_j`); averaging hypotheses are then
    tested in their summing form."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"A must have shape (n, T1, T1), got {A.shape}")
    n, T1 = A.shape[:2]
    if T1 < 2 or n < 1:
        raise ValueError(f"need at least one sequence and one position, got A {A.shape}")
    named = (("q", q), ("k", k), ("v", v), ("out", out))
    q, k, v, out = (_as_2d(nm, a, (n, T1)) for nm, a in named)
    lib = default_library(T1) if library is None else list(library)
    obs = _Observed.of(A)
    results: list[TestResult] = []
    accepted: TestResult | None = None
    discrete: bool | None = None
    for h in lib:
        rows = slice(None)
        if h.name == "lookup" and not h.params.get("table"):
            if discrete is None:
                discrete = _distinct_at_most(q[:, 1:], LOOKUP_MAX_VALUES) and _distinct_at_most(
                    k[:, 1:], LOOKUP_MAX_VALUES
                )
            if not discrete or n < 2:
                continue
            split = n // 2
            h = fit_lookup(A[:split], q[:split])
            rows = slice(split, None)
        h = with_aggregate(h, aggregate)
        r = _evaluate(
            h, obs.rows(rows), q[rows], k[rows], v[rows], out[rows],
            threshold, confidence, atol, rtol,
        )
        results.append(r)
        if r.accepted and accepted is None:
            accepted = r
            if not exhaustive:
                break
    return accepted, results


test_head.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _evaluate(
    h: Hypothesis,
    obs: _Observed,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    threshold: float,
    confidence: float,
    atol: float,
    rtol: float,
) -> TestResult:
    n, T1 = q.shape
    routing = _route(h, q, k, T1)
    pred = routing.output(v, h.params.get("agg", "mean"))
    ok = np.abs(pred[:, 1:] - out[:, 1:]) <= atol + rtol * np.abs(out[:, 1:])
    same = routing.matches(obs)[:, 1:]
    m = ok.size
    good = int(ok.sum())
    lb = clopper_pearson_lower(good, m, confidence)
    return TestResult(
        hypothesis=h,
        n_queries=m,
        agreement=good / m,
        pattern_agreement=float(same.sum()) / m,
        lower_bound=lb,
        accepted=lb >= threshold,
    )


# ============================================================================ naming


def describe(h: Hypothesis, q_name: str, k_name: str, v_name: str) -> str:
    """A short readable variable name for the head's output, e.g. `prev1_x`."""
    x, p = v_name, h.params
    if p.get("agg") == "sum":
        return _describe_sum(h, q_name, k_name, v_name)
    if h.name == "self":
        return x
    if h.name == "shift":
        return f"prev{p['c']}_{x}"
    if h.name == "first":
        return f"first_{x}"
    if h.name == "prefix_mean":
        return f"padded_prefix_mean_{x}" if p["include_bos"] else f"prefix_mean_{x}"
    if h.name == "window_mean":
        base = f"mean_last{p['c'] + 1}_{x}"
        return f"padded_{base}" if p["include_bos"] else base
    if h.name == "lag_window_mean":
        base = f"mean_lag{p['lo']}to{p['hi']}_{x}"
        return f"padded_{base}" if p["include_bos"] else base
    if h.name in ("prefix_argmax", "prefix_argmin"):
        word = "max" if h.name == "prefix_argmax" else "min"
        return f"{word}_{x}" if k_name == v_name else f"{x}_at_{word}_{k_name}"
    if h.name == "match":
        which = "match" if p["tie"] == "latest" else "first_match"
        return f"{x}_at_{which}_{q_name}_{k_name}"
    if h.name == "match_all":
        return f"mean_{x}_at_match_{q_name}_{k_name}"
    if h.name == "lookup":
        return f"lookup_{x}"
    raise ValueError(f"unknown hypothesis {h.name!r}")


def _describe_sum(h: Hypothesis, q_name: str, k_name: str, x: str) -> str:
    p = h.params
    if h.name == "prefix_mean":
        return f"padded_prefix_sum_{x}" if p["include_bos"] else f"prefix_sum_{x}"
    if h.name == "window_mean":
        return f"sum_last{p['c'] + 1}_{x}"
    if h.name == "lag_window_mean":
        return f"sum_lag{p['lo']}to{p['hi']}_{x}"
    if h.name in ("prefix_argmax", "prefix_argmin"):
        word = "max" if h.name == "prefix_argmax" else "min"
        return f"sum_{x}_at_{word}_{k_name}"
    return f"sum_{x}_at_match_{q_name}_{k_name}"  # match_all


# ============================================================================ helpers: source

_PY: dict[str, str] = {
    "identity": '''def identity(xs):
    """xs[i]: the value at the same position."""
    return list(xs)
''',
    "shift": '''def shift(xs, c, bos=0):
    """xs[i - c], or `bos` (0) before the start."""
    return [xs[i - c] if i >= c else bos for i in range(len(xs))]
''',
    "first": '''def first(xs):
    """xs[0] at every position."""
    return [xs[0] for _ in xs]
''',
    "prefix_mean": '''def prefix_mean(xs, include_bos=False, bos=0, agg="mean"):
    """Mean of xs[0..i] (agg="sum": their sum); with include_bos the start slot is one more
    value `bos` (0)."""
    out, total = [], bos if include_bos else 0
    for i, x in enumerate(xs):
        total += x
        out.append(total if agg == "sum" else total / (i + 2 if include_bos else i + 1))
    return out
''',
    "window_mean": '''def window_mean(xs, c, include_bos=False, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[i - c..i] clipped at the start; with include_bos a window
    reaching past the start also takes in one start-slot value `bos` (0)."""
    out = []
    for i in range(len(xs)):
        window = list(xs[max(0, i - c): i + 1])
        if include_bos and i - c < 0:
            window.append(bos)
        out.append(sum(window) if agg == "sum" else sum(window) / len(window))
    return out
''',
    "lag_window_mean": '''def lag_window_mean(xs, lo, hi, include_bos=False, bos=0, agg="mean"):
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
''',
    "prefix_argmax": '''def prefix_argmax(ks, xs, tie="average", include_bos=False, k_bos=0, bos=0,
                  agg="mean"):
    """xs where ks[0..i] is largest. Ties: "average" (mean, or with agg="sum" sum, over the
    tied positions), "latest" or "earliest". With include_bos the start slot competes, with key
    `k_bos` and value `bos`."""
    out = []
    for i in range(len(xs)):
        keys = ([k_bos] if include_bos else []) + list(ks[: i + 1])
        vals = ([bos] if include_bos else []) + list(xs[: i + 1])
        best = max(keys)
        hits = [x for key, x in zip(keys, vals) if key == best]
        if tie == "average":
            out.append(sum(hits) if agg == "sum" else sum(hits) / len(hits))
        else:
            out.append(hits[-1] if tie == "latest" else hits[0])
    return out
''',
    "match": '''def match(qs, ks, xs, tie="latest", bos=0):
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
''',
    "match_all": '''def match_all(qs, ks, xs, bos=0, agg="mean"):
    """Mean (agg="sum": sum) of xs[j] over every j <= i with ks[j] == qs[i]; `bos` (0) when
    there is none."""
    out = []
    for i in range(len(xs)):
        hits = [xs[j] for j in range(i + 1) if abs(ks[j] - qs[i]) <= 1e-9 * max(1.0, abs(qs[i]))]
        out.append((sum(hits) if agg == "sum" else sum(hits) / len(hits)) if hits else bos)
    return out
''',
    "lookup": '''def lookup(qs, xs, table, default="bos", bos=0):
    """Routing by table: (qs[i], i) -> offset d, read xs[i - d]; offset "bos" (or one running
    past the start) reads `bos` (0). Keys missing from the table use `default`."""
    out = []
    for i in range(len(xs)):
        d = table.get((qs[i], i), default)
        out.append(bos if d == "bos" or i - d < 0 else xs[i - d])
    return out
''',
}
_PY["prefix_argmin"] = (
    _PY["prefix_argmax"]
    .replace("prefix_argmax", "prefix_argmin")
    .replace("is largest", "is smallest")
    .replace("max(keys)", "min(keys)")
)

_NP: dict[str, str] = {
    "identity": '''def np_identity(xs):
    """xs[:, i]: the value at the same position."""
    import numpy as np
    return np.array(xs, dtype=float)
''',
    "shift": '''def np_shift(xs, c, bos=0):
    """xs[:, i - c], or `bos` (0) before the start."""
    import numpy as np
    xs = np.asarray(xs, dtype=float)
    out = np.full_like(xs, bos)
    if c < xs.shape[1]:
        out[:, c:] = xs[:, : xs.shape[1] - c]
    return out
''',
    "first": '''def np_first(xs):
    """xs[:, 0] at every position."""
    import numpy as np
    xs = np.asarray(xs, dtype=float)
    return np.repeat(xs[:, :1], xs.shape[1], axis=1)
''',
    "prefix_mean": '''def np_prefix_mean(xs, include_bos=False, bos=0, agg="mean"):
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
''',
    "window_mean": '''def np_window_mean(xs, c, include_bos=False, bos=0, agg="mean"):
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
''',
    "lag_window_mean": '''def np_lag_window_mean(xs, lo, hi, include_bos=False, bos=0, agg="mean"):
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
''',
    "prefix_argmax": '''def np_prefix_argmax(ks, xs, tie="average", include_bos=False, k_bos=0,
                     bos=0, agg="mean"):
    """xs where ks[:, 0..i] is largest. Ties: "average" (mean, or with agg="sum" sum, over the
    tied positions), "latest" or "earliest". With include_bos the start slot competes, with key
    `k_bos` and value `bos`."""
    import numpy as np
    ks = np.asarray(ks, dtype=float)
    xs = np.asarray(xs, dtype=float)
    n, T = xs.shape
    if include_bos:
        best = np.full(n, float(k_bos))
        total, count = np.full(n, float(bos)), np.ones(n)
        first, last = np.full(n, float(bos)), np.full(n, float(bos))
    else:
        best = np.full(n, -np.inf)
        total, count = np.zeros(n), np.zeros(n)
        first, last = np.zeros(n), np.zeros(n)
    out = np.empty((n, T))
    for i in range(T):
        k, x = ks[:, i], xs[:, i]
        new, tied = k > best, k == best
        total = np.where(new, x, np.where(tied, total + x, total))
        count = np.where(new, 1.0, np.where(tied, count + 1.0, count))
        first = np.where(new, x, first)
        last = np.where(new | tied, x, last)
        best = np.where(new, k, best)
        if tie == "average":
            out[:, i] = total if agg == "sum" else total / count
        else:
            out[:, i] = last if tie == "latest" else first
    return out
''',
    "match": '''def np_match(qs, ks, xs, tie="latest", bos=0):
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
''',
    "match_all": '''def np_match_all(qs, ks, xs, bos=0, agg="mean"):
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
''',
    "lookup": '''def np_lookup(qs, xs, table, default="bos", bos=0):
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
''',
}
_NP["prefix_argmin"] = (
    _NP["prefix_argmax"]
    .replace("prefix_argmax", "prefix_argmin")
    .replace("is largest", "is smallest")
    .replace("k > best", "k < best")
    .replace("-np.inf", "np.inf")
)


def _helper_key(h: Hypothesis) -> str:
    if h.name == "self":
        return "identity"
    if h.name not in _PY:
        raise ValueError(f"unknown hypothesis {h.name!r}")
    return h.name


def python_helper(h: Hypothesis) -> tuple[str, str]:
    """(helper function name, standard-library source) for the hypothesis; the same helper
    serves every parameter setting of one hypothesis kind."""
    key = _helper_key(h)
    return key, _PY[key]


def numpy_helper(h: Hypothesis) -> tuple[str, str]:
    """(helper function name, NumPy batch source over (n, T) arrays along axis 1)."""
    key = _helper_key(h)
    return f"np_{key}", _NP[key]


def _lit(x: Any) -> str:
    if isinstance(x, str):
        return repr(x)
    f = float(x)
    return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)


def _call(h: Hypothesis, fn: str, q: str, k: str, v: str, bos: float, k_bos: float) -> str:
    p = h.params
    bos_kw = [] if bos == 0 else [f"bos={_lit(bos)}"]
    if h.name == "self":
        args = [v]
    elif h.name == "shift":
        args = [v, str(p["c"]), *bos_kw]
    elif h.name == "first":
        args = [v]
    elif h.name == "prefix_mean":
        args = [v, *(["include_bos=True", *bos_kw] if p["include_bos"] else [])]
    elif h.name == "window_mean":
        args = [v, str(p["c"]), *(["include_bos=True", *bos_kw] if p["include_bos"] else [])]
    elif h.name == "lag_window_mean":  # reads BOS even without include_bos (empty window)
        args = [v, str(p["lo"]), str(p["hi"]), *(["include_bos=True"] if p["include_bos"] else [])]
        args += bos_kw
    elif h.name in ("prefix_argmax", "prefix_argmin"):
        args = [k, v, f"tie={p['tie']!r}".replace("'", '"')]
        if p["include_bos"]:
            args += ["include_bos=True", *([] if k_bos == 0 else [f"k_bos={_lit(k_bos)}"]), *bos_kw]
    elif h.name == "match":
        args = [q, k, v, *([] if p["tie"] == "latest" else ['tie="earliest"']), *bos_kw]
    elif h.name == "match_all":
        args = [q, k, v, *bos_kw]
    elif h.name == "lookup":
        table = ", ".join(f"({_lit(qv)}, {i}): {_lit(d)}" for qv, i, d in p["table"])
        args = [q, v, "{" + table + "}"]
        if p["default"] != "bos":
            args.append(f"default={_lit(p['default'])}")
        args += bos_kw
    else:
        raise ValueError(f"unknown hypothesis {h.name!r}")
    if p.get("agg") == "sum":
        args.append('agg="sum"')
    return f"{fn}({', '.join(args)})"


def python_call(
    h: Hypothesis, q_expr: str, k_expr: str, v_expr: str, bos: float = 0, k_bos: float = 0
) -> str:
    """The call expression of the standard-library helper, e.g. `shift(x, 2)`. `bos` is the value
    v reads at the BOS slot (0, or −1 for `pos`), `k_bos` k's value there (argmax with BOS)."""
    return _call(h, python_helper(h)[0], q_expr, k_expr, v_expr, bos, k_bos)


def numpy_call(
    h: Hypothesis, q_expr: str, k_expr: str, v_expr: str, bos: float = 0, k_bos: float = 0
) -> str:
    """The call expression of the NumPy batch helper, e.g. `np_shift(x, 2)`."""
    return _call(h, numpy_helper(h)[0], q_expr, k_expr, v_expr, bos, k_bos)


def helper_sources(hs: Iterable[Hypothesis], numpy: bool = False) -> list[str]:
    """The distinct helper sources the given hypotheses need, in first-use order."""
    seen: dict[str, str] = {}
    for h in hs:
        name, src = numpy_helper(h) if numpy else python_helper(h)
        seen.setdefault(name, src)
    return list(seen.values())
