"""Data files: exact round trips between the three formats, and one clear error per bad input."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from discrete_transformer.tasks import (
    DataFileError,
    Dataset,
    UnknownTaskError,
    load_file,
    load_source,
    make_dataset,
    save_csv,
    save_jsonl,
    save_npz,
)

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def small_dataset(kind: str = "continuous", names: tuple[str, ...] = ("a", "b")) -> Dataset:
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
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


CSV_HEADER = "split,seq,t,x,y\n"


def csv_rows(split: str, seq: int, xs: list[float], ys: list[float]) -> str:
    return "".join(f"{split},{seq},{t},{x},{y}\n" for t, (x, y) in enumerate(zip(xs, ys)))


def good_csv_body() -> str:
    return (
        csv_rows("train", 0, [1, 2, 3], [1, 3, 5])
        + csv_rows("train", 1, [0, 0, 1], [0, 0, 1])
        + csv_rows("test", 0, [4, 4, 4], [4, 8, 8])
    )


# ----------------------------------------------------------------------------- round trips


def test_three_formats_give_identical_datasets(tmp_path: Path) -> None:
    ds = small_dataset()
    for save, ext in ((save_npz, "npz"), (save_csv, "csv"), (save_jsonl, "jsonl")):
        path = tmp_path / f"data.{ext}"
        save(ds, path)
        back = load_file(path)
        assert_same(ds, back)
        assert back.name == "data" and back.source == str(path)


def test_round_trip_of_a_builtin_task(tmp_path: Path) -> None:
    ds = make_dataset("Base_3_Addition", seed=0, n_test=20)
    loaded = []
    for save, ext in ((save_npz, "npz"), (save_csv, "csv"), (save_jsonl, "jsonl")):
        save(ds, tmp_path / f"b3.{ext}")
        loaded.append(load_file(tmp_path / f"b3.{ext}"))
    for back in loaded:
        assert_same(ds, back)
        assert back.kind == "discrete"


def test_hand_written_csv_and_jsonl(tmp_path: Path) -> None:
    c = load_file(write(tmp_path, "d.csv", CSV_HEADER + good_csv_body()))
    lines = [
        {"split": "train", "x": [1, 2, 3], "y": [1, 3, 5]},
        {"split": "train", "x": [0, 0, 1], "y": [0, 0, 1]},
        {"split": "test", "x": [4, 4, 4], "y": [4, 8, 8]},
    ]
    j = load_file(write(tmp_path, "d.jsonl", "\n".join(json.dumps(o) for o in lines) + "\n"))
    assert_same(c, j)
    assert c.input_names == ("x",) and c.output_names == ("y",) and c.kind == "discrete"
    assert c.x_train.shape == (2, 3, 1) and c.T == 3


def test_csv_sequences_are_ordered_by_seq_and_rows_may_be_shuffled(tmp_path: Path) -> None:
    rows = (
        csv_rows("train", 5, [1, 2, 3], [1, 3, 5])
        + csv_rows("test", 0, [4, 4, 4], [4, 8, 8])
        + csv_rows("train", 2, [0, 0, 1], [0, 0, 1])
    ).splitlines()
    ds = load_file(write(tmp_path, "d.csv", CSV_HEADER + "\n".join(reversed(rows)) + "\n"))
    np.testing.assert_array_equal(ds.x_train[:, :, 0], [[0, 0, 1], [1, 2, 3]])


def test_named_channels_csv_and_jsonl_header(tmp_path: Path) -> None:
    text = "split,seq,t,x:mass,x:vel,y:p\n" + "".join(
        f"{s},0,{t},1,{t},{t}\n" for s in ("train", "test") for t in range(2)
    )
    ds = load_file(write(tmp_path, "n.csv", text))
    assert ds.input_names == ("mass", "vel") and ds.output_names == ("p",)
    jl = (
        '{"x_names": ["mass", "vel"], "y_names": ["p"]}\n'
        '{"split": "train", "x": [[1, 0], [1, 1]], "y": [0, 1]}\n'
        '{"split": "test", "x": [[1, 0], [1, 1]], "y": [[0], [1]]}\n'
    )
    dj = load_file(write(tmp_path, "n.jsonl", jl))
    assert_same(ds, dj)


def test_default_channel_names_for_npz_without_names(tmp_path: Path) -> None:
    path = npz(tmp_path, x_train=np.zeros((4, 3, 2)), x_test=np.zeros((2, 3, 2)))
    ds = load_file(path)
    assert ds.input_names == ("x0", "x1") and ds.output_names == ("y",)


def test_kind_inference_and_override(tmp_path: Path) -> None:
    save_npz(small_dataset("discrete"), tmp_path / "d.npz")
    save_npz(small_dataset("continuous"), tmp_path / "c.npz")
    assert load_file(tmp_path / "d.npz").kind == "discrete"
    assert load_file(tmp_path / "c.npz").kind == "continuous"
    assert load_file(tmp_path / "d.npz", kind="continuous").kind == "continuous"
    assert load_file(tmp_path / "d.npz", kind="discrete").kind == "discrete"
    # integer dtypes and booleans are accepted and become float64
    ds = load_file(npz(tmp_path, "i.npz", y_train=np.ones((4, 3), dtype=np.int32), x_train=np.ones((4, 3), dtype=bool)))
    assert ds.kind == "discrete" and ds.y_train.dtype == np.float64


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
small_ints = st.integers(-1000, 1000).map(float)
name_text = st.text(alphabet="abcxyz_019:,\"' ", min_size=1, max_size=6).filter(lambda s: s == s.strip())


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    T = draw(st.integers(2, 5))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    n_tr, n_te = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    elems = draw(st.sampled_from([finite, small_ints]))

    def arr(n: int, c: int) -> np.ndarray:
        return draw(hnp.arrays(np.float64, (n, T, c), elements=elems))

    in_names = tuple(draw(st.lists(name_text, min_size=c_in, max_size=c_in, unique=True)))
    out_names = tuple(draw(st.lists(name_text, min_size=c_out, max_size=c_out, unique=True)))
    y_tr, y_te = arr(n_tr, c_out), arr(n_te, c_out)
    kind = "discrete" if np.all(y_tr == np.round(y_tr)) and np.all(y_te == np.round(y_te)) else "continuous"
    return Dataset(
        name="h",
        kind=kind,
        x_train=arr(n_tr, c_in),
        y_train=y_tr,
        x_test=arr(n_te, c_in),
        y_test=y_te,
        input_names=in_names,
        output_names=out_names,
        source="mem",
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_property_round_trip_npz_csv_jsonl(ds: Dataset) -> None:
    with tempfile.TemporaryDirectory() as d:
        for save, ext in ((save_npz, "npz"), (save_csv, "csv"), (save_jsonl, "jsonl")):
            path = Path(d) / f"h.{ext}"
            save(ds, path)
            assert_same(ds, load_file(path))


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


# ----------------------------------------------------------------------------- CSV errors


def test_csv_non_numeric_cell(tmp_path: Path) -> None:
    body = good_csv_body().replace("train,1,1,0,0", "train,1,1,abc,0")
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "line 6, column 'x'", "non-numeric value 'abc'")


def test_csv_empty_cell(tmp_path: Path) -> None:
    body = good_csv_body().replace("test,0,2,4,8", "test,0,2,4,")
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "column 'y'", "non-numeric value ''")


def test_csv_nan_and_huge_cells(tmp_path: Path) -> None:
    body = good_csv_body()
    expect(
        write(tmp_path, "a.csv", CSV_HEADER + body.replace("test,0,2,4,8", "test,0,2,nan,8")),
        "line 10, column 'x'",
        "NaN",
    )
    expect(
        write(tmp_path, "b.csv", CSV_HEADER + body.replace("test,0,2,4,8", "test,0,2,4,inf")),
        "line 10, column 'y'",
        "infinite",
    )
    expect(
        write(tmp_path, "c.csv", CSV_HEADER + body.replace("test,0,2,4,8", "test,0,2,4,2e10")),
        "line 10, column 'y'",
        "magnitude limit",
    )


def test_csv_missing_position(tmp_path: Path) -> None:
    body = good_csv_body().replace("train,1,1,0,0\n", "")
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "train sequence seq=1", "missing positions [1]")


def test_csv_short_sequence_is_missing_positions(tmp_path: Path) -> None:
    body = good_csv_body().replace("test,0,2,4,8\n", "")
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "test sequence seq=0", "missing positions [2]", "T = 3")


def test_csv_huge_position_does_not_allocate(tmp_path: Path) -> None:
    body = good_csv_body().replace("test,0,2,4,8", "test,0,999999999999,4,8")
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "missing positions [3, 4, 5, 6, 7]", "more")


def test_csv_duplicated_position(tmp_path: Path) -> None:
    body = good_csv_body() + "train,0,1,7,7\n"
    expect(
        write(tmp_path, "d.csv", CSV_HEADER + body),
        "line 11",
        "duplicated position t=1 in train sequence seq=0 (first on line 3)",
    )


def test_csv_bad_split_value(tmp_path: Path) -> None:
    body = good_csv_body().replace("test,0,0", "valid,0,0")
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "line 8, column 'split'", "bad split value 'valid'")


def test_csv_bad_seq_and_t(tmp_path: Path) -> None:
    body = good_csv_body()
    expect(
        write(tmp_path, "a.csv", CSV_HEADER + body.replace("test,0,0", "test,x0,0")), "column 'seq'", "not an integer"
    )
    expect(write(tmp_path, "b.csv", CSV_HEADER + body.replace("test,0,0", "test,0,-1")), "column 't'", ">= 0")


def test_csv_missing_header(tmp_path: Path) -> None:
    expect(write(tmp_path, "d.csv", good_csv_body()), "header:", "missing required column")


def test_csv_empty_file(tmp_path: Path) -> None:
    expect(write(tmp_path, "d.csv", "\n\n"), "header:", "empty file")


def test_csv_unknown_column_and_bad_channel_columns(tmp_path: Path) -> None:
    expect(write(tmp_path, "a.csv", "split,seq,t,x,y,z\n"), "header:", "unknown column 'z'")
    expect(write(tmp_path, "b.csv", "split,seq,t,x,x:b,y\n"), "header:", "bare 'x'")
    expect(write(tmp_path, "c.csv", "split,seq,t,x:,y\n"), "header:", "empty channel name")
    expect(write(tmp_path, "d.csv", "split,seq,t,y\n"), "header:", "no input column")
    expect(write(tmp_path, "e.csv", "split,seq,t,x,x\n"), "header:", "duplicated column 'x'")


def test_csv_wrong_cell_count(tmp_path: Path) -> None:
    body = good_csv_body().replace("train,1,2,1,1", "train,1,2,1")
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "line 7", "expected 5 cells", "got 4")


def test_csv_missing_split(tmp_path: Path) -> None:
    body = csv_rows("train", 0, [1, 2], [1, 3])
    expect(write(tmp_path, "d.csv", CSV_HEADER + body), "split:", "no 'test' rows")


# ----------------------------------------------------------------------------- JSONL errors


def jl(*objs: object) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


TRAIN = {"split": "train", "x": [1, 2, 3], "y": [1, 3, 5]}
TEST = {"split": "test", "x": [4, 4, 4], "y": [4, 8, 8]}


def test_jsonl_syntax_error_with_line_number(tmp_path: Path) -> None:
    text = jl(TRAIN, '{"split": "test", "x": [4, 4, 4] "y": [4, 8, 8]}', TEST)
    expect(write(tmp_path, "d.jsonl", text), "line 2: invalid JSON", "column")


def test_jsonl_ragged_positions_between_lines(tmp_path: Path) -> None:
    text = jl(TRAIN, {"split": "test", "x": [4, 4], "y": [4, 8]})
    expect(write(tmp_path, "d.jsonl", text), "line 2:", "ragged", "line 1 has 3")


def test_jsonl_ragged_channels_within_a_sequence(tmp_path: Path) -> None:
    text = jl({"split": "train", "x": [[1, 2], [3], [4, 5]], "y": [1, 2, 3]}, TEST)
    expect(write(tmp_path, "d.jsonl", text), "line 1, key 'x'", "ragged: position 1 has 1")


def test_jsonl_channel_count_differs_between_lines(tmp_path: Path) -> None:
    text = jl(TRAIN, {"split": "test", "x": [[4, 1], [4, 1], [4, 1]], "y": [4, 8, 8]})
    expect(write(tmp_path, "d.jsonl", text), "line 2:", "2 input channels", "line 1 has 1")


def test_jsonl_x_and_y_lengths_differ(tmp_path: Path) -> None:
    text = jl(TRAIN, {"split": "test", "x": [4, 4, 4], "y": [4, 8]})
    expect(write(tmp_path, "d.jsonl", text), "line 2:", "x has 3 positions but y has 2")


def test_jsonl_bad_split_value(tmp_path: Path) -> None:
    text = jl(TRAIN, {"split": "dev", "x": [4, 4, 4], "y": [4, 8, 8]})
    expect(write(tmp_path, "d.jsonl", text), "line 2, key 'split'", "bad split value 'dev'")


def test_jsonl_non_numeric_values(tmp_path: Path) -> None:
    text = jl(TRAIN, {"split": "test", "x": [4, "4", 4], "y": [4, 8, 8]})
    expect(write(tmp_path, "a.jsonl", text), "line 2, key 'x'", "non-numeric value '4'")
    text = jl(TRAIN, {"split": "test", "x": [4, None, 4], "y": [4, 8, 8]})
    expect(write(tmp_path, "b.jsonl", text), "non-numeric value None at position 1")
    text = jl(TRAIN, {"split": "test", "x": [4, True, 4], "y": [4, 8, 8]})
    expect(write(tmp_path, "c.jsonl", text), "non-numeric value True")


def test_jsonl_nan_inf_and_huge(tmp_path: Path) -> None:
    expect(
        write(tmp_path, "a.jsonl", jl(TRAIN, '{"split": "test", "x": [4, NaN, 4], "y": [4, 8, 8]}')),
        "line 2, key 'x'",
        "NaN",
    )
    expect(
        write(tmp_path, "b.jsonl", jl(TRAIN, '{"split": "test", "x": [4, 4, 4], "y": [4, Infinity, 8]}')),
        "key 'y'",
        "infinite",
    )
    expect(
        write(tmp_path, "c.jsonl", jl(TRAIN, {"split": "test", "x": [4, 4, 10**12], "y": [4, 8, 8]})), "magnitude limit"
    )
    expect(
        write(tmp_path, "d.jsonl", jl(TRAIN, {"split": "test", "x": [4, 4, 10**400], "y": [4, 8, 8]})),
        "magnitude limit",
    )


def test_jsonl_structure_errors(tmp_path: Path) -> None:
    expect(write(tmp_path, "a.jsonl", jl(TRAIN, [1, 2, 3])), "line 2:", "expected a JSON object")
    expect(write(tmp_path, "b.jsonl", jl(TRAIN, {"x": [1, 2, 3], "y": [1, 2, 3]})), "line 2:", "missing key 'split'")
    expect(write(tmp_path, "c.jsonl", jl(TRAIN, {"split": "test", "x": [1, 2, 3]})), "line 2:", "missing key 'y'")
    expect(
        write(tmp_path, "d.jsonl", jl(TRAIN, {"split": "test", "x": [], "y": []})), "line 2, key 'x'", "non-empty list"
    )
    mixed = {"split": "test", "x": [1, [2], 3], "y": [1, 2, 3]}
    expect(write(tmp_path, "e.jsonl", jl(TRAIN, mixed)), "mixes numbers and lists")
    expect(write(tmp_path, "f.jsonl", jl(TRAIN)), "split:", "no 'test' lines")
    expect(write(tmp_path, "g.jsonl", "\n"), "file:", "no sequences")


def test_jsonl_names_header(tmp_path: Path) -> None:
    text = jl({"x_names": ["a", "b"]}, TRAIN, TEST)
    expect(write(tmp_path, "a.jsonl", text), "x_names: 2 names for 1 channel")
    text = jl(TRAIN, {"x_names": ["a"]}, TEST)  # a header is only allowed on the first line
    expect(write(tmp_path, "b.jsonl", text), "line 2:", "missing key 'split'")
    text = jl({"x_names": ["a"], "y_names": ["a", "a"][:1]}, TRAIN, TEST)
    assert load_file(write(tmp_path, "c.jsonl", text)).input_names == ("a",)
    text = jl({"x_names": "a"}, TRAIN, TEST)
    expect(write(tmp_path, "d.jsonl", text), "line 1, key 'x_names'", "list of names")


def test_jsonl_T_one_rejected(tmp_path: Path) -> None:
    text = jl({"split": "train", "x": [1], "y": [1]}, {"split": "test", "x": [1], "y": [1]})
    expect(write(tmp_path, "d.jsonl", text), "x_train: need at least 2 positions")


# ----------------------------------------------------------------------------- load_source


def test_load_source_dispatch(tmp_path: Path) -> None:
    p = tmp_path / "data.npz"
    save_npz(small_dataset(), p)
    assert load_source(str(p)).source == str(p)
    with pytest.raises(DataFileError, match="missing.csv: file: not found"):
        load_source(str(tmp_path / "missing.csv"))
    with pytest.raises(UnknownTaskError, match="did you mean"):
        load_source("sum_lst2")
    assert load_source("Sum_Last2").source == "task:Sum_Last2"
    assert load_source(str(p), kind="continuous").kind == "continuous"
