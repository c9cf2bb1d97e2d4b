"""Enumerative symbolic regression (DESIGN.md §4.3): the printed sources. Plain Python and NumPy
agree with each other and with the search's own semantics, the printer's text, and a modulus of a
computed integer is taken of its rounded value."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from symbolic_helpers import PLANTED

from discrete_transformer.extraction import symbolic as sr
from discrete_transformer.extraction.symbolic import Candidate, SRConfig, evaluate_source, symbolic_regression

# ---- printed sources --------------------------------------------------------------------------


def _parity(source: str, numpy_source: str, names: tuple[str, ...], point: list[float]) -> None:
    """Plain Python (math only) and NumPy evaluate the two sources to the same value."""
    with np.errstate(all="ignore"):
        npv = float(
            np.asarray(evaluate_source(numpy_source, names, [np.array([v]) for v in point], numpy=True)).reshape(-1)[0]
        )
    try:
        pyv = float(evaluate_source(source, names, point))
    except (ArithmeticError, ValueError):
        assert not math.isfinite(npv), (source, point, npv)
        return
    if math.isnan(pyv) or math.isnan(npv):
        assert math.isnan(pyv) and math.isnan(npv), (source, point, pyv, npv)
    else:
        assert math.isclose(pyv, npv, rel_tol=1e-12, abs_tol=1e-12), (source, numpy_source, point, pyv, npv)


@pytest.fixture(scope="module")
def fronts() -> list[tuple[tuple[str, ...], tuple[Candidate, ...]]]:
    out = []
    for case_id in ("a%3", "|a-b|", "sqrt(a2+b2)", "(a+b)>=2 bits", "where(c,a,b)", "-2.5*(a-b)", "(a+b)%3"):
        case = next(c for c in PLANTED if c.id == case_id)
        X, y = case.sample(0)
        out.append((case.names, symbolic_regression(X, y, case.names, case.tol).front))
    rng = np.random.default_rng(5)  # no exact answer: a long front with odd operators
    X = rng.integers(-6, 7, (300, 2)).astype(np.float64)
    y = np.where(X[:, 0] > X[:, 1], X[:, 0] ** 2 % 7, np.floor(X[:, 1] / 3)) + 0.5 * np.round(X[:, 0] / 4)
    out.append((("a", "b"), symbolic_regression(X, y, ("a", "b"), 1e-6, SRConfig(time_budget=1.0)).front))
    return out


_point = st.one_of(st.integers(-12, 12).map(float), st.floats(-10, 10, allow_nan=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=st.lists(st.tuples(_point, _point, _point), min_size=1, max_size=5))
def test_source_matches_numpy_source(fronts, points) -> None:
    for names, front in fronts:
        for cand in front:
            for p in points:
                _parity(cand.source, cand.numpy_source, names, list(p[: len(names)]))


_A, _B, _C = ("var", 0), ("var", 1), ("var", 2)
HAND_TREES = [
    ("mod", ("add", _A, _B), ("int", 3)),
    ("mul", ("mod", _A, ("int", 3)), _B),
    ("mod", ("mul", _A, _B), ("num", 2.5)),
    ("square", ("neg", _A)),
    ("square", ("num", -2.5)),
    ("neg", ("square", _A)),
    ("neg", ("neg", _A)),
    ("sub", _A, ("sub", _B, _C)),
    ("sub", ("sub", _A, _B), _C),
    ("div", _A, ("mul", _B, ("int", 2))),
    ("div", ("mul", _A, _B), ("num", -0.5)),
    ("mul", ("num", -2.5), ("add", _A, ("num", -1.0))),
    ("add", _A, ("num", -1.5)),
    ("sqrt", ("add", ("square", _A), ("square", _B))),
    ("floor", ("div", _A, ("int", 2))),
    ("round", ("mul", ("num", 0.5), _A)),
    ("abs", ("sub", _A, _B)),
    ("min", _A, ("max", _B, ("int", 0))),
    ("ge", ("add", _A, _B), ("int", 2)),
    ("add", ("gt", _A, _B), ("eq", _A, ("int", 1))),
    ("mul", ("ge", _A, _B), ("ge", _B, _A)),
    ("where", ("gt", _A, _B), ("sub", _A, _B), ("neg", _C)),
    ("where", ("mod", _A, ("int", 2)), _B, ("where", ("ge", _B, _C), _C, ("int", 5))),
    ("ge", ("where", ("eq", _A, _B), _A, _C), ("square", _B)),
    ("square", ("square", ("sub", _A, _B))),
    ("mod", ("neg", _A), ("sub", _B, ("num", 0.5))),
]


@settings(max_examples=60, deadline=None)
@given(point=st.tuples(_point, _point, _point))
def test_printer_semantics_match_search_semantics(point) -> None:
    names = ("a", "b", "c")
    X = np.asarray([point], dtype=np.float64)
    for tree in HAND_TREES:
        py, npy = sr._sources(tree, names)
        _parity(py, npy, names, list(point))
        with np.errstate(all="ignore"):
            want = float(sr._eval_tree(tree, X)[0])
            got = float(np.asarray(evaluate_source(npy, names, list(X.T), numpy=True)).reshape(-1)[0])
        if math.isfinite(want):
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (npy, point, got, want)
        else:
            assert not math.isfinite(got)
        assert sr._to_sympy(tree, [sympy.Symbol(n) for n in names]) is not None


def test_printer_text() -> None:
    names = ("a", "b", "c")
    text = {tree: sr._sources(tree, names) for tree in HAND_TREES}
    assert text[HAND_TREES[0]] == ("(a + b) % 3", "(a + b) % 3")
    assert text[HAND_TREES[1]][0] == "(a % 3) * b"
    assert text[HAND_TREES[3]][0] == "(-a) ** 2"
    assert text[HAND_TREES[4]][0] == "(-2.5) ** 2"
    assert text[HAND_TREES[5]][0] == "-(a ** 2)"
    assert text[HAND_TREES[7]][0] == "a - (b - c)"
    assert text[HAND_TREES[12]][0] == "a + -1.5"
    assert text[HAND_TREES[18]] == ("(1 if a + b >= 2 else 0)", "np.where(a + b >= 2, 1.0, 0.0)")
    assert text[HAND_TREES[21]] == ("(a - b if a > b else -c)", "np.where(a > b, a - b, -c)")
    assert text[HAND_TREES[22]][0] == "(b if a % 2 != 0 else (c if b >= c else 5))"


def test_a_modulus_of_a_computed_integer_is_taken_of_its_rounded_value() -> None:
    """`mean * (pos + 1)` is an integer up to float dust; `%` of 5.9999… is 2.9999…, so the
    program would be wrong on inputs the samples never showed (longer sequences). The search
    keeps its answer, rendered as `round(...) % k`."""
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 10, 4000).astype(float)
    total = rng.integers(0, 20, 4000).astype(float)
    mean = total / (pos + 1)
    res = symbolic_regression(
        np.stack([mean, pos], 1),
        total % 3,
        ("m", "p"),
        1e-6,
        config=SRConfig(max_size=9, time_budget=12),
        integer_target=True,
    )
    assert res.best.exact and res.best.source == "round(m * (p + 1)) % 3"
    dusty = {"m": 6.0 / 7.0 - 1e-15, "p": 6.0}  # m * 7 = 5.999999999999999
    assert eval(res.best.source, {"math": math}, dusty) == 0
    assert eval(res.best.numpy_source, {"np": np}, {k: np.array([v]) for k, v in dusty.items()})[0] == 0
