"""Symbolic regression's problem statement: the configuration (grammar, size, budget), the data
and targets, what counts as exact, the grammar's integer constants taken from the data, the
verified exact answer (kept across restarts) and the choice of the probe rows the enumeration
evaluates candidates on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sr_fit import form_pred, ls_affine, nice_values
from .sr_trees import Tree

_PROBE_ROWS = 256  # rows the enumeration evaluates every candidate on


@dataclass(frozen=True)
class SRConfig:
    max_size: int = 9  # max expression size (nodes)
    time_budget: float = 3.0  # nominal seconds of work (× WORK_PER_SECOND candidate values)
    operators: tuple[str, ...] = (
        "add",
        "sub",
        "mul",
        "div",
        "mod",
        "floor",
        "round",
        "abs",
        "min",
        "max",
        "square",
        "sqrt",
        "neg",
        "ge",
        "gt",
        "eq",
        "where",
    )  # the grammar; a subset restricts it
    # Integer constants of the grammar; None = derived from the data (`data_constants`): 0, 1, 2
    # and the integers the data's ranges suggest (a modulus, a divisor, a threshold).
    int_constants: tuple[int, ...] | None = None
    fit_constants: bool = True  # allow real constants fitted by least squares
    max_samples: int = 4000  # subsample the data for search; final errors on all data


class Problem:
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
        self.constants = tuple(dict.fromkeys(int(k) for k in given)) if given is not None else (data_constants(X, t))

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

        def ok(c, d):
            return bool(self.is_exact(form_pred(form, e, c, d, n), t))

        if form == "e":
            return (1.0, 0.0) if ok(1.0, 0.0) else None
        c0, d0 = ls_affine(e if e is not None else t, t, form)
        if form == "k":
            for d in nice_values(d0):
                if ok(0.0, d):
                    return 0.0, d
            return None
        if form == "ed":
            for d in nice_values(d0):
                if d != 0.0 and ok(1.0, d):
                    return 1.0, d
            return None
        if form == "ce":
            for c in nice_values(c0):
                if c not in (0.0, 1.0) and ok(c, 0.0):
                    return c, 0.0
            return None
        assert e is not None
        for c in nice_values(c0):
            if c in (0.0, 1.0):
                continue
            with np.errstate(all="ignore"):
                dc = float(np.mean(t - c * e))
            for d in nice_values(dc):
                if d != 0.0 and ok(c, d):
                    return c, d
        return None


def choose_probe(X: np.ndarray, t: np.ndarray, S: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
        np.asarray(X, dtype=np.float64)[:, c] for c in range(np.asarray(X).shape[1])
    ]
    for v in cols:
        if v.size == 0 or not np.all(np.isfinite(v)) or not np.all(v == np.rint(v)):
            continue
        lo, hi = int(v.min()), int(v.max())
        found += [hi, hi + 1, hi - lo + 1] + ([-lo] if lo < 0 else [])
    extra = [k for k in dict.fromkeys(found) if k not in SMALL_INTEGERS and 2 < abs(k) <= MAX_DATA_CONSTANT]
    return SMALL_INTEGERS + tuple(extra[:MAX_DATA_CONSTANTS])
