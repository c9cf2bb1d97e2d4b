"""The restart policy: which restart of a portfolio may start now, and when the portfolio is done.

One pure state machine, :class:`Portfolio` — no processes, no clock (the time is passed in) —
followed by both drivers: ``dtx train``/``dtx run`` (:mod:`.restarts`: one restart after another
in this process, or side by side in a pool of processes) and ``dtx bench``
(:mod:`..bench.schedule`: a task's restarts as units among its other units). The rules:

- at most ``side_by_side`` restarts run at once, and restarts start in portfolio order;
- the first ``side_by_side`` restarts start whatever the budget (each under what is left of it,
  :func:`time_limit`); a later one starts only if one as long as the longest finished so far
  would end by the deadline (:meth:`Portfolio.fits`) — a restart cut short by the budget is a
  search whose temperatures never fell. Once one does not fit, none does: the portfolio is closed;
- a finished restart whose validation ends the portfolio (:func:`ends_portfolio`; only with
  ``stop_on_solved``) means no further restart starts (the drivers also stop the running ones);
- optionally (the bench, ``probe=True``): before the first fallback restart (index
  ``side_by_side``), once every earlier restart ended unsolved, a *probe* extracts the program of
  the restarts so far — if a fallback fits; else the portfolio is closed. A verified probe
  resolves the portfolio; after an unverified one the first fallback was judged when the probe
  ended (:meth:`Portfolio.probe_ended` closes the portfolio when it does not fit), later ones as
  they start.

The portfolio is *resolved* once solved, every restart finished, the probe verified, or closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..verdict import CONTINUOUS_NMSE, RESTART_NMSE, solved

RESTART = "restart"
PROBE = "probe"


def ends_portfolio(kind: str, val: Mapping[str, Any], continuous_tol: float = RESTART_NMSE) -> bool:
    """Whether a finished restart makes the remaining ones unnecessary: solved on validation, with
    the verification rule's tolerance for continuous tasks (or ``continuous_tol``, if looser).

    A restart's own search and polish aim at the stricter ``continuous_tol``, which is cheap there;
    another restart is not (a whole search), and buys nothing the verification can see."""
    return solved(kind, val, max(continuous_tol, CONTINUOUS_NMSE))


def time_limit(limit: float | None, deadline: float | None, now: float) -> float | None:
    """A restart's time limit (seconds; None = none) started at ``now``: at most what is left until
    ``deadline`` (wall clock; None = no budget), and at least a millisecond."""
    if deadline is None:
        return limit
    left = max(deadline - now, 1e-3)
    return left if limit is None else min(limit, left)


@dataclass
class Portfolio:
    """The state of one run's restarts under the policy (see the module's docstring).

    A driver asks :meth:`next` what may start now, calls :meth:`start` (or :meth:`start_probe`) as
    it starts it, and reports each end with :meth:`ended` (or :meth:`probe_ended`)."""

    restarts: int  # the portfolio's restarts (K)
    side_by_side: int  # at most this many run at once; the first this many start whatever the budget
    deadline: float | None = None  # wall clock by which restarts end (None: no budget); set as the run starts
    probe: bool = False  # the optional probe step before the first fallback restart
    stop_on_solved: bool = True  # a restart that ends the portfolio (ends_portfolio) stops the rest
    started: int = 0  # restarts started so far (the next one's index)
    running: int = 0
    finished: int = 0
    solved: bool = False
    longest: float = 0.0  # the longest finished restart's seconds
    closed: bool = False  # no further restart starts: the next one would not end by the deadline
    probe_started: bool = False
    probe_done: bool = False
    probe_verified: bool = False

    def __post_init__(self) -> None:
        if self.side_by_side < 1:
            raise ValueError(f"side_by_side must be >= 1, got {self.side_by_side}")

    def fits(self, now: float) -> bool:
        """Whether one more restart as long as the longest finished so far, started at ``now``,
        ends by the deadline."""
        return self.deadline is None or now + self.longest <= self.deadline

    @property
    def resolved(self) -> bool:
        """No further restart will start."""
        return self.solved or self.finished >= self.restarts or self.probe_verified or self.closed

    @property
    def done(self) -> bool:
        """Resolved, and no restart runs: the run can go on to its extraction."""
        return self.resolved and self.running == 0

    def next(self, now: float) -> str | None:
        """What may start now: :data:`RESTART`, :data:`PROBE` or None (wait, or nothing more).
        Closes the portfolio when the next restart (or the probe before it) would not fit."""
        i = self.started
        if self.resolved or i >= self.restarts or self.running >= self.side_by_side:
            return None
        if i < self.side_by_side:
            return RESTART
        if not self.probe:
            if self.fits(now):
                return RESTART
        elif self.probe_done:  # unverified (else resolved); the first fallback was judged as it ended
            if i == self.side_by_side or self.fits(now):
                return RESTART
        elif self.probe_started or self.running > 0:
            return None  # the probe waits for every earlier restart to end; the fallback for the probe
        elif self.fits(now):
            return PROBE
        self.closed = True
        return None

    def start(self) -> int:
        """The next restart starts: its index."""
        self.started += 1
        self.running += 1
        return self.started - 1

    def ended(self, seconds: float, ends: bool) -> bool:
        """A restart ended after ``seconds``; ``ends``: its validation ends the portfolio
        (:func:`ends_portfolio`). Returns whether it is the first to end it: the driver then
        stops the restarts still running."""
        self.running -= 1
        self.finished += 1
        self.longest = max(self.longest, float(seconds))
        first = ends and self.stop_on_solved and not self.solved
        self.solved = self.solved or first
        return first

    def start_probe(self) -> None:
        self.probe_started = True

    def probe_ended(self, verified: bool, now: float) -> bool:
        """The probe's program verified or not; returns whether the probe is the run's final
        extraction: it verified, or no fallback restart fits after it (then the portfolio closes)."""
        self.probe_done = True
        self.probe_verified = verified
        if not verified and not self.fits(now):
            self.closed = True
        return verified or self.closed


__all__ = ["PROBE", "RESTART", "Portfolio", "ends_portfolio", "time_limit"]
