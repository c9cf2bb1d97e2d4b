"""The library of attention routing patterns (DESIGN §4.2), one class per pattern family.

Every pattern predicts where each query attends from q/k values and positions only — never from
v — over positions 0..T (0 is the BOS slot, 1..T the sequence; sequence index = position − 1).
The library, simplest first (`default_library`):

1. `self`, `shift(c)`, `first`                          — :mod:`.positional`
2. `prefix_mean`, `window_mean(c)`, `lag_window_mean(lo, hi)` — :mod:`.windows`
3. `prefix_argmax` / `prefix_argmin(tie, include_bos)`  — :mod:`.argext` (then, fitted on the
   data, with a BOS key `k_bos` between key values: `Pattern.fitted`)
4. `match(tie)`, `match_all`                            — :mod:`.match`
5. `at_index(c)` (then, fitted on the data, its offset c) — :mod:`.index`
6. `lookup(table, default)`                             — :mod:`.lookup`

For program synthesis each pattern also has: `describe` (a variable name such as `prev1_x`),
a standard-library helper operating on lists (`python_helper`, called via `python_call`) and a
NumPy batch helper operating on `(n, T)` arrays along axis 1 (`numpy_helper`, `numpy_call`).
The helpers work on the *sequence* (index 0..T−1, no BOS slot): reading "before the start" yields
`bos`, the value v takes at the BOS slot (0 for every variable except `pos`, which is −1), and a
competing BOS key has value `k_bos`.

A new pattern is one :class:`~.base.Pattern` subclass registered in :mod:`.library`; the names
its helpers take (`HELPER_NAMES`) are reserved in generated programs automatically.
"""

from __future__ import annotations

from .base import AGGREGATES, PATTERNS, TIES, Hypothesis, Pattern, pattern_of, route
from .library import (
    HELPER_NAMES,
    NAMES,
    averages,
    default_library,
    describe,
    fitted_hypotheses,
    helper_sources,
    hypothesis_reads,
    make_hypothesis,
    numpy_call,
    numpy_helper,
    pattern_label,
    python_call,
    python_helper,
    with_aggregate,
)
from .lookup import LOOKUP_MAX_VALUES, fit_table
from .routing import PATTERN_ATOL, Observed, Routing

__all__ = [
    "AGGREGATES",
    "HELPER_NAMES",
    "LOOKUP_MAX_VALUES",
    "NAMES",
    "PATTERNS",
    "PATTERN_ATOL",
    "TIES",
    "Hypothesis",
    "Observed",
    "Pattern",
    "Routing",
    "averages",
    "default_library",
    "describe",
    "fit_table",
    "fitted_hypotheses",
    "helper_sources",
    "hypothesis_reads",
    "make_hypothesis",
    "numpy_call",
    "numpy_helper",
    "pattern_label",
    "pattern_of",
    "python_call",
    "python_helper",
    "route",
    "with_aggregate",
]
