"""What the architecture can express: hand-built constructions from the model's own routing
primitives (hard_pattern, fixed_pattern, the causal mask, BOS = 0) and element-wise functions
realised as one-hidden-layer ReLU MLPs of at most `ModelConfig.mlp_hidden` units and arity 2.

These are not the method (nothing here is used by training or extraction); they pin down
(docs/design.md, What the default architecture can express) that the carry tasks
(Binary/Base_3/Base_4_Addition) have a two-layer construction whose content head takes the
*latest* key of its tie set, the routing a hardened head has with `attention_averaging=False`;
the default heads average their tie set instead, and the same construction then fails; and
that Div_3, Newton_Spring and Bit_Palindrome, which have none in two layers, have one in three.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.model.attention import bos_mask, causal_bias, fixed_pattern, hard_pattern
from discrete_transformer.tasks import make_dataset

HIDDEN = ModelConfig().mlp_hidden
TAU_ATTN = TrainConfig().tau_attn_end  # the temperature a hardened head's scores are read at


def relu_interpolant(points: np.ndarray, values: np.ndarray) -> tuple[int, Callable]:
    """An exact one-hidden-layer ReLU network through `values` on the finite grid `points`
    (n, 2): project onto a direction that separates every point, then interpolate piecewise
    linearly along it (one ReLU per interior breakpoint). Returns (units, f)."""
    points = np.asarray(points, dtype=float)
    uniq, inv = np.unique(points, axis=0, return_inverse=True)
    vals = np.zeros(len(uniq))
    vals[inv.reshape(-1)] = values
    # Integer grids with coordinates in [lo, hi]: u = a + (span + 1)·b is injective.
    span = float(np.ptp(uniq[:, 0])) + 1.0
    d = np.array([1.0, span])
    z = uniq @ d
    order = np.argsort(z)
    z, vals = z[order], vals[order]
    slopes = np.diff(vals) / np.diff(z) if len(z) > 1 else np.zeros(0)
    knots, coefs = z[1:-1], np.diff(slopes)  # one unit per interior breakpoint

    def f(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        u = a * d[0] + b * d[1]
        out = vals[0] + (slopes[0] * (u - z[0]) if len(slopes) else 0.0)
        for t, c in zip(knots, coefs):
            out = out + c * np.maximum(u - t, 0.0)
        return out

    return len(knots) + 1, f  # + 1: the first linear piece is a ReLU of u - z[0] (u ≥ z[0])


def _every_sequence(task: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of every sequence of a task's data, train and test."""
    ds = make_dataset(task, seed=0)
    return np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])


def _with_bos(x: np.ndarray) -> np.ndarray:
    """(n, T) -> (n, T1): the BOS slot, which reads 0, first."""
    return np.concatenate([np.zeros((x.shape[0], 1)), x], axis=1)


def _bos(T1: int) -> np.ndarray:
    """(T1,): 0 at the BOS slot, 1 at sequence positions (every derived variable is 0 at BOS)."""
    return bos_mask(T1, torch.float64).numpy()


def _route(pattern: torch.Tensor, v: np.ndarray) -> np.ndarray:
    """Apply (T1, T1) or (n, T1, T1) attention weights to per-position values v (n, T1)."""
    out = torch.matmul(pattern, torch.as_tensor(v).unsqueeze(-1)).squeeze(-1)
    return out.numpy() * _bos(v.shape[1])


def _head(q: np.ndarray, k: np.ndarray, w_qk: float, w_k: float, w_kk: float, averaging: bool = True) -> torch.Tensor:
    """A hardened head of the score family, s[i, j] = k_j·(w_qk·q_i + w_k) + w_kk·k_j²
    (causal, BOS visible), read at the final attention temperature. (n, T1, T1)"""
    q, k = torch.as_tensor(q), torch.as_tensor(k)
    s = (k.unsqueeze(1) * (w_qk * q + w_k).unsqueeze(2) + w_kk * (k * k).unsqueeze(1)) / TAU_ATTN
    return hard_pattern(s + causal_bias(k.shape[1], k.dtype), "average" if averaging else "latest")


def _addition_program(x: np.ndarray, base: int, averaging: bool) -> tuple[np.ndarray, int]:
    """Two layers, two heads per layer, two arity-2 MLPs per layer:
    L0.H0 = shift1(a), L0.H1 = shift1(b); L0.M0 = kind of the previous digit pair
    (0 propagate, 1 kill, 2 generate), L0.M1 = a + b; L1.H0 = the kind at the latest earlier
    position that is not a propagate (key: kind, scores equal for 1 and 2, lower for 0);
    L1.M0 (readout) = (a + b + [that kind is generate]) mod base. Returns (y, MLP units used)."""
    T = x.shape[1]
    a, b = _with_bos(x[..., 0]), _with_bos(x[..., 1])  # (n, T1)
    shift1 = fixed_pattern("shift1", T + 1, torch.float64)
    a1, b1 = _route(shift1, a), _route(shift1, b)
    grid = np.array([(i, j) for i in range(base) for j in range(base)], dtype=float)
    s_grid = grid.sum(1)
    kind = np.where(s_grid == base - 1, 0.0, np.where(s_grid < base - 1, 1.0, 2.0))
    u_kind, f_kind = relu_interpolant(grid, kind)
    u_sum, f_sum = relu_interpolant(grid, s_grid)
    k_prev = f_kind(a1, b1) * _bos(T + 1)
    digit_sum = f_sum(a, b) * _bos(T + 1)
    # s(0) = 0 < s(1) = s(2) = 2: w_k = 3, w_kk = -1 (a concave parabola in the key)
    h = _route(_head(np.ones_like(k_prev), k_prev, 0.0, 3.0, -1.0, averaging), k_prev)
    read = np.array([(s, c) for s in range(2 * base - 1) for c in range(3)], dtype=float)
    u_out, f_out = relu_interpolant(read, (read[:, 0] + (read[:, 1] == 2)) % base)
    y = np.rint(f_out(digit_sum, h))[:, 1:]
    return y[..., None], max(u_kind, u_sum, u_out)


@pytest.mark.parametrize("task,base", [("Binary_Addition", 2), ("Base_3_Addition", 3), ("Base_4_Addition", 4)])
def test_carry_tasks_have_a_two_layer_construction_with_latest_key_heads(task: str, base: int) -> None:
    x, y = _every_sequence(task)
    pred, units = _addition_program(x, base, averaging=False)
    assert units <= HIDDEN
    assert np.array_equal(pred, y)  # every sequence of the task, train and test


@pytest.mark.parametrize("task,base", [("Binary_Addition", 2), ("Base_3_Addition", 3)])
def test_the_same_construction_fails_when_the_head_averages_its_tie_set(task: str, base: int) -> None:
    ds = make_dataset(task, seed=0)
    pred, _ = _addition_program(ds.x_test, base, averaging=True)
    exact = float(np.mean(np.all(pred == ds.y_test, axis=(1, 2))))
    assert exact < 0.5  # the mean of the earlier non-propagate kinds is not the latest one


# --------------------------------------------------------------------------------------------
# Failing tasks of the default configuration that it can express (averaging heads; "sum" is the
# arithmetic search variant's aggregate, mean × selector width; periodic units are cos/sin of a
# raw MLP input, ModelConfig.mlp_periods).


def _aggregate(pattern: torch.Tensor, v: np.ndarray, how: str) -> np.ndarray:
    out = _route(pattern, v)
    if how == "sum":  # mean × selector width (1 / the row's largest weight)
        p = pattern if pattern.dim() == 3 else pattern.unsqueeze(0)
        out = out / p.amax(-1).numpy()  # the BOS row stays 0
    return out


def _balanced_parenthesis(x: np.ndarray) -> np.ndarray:
    """L0.H0 = prefix mean m of x; L0.M0 = depth d = (pos + 1)(1 − 2m) (one product unit);
    L1.H0 = d at the smallest d (BOS's 0 included; ties hold equal values); readout
    L1.M0 = relu(1 − (d − 2·min)): d − 2·min ≥ 0, and = 0 only when d = min = 0 (one ReLU)."""
    x, T1 = _with_bos(x[..., 0]), x.shape[1] + 1
    pos = np.arange(T1) - 1.0
    m = _aggregate(fixed_pattern("prefix", T1, torch.float64), x, "mean")
    d = ((pos + 1) - 2.0 * m * (pos + 1)) * _bos(T1)
    mn = _aggregate(_head(np.ones_like(d), d, 0.0, -1.0, 0.0), d, "mean")
    return np.maximum(1.0 - (d - 2.0 * mn), 0.0)[:, 1:]


def _dithering(x: np.ndarray) -> np.ndarray:
    """L0.H0 = prefix sum S; L0.M0 = floor(S / 15), a staircase of 2 ReLUs per step (S ≤ 150:
    20 units); L1.H0 = shift1 of it; readout L1.M0 = the difference."""
    x, T1 = _with_bos(x[..., 0]), x.shape[1] + 1
    S = _aggregate(fixed_pattern("prefix", T1, torch.float64), x, "sum")
    F = sum(np.maximum(S - 15 * k + 1, 0.0) - np.maximum(S - 15 * k, 0.0) for k in range(1, 11))
    return (F - _route(fixed_pattern("shift1", T1, torch.float64), F))[:, 1:]


def _majority_0_2(x: np.ndarray) -> np.ndarray:
    """L0.H0 = #{j' ≤ j : x_j' = x_j} (q = k = x, score 2qk − k², the sum of `one`); L0.M0 =
    κ = 3·count − x; readout L1.H0 = x at the largest κ: the value with the largest count, the
    smallest of those tied (κ determines x, so tied keys hold one value)."""
    x, T1 = _with_bos(x[..., 0]), x.shape[1] + 1
    one = _bos(T1) * np.ones_like(x)
    count = _aggregate(_head(x, x, 2.0, 0.0, -1.0), one, "sum")
    kappa = (3.0 * count - x) * one
    return _aggregate(_head(np.ones_like(kappa), kappa, 0.0, 1.0, 0.0), x, "mean")[:, 1:]


def _evens_counter(x: np.ndarray) -> np.ndarray:
    """L0.M0 = (1 + cos(π·x)) / 2 (a period-2 unit); readout L1.H0 = its prefix sum."""
    x, T1 = _with_bos(x[..., 0]), x.shape[1] + 1
    even = (1.0 + np.cos(np.pi * x)) / 2.0 * _bos(T1)
    return _aggregate(fixed_pattern("prefix", T1, torch.float64), even, "sum")[:, 1:]


def _parity_zeros(x: np.ndarray) -> np.ndarray:
    """L0.M0 = 1 − x; L1.H0 = its prefix sum n; readout L1.M0 = (1 − cos(π·n)) / 2."""
    x, T1 = _with_bos(x[..., 0]), x.shape[1] + 1
    zero = (1.0 - x) * _bos(T1)
    n = _aggregate(fixed_pattern("prefix", T1, torch.float64), zero, "sum")
    return ((1.0 - np.cos(np.pi * n)) / 2.0)[:, 1:]


@pytest.mark.parametrize(
    "task,program",
    [
        ("Balanced_Parenthesis", _balanced_parenthesis),
        ("Dithering", _dithering),
        ("Majority_0_2", _majority_0_2),
        ("Evens_Counter", _evens_counter),
        ("Parity_Zeros", _parity_zeros),
    ],
)
def test_tasks_the_default_search_misses_have_two_layer_constructions(task: str, program) -> None:
    x, y = _every_sequence(task)
    y = y[..., 0]
    assert np.array_equal(np.rint(program(x)), y)


def test_relu_interpolant_is_exact_on_its_grid() -> None:
    rng = np.random.default_rng(0)
    grid = np.array([(i, j) for i in range(-2, 3) for j in range(4)], dtype=float)
    vals = rng.integers(-3, 4, len(grid)).astype(float)
    units, f = relu_interpolant(grid, vals)
    assert units <= len(grid)
    assert np.allclose(f(grid[:, 0], grid[:, 1]), vals)


# --------------------------------------------------------------------------------------------
# A task with no two-layer construction of the default shape, and the smallest change that
# admits one (issue "Deeper programs", item 4; docs/design.md, What the default architecture
# can express).


def _div_3_three_layers(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Div_3 (long division by 3, most significant bit first) in THREE layers of the default
    shape, arity 2. The remainder of the prefix's value V_i = Σ x_j 2^(i−j) is r_i = V_i mod 3,
    and 2 ≡ −1 (mod 3), so r_i = ((−1)^i · S_i) mod 3 with S_i = Σ_{j≤i} (−1)^j x_j; the quotient
    bit is q_i = floor((2·r_(i−1) + x_i) / 3).
    L0.M0 = (−1)^pos · x (ReLU interpolant on the 2T grid), L0.M1 = pos mod 2 (one period-2
    unit); L1.H0 = prefix sum S; L1.M0 = ((−1)^pos · S) mod 3, a function of (S, pos mod 2) on a
    grid of 2·(2⌈T/2⌉ + 1) points; L2.H0 = shift1 of it, r_(i−1) (BOS reads 0: the remainder
    before the first bit); readout L2.M0 = floor((2·r_(i−1) + x) / 3) on 6 points.
    Two layers cannot hold it this way: the readout would need r_(i−1), x and the sign of pos
    at once (arity 3), or r_(i−1) routed one layer after r is made. Returns (y, MLP units)."""
    T = x.shape[1]
    x, T1 = _with_bos(x[..., 0]), T + 1
    pos = np.arange(T1) - 1.0
    sign_grid = np.array([(b, p) for b in (0, 1) for p in range(T)], dtype=float)
    u0, f_sign = relu_interpolant(sign_grid, sign_grid[:, 0] * (-1.0) ** sign_grid[:, 1])
    s = f_sign(x, np.broadcast_to(pos, x.shape)) * _bos(T1)
    parity = (1.0 - np.cos(np.pi * pos)) / 2.0 * _bos(T1)
    S = _aggregate(fixed_pattern("prefix", T1, torch.float64), s, "sum")
    half = (T + 1) // 2
    r_grid = np.array([(v, p) for v in range(-half, half + 1) for p in (0, 1)], dtype=float)
    u1, f_r = relu_interpolant(r_grid, np.mod(r_grid[:, 0] * (-1.0) ** r_grid[:, 1], 3))
    r = f_r(S, np.broadcast_to(parity, S.shape)) * _bos(T1)
    r_prev = _route(fixed_pattern("shift1", T1, torch.float64), r)
    q_grid = np.array([(a, b) for a in range(3) for b in (0, 1)], dtype=float)
    u2, f_q = relu_interpolant(q_grid, np.floor((2 * q_grid[:, 0] + q_grid[:, 1]) / 3))
    return np.rint(f_q(r_prev, x))[:, 1:, None], max(u0, u1, u2)


def _newton_spring_three_layers(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Newton_Spring (p_i = p_(i−1) − p_(i−2) + x_i: an impulse response of period 6, (1, 1, 0,
    −1, −1, 0)) in THREE layers of the default shape, arity 2. With σ(m) = +1 for m mod 6 < 3,
    else −1, the response's sign for a key m of the query i splits as σ(i)·σ(m) on m ≡ i (mod 3)
    and σ(i)·σ(m + 1) on m ≡ i − 1 (mod 3), and the second set is the first read one position
    back: p_i = σ(i) · Σ_{m ≤ i, m ≡ i (mod 3)} σ(m) · (x_m + x_(m−1)).
    L0.H0 = shift1(x); L0.M0 = x + prev1_x (linear), L0.M1 = σ(pos) (a function of pos: an
    interpolant on its T points); L1.M0 = σ · (x + prev1_x) (one product unit), L1.M1 =
    pos mod 3; L2.H0 = the sum of L1.M0 over the keys whose pos mod 3 equals the query's
    (q = k, score 2qk − k², the arithmetic variant's sum; BOS joins the class 0 with value 0);
    readout L2.M0 = σ · that sum (one product unit). Two layers would need the class sum and σ
    at the readout with the sum's values made one layer earlier than the class. Returns
    (y, MLP units)."""
    T = x.shape[1]
    x, T1 = _with_bos(x[..., 0]), T + 1
    pos = np.broadcast_to(np.arange(T1) - 1.0, x.shape)
    bos = _bos(T1)
    prev = _route(fixed_pattern("shift1", T1, torch.float64), x)
    u = (x + prev) * bos
    grid = np.array([(p, 0.0) for p in range(T)])
    u_sigma, f_sigma = relu_interpolant(grid, np.where(grid[:, 0] % 6 < 3, 1.0, -1.0))
    u_kappa, f_kappa = relu_interpolant(grid, grid[:, 0] % 3)
    sigma = f_sigma(pos, 0.0) * bos
    w = sigma * u * bos  # a product unit of two inputs
    kappa = f_kappa(pos, 0.0) * bos
    total = _aggregate(_head(kappa, kappa, 2.0, 0.0, -1.0), w, "sum")
    return np.rint(sigma * total)[:, 1:, None], max(u_sigma, u_kappa)


def _bit_palindrome_three_layers(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Bit_Palindrome (is x_0..x_i a palindrome?) in THREE layers of the default shape, arity 2,
    by comparing two binary fractions: x_0..x_i is a palindrome iff
    Σ_j x_j 2^(j−i) (the prefix read backwards) = Σ_j x_j 2^(−j) (read forwards); both are dyadic,
    so floats compare them exactly, and they differ by at least 2^(−i) when they differ.
    L0.M0 = x · 2^pos, L0.M1 = 2^(−pos) (interpolants on their grids); L1.H0 = prefix sum A of
    L0.M0; L1.M0 = x · 2^(−pos), L1.M1 = A · 2^(−pos) (one product unit); L2.H0 = prefix sum B of
    L1.M0; readout L2.M0 = [L1.M1 = B] = relu(Kd + 1) − 2 relu(Kd) + relu(Kd − 1) with
    d = L1.M1 − B and K = 2^(T−1) (3 ReLU units). Returns (y, MLP units)."""
    T = x.shape[1]
    x, T1 = _with_bos(x[..., 0]), T + 1
    pos = np.broadcast_to(np.arange(T1) - 1.0, x.shape)
    bos = _bos(T1)
    prefix = fixed_pattern("prefix", T1, torch.float64)
    xp = np.array([(b, p) for b in (0, 1) for p in range(T)], dtype=float)
    u_up, f_up = relu_interpolant(xp, xp[:, 0] * 2.0 ** xp[:, 1])
    u_down, f_down = relu_interpolant(xp, xp[:, 0] * 2.0 ** -xp[:, 1])
    pp = np.array([(p, 0.0) for p in range(T)])
    u_inv, f_inv = relu_interpolant(pp, 2.0 ** -pp[:, 0])
    up = f_up(x, pos) * bos
    inv = f_inv(pos, 0.0) * bos
    A = _aggregate(prefix, up, "sum")
    down = f_down(x, pos) * bos
    backwards = A * inv * bos  # a product unit of two inputs
    B = _aggregate(prefix, down, "sum")
    Kd = 2.0 ** (T - 1) * (backwards - B)
    y = np.maximum(Kd + 1, 0) - 2 * np.maximum(Kd, 0) + np.maximum(Kd - 1, 0)
    return np.rint(y)[:, 1:, None], max(u_up, u_down, u_inv, 3)


@pytest.mark.parametrize(
    "task,program",
    [
        ("Div_3", _div_3_three_layers),
        ("Newton_Spring", _newton_spring_three_layers),
        ("Bit_Palindrome", _bit_palindrome_three_layers),
    ],
    ids=["Div_3", "Newton_Spring", "Bit_Palindrome"],
)
def test_tasks_without_a_two_layer_construction_have_a_three_layer_one(task: str, program) -> None:
    x, y = _every_sequence(task)
    pred, units = program(x)
    assert units <= HIDDEN
    assert np.array_equal(pred, y)  # every sequence of the task, train and test
