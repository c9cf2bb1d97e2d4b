"""A data-fitted BOS key for the prefix extremes (patterns/argext.py `fitted`): a head whose learned
BOS offset puts BOS *between* key values (BOS alone until the key first exceeds it) is explained
by `prefix_argmax(..., include_bos=True, k_bos=c)` with c read off the observed routing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from discrete_transformer.extraction.hypotheses import (
    make_hypothesis,
    numpy_call,
    numpy_helper,
    python_call,
    python_helper,
)
from discrete_transformer.extraction.hypotheses import test_head as run_head
from discrete_transformer.extraction.patterns import Observed, fitted_hypotheses
from discrete_transformer.extraction.patterns.base import simplest_between

N, T = 2000, 10
T1 = T + 1


def planted(keys: np.ndarray, largest: bool, bos_alone: np.ndarray) -> np.ndarray:
    """(n, T1, T1) pattern: uniform over the prefix extreme of keys[:, 1..i], except rows where
    `bos_alone` (n, T1) attend to BOS alone. Row 0 is BOS."""
    kk = keys if largest else -keys
    run = np.maximum.accumulate(kk[:, 1:], axis=1)
    P = np.zeros((keys.shape[0], T1, T1))
    P[:, 0, 0] = 1.0
    causal = np.tril(np.ones((T, T), dtype=bool))
    sel = (kk[:, None, 1:] == run[:, :, None]) & causal[None]
    P[:, 1:, 1:] = sel / sel.sum(-1, keepdims=True)
    P[bos_alone] = 0.0
    P[bos_alone, 0] = 1.0
    return P


def recording(values: tuple[float, ...], probs: tuple[float, ...], largest: bool, cut: float, seed: int = 0):
    """Keys drawn from `values`; BOS alone while the prefix extreme has not passed `cut` (argmax:
    max < cut; argmin: min > cut)."""
    rng = np.random.default_rng(seed)
    k = np.zeros((N, T1))
    k[:, 1:] = rng.choice(values, size=(N, T), p=probs)
    v = np.zeros((N, T1))
    v[:, 1:] = rng.normal(size=(N, T))  # continuous: different routings give different outputs
    kk = k if largest else -k
    alone = np.zeros((N, T1), dtype=bool)
    alone[:, 1:] = np.maximum.accumulate(kk[:, 1:], axis=1) < (cut if largest else -cut)
    P = planted(k, largest, alone)
    out = np.einsum("nij,nj->ni", P, v)
    out[:, 0] = 0.0
    return P, k, v, out


def test_simplest_between() -> None:
    assert simplest_between(0, 1) == 0.5
    assert simplest_between(1, 3) == 2
    assert simplest_between(-3, -1) == -2
    assert simplest_between(-0.5, 2) == 0
    assert simplest_between(2, 3) == 2.5
    assert simplest_between(0.1, 0.2) == 0.15
    assert simplest_between(0.31, 0.33) == 0.32
    assert simplest_between(1, 1) is None and simplest_between(2, 1) is None
    assert simplest_between(-np.inf, 1) is None


def test_fitted_bos_key_between_0_and_1_is_accepted() -> None:
    P, k, v, out = recording((0.0, 1.0), (0.7, 0.3), largest=True, cut=1.0)
    acc, results = run_head(P, k, k, v, out, exhaustive=True)
    assert acc is not None and acc.hypothesis.name == "prefix_argmax"
    assert acc.hypothesis.params == {"tie": "average", "include_bos": True, "k_bos": 0.5}
    assert acc.agreement == 1.0 and acc.pattern_agreement == 1.0
    plain = [r for r in results if r.hypothesis.name == "prefix_argmax" and "k_bos" not in r.hypothesis.params]
    assert len(plain) == 6 and not any(r.accepted for r in plain)
    # the fitted ones come after every plain argmax entry and before the argmin family
    names = [(r.hypothesis.name, "k_bos" in r.hypothesis.params) for r in results]
    first_fit = names.index(("prefix_argmax", True))
    assert first_fit > max(i for i, x in enumerate(names) if x == ("prefix_argmax", False))
    assert first_fit < names.index(("prefix_argmin", False))
    assert "BOS competes with key 0.5" in acc.hypothesis.description
    # summing head: the same routing in its summing form
    out_sum = np.einsum("nij,nj->ni", (P > 0).astype(float), v)
    out_sum[:, 0] = 0.0
    acc, _ = run_head(P, k, k, v, out_sum, aggregate="sum")
    assert acc is not None and acc.hypothesis.params == {
        "tie": "average",
        "include_bos": True,
        "k_bos": 0.5,
        "agg": "sum",
    }


def test_fitted_integer_key() -> None:
    # keys {0, 1, 3}; BOS alone until a 3: any key in (1, 3) works, the simplest is 2
    P, k, v, out = recording((0.0, 1.0, 3.0), (0.5, 0.3, 0.2), largest=True, cut=3.0)
    acc, _ = run_head(P, k, k, v, out)
    assert acc is not None and acc.hypothesis.params.get("k_bos") == 2.0


def test_fitted_argmin_mirror() -> None:
    # keys {2, 3, 5}; BOS alone while every key is >= 3 (until a 2): the key lies in (2, 3) -> 2.5
    P, k, v, out = recording((2.0, 3.0, 5.0), (0.2, 0.4, 0.4), largest=False, cut=2.5)
    assert fitted_hypotheses("prefix_argmax", Observed.of(P), k, k, T1) == []
    acc, results = run_head(P, k, k, v, out)
    assert acc is not None and acc.hypothesis.name == "prefix_argmin"
    assert acc.hypothesis.params == {"tie": "average", "include_bos": True, "k_bos": 2.5}
    assert not any(r.accepted for r in results[:-1])
    assert "first drops below 2.5" in acc.hypothesis.description


def test_empty_interval_gives_no_fitted_candidate() -> None:
    # BOS alone on the first three positions whatever the keys: BOS rows and BOS-free rows share
    # running maxima, so no BOS key separates them
    P, k, v, out = recording((0.0, 1.0), (0.7, 0.3), largest=True, cut=1.0)
    alone = np.zeros((N, T1), dtype=bool)
    alone[:, 1:4] = True
    P = planted(k, True, alone)
    out = np.einsum("nij,nj->ni", P, v)
    out[:, 0] = 0.0
    assert fitted_hypotheses("prefix_argmax", Observed.of(P), k, k, T1) == []
    _, results = run_head(P, k, k, v, out, exhaustive=True)
    assert not any("k_bos" in r.hypothesis.params for r in results)


def test_no_fitted_candidate_when_bos_key_already_routes_so() -> None:
    # the key variable itself reads 0.5 at BOS: the plain include_bos entry explains the head
    P, k, v, out = recording((0.0, 1.0), (0.7, 0.3), largest=True, cut=1.0)
    k[:, 0] = 0.5
    assert fitted_hypotheses("prefix_argmax", Observed.of(P), k, k, T1) == []
    acc, _ = run_head(P, k, k, v, out)
    assert acc is not None and acc.hypothesis.params == {"tie": "average", "include_bos": True}


@pytest.mark.parametrize(
    ("name", "ks", "tie", "agg", "expected"),
    [
        ("prefix_argmax", [0, 0, 1, 0, 1], "average", "mean", [0, 0, 3, 3, 4]),
        ("prefix_argmax", [0, 0, 1, 0, 1], "average", "sum", [0, 0, 3, 3, 8]),
        ("prefix_argmax", [0, 0, 1, 0, 1], "earliest", "mean", [0, 0, 3, 3, 3]),
        ("prefix_argmin", [3, 5, 2, 3, 2], "latest", "mean", [0, 0, 3, 3, 5]),
        ("prefix_argmin", [3, 5, 2, 3, 2], "average", "mean", [0, 0, 3, 3, 4]),
    ],
)
def test_rendered_helpers(name: str, ks: list[int], tie: str, agg: str, expected: list[float]) -> None:
    kb = 0.5 if name == "prefix_argmax" else 2.5
    h = make_hypothesis(name, tie=tie, include_bos=True, k_bos=kb, agg=agg)
    assert make_hypothesis(h.name, **json.loads(json.dumps(h.params))) == h  # survives the evidence JSON
    call = python_call(h, "q", "b", "a", k_bos=0)  # the fitted key wins over the variable's BOS value
    sum_kw = ', agg="sum"' if h.params.get("agg") == "sum" else ""
    assert call == f'{name}(b, a, tie="{tie}", include_bos=True, k_bos={kb}{sum_kw})'
    a = [1, 2, 3, 4, 5]
    ns: dict = {}
    exec(python_helper(h)[1], ns)
    exec(numpy_helper(h)[1], ns)
    assert eval(call, {**ns, "b": ks, "a": a}) == expected
    arr = eval(numpy_call(h, "q", "b", "a"), {**ns, "b": np.array([ks]), "a": np.array([a])})
    np.testing.assert_array_equal(arr, [expected])
    # and the routing the hypothesis predicts gives the same output
    k = np.array([[0.0, *ks]])
    v = np.array([[0.0, *a]])
    P = h.pattern(None, k, T1=6)
    pred = (P > 0).astype(float) @ v[0] if agg == "sum" else P @ v[0]
    np.testing.assert_allclose(pred[0, 1:], expected)


def test_k_bos_needs_include_bos() -> None:
    with pytest.raises(ValueError):
        make_hypothesis("prefix_argmax", tie="average", include_bos=False, k_bos=0.5)
