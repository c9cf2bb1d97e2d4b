"""The `dtx` command line: listing, a tiny training run, and one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train
from typer.testing import CliRunner

from discrete_transformer import api
from discrete_transformer.cli import app
from discrete_transformer.tasks import TASKS, Dataset, save_npz

RUN_FILES = {"config.json", "metrics.jsonl", "model.json", "model.safetensors", "result.json"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def tiny_defaults(monkeypatch) -> None:
    """`dtx train` builds TrainConfig() from the defaults; make those tiny for unit tests
    (--steps and --restarts still override them, as on the real command line)."""
    monkeypatch.setattr(api, "TrainConfig", lambda: tiny_train(restarts=2))


def _error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_tasks_lists_every_task(runner: CliRunner) -> None:
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    rows = [ln for ln in result.stdout.splitlines() if ln.startswith("│")]
    assert len(rows) == len(TASKS) == 47
    for t in TASKS:
        assert any(row.split("│")[1].strip() == t.name for row in rows), t.name
    assert "Sum_Last2" in result.stdout and "Kinematics_1D" in result.stdout
    assert "continuous" in result.stdout and "mips" in result.stdout


def test_train_tiny_run_writes_the_run_directory(runner: CliRunner, tiny_defaults, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "sum_last2"
    result = runner.invoke(
        app, ["train", "SUM_LAST2", "--out", str(out), "--steps", "20", "--restarts", "1", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert "task:Sum_Last2" in result.stdout
    assert "exact match" in result.stdout and "10000" in result.stdout
    res = json.loads((out / "result.json").read_text())
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["steps"] == 20 and cfg["train"]["restarts"] == 1 and cfg["seed"] == 4
    assert res["best_seed"] == 4 and res["test"]["n"] == 10000
    assert set(cfg["versions"]) == {"python", "torch", "numpy", "discrete_transformer"}
    again = api.load_run(out)
    assert again.test == res["test"]


def test_train_from_a_data_file_with_kind(runner: CliRunner, tiny_defaults, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(300, 5))
    y = np.cumsum(x, axis=1)
    path = tmp_path / "cumsum.npz"
    save_npz(Dataset("cumsum", "continuous", x[:250], y[:250], x[250:], y[250:], ("x",), ("y",), str(path)), path)
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(path), "--out", str(out), "--steps", "10", "--restarts", "1", "--kind", "continuous"]
    )
    assert result.exit_code == 0, result.output
    assert "normalised MSE" in result.stdout
    assert json.loads((out / "config.json").read_text())["kind"] == "continuous"
    assert json.loads((out / "result.json").read_text())["test"]["n"] == 50


def test_unknown_task_suggests_names(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "sum_lst2", "--out", str(out)])
    assert result.exit_code == 2
    line = _error_line(result)
    assert "unknown task" in line and "Sum_Last2" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "-5"], "--steps"),
        (["--restarts", "0"], "--restarts"),
        (["--kind", "categorical"], "--kind"),
    ],
)
def test_bad_option_values(runner: CliRunner, tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "sum_last2", "--out", str(out), *args])
    assert result.exit_code == 2
    assert needle in _error_line(result)
    assert not out.exists()


def test_bad_data_file(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive")
    missing = tmp_path / "missing.csv"
    for path in (bad, missing):
        result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "run")])
        assert result.exit_code == 2
        assert path.name in _error_line(result)
    assert not (tmp_path / "run").exists()


def test_out_that_is_not_a_run_dir_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    result = runner.invoke(app, ["train", "sum_last2", "--out", str(out), "--steps", "5"])
    assert result.exit_code == 2
    assert "not a run directory" in _error_line(result)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    # --force does not change that: only a previous run directory may be overwritten.
    result = runner.invoke(app, ["train", "sum_last2", "--out", str(out), "--steps", "5", "--force"])
    assert result.exit_code == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

    afile = tmp_path / "file.txt"
    afile.write_text("x")
    result = runner.invoke(app, ["train", "sum_last2", "--out", str(afile)])
    assert result.exit_code == 2
    assert "not a directory" in _error_line(result)
    assert afile.read_text() == "x"


def test_existing_run_dir_needs_force(runner: CliRunner, tiny_defaults, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "prev2", "--out", str(out), "--steps", "5", "--restarts", "1"]
    assert runner.invoke(app, args).exit_code == 0
    first = (out / "result.json").read_text()
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--force" in _error_line(result)
    assert (out / "result.json").read_text() == first
    result = runner.invoke(app, [*args, "--force", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "result.json").read_text())["best_seed"] == 7


def test_empty_existing_directory_is_accepted(runner: CliRunner, tiny_defaults, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    result = runner.invoke(app, ["train", "prev1", "--out", str(out), "--steps", "5", "--restarts", "1"])
    assert result.exit_code == 0, result.output
    assert RUN_FILES <= {p.name for p in out.iterdir()}


def test_help_lists_commands(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "tasks" in result.stdout and "train" in result.stdout
    result = runner.invoke(app, ["train", "--help"])
    for opt in ("--out", "--seed", "--restarts", "--steps", "--kind", "--force"):
        assert opt in result.stdout


def test_version(runner: CliRunner) -> None:
    """`dtx --version` prints the package version (it said "Missing command" before)."""
    from discrete_transformer.version import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"dtx {__version__}"
