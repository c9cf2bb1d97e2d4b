"""Attention hypothesis testing (extraction/hypotheses.py): patterns that were not planted are
rejected — neighbouring shifts and means, argmax tie rules, match variants, window BOS rules,
lagged windows, lookups — and a lookup table is fitted back."""

from __future__ import annotations

import numpy as np
import pytest
from hypotheses_helpers import LIB, T1, H, N, T, make_data, random_lookup, record

from discrete_transformer.extraction.hypotheses import TIES, Hypothesis, fit_lookup
from discrete_transformer.extraction.hypotheses import test_head as run_head


@pytest.fixture(scope="module")
def data():
    return make_data()


# ----------------------------------------------------------------------- not planted → rejected


def _results(h: Hypothesis, library: list[Hypothesis], data, **kw):
    q, k, v = data
    A = h.pattern(q, k, T1)
    return run_head(A, q, k, v, record(A, v), library=library, exhaustive=True, **kw)


def test_shift1_is_not_shift2_or_a_mean(data) -> None:
    wrong = [
        H("self"),
        H("shift", c=2),
        H("first"),
        H("prefix_mean"),
        H("prefix_mean", include_bos=True),
        H("window_mean", c=1),
    ]
    acc, results = _results(H("shift", c=1), wrong, data)
    assert acc is None
    assert len(results) == len(wrong)
    assert all(r.agreement < 0.5 and not r.accepted for r in results)


@pytest.mark.parametrize("name", ["prefix_argmax", "prefix_argmin"])
@pytest.mark.parametrize("include_bos", [False, True])
def test_argmax_tie_rules_are_distinguished(name: str, include_bos: bool, data) -> None:
    for planted in ("average", "latest", "earliest"):
        others = [H(name, tie=t, include_bos=include_bos) for t in TIES if t != planted]
        others.append(H(name, tie=planted, include_bos=not include_bos))
        acc, results = _results(H(name, tie=planted, include_bos=include_bos), others, data)
        assert acc is None, str(acc and acc.hypothesis)
        assert max(r.agreement for r in results[:2]) < 0.9  # other tie rules: far off
        assert results[2].agreement < 0.97  # BOS competing or not: early rows differ


def test_argmax_without_ties_returns_the_native_average_rule() -> None:
    """Continuous keys never tie: every tie rule explains the head; the first (average) wins."""
    q, k, v = make_data(seed=5)
    k[:, 1:] = np.random.default_rng(6).normal(size=(N, T))
    A = H("prefix_argmax", tie="latest").pattern(q, k, T1)
    acc, results = run_head(A, q, k, v, record(A, v), exhaustive=True)
    assert acc.hypothesis == H("prefix_argmax", tie="average")
    accepted = [str(r.hypothesis) for r in results if r.accepted]
    assert accepted[:3] == [str(H("prefix_argmax", tie=t)) for t in TIES]


def test_match_variants_are_distinguished(data) -> None:
    variants = [H("match", tie="latest"), H("match_all"), H("match", tie="earliest")]
    for planted in variants:
        acc, results = _results(planted, [h for h in variants if h != planted], data)
        assert acc is None
        assert max(r.agreement for r in results) < 0.9


def test_window_bos_rule_is_distinguished(data) -> None:
    for c in (1, 3, T - 1):
        for ib in (False, True):
            other = H("window_mean", c=c, include_bos=not ib)
            acc, _ = _results(H("window_mean", c=c, include_bos=ib), [other], data)
            assert acc is None


@pytest.mark.parametrize("include_bos", [False, True])
def test_lagged_window_is_detected(include_bos: bool, data) -> None:
    """The Sum_Last3 routing: uniform over {i-2, i-1}, i itself excluded."""
    q, k, v = data
    h = H("lag_window_mean", lo=1, hi=2, include_bos=include_bos)
    A = h.pattern(q, k, T1)
    acc, results = run_head(A, q, k, v, record(A, v))
    assert acc is not None and acc.hypothesis == h
    assert acc.agreement == 1.0 and acc.pattern_agreement == 1.0
    assert not any(r.accepted for r in results[:-1])


def test_lagged_window_is_not_accepted_for_shift_or_window_data(data) -> None:
    lags = [
        H("lag_window_mean", lo=lo, hi=hi, include_bos=ib)
        for lo, hi in ((1, 2), (1, 3), (2, 3))
        for ib in (False, True)
    ]
    for planted in (
        H("shift", c=1),
        H("shift", c=2),
        H("window_mean", c=1),
        H("window_mean", c=2),
        H("window_mean", c=2, include_bos=True),
    ):
        acc, results = _results(planted, lags, data)
        assert acc is None, f"{planted} explained by {acc and acc.hypothesis}"
        assert max(r.agreement for r in results) < 0.5
    # and the other way round: lagged-window data is none of those
    others = [
        H("shift", c=1),
        H("shift", c=2),
        H("window_mean", c=1),
        H("window_mean", c=2),
        H("window_mean", c=2, include_bos=True),
        H("lag_window_mean", lo=1, hi=2),
    ]
    acc, _ = _results(H("lag_window_mean", lo=1, hi=2, include_bos=True), others, data)
    assert acc is None


def test_lookup_is_skipped_for_wide_domains() -> None:
    q, k, v = make_data(seed=7)
    q[:, 1:] = np.random.default_rng(8).integers(0, 17, (N, T))  # 17 > 16 distinct values
    A = random_lookup().pattern(q, k, T1)  # unknown q values fall back to the default (BOS)
    acc, results = run_head(A, q, k, v, record(A, v))
    assert acc is None
    assert all(r.hypothesis.name != "lookup" for r in results)
    assert len(results) == len(LIB) - 1


def test_fit_lookup_recovers_the_table(data) -> None:
    q, k, _ = data
    h = random_lookup(seed=11)
    fitted = fit_lookup(h.pattern(q, k, T1), q)
    assert sorted(map(tuple, fitted.params["table"])) == sorted(map(tuple, h.params["table"]))
    np.testing.assert_array_equal(fitted.pattern(q, k, T1), h.pattern(q, k, T1))
