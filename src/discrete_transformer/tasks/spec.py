"""What a built-in task is (:class:`TaskSpec`), public or generated, and the error for a name that
is none; below both suites (:mod:`.public`, :mod:`.generated`) and the lookup (:mod:`.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

ENUMERATION_LIMIT = 100_000  # input spaces up to this size are enumerated (make_dataset)


class UnknownTaskError(ValueError):
    """A task name that matches no built-in task; the message suggests the nearest names."""


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
    # whose rule it generalises, its parameters and their bands (for the per-family report).
    generator: str = ""
    generalises: str = ""
    params: tuple[tuple[str, object], ...] = ()
    bands: tuple[tuple[str, str], ...] = ()
    # Every built-in task (public: tasks/public_references.py; generated: its family's): the
    # simplest known program for the rule and its size in the library's operation count, which
    # the bench divides a verified program's size by. None only for a TaskSpec made elsewhere.
    reference: str = ""
    reference_ops: int | None = None
    # Inputs drawn a little outside the training range, for tasks whose rule is defined there
    # (integer tasks only: verification's off-range check, algorithmic.wider_ints); None: the
    # task allows no such check (bits, digits, residues, symbols, indices, reals, custom samplers).
    sample_wider: Callable[[np.random.Generator, int, int], np.ndarray] | None = None

    @property
    def n_in(self) -> int:
        return len(self.input_names)

    @property
    def n_out(self) -> int:
        return len(self.output_names)


__all__ = ["ENUMERATION_LIMIT", "TaskSpec", "UnknownTaskError"]
