"""Names from user data (CSV / JSONL / npz headers, file names) never reach the program as code.

The model is the hand-built Sum_Last2 model of extract_helpers (no training): its data arrives
through a real file whose header and file name are hostile, and the whole pipeline runs."""

from __future__ import annotations

import ast
import io
import keyword
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest
from extract_helpers import sum_last2_model

import discrete_transformer as dtx
from discrete_transformer.api import TrainResult
from discrete_transformer.config import TrainConfig
from discrete_transformer.extraction import codegen
from discrete_transformer.extraction.graph import RESERVED_NAMES, sanitize, unique_name
from discrete_transformer.extraction.pipeline import load_module
from discrete_transformer.tasks import (
    Dataset,
    load_file,
    make_dataset,
    save_csv,
    save_jsonl,
    save_npz,
)
from discrete_transformer.training.loop import RestartResult

INJECTIONS = [
    ("x\"\"\"\n__import__('os').system('echo pwned') #", "y'''\nimport os"),
    ("__import__('os')", 'exec("print(1)")'),
    ("class", "lambda"),
    ("naïve ΔT\u2028名", "résultat\r\n# -*- coding: latin-1 -*-"),
    ("'); import sys; ('", "\\\\\n\\"),
]
SAVE = {"csv": save_csv, "jsonl": save_jsonl, "npz": save_npz}
# Fragments of the injected text that must not appear in any string or comment of the program
# (identifiers made from them, like `x_import_os_system`, are harmless and allowed).
DANGER = ("__import__(", "import os", "import sys", "system(", "exec(", "print(1)", "'pwned", "-*-", '"""')
FORBIDDEN = {
    "__import__",
    "os",
    "sys",
    "system",
    "exec",
    "eval",
    "print",
    "open",
    "compile",
    "getattr",
    "class",
    "lambda",
    "__builtins__",
}


def _code_and_comments(src: str) -> tuple[str, list[str]]:
    """Everything after the module docstring, and every comment token in the file."""
    tree = ast.parse(src)
    doc_end = tree.body[0].end_lineno  # the docstring statement
    lines = src.splitlines()
    code = "\n".join(lines[doc_end:])
    comments = [t.string for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type == tokenize.COMMENT]
    return code, comments


def _result(ds: Dataset) -> TrainResult:
    """The hand-set weights, in a model whose data spec carries the hostile names."""
    import dataclasses

    from discrete_transformer.model import DiscreteTransformer
    from discrete_transformer.training.loop import data_spec

    clean, cfg, _ = sum_last2_model(dataclasses.replace(ds, input_names=("x",), output_names=("y",)))
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    model = DiscreteTransformer(cfg, spec, population=1, seed=0)
    model.load_state_dict(clean.state_dict())
    model.eval()
    best = RestartResult(seed=0, best_member=0, val={}, steps_run=0, seconds=0.0, stopped_early=False, state={})
    return TrainResult(
        dataset=ds,
        model=model,
        model_config=cfg,
        train_config=TrainConfig(steps=1, restarts=1),
        spec=spec,
        best=best,
        restarts=[best],
        test={},
        seconds=0.0,
        run_dir=None,
        source=ds.source,
        kind=ds.kind,
        seed=0,
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npz"])
@pytest.mark.parametrize(
    "names", INJECTIONS, ids=["quotes-newline", "import-call", "keywords", "unicode-crlf", "quote-backslash"]
)
def test_hostile_header_and_file_name_give_a_safe_program(tmp_path: Path, fmt: str, names: tuple[str, str]) -> None:
    evil_in, evil_out = names
    base = make_dataset("Sum_Last2", seed=0, n_test=200)
    ds = Dataset(
        "evil",
        "discrete",
        base.x_train[:300],
        base.y_train[:300],
        base.x_test,
        base.y_test,
        (evil_in,),
        (evil_out,),
        "unused",
    )
    path = tmp_path / f'evil"""\n__import__(\'os\') é.{fmt}'  # a hostile file name too
    SAVE[fmt](ds, path)
    loaded = load_file(path)
    assert loaded.input_names == (evil_in,) and loaded.output_names == (evil_out,)  # the names do arrive

    program = dtx.extract(_result(loaded))
    src = program.source
    compile(src, "program.py", "exec")
    mod = load_module(src)
    assert program.verified, program.verification.lines()
    X = loaded.x_test[:50]
    want = X[:, :, 0] + np.concatenate([np.zeros((50, 1)), X[:, :-1, 0]], axis=1)
    np.testing.assert_array_equal(mod.run_batch(X)[:, :, 0], want)
    assert [mod.program(list(r)) for r in X[:5, :, 0]] == [list(w) for w in want[:5]]

    code, comments = _code_and_comments(src)
    tree = ast.parse(src)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert imported <= {"math", "numpy"}, imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not (names | attrs) & FORBIDDEN, (names | attrs) & FORBIDDEN
    assert not any(isinstance(n, ast.Lambda) for n in ast.walk(tree))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    for text in strings[1:] + comments:  # every string but the docstring, and every comment
        for frag in DANGER:
            assert frag not in text, f"{frag!r} reached a string or comment: {text!r}"
    for c in comments:
        assert all(32 <= ord(ch) < 127 for ch in c), c  # a comment cannot carry a line break out
    assert all(ord(ch) < 128 for ch in code)
    # The docstring records the raw names, escaped: ASCII, no quote that could close it.
    doc = ast.get_docstring(ast.parse(src), clean=False)
    assert codegen.escape_text(evil_in) in doc and codegen.escape_text(evil_out) in doc
    assert all(ord(ch) < 128 for ch in doc) and '"""' not in doc
    fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "program")
    (arg,) = [a.arg for a in fn.args.args]
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", arg) and not keyword.iskeyword(arg) and arg not in RESERVED_NAMES


@pytest.mark.parametrize("raw", [n for pair in INJECTIONS for n in pair])
def test_sanitized_names_are_plain_identifiers(raw: str) -> None:
    name = sanitize(raw)
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and not keyword.iskeyword(name)
    assert not keyword.issoftkeyword(name) and name not in RESERVED_NAMES


def test_duplicate_names_after_sanitising_stay_distinct() -> None:
    """`a b`, `a_b`, `a-b` all sanitise to `a_b`: the program still needs three variables."""
    taken = set(RESERVED_NAMES)
    got = [unique_name(sanitize(raw, "x"), taken) for raw in ("a b", "a_b", "a-b", "", "")]
    assert len(set(got)) == len(got) and got[:3] == ["a_b", "a_b_2", "a_b_3"]


def test_duplicate_csv_channel_names_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "dup.csv"
    p.write_text("split,seq,t,x:a,x:a,y\ntrain,0,0,1,1,1\ntrain,0,1,1,1,2\ntest,0,0,1,1,1\ntest,0,1,1,1,2\n")
    with pytest.raises(ValueError) as info:
        load_file(p)
    assert "dup.csv" in str(info.value) and "\n" not in str(info.value)
