"""Refitting MLPs against the task itself rather than the model: the repair's raw material.

* :meth:`Refits.truth_fit` — a readout MLP regressed against the true targets, its inputs
  computed by the current program (so the program's values, not the model's, are fitted).
* :meth:`Refits.widened_fit` — an output regressed against the true targets over its readout's
  inputs together with every input channel and `pos` at the same position.
* :meth:`Refits.core` — an intermediate MLP replaced by the simplest expression of its inputs
  of which its output is a monotone function (its "core"), for the readout to be refitted over.

Both return :class:`~.mlps.MLPAlt` alternatives the search appends to an MLP's list.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy

from .budget import Budget
from .config import ExtractConfig
from .graph import MLPNode, Module, ProgramIR, readout_key
from .mlps import INT_TOL, PLACEHOLDERS, MLPAlt, MLPCharacteriser
from .record import SearchRows
from .symbolic import symbolic_regression
from .trace import trace

__all__ = ["TRUTH_BUDGET_FACTOR", "WIDENED_MAX_INPUTS", "Refits", "monotone_function", "simple_ratio"]

# Fits against the true targets get this many times the per-MLP symbolic-regression budget: they
# run once, on much more data, and are the last resort before giving up.
TRUTH_BUDGET_FACTOR = 4.0
# A widened readout fit (Refits.widened_fit) regresses over at most this many variables: the
# regression's search space grows fast with its arity.
WIDENED_MAX_INPUTS = 3


class Refits:
    """Fits of the MLPs characterised by `mlps` against the task's targets on `rows`."""

    def __init__(
        self, mlps: MLPCharacteriser, rows: SearchRows, cfg: ExtractConfig, log: Callable[[str], None]
    ) -> None:
        self.mlps, self.rows, self.cfg, self.log = mlps, rows, cfg, log

    def truth_fit(
        self, m: Module, ir: ProgramIR, channel: int, budget: Budget, first_only: bool = False
    ) -> list[MLPAlt]:
        """Symbolic regression of a readout MLP against the true targets, its inputs computed by
        the program `ir` on the search sequences: first over the inputs of the MLPs feeding it
        (composed, so an imprecise upstream MLP cannot spoil the fit), then over its own inputs
        (unless `first_only`). Each regression's work is charged to `budget`."""
        env = trace(ir, self.rows.x)
        out: list[MLPAlt] = []
        tried: set[tuple[int, ...]] = set()
        for tag, reads in (("composed", self.mlps.fused_inputs(m)), ("own", tuple(m.reads))):
            if reads is None:
                continue
            # The inputs the program computes (one it no longer needs may be dead code).
            uniq = tuple(i for i in self.mlps.inputs_of(reads) if i in env)
            if not uniq or uniq in tried:
                continue
            tried.add(uniq)
            alt = self._fit(f"{m.key} (true targets, {tag})", f"targets, {tag}", uniq, env, channel, budget)
            if alt is None:
                continue
            out.append(alt)
            if alt.exact or first_only:
                break
        return out

    def widened_fit(self, ir: ProgramIR, channel: int, budget: Budget) -> MLPAlt | None:
        """Output `channel` regressed against the true targets over what its readout reads (the
        readout MLP's inputs, or the variable it reads) together with every input channel and
        `pos` at the same position — or, when that is more than :data:`WIDENED_MAX_INPUTS`
        variables, without `pos`, then the input channels and `pos`, then the input channels
        alone: the first of these sets small enough, one regression. The model's readout may
        have left out a variable it needed (a maximum of channels with different ranges, where
        the widest channel alone is right most of the time, leaves too small a loss to learn the
        rest from). None when no set is small enough or the budget is spent."""
        env = trace(ir, self.rows.x)
        out_var = ir.outputs[channel].var
        node = next((n for n in ir.nodes if n.out.index == out_var.index), None)
        side = tuple(v.index for v in node.reads) if isinstance(node, MLPNode) else (out_var.index,)
        inputs = tuple(v.index for v in ir.inputs)
        pos = len(ir.inputs)  # the stream index of `pos` (inputs, then pos, then one)
        for reads in (side + inputs + (pos,), side + inputs, inputs + (pos,), inputs):
            uniq = tuple(i for i in self.mlps.inputs_of(reads) if i in env)
            if 1 <= len(uniq) <= WIDENED_MAX_INPUTS and budget.left() > 0:
                key = f"{readout_key(ir.outputs[channel].name)} (true targets, widened)"  # the line's key
                return self._fit(key, "targets, widened", uniq, env, channel, budget)
        return None

    def _fit(
        self, key: str, tag: str, uniq: tuple[int, ...], env: dict[int, np.ndarray], channel: int, budget: Budget
    ) -> MLPAlt | None:
        """One regression of output `channel`'s true targets over the stream variables `uniq`
        (values from `env`), charged to `budget` and kept as evidence under `key`."""
        kind = self.rows.kind
        y_all = self.rows.y[..., channel].reshape(-1)
        tol = INT_TOL if kind == "discrete" else 1e-3 * max(float(np.std(y_all)), 1e-9)
        X = np.stack([np.asarray(env[i], dtype=np.float64).reshape(-1) for i in uniq], axis=-1)
        ok = np.isfinite(X).all(axis=1)
        X, y = X[ok], y_all[ok]
        if X.shape[0] == 0:
            return None
        # Discrete targets: exact means exact after rounding, the verification rule.
        res = symbolic_regression(
            X,
            y,
            PLACEHOLDERS[: len(uniq)],
            tol,
            config=self.cfg.sr_config(TRUTH_BUDGET_FACTOR),
            integer_target=kind == "discrete",
            seed=self.cfg.seed,
        )
        budget.charge(res.work)
        self.mlps.keep(key, res, uniq)
        self.log(f"{key}: {res.best.source} (max error {res.best.max_error:.2g})")
        r = {"tag": tag, "inputs": uniq, "X": X, "tol": tol, "Xref": X, "yref": y}
        return self.mlps.make_alternative(res.best, r, "targets", kind == "discrete")

    def core(self, m: Module) -> MLPAlt | None:
        """A stand-in for an intermediate MLP `m`: the simplest expression `e` of its inputs of
        which its output is a function, `m = φ(e)`, on the inputs it sees; None if none is found.

        What `m` contributes downstream is then a function of `e`, so `m` may be replaced by `e`
        if the MLPs reading it are refitted against the true targets. This removes a nonlinear
        reparametrisation that the model learned and undid later (Spring_Force: `m = g(x)`,
        then `y = h(shift(m), x)` with h ∘ g the task's law; Sum_Last3: `m = g(x + prev1_x)`),
        which symbolic regression only approximates and whose errors then compound. Candidates:
        each single input (with one input, `m = g(x)` exactly); the least-squares linear
        combination of the inputs with its ratios snapped to simple fractions. With several
        inputs, φ must be monotone (equal `e`, equal output; sorted by `e`, the output never
        turns back beyond the tolerance): real-valued `e` rarely repeats, so a dependence test
        by grouping alone would accept anything."""
        uniq = self.mlps.inputs_of(m.reads)
        Xs, ys = self.mlps.seen(m, uniq)
        if Xs.shape[0] < 3 or len(uniq) > 3:
            return None
        tol = self.mlps.rel_tol * max(float(np.std(ys)), 1e-9)
        if len(uniq) == 1:
            return _core_alt(m, uniq, np.array([1.0]), Xs)
        coefs = [np.eye(len(uniq))[i] for i in range(len(uniq))]
        A = np.concatenate([Xs, np.ones((Xs.shape[0], 1))], axis=1)
        try:
            b = np.linalg.lstsq(A, ys, rcond=None)[0][:-1]
        except np.linalg.LinAlgError:
            b = None
        if b is not None and np.all(np.isfinite(b)):
            j = int(np.argmax(np.abs(b) * (np.std(Xs, axis=0) + 1e-12)))
            if b[j] != 0.0:
                coefs.append(np.array([simple_ratio(v / b[j]) for v in b]))
        for c in coefs:
            if monotone_function(Xs @ c, ys, tol):
                return _core_alt(m, uniq, c, Xs)
        return None


def _core_alt(m: Module, uniq: tuple[int, ...], c: np.ndarray, Xs: np.ndarray) -> MLPAlt:
    """The core `c · inputs` of MLP `m` as an alternative."""
    syms = sympy.symbols(PLACEHOLDERS[: len(uniq)])
    expr = sympy.Add(*(sympy.nsimplify(float(v), rational=True) * s for v, s in zip(c, syms) if v != 0.0))
    src = sympy.pycode(expr) if not isinstance(expr, sympy.Symbol) else str(expr)
    terms = int(np.count_nonzero(c))
    size = 2 * terms - 1 + int(np.count_nonzero(np.abs(c[c != 0]) != 1.0))
    # "exact": the MLP's output is exactly a (monotone) function of it, which is all a core claims
    return MLPAlt(
        uniq, src, src, str(expr), size, 0.0, 0.0, True, 0.0, False, "core", int(Xs.shape[0]), f"{m.key} (core)"
    )


def simple_ratio(v: float) -> float:
    """v as a fraction p/q with q ≤ 4 when within 1e-3 (relative) of one, else to 4 digits."""
    for q in (1, 2, 3, 4):
        p = round(v * q)
        if abs(p / q - v) <= 1e-3 * max(abs(v), 1e-9):
            return p / q
    return float(f"{v:.4g}")


def monotone_function(e: np.ndarray, y: np.ndarray, tol: float) -> bool:
    """`y` is a monotone function of `e` on these samples, up to `tol`: equal `e` give equal `y`,
    and sorted by `e` the values of `y` never move against their overall direction by more than
    `tol`."""
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(y))):
        return False
    order = np.argsort(e, kind="stable")
    e, y = e[order], y[order]
    cuts = np.flatnonzero(np.diff(e) > 1e-9 * max(1.0, float(np.max(np.abs(e))))) + 1
    groups = np.split(y, cuts)
    if any(float(g.max() - g.min()) > tol for g in groups):
        return False
    d = np.diff(np.array([g.mean() for g in groups]))
    return bool(d.size > 0 and (np.all(d >= -tol) or np.all(d <= tol)))
