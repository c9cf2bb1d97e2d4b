"""The bad-input cases about data files (.npz, .csv, .jsonl, and files that are none of them)."""

from __future__ import annotations

import numpy as np

from .builders import CSV_OK, OUT, T, bytes_file, directory, npz, object_npz, text_file
from .case import Case


def data_cases() -> list[Case]:
    """Data files that are not usable: each case's message names the file, the field and the problem."""
    big = np.full((6, 4), 1e12)
    c = Case
    return [
        c(
            "npz-missing-key",
            ".npz without `y_test`",
            T + ("data.npz",) + OUT,
            npz(y_test=None),
            ("data.npz", "y_test", "missing"),
        ),
        c(
            "npz-wrong-rank",
            ".npz `x_train` of rank 4",
            T + ("data.npz",) + OUT,
            npz(x_train=np.zeros((6, 4, 1, 1))),
            ("data.npz", "x_train", "dimensions", "got 4"),
        ),
        c(
            "npz-rank-1",
            ".npz `y_train` of rank 1",
            T + ("data.npz",) + OUT,
            npz(y_train=np.zeros(6)),
            ("data.npz", "y_train", "dimensions", "got 1"),
        ),
        c(
            "npz-channels-mismatch",
            ".npz train with 1 input channel, test with 2",
            T + ("data.npz",) + OUT,
            npz(x_test=np.zeros((3, 4, 2))),
            ("data.npz", "x_test", "channel"),
        ),
        c(
            "npz-T-mismatch",
            ".npz train T=4, test T=5",
            T + ("data.npz",) + OUT,
            npz(x_test=np.zeros((3, 5)), y_test=np.zeros((3, 5))),
            ("data.npz", "x_test", "T"),
        ),
        c(
            "npz-n-mismatch",
            ".npz `x_train` has 6 sequences, `y_train` 5",
            T + ("data.npz",) + OUT,
            npz(y_train=np.zeros((5, 4))),
            ("data.npz", "y_train", "sequences"),
        ),
        c(
            "npz-nan",
            ".npz with a NaN in `x_train`",
            T + ("data.npz",) + OUT,
            npz(x_train=np.where(np.eye(6, 4) > 0, np.nan, 1.0)),
            ("data.npz", "x_train", "NaN"),
        ),
        c(
            "npz-inf",
            ".npz with +inf in `y_test`",
            T + ("data.npz",) + OUT,
            npz(y_test=np.full((3, 4), np.inf)),
            ("data.npz", "y_test", "inf"),
        ),
        c(
            "npz-empty",
            ".npz with 0 training sequences",
            T + ("data.npz",) + OUT,
            npz(x_train=np.zeros((0, 4)), y_train=np.zeros((0, 4))),
            ("data.npz", "x_train", "empty"),
        ),
        c(
            "npz-one-train",
            ".npz with 1 training sequence",
            T + ("data.npz",) + OUT,
            npz(x_train=np.zeros((1, 4)), y_train=np.zeros((1, 4))),
            ("data.npz", "x_train", "at least 2"),
        ),
        c(
            "npz-T-one",
            ".npz with T = 1",
            T + ("data.npz",) + OUT,
            npz(x_train=np.zeros((6, 1)), y_train=np.zeros((6, 1)), x_test=np.zeros((3, 1)), y_test=np.zeros((3, 1))),
            ("data.npz", "x_train", "T"),
        ),
        c(
            "npz-huge",
            ".npz with magnitudes 1e12",
            T + ("data.npz",) + OUT,
            npz(x_train=big),
            ("data.npz", "x_train", "1e+12"),
        ),
        c(
            "npz-int-overflow",
            ".npz int64 values near 2**63",
            T + ("data.npz",) + OUT,
            npz(y_train=np.full((6, 4), 2**63 - 1, dtype=np.int64)),
            ("data.npz", "y_train"),
        ),
        c(
            "npz-strings",
            ".npz `x_train` of strings",
            T + ("data.npz",) + OUT,
            npz(x_train=np.full((6, 4), "a")),
            ("data.npz", "x_train", "dtype"),
        ),
        c(
            "npz-complex",
            ".npz `x_train` of complex numbers",
            T + ("data.npz",) + OUT,
            npz(x_train=np.ones((6, 4), dtype=complex)),
            ("data.npz", "x_train", "complex"),
        ),
        c(
            "npz-object-pickle",
            ".npz holding an object array (needs pickle)",
            T + ("data.npz",) + OUT,
            object_npz,
            ("data.npz", "pickle"),
        ),
        c(
            "npz-garbage",
            ".npz that is not a zip archive",
            T + ("data.npz",) + OUT,
            bytes_file("data.npz", b"hello, not a zip\n"),
            ("data.npz", "not"),
            library_detail=True,
        ),
        c(
            "csv-non-numeric",
            ".csv with `abc` in an x cell",
            T + ("data.csv",) + OUT,
            text_file("data.csv", CSV_OK.replace("train,0,1,2,3", "train,0,1,abc,3")),
            ("data.csv", "line 3", "abc"),
        ),
        c(
            "csv-nan",
            ".csv with `nan` in a y cell",
            T + ("data.csv",) + OUT,
            text_file("data.csv", CSV_OK.replace("test,0,1,1,3", "test,0,1,1,nan")),
            ("data.csv", "line 5", "y"),
        ),
        c(
            "csv-missing-column",
            ".csv header without `t`",
            T + ("data.csv",) + OUT,
            text_file("data.csv", "split,seq,x,y\ntrain,0,1,1\n"),
            ("data.csv", "t"),
        ),
        c("csv-empty", "empty .csv", T + ("data.csv",) + OUT, text_file("data.csv", ""), ("data.csv", "empty")),
        c(
            "csv-ragged-row",
            ".csv row with an extra cell",
            T + ("data.csv",) + OUT,
            text_file("data.csv", CSV_OK.replace("train,0,1,2,3", "train,0,1,2,3,9")),
            ("data.csv", "line 3", "cells"),
        ),
        c(
            "csv-missing-position",
            ".csv sequence without position t=1",
            T + ("data.csv",) + OUT,
            text_file("data.csv", CSV_OK.replace("test,0,1,1,3\n", "")),
            ("data.csv", "seq", "position"),
        ),
        c(
            "csv-not-utf8",
            ".csv that is not UTF-8 text",
            T + ("data.csv",) + OUT,
            bytes_file("data.csv", b"split,seq,t,x,y\n\xff\xfe\x00bad\n"),
            ("data.csv", "UTF-8"),
        ),
        c(
            "jsonl-syntax",
            ".jsonl with a broken line",
            T + ("data.jsonl",) + OUT,
            text_file("data.jsonl", '{"split": "train", "x": [1, 2], "y": [1, 3]}\n{"split": "test", "x": [1, \n'),
            ("data.jsonl", "line 2", "JSON"),
        ),
        c(
            "jsonl-ragged",
            ".jsonl whose x and y lengths differ",
            T + ("data.jsonl",) + OUT,
            text_file(
                "data.jsonl",
                '{"split": "train", "x": [1, 2, 3], "y": [1, 3]}\n{"split": "test", "x": [1, 2], "y": [1, 3]}\n',
            ),
            ("data.jsonl", "line 1", "y"),
        ),
        c(
            "jsonl-non-numeric",
            ".jsonl with a string where a number belongs",
            T + ("data.jsonl",) + OUT,
            text_file(
                "data.jsonl",
                '{"split": "train", "x": [1, "two"], "y": [1, 3]}\n{"split": "test", "x": [1, 2], "y": [1, 3]}\n',
            ),
            ("data.jsonl", "line 1", "x"),
        ),
        c(
            "wrong-extension",
            "a .txt file",
            T + ("data.txt",) + OUT,
            text_file("data.txt", "1,2,3\n"),
            ("data.txt", "extension"),
        ),
        c(
            "missing-file",
            "a data file that does not exist",
            T + ("nothere.csv",) + OUT,
            lambda d: None,
            ("nothere.csv", "not found"),
        ),
        c(
            "directory-as-file",
            "a directory named data.npz",
            T + ("data.npz",) + OUT,
            directory("data.npz"),
            ("data.npz", "directory"),
        ),
        c(
            "kind-discrete-real",
            "--kind discrete on real-valued targets",
            T + ("data.npz", "--kind", "discrete") + OUT,
            npz(y_train=np.full((6, 4), 0.5)),
            ("data.npz", "y_train", "integer"),
        ),
    ]
