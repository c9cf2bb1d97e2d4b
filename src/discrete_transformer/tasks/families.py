"""The generated suite's families that generalise a public rule over its parameters (moduli,
lags, windows, value ranges, constants, channels); the continuous ones are in
:mod:`.families_continuous`, the new families in :mod:`.families_new`.

Each family is a ``draw`` (rng -> parameters) and a ``build`` (parameters -> sampler, numpy rule,
description, reference program); see :mod:`.family_kit`. In every rule positions before the start
read as 0, as in the public tasks.
"""

from __future__ import annotations

import numpy as np

from .algorithmic import channel, shift
from .families_continuous import CONTINUOUS
from .family_kit import (
    Built,
    Family,
    Line,
    Params,
    discrete,
    draw_mod,
    draw_range,
    draw_shift,
    draw_T,
    lin,
    map_ln,
    mean_ln,
    out,
    pos_ln,
    prefix_ln,
    recurrence,
    shift_ln,
)

BIT = (0, 1)
Gen = np.random.Generator


def _pick(rng: Gen, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def _chans(x: np.ndarray) -> list[np.ndarray]:
    return [channel(x, c) for c in range(x.shape[2])]


def _lag_lines(k: int, expr: str) -> list[Line]:
    """``expr`` over the current value (u) and the one ``k`` steps back (v)."""
    return [shift_ln("lag_x", "x", k), map_ln("y", expr, "x", "lag_x")]


def _window_lines(k: int, expr2: str, expr: str) -> list[Line]:
    """A window of ``k``: two terms element-wise, longer ones as a prefix sum minus its lag."""
    if k == 2:
        return [shift_ln("prev_x", "x", 1), map_ln("y", expr2, "x", "prev_x")]
    return [prefix_ln("s", "x"), shift_ln("s_back", "s", k), map_ln("y", expr, "s", "s_back")]


def _lagged(rng: Gen, lo: int = 1, top: int = 1000, signed: bool | None = None) -> Params:
    T = draw_T(rng)
    return {"shift": draw_shift(rng, T, lo), "x": draw_range(rng, signed, top), "T": T}


def _plain(rng: Gen, signed: bool | None = None) -> Params:
    return {"x": draw_range(rng, signed), "T": draw_T(rng)}


# ----------------------------------------------------------------------------- public rules, generalised


def _prev_k(p: Params) -> Built:
    k = p["shift"]
    return discrete(
        (p["x"],), lambda x: out(shift(channel(x), k)), f"y[i] = x[i-{k}], 0 for i < {k}", [shift_ln("y", "x", k)]
    )


def _window_sum(p: Params) -> Built:
    k = p["shift"]

    def rule(x: np.ndarray) -> np.ndarray:
        s = np.cumsum(channel(x), axis=1)
        return out(s - shift(s, k))

    return discrete((p["x"],), rule, f"y[i] = x[i-{k - 1}] + ... + x[i], x[<0] = 0", _window_lines(k, "u + v", "u - v"))


def _prefix_sum(p: Params) -> Built:
    return discrete(
        (p["x"],), lambda x: out(np.cumsum(channel(x), axis=1)), "y[i] = x[0] + ... + x[i]", [prefix_ln("y", "x")]
    )


def _add_mod_draw(rng: Gen) -> Params:
    m = draw_mod(rng)
    return {"m": m, "x": (0, m - 1) if rng.integers(2) else draw_range(rng, False), "T": draw_T(rng)}


def _add_mod(p: Params) -> Built:
    m = p["m"]
    return discrete(
        (p["x"],),
        lambda x: out(np.mod(np.cumsum(channel(x), axis=1), m)),
        f"y[i] = (x[0] + ... + x[i]) mod {m}",
        [prefix_ln("s", "x"), map_ln("y", f"u % {m}", "s")],
        off_range=tuple(p["x"]) != (0, m - 1),  # residues 0..m-1 as inputs: in range only
    )


def _abs_current_draw(rng: Gen) -> Params:
    lo, hi = draw_range(rng)
    return {"center": 0 if rng.integers(2) else int(rng.integers(lo, hi + 1)), "x": (lo, hi), "T": draw_T(rng)}


def _abs_current(p: Params) -> Built:
    c = p["center"]
    inner = lin([(1, "u")], -c)
    return discrete(
        (p["x"],),
        lambda x: out(np.abs(channel(x) - c)),
        f"y[i] = |{inner.replace('u', 'x[i]')}|",
        [map_ln("y", f"abs({inner})", "x")],
    )


def _affine_draw(rng: Gen) -> Params:
    scale = int(rng.integers(1, 13)) * (1 if rng.integers(2) else -1)
    offset = 0 if rng.integers(3) == 0 else int(_pick(rng, (-1, 1)) * round(np.exp(rng.uniform(0, np.log(1000)))))
    return {"scale": scale, "offset": offset, "x": draw_range(rng), "T": draw_T(rng)}


def _affine(p: Params) -> Built:
    a, b = p["scale"], p["offset"]
    expr = lin([(a, "u")], b)
    return discrete(
        (p["x"],), lambda x: out(a * channel(x) + b), f"y[i] = {expr.replace('u', 'x[i]')}", [map_ln("y", expr, "x")]
    )


def _diff_lag(p: Params) -> Built:
    k = p["shift"]
    return discrete(
        (p["x"],),
        lambda x: out(channel(x) - shift(channel(x), k)),
        f"y[i] = x[i] - x[i-{k}], x[<0] = 0",
        _lag_lines(k, "u - v"),
    )


def _abs_diff_lag(p: Params) -> Built:
    k = p["shift"]
    return discrete(
        (p["x"],),
        lambda x: out(np.abs(channel(x) - shift(channel(x), k))),
        f"y[i] = |x[i] - x[i-{k}]|, x[<0] = 0",
        _lag_lines(k, "abs(u - v)"),
    )


def _running_max(p: Params) -> Built:
    return discrete(
        (p["x"],),
        lambda x: out(np.maximum.accumulate(channel(x), axis=1)),
        "y[i] = max(x[0..i])",
        [prefix_ln("y", "x", "max")],
    )


def _window_parity(p: Params) -> Built:
    k = p["shift"]

    def rule(x: np.ndarray) -> np.ndarray:
        s = np.cumsum(channel(x), axis=1)
        return out(np.mod(s - shift(s, k), 2))

    return discrete(
        (BIT,), rule, f"y[i] = (x[i-{k - 1}] + ... + x[i]) mod 2, bits", _window_lines(k, "(u + v) % 2", "(u - v) % 2")
    )


def _parity_all_draw(rng: Gen) -> Params:
    return {"channels": int(rng.integers(1, 4)), "x": BIT, "T": draw_T(rng)}


def _parity_all(p: Params) -> Built:
    C = p["channels"]

    def rule(x: np.ndarray) -> np.ndarray:
        return out(np.mod(np.cumsum(x.sum(axis=2), axis=1), 2))

    if C == 1:
        lines = [prefix_ln("s", "x"), map_ln("y", "u % 2", "s")]
    else:
        names = ("a", "b", "c")[:C]
        lines = [map_ln("ones", " + ".join("uvw"[:C]), *names), prefix_ln("s", "ones"), map_ln("y", "u % 2", "s")]
    return discrete((BIT,) * C, rule, f"y[i] = parity of all {C} bit channel(s) over 0..i", lines)


def _position_mod_draw(rng: Gen) -> Params:
    m = draw_mod(rng)
    return {"m": m, "phase": int(rng.integers(m)), "x": draw_range(rng), "T": draw_T(rng)}


def _position_mod(p: Params) -> Built:
    m, r = p["m"], p["phase"]

    def rule(x: np.ndarray) -> np.ndarray:
        return out(np.broadcast_to((np.arange(x.shape[1]) + r) % m, x.shape[:2]))

    expr = f"(i + {r}) % {m}" if r else f"i % {m}"
    return discrete((p["x"],), rule, f"y[i] = (i + {r}) mod {m}, whatever x", [pos_ln("y", expr, "x")])


BIT_OPS = {  # name: (expression over u, v, w; numpy rule over the channel list)
    "and": ("u * v", lambda c: c[0] * c[1]),
    "or": ("max(u, v)", lambda c: np.maximum(c[0], c[1])),
    "xor": ("(u + v) % 2", lambda c: np.mod(c[0] + c[1], 2)),
    "nand": ("1 - u * v", lambda c: 1 - c[0] * c[1]),
    "nor": ("1 - max(u, v)", lambda c: 1 - np.maximum(c[0], c[1])),
    "xnor": ("u == v", lambda c: c[0] == c[1]),
    "and_not": ("u * (1 - v)", lambda c: c[0] * (1 - c[1])),
    "implies": ("max(1 - u, v)", lambda c: np.maximum(1 - c[0], c[1])),
    "and3": ("u * v * w", lambda c: c[0] * c[1] * c[2]),
    "or3": ("max(u, v, w)", lambda c: np.maximum(np.maximum(c[0], c[1]), c[2])),
    "xor3": ("(u + v + w) % 2", lambda c: np.mod(c[0] + c[1] + c[2], 2)),
    "majority3": ("u + v + w >= 2", lambda c: c[0] + c[1] + c[2] >= 2),
}


def _bitwise_draw(rng: Gen) -> Params:
    op = str(_pick(rng, tuple(BIT_OPS)))
    return {"op": op, "x": BIT, "T": draw_T(rng)}


def _bitwise(p: Params) -> Built:
    expr, fn = BIT_OPS[str(p["op"])]
    C = 3 if "w" in expr else 2
    return discrete(
        (BIT,) * C,
        lambda x: out(fn(_chans(x))),
        f"y[i] = {p['op']} of the bits a[i], b[i]" + (", c[i]" if C == 3 else ""),
        [map_ln("y", expr, *("a", "b", "c")[:C])],
    )


def _equals_lag(p: Params) -> Built:
    k = p["shift"]
    return discrete(
        (p["x"],),
        lambda x: out(channel(x) == shift(channel(x), k)),
        f"y[i] = 1 iff x[i] == x[i-{k}], x[<0] = 0",
        _lag_lines(k, "u == v"),
    )


def _majority_draw(rng: Gen) -> Params:
    return {"ties": int(rng.integers(2)), "x": BIT, "T": draw_T(rng)}


def _majority(p: Params) -> Built:
    tie = p["ties"]

    def rule(x: np.ndarray) -> np.ndarray:
        twice, n = 2 * np.cumsum(channel(x), axis=1), np.arange(1, x.shape[1] + 1)
        return out(twice >= n if tie else twice > n)

    return discrete(
        (BIT,),
        rule,
        f"y[i] = majority bit of x[0..i], ties to {tie}",
        [mean_ln("frac", "x"), map_ln("y", "u >= 0.5" if tie else "u > 0.5", "frac")],
    )


def _dot_mod_draw(rng: Gen) -> Params:
    return {"m": draw_mod(rng), "channels": int(rng.integers(2, 4)), "x": draw_range(rng, False), "T": draw_T(rng)}


def _dot_mod(p: Params) -> Built:
    m, C = p["m"], p["channels"]

    def rule(x: np.ndarray) -> np.ndarray:
        return out(np.mod(np.cumsum(np.prod(x, axis=2), axis=1), m))

    lines = [
        map_ln("prod", " * ".join("uvw"[:C]), *("a", "b", "c")[:C]),
        prefix_ln("s", "prod"),
        map_ln("y", f"u % {m}", "s"),
    ]
    return discrete((p["x"],) * C, rule, f"y[i] = (sum over j<=i of the product of the {C} channels) mod {m}", lines)


def _count_value_draw(rng: Gen) -> Params:
    x = draw_range(rng, False, 100)
    d = draw_mod(rng) if rng.integers(2) else 0
    r = int(rng.integers(d)) if d else int(rng.integers(x[0], x[1] + 1))
    return {"m": draw_mod(rng) if rng.integers(2) else 0, "div": d, "r": r, "x": x, "T": draw_T(rng)}


def _count_value(p: Params) -> Built:
    m, d, r = p["m"], p["div"], p["r"]
    pred = f"u % {d} == {r}" if d else f"u == {r}"

    def rule(x: np.ndarray) -> np.ndarray:
        hit = (np.mod(channel(x), d) == r) if d else (channel(x) == r)
        c = np.cumsum(hit, axis=1)
        return out(np.mod(c, m) if m else c)

    lines = [map_ln("hit", pred, "x"), prefix_ln("count" if m else "y", "hit")]
    if m:
        lines.append(map_ln("y", f"u % {m}", "count"))
    words = f"#{{j <= i : {pred.replace('u', 'x[j]')}}}"
    return discrete((p["x"],), rule, f"y[i] = {words}" + (f" mod {m}" if m else ""), lines)


def _base_add_draw(rng: Gen) -> Params:
    m = draw_mod(rng)
    return {"m": m, "outputs": int(rng.integers(1, 3)), "x": (0, m - 1), "T": draw_T(rng)}


def _base_add(p: Params) -> Built:
    m, two = p["m"], p["outputs"] == 2

    def rule(x: np.ndarray) -> np.ndarray:
        s = x.sum(axis=2)
        y, z, carry = np.zeros_like(s), np.zeros_like(s), np.zeros(s.shape[0])
        for i in range(s.shape[1]):
            t = s[:, i] + carry
            y[:, i], carry = np.mod(t, m), np.floor(t / m)
            z[:, i] = carry
        return out(y, *([z] if two else []))

    lines = [
        map_ln("s", "u + v", "a", "b"),
        Line(f"last = [([0] + [s[j] for j in range(i) if s[j] != {m - 1}])[-1] for i in range(len(s))]", 1),
        map_ln("y", f"(u + (v >= {m})) % {m}", "s", "last"),
    ]
    if two:
        lines.append(map_ln("z", f"u + (v >= {m}) >= {m}", "s", "last"))
    desc = f"base-{m} addition of a and b, least-significant digit first" + ("; z = carry out" if two else "")
    return discrete((p["x"], p["x"]), rule, desc, lines, ("y", "z") if two else ("y",), off_range=False)  # digits


RECURRENCES = ((1, -1), (0, -1), (-1, -1), (0, 1), (-1, 0), (2, -1), (-2, -1))  # bounded or polynomial


def _recurrence_draw(rng: Gen) -> Params:
    return {"c": RECURRENCES[int(rng.integers(len(RECURRENCES)))], "x": draw_range(rng), "T": draw_T(rng)}


def _recurrence(p: Params) -> Built:
    c1, c2 = p["c"]

    def rule(x: np.ndarray) -> np.ndarray:
        a = channel(x)
        y, y1, y2 = np.zeros_like(a), np.zeros(a.shape[0]), np.zeros(a.shape[0])
        for i in range(a.shape[1]):
            y1, y2 = c1 * y1 + c2 * y2 + a[:, i], y1
            y[:, i] = y1
        return out(y)

    expr = lin([(c1, "y1"), (c2, "y2"), (1, "u")])
    words = expr.replace("y1", "y[i-1]").replace("y2", "y[i-2]").replace("u", "x[i]")
    return discrete((p["x"],), rule, f"y[i] = {words}, y[<0] = 0", [recurrence(expr, 2 if c2 else 1)])


PUBLIC: tuple[Family, ...] = (
    Family("prev_k", "Prev1", "discrete", _lagged, _prev_k, ("shift",)),
    Family("window_sum", "Sum_Last2", "discrete", lambda r: _lagged(r, 2), _window_sum, ("shift",)),
    Family("prefix_sum", "Sum_All", "discrete", _plain, _prefix_sum),
    Family("add_mod", "Add_Mod_3", "discrete", _add_mod_draw, _add_mod, ("m",)),
    Family("abs_current", "Abs_Current", "discrete", _abs_current_draw, _abs_current),
    Family("affine_current", "Current_Number", "discrete", _affine_draw, _affine),
    Family("diff_lag", "Diff_Last2", "discrete", _lagged, _diff_lag, ("shift",)),
    Family("abs_diff_lag", "Abs_Diff", "discrete", _lagged, _abs_diff_lag, ("shift",)),
    Family("running_max", "Max_Seen", "discrete", _plain, _running_max),
    Family("window_parity", "Parity_Last3", "discrete", lambda r: _lagged(r, 2, 1), _window_parity, ("shift",), "bits"),
    Family("parity_all", "Parity_All", "discrete", _parity_all_draw, _parity_all, ("channels",), "bits"),
    Family("position_mod", "Parity_Bits_Mod2", "discrete", _position_mod_draw, _position_mod, ("m",)),
    Family("bitwise_op", "Bitwise_And", "discrete", _bitwise_draw, _bitwise, (), "bits"),
    Family(
        "equals_lag",
        "Previous_Equals_Current",
        "discrete",
        lambda r: _lagged(r, 1, 16),
        _equals_lag,
        ("shift",),
        "small",
    ),
    Family("majority", "Majority_0_1", "discrete", _majority_draw, _majority, (), "bits"),
    Family("dot_mod", "Bit_Dot_Prod_Mod2", "discrete", _dot_mod_draw, _dot_mod, ("m",)),
    Family("count_value", "Parity_Zeros", "discrete", _count_value_draw, _count_value, ("m",), "small"),
    *CONTINUOUS,
    Family("base_addition", "Base_3_Addition", "discrete", _base_add_draw, _base_add, ("m",), "small"),
    Family("linear_recurrence", "Newton_Spring", "discrete", _recurrence_draw, _recurrence),
)
