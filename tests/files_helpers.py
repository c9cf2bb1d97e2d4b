"""Shared by the data-file tests (test_files*.py): a small dataset, writers of valid files to
break, and the check that loading fails with one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from discrete_transformer.tasks import DataFileError, Dataset, load_file

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def small_dataset(kind: str = "continuous", names: tuple[str, ...] = ("a", "b")) -> Dataset:
    """Four training and two test sequences of length 3; y is the sum of the channels."""
    rng = np.random.default_rng(0)
    x_tr, x_te = rng.uniform(-1, 1, (4, 3, len(names))), rng.uniform(-1, 1, (2, 3, len(names)))
    if kind == "discrete":
        x_tr, x_te = np.round(x_tr * 5), np.round(x_te * 5)
    return Dataset(
        name="data",
        kind=kind,
        x_train=x_tr,
        y_train=x_tr.sum(-1, keepdims=True),
        x_test=x_te,
        y_test=x_te.sum(-1, keepdims=True),
        input_names=names,
        output_names=("y",),
        source="mem",
    )


def assert_same(a: Dataset, b: Dataset) -> None:
    """The same arrays (float64, rank 3), kind and channel names."""
    for k in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        assert getattr(b, k).dtype == np.float64 and getattr(b, k).ndim == 3
    assert a.kind == b.kind
    assert a.input_names == b.input_names and a.output_names == b.output_names


def expect(path: Path, *fragments: str, kind: str | None = None) -> str:
    """Load must fail with a one-line DataFileError naming the file and every fragment."""
    with pytest.raises(DataFileError) as info:
        load_file(path, kind=kind)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def npz(tmp_path: Path, name: str = "data.npz", **overrides: object) -> Path:
    """Write a valid npz (T=3, 1 channel), with arrays replaced or removed (None)."""
    arrays: dict[str, object] = {
        "x_train": np.arange(12.0).reshape(4, 3),
        "y_train": np.arange(12.0).reshape(4, 3),
        "x_test": np.arange(6.0).reshape(2, 3),
        "y_test": np.arange(6.0).reshape(2, 3),
    }
    arrays.update(overrides)
    path = tmp_path / name
    with open(path, "wb") as fh:
        np.savez(fh, **{k: v for k, v in arrays.items() if v is not None})
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write `text` (UTF-8) to tmp_path/name."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


CSV_HEADER = "split,seq,t,x,y\n"


def csv_rows(split: str, seq: int, xs: list[float], ys: list[float]) -> str:
    """One sequence as CSV rows under CSV_HEADER."""
    return "".join(f"{split},{seq},{t},{x},{y}\n" for t, (x, y) in enumerate(zip(xs, ys)))


def good_csv_body() -> str:
    """Two training sequences and one test sequence, all valid."""
    return (
        csv_rows("train", 0, [1, 2, 3], [1, 3, 5])
        + csv_rows("train", 1, [0, 0, 1], [0, 0, 1])
        + csv_rows("test", 0, [4, 4, 4], [4, 8, 8])
    )
