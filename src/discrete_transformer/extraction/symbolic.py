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

This module is the entry point (``symbolic_regression``: validation, subsampling, restarts, the
budget; then the Pareto front and its rendering) and the public API. The work is split by job:

* ``sr_trees``   expression trees: operators, evaluation, size, SymPy form
* ``sr_render``  Python / NumPy source of a tree
* ``sr_fit``     fitted constants of ``c*e``, ``e + d``, ``c*e + d`` and their snapping
* ``sr_linear``  sparse linear combinations ``c1*e1 + ... + ck*ek + d``
* ``sr_dedup``   fingerprints of probe values and the set that deduplicates them
* ``sr_problem`` configuration, data, exactness, grammar constants, probe choice
* ``sr_search``  the bottom-up enumeration and its verification / restarts
"""

from __future__ import annotations

import keyword
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from rich.table import Table

from .sr_dedup import FingerprintSet
from .sr_fit import apply_form, ls_affine, shorten
from .sr_problem import (
    MAX_DATA_CONSTANT,
    MAX_DATA_CONSTANTS,
    SMALL_INTEGERS,
    Problem,
    SRConfig,
    choose_probe,
    data_constants,
)
from .sr_render import sources
from .sr_search import Restart, Search, Stop
from .sr_trees import (
    ALL_OPERATORS,
    BINARY_OPS,
    UNARY_OPS,
    Tree,
    eval_tree,
    light_simplify,
    round_mod_dividends,
    to_sympy,
    tree_size,
)

__all__ = [
    "ALL_OPERATORS",
    "BINARY_OPS",
    "MAX_DATA_CONSTANT",
    "MAX_DATA_CONSTANTS",
    "SMALL_INTEGERS",
    "UNARY_OPS",
    "WALL_FACTOR",
    "WORK_PER_SECOND",
    "Candidate",
    "SRConfig",
    "SRResult",
    "data_constants",
    "evaluate_source",
    "measure_work_rate",
    "symbolic_regression",
]


# Candidate values (expressions × probe rows) the search evaluates per nominal second: measured
# on the reference machine (2 cores, idle) by `python -m discrete_transformer.extraction.symbolic`.
WORK_PER_SECOND = 1.2e8
# Wall-clock cap, as a multiple of the nominal budget: reached only on a much slower machine.
WALL_FACTOR = 4.0


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
    work: float = 0.0  # nominal seconds of work the search did (candidate values / WORK_PER_SECOND)

    @property
    def best(self) -> Candidate:
        return self.front[self.picked]

    def table(self) -> Table:
        """PySR-style equations table; the picked row is marked with ▶."""
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
    return eval(source, env, dict(zip(names, values)))  # our own generated text


_RESERVED = frozenset({"np", "math", "abs", "min", "max", "round"})
_DEFAULT_CONFIG = SRConfig()


def symbolic_regression(
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    tolerance: float,
    config: SRConfig = _DEFAULT_CONFIG,
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
    prob = Problem(X, y, t, names, tolerance, config, integer_target, deadline, S, work)
    probe = choose_probe(X, t, S, rng)
    while True:
        search = Search(prob, probe, seed)
        try:
            search.run()
            break
        except Stop:
            break
        except Restart as restart:
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


def _assemble(prob: Problem, search: Search) -> SRResult:
    X, y, t = prob.X, prob.y, prob.t
    tt = float(t @ t)
    finals: list[_Final] = []

    def finish(tree: Tree) -> None:
        tree = round_mod_dividends(tree, X)
        pred = eval_tree(tree, X)
        with np.errstate(all="ignore"):
            err = pred - y
            mse = float(np.mean(err * err))
            max_error = float(np.max(np.abs(err)))
        if math.isfinite(mse) and math.isfinite(max_error):
            finals.append(_Final(tree, tree_size(tree), mse, max_error, bool(prob.is_exact(pred, t))))

    if prob.exact is not None:
        finish(prob.exact[2])
    for size in sorted(search.best):
        _, form, i = search.best[size]
        base = search.tree(i) if i is not None else None
        e = eval_tree(base, X) if base is not None else None
        cd = prob.fit_snap(form, e, t)
        if cd is None:
            c, d = ls_affine(e if e is not None else t, t, form) if form != "e" else (1.0, 0.0)
            c, d = shorten(form, e, t, c, d, tt)
        else:
            c, d = cd
        finish(apply_form(form, base, c, d))

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
        py, npy = sources(f.tree, prob.names)
        expr = light_simplify(to_sympy(f.tree, syms))
        front.append(Candidate(f.size, expr, py, npy, f.mse, f.max_error, f.exact))
    return SRResult(tuple(front), picked, prob.names, prob.work / WORK_PER_SECOND)


# The internals' former private names, which the tests reach as `symbolic._Search` etc.
_Problem, _Search, _FingerprintSet = Problem, Search, FingerprintSet
_eval_tree, _sources, _to_sympy = eval_tree, sources, to_sympy


def measure_work_rate(seconds: float = 2.5, seed: int = 0) -> float:
    """Candidate values per second this machine evaluates, on searches that have no exact
    answer (so they run until the clock stops them). `WORK_PER_SECOND` is this number on the
    reference machine, idle; run `python -m discrete_transformer.extraction.symbolic` to see it."""
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
        prob = Problem(X, y, t, ("a", "b"), 1e-9, cfg, integer, t0 + seconds, S)
        try:
            Search(prob, choose_probe(X, t, S, rng), seed).run()
        except (Stop, Restart):
            pass
        rates.append(prob.work / (time.perf_counter() - t0))
    return float(np.median(rates))


if __name__ == "__main__":
    print(f"{measure_work_rate():.3g} candidate values per second (WORK_PER_SECOND = {WORK_PER_SECOND:.3g})")
