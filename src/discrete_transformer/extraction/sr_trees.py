"""Symbolic regression's expression trees: the grammar's operators, the tree form of an
expression, its size, its vectorised evaluation (the search semantics) and its SymPy form.

A tree is a tuple: ``("var", i) | ("int", k) | ("num", value) | (unary_op, x) |
(binary_op, x, y) | ("where", c, a, b)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

UNARY_OPS = ("neg", "abs", "square", "sqrt", "floor", "round")
BINARY_OPS = ("mul", "add", "sub", "div", "mod", "min", "max", "ge", "gt", "eq")
ALL_OPERATORS = UNARY_OPS + BINARY_OPS + ("where",)
COMMUTATIVE = frozenset({"add", "mul", "min", "max", "eq"})
COMPARE = frozenset({"ge", "gt", "eq"})

Tree = tuple


def tree_size(t: Tree) -> int:
    if t[0] in ("var", "int", "num"):
        return 1
    return 1 + sum(tree_size(ch) for ch in t[1:])


def round_mod_dividends(t: Tree, X: np.ndarray) -> Tree:
    """`e % k` -> `round(e) % k` wherever the computed dividend `e` is integer-valued on the
    samples. Why: `mean * (pos + 1)` is an integer up to float dust (5.9999…), which `%` turns
    into a wrong answer (2.9999… instead of 0) on inputs the samples did not contain, e.g. longer
    sequences. On the samples the rounded tree computes the same values."""
    op = t[0]
    if op in ("var", "int", "num"):
        return t
    kids = tuple(round_mod_dividends(ch, X) for ch in t[1:])
    if op == "mod" and not _integer_by_construction(kids[0], X):
        e = eval_tree(kids[0], X)
        if (
            e.size
            and bool(np.all(np.isfinite(e)))
            and bool(np.all(np.abs(e - np.round(e)) <= 1e-9 * np.maximum(1.0, np.abs(e))))
        ):
            kids = (("round", kids[0]), *kids[1:])
    return (op, *kids)


def _integer_by_construction(t: Tree, X: np.ndarray) -> bool:
    """Integer-valued exactly, whatever the inputs' values in that column's range: integer
    leaves combined by integer-preserving operations (so `(a + b) % 3` stays as it is)."""
    op = t[0]
    if op in ("round", "floor"):
        return True
    if op == "var":
        col = X[:, t[1]]
        return bool(np.all(np.isfinite(col)) and np.all(col == np.round(col)))
    if op in ("int", "num"):
        return float(t[1]) == round(float(t[1]))
    if op in ("div", "sqrt"):
        return False
    return all(_integer_by_construction(ch, X) for ch in t[1:])


def eval_tree(t: Tree, X: np.ndarray) -> np.ndarray:
    """Vectorised evaluation with the search semantics (floor-mod, 0/1 comparisons, where != 0)."""
    with np.errstate(all="ignore"):
        return np.asarray(_ev(t, X, {}), dtype=np.float64)


def _ev(t: Tree, X: np.ndarray, memo: dict) -> np.ndarray:
    key = id(t)
    if key in memo:
        return memo[key]
    op = t[0]
    n = X.shape[0]
    if op == "var":
        out = X[:, t[1]]
    elif op in ("int", "num"):
        out = np.full(n, float(t[1]))
    elif op == "where":
        c, a, b = (_ev(ch, X, memo) for ch in t[1:])
        out = np.where(c != 0, a, b)
    elif len(t) == 2:
        out = UNARY_FN[op](_ev(t[1], X, memo))
    else:
        out = BINARY_FN[op](_ev(t[1], X, memo), _ev(t[2], X, memo))
    memo[key] = out
    return out


def _cmp(fn):
    def f(a, b):
        return fn(a, b).astype(np.float64)

    return f


UNARY_FN = {
    "neg": np.negative,
    "abs": np.abs,
    "square": np.square,
    "sqrt": np.sqrt,
    "floor": np.floor,
    "round": np.rint,  # half to even, like Python's round() and np.round()
}
BINARY_FN = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "mod": np.mod,  # floor-mod, like Python's %
    "min": np.minimum,
    "max": np.maximum,
    "ge": _cmp(np.greater_equal),
    "gt": _cmp(np.greater),
    "eq": _cmp(np.equal),
}


# ---- sympy -------------------------------------------------------------------------------------

_SymRound = sympy.Function("round")


def _is_nice(v: float) -> bool:
    """At most two significant digits (0.5, 0.01, 2.5, ...): shown as a SymPy Rational."""
    return math.isfinite(v) and float(f"{v:.1e}") == v


def to_sympy(t: Tree, syms: Sequence[sympy.Symbol]) -> sympy.Expr:
    op = t[0]
    if op == "var":
        return syms[t[1]]
    if op == "int":
        return sympy.Integer(int(t[1]))
    if op == "num":
        v = float(t[1])
        if v == int(v) and abs(v) < 1e15:
            return sympy.Integer(int(v))
        return sympy.Rational(repr(v)) if _is_nice(v) else sympy.Float(v)
    args = [to_sympy(ch, syms) for ch in t[1:]] if op not in COMPARE and op != "where" else None
    if op == "neg":
        return -args[0]
    if op == "abs":
        return sympy.Abs(args[0])
    if op == "square":
        return args[0] ** 2
    if op == "sqrt":
        return sympy.sqrt(args[0])
    if op == "floor":
        return sympy.floor(args[0])
    if op == "round":
        return _SymRound(args[0])
    if op == "add":
        return args[0] + args[1]
    if op == "sub":
        return args[0] - args[1]
    if op == "mul":
        return args[0] * args[1]
    if op == "div":
        return args[0] / args[1]
    if op == "mod":
        return sympy.Mod(args[0], args[1])
    if op == "min":
        return sympy.Min(args[0], args[1])
    if op == "max":
        return sympy.Max(args[0], args[1])
    if op in COMPARE:
        return sympy.Piecewise((1, _sym_cond(t, syms)), (0, True))
    if op == "where":
        return sympy.Piecewise((to_sympy(t[2], syms), _sym_cond(t[1], syms)), (to_sympy(t[3], syms), True))
    raise ValueError(f"unknown node {op!r}")  # pragma: no cover


def _sym_cond(t: Tree, syms: Sequence[sympy.Symbol]) -> Any:
    if t[0] in COMPARE:
        a, b = to_sympy(t[1], syms), to_sympy(t[2], syms)
        return {"ge": sympy.Ge, "gt": sympy.Gt, "eq": sympy.Eq}[t[0]](a, b)
    return sympy.Ne(to_sympy(t, syms), 0)


def light_simplify(expr: sympy.Expr) -> sympy.Expr:
    try:
        if sympy.count_ops(expr) > 25:
            return expr
        simple = sympy.simplify(expr)
        return simple if sympy.count_ops(simple) <= sympy.count_ops(expr) else expr
    except Exception:  # noqa: BLE001 - simplification is cosmetic
        return expr
