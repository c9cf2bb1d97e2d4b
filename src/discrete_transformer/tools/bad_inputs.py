"""The bad-input cases: every way a user can hand `dtx` something unusable, and what it says.

Each :class:`Case` builds its inputs in an empty working directory, then runs one ``dtx``
command line there (relative paths, so the messages are the same on every machine). The test
suite (``tests/test_bad_inputs.py``) runs every case and checks: a non-zero exit code, one line
``error: ...`` naming the file or option and the problem, no traceback, and nothing written or
overwritten. ``python -m discrete_transformer.tools.errors_doc`` runs the same cases to write
``docs/errors.md``, so the documented messages are the real ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle  # only to *write* a hostile file that the loaders must refuse to unpickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..api import CONFIG_FILE, RESULT_FILE, RUN_FORMAT, RUN_VERSION
from ..cli import app
from ..config import ModelConfig, TrainConfig, to_dict
from ..model import DataSpec, DiscreteTransformer
from ..training.checkpoint import atomic_write_json, save_run_checkpoint

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    input: str  # what is wrong, in words (the docs table's "input" column)
    argv: tuple[str, ...]  # the dtx command line, without "dtx"
    setup: Setup  # writes the case's files into the working directory
    expect: tuple[str, ...]  # fragments the message must contain (file/option, field, problem)
    # The message ends with a dependency's own wording in parentheses (safetensors, numpy), which
    # may change between versions: the docs drift check compares only the text before it.
    library_detail: bool = False


# ----------------------------------------------------------------------------- file builders


def _xy(n: int = 6, T: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).integers(0, 10, (n, T)).astype(np.int64)
    y = np.cumsum(x, axis=1)
    return x, y


def _npz(name: str = "data.npz", **changes: object) -> Setup:
    """A valid .npz with `changes` applied (None drops a key)."""

    def make(d: Path) -> None:
        x, y = _xy()
        xt, yt = _xy(3, seed=1)
        arrays: dict[str, object] = {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}
        for k, v in changes.items():
            if v is None:
                arrays.pop(k, None)
            else:
                arrays[k] = v
        with open(d / name, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]

    return make


def _text(name: str, text: str) -> Setup:
    def make(d: Path) -> None:
        (d / name).write_text(text, encoding="utf-8")

    return make


def _bytes(name: str, data: bytes) -> Setup:
    def make(d: Path) -> None:
        (d / name).write_bytes(data)

    return make


def _dir(name: str, with_file: str | None = None) -> Setup:
    def make(d: Path) -> None:
        (d / name).mkdir()
        if with_file:
            (d / name / with_file).write_text("keep me\n", encoding="utf-8")

    return make


def _both(*setups: Setup) -> Setup:
    def make(d: Path) -> None:
        for s in setups:
            s(d)

    return make


def _object_npz(d: Path) -> None:
    x, y = _xy()
    obj = np.empty((6, 4), dtype=object)
    obj[:] = 1
    np.savez(d / "data.npz", x_train=obj, y_train=y, x_test=x[:3], y_test=y[:3])


CSV_OK = "split,seq,t,x,y\ntrain,0,0,1,1\ntrain,0,1,2,3\ntest,0,0,2,2\ntest,0,1,1,3\n"


def _fake_run(name: str = "run", edit: Callable[[Path], None] | None = None) -> Setup:
    """A small but real run directory (untrained model), optionally damaged by `edit`."""

    def make(d: Path) -> None:
        run = d / name
        run.mkdir()
        mc, tc = ModelConfig(n_layers=1, n_heads=1, n_mlps=1), TrainConfig(steps=1, restarts=1)
        spec = DataSpec(("x",), ("y",), (1.0,), 1.0, 4)
        cfg = {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "source": "task:Sum_Last2",
            "dataset": "Sum_Last2",
            "kind": "discrete",
            "seed": 0,
            "data_seed": 0,
            "model": to_dict(mc),
            "train": to_dict(tc),
        }
        atomic_write_json(run / CONFIG_FILE, cfg)
        save_run_checkpoint(run, DiscreteTransformer(mc, spec, population=1, seed=0), mc, tc, spec)
        val = {"exact": 0.0, "nmse": 1.0, "score": 1.0}
        atomic_write_json(
            run / RESULT_FILE,
            {
                "format": RUN_FORMAT,
                "version": RUN_VERSION,
                "source": "task:Sum_Last2",
                "kind": "discrete",
                "seed": 0,
                "best_seed": 0,
                "val": val,
                "test": {"exact": 0.0, "nmse": 1.0, "n": 1},
                "solved_val": False,
                "steps": 1,
                "seconds": 0.0,
                "restarts": [
                    {"seed": 0, "best_member": 0, "val": val, "steps_run": 1, "seconds": 0.0, "stopped_early": False}
                ],
            },
        )
        if edit is not None:
            edit(run)

    return make


def _flip_byte(run: Path) -> None:
    p = run / "model.safetensors"
    b = bytearray(p.read_bytes())
    b[-5] ^= 0xFF
    p.write_bytes(bytes(b))


def _truncate(run: Path) -> None:
    p = run / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-40])


def _pickle_weights(run: Path) -> None:
    """Replace the weights by a pickle (and fix up the recorded hash, as an attacker would)."""
    blob = pickle.dumps({"w": [1.0, 2.0]})
    (run / "model.safetensors").write_bytes(blob)
    meta = json.loads((run / "model.json").read_text(encoding="utf-8"))
    meta["weights"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (run / "model.json").write_text(json.dumps(meta), encoding="utf-8")


def _checkpoint_version(run: Path) -> None:
    meta = json.loads((run / "model.json").read_text(encoding="utf-8"))
    meta["version"] = 99
    (run / "model.json").write_text(json.dumps(meta), encoding="utf-8")


def _unfinished(run: Path) -> None:
    (run / "result.json").unlink()


def _config_json_only(name: str) -> Setup:
    return _text(name, "{}")


# ----------------------------------------------------------------------------- the cases

T = ("train",)
OUT = ("--out", "o")


def _cases() -> list[Case]:
    big = np.full((6, 4), 1e12)
    c = Case
    return [
        # --- data files
        c(
            "npz-missing-key",
            ".npz without `y_test`",
            T + ("data.npz",) + OUT,
            _npz(y_test=None),
            ("data.npz", "y_test", "missing"),
        ),
        c(
            "npz-wrong-rank",
            ".npz `x_train` of rank 4",
            T + ("data.npz",) + OUT,
            _npz(x_train=np.zeros((6, 4, 1, 1))),
            ("data.npz", "x_train", "dimensions", "got 4"),
        ),
        c(
            "npz-rank-1",
            ".npz `y_train` of rank 1",
            T + ("data.npz",) + OUT,
            _npz(y_train=np.zeros(6)),
            ("data.npz", "y_train", "dimensions", "got 1"),
        ),
        c(
            "npz-channels-mismatch",
            ".npz train with 1 input channel, test with 2",
            T + ("data.npz",) + OUT,
            _npz(x_test=np.zeros((3, 4, 2))),
            ("data.npz", "x_test", "channel"),
        ),
        c(
            "npz-T-mismatch",
            ".npz train T=4, test T=5",
            T + ("data.npz",) + OUT,
            _npz(x_test=np.zeros((3, 5)), y_test=np.zeros((3, 5))),
            ("data.npz", "x_test", "T"),
        ),
        c(
            "npz-n-mismatch",
            ".npz `x_train` has 6 sequences, `y_train` 5",
            T + ("data.npz",) + OUT,
            _npz(y_train=np.zeros((5, 4))),
            ("data.npz", "y_train", "sequences"),
        ),
        c(
            "npz-nan",
            ".npz with a NaN in `x_train`",
            T + ("data.npz",) + OUT,
            _npz(x_train=np.where(np.eye(6, 4) > 0, np.nan, 1.0)),
            ("data.npz", "x_train", "NaN"),
        ),
        c(
            "npz-inf",
            ".npz with +inf in `y_test`",
            T + ("data.npz",) + OUT,
            _npz(y_test=np.full((3, 4), np.inf)),
            ("data.npz", "y_test", "inf"),
        ),
        c(
            "npz-empty",
            ".npz with 0 training sequences",
            T + ("data.npz",) + OUT,
            _npz(x_train=np.zeros((0, 4)), y_train=np.zeros((0, 4))),
            ("data.npz", "x_train", "empty"),
        ),
        c(
            "npz-one-train",
            ".npz with 1 training sequence",
            T + ("data.npz",) + OUT,
            _npz(x_train=np.zeros((1, 4)), y_train=np.zeros((1, 4))),
            ("data.npz", "x_train", "at least 2"),
        ),
        c(
            "npz-T-one",
            ".npz with T = 1",
            T + ("data.npz",) + OUT,
            _npz(x_train=np.zeros((6, 1)), y_train=np.zeros((6, 1)), x_test=np.zeros((3, 1)), y_test=np.zeros((3, 1))),
            ("data.npz", "x_train", "T"),
        ),
        c(
            "npz-huge",
            ".npz with magnitudes 1e12",
            T + ("data.npz",) + OUT,
            _npz(x_train=big),
            ("data.npz", "x_train", "1e+12"),
        ),
        c(
            "npz-int-overflow",
            ".npz int64 values near 2**63",
            T + ("data.npz",) + OUT,
            _npz(y_train=np.full((6, 4), 2**63 - 1, dtype=np.int64)),
            ("data.npz", "y_train"),
        ),
        c(
            "npz-strings",
            ".npz `x_train` of strings",
            T + ("data.npz",) + OUT,
            _npz(x_train=np.full((6, 4), "a")),
            ("data.npz", "x_train", "dtype"),
        ),
        c(
            "npz-complex",
            ".npz `x_train` of complex numbers",
            T + ("data.npz",) + OUT,
            _npz(x_train=np.ones((6, 4), dtype=complex)),
            ("data.npz", "x_train", "complex"),
        ),
        c(
            "npz-object-pickle",
            ".npz holding an object array (needs pickle)",
            T + ("data.npz",) + OUT,
            _object_npz,
            ("data.npz", "pickle"),
        ),
        c(
            "npz-garbage",
            ".npz that is not a zip archive",
            T + ("data.npz",) + OUT,
            _bytes("data.npz", b"hello, not a zip\n"),
            ("data.npz", "not"),
            library_detail=True,
        ),
        c(
            "csv-non-numeric",
            ".csv with `abc` in an x cell",
            T + ("data.csv",) + OUT,
            _text("data.csv", CSV_OK.replace("train,0,1,2,3", "train,0,1,abc,3")),
            ("data.csv", "line 3", "abc"),
        ),
        c(
            "csv-nan",
            ".csv with `nan` in a y cell",
            T + ("data.csv",) + OUT,
            _text("data.csv", CSV_OK.replace("test,0,1,1,3", "test,0,1,1,nan")),
            ("data.csv", "line 5", "y"),
        ),
        c(
            "csv-missing-column",
            ".csv header without `t`",
            T + ("data.csv",) + OUT,
            _text("data.csv", "split,seq,x,y\ntrain,0,1,1\n"),
            ("data.csv", "t"),
        ),
        c("csv-empty", "empty .csv", T + ("data.csv",) + OUT, _text("data.csv", ""), ("data.csv", "empty")),
        c(
            "csv-ragged-row",
            ".csv row with an extra cell",
            T + ("data.csv",) + OUT,
            _text("data.csv", CSV_OK.replace("train,0,1,2,3", "train,0,1,2,3,9")),
            ("data.csv", "line 3", "cells"),
        ),
        c(
            "csv-missing-position",
            ".csv sequence without position t=1",
            T + ("data.csv",) + OUT,
            _text("data.csv", CSV_OK.replace("test,0,1,1,3\n", "")),
            ("data.csv", "seq", "position"),
        ),
        c(
            "csv-not-utf8",
            ".csv that is not UTF-8 text",
            T + ("data.csv",) + OUT,
            _bytes("data.csv", b"split,seq,t,x,y\n\xff\xfe\x00bad\n"),
            ("data.csv", "UTF-8"),
        ),
        c(
            "jsonl-syntax",
            ".jsonl with a broken line",
            T + ("data.jsonl",) + OUT,
            _text("data.jsonl", '{"split": "train", "x": [1, 2], "y": [1, 3]}\n{"split": "test", "x": [1, \n'),
            ("data.jsonl", "line 2", "JSON"),
        ),
        c(
            "jsonl-ragged",
            ".jsonl whose x and y lengths differ",
            T + ("data.jsonl",) + OUT,
            _text(
                "data.jsonl",
                '{"split": "train", "x": [1, 2, 3], "y": [1, 3]}\n{"split": "test", "x": [1, 2], "y": [1, 3]}\n',
            ),
            ("data.jsonl", "line 1", "y"),
        ),
        c(
            "jsonl-non-numeric",
            ".jsonl with a string where a number belongs",
            T + ("data.jsonl",) + OUT,
            _text(
                "data.jsonl",
                '{"split": "train", "x": [1, "two"], "y": [1, 3]}\n{"split": "test", "x": [1, 2], "y": [1, 3]}\n',
            ),
            ("data.jsonl", "line 1", "x"),
        ),
        c(
            "wrong-extension",
            "a .txt file",
            T + ("data.txt",) + OUT,
            _text("data.txt", "1,2,3\n"),
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
            _dir("data.npz"),
            ("data.npz", "directory"),
        ),
        c(
            "kind-discrete-real",
            "--kind discrete on real-valued targets",
            T + ("data.npz", "--kind", "discrete") + OUT,
            _npz(y_train=np.full((6, 4), 0.5)),
            ("data.npz", "y_train", "integer"),
        ),
        # --- options
        c(
            "unknown-task",
            "a misspelt task name",
            T + ("sum_lst2",) + OUT,
            lambda d: None,
            ("sum_lst2", "did you mean", "Sum_Last2"),
        ),
        c(
            "steps-zero",
            "--steps 0",
            T + ("sum_last2", "--steps", "0") + OUT,
            lambda d: None,
            ("--steps", "positive", "0"),
        ),
        c(
            "steps-negative",
            "--steps -5",
            T + ("sum_last2", "--steps", "-5") + OUT,
            lambda d: None,
            ("--steps", "positive", "-5"),
        ),
        c(
            "restarts-zero",
            "--restarts 0",
            T + ("sum_last2", "--restarts", "0") + OUT,
            lambda d: None,
            ("--restarts", "positive", "0"),
        ),
        c(
            "kind-unknown",
            "--kind banana",
            T + ("sum_last2", "--kind", "banana") + OUT,
            lambda d: None,
            ("--kind", "banana"),
        ),
        c(
            "out-not-a-run",
            "--out an existing directory holding other files",
            T + ("sum_last2", "--out", "mine"),
            _dir("mine", "notes.txt"),
            ("--out mine", "not a run directory"),
        ),
        c(
            "out-run-no-force",
            "--out a previous run, without --force",
            T + ("sum_last2", "--out", "run"),
            _fake_run(),
            ("--out run", "--force"),
        ),
        c(
            "out-is-file",
            "--out an existing file",
            T + ("sum_last2", "--out", "notes.txt"),
            _text("notes.txt", "keep me\n"),
            ("--out notes.txt", "not a directory"),
        ),
        c("no-source", "`dtx train` with neither SOURCE nor --resume", T + OUT, lambda d: None, ("SOURCE", "--resume")),
        c(
            "resume-not-a-run",
            "--resume on a directory that is not a run",
            T + ("--resume", "mine"),
            _dir("mine", "notes.txt"),
            ("--resume mine", "not a run directory"),
        ),
        c(
            "resume-finished",
            "--resume on a run that already finished",
            T + ("--resume", "run"),
            _fake_run(),
            ("--resume run", "already finished"),
        ),
        c(
            "resume-missing",
            "--resume on a path that does not exist",
            T + ("--resume", "nowhere"),
            lambda d: None,
            ("--resume nowhere", "not found"),
        ),
        # --- extract / checkpoints
        c(
            "extract-not-a-run",
            "`extract` on a directory that is not a run",
            ("extract", "mine"),
            _dir("mine", "notes.txt"),
            ("mine", "not a run directory"),
        ),
        c(
            "extract-missing",
            "`extract` on a path that does not exist",
            ("extract", "nowhere"),
            lambda d: None,
            ("nowhere", "not found"),
        ),
        c(
            "extract-file",
            "`extract` on a file",
            ("extract", "notes.txt"),
            _text("notes.txt", "keep me\n"),
            ("notes.txt", "is a file"),
        ),
        c(
            "run-unknown-task",
            "`dtx run` with a misspelt task name",
            ("run", "max_sen") + OUT,
            lambda d: None,
            ("max_sen", "did you mean", "Max_Seen"),
        ),
        c(
            "run-steps-zero",
            "`dtx run --steps 0`",
            ("run", "sum_last2", "--steps", "0") + OUT,
            lambda d: None,
            ("--steps", "positive"),
        ),
        c(
            "run-bad-file",
            "`dtx run` on a .jsonl without a test split",
            ("run", "data.jsonl") + OUT,
            _text("data.jsonl", '{"split": "train", "x": [1, 2], "y": [1, 3]}\n'),
            ("data.jsonl", "test"),
        ),
        c(
            "resume-with-source",
            "--resume together with SOURCE",
            T + ("sum_last2", "--resume", "run"),
            _fake_run(),
            ("--resume", "SOURCE"),
        ),
        c(
            "extract-bad-config",
            "`extract` on a directory whose config.json is not a run's",
            ("extract", "mine"),
            _both(_dir("mine"), _config_json_only("mine/config.json")),
            ("mine", "not a run directory"),
        ),
        c(
            "checkpoint-byte-flipped",
            "run whose model.safetensors has one byte flipped",
            ("extract", "run"),
            _fake_run(edit=_flip_byte),
            ("run/model.safetensors", "SHA-256"),
        ),
        c(
            "checkpoint-truncated",
            "run whose model.safetensors is truncated",
            ("extract", "run"),
            _fake_run(edit=_truncate),
            ("run/model.safetensors", "SHA-256"),
        ),
        c(
            "checkpoint-pickle",
            "run whose weights were replaced by a pickle (hash updated)",
            ("extract", "run"),
            _fake_run(edit=_pickle_weights),
            ("run/model.safetensors", "not a readable safetensors file"),
            library_detail=True,
        ),
        c(
            "checkpoint-version",
            "run whose model.json has version 99",
            ("extract", "run"),
            _fake_run(edit=_checkpoint_version),
            ("run/model.json", "version 99"),
        ),
        c(
            "extract-unfinished",
            "`extract` on an interrupted run (no result.json)",
            ("extract", "run"),
            _fake_run(edit=_unfinished),
            ("run", "not finished", "--resume"),
        ),
    ]


CASES: tuple[Case, ...] = tuple(_cases())


# ----------------------------------------------------------------------------- running a case


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]

    @property
    def message(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[0] if len(lines) == 1 else "\n".join(lines)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` → SHA-256 of its bytes ("dir" for directories)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_case(case: Case, workdir: Path) -> Outcome:
    """Build the case in the empty `workdir` and run its command there (through the real CLI)."""
    from typer.testing import CliRunner

    workdir.mkdir(parents=True, exist_ok=True)
    case.setup(workdir)
    before = snapshot(workdir)
    env = {"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb", "DTX_DEBUG": ""}
    with contextlib.chdir(workdir):
        res = CliRunner().invoke(app, list(case.argv), env=env)
    after = snapshot(workdir)
    stderr = res.stderr
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        stderr += f"\nTraceback (escaped exception): {type(res.exception).__name__}: {res.exception}"
    return Outcome(res.exit_code, res.stdout, stderr, before, after)


__all__ = ["CASES", "Case", "Outcome", "run_case", "snapshot"]
