"""What every data-file reader shares: the one-line :class:`DataFileError` and the checks a file's
arrays and channel names must pass, whatever the format (see :mod:`.files`)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

ARRAY_KEYS: tuple[str, ...] = ("x_train", "y_train", "x_test", "y_test")
DATA_EXTENSIONS: tuple[str, ...] = (".npz", ".csv", ".jsonl")
SPLITS: tuple[str, ...] = ("train", "test")
MAX_ABS_VALUE = 1e9  # beyond this, float32 training and symbolic regression lose all precision
MIN_T = 2


class DataFileError(ValueError):
    """A data file that cannot be used; the message is one line: ``path: field: problem``."""


def file_error(path: str, field: str, problem: str) -> DataFileError:
    """The error for `problem` in `field` of the file `path`, on one line whatever the problem says."""
    one_line = re.sub(r"[\r\n]+", " ", f"{path}: {field}: {problem}")
    return DataFileError(one_line)


def default_names(prefix: str, n: int) -> tuple[str, ...]:
    """``("x",)`` for one channel, ``("x0", "x1", ...)`` for several (DESIGN.md section 3)."""
    return (prefix,) if n == 1 else tuple(f"{prefix}{i}" for i in range(n))


def index_text(flat: int, shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


# ----------------------------------------------------------------------------- validation


def check_number(path: str, field: str, v: float) -> float:
    """Per-value checks shared by the text formats, so errors can cite a line number."""
    if math.isnan(v):
        raise file_error(path, field, "value is NaN")
    if math.isinf(v):
        raise file_error(path, field, f"value is infinite ({v})")
    if abs(v) > MAX_ABS_VALUE:
        raise file_error(path, field, f"value {v:g} exceeds the magnitude limit {MAX_ABS_VALUE:g}; rescale the data")
    return float(v)


def validate_array(path: str, key: str, a: np.ndarray) -> np.ndarray:
    """Dtype, rank, size and finiteness of one array; returns it as float64 (n, T, C)."""
    if a.dtype.kind == "c":
        raise file_error(path, key, f"complex dtype {a.dtype} is not supported; store real numbers")
    if a.dtype.kind not in "biuf":
        raise file_error(path, key, f"non-numeric dtype {a.dtype}; expected integers or floats")
    if a.ndim not in (2, 3):
        raise file_error(
            path, key, f"expected 2 or 3 dimensions, got {a.ndim} (shape {a.shape}); use (n, T) or (n, T, C)"
        )
    if a.ndim == 2:
        a = a[:, :, None]
    n, T, C = a.shape
    if n == 0:
        raise file_error(path, key, f"empty array (shape {a.shape}); need at least 1 sequence")
    if T == 0 or C == 0:
        raise file_error(path, key, f"empty array (shape {a.shape}); need T >= {MIN_T} and C >= 1")
    if T < MIN_T:
        raise file_error(path, key, f"need at least {MIN_T} positions per sequence, got T = {T}")
    f = a.astype(np.float64)  # exact for the magnitudes accepted below, even from int64
    nan = np.isnan(f)
    if nan.any():
        raise file_error(path, key, f"contains NaN (first at index {index_text(int(np.argmax(nan.ravel())), f.shape)})")
    inf = np.isinf(f)
    if inf.any():
        raise file_error(
            path, key, f"contains an infinite value (first at index {index_text(int(np.argmax(inf.ravel())), f.shape)})"
        )
    big = np.abs(f) > MAX_ABS_VALUE
    if big.any():
        i = int(np.argmax(big.ravel()))
        raise file_error(
            path,
            key,
            f"value {f.ravel()[i]:g} at {index_text(i, f.shape)} exceeds the "
            f"magnitude limit {MAX_ABS_VALUE:g}; rescale the data",
        )
    return f


def validate_arrays(path: str, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-array checks, then agreement of n, T and channel counts across the four arrays."""
    arr = {k: validate_array(path, k, raw[k]) for k in ARRAY_KEYS}
    for split in SPLITS:
        nx, ny = arr[f"x_{split}"].shape[0], arr[f"y_{split}"].shape[0]
        if nx != ny:
            raise file_error(path, f"y_{split}", f"has {ny} sequences but x_{split} has {nx}")
    T0 = arr["x_train"].shape[1]
    for k in ARRAY_KEYS[1:]:
        if arr[k].shape[1] != T0:
            raise file_error(path, k, f"has T = {arr[k].shape[1]} positions but x_train has T = {T0}")
    for side in ("x", "y"):
        ctr, cte = arr[f"{side}_train"].shape[2], arr[f"{side}_test"].shape[2]
        if ctr != cte:
            raise file_error(path, f"{side}_test", f"has {cte} channels but {side}_train has {ctr}")
    return arr


def check_names(path: str, field: str, names: Sequence[object], n: int) -> tuple[str, ...]:
    if len(names) != n:
        raise file_error(path, field, f"{len(names)} names for {n} channel{'s' * (n != 1)}")
    out: list[str] = []
    for s in names:
        if not isinstance(s, str) or not s.strip():
            raise file_error(path, field, f"channel names must be non-empty strings, got {s!r}")
        if s in out:
            raise file_error(path, field, f"duplicate channel name {s!r}")
        out.append(s)
    return tuple(out)


def first_non_integral(a: np.ndarray) -> str | None:
    bad = a != np.round(a)
    if not bad.any():
        return None
    i = int(np.argmax(bad.ravel()))
    return f"{float(a.ravel()[i])!r} at index {index_text(i, a.shape)}"
