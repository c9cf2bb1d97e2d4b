"""Annealing dynamics: read a run's metrics log, find the exploration → exploitation transition.

Definition (docs/analysis.md): on the search-phase rows of one seed (selectors still sampled,
τ > 0), take the mean selector entropy H as a function of x = log τ, smooth it by Gaussian local
linear regression in x (bandwidth ``smooth`` × the median spacing of the rows: it only removes
jitter), and call the *transition* the middle of the interval between consecutive rows where
dH/dx is largest — the steepest fall of entropy per e-fold of cooling, located to within one
logging interval. Using log τ rather than the step makes the definition independent of the
schedule's length; with the default exponential schedule the two are proportional. Reported with
it: step, τ, loss, selector and attention entropy there (mid-interval), entropy and loss at the
start and the end of the search, the *width* — the span of log τ over which smoothed H falls
from 25 % to 75 % of its total fall (small = sharp collapse) — and the *half-drop point* (step and
τ where smoothed H has fallen half way).

A log with fewer than ``min_rows`` search rows, or whose entropy falls by less than
``min_drop``, yields a :class:`Transition` with ``detected=False`` and a reason — not an error:
an early-stopped restart is a result.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..rundir import METRICS_FILE, RunDir

__all__ = [
    "DynamicsConfig",
    "MetricsError",
    "Transition",
    "detect_transition",
    "load_metrics",
    "run_transitions",
    "seed_rows",
]


class MetricsError(ValueError):
    """A run's metrics log is missing or unreadable."""


@dataclass(frozen=True)
class DynamicsConfig:
    """How the transition is detected (one setting for every task)."""

    smooth: float = 1.0  # Gaussian bandwidth in log τ, in units of the median spacing of the logged rows
    min_rows: int = 4  # fewer search-phase rows than this: no transition
    min_drop: float = 0.05  # smaller total fall of the mean selector entropy: no transition


@dataclass(frozen=True)
class Transition:
    """The transition of one seed's search (or why none was found)."""

    seed: int
    detected: bool
    reason: str = ""
    step: int | None = None
    tau: float | None = None
    loss: float | None = None
    selector_entropy: float | None = None
    attention_entropy: float | None = None
    rate: float | None = None  # dH/d(log τ) at the transition (smoothed)
    entropy_before: float | None = None
    entropy_after: float | None = None
    loss_before: float | None = None
    loss_after: float | None = None  # last search row
    width_log_tau: float | None = None  # log-τ span of the 25 %→75 % fall of smoothed H
    search_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of the merged metrics log or, for an interrupted run, of the per-seed logs."""
    d = Path(run_dir)
    paths = RunDir(d).metrics_logs()
    if not paths:
        raise MetricsError(f"{d}: no {METRICS_FILE} (not a finished training run?)")
    rows: list[dict[str, Any]] = []
    for p in paths:
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise MetricsError(f"{p}: cannot read: {e}") from None
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines) - 1:  # a torn last line from an interrupted write
                    continue
                raise MetricsError(f"{p}:{i + 1}: not a JSON line") from None
            if isinstance(row, dict) and "step" in row:
                rows.append(row)
    if not rows:
        raise MetricsError(f"{d}: the metrics log has no rows")
    return rows


def seed_rows(rows: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Rows grouped by seed, each group in logged order."""
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(int(r.get("seed", 0)), []).append(r)
    return out


def _search(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Search-phase rows with a positive τ and a selector entropy, one per step (last wins)."""
    by_step: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r.get("phase", "search") != "search":
            continue
        tau, h = r.get("tau"), r.get("selector_entropy")
        if tau is None or h is None or not (float(tau) > 0) or not math.isfinite(float(h)):
            continue
        by_step[int(r["step"])] = r
    return [by_step[s] for s in sorted(by_step)]


def _local_linear(x: np.ndarray, y: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-weighted local linear regression of y on x: (smoothed value, slope) at each x.
    Local *linear* (not a kernel average) so the slope is not biased towards 0 at the ends of
    the log — an entropy that falls fastest at the start is reported there."""
    w = np.exp(-0.5 * ((x[None, :] - x[:, None]) / max(bandwidth, 1e-12)) ** 2)  # (at, from)
    sw = w.sum(1)
    mx = (w @ x) / sw
    my = (w @ y) / sw
    dx = x[None, :] - mx[:, None]
    var = (w * dx**2).sum(1)
    cov = (w * dx * (y[None, :] - my[:, None])).sum(1)
    slope = np.where(var > 1e-12, cov / np.maximum(var, 1e-12), 0.0)
    return my + slope * (x - mx), slope


def _crossing(x: np.ndarray, h: np.ndarray, level: float) -> float | None:
    """First x (in row order) where h falls through `level` (linear interpolation)."""
    for i in range(1, len(h)):
        if h[i - 1] >= level >= h[i] and h[i - 1] != h[i]:
            t = (h[i - 1] - level) / (h[i - 1] - h[i])
            return float(x[i - 1] + t * (x[i] - x[i - 1]))
    return None


def _f(r: dict[str, Any], key: str) -> float | None:
    v = r.get(key)
    return None if v is None else float(v)


def detect_transition(
    rows: Sequence[dict[str, Any]], cfg: DynamicsConfig = DynamicsConfig(), seed: int = 0
) -> Transition:
    """The transition of one seed's rows (see the module docstring for the definition)."""
    s = _search(rows)
    n = len(s)
    if n < cfg.min_rows:
        return Transition(seed, False, f"too few search-phase rows ({n} < {cfg.min_rows})", search_rows=n)
    x = np.log(np.array([float(r["tau"]) for r in s]))
    h = np.array([float(r["selector_entropy"]) for r in s])
    if np.ptp(x) <= 0:
        return Transition(seed, False, "τ is constant during the search", search_rows=n)
    spacing = float(np.median(np.abs(np.diff(x))))
    hs, _ = _local_linear(x, h, cfg.smooth * spacing)
    # Steepest interval between consecutive rows of the smoothed curve: dH/dlogτ > 0 where H falls.
    dx = np.diff(x)
    rate = np.where(dx != 0, np.diff(hs) / np.where(dx != 0, dx, 1.0), 0.0)
    drop = float(hs[0] - hs[-1])
    base = dict(
        seed=seed,
        search_rows=n,
        entropy_before=float(h[0]),
        entropy_after=float(h[-1]),
        loss_before=_f(s[0], "loss"),
        loss_after=_f(s[-1], "loss"),
    )
    if drop < cfg.min_drop:
        return Transition(detected=False, reason=f"selector entropy fell by {drop:.3g} < {cfg.min_drop}", **base)
    i = int(np.argmax(rate))

    def between(key: str) -> float | None:  # the transition sits mid-interval: that is its resolution
        a, b = _f(s[i], key), _f(s[i + 1], key)
        return None if a is None or b is None else 0.5 * (a + b)

    lo, hi = _crossing(x, hs, hs[0] - 0.25 * drop), _crossing(x, hs, hs[0] - 0.75 * drop)
    width = abs(lo - hi) if lo is not None and hi is not None else None
    mid = _crossing(x, hs, hs[0] - 0.5 * drop)
    extra = (
        {}
        if mid is None
        else {
            "midpoint_tau": float(np.exp(mid)),
            "midpoint_step": float(np.interp(-mid, -x, [float(q["step"]) for q in s])),
        }
    )
    x_mid = 0.5 * (x[i] + x[i + 1])
    return Transition(
        detected=True,
        step=int(round(between("step"))),
        tau=float(np.exp(x_mid)),
        loss=between("loss"),
        selector_entropy=float(0.5 * (hs[i] + hs[i + 1])),
        attention_entropy=between("attention_entropy"),
        rate=float(rate[i]),
        width_log_tau=width,
        extra={**extra, "interval": [int(s[i]["step"]), int(s[i + 1]["step"])]},
        **base,
    )


def run_transitions(rows: Sequence[dict[str, Any]], cfg: DynamicsConfig = DynamicsConfig()) -> dict[int, Transition]:
    """Seed -> transition, for every seed in a run's log."""
    return {seed: detect_transition(rs, cfg, seed) for seed, rs in seed_rows(rows).items()}
