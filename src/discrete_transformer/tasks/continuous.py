"""Samplers and rules of the continuous-valued tasks (tasks.md section 2).

Same contract as :mod:`.algorithmic`: rules map ``(n, T, C_in)`` to ``(n, T, 1)`` for any T.
"""

from __future__ import annotations

import numpy as np

from .algorithmic import Sampler, channel, shift, single_output

KINEMATICS_DT = 0.1
SPRING_K = 2.5


def uniform_reals(*ranges: tuple[float, float]) -> Sampler:
    """Sampler of i.i.d. float64 reals, channel ``c`` uniform on ``ranges[c]``."""

    def sample(rng: np.random.Generator, n: int, T: int) -> np.ndarray:
        return np.stack([rng.uniform(lo, hi, size=(n, T)) for lo, hi in ranges], axis=-1)

    return sample


def real_sum_last2(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(a + shift(a, 1))


def real_running_mean(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(np.cumsum(a, axis=1) / np.arange(1, a.shape[1] + 1))


def real_max_seen(x: np.ndarray) -> np.ndarray:
    return single_output(np.maximum.accumulate(channel(x), axis=1))


def kinematics_1d(x: np.ndarray) -> np.ndarray:
    """``v[i] = v[i-1] + x[i]*dt; p[i] = p[i-1] + v[i]*dt`` from rest, dt = 0.1."""
    a = channel(x)
    y = np.zeros_like(a)
    v = np.zeros(a.shape[0])
    p = np.zeros(a.shape[0])
    for i in range(a.shape[1]):
        v = v + a[:, i] * KINEMATICS_DT
        p = p + v * KINEMATICS_DT
        y[:, i] = p
    return single_output(y)


def kinetic_energy(x: np.ndarray) -> np.ndarray:
    return single_output(0.5 * channel(x, 0) * channel(x, 1) ** 2)


def spring_force(x: np.ndarray) -> np.ndarray:
    a = channel(x)
    return single_output(-SPRING_K * (a - shift(a, 1)))


def total_momentum(x: np.ndarray) -> np.ndarray:
    return single_output(np.cumsum(channel(x, 0) * channel(x, 1), axis=1))


def path_length(x: np.ndarray) -> np.ndarray:
    return single_output(np.cumsum(np.sqrt(channel(x, 0) ** 2 + channel(x, 1) ** 2), axis=1))
