"""Task lookup and datasets: a name resolved to a public task (:mod:`.public`) or a generated one
(:mod:`.generated`), and the seeded, fixed train/test arrays of either (:func:`make_dataset`).

Task names and rules live only in the task modules and in the benchmark: nothing in training or
extraction may look at them, which is why :func:`make_dataset` returns a plain :class:`Dataset`.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re

import numpy as np

from .dataset import Dataset
from .generated import generated_task
from .public import TASKS
from .spec import TaskSpec, UnknownTaskError

PALINDROME_DRAWS = 20_000
DEFAULT_N_TEST = 10_000
OVERRIDE_N_TRAIN = 1_000  # train set size when T is overridden (length-generalisation tests)
WIDER_STREAM = 0x57  # the off-range split's random stream, beside the dataset's (make_wider_split)
GENERATED_NAME = re.compile(r"gen\d+_\d+_", re.IGNORECASE | re.ASCII)  # gen{seed}_{index}_{family}


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


def make_wider_split(spec: TaskSpec, seed: int, T: int, n: int = DEFAULT_N_TEST) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of length ``T`` from the task's off-range sampler (``spec.sample_wider``)
    and their targets by the rule: verification's off-range check. Seeded by ``seed`` on a stream
    of its own, so it never repeats the dataset's draws. Raises ``ValueError`` for a task that
    allows no such check."""
    if spec.sample_wider is None:
        raise ValueError(f"{spec.name}: the task allows no off-range check")
    x = spec.sample_wider(np.random.default_rng([int(seed), WIDER_STREAM]), int(n), int(T))
    return x, spec.rule(x)


__all__ = [
    "DEFAULT_N_TEST",
    "GENERATED_NAME",
    "TASKS",
    "TaskSpec",
    "UnknownTaskError",
    "get_task",
    "make_dataset",
    "make_wider_split",
    "task_names",
]
