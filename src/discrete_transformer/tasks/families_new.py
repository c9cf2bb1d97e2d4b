"""The generated suite's families that no public task covers: routing by content, comparisons
between positions and channels, counting, products and ratios, state carried along the sequence
(with mirror images: min/max, first/last, earliest/latest) and continuous laws.

Same contract as :mod:`.families`; positions before the start read as 0.
"""

from __future__ import annotations

import numpy as np

from .algorithmic import channel, shift
from .family_kit import (
    CMP,
    Built,
    Family,
    Line,
    Params,
    discrete,
    draw_const,
    draw_range,
    draw_reals,
    draw_shift,
    draw_T,
    fmt,
    lin,
    map_ln,
    out,
    prefix_ln,
    real,
    recurrence,
    shift_ln,
    sig,
)

Gen = np.random.Generator
CMP_OPS = tuple(CMP)


def _op(rng: Gen) -> str:
    return CMP_OPS[int(rng.integers(len(CMP_OPS)))]


def _match_draw(rng: Gen) -> Params:
    return {"a": (0, int(rng.integers(1, 17))), "b": draw_range(rng), "T": draw_T(rng)}


def _match(latest: bool):
    """y[i] = b[j] at the latest (earliest) j < i with a[j] == a[i]; 0 when there is none."""

    def rule(x: np.ndarray) -> np.ndarray:
        key, val = channel(x, 0).astype(np.int64), channel(x, 1)
        n, T = key.shape
        table = np.zeros((n, int(key.max(initial=0)) + 1))
        seen = np.zeros(table.shape, dtype=bool)
        rows, y = np.arange(n), np.zeros((n, T))
        for i in range(T):
            k = key[:, i]
            y[:, i] = table[rows, k]
            upd = np.ones(n, dtype=bool) if latest else ~seen[rows, k]
            table[rows[upd], k[upd]] = val[upd, i]
            seen[rows, k] = True
        return out(y)

    def build(p: Params) -> Built:
        pick = (
            "[([0] + [b[j] for j in range(i) if a[j] == a[i]])[-1]"
            if latest
            else "[([b[j] for j in range(i) if a[j] == a[i]] + [0])[0]"
        )
        which = "latest" if latest else "earliest"
        return discrete(
            (p["a"], p["b"]),
            rule,
            f"y[i] = b[j] at the {which} j < i with a[j] == a[i], else 0",
            [Line(f"y = {pick} for i in range(len(a))]", 1)],
            off_range=(False, True),  # a is a key (the rule indexes a table by it): only the values widen
        )

    return build


def _index_draw(rng: Gen) -> Params:
    T = draw_T(rng)
    return {"shift": draw_shift(rng, T), "a": draw_range(rng), "T": T}


def _index_lookup(p: Params) -> Built:
    K = p["shift"]

    def rule(x: np.ndarray) -> np.ndarray:
        vals, idx = channel(x, 0), channel(x, 1).astype(np.int64)
        got = np.take_along_axis(vals, np.minimum(idx, x.shape[1] - 1), axis=1)
        return out(np.where(idx <= np.arange(x.shape[1]), got, 0.0))

    return discrete(
        (p["a"], (0, K)),
        rule,
        f"y[i] = a[b[i]] if b[i] <= i else 0, b in 0..{K}",
        [Line("y = [a[int(j)] if j <= i else 0 for i, j in enumerate(b)]", 1)],
        off_range=(True, False),  # b is an index (a negative one would wrap around): only the values widen
    )


def _compare_lag_draw(rng: Gen) -> Params:
    T = draw_T(rng)
    return {"op": _op(rng), "shift": draw_shift(rng, T), "x": draw_range(rng), "T": T}


def _compare_lag(p: Params) -> Built:
    op, k = p["op"], p["shift"]
    return discrete(
        (p["x"],),
        lambda x: out(CMP[op](channel(x), shift(channel(x), k))),
        f"y[i] = 1 iff x[i] {op} x[i-{k}], x[<0] = 0",
        [shift_ln("lag_x", "x", k), map_ln("y", f"u {op} v", "x", "lag_x")],
    )


def _compare_channels_draw(rng: Gen) -> Params:
    a, b = draw_range(rng), draw_range(rng)
    off = 0 if rng.integers(2) else int(rng.integers(-max(a[1], b[1]), max(a[1], b[1]) + 1))
    return {"op": _op(rng), "offset": off, "a": a, "b": b, "T": draw_T(rng)}


def _compare_channels(p: Params) -> Built:
    op, c = p["op"], p["offset"]
    rhs = lin([(1, "v")], c)
    return discrete(
        (p["a"], p["b"]),
        lambda x: out(CMP[op](channel(x, 0), channel(x, 1) + c)),
        f"y[i] = 1 iff a[i] {op} {rhs.replace('v', 'b[i]')}",
        [map_ln("y", f"u {op} {rhs}", "a", "b")],
    )


def _channels_draw(rng: Gen) -> Params:
    C = int(rng.integers(2, 4))
    return {"channels": C, **{n: draw_range(rng) for n in ("a", "b", "c")[:C]}, "T": draw_T(rng)}


def _extreme_channels(fn: str):
    def build(p: Params) -> Built:
        names = ("a", "b", "c")[: p["channels"]]
        red = np.max if fn == "max" else np.min
        return discrete(
            tuple(p[n] for n in names),
            lambda x: out(red(x, axis=2)),
            f"y[i] = {fn}({', '.join(f'{n}[i]' for n in names)})",
            [map_ln("y", f"{fn}({', '.join('uvw'[: len(names)])})", *names)],
        )

    return build


def _count_above_draw(rng: Gen) -> Params:
    lo, hi = draw_range(rng)
    return {
        "op": (">", "<")[int(rng.integers(2))],
        "threshold": int(rng.integers(lo, hi + 1)),
        "x": (lo, hi),
        "T": draw_T(rng),
    }


def _count_above(p: Params) -> Built:
    op, th = p["op"], p["threshold"]
    return discrete(
        (p["x"],),
        lambda x: out(np.cumsum(CMP[op](channel(x), th), axis=1)),
        f"y[i] = #{{j <= i : x[j] {op} {th}}}",
        [map_ln("hit", f"u {op} {th}", "x"), prefix_ln("y", "hit")],
    )


def _since_draw(rng: Gen) -> Params:
    V = int(rng.integers(1, 17))
    return {"reset": int(rng.integers(V + 1)), "x": (0, V), "T": draw_T(rng)}


def _since(p: Params) -> Built:
    r = p["reset"]

    def rule(x: np.ndarray) -> np.ndarray:
        a = channel(x)
        y, last = np.zeros_like(a), np.full(a.shape[0], -1.0)
        for i in range(a.shape[1]):
            last = np.where(a[:, i] == r, i, last)
            y[:, i] = i - last
        return out(y)

    return discrete(
        (p["x"],),
        rule,
        f"y[i] = i - (latest j <= i with x[j] == {r}), -1 if none",
        [
            Line(f"last = [max([j for j in range(i + 1) if x[j] == {r}], default=-1) for i in range(len(x))]", 1),
            map_ln("y", "i - u", "last", pos=True),
        ],
    )


def _product_draw(rng: Gen) -> Params:
    C = int(rng.integers(2, 4))
    return {"channels": C, **{n: draw_range(rng) for n in ("a", "b", "c")[:C]}, "T": draw_T(rng)}


def _int_product(p: Params) -> Built:
    three = p["channels"] == 3
    names = ("a", "b", "c") if three else ("a", "b")

    def rule(x: np.ndarray) -> np.ndarray:
        return out(channel(x, 0) * channel(x, 1) + (channel(x, 2) if three else 0))

    return discrete(
        tuple(p[n] for n in names),
        rule,
        "y[i] = a[i] * b[i]" + (" + c[i]" if three else ""),
        [map_ln("y", "u * v + w" if three else "u * v", *names)],
    )


def _ratio_draw(rng: Gen) -> Params:
    C = int(rng.integers(2, 4))
    p: Params = {"coef": draw_const(rng), "channels": C, "a": draw_reals(rng)}
    if C == 3:
        p["b"] = draw_reals(rng, positive=bool(rng.integers(2)))
    p["c" if C == 3 else "b"] = draw_reals(rng, away=True)
    return {**p, "T": draw_T(rng)}


def _ratio_law(p: Params) -> Built:
    c, three = p["coef"], p["channels"] == 3
    names = ("a", "b", "c") if three else ("a", "b")
    if three:  # ideal gas P = c*n*T/V
        rule, expr = (lambda x: out(c * channel(x, 0) * channel(x, 1) / channel(x, 2))), f"{fmt(c)} * u * v / w"
    else:  # Ohm's law I = c*V/R
        rule, expr = (lambda x: out(c * channel(x, 0) / channel(x, 1))), f"{fmt(c)} * u / v"
    words = " * ".join([fmt(c), *(f"{n}[i]" for n in names[:-1])]) + f" / {names[-1]}[i]"
    return real(tuple(p[n] for n in names), rule, f"y[i] = {words}", [map_ln("y", expr, *names)])


def _running_min(p: Params) -> Built:
    return discrete(
        (p["x"],),
        lambda x: out(np.minimum.accumulate(channel(x), axis=1)),
        "y[i] = min(x[0..i])",
        [prefix_ln("y", "x", "min")],
    )


def _first_value(p: Params) -> Built:
    return discrete(
        (p["x"],),
        lambda x: out(np.broadcast_to(channel(x)[:, :1], x.shape[:2])),
        "y[i] = x[0]",
        [Line("y = [x[0] for _ in x]", 1)],
    )


def _plain(rng: Gen) -> Params:
    return {"x": draw_range(rng), "T": draw_T(rng)}


def _last_nonzero_draw(rng: Gen) -> Params:
    return {"zeros": sig(rng.uniform(0.2, 0.7), 1), "x": draw_range(rng), "T": draw_T(rng)}


def _last_nonzero(p: Params) -> Built:
    (lo, hi), pz = p["x"], p["zeros"]

    def sample(rng: Gen, n: int, T: int) -> np.ndarray:
        v = rng.integers(lo, hi + 1, size=(n, T, 1)).astype(np.float64)
        return np.where(rng.random((n, T, 1)) < pz, 0.0, v)

    def rule(x: np.ndarray) -> np.ndarray:
        a = channel(x)
        y, last = np.zeros_like(a), np.zeros(a.shape[0])
        for i in range(a.shape[1]):
            last = np.where(a[:, i] != 0, a[:, i], last)
            y[:, i] = last
        return out(y)

    return discrete(
        (p["x"],),
        rule,
        f"y[i] = the latest nonzero x[j], j <= i, else 0 (x[i] = 0 w.p. >= {pz})",
        [Line("y = [([0] + [u for u in x[:i + 1] if u != 0])[-1] for i in range(len(x))]", 1)],
        sample=sample,
    )


def _ema_draw(rng: Gen) -> Params:
    return {"decay": sig(rng.uniform(0.05, 0.95), int(rng.integers(1, 3))), "x": draw_reals(rng), "T": draw_T(rng)}


def _ema(p: Params) -> Built:
    c = p["decay"]
    d = float(f"{1 - c:.12g}")

    def rule(x: np.ndarray) -> np.ndarray:
        a = channel(x)
        y, y1 = np.zeros_like(a), np.zeros(a.shape[0])
        for i in range(a.shape[1]):
            y1 = c * y1 + d * a[:, i]
            y[:, i] = y1
        return out(y)

    expr = lin([(c, "y1"), (d, "u")])
    return real(
        (p["x"],), rule, f"y[i] = {expr.replace('y1', 'y[i-1]').replace('u', 'x[i]')}, y[-1] = 0", [recurrence(expr, 1)]
    )


def _energy_draw(rng: Gen) -> Params:
    return {
        "coef": draw_const(rng),
        "half": draw_const(rng, 0.1, 10.0, False),
        "a": draw_reals(rng, True, True),
        "b": draw_reals(rng),
        "c": draw_reals(rng),
        "T": draw_T(rng),
    }


def _energy(p: Params) -> Built:
    g, h = p["coef"], p["half"]

    def rule(x: np.ndarray) -> np.ndarray:
        kin = h * channel(x, 0) * channel(x, 1) ** 2
        return out(kin + g * channel(x, 0) * channel(x, 2), kin)

    lines = [map_ln("z", f"{fmt(h)} * u * v ** 2", "a", "b"), map_ln("y", lin([(1, "u"), (g, "v * w")]), "z", "a", "c")]
    return real(
        (p["a"], p["b"], p["c"]),
        rule,
        f"z[i] = {fmt(h)}*a*b^2 (kinetic); y[i] = z[i] + {fmt(g)}*a*c (plus potential)",
        lines,
        ("y", "z"),
    )


NEW: tuple[Family, ...] = (
    Family("latest_match", "", "discrete", _match_draw, _match(True)),
    Family("earliest_match", "", "discrete", _match_draw, _match(False)),
    Family("index_lookup", "", "discrete", _index_draw, _index_lookup, ("shift",)),
    Family("compare_lag", "", "discrete", _compare_lag_draw, _compare_lag, ("shift",)),
    Family("compare_channels", "", "discrete", _compare_channels_draw, _compare_channels),
    Family("max_channels", "", "discrete", _channels_draw, _extreme_channels("max"), ("channels",)),
    Family("min_channels", "", "discrete", _channels_draw, _extreme_channels("min"), ("channels",)),
    Family("count_above", "", "discrete", _count_above_draw, _count_above),
    Family("steps_since_value", "", "discrete", _since_draw, _since, (), "small"),
    Family("int_product", "", "discrete", _product_draw, _int_product, ("channels",)),
    Family("ratio_law", "", "continuous", _ratio_draw, _ratio_law, ("coef", "channels"), "real"),
    Family("running_min", "", "discrete", _plain, _running_min),
    Family("first_value", "", "discrete", _plain, _first_value),
    Family("last_nonzero", "", "discrete", _last_nonzero_draw, _last_nonzero),
    Family("ema", "", "continuous", _ema_draw, _ema, ("decay",), "real"),
    Family("mechanical_energy", "", "continuous", _energy_draw, _energy, ("coef",), "real"),
)

__all__ = ["NEW"]
