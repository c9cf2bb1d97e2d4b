"""The simplification stage's raw material: how big a program is, and smaller MLP alternatives.

* :func:`program_ops` — the size the bench reports (one per routing head, the expression size of
  each MLP line); :func:`program_cost` adds a charge per transcendental call (`sqrt`, `exp`,
  `log`) on a discrete task, the stage's preference for integer arithmetic on integer data.
* :func:`front_alternatives` — the other, smaller candidates of an MLP's Pareto fronts.
* :func:`fit_to_targets` / :func:`fit_to_outputs` — fresh regressions with a strong size
  preference (a maximum size below the line's) and, on a discrete task, no transcendental
  operator: against the task's targets (a readout) or the MLP's own outputs.
* :func:`remapped` — an alternative reading one variable in place of another (a duplicate).
* :func:`folded` — an alternative as SymPy simplifies it (`abs(40 + (x - 69))` -> `abs(x - 29)`).

All return :class:`~.mlps.MLPAlt` alternatives that the stage appends to an MLP's list.
"""

from __future__ import annotations

import dataclasses
import io
import tokenize
from collections.abc import Callable

import numpy as np
import sympy

from ..verdict import Kind
from .config import ExtractConfig
from .graph import MLPNode, Module, OutputNode, ProgramIR, rename_names
from .mlps import INT_TOL, PLACEHOLDERS, MLPAlt, MLPCharacteriser
from .naming import is_python
from .record import SearchRows
from .sr_render import sources
from .sr_trees import Tree, tree_size
from .symbolic import SRConfig, SRResult, symbolic_regression

__all__ = [
    "TRANSCENDENTAL",
    "TRANSCENDENTAL_COST",
    "Fit",
    "alt_cost",
    "determined",
    "fit_config",
    "fit_to_outputs",
    "fit_to_targets",
    "folded",
    "front_alternatives",
    "program_cost",
    "program_ops",
    "remapped",
    "transcendentals",
]

TRANSCENDENTAL = frozenset({"sqrt", "exp", "log"})
# What one transcendental call costs on a discrete task, in operations on top of its node: an
# integer rule computed through `math.sqrt` is a curve fit that happens to round right on the
# values seen (Evens_Counter: `3.17 * math.sqrt(pos) - 9.03 * (pos / (pos + 9))`), so a line
# without it is preferred even when it is up to this much larger.
TRANSCENDENTAL_COST = 2

Fit = tuple[MLPAlt, str, SRResult, tuple[int, ...]]  # the alternative, its regression's key, result, inputs


def program_ops(ir: ProgramIR) -> int:
    """Operations of a program: one per routing head, the expression size of each MLP line
    (aliases cost nothing) and of each output's gain and trend (:func:`output_ops`). The bench's
    `program_ops`."""
    lines = sum(n.size if isinstance(n, MLPNode) else 1 for n in ir.nodes if not n.is_alias)
    return int(lines + sum(output_ops(o) for o in ir.outputs))


def output_ops(o: OutputNode) -> int:
    """Expression size an output adds to the variable it reads, counted as an MLP line's is
    (operators and leaves): gain · v is 2 more, + offset 2, + pos 2, + slope · pos 4. Why: an
    output line `y = 3.0 * v + 1.5` is arithmetic the program does, and the simplification
    stage must see that `1 - x` in one line is smaller than `-x` read with an offset of 1."""
    slope = 0 if o.slope == 0.0 else (2 if abs(o.slope) == 1.0 else 4)
    return 2 * (o.gain != 1.0) + 2 * (o.offset != 0.0) + slope


def transcendentals(source: str) -> int:
    """Calls of sqrt, exp or log in a Python expression."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return 0
    return sum(1 for t in toks if t.type == tokenize.NAME and t.string in TRANSCENDENTAL)


def program_cost(ir: ProgramIR, kind: str) -> int:
    """What the stage minimises: :func:`program_ops`, plus TRANSCENDENTAL_COST per transcendental
    call on a discrete task."""
    extra = 0
    if kind == Kind.DISCRETE:
        extra = TRANSCENDENTAL_COST * sum(transcendentals(n.source) for n in ir.mlps if not n.is_alias)
    return program_ops(ir) + extra


def alt_cost(alt: MLPAlt, kind: str) -> int:
    """One MLP line's share of :func:`program_cost`."""
    return alt.size + (TRANSCENDENTAL_COST * transcendentals(alt.source) if kind == Kind.DISCRETE else 0)


def fit_config(cfg: ExtractConfig, max_size: int, budget: float, kind: str) -> SRConfig:
    """A fresh regression's settings: at most `max_size` nodes, `budget` nominal seconds of work,
    the configured grammar without its transcendental operators on a discrete task."""
    ops = tuple(o for o in cfg.sr_operators if kind != Kind.DISCRETE or o not in TRANSCENDENTAL)
    return SRConfig(max_size=max_size, time_budget=budget, operators=ops, int_constants=cfg.sr_int_constants)


def _columns(env: dict[int, np.ndarray], inputs: tuple[int, ...]) -> np.ndarray:
    return np.stack([np.asarray(env[i], dtype=np.float64).reshape(-1) for i in inputs], axis=-1)


def determined(env: dict[int, np.ndarray], y: np.ndarray, inputs: tuple[int, ...]) -> bool:
    """The targets `y` are a function of `inputs` (as `env` holds them): no two rows with equal
    inputs have different targets. Why: no expression of those inputs can then be exact, and
    this check costs a sort where the regression would cost its whole budget."""
    if not inputs or any(i not in env for i in inputs):
        return False
    X = _columns(env, inputs)
    ok = np.isfinite(X).all(axis=1)
    Xy = np.unique(np.column_stack([X[ok], y.reshape(-1)[ok]]), axis=0)
    return bool(np.unique(Xy[:, :-1], axis=0).shape[0] == Xy.shape[0])


def fit_to_targets(
    mlps: MLPCharacteriser,
    rows: SearchRows,
    env: dict[int, np.ndarray],
    m: Module,
    channel: int,
    inputs: tuple[int, ...],
    conf: SRConfig,
    seed: int,
    tag: str,
) -> Fit | None:
    """Readout MLP `m` regressed against output `channel`'s training targets over `inputs` as the
    program computes them (`env`, from :func:`~.trace.trace`); the alternative when the fit is
    exact (discrete: after rounding, the verification rule), else None. Repeated rows are fitted
    once: the search sees each distinct (inputs, target) pair, and a conflict stays one."""
    if not inputs or any(i not in env for i in inputs):
        return None
    kind = rows.kind
    X, y = _columns(env, inputs), rows.y[..., channel].reshape(-1)
    ok = np.isfinite(X).all(axis=1)
    if not ok.any():
        return None
    Xy = np.unique(np.column_stack([X[ok], y[ok]]), axis=0)
    X, y = Xy[:, :-1], Xy[:, -1]
    tol = INT_TOL if kind == Kind.DISCRETE else 1e-3 * max(float(np.std(y)), 1e-9)
    res = symbolic_regression(
        X, y, PLACEHOLDERS[: len(inputs)], tol, config=conf, integer_target=kind == Kind.DISCRETE, seed=seed
    )
    if not res.best.exact:
        return None
    r = {"tag": f"targets, {tag}", "inputs": inputs, "X": X, "tol": tol, "Xref": X, "yref": y}
    alt = mlps.make_alternative(res.best, r, "targets", kind == Kind.DISCRETE)
    return alt, f"{m.key} (simplify: true targets, {tag})", res, inputs


def fit_to_outputs(mlps: MLPCharacteriser, m: Module, cur: MLPAlt, conf: SRConfig, seed: int) -> Fit | None:
    """MLP `m` regressed afresh against its own outputs on the inputs it sees, over the inputs of
    its current alternative `cur` and to `cur`'s tolerance (integer-valued: exact after
    rounding); the alternative when exact, else None."""
    inputs = cur.inputs
    Xs, ys = mlps.seen(m, inputs)
    if Xs.shape[0] == 0:
        return None
    integer = cur.integer_target
    tol = INT_TOL if integer else cur.tolerance
    res = symbolic_regression(
        Xs,
        np.rint(ys) if integer else ys,
        PLACEHOLDERS[: len(inputs)],
        tol,
        config=conf,
        integer_target=integer,
        seed=seed,
    )
    if not res.best.exact:
        return None
    r = {"tag": "seen, simplify", "inputs": inputs, "X": Xs, "tol": tol, "Xref": Xs, "yref": ys}
    return mlps.make_alternative(res.best, r, "mlp", integer), f"{m.key} (simplify: seen)", res, inputs


def front_alternatives(
    mlps: MLPCharacteriser,
    m: Module,
    cur: MLPAlt,
    below: int,
    kind: str,
    known: Callable[[int], bool],
    targets: Callable[[tuple[int, ...]], tuple[np.ndarray, np.ndarray] | None],
) -> list[MLPAlt]:
    """The candidates of MLP `m`'s regressions so far whose line costs less than `below`,
    cheapest first (then the exact ones, then by error), over variables for which `known` holds.
    Fits to the MLP's outputs are measured against them on the inputs seen; fits to the task's
    targets against the values `targets(inputs)` returns (None: skipped)."""
    have = {(a.inputs, a.source) for a in mlps.alts.get(m.key, [])}
    out: list[MLPAlt] = []
    for key in sorted(k for k in mlps.sr if k == m.key or k.startswith(m.key + " (")):
        res, inputs = mlps.sr[key], mlps.sr_inputs[key]
        if not all(known(i) for i in inputs):
            continue
        to_targets = "true targets" in key
        if to_targets:
            ref = targets(inputs)
            if ref is None:
                continue
            X, y = ref
            integer = kind == Kind.DISCRETE
            tol = INT_TOL if integer else 1e-3 * max(float(np.std(y)), 1e-9)
        else:
            X, y = mlps.seen(m, inputs)
            integer = cur.integer_target
            tol = cur.tolerance if cur.fitted_to == "mlp" else (INT_TOL if integer else mlps.rel_tol * float(np.std(y)))
        tag = key[len(m.key) :].strip(" ()") or "front"
        r = {"tag": f"{tag}, front", "inputs": inputs, "X": X, "tol": tol, "Xref": X, "yref": y}
        for c in res.front:
            if (inputs, c.source) in have:
                continue
            alt = mlps.make_alternative(c, r, "targets" if to_targets else "mlp", integer)
            if alt_cost(alt, kind) < below:
                have.add((inputs, c.source))
                out.append(alt)
    out.sort(key=lambda a: (alt_cost(a, kind), not a.exact, a.mse))
    return out


def remapped(alt: MLPAlt, old: int, new: int) -> MLPAlt:
    """`alt` reading stream variable `new` wherever it read `old` (equal values: a duplicate);
    when it then reads `new` twice, the two placeholders become one."""
    inputs = tuple(new if i == old else i for i in alt.inputs)
    uniq = tuple(dict.fromkeys(inputs))
    mapping = {PLACEHOLDERS[j]: PLACEHOLDERS[uniq.index(i)] for j, i in enumerate(inputs)}

    def ren(text: str) -> str:
        return rename_names(text, mapping) if is_python(text) else text

    return dataclasses.replace(
        alt,
        inputs=uniq,
        source=ren(alt.source),
        numpy_source=ren(alt.numpy_source),
        expression=ren(alt.expression),
        sr_key=f"{alt.sr_key}, duplicate read once",
    )


_FUNCS = {sympy.Abs: "abs", sympy.floor: "floor", sympy.Mod: "mod", sympy.Min: "min", sympy.Max: "max"}


def _tree(e: sympy.Expr, names: tuple[str, ...]) -> Tree | None:
    """A SymPy expression as a search tree (None: a form the grammar does not write)."""
    if e.is_Symbol:
        return ("var", names.index(e.name)) if e.name in names else None
    if e.is_Integer:
        return ("int", int(e))
    if e.is_Rational or e.is_Float:
        return ("num", float(e))
    if isinstance(e, sympy.Add):
        terms = sorted(e.args, key=lambda t: (t.is_number, t.could_extract_minus_sign()))  # `abs(b) - a`, `x - 29`
        acc = _tree(terms[0], names)
        for t in terms[1:]:
            neg = t.could_extract_minus_sign()
            sub = _tree(-t if neg else t, names)
            if acc is None or sub is None:
                return None
            acc = ("sub" if neg else "add", acc, sub)
        return acc
    if isinstance(e, sympy.Mul):
        coeff, rest = e.as_coeff_Mul()
        if coeff != 1:
            body = _tree(rest, names)
            if body is None:
                return None
            return ("neg", body) if coeff == -1 else ("mul", _tree(coeff, names), body)
        acc = None
        for f in e.args:
            sub = _tree(f, names)
            if sub is None:
                return None
            acc = sub if acc is None else ("mul", acc, sub)
        return acc
    if isinstance(e, sympy.Pow):
        base = _tree(e.base, names)
        ops = {2: "square", sympy.Rational(1, 2): "sqrt"}
        if base is None or e.exp not in ops:
            return None
        return (ops[e.exp], base)
    op = _FUNCS.get(type(e)) or ("round" if getattr(e, "func", None) is not None and str(e.func) == "round" else None)
    if op is None:
        return None
    args = [_tree(a, names) for a in e.args]
    if any(a is None for a in args) or (op in ("abs", "floor", "round")) != (len(args) == 1):
        return None
    acc = args[0]
    for a in args[1:]:
        acc = (op, acc, a)
    return acc if len(args) > 1 else (op, acc)


def folded(alt: MLPAlt) -> MLPAlt | None:
    """`alt` written as its SymPy form simplifies it, when that is smaller: the regression builds
    constants from the data's integers (`abs(40 + (x - 69))`), SymPy folds them (`Abs(x - 29)`)."""
    names = PLACEHOLDERS[: len(alt.inputs)]
    try:
        expr = sympy.sympify(
            alt.expression, locals={n: sympy.Symbol(n) for n in names} | {"round": sympy.Function("round")}
        )
        tree = _tree(expr, names)
    except (sympy.SympifyError, TypeError, ValueError, SyntaxError):
        return None
    if tree is None or tree_size(tree) >= alt.size:
        return None
    py, npy = sources(tree, names)
    return dataclasses.replace(alt, source=py, numpy_source=npy, size=tree_size(tree), sr_key=f"{alt.sr_key}, folded")
