"""Attention hypothesis testing (extraction/hypotheses.py): planted patterns are detected, the
simplest explanation wins, the confidence bound is right, noise is caught. Wrong patterns
rejected: test_hypotheses_rejected.py; the generated helpers: test_hypotheses_helpers.py."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypotheses_helpers import LIB, PLANTS, T1, H, N, T, make_data, random_lookup, record

from discrete_transformer.extraction.hypotheses import Hypothesis, clopper_pearson_lower, regularized_beta
from discrete_transformer.extraction.hypotheses import test_head as run_head


@pytest.fixture(scope="module")
def data():
    return make_data()


# ----------------------------------------------------------------------------- Clopper–Pearson


def test_clopper_pearson_values() -> None:
    assert clopper_pearson_lower(5000, 5000, 0.95) == pytest.approx(0.99940, abs=5e-6)
    assert clopper_pearson_lower(5000, 5000, 0.95) == pytest.approx(0.05 ** (1 / 5000), rel=1e-12)
    assert clopper_pearson_lower(0, 10, 0.95) == 0.0
    # closed form for one success: 1 − (1 − α)^(1/n)
    assert clopper_pearson_lower(1, 10, 0.95) == pytest.approx(1 - 0.95**0.1, rel=1e-9)
    assert clopper_pearson_lower(9, 10, 0.95) == pytest.approx(0.605836, abs=1e-5)  # tables
    for s, n in [(2500, 5000), (4950, 5000), (4975, 5000), (3, 7), (49_000, 50_000)]:
        lb = clopper_pearson_lower(s, n, 0.95)
        assert 0 < lb < s / n
        assert regularized_beta(s, n - s + 1, lb) == pytest.approx(0.05, rel=1e-8)


def test_clopper_pearson_monotone() -> None:
    n = 200
    bounds = [clopper_pearson_lower(s, n, 0.95) for s in range(n + 1)]
    assert all(a < b for a, b in zip(bounds, bounds[1:]))
    assert clopper_pearson_lower(150, 200, 0.99) < clopper_pearson_lower(150, 200, 0.95)
    # more evidence at the same rate tightens the bound
    same_rate = [clopper_pearson_lower(99 * m, 100 * m) for m in (1, 10, 100)]
    assert same_rate == sorted(same_rate) and len(set(same_rate)) == 3
    with pytest.raises(ValueError):
        clopper_pearson_lower(11, 10)


def test_regularized_beta_against_closed_forms() -> None:
    for x in (0.01, 0.3, 0.77, 0.999):
        assert regularized_beta(1, 1, x) == pytest.approx(x)
        assert regularized_beta(3, 1, x) == pytest.approx(x**3)
        assert regularized_beta(1, 4, x) == pytest.approx(1 - (1 - x) ** 4)
        assert regularized_beta(2, 2, x) == pytest.approx(3 * x**2 - 2 * x**3)


# ----------------------------------------------------------------------------- the library


def test_library_shape_and_json() -> None:
    names = [h.name for h in LIB]
    assert names[0] == "self" and names[-1] == "lookup"
    assert [h.params["c"] for h in LIB if h.name == "shift"] == list(range(1, T))
    assert sum(h.name == "window_mean" for h in LIB) == 2 * (T - 1)
    lags = [h.params for h in LIB if h.name == "lag_window_mean"]
    assert len(lags) == 2 * (T - 1) * (T - 2) // 2  # 1 <= lo < hi <= T-1, both BOS rules
    assert all(1 <= p["lo"] < p["hi"] <= T - 1 for p in lags)
    assert sum(h.name in ("prefix_argmax", "prefix_argmin") for h in LIB) == 12
    order = [
        "self",
        "shift",
        "first",
        "prefix_mean",
        "window_mean",
        "lag_window_mean",
        "prefix_argmax",
        "prefix_argmin",
        "match",
        "at_index",
        "lookup",
    ]
    last_window = max(i for i, nm in enumerate(names) if nm == "window_mean")
    assert names.index("lag_window_mean") == last_window + 1
    firsts = [names.index(o) for o in order]
    assert firsts == sorted(firsts)
    for h in LIB + [random_lookup()]:
        assert json.loads(json.dumps(h.params)) == h.params
        assert h.description


@pytest.mark.parametrize("h", PLANTS, ids=str)
def test_patterns_are_causal_rows_summing_to_one(h: Hypothesis, data) -> None:
    q, k, _ = data
    P = h.pattern(q[:300], k[:300], T1)
    assert P.shape == (300, T1, T1)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    assert (P >= 0).all()
    assert np.abs(np.triu(P, 1)).max() == 0.0
    np.testing.assert_array_equal(P[:, 0], np.broadcast_to(np.eye(T1)[0], (300, T1)))


def test_hand_worked_patterns() -> None:
    T1_ = 5  # BOS + 4
    row = lambda h, i: h.pattern(None, None, T1_)[0, i].tolist()  # noqa: E731
    assert row(H("shift", c=2), 2) == [1, 0, 0, 0, 0]  # seq index 1: before the start
    assert row(H("shift", c=2), 4) == [0, 0, 1, 0, 0]
    assert row(H("first"), 3) == [0, 1, 0, 0, 0]
    assert row(H("prefix_mean", include_bos=True), 2) == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0, 0])
    assert row(H("window_mean", c=2), 1) == [0, 1, 0, 0, 0]
    assert row(H("window_mean", c=2), 4) == pytest.approx([0, 0, 1 / 3, 1 / 3, 1 / 3])
    # the window of seq index 1 (pos 0..1 back to -1) reaches BOS: BOS is one more key
    third = 1 / 3
    padded = H("window_mean", c=2, include_bos=True)
    assert row(padded, 2) == pytest.approx([third, third, third, 0, 0])
    assert row(padded, 3) == pytest.approx([0, third, third, third, 0])
    lag = H("lag_window_mean", lo=1, hi=2)
    assert row(lag, 1) == [1, 0, 0, 0, 0]  # seq index 0: whole window before the start
    assert row(lag, 2) == [0, 1, 0, 0, 0]  # seq index 1: only index 0 in range
    assert row(lag, 4) == pytest.approx([0, 0, 0.5, 0.5, 0])  # indices 1, 2 (not 3)
    padded_lag = H("lag_window_mean", lo=1, hi=2, include_bos=True)
    assert row(padded_lag, 1) == [1, 0, 0, 0, 0]  # BOS alone
    assert row(padded_lag, 2) == pytest.approx([0.5, 0.5, 0, 0, 0])  # BOS + index 0
    assert row(padded_lag, 3) == pytest.approx([0, 0.5, 0.5, 0, 0])  # window fully in range
    with pytest.raises(ValueError):
        H("lag_window_mean", lo=2, hi=2)  # that is shift(2)
    with pytest.raises(ValueError):
        H("lag_window_mean", lo=0, hi=2)  # that is window_mean(2)
    k = np.array([[0.0, 2, 5, 5, 1]])
    pat = lambda h: h.pattern(None, k, T1_)[0, 4].tolist()  # noqa: E731
    assert pat(H("prefix_argmax", tie="average")) == [0, 0, 0.5, 0.5, 0]
    assert pat(H("prefix_argmax", tie="latest")) == [0, 0, 0, 1, 0]
    assert pat(H("prefix_argmax", tie="earliest")) == [0, 0, 1, 0, 0]
    assert pat(H("prefix_argmin", tie="average")) == [0, 0, 0, 0, 1]
    assert pat(H("prefix_argmin", tie="average", include_bos=True)) == [1, 0, 0, 0, 0]  # BOS k=0
    q = np.array([[0.0, 7, 5, 3, 5]])
    m = lambda h, i: h.pattern(q, k, T1_)[0, i].tolist()  # noqa: E731
    assert m(H("match", tie="latest"), 4) == [0, 0, 0, 1, 0]
    assert m(H("match", tie="earliest"), 4) == [0, 0, 1, 0, 0]
    assert m(H("match_all"), 4) == [0, 0, 0.5, 0.5, 0]
    assert m(H("match_all"), 1) == [1, 0, 0, 0, 0]  # no key 7: BOS
    # at_index: position q_i + c when it is an integer at or before i, else BOS
    q = np.array([[0.0, 2, 0, 5, 1]])
    assert [m(H("at_index"), i) for i in (1, 2, 3, 4)] == [
        [1, 0, 0, 0, 0],  # q=2 names a later position: BOS
        [0, 1, 0, 0, 0],  # q=0: sequence index 0
        [1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],  # q=1
    ]
    assert m(H("at_index", c=1), 4) == [0, 0, 0, 1, 0]
    assert m(H("at_index", c=-1), 2) == [1, 0, 0, 0, 0]  # 0 - 1 is before the start
    q = np.array([[0.0, 0, 0.5, 1, 1]])
    assert m(H("at_index"), 2) == [1, 0, 0, 0, 0]  # 0.5 names no position


# ----------------------------------------------------------------------------- planted → detected


def test_every_plant_is_distinguishable_except_known_aliases(data) -> None:
    """On length-T data window_mean(T−1) without BOS *is* prefix_mean; every other pair of
    library entries routes differently, so each plant must come back as itself."""
    q, k, _ = data
    pats = [h.pattern(q, k, T1) for h in PLANTS]
    aliases = {
        (str(PLANTS[a]), str(PLANTS[b]))
        for b in range(len(PLANTS))
        for a in range(b)
        if np.array_equal(pats[a], pats[b])
    }
    assert aliases == {(str(H("prefix_mean")), str(H("window_mean", c=T - 1)))}


@pytest.mark.parametrize("h", PLANTS, ids=str)
def test_planted_is_detected(h: Hypothesis, data) -> None:
    q, k, v = data
    A = h.pattern(q, k, T1)
    out = record(A, v)
    acc, results = run_head(A, q, k, v, out)
    assert acc is not None, [str(r.hypothesis) for r in results]
    assert acc is results[-1]
    assert not any(r.accepted for r in results[:-1])
    expected = H("prefix_mean") if h == H("window_mean", c=T - 1) else h
    if h.name == "lookup":
        assert acc.hypothesis.name == "lookup"
        planted = {(e[0], e[1]): e[2] for e in h.params["table"]}
        fitted = {(e[0], e[1]): e[2] for e in acc.hypothesis.params["table"]}
        assert fitted == planted
        assert acc.n_queries == (N - N // 2) * T  # held-out half only
    else:
        assert acc.hypothesis == expected
        assert acc.n_queries == N * T
    assert acc.agreement == 1.0
    assert acc.pattern_agreement == 1.0
    assert acc.lower_bound >= 0.995


def test_index_offset_is_fitted_on_the_data(data) -> None:
    """at_index with an offset the library does not list comes back with that offset."""
    q, k, v = data
    for c in (-1, 2):
        h = H("at_index", c=c)
        A = h.pattern(q, k, T1)
        acc, _ = run_head(A, q, k, v, record(A, v))
        assert acc is not None and acc.hypothesis == h and acc.agreement == 1.0


def test_planted_with_pos_valued_v_and_nonzero_bos_key() -> None:
    """v = pos reads −1 at BOS; argmax with BOS competing uses k's own BOS value."""
    q, k, v = make_data(seed=3, k_bos=-1.0, v_bos=-1.0)
    for h in (
        H("shift", c=3),
        H("prefix_mean", include_bos=True),
        H("prefix_argmin", tie="latest", include_bos=True),
        H("match_all"),
    ):
        A = h.pattern(q, k, T1)
        acc, _ = run_head(A, q, k, v, record(A, v))
        assert acc is not None and acc.hypothesis == h and acc.agreement == 1.0


# ----------------------------------------------------------------------------- simplest first


def test_simplest_accepted_explanation_wins() -> None:
    """v constant on the sequence: every routing that never reads BOS gives the same output, so
    several hypotheses are accepted; the simplest (`self`) is the one returned."""
    q, k, v = make_data(seed=9)
    v[:, 1:] = 1.0
    A = H("prefix_argmax", tie="average").pattern(q, k, T1)
    acc, results = run_head(A, q, k, v, record(A, v), exhaustive=True)
    accepted = [str(r.hypothesis) for r in results if r.accepted]
    assert acc.hypothesis == H("self") and accepted[0] == str(H("self"))
    for h in (
        H("first"),
        H("prefix_mean"),
        H("window_mean", c=2),
        H("prefix_argmax", tie="average"),
        H("prefix_argmin", tie="latest"),
    ):
        assert str(h) in accepted
    assert str(H("shift", c=1)) not in accepted  # reads BOS (0) at the first position
    assert acc.pattern_agreement < 1.0  # the routing differs; only the output agrees
    # without `exhaustive`, testing stops at the first accepted
    acc2, results2 = run_head(A, q, k, v, record(A, v))
    assert acc2.hypothesis == H("self") and len(results2) == 1


# ----------------------------------------------------------------------------- noise


def test_one_percent_noise_is_not_accepted(data) -> None:
    q, k, v = data
    h = H("shift", c=2)
    A = h.pattern(q, k, T1)
    out = record(A, v)
    rng = np.random.default_rng(12)
    flat = rng.choice(N * T, size=N * T // 100, replace=False)  # exactly 1 % of query rows
    out[flat // T, 1 + flat % T] += 1.0
    acc, results = run_head(A, q, k, v, out, library=[h], exhaustive=True)
    assert acc is None
    (r,) = results
    assert r.agreement == pytest.approx(0.99, abs=1e-12)
    assert r.pattern_agreement == 1.0  # the pattern itself is intact
    assert r.lower_bound < 0.995
    # 0.1 % noise over 50 000 rows still clears the bar
    out2 = record(A, v)
    out2[flat[:50] // T, 1 + flat[:50] % T] += 1.0
    acc2, _ = run_head(A, q, k, v, out2, library=[h])
    assert acc2 is not None and acc2.agreement == pytest.approx(0.999) and acc2.lower_bound >= 0.995
    # and the whole library accepts nothing on the 1 % data
    assert run_head(A, q, k, v, out)[0] is None


def test_pattern_noise_is_reported_separately(data) -> None:
    """A row that attends differently but reads the same value counts for agreement, not for
    pattern agreement."""
    q, k, v = data
    v = v.copy()
    h = H("shift", c=1)
    A = h.pattern(q, k, T1).copy()
    # row 3 of sequence 0: attend to 2 and 1 equally, with v equal there
    v[0, 1] = v[0, 2]
    A[0, 3] = 0.0
    A[0, 3, 1] = A[0, 3, 2] = 0.5
    acc, _ = run_head(A, q, k, v, record(A, v), library=[h])
    assert acc.agreement == 1.0 and acc.pattern_agreement == pytest.approx(1 - 1 / (N * T))


def test_shapes_are_validated(data) -> None:
    q, k, v = data
    A = H("self").pattern(q, k, T1)
    with pytest.raises(ValueError, match="q must have shape"):
        run_head(A, q[:, :-1], k, v, record(A, v))
    with pytest.raises(ValueError, match="A must have shape"):
        run_head(A[:, :-1], q, k, v, record(A, v))


# ----------------------------------------------------------------------------- speed


def test_whole_library_is_fast() -> None:
    q, k, v = make_data(seed=13)
    A = H("match_all").pattern(q, k, T1)
    out = record(A, v)
    best = math.inf
    for _ in range(3):
        clopper_pearson_lower.cache_clear()
        t0 = time.perf_counter()
        _, results = run_head(A, q, k, v, out, exhaustive=True)
        best = min(best, time.perf_counter() - t0)
    assert len(results) == len(LIB)  # lookup included (small domains)
    assert best < 1.0, f"whole library took {best:.3f}s for n={N}, T1={T1}"
