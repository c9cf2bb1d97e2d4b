"""Data files: one clear error per bad input in the text formats, CSV and JSONL."""

from __future__ import annotations

import json
from pathlib import Path

from files_helpers import CSV_HEADER, csv_rows, expect, good_csv_body, write

from discrete_transformer.tasks import load_file

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
