"""The generated suite's continuous families that generalise a public law (kinematics, a spring's
force, running means, products, momenta) over its constants, lags and channels.

Part of :data:`.families.PUBLIC`, in this order; same contract as :mod:`.families`.
"""

from __future__ import annotations

import numpy as np

from .algorithmic import channel, shift
from .family_kit import (
    Built,
    Family,
    Params,
    draw_const,
    draw_reals,
    draw_shift,
    draw_T,
    fmt,
    lin,
    map_ln,
    mean_ln,
    out,
    prefix_ln,
    real,
    shift_ln,
)

Gen = np.random.Generator


def _kinematics_draw(rng: Gen) -> Params:
    g = 0.0 if rng.integers(2) else draw_const(rng, 0.1, 20.0)
    return {
        "dt": draw_const(rng, 0.01, 2.0, False),
        "g": g,
        "outputs": int(rng.integers(1, 3)),
        "x": draw_reals(rng),
        "T": draw_T(rng),
    }


def _kinematics(p: Params) -> Built:
    dt, g, two = p["dt"], p["g"], p["outputs"] == 2
    vel = "z" if two else "vel"

    def rule(x: np.ndarray) -> np.ndarray:
        v = np.cumsum((channel(x) + g) * dt, axis=1)
        return out(np.cumsum(v * dt, axis=1), *([v] if two else []))

    acc = f"({lin([(1, 'u')], g)}) * {fmt(dt)}" if g else f"u * {fmt(dt)}"
    lines = [
        map_ln("acc", acc, "x"),
        prefix_ln(vel, "acc"),
        map_ln("step", f"u * {fmt(dt)}", vel),
        prefix_ln("y", "step"),
    ]
    force = lin([(1, "x[i]")], g)
    desc = f"v += ({force})*{fmt(dt)}; p += v*{fmt(dt)}; y = p" + ("; z = v" if two else "") + " (from rest)"
    return real((p["x"],), rule, desc, lines, ("y", "z") if two else ("y",))


def _weighted_window_draw(rng: Gen) -> Params:
    T, c0 = draw_T(rng), draw_const(rng)
    c1 = -c0 if rng.integers(3) == 0 else draw_const(rng)
    return {"coef": c0, "coef_lag": c1, "shift": draw_shift(rng, T), "x": draw_reals(rng), "T": T}


def _weighted_window(p: Params) -> Built:
    c0, c1, k = p["coef"], p["coef_lag"], p["shift"]
    expr = f"{fmt(c0)} * (u - v)" if c1 == -c0 else lin([(c0, "u"), (c1, "v")])

    def rule(x: np.ndarray) -> np.ndarray:
        return out(
            c0 * (channel(x) - shift(channel(x), k)) if c1 == -c0 else c0 * channel(x) + c1 * shift(channel(x), k)
        )

    words = lin([(c0, "x[i]"), (c1, f"x[i-{k}]")])
    return real(
        (p["x"],), rule, f"y[i] = {words}, x[<0] = 0", [shift_ln("lag_x", "x", k), map_ln("y", expr, "x", "lag_x")]
    )


def _running_mean_draw(rng: Gen) -> Params:
    two = bool(rng.integers(2))
    p: Params = {"channels": 2 if two else 1, "x": draw_reals(rng), "T": draw_T(rng)}
    if two:
        p = {"channels": 2, "a": p.pop("x"), "b": draw_reals(rng, positive=True, away=True), "T": p["T"]}
    return p


def _running_mean(p: Params) -> Built:
    if p["channels"] == 1:

        def rule(x: np.ndarray) -> np.ndarray:
            return out(np.cumsum(channel(x), axis=1) / np.arange(1, x.shape[1] + 1))

        return real((p["x"],), rule, "y[i] = mean(x[0..i])", [mean_ln("y", "x")])

    def rule(x: np.ndarray) -> np.ndarray:
        return out(np.cumsum(channel(x, 0) * channel(x, 1), axis=1) / np.cumsum(channel(x, 1), axis=1))

    lines = [
        map_ln("wx", "u * v", "a", "b"),
        prefix_ln("num", "wx"),
        prefix_ln("den", "b"),
        map_ln("y", "u / v", "num", "den"),
    ]
    return real((p["a"], p["b"]), rule, "y[i] = mean of a[0..i] weighted by b[0..i] > 0", lines)


def _product_law_draw(rng: Gen) -> Params:
    return {
        "coef": draw_const(rng),
        "power": int(rng.integers(1, 4)),
        "a": draw_reals(rng, bool(rng.integers(2))),
        "b": draw_reals(rng),
        "T": draw_T(rng),
    }


def _product_law(p: Params) -> Built:
    c, k = p["coef"], p["power"]
    expr = f"{fmt(c)} * u * v" + (f" ** {k}" if k > 1 else "")
    return real(
        (p["a"], p["b"]),
        lambda x: out(c * channel(x, 0) * channel(x, 1) ** k),
        f"y[i] = {fmt(c)} * a[i] * b[i]" + (f"^{k}" if k > 1 else ""),
        [map_ln("y", expr, "a", "b")],
    )


def _prefix_dot_draw(rng: Gen) -> Params:
    C = int(rng.integers(2, 4))
    return {"channels": C, **{n: draw_reals(rng) for n in ("a", "b", "c")[:C]}, "T": draw_T(rng)}


def _prefix_dot(p: Params) -> Built:
    names = ("a", "b", "c")[: p["channels"]]
    lines = [map_ln("prod", " * ".join("uvw"[: len(names)]), *names), prefix_ln("y", "prod")]
    return real(
        tuple(p[n] for n in names),
        lambda x: out(np.cumsum(np.prod(x, axis=2), axis=1)),
        f"y[i] = sum over j<=i of {'*'.join(f'{n}[j]' for n in names)}",
        lines,
    )


CONTINUOUS: tuple[Family, ...] = (
    Family("kinematics", "Kinematics_1D", "continuous", _kinematics_draw, _kinematics, ("dt",), "real"),
    Family(
        "weighted_window",
        "Spring_Force",
        "continuous",
        _weighted_window_draw,
        _weighted_window,
        ("coef", "shift"),
        "real",
    ),
    Family("running_mean", "Real_Running_Mean", "continuous", _running_mean_draw, _running_mean, ("channels",), "real"),
    Family("product_law", "Kinetic_Energy", "continuous", _product_law_draw, _product_law, ("coef",), "real"),
    Family("prefix_dot", "Total_Momentum", "continuous", _prefix_dot_draw, _prefix_dot, ("channels",), "real"),
)

__all__ = ["CONTINUOUS"]
