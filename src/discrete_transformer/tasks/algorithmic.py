"""Samplers and rules of the algorithmic (MIPS) tasks, exactly as written in tasks.md.

Every rule maps ``x`` of shape ``(n, T, C_in)`` to ``y`` of shape ``(n, T, 1)``, is vectorised over
sequences, and works for any ``T`` (verification runs programs on longer sequences than training).
Positions before the start read as 0 (``x[-k] = 0``) unless a rule says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Sampler = Callable[[np.random.Generator, int, int], np.ndarray]
Rule = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------- helpers


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """``out[:, i] = x[:, i-k]`` with zeros before the start (the ``x[-k] = 0`` convention)."""
    out = np.zeros_like(x)
    if k < x.shape[1]:
        out[:, k:] = x[:, : x.shape[1] - k]
    return out


def channel(x: np.ndarray, c: int = 0) -> np.ndarray:
    """Channel ``c`` as an ``(n, T)`` float64 array."""
    return np.asarray(x, dtype=np.float64)[:, :, c]


def single_output(y: np.ndarray) -> np.ndarray:
    """``(n, T)`` -> ``(n, T, 1)`` float64."""
    return np.asarray(y, dtype=np.float64)[:, :, None]


def uniform_ints(lo: int, hi: int, channels: int = 1) -> Sampler:
    """Sampler of i.i.d. integers uniform on ``[lo, hi]`` (inclusive), as float64."""

    def sample(rng: np.random.Generator, n: int, T: int) -> np.ndarray:
        return rng.integers(lo, hi + 1, size=(n, T, channels)).astype(np.float64)

    return sample


OFF_RANGE_MARGIN = 0.25  # the off-range margin on each side, as a fraction of the range's width
OFF_RANGE_SHARE = 0.3  # positions drawn from the margins (and at least one per sequence)


def off_range_margin(lo: int, hi: int) -> int:
    """How far outside ``[lo, hi]`` the off-range check draws: a quarter of the width, at least 1."""
    return max(1, math.floor(OFF_RANGE_MARGIN * (hi - lo) + 0.5))


def wider_ints(ranges: Sequence[tuple[int, int]], widen: Sequence[bool] | None = None) -> Sampler | None:
    """The off-range sampler of integer channels uniform on ``ranges[c]`` (verification's check
    that a program is the rule, not a fit of the values it saw): each position of a widened
    channel is, with probability :data:`OFF_RANGE_SHARE`, drawn uniformly from the two margins
    ``[lo - m, lo - 1]`` and ``[hi + 1, hi + m]`` (m = :func:`off_range_margin`), and every
    sequence has at least one such value. A channel is widened when ``widen[c]`` (default: all)
    and its range has more than 2 values (a 2-value range is bits); None when none is."""
    ranges = tuple((int(lo), int(hi)) for lo, hi in ranges)
    flags = (True,) * len(ranges) if widen is None else tuple(bool(w) for w in widen)
    cols = np.array([c for c, ((lo, hi), w) in enumerate(zip(ranges, flags, strict=True)) if w and hi - lo > 1])
    if cols.size == 0:
        return None

    def sample(rng: np.random.Generator, n: int, T: int) -> np.ndarray:
        x = np.stack([rng.integers(lo, hi + 1, size=(n, T)) for lo, hi in ranges], axis=-1).astype(np.float64)
        off = rng.random((n, T, cols.size)) < OFF_RANGE_SHARE
        off[np.arange(n), rng.integers(T, size=n), rng.integers(cols.size, size=n)] = True
        for j, c in enumerate(cols):
            lo, hi = ranges[c]
            m = off_range_margin(lo, hi)
            k = rng.integers(0, 2 * m, size=(n, T))  # 0..m-1 below the range, m..2m-1 above it
            x[:, :, c] = np.where(off[:, :, j], np.where(k < m, lo - m + k, hi + 1 + k - m), x[:, :, c])
        return x

    return sample


def palindrome_sampler(rng: np.random.Generator, n: int, T: int) -> np.ndarray:
    """Bit_Palindrome's non-i.i.d. sampler: a palindrome of length L ~ U{2..T}, then fresh coins.

    Without it almost no prefix longer than 1 would be a palindrome and the task would be trivial.
    """
    if T < 2:
        raise ValueError("Bit_Palindrome needs T >= 2")
    x = rng.integers(0, 2, size=(n, T)).astype(np.float64)
    L = rng.integers(2, T + 1, size=n)
    half = (L + 1) // 2  # ceil(L/2)
    rows = np.arange(n)
    for j in range(T):
        mirror = (j >= half) & (j < L)
        # The source L-1-j is < ceil(L/2), i.e. an original coin that is never overwritten.
        x[mirror, j] = x[rows[mirror], (L - 1 - j)[mirror]]
    return x[:, :, None]


# ----------------------------------------------------------------------------- rules


def abs_current(x: np.ndarray) -> np.ndarray:
    return single_output(np.abs(channel(x)))


def abs_diff(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(np.abs(a - shift(a, 1)))


def add_mod(k: int) -> Rule:
    def rule(x: np.ndarray) -> np.ndarray:
        return single_output(np.mod(np.cumsum(channel(x), axis=1), k))

    return rule


def alternating_last3(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    p1, p2 = shift(a, 1), shift(a, 2)
    # (p2, p1, a) is 010 or 101  <=>  p2 == a and p1 == 1 - a  (for bits)
    return single_output((p2 == a) & (p1 == 1 - a))


def balanced_parenthesis(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    d = np.cumsum(np.where(a == 0, 1.0, -1.0), axis=1)
    lowest = np.minimum.accumulate(d, axis=1)
    return single_output((d == 0) & (lowest >= 0))


def base_addition(base: int) -> Rule:
    """Digit-wise addition, least-significant digit first; the final carry is dropped."""

    def rule(x: np.ndarray) -> np.ndarray:
        a, b = channel(x, 0), channel(x, 1)
        y = np.zeros_like(a)
        carry = np.zeros(a.shape[0])
        for i in range(a.shape[1]):
            s = a[:, i] + b[:, i] + carry
            y[:, i] = np.mod(s, base)
            carry = np.floor(s / base)
        return single_output(y)

    return rule


def bit_dot_prod_mod2(x: np.ndarray) -> np.ndarray:
    return single_output(np.mod(np.cumsum(channel(x, 0) * channel(x, 1), axis=1), 2))


def bit_palindrome(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    y = np.zeros_like(a)
    for i in range(a.shape[1]):
        prefix = a[:, : i + 1]
        y[:, i] = np.all(prefix == prefix[:, ::-1], axis=1)
    return single_output(y)


def bit_shift_right(x: np.ndarray) -> np.ndarray:
    return single_output(shift(channel(x), 1))


def bitwise_and(x: np.ndarray) -> np.ndarray:
    return single_output(channel(x, 0) * channel(x, 1))


def bitwise_not(x: np.ndarray) -> np.ndarray:
    return single_output(1.0 - channel(x))


def bitwise_xor(x: np.ndarray) -> np.ndarray:
    return single_output(np.mod(channel(x, 0) + channel(x, 1), 2))


def current_number(x: np.ndarray) -> np.ndarray:
    return single_output(channel(x))


def diff_last2(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(a - shift(a, 1))


def dithering(x: np.ndarray) -> np.ndarray:
    s = np.cumsum(channel(x), axis=1)
    return single_output(np.floor(s / 15) - np.floor(shift(s, 1) / 15))


def div_3(x: np.ndarray) -> np.ndarray:
    """Long division by 3 of a binary number read most-significant bit first."""
    a = channel(x)
    y = np.zeros_like(a)
    r = np.zeros(a.shape[0])
    for i in range(a.shape[1]):
        v = 2 * r + a[:, i]
        y[:, i] = np.floor(v / 3)
        r = np.mod(v, 3)
    return single_output(y)


def evens_counter(x: np.ndarray) -> np.ndarray:
    return single_output(np.cumsum(np.mod(channel(x), 2) == 0, axis=1))


def majority(values: tuple[int, ...]) -> Rule:
    """Mode of the prefix; ties go to the smaller value (``values`` must be ascending)."""

    def rule(x: np.ndarray) -> np.ndarray:
        a = channel(x)
        counts = np.stack([np.cumsum(a == v, axis=1) for v in values], axis=-1)
        # argmax returns the first maximum, i.e. the smallest value on ties.
        return single_output(np.asarray(values, dtype=np.float64)[np.argmax(counts, axis=-1)])

    return rule


def max_seen(x: np.ndarray) -> np.ndarray:
    return single_output(np.maximum.accumulate(channel(x), axis=1))


def newton_freebody(x: np.ndarray) -> np.ndarray:
    return single_output(np.cumsum(np.cumsum(channel(x), axis=1), axis=1))


def newton_spring(x: np.ndarray) -> np.ndarray:
    """``v += x[i] - p; p += v; y[i] = p``, starting from p = v = 0."""
    a = channel(x)
    y = np.zeros_like(a)
    p = np.zeros(a.shape[0])
    v = np.zeros(a.shape[0])
    for i in range(a.shape[1]):
        v = v + a[:, i] - p
        p = p + v
        y[:, i] = p
    return single_output(y)


def parity_all(x: np.ndarray) -> np.ndarray:
    return single_output(np.mod(np.cumsum(channel(x), axis=1), 2))


def parity_bits_mod2(x: np.ndarray) -> np.ndarray:
    n, T = x.shape[0], x.shape[1]
    return single_output(np.broadcast_to(np.arange(T) % 2, (n, T)))


def parity_last2(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(np.mod(a + shift(a, 1), 2))


def parity_last3(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(np.mod(a + shift(a, 1) + shift(a, 2), 2))


def parity_zeros(x: np.ndarray) -> np.ndarray:
    return single_output(np.mod(np.cumsum(channel(x) == 0, axis=1), 2))


def prev(k: int) -> Rule:
    def rule(x: np.ndarray) -> np.ndarray:
        return single_output(shift(channel(x), k))

    return rule


def previous_equals_current(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(a == shift(a, 1))


def sum_all(x: np.ndarray) -> np.ndarray:
    return single_output(np.cumsum(channel(x), axis=1))


def sum_last(k: int) -> Rule:
    def rule(x: np.ndarray) -> np.ndarray:
        a = channel(x)
        return single_output(sum(shift(a, j) for j in range(k)))

    return rule
