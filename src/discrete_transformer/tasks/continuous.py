"""Samplers and rules of the continuous-valued tasks (tasks.md section 2).

Same contract as :mod:`.algorithmic`: rules map ``(n, T, C_in)`` to ``(n, T, 1)`` for any T.
"""

from __future__ import annotations

import numpy as np

from .algorithmic import Sampler, _ch, _out, shift

KINEMATICS_DT = 0.1
SPRING_K = 2.5


def uniform_reals(*ranges: tuple[float, float]) -> Sampler:
    """Sampler of i.i.d. float64 reals, channel ``c`` uniform on ``ranges[c]``."""

    def sample(rng: np.random.Generator, n: int, T: int) -> np.ndarray:
        return np.stack([rng.uniform(lo, hi, size=(n, T)) for lo, hi in ranges], axis=-1)

    return sample


def real_sum_last2(x: np.ndarray) -> np.ndarray:
    a = _ch(x)
    return _out(a + shift(a, 1))


def real_running_mean(x: np.ndarray) -> np.ndarray:
    a = _ch(x)
    return _out(np.cumsum(a, axis=1) / np.arange(1, a.shape[1] + 1))


def real_max_seen(x: np.ndarray) -> np.ndarray:
    return _out(np.maximum.accumulate(_ch(x), axis=1))


def kinematics_1d(x: np.ndarray) -> np.ndarray:
    """``v[i] = v[i-1] + x[i]*dt; p[i] = p[i-1] + v[i]*dt`` from rest, dt = 0.1."""
    a = _ch(x)
    y = np.zeros_like(a)
    v = np.zeros(a.shape[0])
    p = np.zeros(a.shape[0])
    for i in range(a.shape[1]):
        v = v + a[:, i] * KINEMATICS_DT
        p = p + v * KINEMATICS_DT
        y[:, i] = p
    return _out(y)


def kinetic_energy(x: np.ndarray) -> np.ndarray:
    return _out(0.5 * _ch(x, 0) * _ch(x, 1) ** 2)


def spring_force(x: np.ndarray) -> np.ndarray:
    a = _ch(x)
    return _out(-SPRING_K * (a - shift(a, 1)))


def total_momentum(x: np.ndarray) -> np.ndarray:
    return _out(np.cumsum(_ch(x, 0) * _ch(x, 1), axis=1))


def path_length(x: np.ndarray) -> np.ndarray:
    return _out(np.cumsum(np.sqrt(_ch(x, 0) ** 2 + _ch(x, 1) ** 2), axis=1))
