"""Bad inputs through the real CLI: one line naming file/option, field and problem; non-zero exit;
no traceback; nothing written or overwritten. The cases live in ``tests/bad_inputs/``
(shared with ``tests/errors_doc.py``, the generator of docs/errors.md)."""

from __future__ import annotations

import os
from pathlib import Path

import errors_doc
import pytest
from bad_inputs import CASES, Case, run_case
from bad_inputs.builders import npz
from typer.testing import CliRunner

from discrete_transformer import api
from discrete_transformer.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def test_at_least_thirty_distinct_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.argv + (c.input,) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case: Case, tmp_path: Path) -> None:
    out = run_case(case, tmp_path / "work")
    assert out.exit_code != 0, out.stdout
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    msg = lines[0]
    assert msg.startswith("error: "), msg
    for fragment in case.expect:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    assert out.after == out.before, "the command wrote or changed files"


def test_errors_doc_is_up_to_date() -> None:
    """docs/errors.md is exactly what the generator writes today (so it cannot drift)."""
    expected = errors_doc.render()
    assert DOC.is_file(), f"missing {DOC}; run: {errors_doc.COMMAND}"
    current = DOC.read_text(encoding="utf-8")
    assert errors_doc.normalise(current) == errors_doc.normalise(expected), (
        f"{DOC} is out of date; run: {errors_doc.COMMAND}"
    )
    assert len(current.splitlines()) == len(expected.splitlines())


def test_drift_check_ignores_only_dependency_wording() -> None:
    row = "| 1 | `checkpoint-pickle` | x | `dtx extract run` | 2 | `error: run/model.safetensors: bad (lib says A)` |"
    assert errors_doc.normalise(row) == errors_doc.normalise(row.replace("lib says A", "lib says B"))
    assert errors_doc.normalise(row) != errors_doc.normalise(row.replace(": bad", ": worse"))
    other = row.replace("checkpoint-pickle", "npz-missing-key")
    assert errors_doc.normalise(other) != errors_doc.normalise(other.replace("lib says A", "lib says B"))


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    """Permission denied (not part of the doc table: root can read anything)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop reads")
    case = Case("unreadable", "", ("train", "data.npz", "--out", "o"), npz(), ("data.npz",))

    def setup(d: Path) -> None:
        npz()(d)
        os.chmod(d / "data.npz", 0)

    out = run_case(Case(case.id, "", case.argv, setup, case.expect), tmp_path / "w")
    assert out.exit_code == 2 and "Traceback" not in out.stderr
    assert out.message.startswith("error: ") and "data.npz" in out.message and "\n" not in out.message


def test_unexpected_exception_is_one_line_unless_debug(tmp_path: Path, monkeypatch) -> None:
    """A bug (not bad input) is reported in one line with exit 1, and DTX_DEBUG=1 re-raises it."""

    def boom(*a, **k):
        raise ZeroDivisionError("synthetic bug")

    monkeypatch.setattr(api, "prepare", boom)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["train", "sum_last2", "--out", "o"], env={"DTX_DEBUG": ""})
    assert res.exit_code == 1
    assert "unexpected ZeroDivisionError: synthetic bug" in res.stderr and "DTX_DEBUG=1" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    res = CliRunner().invoke(app, ["train", "sum_last2", "--out", "o"], env={"DTX_DEBUG": "1"})
    assert isinstance(res.exception, ZeroDivisionError)
    assert not (tmp_path / "o").exists()
