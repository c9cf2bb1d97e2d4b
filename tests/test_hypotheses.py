"""Attention hypothesis testing (extraction/hypotheses.py): planted patterns are detected, wrong ones
rejected, the simplest explanation wins, the confidence bound is right, noise is caught, and the
generated helpers (standard library and NumPy) compute exactly what the patterns predict."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from discrete_transformer.extraction.hypotheses import (
    TIES,
    Hypothesis,
    clopper_pearson_lower,
    default_library,
    describe,
    fit_lookup,
    make_hypothesis,
    numpy_call,
    numpy_helper,
    python_call,
    python_helper,
    regularized_beta,
)
from discrete_transformer.extraction.hypotheses import test_head as run_head

N, T = 5000, 10
T1 = T + 1
LIB = default_library(T1)
H = make_hypothesis


def make_data(n: int = N, T: int = T, seed: int = 0, k_bos: float = 0.0, v_bos: float = 0.0):
    """Position-level q, k, v (n, T+1): BOS column first. q in {0..3} and k in {-2..2} are small
    integer domains, so matches repeat and argmax/argmin ties are common; v is continuous, so
    different routings give different outputs."""
    rng = np.random.default_rng(seed)
    q = np.zeros((n, T + 1))
    k = np.full((n, T + 1), k_bos)
    v = np.full((n, T + 1), v_bos)
    q[:, 1:] = rng.integers(0, 4, (n, T))
    k[:, 1:] = rng.integers(-2, 3, (n, T))
    v[:, 1:] = rng.normal(size=(n, T))
    return q, k, v


def record(P: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.einsum("nij,nj->ni", P, v)
    out[:, 0] = 0.0
    return out


def random_lookup(T: int = T, seed: int = 1) -> Hypothesis:
    rng = np.random.default_rng(seed)
    table = []
    for qv in range(4):
        for i in range(T):
            d = int(rng.integers(-1, i + 1))
            table.append([float(qv), i, "bos" if d < 0 else d])
    return H("lookup", table=table, default="bos")


PLANTS = [h for h in LIB if h.name != "lookup"] + [random_lookup()]


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


# ----------------------------------------------------------------------------- names and helpers


def test_describe_names() -> None:
    d = lambda h, k="k", v="x": describe(h, "q", k, v)  # noqa: E731
    assert d(H("self")) == "x"
    assert d(H("shift", c=1)) == "prev1_x"
    assert d(H("shift", c=2)) == "prev2_x"
    assert d(H("first")) == "first_x"
    assert d(H("prefix_mean")) == "prefix_mean_x"
    assert d(H("window_mean", c=1)) == "mean_last2_x"
    assert d(H("lag_window_mean", lo=1, hi=2)) == "mean_lag1to2_x"
    assert d(H("lag_window_mean", lo=1, hi=2, include_bos=True)) == "padded_mean_lag1to2_x"
    assert d(H("prefix_argmax"), k="x") == "max_x"
    assert d(H("prefix_argmax")) == "x_at_max_k"
    assert d(H("prefix_argmin"), k="x") == "min_x"
    assert d(H("match")) == "x_at_match_q_k"
    assert d(random_lookup()) == "lookup_x"
    names = {d(h) for h in PLANTS}
    assert len(names) == len(PLANTS) - 10  # the 12 argmax/argmin variants share 2 names
    assert all(n.isidentifier() for n in names)


def test_call_expressions() -> None:
    assert python_call(H("shift", c=2), "q", "k", "x") == "shift(x, 2)"
    assert python_call(H("shift", c=2), "q", "k", "pos", bos=-1) == "shift(pos, 2, bos=-1)"
    assert python_call(H("prefix_mean"), "q", "k", "x") == "prefix_mean(x)"
    assert python_call(H("prefix_argmax"), "q", "k", "v") == 'prefix_argmax(k, v, tie="average")'
    assert python_call(H("match"), "q", "k", "v") == "match(q, k, v)"
    assert python_call(H("self"), "q", "k", "x") == "identity(x)"
    padded = H("window_mean", c=3, include_bos=True)
    assert numpy_call(padded, "q", "k", "x") == "np_window_mean(x, 3, include_bos=True)"
    assert python_helper(H("shift", c=5))[0] == "shift"
    lag = H("lag_window_mean", lo=1, hi=2)
    assert python_call(lag, "q", "k", "x") == "lag_window_mean(x, 1, 2)"
    assert python_call(lag, "q", "k", "pos", bos=-1) == "lag_window_mean(pos, 1, 2, bos=-1)"
    padded_lag = H("lag_window_mean", lo=2, hi=4, include_bos=True)
    assert numpy_call(padded_lag, "q", "k", "x") == "np_lag_window_mean(x, 2, 4, include_bos=True)"
    assert numpy_helper(H("match_all"))[0] == "np_match_all"


def _seq_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 4, (n, T)).astype(float)
    k = rng.integers(-2, 3, (n, T)).astype(float)
    x = rng.normal(size=(n, T))
    return q, k, x


def _expected(h: Hypothesis, q, k, x, bos: float, k_bos: float) -> np.ndarray:
    n = x.shape[0]
    pad = lambda a, b: np.concatenate([np.full((n, 1), b), a], axis=1)  # noqa: E731
    P = h.pattern(pad(q, 0.0), pad(k, k_bos), T1)
    return np.einsum("nij,nj->ni", P, pad(x, bos))[:, 1:]


@pytest.mark.parametrize("bos,k_bos", [(0.0, 0.0), (-1.0, -1.0), (-1.0, 1.0)])
@pytest.mark.parametrize("h", PLANTS, ids=str)
def test_helpers_match_patterns(h: Hypothesis, bos: float, k_bos: float) -> None:
    q, k, x = _seq_data(600, seed=14)
    want = _expected(h, q, k, x, bos, k_bos)
    # NumPy batch helper, through its call expression
    name, src = numpy_helper(h)
    ns: dict = {}
    exec(src, ns)
    assert name in ns
    got = eval(numpy_call(h, "q", "k", "x", bos=bos, k_bos=k_bos), ns, {"q": q, "k": k, "x": x})
    assert got.shape == (600, T)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # standard-library helper on plain lists, one sequence at a time
    name, src = python_helper(h)
    assert "import" not in src
    ns = {"__builtins__": __builtins__}
    exec(src, ns)
    expr = python_call(h, "q", "k", "x", bos=bos, k_bos=k_bos)
    for s in range(0, 600, 5):
        env = {"q": q[s].tolist(), "k": k[s].tolist(), "x": x[s].tolist()}
        got = eval(expr, ns, env)
        assert isinstance(got, list) and len(got) == T
        np.testing.assert_allclose(got, want[s], rtol=1e-12, atol=1e-12)


def test_helpers_handle_other_lengths() -> None:
    """Helpers are defined on any length (extrapolation to longer sequences)."""
    ns: dict = {}
    for h in (
        H("shift", c=2),
        H("window_mean", c=2, include_bos=True),
        H("lag_window_mean", lo=1, hi=2, include_bos=True),
        H("prefix_argmax", tie="latest"),
        H("match"),
        H("prefix_mean"),
    ):
        exec(python_helper(h)[1], ns)
        exec(numpy_helper(h)[1], ns)
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0, 8.0]
    assert ns["shift"](xs, 2) == [0, 0, 3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0]
    assert ns["window_mean"](xs[:3], 2, include_bos=True) == [1.5, 4 / 3, 8 / 3]
    assert ns["lag_window_mean"](xs[:4], 1, 2, include_bos=True) == [0, 1.5, 2.0, 2.5]
    assert ns["lag_window_mean"](xs[:4], 1, 2) == [0, 3.0, 2.0, 2.5]
    np.testing.assert_allclose(
        ns["np_lag_window_mean"](np.array([xs]), 1, 2, include_bos=True),
        [ns["lag_window_mean"](xs, 1, 2, include_bos=True)],
    )
    assert ns["prefix_argmax"](xs, xs, tie="latest")[-1] == 9.0
    assert ns["match"]([5.0, 1.0], [1.0, 5.0], [10.0, 20.0]) == [0, 10.0]
    np.testing.assert_allclose(ns["np_prefix_mean"](np.array([xs])), [ns["prefix_mean"](xs)])


# ----------------------------------------------------------------------------- summing heads

from discrete_transformer.extraction.hypotheses import averages, with_aggregate  # noqa: E402

SUM_PLANTS = [with_aggregate(h, "sum") for h in PLANTS if averages(h)]


def record_sum(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A summing head's output: Σ_j v_j over the row's selected keys (A_ij > 0)."""
    return record((A > 0).astype(float), v)


def test_sum_is_a_parameter_only_of_averaging_patterns() -> None:
    assert H("prefix_mean", agg="sum").params == {"include_bos": False, "agg": "sum"}
    assert H("prefix_mean", agg="mean") == H("prefix_mean")
    assert H("shift", c=2, agg="sum") == H("shift", c=2)  # one key: the sum is the mean
    assert H("prefix_argmax", tie="latest", agg="sum") == H("prefix_argmax", tie="latest")
    assert "agg" in H("prefix_argmax", tie="average", agg="sum").params
    assert with_aggregate(with_aggregate(H("match_all"), "sum"), "mean") == H("match_all")
    with pytest.raises(ValueError, match="agg"):
        H("prefix_mean", agg="max")
    assert len(SUM_PLANTS) == sum(averages(h) for h in PLANTS) > 20


@pytest.mark.parametrize("h", SUM_PLANTS[::3] + [H("prefix_mean", agg="sum")], ids=str)
def test_planted_summing_head_is_detected_only_as_a_sum(h: Hypothesis, data) -> None:
    q, k, v = data
    A = h.pattern(q, k, T1)
    out = record_sum(A, v)
    acc, results = run_head(A, q, k, v, out, aggregate="sum")
    assert acc is not None and acc.agreement == 1.0, [str(r.hypothesis) for r in results]
    # With v = 0 at BOS, a sum with or without the BOS slot is the same (the simpler is kept),
    # and the widest window is the prefix.
    assert acc.hypothesis.params.get("agg") == "sum"
    assert acc.hypothesis.name == h.name or (h.name, acc.hypothesis.name) == ("window_mean", "prefix_mean")
    if h.name not in ("prefix_argmax", "prefix_argmin"):  # there BOS competes as a key
        assert {**acc.hypothesis.params, "include_bos": False} == {**h.params, "include_bos": False} or (
            acc.hypothesis.name == "prefix_mean"
        )
    # the same record read as a mean-aggregating head: nothing explains it
    acc_mean, _ = run_head(A, q, k, v, out)
    assert acc_mean is None
    with pytest.raises(ValueError, match="aggregate"):
        run_head(A, q, k, v, out, aggregate="total")


def test_summing_names_and_calls() -> None:
    assert describe(H("prefix_mean", agg="sum"), "q", "k", "x") == "prefix_sum_x"
    assert describe(H("window_mean", c=2, agg="sum"), "q", "k", "x") == "sum_last3_x"
    assert describe(H("match_all", agg="sum"), "a", "b", "x") == "sum_x_at_match_a_b"
    assert python_call(H("prefix_mean", agg="sum"), "q", "k", "x") == 'prefix_mean(x, agg="sum")'
    assert numpy_call(H("prefix_mean", include_bos=True, agg="sum"), "q", "k", "pos", bos=-1) == (
        'np_prefix_mean(pos, include_bos=True, bos=-1, agg="sum")'
    )


@pytest.mark.parametrize("bos,k_bos", [(0.0, 0.0), (-1.0, 1.0)])
@pytest.mark.parametrize("h", SUM_PLANTS, ids=str)
def test_summing_helpers_match_patterns(h: Hypothesis, bos: float, k_bos: float) -> None:
    """Both helpers, with agg="sum", compute Σ_j [P_ij > 0]·x_j (BOS slot reading `bos`)."""
    q, k, x = _seq_data(300, seed=15)
    n = x.shape[0]
    pad = lambda a, b: np.concatenate([np.full((n, 1), b), a], axis=1)  # noqa: E731
    P = h.pattern(pad(q, 0.0), pad(k, k_bos), T1)
    want = np.einsum("nij,nj->ni", (P > 0).astype(float), pad(x, bos))[:, 1:]
    name, src = numpy_helper(h)
    ns: dict = {}
    exec(src, ns)
    got = eval(numpy_call(h, "q", "k", "x", bos=bos, k_bos=k_bos), ns, {"q": q, "k": k, "x": x})
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    name, src = python_helper(h)
    ns = {"__builtins__": __builtins__}
    exec(src, ns)
    expr = python_call(h, "q", "k", "x", bos=bos, k_bos=k_bos)
    for s in range(0, n, 10):
        got = eval(expr, ns, {"q": q[s].tolist(), "k": k[s].tolist(), "x": x[s].tolist()})
        np.testing.assert_allclose(got, want[s], rtol=1e-12, atol=1e-12)
