"""Symbolic regression's printer: an expression tree as Python source (builtins + ``math``, scalar
inputs) and as NumPy source (arrays, the name ``np``), both with the search semantics (``%`` is
floor-mod in Python and ``np.mod``; comparisons are 0/1; ``where`` becomes a conditional
expression / ``np.where``)."""

from __future__ import annotations

from collections.abc import Sequence

from .sr_trees import COMPARE, Tree

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
    if op in COMPARE:
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
    if t[0] in COMPARE:
        a, b = _render(t[1], names, np_mode), _render(t[2], names, np_mode)
        left = f"({a[0]})" if a[1] <= _CMP else a[0]
        right = f"({b[0]})" if b[1] <= _CMP else b[0]
        return f"{left} {_CMP_SYM[t[0]]} {right}"
    x = _render(t, names, np_mode)
    return (f"({x[0]})" if x[1] <= _CMP else x[0]) + " != 0"


def sources(t: Tree, names: Sequence[str]) -> tuple[str, str]:
    py = _render(t, names, False)[0]
    if t[0] in ("int", "num"):  # a constant: broadcast it for arrays
        return py, f"np.full(np.shape({names[0]}), {py})" if names else py
    return py, _render(t, names, True)[0]
