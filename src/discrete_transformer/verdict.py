"""What "solved" means, in one place: the task kinds, the tolerances, and the one solved rule.

Training (a restart's early stop, the end of a portfolio), the bench (a model or baseline solved
on the test split), extraction (a candidate program's score) and the CLI's verdict table all ask
the same question of a score — exact match, or normalised MSE within a tolerance — and ask it
here, so that the rule and its tolerances cannot drift apart. A leaf module: it imports nothing
from the package.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import numpy as np


class Kind(enum.StrEnum):
    """A task's kind. A str enum: ``Kind.DISCRETE == "discrete"``, so a kind read from a file or
    a :class:`~.tasks.Dataset` (which hold the plain strings) compares equal to its member, and
    JSON files, ``str()`` and f-strings show the value."""

    DISCRETE = "discrete"
    CONTINUOUS = "continuous"


KINDS: tuple[str, ...] = tuple(k.value for k in Kind)

# ----------------------------------------------------------------------------- tolerances
# One constant per meaning. (The tolerances of fitting an expression to an MLP are extraction's
# own, extraction/mlps.py: they decide which expression describes an MLP, not whether a task is
# solved.)
#
# Discrete tasks have no tolerance: a sequence is exact when every output equals its target after
# both are rounded to integers, and a split is solved when every sequence is exact (EXACT_RULE).
EXACT_RULE = "100% exact match after rounding"

# The verification rule for continuous tasks: a program (or a model, or a baseline) is correct when
# its MSE normalised by the targets' variance (per output channel, averaged) is at most this. It
# also ends a portfolio of restarts: a further restart buys nothing the verification can see.
CONTINUOUS_NMSE = 1e-6

# A restart's own stopping target for continuous tasks (its search, trial polishes and polish stop
# once a member's validation nMSE is at most this): stricter than CONTINUOUS_NMSE, because within a
# restart more precision is cheap.
RESTART_NMSE = 1e-7


# ----------------------------------------------------------------------------- the solved rule


def solved_each(kind: str, metrics: Mapping[str, Any], tol: float) -> np.ndarray:
    """:func:`solved` for a population at once: ``metrics["exact"]`` / ``metrics["nmse"]`` are
    arrays (one value per member); one bool per member."""
    if kind == Kind.DISCRETE:
        return np.asarray(metrics["exact"]) >= 1.0
    return np.asarray(metrics["nmse"]) <= tol


def solved(kind: str, metrics: Mapping[str, Any], tol: float) -> bool:
    """The solved rule: discrete — every sequence exact (``metrics["exact"] >= 1``); continuous —
    ``metrics["nmse"] <= tol``. ``tol`` says which meaning is asked: :data:`CONTINUOUS_NMSE`
    (verification) or :data:`RESTART_NMSE` (a restart's own target)."""
    return bool(solved_each(kind, metrics, tol))


def _short(x: float) -> str:
    """``1e-06`` written as ``1e-6``."""
    mantissa, _, exponent = f"{x:g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def rule_text(kind: str) -> str:
    """The verification rule in words, as the CLI's verdict table shows it."""
    return EXACT_RULE if kind == Kind.DISCRETE else f"normalised MSE <= {_short(CONTINUOUS_NMSE)}"


__all__ = [
    "CONTINUOUS_NMSE",
    "EXACT_RULE",
    "KINDS",
    "RESTART_NMSE",
    "Kind",
    "rule_text",
    "solved",
    "solved_each",
]
