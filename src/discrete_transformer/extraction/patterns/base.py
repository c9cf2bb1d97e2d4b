"""The routing-pattern interface, the hypothesis value type and the registry that links them.

A :class:`Pattern` is one kind of attention routing (`shift`, `window_mean`, …) and holds
everything about it in one place: its parameters and their validation (`canonical`), its
entries in the default library (`library`), the pattern it predicts from q, k and positions
(`route`), its variable name (`describe`), its label in program comments (`label`), which of
q, k, v it reads (`reads`), and its standard-library and NumPy helpers (`helper`,
`python_source`, `numpy_source`, `call_args`). A :class:`Hypothesis` is one pattern with its
parameters; the registry (:data:`PATTERNS`, filled by :mod:`.library`) maps its name to the
pattern.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...config import TIE_RULES
from .routing import Observed, Routing

__all__ = [
    "AGGREGATES",
    "PATTERNS",
    "TIES",
    "Hypothesis",
    "Pattern",
    "literal",
    "need",
    "pattern_of",
    "register",
    "route",
    "simplest_between",
]

TIES = TIE_RULES  # the model's tie rules, which the hypotheses read back
AGGREGATES = ("mean", "sum")


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
        return route(self, q_arr, k_arr, T1).dense(n, T1)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k not in ("table",))
        if "table" in self.params:
            args = ", ".join(filter(None, [args, f"table[{len(self.params['table'])}]"]))
        return f"{self.name}({args})"


class Pattern(ABC):
    """One kind of routing pattern. Subclasses set `name` and `helper` (the standard-library
    helper's function name; the NumPy one is `np_` + helper) and the two helper sources, and
    implement `route` and `describe`; the defaults suit a pattern without parameters that reads
    only v and attends to one key per query."""

    name: str = ""
    helper: str = ""
    python_source: str = ""
    numpy_source: str = ""
    reads: frozenset[str] = frozenset({"v"})  # which of q, k, v the pattern uses

    # ------------------------------------------------------------------ parameters

    def canonical(self, params: dict) -> tuple[dict, str]:
        """(the validated, canonical parameters, a human description) from raw `params`."""
        return {}, ""

    def library(self, T1: int) -> list[tuple[str, dict]]:
        """(name, params) of this pattern's entries in the default library for `T1` positions,
        simplest first."""
        return [(self.name, {})]

    def averages(self, params: dict) -> bool:
        """True when the pattern may attend to several keys at once (so mean and sum differ)."""
        return False

    def fitted(self, obs: Observed, q: np.ndarray, k: np.ndarray, T1: int) -> list[dict]:
        """Parameter sets read off the observed patterns `obs` and q, k (n, T1), tested after
        this pattern's library entries: for a parameter no fixed list can hold (a learned BOS
        key). None by default."""
        return []

    # ------------------------------------------------------------------ routing

    @abstractmethod
    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        """The predicted pattern of `h` for q, k of shape (n, T1) (None when unused)."""

    # ------------------------------------------------------------------ naming

    @abstractmethod
    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        """A short variable name for the routed value `x`, e.g. `prev1_x`."""

    def describe_sum(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        """The variable name when the selected values are summed (agg="sum")."""
        return self.describe(params, q_name, k_name, x)

    def label(self, params: dict, q: str, k: str) -> str:
        """A compact label for program comments, e.g. `shift(1)`."""
        return self.name

    # ------------------------------------------------------------------ helpers

    @property
    def numpy_helper(self) -> str:
        return f"np_{self.helper}"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        """The helper call's arguments; `bos_kw` is `["bos=…"]` when v's BOS value is not 0,
        `k_bos` k's value at the BOS slot."""
        return [v]


PATTERNS: dict[str, Pattern] = {}  # name -> pattern, in library order (filled by `register`)


def register(*patterns: Pattern) -> None:
    """Add patterns to the registry (in library order)."""
    for p in patterns:
        if p.name in PATTERNS:
            raise ValueError(f"pattern {p.name!r} registered twice")
        PATTERNS[p.name] = p


def pattern_of(name: str) -> Pattern:
    """The registered pattern called `name`."""
    try:
        return PATTERNS[name]
    except KeyError:
        raise ValueError(f"unknown hypothesis {name!r}") from None


def route(h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
    """The compact predicted pattern of `h` (q, k float arrays (n, T1) or None)."""
    return pattern_of(h.name).route(h, q, k, T1)


def need(arr: np.ndarray | None, what: str, h: Hypothesis) -> np.ndarray:
    """`arr`, which `h` needs (the `what` values)."""
    if arr is None:
        raise ValueError(f"hypothesis {h} needs the {what} values")
    return arr


def simplest_between(lo: float, hi: float) -> float | None:
    """The simplest number strictly inside (lo, hi): the integer nearest 0, else the half-integer
    nearest 0, else the midpoint with as few significant digits as stay inside; None if empty."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        return None
    for step in (1.0, 0.5):
        a, b = math.floor(lo / step) + 1, math.ceil(hi / step) - 1  # multiples of step strictly inside
        if a <= b:
            return float(min(max(0, a), b) * step)
    mid = 0.5 * (lo + hi)
    for digits in range(1, 18):
        x = float(f"{mid:.{digits}g}")
        if lo < x < hi:
            return x
    return mid


def literal(x: Any) -> str:
    """A number (or string) as a Python literal: integral floats without `.0`."""
    if isinstance(x, str):
        return repr(x)
    f = float(x)
    return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)
