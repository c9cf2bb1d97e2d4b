"""Load user data files (``.npz``, ``.csv``, ``.jsonl``) into a validated :class:`Dataset`.

Unseen tasks arrive as files, so this is the system's front door: every problem is reported as one
line ``"{path}: {field}: {problem}"`` before any training starts, and nothing in a file is ever
executed, evaluated or unpickled. The formats are specified in ``docs/data_formats.md``; each
has its reader in :mod:`.file_readers`, and :mod:`.file_checks` holds the checks they share. The
writers (``save_*``) are the readers' inverses: a saved dataset loads back exactly.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .dataset import KINDS, Dataset, infer_kind
from .file_checks import (
    DATA_EXTENSIONS,
    SPLITS,
    DataFileError,
    check_names,
    default_names,
    file_error,
    first_non_integral,
    validate_arrays,
)
from .file_readers import read_csv, read_jsonl, read_npz

__all__ = ["DATA_EXTENSIONS", "DataFileError", "load_file", "save_csv", "save_jsonl", "save_npz"]

PathLike = str | os.PathLike

# ----------------------------------------------------------------------------- reading

_READERS = {".npz": read_npz, ".csv": read_csv, ".jsonl": read_jsonl}


def load_file(path: PathLike, kind: str | None = None) -> Dataset:
    """Read and validate a data file; ``kind`` overrides the inferred task kind.

    Raises :class:`DataFileError` (one line: ``path: field: problem``) for anything unusable, so
    a bad file fails before training instead of as a confusing error deep inside it.
    """
    shown = os.fspath(path)
    if kind is not None and kind not in KINDS:
        raise file_error(shown, "kind", f"invalid kind {kind!r}; expected 'discrete' or 'continuous'")
    p = Path(shown)
    if not p.exists():
        raise file_error(shown, "file", "not found")
    if p.is_dir():
        raise file_error(shown, "file", "is a directory, expected a data file (.npz, .csv or .jsonl)")
    ext = p.suffix.lower()
    if ext not in _READERS:
        raise file_error(
            shown, "extension", f"unknown extension {ext or '(none)'!r}; expected {', '.join(DATA_EXTENSIONS)}"
        )
    try:
        raw, x_names, y_names = _READERS[ext](p, shown)
    except UnicodeDecodeError as e:
        raise file_error(shown, "file", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise file_error(shown, "file", f"cannot read: {e.strerror or e}") from None
    arr = validate_arrays(shown, raw)
    n_in, n_out = arr["x_train"].shape[2], arr["y_train"].shape[2]
    in_names = check_names(shown, "x_names", x_names, n_in) if x_names is not None else default_names("x", n_in)
    out_names = check_names(shown, "y_names", y_names, n_out) if y_names is not None else default_names("y", n_out)
    if kind is None:
        discrete = all(infer_kind(arr[k]) == "discrete" for k in ("y_train", "y_test"))
        kind = "discrete" if discrete else "continuous"
    elif kind == "discrete":
        for k in ("y_train", "y_test"):
            bad = first_non_integral(arr[k])
            if bad is not None:
                raise file_error(shown, k, f"kind 'discrete' needs integer targets, found {bad}")
    return Dataset(
        name=p.stem,
        kind=kind,  # type: ignore[arg-type]
        x_train=arr["x_train"],
        y_train=arr["y_train"],
        x_test=arr["x_test"],
        y_test=arr["y_test"],
        input_names=in_names,
        output_names=out_names,
        source=shown,
    )


# ----------------------------------------------------------------------------- writing


def save_npz(dataset: Dataset, path: PathLike) -> None:
    """Write the four arrays (and the channel names as string arrays) to an ``.npz`` file."""
    with open(os.fspath(path), "wb") as fh:
        np.savez(
            fh,
            x_train=dataset.x_train,
            y_train=dataset.y_train,
            x_test=dataset.x_test,
            y_test=dataset.y_test,
            x_names=np.array(dataset.input_names, dtype=str),
            y_names=np.array(dataset.output_names, dtype=str),
        )


def _fmt(v: float) -> str:
    """Shortest text that reads back as exactly the same float (integers without '.0')."""
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def _channel_columns(prefix: str, names: tuple[str, ...]) -> list[str]:
    if names == (prefix,):
        return [prefix]
    return [f"{prefix}:{s}" for s in names]


def _csv_rows(dataset: Dataset) -> Iterator[list[str]]:
    yield [
        "split",
        "seq",
        "t",
        *_channel_columns("x", dataset.input_names),
        *_channel_columns("y", dataset.output_names),
    ]
    for split in SPLITS:
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        for i in range(x.shape[0]):
            for t in range(x.shape[1]):
                yield [split, str(i), str(t), *(_fmt(float(v)) for v in x[i, t]), *(_fmt(float(v)) for v in y[i, t])]


def save_csv(dataset: Dataset, path: PathLike) -> None:
    """Write the long-form CSV (one row per position) that :func:`load_file` reads back exactly."""
    with open(os.fspath(path), "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(_csv_rows(dataset))


def save_jsonl(dataset: Dataset, path: PathLike) -> None:
    """Write the JSONL form: a names header line, then one object per sequence."""

    def seq(a: np.ndarray) -> list:
        if a.shape[1] == 1:
            return [float(v) for v in a[:, 0]]
        return [[float(v) for v in row] for row in a]

    with open(os.fspath(path), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"x_names": list(dataset.input_names), "y_names": list(dataset.output_names)}) + "\n")
        for split in SPLITS:
            x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
            for i in range(x.shape[0]):
                fh.write(json.dumps({"split": split, "x": seq(x[i]), "y": seq(y[i])}) + "\n")
