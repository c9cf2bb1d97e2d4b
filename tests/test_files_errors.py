"""Data files: one clear error per bad file (missing, garbled, wrong kind) and per bad npz array."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from files_helpers import ARRAY_KEYS, CSV_HEADER, expect, npz, write

from discrete_transformer.tasks import load_file

# ----------------------------------------------------------------------------- file-level errors


def test_missing_file(tmp_path: Path) -> None:
    expect(tmp_path / "nope.npz", "file: not found")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    d = tmp_path / "dir.npz"
    d.mkdir()
    expect(d, "file:", "directory")


def test_garbage_bytes_npz(tmp_path: Path) -> None:
    p = tmp_path / "bad.npz"
    p.write_bytes(b"\x00\x01garbage bytes, not a zip archive" * 10)
    msg = expect(p, "file:", "cannot read as .npz")
    assert "allow_pickle" not in msg  # never advise unpickling untrusted data


def test_truncated_npz(tmp_path: Path) -> None:
    p = npz(tmp_path, x_train=np.zeros((200, 50)))
    p.write_bytes(p.read_bytes()[:300])
    expect(p, "cannot read")


def test_corrupt_member_in_npz(tmp_path: Path) -> None:
    p = tmp_path / "member.npz"
    with zipfile.ZipFile(p, "w") as z:
        for k in ARRAY_KEYS:
            z.writestr(f"{k}.npy", b"\x93NUMPY\x01\x00garbage")
    expect(p, "x_train:", "cannot read array")


def test_npy_instead_of_npz(tmp_path: Path) -> None:
    p = tmp_path / "single.npz"
    with open(p, "wb") as fh:
        np.save(fh, np.zeros((3, 3)))
    expect(p, "file:", "single .npy array")


def test_unknown_extension(tmp_path: Path) -> None:
    expect(write(tmp_path, "data.txt", "1,2,3"), "extension:", "'.txt'")
    expect(write(tmp_path, "noext", "1,2,3"), "extension:", "(none)")


def test_invalid_kind_string(tmp_path: Path) -> None:
    expect(npz(tmp_path), "kind:", "'regression'", kind="regression")


def test_discrete_kind_with_non_integral_targets(tmp_path: Path) -> None:
    p = npz(tmp_path, y_test=np.full((2, 3), 0.5))
    expect(p, "y_test:", "kind 'discrete' needs integer targets, found 0.5 at index [0, 0, 0]", kind="discrete")
    assert load_file(p).kind == "continuous"


def test_non_utf8_text(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes(CSV_HEADER.encode() + b"train,0,0,\xff\xfe,1\n")
    expect(p, "file:", "not UTF-8")


# ----------------------------------------------------------------------------- npz array errors


def test_missing_key(tmp_path: Path) -> None:
    expect(npz(tmp_path, x_test=None), "x_test: missing key", "found: x_train, y_test, y_train")


def test_wrong_rank_1d(tmp_path: Path) -> None:
    expect(npz(tmp_path, y_test=np.zeros(3)), "y_test: expected 2 or 3 dimensions, got 1")


def test_wrong_rank_4d(tmp_path: Path) -> None:
    expect(npz(tmp_path, x_train=np.zeros((4, 3, 1, 1))), "x_train: expected 2 or 3 dimensions, got 4")


def test_empty_n(tmp_path: Path) -> None:
    expect(
        npz(tmp_path, x_test=np.zeros((0, 3)), y_test=np.zeros((0, 3))), "x_test: empty array", "at least 1 sequence"
    )


def test_empty_T(tmp_path: Path) -> None:
    expect(npz(tmp_path, x_train=np.zeros((4, 0))), "x_train: empty array")


def test_zero_channels(tmp_path: Path) -> None:
    expect(npz(tmp_path, y_train=np.zeros((4, 3, 0))), "y_train: empty array")


def test_T_one_rejected(tmp_path: Path) -> None:
    p = npz(tmp_path, **{k: np.zeros((2, 1)) for k in ARRAY_KEYS})
    expect(p, "x_train: need at least 2 positions", "T = 1")


def test_nan(tmp_path: Path) -> None:
    y = np.zeros((4, 3))
    y[2, 1] = np.nan
    expect(npz(tmp_path, y_train=y), "y_train: contains NaN", "[2, 1, 0]")


def test_inf(tmp_path: Path) -> None:
    x = np.zeros((2, 3))
    x[1, 2] = -np.inf
    expect(npz(tmp_path, x_test=x), "x_test: contains an infinite value", "[1, 2, 0]")


def test_non_numeric_dtype(tmp_path: Path) -> None:
    expect(npz(tmp_path, x_train=np.array([["a", "b", "c"]] * 4)), "x_train: non-numeric dtype")


def test_complex_dtype(tmp_path: Path) -> None:
    expect(npz(tmp_path, y_test=np.zeros((2, 3), dtype=complex)), "y_test: complex dtype")


def test_object_array_needs_pickle(tmp_path: Path) -> None:
    obj = np.empty((4, 3), dtype=object)
    obj[:] = 1.0
    expect(npz(tmp_path, x_train=obj), "x_train: object array", "pickle")


def test_huge_magnitude_float(tmp_path: Path) -> None:
    y = np.zeros((2, 3))
    y[0, 0] = 3e12
    expect(npz(tmp_path, y_test=y), "y_test:", "3e+12", "magnitude limit 1e+09")


def test_huge_magnitude_int(tmp_path: Path) -> None:
    x = np.zeros((4, 3), dtype=np.int64)
    x[3, 2] = -(2**62)
    expect(npz(tmp_path, x_train=x), "x_train:", "exceeds the magnitude limit")


def test_mismatched_n(tmp_path: Path) -> None:
    expect(npz(tmp_path, y_train=np.zeros((5, 3))), "y_train: has 5 sequences but x_train has 4")


def test_mismatched_T_x_vs_y(tmp_path: Path) -> None:
    expect(npz(tmp_path, y_train=np.zeros((4, 4))), "y_train: has T = 4 positions", "x_train has T = 3")


def test_mismatched_T_train_vs_test(tmp_path: Path) -> None:
    expect(npz(tmp_path, x_test=np.zeros((2, 5)), y_test=np.zeros((2, 5))), "x_test: has T = 5")


def test_mismatched_channels_train_vs_test(tmp_path: Path) -> None:
    expect(npz(tmp_path, x_test=np.zeros((2, 3, 2))), "x_test: has 2 channels", "x_train has 1")


def test_npz_names_wrong_length(tmp_path: Path) -> None:
    expect(npz(tmp_path, x_names=np.array(["a", "b"])), "x_names: 2 names for 1 channel")
