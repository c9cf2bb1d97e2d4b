"""Attention hypotheses as program text (extraction/hypotheses.py): their names, call expressions
and generated helpers (standard library and NumPy) compute exactly what the patterns predict;
summing heads, detected and rendered."""

from __future__ import annotations

import numpy as np
import pytest
from hypotheses_helpers import PLANTS, T1, H, T, make_data, random_lookup, record

from discrete_transformer.extraction.hypotheses import (
    Hypothesis,
    averages,
    describe,
    numpy_call,
    numpy_helper,
    python_call,
    python_helper,
    with_aggregate,
)
from discrete_transformer.extraction.hypotheses import test_head as run_head


@pytest.fixture(scope="module")
def data():
    return make_data()


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
    assert d(H("at_index", c=1)) == "x_at_q"
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
    assert python_call(H("at_index"), "b", "k", "a") == "at_index(b, a)"
    assert numpy_call(H("at_index", c=-2), "b", "k", "a") == "np_at_index(b, a, c=-2)"


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


def test_index_helpers_name_no_position_for_non_integers() -> None:
    """A query that is not an integer position at or before i (fractional, negative, later,
    NaN, infinite) reads the BOS value in both helpers."""
    qs = [0.0, float("nan"), float("inf"), 1.0 + 1e-9, 3.0, -1.0, 2.5, 9.0]
    xs = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
    want = [10.0, 0.0, 0.0, 11.0, 13.0, 0.0, 0.0, 0.0]
    h = H("at_index")
    ns: dict = {"__builtins__": __builtins__}
    exec(python_helper(h)[1], ns)
    assert ns["at_index"](qs, xs) == want
    ns = {}
    exec(numpy_helper(h)[1], ns)
    with np.errstate(all="raise"):
        got = ns["np_at_index"](np.array([qs]), np.array([xs]))
    assert got.tolist() == [want]
