"""The public task suite (tasks.md) and seeded, fixed train/test datasets built from it.

Task names and rules live only here and in the benchmark: nothing in training or extraction may
look at them, which is why :func:`make_dataset` returns a plain :class:`Dataset`.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import algorithmic as A
from . import continuous as C
from .dataset import Dataset

ENUMERATION_LIMIT = 100_000
PALINDROME_DRAWS = 20_000
DEFAULT_N_TEST = 10_000
OVERRIDE_N_TRAIN = 1_000  # train set size when T is overridden (length-generalisation tests)


class UnknownTaskError(ValueError):
    """A task name that matches no built-in task; the message suggests the nearest names."""


GENERATED_NAME = re.compile(r"gen\d+_\d+_", re.IGNORECASE | re.ASCII)  # gen{seed}_{index}_{family}


@dataclass(frozen=True)
class TaskSpec:
    """One built-in task: how to sample inputs and the exact rule that produces the targets."""

    name: str
    family: Literal["mips", "continuous", "generated"]
    kind: Literal["discrete", "continuous"]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    T: int
    train_fraction: float
    sample: Callable[[np.random.Generator, int, int], np.ndarray]
    rule: Callable[[np.ndarray], np.ndarray]
    enumerable: int | None
    # Beyond the required fields: the value set of every input position when it is a small
    # finite set (used to enumerate the input space), and the rule in words for listings.
    domain: tuple[float, ...] | None = None
    description: str = ""
    iid: bool = True  # False when positions are not independent (Bit_Palindrome's sampler)
    # Generated tasks only (tasks/generated.py): the family that drew the task, the public task
    # whose rule it generalises, its parameters and their bands (for the per-family report), and
    # its reference program with that program's size in the library's operation count.
    generator: str = ""
    generalises: str = ""
    params: tuple[tuple[str, object], ...] = ()
    bands: tuple[tuple[str, str], ...] = ()
    reference: str = ""
    reference_ops: int | None = None

    @property
    def n_in(self) -> int:
        return len(self.input_names)

    @property
    def n_out(self) -> int:
        return len(self.output_names)


def _ints(
    name: str,
    lo: int,
    hi: int,
    rule: A.Rule,
    description: str,
    channels: int = 1,
    split: float = 0.9,
    sample: A.Sampler | None = None,
    iid: bool = True,
) -> TaskSpec:
    """A MIPS task on integer inputs uniform on [lo, hi]."""
    T = 10
    size = (hi - lo + 1) ** (channels * T)
    return TaskSpec(
        name=name,
        family="mips",
        kind="discrete",
        input_names=("x",) if channels == 1 else ("a", "b"),
        output_names=("y",),
        T=T,
        train_fraction=split,
        sample=sample or A.uniform_ints(lo, hi, channels),
        rule=rule,
        enumerable=size if size <= ENUMERATION_LIMIT else None,
        domain=tuple(float(v) for v in range(lo, hi + 1)),
        description=description,
        iid=iid,
    )


def _reals(
    name: str, ranges: tuple[tuple[float, float], ...], rule: A.Rule, description: str
) -> TaskSpec:
    """A continuous task on i.i.d. uniform real inputs."""
    return TaskSpec(
        name=name,
        family="continuous",
        kind="continuous",
        input_names=("x",) if len(ranges) == 1 else ("a", "b"),
        output_names=("y",),
        T=10,
        train_fraction=0.9,
        sample=C.uniform_reals(*ranges),
        rule=rule,
        enumerable=None,
        domain=None,
        description=description,
    )


_U11 = (-1.0, 1.0)

TASKS: tuple[TaskSpec, ...] = (
    # ---- 1. algorithmic tasks (MIPS names), in tasks.md order
    _ints("Abs_Current", -100, 99, A.abs_current, "y[i] = |x[i]|"),
    _ints("Abs_Diff", -100, 99, A.abs_diff, "y[i] = |x[i] - x[i-1]|, x[-1] = 0"),
    _ints("Add_Mod_3", 0, 2, A.add_mod(3), "y[i] = (x[0] + ... + x[i]) mod 3", split=0.8),
    _ints("Add_Mod_4", 0, 3, A.add_mod(4), "y[i] = (x[0] + ... + x[i]) mod 4", split=0.8),
    _ints("Add_Mod_6", 0, 5, A.add_mod(6), "y[i] = (x[0] + ... + x[i]) mod 6", split=0.8),
    _ints("Alternating_Last3", 0, 1, A.alternating_last3,
          "y[i] = 1 iff (x[i-2], x[i-1], x[i]) is 010 or 101, x[<0] = 0"),
    _ints("Balanced_Parenthesis", 0, 1, A.balanced_parenthesis,
          "0 = '(', 1 = ')'; y[i] = 1 iff depth is 0 and never went negative"),
    _ints("Base_3_Addition", 0, 2, A.base_addition(3),
          "base-3 addition of a and b, least-significant digit first, final carry dropped",
          channels=2),
    _ints("Base_4_Addition", 0, 3, A.base_addition(4),
          "base-4 addition of a and b, least-significant digit first, final carry dropped",
          channels=2),
    _ints("Binary_Addition", 0, 1, A.base_addition(2),
          "binary addition of a and b, least-significant bit first, final carry dropped",
          channels=2),
    _ints("Bit_Dot_Prod_Mod2", 0, 1, A.bit_dot_prod_mod2,
          "y[i] = (sum_{j<=i} a[j]*b[j]) mod 2", channels=2),
    _ints("Bit_Palindrome", 0, 1, A.bit_palindrome,
          "y[i] = 1 iff x[0..i] is a palindrome (inputs: palindrome of random length + coins)",
          sample=A.palindrome_sampler, iid=False),
    _ints("Bit_Shift_Right", 0, 1, A.bit_shift_right, "y[0] = 0; y[i] = x[i-1]"),
    _ints("Bitwise_And", 0, 1, A.bitwise_and, "y[i] = a[i] AND b[i]", channels=2),
    _ints("Bitwise_Not", 0, 1, A.bitwise_not, "y[i] = 1 - x[i]"),
    _ints("Bitwise_Xor", 0, 1, A.bitwise_xor, "y[i] = a[i] XOR b[i]", channels=2),
    _ints("Current_Number", 0, 99, A.current_number, "y[i] = x[i]"),
    _ints("Diff_Last2", -100, 99, A.diff_last2, "y[i] = x[i] - x[i-1], x[-1] = 0"),
    _ints("Dithering", 0, 15, A.dithering,
          "S = prefix sum; y[i] = floor(S[i]/15) - floor(S[i-1]/15)", split=0.8),
    _ints("Div_3", 0, 1, A.div_3,
          "long division by 3 of the bits read most-significant first", split=0.8),
    _ints("Evens_Counter", 0, 9, A.evens_counter, "y[i] = #{j <= i : x[j] even}"),
    _ints("Majority_0_1", 0, 1, A.majority((0, 1)),
          "y[i] = mode of x[0..i], ties to the smaller value"),
    _ints("Majority_0_2", 0, 2, A.majority((0, 1, 2)),
          "y[i] = mode of x[0..i], ties to the smaller value"),
    _ints("Max_Seen", 0, 99, A.max_seen, "y[i] = max(x[0..i])"),
    _ints("Newton_Freebody", -10, 10, A.newton_freebody,
          "v += x[i]; p += v; y[i] = p (from rest)", split=0.8),
    _ints("Newton_Spring", -10, 10, A.newton_spring,
          "v += x[i] - p; p += v; y[i] = p (from rest)", split=0.8),
    _ints("Parity_All", 0, 1, A.parity_all, "y[i] = (x[0] + ... + x[i]) mod 2"),
    _ints("Parity_Bits_Mod2", 0, 1, A.parity_bits_mod2, "y[i] = i mod 2"),
    _ints("Parity_Last2", 0, 1, A.parity_last2, "y[i] = x[i] XOR x[i-1], x[-1] = 0"),
    _ints("Parity_Last3", 0, 1, A.parity_last3, "y[i] = (x[i-2] + x[i-1] + x[i]) mod 2, x[<0] = 0"),
    _ints("Parity_Zeros", 0, 1, A.parity_zeros, "y[i] = #{j <= i : x[j] == 0} mod 2"),
    _ints("Prev1", 0, 99, A.prev(1), "y[i] = x[i-1], y[0] = 0"),
    _ints("Prev2", 0, 99, A.prev(2), "y[i] = x[i-2], 0 for i < 2"),
    _ints("Prev3", 0, 99, A.prev(3), "y[i] = x[i-3], 0 for i < 3"),
    _ints("Previous_Equals_Current", 0, 7, A.previous_equals_current,
          "y[i] = 1 iff x[i] == x[i-1], x[-1] = 0"),
    _ints("Sum_All", 0, 99, A.sum_all, "y[i] = x[0] + ... + x[i]"),
    _ints("Sum_Last2", 0, 99, A.sum_last(2), "y[i] = x[i-1] + x[i], x[-1] = 0"),
    _ints("Sum_Last3", 0, 99, A.sum_last(3), "y[i] = x[i-2] + x[i-1] + x[i], x[<0] = 0"),
    _ints("Sum_Last4", 0, 99, A.sum_last(4), "y[i] = x[i-3] + ... + x[i], x[<0] = 0"),
    # ---- 2. continuous-valued tasks
    _reals("Real_Sum_Last2", (_U11,), C.real_sum_last2, "y[i] = x[i] + x[i-1], x[-1] = 0"),
    _reals("Real_Running_Mean", (_U11,), C.real_running_mean, "y[i] = mean(x[0..i])"),
    _reals("Real_Max_Seen", (_U11,), C.real_max_seen, "y[i] = max(x[0..i])"),
    _reals("Kinematics_1D", (_U11,), C.kinematics_1d,
           "v += x[i]*0.1; p += v*0.1; y[i] = p (from rest)"),
    _reals("Kinetic_Energy", ((0.5, 2.0), (-3.0, 3.0)), C.kinetic_energy,
           "y[i] = 0.5 * a[i] * b[i]^2"),
    _reals("Spring_Force", (_U11,), C.spring_force, "y[i] = -2.5 * (x[i] - x[i-1]), x[-1] = 0"),
    _reals("Total_Momentum", ((0.5, 2.0), (-3.0, 3.0)), C.total_momentum,
           "y[i] = sum_{j<=i} a[j] * b[j]"),
    _reals("Path_Length", (_U11, _U11), C.path_length,
           "y[i] = sum_{j<=i} sqrt(a[j]^2 + b[j]^2)"),
)  # fmt: skip


def _key(name: str) -> str:
    """Spelling-insensitive key: case, '_', '-', '.', and spaces do not matter."""
    return re.sub(r"[\s_\-.]+", "", name.strip().lower())


def task_names() -> tuple[str, ...]:
    """Names of all built-in tasks, in tasks.md order."""
    return tuple(t.name for t in TASKS)


def _close_names(name: str, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Nearest task names, best first, ties in tasks.md order (difflib's similarity ratio,
    the measure behind ``difflib.get_close_matches``, which breaks ties by reverse spelling)."""
    probe = name.strip().lower().replace("-", "_").replace(" ", "_")
    scored = []
    for order, spec in enumerate(TASKS):
        ratio = difflib.SequenceMatcher(None, probe, spec.name.lower()).ratio()
        if ratio >= cutoff:
            scored.append((-ratio, order, spec.name))
    return [name for _, _, name in sorted(scored)[:n]]


def get_task(name: str) -> TaskSpec:
    """Look a task up by its MIPS name or any case/separator variant (``sum_last2``, ``SUM-LAST2``),
    or a generated task by its name ``gen{seed}_{index:03d}_{family}`` (tasks/generated.py).

    Raises :class:`UnknownTaskError` naming the closest matches, so a typo on the command line
    gets an actionable message instead of a bare KeyError.
    """
    if isinstance(name, TaskSpec):
        return name
    key = _key(str(name))
    for spec in TASKS:
        if _key(spec.name) == key:
            return spec
    if GENERATED_NAME.match(str(name).strip()):
        # Imported here: the generated suite builds on this module.
        from .generated import generated_task

        return generated_task(str(name))
    close = _close_names(str(name))
    if close:
        hint = "did you mean: " + ", ".join(close) + "?"
    else:
        hint = f"no close match among the {len(TASKS)} built-in tasks"
    raise UnknownTaskError(f"unknown task {str(name)!r}; {hint}")


# ----------------------------------------------------------------------------- datasets


def _n_train_of(n_total: int, fraction: float) -> int:
    """Train count of a split, rounding half up (1024 * 0.9 = 921.6 -> 922, as in MIPS)."""
    return int(math.floor(n_total * fraction + 0.5))


def _enumerate(spec: TaskSpec) -> np.ndarray:
    """Every input sequence of the task at its own T, in lexicographic order."""
    assert spec.domain is not None
    width = spec.T * spec.n_in
    grid = np.array(list(itertools.product(spec.domain, repeat=width)), dtype=np.float64)
    return grid.reshape(-1, spec.T, spec.n_in)


def _dedupe(x: np.ndarray) -> np.ndarray:
    """Drop repeated sequences, keeping first occurrences in their (random) order."""
    _, first = np.unique(x.reshape(x.shape[0], -1), axis=0, return_index=True)
    return x[np.sort(first)]


def _draw_unique(spec: TaskSpec, rng: np.random.Generator, n: int, T: int) -> np.ndarray:
    """Up to ``n`` distinct sequences from the task's sampler, topping up after deduplication.

    Stops early when the input space is too small to supply ``n`` distinct sequences.
    """
    x = _dedupe(spec.sample(rng, n, T))
    for _ in range(20):
        if x.shape[0] >= n:
            break
        more = spec.sample(rng, 2 * (n - x.shape[0]) + 16, T)
        before = x.shape[0]
        x = _dedupe(np.concatenate([x, more]))
        if x.shape[0] == before:
            break  # saturated: the space holds no further sequences (in practice)
    return x[:n]


def _build(
    spec: TaskSpec,
    x_train: np.ndarray,
    x_test: np.ndarray,
    source: str,
) -> Dataset:
    return Dataset(
        name=spec.name,
        kind=spec.kind,
        x_train=x_train,
        y_train=spec.rule(x_train),
        x_test=x_test,
        y_test=spec.rule(x_test),
        input_names=spec.input_names,
        output_names=spec.output_names,
        source=source,
    )


def make_dataset(
    spec_or_name: TaskSpec | str,
    seed: int = 0,
    T: int | None = None,
    n_test: int = DEFAULT_N_TEST,
) -> Dataset:
    """Fixed, seeded train/test arrays of a built-in task.

    - Small input spaces (``spec.enumerable``) at the task's own T are enumerated completely,
      shuffled and split by ``train_fraction`` like MIPS (bits: 922 train / 102 test);
      ``n_test`` is then ignored. Bit_Palindrome is not i.i.d., so instead 20,000 draws of its
      sampler are deduplicated, shuffled and split.
    - Otherwise ``ceil(n_test / (1 - train_fraction))`` distinct sequences are drawn (duplicates
      removed, so train and test never share a sequence) and the first ``n_test`` become the test
      set.
    - With ``T`` different from the task's T (length generalisation), ``n_test`` test sequences and
      a small train set (at most 1,000) are drawn the same way, without enumeration.
    """
    spec = get_task(spec_or_name) if not isinstance(spec_or_name, TaskSpec) else spec_or_name
    T_eff = spec.T if T is None else int(T)
    if T_eff < 2:
        raise ValueError(f"T must be at least 2, got {T_eff}")
    if n_test < 1:
        raise ValueError(f"n_test must be positive, got {n_test}")
    rng = np.random.default_rng(seed)
    source = f"task:{spec.name}"
    f = spec.train_fraction

    if spec.enumerable is not None and T_eff == spec.T:
        if not spec.iid:
            # Enumeration would add sequences the sampler never yields (no palindromic prefix
            # of length >= 2); keep its support instead: draw, then deduplicate.
            draws = spec.sample(rng, PALINDROME_DRAWS, T_eff).reshape(PALINDROME_DRAWS, -1)
            x = np.unique(draws, axis=0).reshape(-1, T_eff, spec.n_in)
        else:
            x = _enumerate(spec)
        x = x[rng.permutation(x.shape[0])]
        n_tr = _n_train_of(x.shape[0], f)
        return _build(spec, x[:n_tr], x[n_tr:], source)

    # round() guards against 1 - 0.9 = 0.09999999999999998 turning 100,000 into 100,001.
    n_train_full = int(math.ceil(round(n_test / (1.0 - f), 6))) - n_test
    n_train = n_train_full if T_eff == spec.T else max(1, min(OVERRIDE_N_TRAIN, n_train_full))
    x = _draw_unique(spec, rng, n_test + n_train, T_eff)
    if x.shape[0] < n_test + n_train:  # tiny input space: fall back to the fractional split
        if x.shape[0] < 2:
            raise ValueError(f"{spec.name}: input space at T={T_eff} is too small to split")
        n_tr = min(max(_n_train_of(x.shape[0], f), 1), x.shape[0] - 1)
        return _build(spec, x[:n_tr], x[n_tr:], source)
    return _build(spec, x[n_test:], x[:n_test], source)
