"""Work budgets for the extraction's searches (:class:`Budget`): nominal seconds of *work*, as
symbolic regression counts them, not wall time.

A regression is charged the work it did (``SRResult.work``) or its nominal budget, a candidate
check :data:`CHECK_COST`, so the same model gives the same program on a busy machine and on an
idle one; a wall-clock cap (``WALL_FACTOR`` × the budget) only guards against a machine many
times slower than the reference. Before this, the repair search ran on the wall clock, and one
model verified alone (28 s) and did not beside a training run (423 s).
"""

from __future__ import annotations

import time

from .symbolic import WALL_FACTOR

__all__ = ["CHECK_COST", "Budget"]

# Nominal seconds charged for one candidate check (render, load, score on the training rows, and
# for one that passes there the verification): about what one takes on the reference machine.
CHECK_COST = 0.1


class Budget:
    """Nominal seconds of work: what is charged so far, and the wall-clock cap."""

    def __init__(self, nominal: float) -> None:
        self.nominal, self.charged = float(nominal), 0.0
        self.t0 = time.perf_counter()
        self.wall = self.t0 + WALL_FACTOR * self.nominal

    def left(self) -> float:
        """Nominal seconds left (0 once spent or past the wall-clock cap)."""
        return max(0.0, self.nominal - self.charged) if time.perf_counter() < self.wall else 0.0

    def charge(self, seconds: float) -> None:
        self.charged += seconds

    @property
    def seconds(self) -> float:
        """Wall-clock seconds since the budget was opened."""
        return time.perf_counter() - self.t0
