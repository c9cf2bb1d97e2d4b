"""Symbolic regression's fitted constants: the least-squares constants of the forms ``c*e``,
``e + d`` and ``c*e + d`` of an expression ``e``, the trees and predictions of those forms, and
the constants' snapping to "nice" values (integers, halves, few significant digits)."""

from __future__ import annotations

import math

import numpy as np

from .sr_trees import Tree


def nice_values(v: float) -> list[float]:
    """Candidate values for a fitted constant, simplest first, ending with ``v`` itself."""
    out: list[float] = []
    if not math.isfinite(v):
        return out
    cands = [float(round(v)), round(2 * v) / 2.0]
    cands += [float(f"{v:.{k}e}") for k in range(12)]
    cands.append(float(v))
    for c in cands:
        if math.isfinite(c) and c not in out:
            out.append(c)
    return out


def ls_affine(e: np.ndarray, t: np.ndarray, form: str) -> tuple[float, float]:
    """Least-squares constants (c, d) of ``c*e + d`` for the form ('ce': d=0, 'ed': c=1)."""
    with np.errstate(all="ignore"):
        if form == "ce":
            ee = float(e @ e)
            return (float(e @ t) / ee if ee > 0 else 0.0), 0.0
        if form == "ed":
            return 1.0, float(np.mean(t - e))
        if form == "k":
            return 0.0, float(np.mean(t))
        me, mt = float(e.mean()), float(t.mean())
        ec = e - me
        see = float(ec @ ec)
        c = float(ec @ (t - mt)) / see if see > 0 else 0.0
        return c, mt - c * me


def apply_form(form: str, base: Tree | None, c: float, d: float) -> Tree:
    if form == "e":
        assert base is not None
        return base
    if form == "k":
        return ("num", float(d))
    assert base is not None
    body = base
    if form in ("ce", "ced"):
        body = ("neg", base) if c == -1.0 else base if c == 1.0 else ("mul", ("num", float(c)), base)
    if form in ("ed", "ced") and d != 0.0:
        body = ("sub", body, ("num", float(-d))) if d < 0 else ("add", body, ("num", float(d)))
    return body


def form_pred(form: str, e: np.ndarray | None, c: float, d: float, n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        if form == "e":
            return e  # type: ignore[return-value]
        if form == "k":
            return np.full(n, d)
        if form == "ce":
            return c * e
        if form == "ed":
            return e + d
        return c * e + d


def shorten(form: str, e: np.ndarray | None, t: np.ndarray, c: float, d: float, tt: float) -> tuple[float, float]:
    """Round least-squares constants to the fewest digits that keep the fit (display only)."""
    if form == "e":
        return c, d
    n = t.shape[0]

    def sse(cc: float, dd: float) -> float:
        with np.errstate(all="ignore"):
            r = form_pred(form, e, cc, dd, n) - t
            v = float(r @ r)
        return v if math.isfinite(v) else math.inf

    opt = sse(c, d)
    limit = opt + 1e-6 * opt + 1e-13 * tt + 1e-300
    if form in ("ce", "ced"):
        for cc in nice_values(c):
            if cc == 0.0:
                continue
            with np.errstate(all="ignore"):
                dd = d if form == "ce" else float(np.mean(t - cc * e))
            if sse(cc, dd) <= limit:
                c, d = cc, dd
                break
    if form in ("ed", "ced", "k"):
        for dd in nice_values(d):
            if sse(c, dd) <= limit:
                d = dd
                break
    return c, d
