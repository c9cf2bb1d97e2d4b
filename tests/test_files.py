"""Data files: exact round trips between the three formats, and loading by source. One clear
error per bad input: test_files_errors.py (files, npz arrays) and test_files_text_errors.py (CSV,
JSONL)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from files_helpers import CSV_HEADER, assert_same, csv_rows, good_csv_body, npz, small_dataset, write
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
