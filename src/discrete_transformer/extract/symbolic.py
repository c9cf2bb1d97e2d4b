"""Enumerative bottom-up symbolic regression for the small "numerical MLPs" (R^m -> R, m <= 3).

DESIGN.md §4.3: sample an MLP on the inputs it sees, search a grammar of expressions from the
smallest up, return a Pareto front (size vs. error) and pick the smallest expression that meets
the tolerance. PySR is not an option (Julia), so this is our own search:

* **Bottom-up enumeration by size.** Level 1 holds the input variables and the small integer
  constants; level ``s`` applies every unary operator to level ``s-1``, every binary operator to
  levels ``(i, s-1-i)`` and ``where(c, a, b)`` to levels ``(i, j, s-1-i-j)`` (``c`` a 0/1-valued
  expression, e.g. a comparison). Every candidate is evaluated vectorised with NumPy, a whole
  block of candidates at a time, on a *probe*: at most a few hundred rows of the data.
* **Observational-equivalence pruning.** Only the first (hence smallest) expression per distinct
  probe output vector is kept (a 64-bit fingerprint of the values rounded to ~1e-9 relative);
  non-finite and constant outputs are dropped (constants exist only as leaves); commutative
  operators enumerate one operand order; ``/`` and ``%`` reject zero divisors, ``sqrt`` negative
  arguments.
* **Fitted real constants.** For every enumerated expression ``e`` the least-squares forms
  ``c*e``, ``e + d`` (size + 2) and ``c*e + d`` (size + 4) are scored in closed form from a few
  dot products. Constants are snapped to "nice" values (integers, halves, 1-3 significant
  digits, ...) when that keeps the candidate within tolerance.
* **Sparse linear combinations.** When no expression of the grammar is exact, a beam search
  (forward selection with orthogonal residuals, as in orthogonal matching pursuit) looks for
  ``c1*e1 + ... + ck*ek + d`` (k <= 4) over the smallest enumerated expressions: the form a
  weighted sum of several features takes (``4.1*u0*(u1 + 1) - 2*u1 + 0.7``), which a single
  fitted affine pair cannot express. Its size counts every node, so it only wins when nothing
  smaller is exact.
* **Counterexample-guided verification.** A candidate that is exact on the probe is re-fitted
  and checked on the search subsample (``max_samples`` rows) and then on all the data. If it
  fails there, the offending rows join the probe and the search restarts (a few times at most),
  so the pruning cannot hide the true answer behind an expression that only agrees on the probe.
* **Stopping.** The search stops at ``max_size``, at the budget, or as soon as an exact
  candidate is known and every smaller size has been enumerated (the smallest exact expression
  is the answer). The Pareto front keeps the best candidate per size. The budget is *work*, not
  wall time: ``time_budget`` seconds are converted into a number of candidate values evaluated
  (``WORK_PER_SECOND``, measured on the reference 2-core machine), so the same inputs give the
  same result on a busy or an idle machine. A wall-clock cap (``WALL_FACTOR`` × the budget)
  only guards against a machine many times slower than the reference.

Only front members are turned into SymPy (lightly simplified) and into Python / NumPy source by
our own printer (``%`` is floor-mod in both Python and ``np.mod``; ``where`` becomes a
conditional expression / ``np.where``).
"""

from __future__ import annotations

import bisect
import keyword
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import sympy

if TYPE_CHECKING:  # pragma: no cover
    import rich.table

__all__ = [
    "ALL_OPERATORS",
    "Candidate",
    "SRConfig",
    "SRResult",
    "evaluate_source",
    "symbolic_regression",
]

UNARY_OPS = ("neg", "abs", "square", "sqrt", "floor", "round")
BINARY_OPS = ("mul", "add", "sub", "div", "mod", "min", "max", "ge", "gt", "eq")
ALL_OPERATORS = UNARY_OPS + BINARY_OPS + ("where",)
_COMMUTATIVE = frozenset({"add", "mul", "min", "max", "eq"})
_COMPARE = frozenset({"ge", "gt", "eq"})

_PROBE_ROWS = 256  # rows the enumeration evaluates every candidate on
_BLOCK_ROWS = 4096  # candidates evaluated per vectorised block
_STORE_CAP = 16_000_000  # max floats kept for operand pools (128 MB)
_MAX_RESTARTS = 4
_COUNTEREXAMPLES = 8
_QUANT_SHIFT = 22  # drop 22 of 52 mantissa bits: values rounded to ~1e-9 relative
_TINY = 1e-12  # |v| below this fingerprints as 0
_INT_SALT = 0x2545F4914F6CDD1D  # mixed into the fingerprint of all-integer vectors
_LIN_TERMS = 4  # max terms of a linear combination c1*e1 + ... + ck*ek + d
_LIN_POOL = 6000  # the smallest enumerated expressions it draws its terms from
_LIN_BEAM = 16  # partial combinations kept per number of terms
_LIN_TERM_SIZE = 5  # max size of one term


# Candidate values (expressions × probe rows) the search evaluates per nominal second: measured
# on the reference machine (2 cores, idle) by `python -m discrete_transformer.extract.symbolic`.
WORK_PER_SECOND = 1.2e8
# Wall-clock cap, as a multiple of the nominal budget: reached only on a much slower machine.
WALL_FACTOR = 4.0


@dataclass(frozen=True)
class SRConfig:
    max_size: int = 9  # max expression size (nodes)
    time_budget: float = 3.0  # nominal seconds of work (× WORK_PER_SECOND candidate values)
    operators: tuple[str, ...] = (
        "add", "sub", "mul", "div", "mod", "floor", "round", "abs", "min", "max", "square",
        "sqrt", "neg", "ge", "gt", "eq", "where",
    )  # the grammar; a subset restricts it
    # Integer constants of the grammar; None = derived from the data (`data_constants`): 0, 1, 2
    # and the integers the data's ranges suggest (a modulus, a divisor, a threshold).
    int_constants: tuple[int, ...] | None = None
    fit_constants: bool = True  # allow real constants fitted by least squares
    max_samples: int = 4000  # subsample the data for search; final errors on all data


@dataclass(frozen=True)
class Candidate:
    size: int  # complexity (node count, a fitted constant counts 1)
    expr: sympy.Expr  # simplified, with sympy Symbols named as the input names
    source: str  # Python expression over the input names (builtins + `math` only), scalar inputs
    numpy_source: str  # same expression for NumPy arrays, using the name `np`
    mse: float  # on the given data
    max_error: float
    exact: bool  # all errors within tolerance


@dataclass(frozen=True)
class SRResult:
    front: tuple[Candidate, ...]  # Pareto front: increasing size, strictly decreasing error
    picked: int  # index in front of the chosen candidate
    names: tuple[str, ...]

    @property
    def best(self) -> Candidate:
        return self.front[self.picked]

    def table(self) -> "rich.table.Table":
        """PySR-style equations table; the picked row is marked with ▶."""
        from rich.table import Table

        table = Table(title=f"symbolic regression over ({', '.join(self.names)})")
        table.add_column("", justify="center")
        table.add_column("size", justify="right")
        table.add_column("mse", justify="right")
        table.add_column("max error", justify="right")
        table.add_column("exact", justify="center")
        table.add_column("expression")
        for i, c in enumerate(self.front):
            table.add_row(
                "▶" if i == self.picked else "",
                str(c.size),
                f"{c.mse:.3g}",
                f"{c.max_error:.3g}",
                "✓" if c.exact else "",
                c.source,
                style="bold" if i == self.picked else None,
            )
        return table


def evaluate_source(source: str, names: Sequence[str], values: Sequence[Any], *, numpy: bool = False) -> Any:
    """Evaluate a candidate's ``source`` (``numpy=False``) or ``numpy_source`` on ``values``."""
    env: dict[str, Any] = {"__builtins__": __builtins__}
    env["np" if numpy else "math"] = np if numpy else math
    return eval(source, env, dict(zip(names, values)))  # noqa: S307 - our own generated text


# --------------------------------------------------------------------------------------------
# Expression trees (final form): tuples
#   ("var", i) | ("int", k) | ("num", value) | (unary_op, x) | (binary_op, x, y) | ("where", c, a, b)
# --------------------------------------------------------------------------------------------

Tree = tuple


def _tree_size(t: Tree) -> int:
    if t[0] in ("var", "int", "num"):
        return 1
    return 1 + sum(_tree_size(ch) for ch in t[1:])


def _round_mod_dividends(t: Tree, X: np.ndarray) -> Tree:
    """`e % k` -> `round(e) % k` wherever the computed dividend `e` is integer-valued on the
    samples. Why: `mean * (pos + 1)` is an integer up to float dust (5.9999…), which `%` turns
    into a wrong answer (2.9999… instead of 0) on inputs the samples did not contain, e.g. longer
    sequences. On the samples the rounded tree computes the same values."""
    op = t[0]
    if op in ("var", "int", "num"):
        return t
    kids = tuple(_round_mod_dividends(ch, X) for ch in t[1:])
    if op == "mod" and not _integer_by_construction(kids[0], X):
        e = _eval_tree(kids[0], X)
        if e.size and bool(np.all(np.isfinite(e))) and bool(
            np.all(np.abs(e - np.round(e)) <= 1e-9 * np.maximum(1.0, np.abs(e)))
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


def _eval_tree(t: Tree, X: np.ndarray) -> np.ndarray:
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
        out = _UNARY_FN[op](_ev(t[1], X, memo))
    else:
        out = _BINARY_FN[op](_ev(t[1], X, memo), _ev(t[2], X, memo))
    memo[key] = out
    return out


def _cmp(fn):
    def f(a, b):
        return fn(a, b).astype(np.float64)

    return f


_UNARY_FN = {
    "neg": np.negative,
    "abs": np.abs,
    "square": np.square,
    "sqrt": np.sqrt,
    "floor": np.floor,
    "round": np.rint,  # half to even, like Python's round() and np.round()
}
_BINARY_FN = {
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


# ---- printing --------------------------------------------------------------------------------

_ATOM, _POW, _UNARY, _MUL, _ADD, _CMP = 100, 90, 80, 70, 60, 50
_CMP_SYM = {"ge": ">=", "gt": ">", "eq": "=="}
_ARITH = {"add": ("+", _ADD), "sub": ("-", _ADD), "mul": ("*", _MUL), "div": ("/", _MUL), "mod": ("%", _MUL)}


def _fmt_num(v: float) -> str:
    v = float(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _render(t: Tree, names: Sequence[str], np_mode: bool) -> tuple[str, int, str]:
    """(text, precedence, root op) of a tree as Python (np_mode False) or NumPy source."""
    op = t[0]
    if op == "var":
        return names[t[1]], _ATOM, op
    if op in ("int", "num"):
        text = _fmt_num(t[1])
        return text, (_UNARY if text.startswith("-") else _ATOM), op

    def sub(ch: Tree) -> tuple[str, int, str]:
        return _render(ch, names, np_mode)

    def wrap(r: tuple[str, int, str], cond: bool) -> str:
        return f"({r[0]})" if cond else r[0]

    if op == "neg":
        x = sub(t[1])
        return "-" + wrap(x, x[1] < _ATOM), _UNARY, op
    if op == "square":
        x = sub(t[1])
        return wrap(x, x[1] <= _POW) + " ** 2", _POW, op
    if op in ("abs", "sqrt", "floor", "round"):
        x = sub(t[1])[0]
        if np_mode:
            fn = {"abs": "np.abs", "sqrt": "np.sqrt", "floor": "np.floor", "round": "np.round"}[op]
        else:
            fn = {"abs": "abs", "sqrt": "math.sqrt", "floor": "math.floor", "round": "round"}[op]
        return f"{fn}({x})", _ATOM, op
    if op in ("min", "max"):
        a, b = sub(t[1])[0], sub(t[2])[0]
        fn = ("np.minimum" if op == "min" else "np.maximum") if np_mode else op
        return f"{fn}({a}, {b})", _ATOM, op
    if op in _ARITH:
        sym, prec = _ARITH[op]
        a, b = sub(t[1]), sub(t[2])
        if op == "mul" and b[2] in ("int", "num") and a[2] not in ("int", "num"):
            a, b = b, a  # "2 * x", not "x * 2"
        mixed_mod = prec == _MUL and a[1] == _MUL and ((a[2] == "mod") != (op == "mod"))
        left = wrap(a, a[1] < prec or mixed_mod)
        # a + (b + c) -> a + b + c and a * (b * c) -> a * b * c (same value up to rounding)
        assoc = op in ("add", "mul") and b[2] == op
        right = wrap(b, b[1] < prec or (b[1] == prec and not assoc))
        return f"{left} {sym} {right}", prec, op
    if op in _COMPARE:
        text = _render_cond(t, names, np_mode)
        if np_mode:
            return f"np.where({text}, 1.0, 0.0)", _ATOM, op
        return f"(1 if {text} else 0)", _ATOM, op
    if op == "where":
        cond = _render_cond(t[1], names, np_mode)
        a, b = sub(t[2])[0], sub(t[3])[0]
        if np_mode:
            return f"np.where({cond}, {a}, {b})", _ATOM, op
        return f"({a} if {cond} else {b})", _ATOM, op
    raise ValueError(f"unknown node {op!r}")  # pragma: no cover


def _render_cond(t: Tree, names: Sequence[str], np_mode: bool) -> str:
    """A boolean condition: a comparison printed bare, anything else as ``x != 0``."""
    if t[0] in _COMPARE:
        a, b = _render(t[1], names, np_mode), _render(t[2], names, np_mode)
        left = f"({a[0]})" if a[1] <= _CMP else a[0]
        right = f"({b[0]})" if b[1] <= _CMP else b[0]
        return f"{left} {_CMP_SYM[t[0]]} {right}"
    x = _render(t, names, np_mode)
    return (f"({x[0]})" if x[1] <= _CMP else x[0]) + " != 0"


def _sources(t: Tree, names: Sequence[str]) -> tuple[str, str]:
    py = _render(t, names, False)[0]
    if t[0] in ("int", "num"):  # a constant: broadcast it for arrays
        return py, f"np.full(np.shape({names[0]}), {py})" if names else py
    return py, _render(t, names, True)[0]


# ---- sympy -------------------------------------------------------------------------------------

_SymRound = sympy.Function("round")


def _is_nice(v: float) -> bool:
    """At most two significant digits (0.5, 0.01, 2.5, ...): shown as a SymPy Rational."""
    return math.isfinite(v) and float(f"{v:.1e}") == v


def _to_sympy(t: Tree, syms: Sequence[sympy.Symbol]) -> sympy.Expr:
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
    args = [_to_sympy(ch, syms) for ch in t[1:]] if op not in _COMPARE and op != "where" else None
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
    if op in _COMPARE:
        return sympy.Piecewise((1, _sym_cond(t, syms)), (0, True))
    if op == "where":
        return sympy.Piecewise(
            (_to_sympy(t[2], syms), _sym_cond(t[1], syms)), (_to_sympy(t[3], syms), True)
        )
    raise ValueError(f"unknown node {op!r}")  # pragma: no cover


def _sym_cond(t: Tree, syms: Sequence[sympy.Symbol]) -> Any:
    if t[0] in _COMPARE:
        a, b = _to_sympy(t[1], syms), _to_sympy(t[2], syms)
        return {"ge": sympy.Ge, "gt": sympy.Gt, "eq": sympy.Eq}[t[0]](a, b)
    return sympy.Ne(_to_sympy(t, syms), 0)


def _light_simplify(expr: sympy.Expr) -> sympy.Expr:
    try:
        if sympy.count_ops(expr) > 25:
            return expr
        simple = sympy.simplify(expr)
        return simple if sympy.count_ops(simple) <= sympy.count_ops(expr) else expr
    except Exception:  # noqa: BLE001 - simplification is cosmetic
        return expr


# --------------------------------------------------------------------------------------------
# Fitted constants
# --------------------------------------------------------------------------------------------


def _nice_values(v: float) -> list[float]:
    """Candidate values for a fitted constant, simplest first, ending with ``v`` itself."""
    out: list[float] = []
    if not math.isfinite(v):
        return out
    cands = [float(round(v)), round(2 * v) / 2.0]
    cands += [float(f"{v:.{k}e}") for k in range(12)]
    cands.append(float(v))
    for c in cands:
        if math.isfinite(c) and c not in out:
            out.append(c)
    return out


def _ls_affine(e: np.ndarray, t: np.ndarray, form: str) -> tuple[float, float]:
    """Least-squares constants (c, d) of ``c*e + d`` for the form ('ce': d=0, 'ed': c=1)."""
    with np.errstate(all="ignore"):
        if form == "ce":
            ee = float(e @ e)
            return (float(e @ t) / ee if ee > 0 else 0.0), 0.0
        if form == "ed":
            return 1.0, float(np.mean(t - e))
        if form == "k":
            return 0.0, float(np.mean(t))
        me, mt = float(e.mean()), float(t.mean())
        ec = e - me
        see = float(ec @ ec)
        c = float(ec @ (t - mt)) / see if see > 0 else 0.0
        return c, mt - c * me


def _apply_form(form: str, base: Tree | None, c: float, d: float) -> Tree:
    if form == "e":
        assert base is not None
        return base
    if form == "k":
        return ("num", float(d))
    assert base is not None
    body = base
    if form in ("ce", "ced"):
        body = ("neg", base) if c == -1.0 else base if c == 1.0 else ("mul", ("num", float(c)), base)
    if form in ("ed", "ced") and d != 0.0:
        body = ("sub", body, ("num", float(-d))) if d < 0 else ("add", body, ("num", float(d)))
    return body


def _form_pred(form: str, e: np.ndarray | None, c: float, d: float, n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        if form == "e":
            return e  # type: ignore[return-value]
        if form == "k":
            return np.full(n, d)
        if form == "ce":
            return c * e
        if form == "ed":
            return e + d
        return c * e + d


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


class _Restart(Exception):
    def __init__(self, rows: np.ndarray) -> None:
        super().__init__()
        self.rows = rows


_FORM_EXTRA = {"e": 0, "ce": 2, "ed": 2, "ced": 4}


class _Problem:
    """Everything that survives restarts: data, targets, exactness, verified exact candidates."""

    def __init__(self, X, y, t, names, tolerance, config, integer_target, deadline, S, work_limit=math.inf):
        self.X, self.y, self.t = X, y, t
        self.names = names
        self.tol = float(tolerance)
        self.cfg = config
        self.integer = integer_target
        self.deadline = deadline  # wall-clock cap (perf_counter)
        self.work_limit = work_limit  # candidate values the enumeration may evaluate
        self.work = 0.0  # candidate values evaluated so far (enumeration and linear stage)
        self.S = S  # search-subsample row indices
        self.full_is_S = len(S) == len(y)
        self.XS, self.tS = X[S], t[S]
        self.exact: tuple[int, float, Tree] | None = None  # (size, mse on S, tree)
        self.restarts = 0
        given = config.int_constants
        self.constants = tuple(dict.fromkeys(int(k) for k in given)) if given is not None else (
            data_constants(X, t))

    @property
    def exact_size(self) -> int:
        return self.exact[0] if self.exact is not None else 1 << 30

    def is_exact(self, pred: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Row-wise (last axis) exactness of predictions."""
        with np.errstate(all="ignore"):
            if self.integer:
                return (np.rint(pred) == t).all(axis=-1)
            return (np.abs(pred - t) <= self.tol).all(axis=-1)

    def errors(self, pred: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Per-row violation magnitude (0 where fine)."""
        with np.errstate(all="ignore"):
            if self.integer:
                bad = np.rint(pred) != t
            else:
                bad = ~(np.abs(pred - t) <= self.tol)
            err = np.abs(pred - t)
            return np.where(bad, np.where(np.isfinite(err), err, np.inf), 0.0)

    def fit_snap(self, form: str, e: np.ndarray | None, t: np.ndarray) -> tuple[float, float] | None:
        """Nicest constants (c, d) that make the form exact on (e, t), or None."""
        n = t.shape[0]
        ok = lambda c, d: bool(self.is_exact(_form_pred(form, e, c, d, n), t))  # noqa: E731
        if form == "e":
            return (1.0, 0.0) if ok(1.0, 0.0) else None
        c0, d0 = _ls_affine(e if e is not None else t, t, form)
        if form == "k":
            for d in _nice_values(d0):
                if ok(0.0, d):
                    return 0.0, d
            return None
        if form == "ed":
            for d in _nice_values(d0):
                if d != 0.0 and ok(1.0, d):
                    return 1.0, d
            return None
        if form == "ce":
            for c in _nice_values(c0):
                if c not in (0.0, 1.0) and ok(c, 0.0):
                    return c, 0.0
            return None
        assert e is not None
        for c in _nice_values(c0):
            if c in (0.0, 1.0):
                continue
            with np.errstate(all="ignore"):
                dc = float(np.mean(t - c * e))
            for d in _nice_values(dc):
                if d != 0.0 and ok(c, d):
                    return c, d
        return None


class _FingerprintSet:
    """A set of int64 fingerprints with a vectorised insert (open addressing, linear probing).

    Why: the enumeration deduplicates every candidate against all earlier ones; a Python loop
    over ``set.add`` was half of symbolic regression's time (Base_3_Addition: 40 of 78 s).
    ``add_new`` keeps the loop's semantics exactly: a row is new when its key is in neither the
    set nor an earlier row of the same batch."""

    def __init__(self, log2_capacity: int = 16) -> None:
        self.slots = np.zeros(1 << log2_capacity, dtype=np.int64)  # 0 = empty slot
        self.size = 0
        self.has_zero = False  # the key 0 (the empty marker) is kept aside

    def __len__(self) -> int:
        return self.size + int(self.has_zero)

    def __contains__(self, key: int) -> bool:
        key = int(key)
        if key == 0:
            return self.has_zero
        mask = self.slots.size - 1
        p = int(self._home(np.array([key], dtype=np.int64))[0])
        while True:
            s = int(self.slots[p])
            if s == key:
                return True
            if s == 0:
                return False
            p = (p + 1) & mask

    def add_new(self, keys: np.ndarray) -> np.ndarray:
        """Insert ``keys`` (int64); the ascending indices of the rows whose key was new."""
        uniq, first = np.unique(np.asarray(keys, dtype=np.int64), return_index=True)
        new = np.zeros(uniq.size, dtype=bool)
        nonzero = uniq != 0
        if not nonzero.all():
            new[~nonzero] = not self.has_zero
            self.has_zero = True
        cand = np.flatnonzero(nonzero)
        if 2 * (self.size + cand.size) > self.slots.size:  # keep the load factor <= 1/2
            self._grow(self.size + cand.size)
        added = self._insert(uniq[cand])
        new[cand] = added
        self.size += int(added.sum())
        return np.sort(first[new])

    def _grow(self, needed: int) -> None:
        old = self.slots[self.slots != 0]
        cap = self.slots.size
        while 2 * needed > cap:
            cap *= 2  # doubling: 9 M keys (Base_3_Addition) fit 2**25 slots, 256 MB
        self.slots = np.zeros(cap, dtype=np.int64)
        self._insert(old)

    def _home(self, keys: np.ndarray) -> np.ndarray:
        """First slot of each key: the top bits of a Fibonacci-hash product (a fingerprint's low
        bits are often all 0 for integer-valued candidates, so ``key & mask`` would cluster)."""
        bits = self.slots.size.bit_length() - 1
        mixed = keys.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return (mixed >> np.uint64(64 - bits)).astype(np.int64)

    def _insert(self, keys: np.ndarray) -> np.ndarray:
        """Insert distinct non-zero keys; True where a key was not already present."""
        slots, mask = self.slots, self.slots.size - 1
        pos = self._home(keys)
        new = np.zeros(keys.size, dtype=bool)
        pending = np.arange(keys.size)
        while pending.size:
            p, k = pos[pending], keys[pending]
            s = slots[p]
            empty = s == 0
            slots[p[empty]] = k[empty]  # of keys racing for one empty slot, one wins
            won = empty & (slots[p] == k)
            new[pending[won]] = True
            go_on = ~(won | (s == k))  # lost a race, or the slot holds another key: probe on
            pending = pending[go_on]
            pos[pending] = (pos[pending] + 1) & mask
        return new


class _Search:
    def __init__(self, prob: _Problem, probe: np.ndarray, seed: int) -> None:
        self.prob = prob
        cfg = prob.cfg
        self.max_size = cfg.max_size
        self.fit = cfg.fit_constants
        ops = set(cfg.operators)
        self.unary = [o for o in UNARY_OPS if o in ops]
        self.binary = [o for o in BINARY_OPS if o in ops]
        self.use_where = "where" in ops
        self.probe = probe
        self.Xp = prob.X[probe]
        self.tp = prob.t[probe]
        self.P = len(probe)
        self.st = float(self.tp.sum())
        self.stt = float(self.tp @ self.tp)
        self.stt_c = float(((self.tp - self.tp.mean()) ** 2).sum())
        self.thr2 = 0.25 if prob.integer else prob.tol**2
        rng = np.random.default_rng([seed, 0x5EED])
        self.R = rng.integers(-(2**62), 2**62, size=self.P, dtype=np.int64) | 1
        self.seen = _FingerprintSet()
        self.block_start: list[int] = []
        self.block_info: list[tuple] = []
        self.next_id = 0
        self.levels: dict[int, dict[str, Any]] = {}
        self.pending: list[np.ndarray] = []
        self.pending_stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.stored = 0
        self.store_level = False
        self.level = 0
        self.best: dict[int, tuple[float, str, int | None]] = {}  # size -> (sse, form, id)
        self.trees: dict[int, Tree] = {}
        self.linear_trees: list[Tree] = []  # best linear combination per number of terms
        self.linear_done = False

    # ---- bookkeeping ------------------------------------------------------------------------

    def _tick(self, work: int = 0) -> None:
        if self._spent(work, (self.prob.work_limit, self.prob.deadline)):
            raise _Stop

    def _spent(self, work: float, limit: tuple[float, float]) -> bool:
        """Count `work` candidate values; True once past (work limit, wall-clock cap)."""
        self.prob.work += work
        return self.prob.work > limit[0] or time.perf_counter() > limit[1]

    def node(self, i: int) -> tuple[str, Any, Any, Any]:
        b = bisect.bisect_right(self.block_start, i) - 1
        off = i - self.block_start[b]
        op, a, bb, c = self.block_info[b]
        pick = lambda v: v if v is None or isinstance(v, int) else int(v[off])  # noqa: E731
        return op, pick(a), pick(bb), pick(c)

    def tree(self, i: int) -> Tree:
        t = self.trees.get(i)
        if t is None:
            op, a, b, c = self.node(i)
            if op == "var":
                t = ("var", a)
            elif op == "int":
                t = ("int", a)
            elif op == "where":
                t = ("where", self.tree(a), self.tree(b), self.tree(c))
            elif b is None:
                t = (op, self.tree(a))
            else:
                t = (op, self.tree(a), self.tree(b))
            self.trees[i] = t
        return t

    # ---- block processing ---------------------------------------------------------------------

    def _emit(self, size: int, vals: np.ndarray, op: str, a, b=None, c=None, leaf=False, affine=True) -> None:
        """Prune, store and score one block of candidates (rows of ``vals``) built by ``op``."""
        self._tick(vals.size)
        k = vals.shape[0]
        if k == 0:
            return
        with np.errstate(all="ignore"):
            s = vals.sum(axis=1)
        ok = np.isfinite(s)
        if not leaf:
            ok &= (vals != vals[:, :1]).any(axis=1)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return
        V = vals[idx] if idx.size < k else vals
        W = np.where(np.abs(V) < _TINY, 0.0, V)
        is_int = (W == np.rint(W)).all(axis=1)  # before W's bits are quantised in place
        q = W.view(np.int64)
        q += 1 << (_QUANT_SHIFT - 1)
        q >>= _QUANT_SHIFT
        h = q @ self.R
        # Integer-valuedness is kept apart: round(s) and s differ by float noise only (within the
        # fingerprint's resolution), yet only the former survives a later `% 2` or floor exactly.
        h ^= is_int.astype(np.int64) * _INT_SALT
        sel_a = self.seen.add_new(h)  # ascending: each new fingerprint's first row
        if sel_a.size == 0:
            return
        if sel_a.size < V.shape[0]:
            V = V[sel_a]
        rows = idx[sel_a]
        first = self.next_id
        self.next_id += int(sel_a.size)

        def pick(v):
            return v if v is None or isinstance(v, int) else np.asarray(v)[rows]

        self.block_start.append(first)
        self.block_info.append((op, pick(a), pick(b), pick(c)))
        if self.store_level:
            if (self.stored + V.size) <= _STORE_CAP:
                zero, neg = V == 0, V < 0
                self.pending.append(V)
                self.pending_stats.append(
                    (
                        ~zero.any(axis=1),
                        ~neg.any(axis=1),
                        (zero | (V == 1)).all(axis=1) & zero.any(axis=1),  # 0/1-valued, not constant
                    )
                )
                self.stored += V.size
            else:
                self.store_level = False  # pool full: later levels see a prefix of this one
        self._score(size, first, V, s[rows], affine)

    def _score(self, size: int, first: int, V: np.ndarray, sB: np.ndarray, affine: bool) -> None:
        P, tp = self.P, self.tp
        with np.errstate(all="ignore"):
            sBB = np.einsum("ij,ij->i", V, V)
            sBy = V @ tp
            slack = 1e-9 * (sBB + self.stt) + 1e-300
            limit = P * self.thr2 + slack
            sse0 = np.maximum(sBB - 2.0 * sBy + self.stt, 0.0)
            self._consider(size, "e", first, V, sse0, limit, None, None)
            if not affine or not self.fit:
                return
            if size + 2 <= self.max_size:
                c1 = np.where(sBB > 0, sBy / sBB, 0.0)
                sse1 = np.maximum(self.stt - sBy * c1, 0.0)
                self._consider(size + 2, "ce", first, V, sse1, limit, c1, None)
                d2 = (self.st - sB) / P
                sse2 = np.maximum(sse0 - P * d2 * d2, 0.0)
                self._consider(size + 2, "ed", first, V, sse2, limit, None, d2)
            if size + 4 <= self.max_size:
                see = sBB - sB * sB / P
                good = see > 1e-12 * sBB
                see = np.where(good, see, 1.0)
                set_ = sBy - sB * self.st / P
                c3 = np.where(good, set_ / see, 0.0)
                d3 = (self.st - c3 * sB) / P
                sse3 = np.where(good, np.maximum(self.stt_c - set_ * c3, 0.0), np.inf)
                self._consider(size + 4, "ced", first, V, sse3, limit, c3, d3)

    def _consider(self, size, form, first, V, sse, limit, c, d) -> None:
        j = int(np.argmin(sse))
        cur = self.best.get(size)
        if cur is None or sse[j] < cur[0]:
            self.best[size] = (float(sse[j]), form, first + j)
        if size >= self.prob.exact_size:
            return
        rows = np.flatnonzero(sse <= limit)
        if rows.size == 0:
            return
        Vr = V[rows]
        with np.errstate(all="ignore"):
            if c is not None:
                Vr = Vr * c[rows, None]
            if d is not None:
                Vr = Vr + d[rows, None]
        ex = rows[self.prob.is_exact(Vr, self.tp)]
        for j in ex[np.argsort(sse[ex], kind="stable")]:
            if size >= self.prob.exact_size:
                break
            self._escalate(size, form, first + int(j))

    def _escalate(self, size: int, form: str, i: int | None) -> None:
        """A candidate exact on the probe: refit on the subsample, snap, verify on all data."""
        prob = self.prob
        base = self.tree(i) if i is not None else None
        eS = _eval_tree(base, prob.XS) if base is not None else None
        cd = prob.fit_snap(form, eS, prob.tS)
        if cd is None:
            c, d = _ls_affine(eS if eS is not None else prob.tS, prob.tS, form) if form != "e" else (1.0, 0.0)
            self._counterexample(prob.S, _form_pred(form, eS, c, d, len(prob.S)), prob.tS)
            return
        tree = _apply_form(form, base, *cd)
        if not prob.full_is_S:
            pred = _eval_tree(tree, prob.X)
            if not prob.is_exact(pred, prob.t):
                self._counterexample(np.arange(len(prob.t)), pred, prob.t)
                return
        pred_S = _eval_tree(tree, prob.XS)
        with np.errstate(all="ignore"):
            mse = float(np.mean((pred_S - prob.y[prob.S]) ** 2))
        prob.exact = (min(size, _tree_size(tree)), mse, tree)

    def _counterexample(self, rows: np.ndarray, pred: np.ndarray, t: np.ndarray) -> None:
        prob = self.prob
        if prob.restarts >= _MAX_RESTARTS:
            return
        err = prob.errors(pred, t)
        order = np.argsort(-err, kind="stable")
        have = set(self.probe.tolist())
        new = [int(rows[j]) for j in order[: 4 * _COUNTEREXAMPLES] if err[j] > 0 and int(rows[j]) not in have]
        if new:
            prob.restarts += 1
            raise _Restart(np.asarray(new[:_COUNTEREXAMPLES], dtype=np.int64))

    # ---- linear combinations ------------------------------------------------------------------

    def _pool(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probe values (N, P), ids and sizes of the smallest stored non-constant expressions
        (a level holds the expressions of its size)."""
        Vs, ids, sizes, n = [], [], [], 0
        for size in sorted(self.levels):
            if size > _LIN_TERM_SIZE or n >= _LIN_POOL:
                break
            lv = self.levels[size]
            V, I = lv["V"][: _LIN_POOL - n], lv["ids"][: _LIN_POOL - n]
            keep = np.ptp(V, axis=1) > 0
            Vs.append(V[keep])
            ids.append(I[keep])
            sizes.append(np.full(int(keep.sum()), size))
            n += int(keep.sum())
        if not Vs:
            return np.zeros((0, self.P)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(Vs), np.concatenate(ids), np.concatenate(sizes)

    def linear_combinations(self, budget: tuple[float, float]) -> None:
        """Beam search for ``c1*e1 + ... + ck*ek + d`` (see the module docstring): at each k,
        every partial combination is extended by the pool expression that most reduces the
        least-squares residual (all candidates scored at once against the residual orthogonal to
        the chosen terms)."""
        if self.linear_done or not self.fit or not {"add", "mul"} <= set(self.prob.cfg.operators):
            return
        self.linear_done = True
        V, ids, sizes = self._pool()
        if V.shape[0] < 2 or self._spent(0, budget):
            return
        with np.errstate(all="ignore"):
            U = V - V.mean(axis=1, keepdims=True)
            U /= np.sqrt(np.einsum("ij,ij->i", U, U))[:, None]  # (N, P) unit, centred
        # Expressions equal up to scale and offset (u0, u0/3, 2 - u0) are one term: keep the
        # smallest (the pool is in size order).
        lead = U[np.arange(U.shape[0]), np.argmax(np.abs(U) > 1e-6, axis=1)]
        _, first = np.unique(np.round(U * np.sign(lead)[:, None], 9), axis=0, return_index=True)
        first = np.sort(first)
        U, ids, sizes = U[first], ids[first], sizes[first]
        tc = self.tp - self.tp.mean()
        limit = self.P * self.thr2 + 1e-9 * self.stt
        beam: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.zeros((self.P, 0)))]
        for k in range(1, _LIN_TERMS + 1):
            cands: dict[frozenset, tuple[float, int, tuple[int, ...], np.ndarray]] = {}
            for terms, Q in beam:
                if self._spent(U.size * (1 + Q.shape[1]), budget):
                    return
                R = U - (U @ Q) @ Q.T if Q.shape[1] else U  # candidates orthogonal to the terms
                r = tc - Q @ (Q.T @ tc)
                with np.errstate(all="ignore"):
                    rn2 = np.einsum("ij,ij->i", R, R)
                    gain = np.where(rn2 > 1e-10, (R @ r) ** 2 / rn2, -1.0)
                if terms:
                    gain[list(terms)] = -1.0
                top = np.argsort(-gain, kind="stable")[:_LIN_BEAM]
                for j in top:
                    if gain[j] <= 0:
                        continue
                    key = frozenset(terms + (int(j),))
                    sse = float(r @ r - gain[j])
                    if key not in cands or sse < cands[key][0]:
                        q = R[j] / math.sqrt(rn2[j])
                        cands[key] = (sse, int(sizes[list(key)].sum()), terms + (int(j),), np.column_stack([Q, q]))
            if not cands:
                return
            ranked = sorted(cands.values(), key=lambda c: (c[0], c[1]))
            beam = [(c[2], c[3]) for c in ranked[:_LIN_BEAM]]
            self.linear_trees.append(self._linear_shortest([int(ids[j]) for j in beam[0][0]]))
            hits = sorted((c for c in ranked if c[0] <= limit), key=lambda c: (c[1], c[0]))
            for _sse, _size, terms, _Q in hits[:_LIN_BEAM]:
                if self._spent(self.prob.XS.shape[0] * len(terms), budget):
                    return
                tree = self._linear_exact([int(ids[j]) for j in terms])
                if tree is not None:
                    size = _tree_size(tree)
                    if size < self.prob.exact_size:
                        pred = _eval_tree(tree, self.prob.XS)
                        with np.errstate(all="ignore"):
                            mse = float(np.mean((pred - self.prob.y[self.prob.S]) ** 2))
                        self.prob.exact = (size, mse, tree)
                    return

    def _linear_fit(self, tids: list[int], X: np.ndarray, t: np.ndarray) -> tuple[list[Tree], np.ndarray, np.ndarray]:
        """The expressions `tids` as trees, their values on X with a column of ones (n, k+1),
        and the least-squares weights and intercept (k+1,) on (X, t)."""
        trees = [self.tree(i) for i in tids]
        E = np.column_stack([_eval_tree(tr, X) for tr in trees] + [np.ones(X.shape[0])])
        coef = np.full(E.shape[1], np.nan)
        if np.isfinite(E).all():  # (LAPACK prints "illegal value" to stderr on NaN input)
            try:
                with np.errstate(all="ignore"):
                    coef = np.linalg.lstsq(E, t, rcond=None)[0]
            except (np.linalg.LinAlgError, ValueError):  # SVD did not converge
                pass
        if not np.isfinite(coef).all():  # a poor but valid combination: the constant alone
            coef = np.zeros(E.shape[1])
            coef[-1] = float(np.mean(t)) if np.isfinite(t).all() else 0.0
        return trees, E, coef

    def _linear_exact(self, tids: list[int]) -> Tree | None:
        """The combination refitted on the search subsample with the fewest digits that keep it
        exact there, if it is also exact on all the data; else None."""
        prob = self.prob
        trees, E, coef = self._linear_fit(tids, prob.XS, prob.tS)
        for digits in (0, 1, 2, 3, 4, 6, 8, 11, None):
            c = _round_weights(coef, E, prob.tS, digits)
            with np.errstate(all="ignore"):
                if prob.is_exact(E @ c, prob.tS):
                    break
        else:
            return None
        tree = _combination(trees, c)
        if not prob.full_is_S and not prob.is_exact(_eval_tree(tree, prob.X), prob.t):
            return None
        return tree

    def _linear_shortest(self, tids: list[int]) -> Tree:
        """The least-squares combination on the search subsample, its constants rounded to the
        fewest significant digits that keep the fit (display only, as `_shorten`)."""
        t = self.prob.tS
        trees, E, coef = self._linear_fit(tids, self.prob.XS, t)

        def sse(c: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                r = E @ c - t
                v = float(r @ r)
            return v if math.isfinite(v) else math.inf

        limit = sse(coef) * (1 + 1e-6) + 1e-13 * float(t @ t) + 1e-300
        for digits in range(12):
            c = _round_weights(coef, E, t, digits)
            if sse(c) <= limit:
                return _combination(trees, c)
        return _combination(trees, coef)

    # ---- levels -------------------------------------------------------------------------------

    def _finish_level(self, size: int) -> None:
        if self.pending:
            V = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.pending = []
            nonzero, nonneg, cond = (np.concatenate(x) for x in zip(*self.pending_stats))
            start = self.level_start
            lv = {
                "V": V,
                "ids": np.arange(start, start + V.shape[0], dtype=np.int64),
                "nonzero": np.flatnonzero(nonzero),
                "nonneg": np.flatnonzero(nonneg),
                "cond": np.flatnonzero(cond),
            }
            if size == 1:
                lv["nvar"] = self.n_var_rows
            self.levels[size] = lv
        self.pending, self.pending_stats = [], []

    def _begin_level(self, size: int) -> None:
        self.level = size
        self.level_start = self.next_id
        self.store_level = size <= self.max_size - 1 and self.stored < _STORE_CAP
        self.pending, self.pending_stats = [], []

    def run(self) -> None:
        prob = self.prob
        m = self.Xp.shape[1]
        # level 1: variables, then integer constants, then a fitted constant
        self._begin_level(1)
        self._emit(1, self.Xp.T.copy(), "var", np.arange(m), leaf=True)
        self.n_var_rows = self.next_id
        consts = list(prob.constants)
        if consts:
            C = np.repeat(np.asarray(consts, dtype=np.float64)[:, None], self.P, axis=1)
            self._emit(1, C, "int", np.asarray(consts), leaf=True, affine=False)
        if self.fit:
            sse = max(self.stt_c, 0.0)
            cur = self.best.get(1)
            if cur is None or sse < cur[0]:
                self.best[1] = (sse, "k", None)
            if sse <= self.P * self.thr2 + 1e-9 * self.stt and 1 < prob.exact_size:
                self._escalate(1, "k", None)
        self._finish_level(1)
        if prob.exact_size <= 1:
            return
        for size in range(2, self.max_size + 1):
            if prob.exact_size <= size:
                return
            self._begin_level(size)
            self._unary_level(size)
            self._binary_level(size)
            if self.use_where:
                self._where_level(size)
            self._finish_level(size)
            if prob.exact_size <= size:
                return
            if size == min(_LIN_TERM_SIZE, self.max_size - 1) and prob.exact is None:
                # The term pool is complete: try linear combinations now, while the budget is
                # fresh (the larger levels that follow can take all of it).
                self.linear_combinations((prob.work_limit, prob.deadline))

    def _check_found(self, size: int) -> None:
        if self.prob.exact_size <= size:
            raise _Stop

    def _rows(self, lv: dict, which: str | None = None, vars_only: bool = False) -> np.ndarray:
        n = lv["V"].shape[0]
        rows = np.arange(n) if which is None else lv[which]
        if vars_only and "nvar" in lv:
            rows = rows[rows < lv["nvar"]]
        return rows

    def _unary_level(self, size: int) -> None:
        lv = self.levels.get(size - 1)
        if lv is None:
            return
        V, ids = lv["V"], lv["ids"]
        for op in self.unary:
            rows = self._rows(lv, "nonneg" if op == "sqrt" else None, vars_only=True)
            fn = _UNARY_FN[op]
            for r0 in range(0, rows.size, _BLOCK_ROWS):
                r = rows[r0 : r0 + _BLOCK_ROWS]
                with np.errstate(all="ignore"):
                    vals = fn(V[r])
                self._emit(size, vals, op, ids[r])
                self._check_found(size)

    def _binary_level(self, size: int) -> None:
        P = self.P
        for op in self.binary:
            fn = _BINARY_FN[op]
            comm = op in _COMMUTATIVE
            for i in range(1, size - 1):
                j = size - 1 - i
                if comm and i > j:
                    continue
                L, R = self.levels.get(i), self.levels.get(j)
                if L is None or R is None:
                    continue
                lrows = self._rows(L)
                rrows = self._rows(R, "nonzero" if op in ("div", "mod") else None)
                if lrows.size == 0 or rrows.size == 0:
                    continue
                LV, RV, Lids, Rids = L["V"], R["V"], L["ids"], R["ids"]
                tri = comm and i == j
                # vectorise over the larger side: chunks of left rows x chunks of right rows
                nl = max(1, _BLOCK_ROWS // max(1, rrows.size))
                for l0 in range(0, lrows.size, nl):
                    lr = lrows[l0 : l0 + nl]
                    rr_all = rrows[rrows >= lr[0]] if tri else rrows
                    for r0 in range(0, rr_all.size, _BLOCK_ROWS):
                        rr = rr_all[r0 : r0 + _BLOCK_ROWS]
                        with np.errstate(all="ignore"):
                            vals = fn(LV[lr][:, None, :], RV[rr][None, :, :]).reshape(-1, P)
                        a = np.repeat(Lids[lr], rr.size)
                        b = np.tile(Rids[rr], lr.size)
                        self._emit(size, vals, op, a, b)
                        self._check_found(size)

    def _where_level(self, size: int) -> None:
        P = self.P
        for sc in range(1, size - 2):
            for sa in range(1, size - 1 - sc):
                sb = size - 1 - sc - sa
                C, A, B = self.levels.get(sc), self.levels.get(sa), self.levels.get(sb)
                if C is None or A is None or B is None or C["cond"].size == 0:
                    continue
                AV, BV, Aids, Bids = A["V"], B["V"], A["ids"], B["ids"]
                na, nb = AV.shape[0], BV.shape[0]
                chunk = max(1, _BLOCK_ROWS // max(1, nb))
                for cr in C["cond"]:
                    mask = C["V"][cr] != 0
                    cid = int(C["ids"][cr])
                    for a0 in range(0, na, chunk):
                        ar = np.arange(a0, min(na, a0 + chunk))
                        for b0 in range(0, nb, _BLOCK_ROWS):
                            br = np.arange(b0, min(nb, b0 + _BLOCK_ROWS))
                            vals = np.where(mask, AV[ar][:, None, :], BV[br][None, :, :]).reshape(-1, P)
                            self._emit(size, vals, "where", cid, np.repeat(Aids[ar], br.size), np.tile(Bids[br], ar.size))
                            self._check_found(size)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

_RESERVED = frozenset({"np", "math", "abs", "min", "max", "round"})


def _choose_probe(X: np.ndarray, t: np.ndarray, S: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """At most ~_PROBE_ROWS rows of S: column/target extremes, one row per distinct target value
    (when there are few), one per distinct input row, then random rows."""
    if len(S) <= int(_PROBE_ROWS * 1.25):
        return S.copy()
    XS, tS = X[S], t[S]
    prio: list[int] = []
    for col in range(XS.shape[1]):
        prio += [int(np.argmin(XS[:, col])), int(np.argmax(XS[:, col]))]
    prio += [int(np.argmin(tS)), int(np.argmax(tS))]
    tv, tfirst = np.unique(tS, return_index=True)
    if len(tv) <= _PROBE_ROWS // 4:
        prio += tfirst[rng.permutation(len(tfirst))].tolist()
    _, xfirst = np.unique(XS, axis=0, return_index=True)
    prio += xfirst[rng.permutation(len(xfirst))].tolist()
    prio += rng.permutation(len(S)).tolist()
    chosen = list(dict.fromkeys(prio))[:_PROBE_ROWS]
    return np.sort(S[np.asarray(chosen, dtype=np.int64)])


SMALL_INTEGERS = (0, 1, 2)  # identities and doubling: in every grammar
MAX_DATA_CONSTANTS = 6  # at most this many constants taken from the data, beyond SMALL_INTEGERS
MAX_DATA_CONSTANT = 10_000  # larger integers are left to fitted real constants


def data_constants(X: np.ndarray, y: np.ndarray | None = None) -> tuple[int, ...]:
    """Integer constants the data suggests: ``SMALL_INTEGERS`` and, for the integer target ``y``
    (first, when it is integer-valued) and each integer-valued input column, its largest value ``hi``, ``hi + 1`` and its
    span ``hi - lo + 1``, and ``-lo`` for a negative ``lo``.

    Why: a modulus, divisor or threshold of an integer rule is the range of a value it produces
    or reads (``s mod k`` takes k values; ``floor(s / 16)`` divides by an input's span), so the
    grammar's constants come from the data instead of a fixed list of small integers."""
    found: list[int] = []
    cols = ([np.asarray(y, dtype=np.float64).reshape(-1)] if y is not None else []) + [
        np.asarray(X, dtype=np.float64)[:, c] for c in range(np.asarray(X).shape[1])]
    for v in cols:
        if v.size == 0 or not np.all(np.isfinite(v)) or not np.all(v == np.rint(v)):
            continue
        lo, hi = int(v.min()), int(v.max())
        found += [hi, hi + 1, hi - lo + 1] + ([-lo] if lo < 0 else [])
    extra = [k for k in dict.fromkeys(found) if k not in SMALL_INTEGERS and 2 < abs(k) <= MAX_DATA_CONSTANT]
    return SMALL_INTEGERS + tuple(extra[:MAX_DATA_CONSTANTS])


def symbolic_regression(
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    tolerance: float,
    config: SRConfig = SRConfig(),
    integer_target: bool = False,
    seed: int = 0,
) -> SRResult:
    """Find short closed-form expressions ``y ≈ f(X)``; see the module docstring.

    ``tolerance`` is the max absolute error for a candidate to be exact; with
    ``integer_target=True`` a candidate is exact iff ``round(pred) == round(y)`` everywhere.
    Same inputs and seed give the same result (the budget counts work, not seconds), unless
    the wall-clock cap of ``WALL_FACTOR`` × ``time_budget`` is reached first.
    """
    t_start = time.perf_counter()
    names = tuple(str(n) for n in names)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(f"X must be (n, m) and y (n,), got {X.shape} and {y.shape}")
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} names for {X.shape[1]} input columns")
    for nm in names:
        if not nm.isidentifier() or keyword.iskeyword(nm) or nm in _RESERVED:
            raise ValueError(f"input name {nm!r} is not usable in generated source")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate input names {names}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite")
    unknown = set(config.operators) - set(ALL_OPERATORS)
    if unknown:
        raise ValueError(f"unknown operators {sorted(unknown)}; known: {ALL_OPERATORS}")
    if config.max_size < 1:
        raise ValueError("max_size must be >= 1")

    n = y.shape[0]
    rng = np.random.default_rng(seed)
    if n > config.max_samples:
        S = np.sort(rng.choice(n, size=max(1, config.max_samples), replace=False))
    else:
        S = np.arange(n)
    t = np.rint(y) if integer_target else y
    reserve = min(0.5, 0.15 * config.time_budget)
    work = WORK_PER_SECOND * max(config.time_budget - reserve, 0.05)  # the enumeration's share
    deadline = t_start + WALL_FACTOR * config.time_budget
    prob = _Problem(X, y, t, names, tolerance, config, integer_target, deadline, S, work)
    probe = _choose_probe(X, t, S, rng)
    while True:
        search = _Search(prob, probe, seed)
        try:
            search.run()
            break
        except _Stop:
            break
        except _Restart as restart:
            probe = np.unique(np.concatenate([probe, restart.rows]))
    if not search.linear_done and prob.exact is None:  # the enumeration stopped before its turn
        search.linear_combinations((WORK_PER_SECOND * (config.time_budget - 0.5 * reserve), deadline))
    return _assemble(prob, search)


@dataclass
class _Final:
    tree: Tree
    size: int
    mse: float
    max_error: float
    exact: bool


def _assemble(prob: _Problem, search: _Search) -> SRResult:
    X, y, t = prob.X, prob.y, prob.t
    n = len(t)
    tt = float(t @ t)
    finals: list[_Final] = []

    def finish(tree: Tree) -> None:
        tree = _round_mod_dividends(tree, X)
        pred = _eval_tree(tree, X)
        with np.errstate(all="ignore"):
            err = pred - y
            mse = float(np.mean(err * err))
            max_error = float(np.max(np.abs(err)))
        if math.isfinite(mse) and math.isfinite(max_error):
            finals.append(_Final(tree, _tree_size(tree), mse, max_error, bool(prob.is_exact(pred, t))))

    if prob.exact is not None:
        finish(prob.exact[2])
    for size in sorted(search.best):
        _, form, i = search.best[size]
        base = search.tree(i) if i is not None else None
        e = _eval_tree(base, X) if base is not None else None
        cd = prob.fit_snap(form, e, t)
        if cd is None:
            c, d = _ls_affine(e if e is not None else t, t, form) if form != "e" else (1.0, 0.0)
            c, d = _shorten(form, e, t, c, d, tt)
        else:
            c, d = cd
        finish(_apply_form(form, base, c, d))

    for tree in search.linear_trees:
        finish(tree)
    if not finals:  # the budget ran out before level 1 was scored
        finish(("num", float(np.mean(y))))

    by_size: dict[int, _Final] = {}
    for f in finals:  # per size: an exact candidate if any (lowest mse), else the lowest mse
        cur = by_size.get(f.size)
        if cur is None or (f.exact, -f.mse) > (cur.exact, -cur.mse):
            by_size[f.size] = f
    items = [by_size[s] for s in sorted(by_size)]

    def pareto(xs: list[_Final], below: float = math.inf) -> list[_Final]:
        out = []
        for x in xs:
            if x.mse < below:
                out.append(x)
                below = x.mse
        return out

    exact = [f for f in items if f.exact]
    if exact:
        pk = exact[0]
        before = [f for f in pareto([f for f in items if f.size < pk.size]) if f.mse > pk.mse]
        after = pareto([f for f in items if f.size > pk.size], pk.mse)
        front_f = before + [pk] + after
        picked = len(before)
    else:
        front_f = pareto(items)
        picked = len(front_f) - 1

    syms = [sympy.Symbol(nm) for nm in prob.names]
    front = []
    for f in front_f:
        py, npy = _sources(f.tree, prob.names)
        expr = _light_simplify(_to_sympy(f.tree, syms))
        front.append(Candidate(f.size, expr, py, npy, f.mse, f.max_error, f.exact))
    return SRResult(tuple(front), picked, prob.names)


def _round_weights(coef: np.ndarray, E: np.ndarray, t: np.ndarray, digits: int | None) -> np.ndarray:
    """Weights rounded to `digits` significant digits, the intercept (last) refitted to them and
    rounded alike; None: as fitted."""
    if digits is None:
        return coef
    c = np.array([float(f"{w:.{digits}e}") for w in coef])
    with np.errstate(all="ignore"):
        c[-1] = float(f"{float(np.mean(t - E[:, :-1] @ c[:-1])):.{digits}e}")
    return c


def _combination(trees: list[Tree], coef: np.ndarray) -> Tree:
    """``c1*e1 + ... + ck*ek + d`` as a tree (signs folded into - , unit weights dropped)."""
    body: Tree | None = None
    for c, tr in zip(coef[:-1], trees):
        c = float(c)
        if c == 0.0:
            continue
        mag = abs(c)
        term = tr if mag == 1.0 else ("mul", ("num", mag), tr)
        if body is None:
            body = ("neg", term) if c < 0 else term
        else:
            body = ("sub" if c < 0 else "add", body, term)
    d = float(coef[-1])
    if body is None:
        return ("num", d)
    if d != 0.0:
        body = ("sub", body, ("num", -d)) if d < 0 else ("add", body, ("num", d))
    return body


def _shorten(form: str, e: np.ndarray | None, t: np.ndarray, c: float, d: float, tt: float) -> tuple[float, float]:
    """Round least-squares constants to the fewest digits that keep the fit (display only)."""
    if form == "e":
        return c, d
    n = t.shape[0]

    def sse(cc: float, dd: float) -> float:
        with np.errstate(all="ignore"):
            r = _form_pred(form, e, cc, dd, n) - t
            v = float(r @ r)
        return v if math.isfinite(v) else math.inf

    opt = sse(c, d)
    limit = opt + 1e-6 * opt + 1e-13 * tt + 1e-300
    if form in ("ce", "ced"):
        for cc in _nice_values(c):
            if cc == 0.0:
                continue
            with np.errstate(all="ignore"):
                dd = d if form == "ce" else float(np.mean(t - cc * e))
            if sse(cc, dd) <= limit:
                c, d = cc, dd
                break
    if form in ("ed", "ced", "k"):
        for dd in _nice_values(d):
            if sse(c, dd) <= limit:
                d = dd
                break
    return c, d


def measure_work_rate(seconds: float = 2.5, seed: int = 0) -> float:
    """Candidate values per second this machine evaluates, on searches that have no exact
    answer (so they run until the clock stops them). `WORK_PER_SECOND` is this number on the
    reference machine, idle; run `python -m discrete_transformer.extract.symbolic` to see it."""
    rng = np.random.default_rng(seed)
    rates = []
    for integer in (False, True):
        X = rng.uniform(-3, 3, (3000, 2))
        y = np.sin(3 * X[:, 0]) * np.cos(X[:, 1]) + rng.normal(0, 0.1, 3000)
        if integer:
            X, y = np.rint(X * 2), np.rint(2 * y)
        t = np.rint(y) if integer else y
        S = np.arange(len(y))
        cfg = SRConfig(max_size=12)
        t0 = time.perf_counter()
        prob = _Problem(X, y, t, ("a", "b"), 1e-9, cfg, integer, t0 + seconds, S)
        try:
            _Search(prob, _choose_probe(X, t, S, rng), seed).run()
        except (_Stop, _Restart):
            pass
        rates.append(prob.work / (time.perf_counter() - t0))
    return float(np.median(rates))


if __name__ == "__main__":
    print(f"{measure_work_rate():.3g} candidate values per second (WORK_PER_SECOND = {WORK_PER_SECOND:.3g})")
