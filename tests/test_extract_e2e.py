"""End to end: train small tasks, extract, verify (DESIGN §4). Few and fast: tasks the model
solves in a few hundred steps, one restart, a small population."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import discrete_transformer as dtx
from discrete_transformer import api
from discrete_transformer.cli import app
from discrete_transformer.config import TrainConfig
from discrete_transformer.extraction.pipeline import load_module
from discrete_transformer.extraction.verify import LONGER_FACTOR
from discrete_transformer.tasks import get_task

pytestmark = pytest.mark.slow

# The plain search: these tasks are its routing and max heads. With the default portfolio the one
# restart would be the arithmetic search, which misses Max_Seen with seed 0 (bench21: the plain
# restart solves it). 1200 steps: with the learned BOS offset (default since 2026-12-06) seed 0's
# Max_Seen model is 95.9 % exact after 800 steps, exact after 1200 (seeds 1 and 2 at 800).
FAST = dict(steps=1200, population=8, restarts=1, portfolio=("plain",))
TASKS = ["Bit_Shift_Right", "Max_Seen", "Current_Number", "Bitwise_Not"]


def _imports(source: str) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mods.add((node.module or "").split(".")[0])
    return mods


@pytest.fixture(scope="module")
def trained() -> dict[str, api.TrainResult]:
    return {t: dtx.train(t, seed=0, training=TrainConfig(**FAST), progress=False) for t in TASKS}


@pytest.mark.parametrize("task", TASKS)
def test_trained_task_extracts_to_a_verified_program(task: str, trained) -> None:
    result = trained[task]
    assert result.test["exact"] == 1.0, f"training no longer solves {task} with {FAST}: {result.test}"
    program = dtx.extract(result)
    v = program.verification
    assert v.verified, v.lines()
    assert v.test.exact == 1.0 and v.test.n == result.test["n"]
    assert v.longer is not None and v.longer.T == LONGER_FACTOR * result.spec.T
    assert v.python_agrees and v.python_checked > 0
    compile(program.source, "program.py", "exec")
    assert _imports(program.source) <= {"math", "numpy"}
    assert "def program(x):" in program.source and "def run_batch(X):" in program.source
    # Agreement with the model on random inputs from the task's domain.
    domain = np.array(get_task(task).domain)
    X = np.random.default_rng(1).choice(domain, size=(300, result.spec.T, 1))
    np.testing.assert_array_equal(np.round(program.run_batch(X)), np.round(result.predict(X)))
    assert [program.run(list(r)) for r in X[:5, :, 0]] == [list(y) for y in program.run_batch(X[:5])[:, :, 0]]


def test_program_is_short_and_names_what_it_computes(trained) -> None:
    body = lambda p: p.source[p.source.index("def program") : p.source.index("# NumPy fast path")]  # noqa: E731
    shift = dtx.extract(trained["Bit_Shift_Right"])
    assert "prev1_x = shift(x, 1)" in body(shift) and "# attention L" in body(shift)
    mx = dtx.extract(trained["Max_Seen"])
    assert "max_x = prefix_argmax(x, x" in body(mx)
    same = dtx.extract(trained["Current_Number"])
    assert "return list(x)" in body(same) and "def shift" not in same.source
    for p in (shift, mx, same):
        assert len([ln for ln in body(p).splitlines() if " = " in ln]) <= 3


def test_same_seed_gives_byte_identical_programs() -> None:
    a = dtx.extract(dtx.train("Current_Number", seed=3, training=TrainConfig(**FAST), progress=False))
    b = dtx.extract(dtx.train("Current_Number", seed=3, training=TrainConfig(**FAST), progress=False))
    assert a.source == b.source


def test_cli_run_then_extract(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", "current_number", "--out", str(out), "--steps", "800", "--restarts", "1"])
    assert res.exit_code == 0, res.output
    assert "def program(x):" in res.stdout and "VERIFIED" in res.stdout
    src = (out / "program.py").read_text()
    doc = json.loads((out / "verification.json").read_text())
    assert doc["verified"] is True and doc["kind"] == "discrete"
    assert doc["test"]["exact"] == 1.0 and doc["test"]["n"] == 10000
    assert doc["longer"]["available"] is True and doc["longer"]["T"] == 10 * LONGER_FACTOR
    assert doc["wider"]["available"] is True and doc["wider"]["passed"] is True  # y = x holds off-range
    # Re-extraction from the run directory writes the same program.
    res = runner.invoke(app, ["extract", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "program.py").read_text() == src
    mod = load_module(src)
    assert mod.program([4, 8, 15]) == [4, 8, 15]


def test_cli_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    for args in (
        ["run", "no_such_task", "--out", str(tmp_path / "a")],
        ["run", "prev1", "--out", str(tmp_path / "b"), "--steps", "0"],
        ["extract", str(tmp_path / "missing")],
        ["extract", str(tmp_path)],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
