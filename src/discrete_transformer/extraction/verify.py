"""Verification of an extracted program on held-out data (DESIGN §4.5).

A program is *verified* when, on the dataset's test split,

* discrete tasks: every test sequence matches its targets exactly after rounding (100 %);
* continuous tasks: the MSE normalised by the variance of the test targets (per output channel,
  averaged) is at most ``CONTINUOUS_NMSE`` (1e-6),

and its two implementations agree: the standard-library ``program`` is run on a sample of test
sequences and must give what the NumPy ``run_batch`` gives (the full test set is scored through
``run_batch``). A task is *solved* only when its program verifies.

Stricter checks, reported beside the verdict but not part of it (the test split is what the
model was held to; these ask whether the program is the rule or a fit of the seen inputs):

* *longer*: the same rule on sequences :data:`LONGER_FACTOR` times as long as the trained ones;
* *off-range* (``wider``): on sequences of the trained length whose integer inputs are drawn a
  little outside the training range (``TaskSpec.sample_wider``), for tasks whose rule is defined
  there. A program that holds only on the seen range is reported as such.

Both need the task's rule to make targets, so data files have neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..verdict import CONTINUOUS_NMSE, EXACT_RULE, Kind, solved

__all__ = [
    "CONTINUOUS_NMSE",
    "LONGER_FACTOR",
    "PYTHON_CHECK",
    "SplitScore",
    "Verification",
    "longer_label",
    "score",
    "verify_program",
]

PYTHON_CHECK = 200  # test sequences also run through the standard-library `program`
LONGER_FACTOR = 4  # the longer-sequence check runs at this many times the trained T


def longer_label(factor: int = LONGER_FACTOR) -> str:
    """The longer check's name in tables: ``4×T``."""
    return f"{factor}×T"


@dataclass(frozen=True)
class SplitScore:
    """The program's score on one split."""

    n: int  # sequences
    T: int
    kind: str
    exact: float  # fraction of sequences equal to the targets after rounding (all kinds)
    nmse: float  # MSE / variance of the targets, averaged over output channels
    passed: bool
    error: str | None = None  # the program raised: its exception, one line

    def describe(self) -> str:
        if self.error is not None:
            return f"the program failed: {self.error}"
        if self.kind == Kind.DISCRETE:
            return f"{_pct(self.exact)} exact match after rounding (n={self.n} sequences, T={self.T})"
        return f"normalised MSE {self.nmse:.3g} (n={self.n} sequences, T={self.T})"


def _pct(x: float) -> str:
    v = math.floor(100.0 * x * 100 + 1e-9) / 100
    return f"{v:.2f}%"


@dataclass(frozen=True)
class Verification:
    kind: str
    verified: bool
    test: SplitScore
    longer: SplitScore | None  # None when not available
    longer_note: str  # why it is not available, or "" when it is
    python_checked: int  # sequences run through the standard-library `program`
    python_agrees: bool
    python_error: str | None = None
    wider: SplitScore | None = None  # inputs a little outside the training range; None when not available
    wider_note: str = "not checked"  # why it is not available, or "" when it is

    @property
    def generalises(self) -> bool | None:
        """Whether the longer-sequence check passed (None: not available)."""
        return None if self.longer is None else self.longer.passed

    @property
    def longer_factor(self) -> int:
        """How many times the tested T the longer sequences are (LONGER_FACTOR when not checked)."""
        if self.longer is None or self.test.T <= 0:
            return LONGER_FACTOR
        return round(self.longer.T / self.test.T)

    @property
    def holds_off_range(self) -> bool | None:
        """Whether the off-range check passed (None: not available for this task)."""
        return None if self.wider is None else self.wider.passed

    def to_dict(self) -> dict[str, Any]:
        d = {
            "verified": self.verified,
            "kind": self.kind,
            "rule": (
                EXACT_RULE
                if self.kind == Kind.DISCRETE
                else f"normalised MSE <= {CONTINUOUS_NMSE:g} (normalised by the test targets' variance)"
            ),
            "test": asdict(self.test),
            "longer": asdict(self.longer)
            if self.longer is not None
            else {"available": False, "note": self.longer_note},
            "wider": asdict(self.wider) if self.wider is not None else {"available": False, "note": self.wider_note},
            "python_checked": self.python_checked,
            "python_agrees": self.python_agrees,
        }
        for key, split in (("longer", self.longer), ("wider", self.wider)):
            if split is not None:
                d[key]["available"] = True
        if self.python_error:
            d["python_error"] = self.python_error
        return d

    def lines(self) -> list[str]:
        """Plain-text summary (used in the program's docstring and by the CLI)."""
        verdict = "yes" if self.verified else "NO"
        out = [f"verified: {verdict} -- test: {self.test.describe()}"]
        checks = (
            (f"sequences {self.longer_factor}x as long", self.longer, self.longer_note),
            ("values outside the training range", self.wider, self.wider_note),
        )
        for name, split, note in checks:
            if split is not None:
                out.append(f"{name}: {split.describe()} -- {'passes' if split.passed else 'fails'}")
            else:
                out.append(f"{name}: not available ({note})")
        if not self.python_agrees:
            why = f": {self.python_error}" if self.python_error else ""
            out.append(f"program() and run_batch() disagree on {self.python_checked} test sequences{why}")
        return out


def score(pred: np.ndarray, y: np.ndarray, kind: str) -> SplitScore:
    """Score predictions (n, T, C) against targets (n, T, C) by the task kind's rule."""
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, T = y.shape[:2]
    if pred.shape != y.shape:
        return SplitScore(n, T, kind, 0.0, math.inf, False, f"output shape {pred.shape}, expected {y.shape}")
    finite = bool(np.isfinite(pred).all())
    with np.errstate(all="ignore"):
        eq = (np.round(pred) == np.round(y)).reshape(n, -1).all(axis=1)
        exact = float(eq.mean()) if n else 1.0
        var = y.reshape(-1, y.shape[-1]).var(axis=0)
        var = np.where(var > 0, var, 1.0)
        mse = ((pred - y) ** 2).reshape(-1, y.shape[-1]).mean(axis=0)
        nmse = float(np.mean(mse / var)) if n else 0.0
    if not finite:
        nmse = math.inf
    passed = finite and solved(kind, {"exact": exact, "nmse": nmse}, CONTINUOUS_NMSE)
    return SplitScore(int(n), int(T), kind, exact, nmse, bool(passed))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def run_split(run_batch: Callable[[np.ndarray], Any], x: np.ndarray, y: np.ndarray, kind: str) -> SplitScore:
    try:
        with np.errstate(all="ignore"):
            pred = np.asarray(run_batch(np.asarray(x, dtype=np.float64)), dtype=np.float64)
    except Exception as e:  # noqa: BLE001 - a generated program may fail in any way
        n, T = y.shape[:2]
        return SplitScore(int(n), int(T), kind, 0.0, math.inf, False, _one_line(e))
    return score(pred, y, kind)


def python_outputs(program: Callable[..., Any], x: np.ndarray, n_out: int) -> np.ndarray:
    """Run the standard-library `program` sequence by sequence: (n, T, C_out)."""
    rows = []
    for seq in np.asarray(x, dtype=np.float64):
        chans = [[float(v) for v in seq[:, c]] for c in range(seq.shape[1])]
        out = program(*chans)
        outs = list(out) if isinstance(out, tuple) else [out]
        if len(outs) != n_out:
            raise ValueError(f"program returned {len(outs)} output channel(s), expected {n_out}")
        rows.append(np.stack([np.asarray(o, dtype=np.float64) for o in outs], axis=-1))
    return np.stack(rows) if rows else np.zeros((0, x.shape[1], n_out))


def verify_program(
    program: Callable[..., Any],
    run_batch: Callable[[np.ndarray], Any],
    x_test: np.ndarray,
    y_test: np.ndarray,
    kind: str,
    longer: tuple[np.ndarray, np.ndarray] | None = None,
    longer_note: str = "",
    python_check: int = PYTHON_CHECK,
    wider: tuple[np.ndarray, np.ndarray] | None = None,
    wider_note: str = "",
) -> Verification:
    """Verify `run_batch` on the test split (and on the `longer` and `wider` splits when given:
    reported, not part of the verdict) and check that `program` agrees with it on the first
    `python_check` test sequences."""
    test = run_split(run_batch, x_test, y_test, kind)
    long_score = run_split(run_batch, longer[0], longer[1], kind) if longer is not None else None
    wide_score = run_split(run_batch, wider[0], wider[1], kind) if wider is not None else None
    m = min(python_check, int(x_test.shape[0]))
    agrees, err = True, None
    if m and test.error is None:
        try:
            with np.errstate(all="ignore"):
                py = python_outputs(program, x_test[:m], y_test.shape[-1])
                nb = np.asarray(run_batch(np.asarray(x_test[:m], dtype=np.float64)), dtype=np.float64)
            if py.shape != nb.shape:
                agrees, err = False, f"shapes {py.shape} and {nb.shape}"
            elif kind == Kind.DISCRETE:
                agrees = bool((np.round(py) == np.round(nb)).all())
            else:
                agrees = bool(np.allclose(py, nb, rtol=1e-9, atol=1e-9 * (1.0 + float(np.abs(nb).max(initial=0.0)))))
        except Exception as e:  # noqa: BLE001
            agrees, err = False, _one_line(e)
    verified = test.passed and agrees
    return Verification(
        kind=kind,
        verified=bool(verified),
        test=test,
        longer=long_score,
        longer_note="" if longer is not None else (longer_note or "not available"),
        python_checked=m,
        python_agrees=agrees,
        python_error=err,
        wider=wide_score,
        wider_note="" if wider is not None else (wider_note or "not available"),
    )
