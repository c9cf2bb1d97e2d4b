"""The registry of routing patterns in library order, and the functions that dispatch on it:
construction (`make_hypothesis`, `default_library`, `fitted_hypotheses`), naming (`describe`, `pattern_label`), what a
pattern reads, and its helpers (`python_helper` / `python_call`, `numpy_helper` / `numpy_call`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .argext import PREFIX_ARGMAX, PREFIX_ARGMIN
from .base import AGGREGATES, PATTERNS, Hypothesis, literal, pattern_of, register
from .index import Index
from .lookup import Lookup
from .match import Match, MatchAll
from .positional import First, Self, Shift
from .routing import Observed
from .windows import LagWindowMean, PrefixMean, WindowMean

__all__ = [
    "HELPER_NAMES",
    "NAMES",
    "averages",
    "default_library",
    "describe",
    "fitted_hypotheses",
    "helper_sources",
    "hypothesis_reads",
    "make_hypothesis",
    "numpy_call",
    "numpy_helper",
    "pattern_label",
    "python_call",
    "python_helper",
    "with_aggregate",
]

register(
    Self(),
    Shift(),
    First(),
    PrefixMean(),
    WindowMean(),
    LagWindowMean(),
    PREFIX_ARGMAX,
    PREFIX_ARGMIN,
    Match(),
    MatchAll(),
    Index(),
    Lookup(),
)

NAMES = tuple(PATTERNS)
# The function names of every helper a generated program may define (standard library and NumPy).
HELPER_NAMES = frozenset(n for p in PATTERNS.values() for n in (p.helper, p.numpy_helper))


# ============================================================================ construction


def make_hypothesis(name: str, **params: Any) -> Hypothesis:
    """A library hypothesis with its canonical parameters and description."""
    if name not in PATTERNS:
        raise ValueError(f"unknown hypothesis {name!r}; known: {', '.join(NAMES)}")
    p, text = PATTERNS[name].canonical(dict(params))
    agg = str(params.get("agg", "mean"))
    if agg not in AGGREGATES:
        raise ValueError(f"agg must be one of {AGGREGATES}, got {agg!r}")
    if agg == "sum" and PATTERNS[name].averages(p):
        # a head that sums its selected values (ModelConfig.attention_sum); on a one-key pattern
        # the sum is the mean, so only averaging patterns carry the parameter
        p = {**p, "agg": "sum"}
        text = f"{text}; the SUM over the selected positions instead of their mean"
    return Hypothesis(name, p, text)


def averages(h: Hypothesis) -> bool:
    """True when the pattern may attend to several keys at once (so mean and sum differ)."""
    pattern = PATTERNS.get(h.name)
    return pattern is not None and pattern.averages(h.params)


def with_aggregate(h: Hypothesis, agg: str) -> Hypothesis:
    """`h` aggregating its selected values by `agg` ("mean" or "sum")."""
    if agg == h.params.get("agg", "mean") or not averages(h):
        return h
    params = {k: v for k, v in h.params.items() if k != "agg"}
    return make_hypothesis(h.name, **params, agg=agg)


def default_library(T1: int, lookup: bool = True) -> list[Hypothesis]:
    """The library for heads over `T1` positions (BOS + T), simplest first. The lookup entry is
    a placeholder (empty table) that `test_head` fits on the data."""
    return [
        make_hypothesis(name, **params)
        for pattern in PATTERNS.values()
        for name, params in pattern.library(T1)
        if lookup or name != "lookup"
    ]


def fitted_hypotheses(name: str, obs: Observed, q: np.ndarray, k: np.ndarray, T1: int) -> list[Hypothesis]:
    """The hypotheses of pattern `name` with parameters read off the observed patterns (e.g. a
    learned BOS key), to test after that pattern's library entries."""
    return [make_hypothesis(name, **p) for p in pattern_of(name).fitted(obs, q, k, T1)]


# ============================================================================ naming


def describe(h: Hypothesis, q_name: str, k_name: str, v_name: str) -> str:
    """A short readable variable name for the head's output, e.g. `prev1_x`."""
    pattern = pattern_of(h.name)
    if h.params.get("agg") == "sum":
        return pattern.describe_sum(h.params, q_name, k_name, v_name)
    return pattern.describe(h.params, q_name, k_name, v_name)


def pattern_label(h: Hypothesis, q: str, k: str) -> str:
    """A compact label of a routing pattern, e.g. `shift(1)` or `match(q=x, k=pos, latest)`."""
    pattern = PATTERNS.get(h.name)
    return h.name if pattern is None else pattern.label(h.params, q, k)


def hypothesis_reads(h: Hypothesis) -> frozenset[str]:
    """Which of q, k, v a routing pattern uses."""
    pattern = PATTERNS.get(h.name)
    return frozenset({"v"}) if pattern is None else pattern.reads


# ============================================================================ helpers


def python_helper(h: Hypothesis) -> tuple[str, str]:
    """(helper function name, standard-library source) for the hypothesis; the same helper
    serves every parameter setting of one hypothesis kind."""
    pattern = pattern_of(h.name)
    return pattern.helper, pattern.python_source


def numpy_helper(h: Hypothesis) -> tuple[str, str]:
    """(helper function name, NumPy batch source over (n, T) arrays along axis 1)."""
    pattern = pattern_of(h.name)
    return pattern.numpy_helper, pattern.numpy_source


def _call(h: Hypothesis, fn: str, q: str, k: str, v: str, bos: float, k_bos: float) -> str:
    bos_kw = [] if bos == 0 else [f"bos={literal(bos)}"]
    args = pattern_of(h.name).call_args(h.params, q, k, v, bos_kw, k_bos)
    if h.params.get("agg") == "sum":
        args.append('agg="sum"')
    return f"{fn}({', '.join(args)})"


def python_call(h: Hypothesis, q_expr: str, k_expr: str, v_expr: str, bos: float = 0, k_bos: float = 0) -> str:
    """The call expression of the standard-library helper, e.g. `shift(x, 2)`. `bos` is the value
    v reads at the BOS slot (0, or −1 for `pos`), `k_bos` k's value there (argmax with BOS)."""
    return _call(h, python_helper(h)[0], q_expr, k_expr, v_expr, bos, k_bos)


def numpy_call(h: Hypothesis, q_expr: str, k_expr: str, v_expr: str, bos: float = 0, k_bos: float = 0) -> str:
    """The call expression of the NumPy batch helper, e.g. `np_shift(x, 2)`."""
    return _call(h, numpy_helper(h)[0], q_expr, k_expr, v_expr, bos, k_bos)


def helper_sources(hs: Iterable[Hypothesis], numpy: bool = False) -> list[str]:
    """The distinct helper sources the given hypotheses need, in first-use order."""
    seen: dict[str, str] = {}
    for h in hs:
        name, src = numpy_helper(h) if numpy else python_helper(h)
        seen.setdefault(name, src)
    return list(seen.values())
