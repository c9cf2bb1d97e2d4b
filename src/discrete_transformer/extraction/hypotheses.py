"""Attention heads characterised by hypothesis testing (DESIGN §4.2).

A hardened head is recorded on held-out sequences: its attention pattern `A[n, i, j]` over
positions 0..T (0 is the BOS slot, 1..T the sequence; sequence index = position − 1), its query,
key and value variables `q, k, v` per position and its output `out[n, i] = Σ_j A[n, i, j]·v[n, j]`
(forced to 0 at BOS). This module tests a library of routing patterns (:mod:`.patterns`) against
that record, simplest first, and accepts the first one whose agreement with the observed output
is at least `threshold` (99.5 %) *with confidence*: the one-sided Clopper–Pearson lower bound on
the agreement must clear the threshold.

Every hypothesis predicts where each query attends from q/k values and positions only — never
from v. Its predicted output is `Σ_j P[n, i, j]·v[n, j]`; "agreement" is the fraction of query
rows (BOS rows excluded) whose predicted output equals the observed one, i.e. routing agrees
where it matters. `pattern_agreement` (the predicted row equals the observed row) is reported
beside it. The `lookup` fallback (small discrete domains only) is fitted on the first half of
the sequences and scored on the second half.

The pattern library itself — construction, routing, names and program helpers — lives in
:mod:`.patterns` and is re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .patterns import (
    AGGREGATES,
    HELPER_NAMES,
    LOOKUP_MAX_VALUES,
    NAMES,
    PATTERN_ATOL,
    TIES,
    Hypothesis,
    Observed,
    averages,
    default_library,
    describe,
    fit_table,
    fitted_hypotheses,
    helper_sources,
    hypothesis_reads,
    make_hypothesis,
    numpy_call,
    numpy_helper,
    pattern_label,
    python_call,
    python_helper,
    route,
    with_aggregate,
)

__all__ = [
    "AGGREGATES",
    "HELPER_NAMES",
    "LOOKUP_MAX_VALUES",
    "NAMES",
    "PATTERN_ATOL",
    "TIES",
    "Hypothesis",
    "TestResult",
    "averages",
    "clopper_pearson_lower",
    "default_library",
    "describe",
    "fit_lookup",
    "helper_sources",
    "hypothesis_reads",
    "make_hypothesis",
    "numpy_call",
    "numpy_helper",
    "pattern_label",
    "python_call",
    "python_helper",
    "regularized_beta",
    "test_head",
    "with_aggregate",
]


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


def fit_lookup(A: np.ndarray, q: np.ndarray) -> Hypothesis:
    """Fit the lookup table (q_i, i) → offset d on recorded rows: each key gets the most common
    offset of the observed row's argmax (BOS → "bos"); the overall most common offset is the
    default for keys never seen."""
    table, default = fit_table(A, q)
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
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
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
    fit: bool | None = None,
) -> tuple[TestResult | None, list[TestResult]]:
    """Test a recorded head against `library` (default: `default_library(T1)`) simplest first.
    Returns (the first accepted result or None, every result tried). Testing stops at the first
    accepted hypothesis unless `exhaustive`. A lookup entry with no table is fitted on the first
    half of the sequences and scored on the second half; it is skipped unless q and k take at
    most `LOOKUP_MAX_VALUES` distinct values on the sequence positions. `aggregate="sum"`: the
    head sums its selected values (`out = Σ_j [A_ij > 0]·v_j`); averaging hypotheses are then
    tested in their summing form. With `fit` (default: when `library` is the default one), each
    pattern's data-fitted hypotheses (`Pattern.fitted`, e.g. a learned BOS key) follow that
    pattern's last library entry; an explicit library is tested as given."""
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
    fit = library is None if fit is None else fit
    obs = Observed.of(A)
    results: list[TestResult] = []
    accepted: TestResult | None = None
    discrete: bool | None = None
    for h in _candidates(lib, obs, q, k, T1) if fit else lib:
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
            h,
            obs.rows(rows),
            q[rows],
            k[rows],
            v[rows],
            out[rows],
            threshold,
            confidence,
            atol,
            rtol,
        )
        results.append(r)
        if r.accepted and accepted is None:
            accepted = r
            if not exhaustive:
                break
    return accepted, results


test_head.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _candidates(lib: list[Hypothesis], obs: Observed, q: np.ndarray, k: np.ndarray, T1: int) -> Iterator[Hypothesis]:
    """`lib` in order, each pattern's fitted hypotheses (not already in `lib`) right after its
    last entry; fitted lazily, so an earlier acceptance costs no fitting."""
    last = {h.name: i for i, h in enumerate(lib)}
    for i, h in enumerate(lib):
        yield h
        if last[h.name] == i:
            yield from (f for f in fitted_hypotheses(h.name, obs, q, k, T1) if f not in lib)


def _evaluate(
    h: Hypothesis,
    obs: Observed,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    threshold: float,
    confidence: float,
    atol: float,
    rtol: float,
) -> TestResult:
    T1 = q.shape[1]
    routing = route(h, q, k, T1)
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
