"""The one in-memory form every task and data file is turned into.

Training, extraction and verification only ever see a :class:`Dataset`, never a task's name or
rule, so built-in tasks and user files go through exactly the same code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..verdict import KINDS, Kind


def infer_kind(y: np.ndarray) -> Kind:
    """Return "discrete" when every target is an integer value, else "continuous".

    Discrete tasks are scored by exact match after rounding, which only makes sense when the
    targets themselves are integers; anything else is scored as a regression.
    """
    arr = np.asarray(y, dtype=np.float64)
    if arr.size == 0:
        return "discrete"
    finite = arr[np.isfinite(arr)]
    if finite.size != arr.size:
        return "continuous"
    return "discrete" if bool(np.all(finite == np.round(finite))) else "continuous"


def _as_3d(name: str, arr: np.ndarray) -> np.ndarray:
    """Copy to a read-only float64 (n, T, C) array; (n, T) becomes (n, T, 1)."""
    a = np.array(arr, dtype=np.float64, copy=True)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"{name}: expected 2 or 3 dimensions, got {a.ndim}")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Dataset:
    """Fixed train/test arrays of one sequence-to-sequence task.

    Arrays are always 3-D float64 ``(n, T, C)`` and read-only, so a Dataset can be shared between
    the trainer, the extractor and the verifier without anyone mutating it under the others.
    """

    name: str
    kind: Kind
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'discrete' or 'continuous', got {self.kind!r}")
        for field in ("x_train", "y_train", "x_test", "y_test"):
            object.__setattr__(self, field, _as_3d(field, getattr(self, field)))
        object.__setattr__(self, "input_names", tuple(str(s) for s in self.input_names))
        object.__setattr__(self, "output_names", tuple(str(s) for s in self.output_names))
        xtr, ytr, xte, yte = self.x_train, self.y_train, self.x_test, self.y_test
        if xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0]:
            raise ValueError("x and y must have the same number of sequences in each split")
        if len({xtr.shape[1], ytr.shape[1], xte.shape[1], yte.shape[1]}) != 1:
            raise ValueError("all arrays must have the same sequence length T")
        if xtr.shape[2] != xte.shape[2] or ytr.shape[2] != yte.shape[2]:
            raise ValueError("train and test must have the same channel counts")
        if len(self.input_names) != xtr.shape[2]:
            raise ValueError(f"{len(self.input_names)} input names for {xtr.shape[2]} channels")
        if len(self.output_names) != ytr.shape[2]:
            raise ValueError(f"{len(self.output_names)} output names for {ytr.shape[2]} channels")

    @property
    def T(self) -> int:
        """Sequence length."""
        return int(self.x_train.shape[1])

    @property
    def n_in(self) -> int:
        """Number of input channels."""
        return int(self.x_train.shape[2])

    @property
    def n_out(self) -> int:
        """Number of output channels."""
        return int(self.y_train.shape[2])

    @property
    def n_train(self) -> int:
        """Number of training sequences."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test sequences."""
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, kind={self.kind!r}, T={self.T}, n_in={self.n_in}, "
            f"n_out={self.n_out}, n_train={self.n_train}, n_test={self.n_test}, "
            f"source={self.source!r})"
        )
