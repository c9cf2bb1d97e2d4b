"""RunDir: the one owner of a run directory's layout and I/O (names on disk, atomic writes)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import discrete_transformer
from discrete_transformer import fileio
from discrete_transformer.rundir import RUN_FORMAT, RUN_VERSION, RunDir, RunDirError
from discrete_transformer.rundir_lock import LOCK_FILE

PACKAGE_DIR = Path(discrete_transformer.__file__).resolve().parent
RUN_FILE_NAMES = (
    "result.json",
    "config.json",
    "metrics.jsonl",
    "program.py",
    "verification.json",
    "bench_row.json",
    ".safetensors",
)


def _doc(**extra: object) -> dict:
    return {"format": RUN_FORMAT, "version": RUN_VERSION, **extra}


def test_layout_names_every_file_as_on_disk(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    assert RunDir(str(tmp_path)) == rd and rd.path == tmp_path  # a str is taken as a Path
    rel = {
        "config_path": "config.json",
        "result_path": "result.json",
        "metrics_path": "metrics.jsonl",
        "weights_path": "model.safetensors",
        "model_path": "model.json",
        "restarts_dir": "restarts",
        "program_path": "program.py",
        "verification_path": "verification.json",
        "row_path": "bench_row.json",
        "stop_path": "stop",
        "analysis_dir": "analysis",
        "dynamics_path": "analysis/dynamics.png",
        "transition_path": "analysis/transition.json",
        "report_path": "report.html",
        "lock_path": ".dtx.lock",
    }
    for attr, name in rel.items():
        assert getattr(rd, attr) == tmp_path / name, attr
    assert rd.seed_log(3) == tmp_path / "metrics_seed3.jsonl"
    assert rd.restart_files(4) == (tmp_path / "restarts/seed4.safetensors", tmp_path / "restarts/seed4.json")
    assert LOCK_FILE == ".dtx.lock"


def test_config_and_result_round_trip(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "new" / "run")
    assert not rd.is_run() and rd.config_dict() == {} and not rd.has_result()
    cfg = _doc(source="task:Prev1", seed=2, model={"n_layers": 1})
    rd.write_config(cfg)  # creates the directory
    assert rd.is_run() and rd.read_config() == cfg and rd.config_dict() == cfg
    res = _doc(best_seed=2, test={"exact": 1.0, "nmse": 0.0, "n": 10}, seconds=float("inf"))
    rd.write_result(res)
    assert rd.has_result() and rd.read_result() == res and rd.result_dict() == res
    text = rd.config_path.read_text(encoding="utf-8")
    assert text == json.dumps(cfg, indent=2, sort_keys=True) + "\n"  # the format on disk


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "file not found"),
        ("{not json", "corrupt JSON"),
        ('{"format": "other", "version": 1}', "not a discrete-transformer run file"),
        ('{"format": "dtx-run", "version": 99}', "unsupported run version 99"),
    ],
)
def test_strict_reads_raise_run_dir_error_lenient_reads_give_empty(tmp_path: Path, text: str | None, message) -> None:
    rd = RunDir(tmp_path)
    if text is not None:
        rd.result_path.write_text(text, encoding="utf-8")
    with pytest.raises(RunDirError, match=message):
        rd.read_result()
    expected = json.loads(text) if text and text.startswith('{"') else {}
    assert rd.result_dict() == expected


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rd = RunDir(tmp_path)
    rd.write_config(_doc(seed=0))
    rd.write_result(_doc(best_seed=0))
    rd.write_checkpoint(b"weights", {"format": "dtx-checkpoint"})
    rd.write_restart(1, b"restart weights", {"seed": 1})
    rd.write_program("def program():\n    pass\n", {"verified": True})
    rd.write_row({"format": "dtx-bench-row"})
    rd.write_analysis(b"png", {"format": "dtx-transition"})
    rd.write_report("<html></html>")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "analysis",
        "analysis/dynamics.png",
        "analysis/transition.json",
        "bench_row.json",
        "config.json",
        "model.json",
        "model.safetensors",
        "program.py",
        "report.html",
        "restarts",
        "restarts/seed1.json",
        "restarts/seed1.safetensors",
        "result.json",
        "verification.json",
    ]
    assert rd.read_program() == "def program():\n    pass\n" and rd.has_program()
    assert rd.restart_summaries() == [tmp_path / "restarts/seed1.json"]

    before = rd.config_path.read_bytes()

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        rd.write_config(_doc(seed=1))
    monkeypatch.undo()
    assert rd.config_path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_metrics_logs_merge_in_seed_order(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    assert rd.metrics_logs() == [] and rd.metrics_rows() == []
    rd.seed_log(1).write_text('{"seed": 1}\n', encoding="utf-8")
    rd.seed_log(0).write_text('{"seed": 0}', encoding="utf-8")  # a last line without its newline
    assert rd.metrics_logs() == [rd.seed_log(0), rd.seed_log(1)]  # an interrupted run's logs
    assert rd.merge_seed_logs([1, 0]) == rd.metrics_path
    assert rd.metrics_path.read_text(encoding="utf-8") == '{"seed": 0}\n{"seed": 1}\n'
    assert not rd.seed_log(0).exists() and rd.metrics_logs() == [rd.metrics_path]
    with rd.metrics_path.open("a", encoding="utf-8") as f:
        f.write('{"seed": 2, "torn\n')  # an unreadable line is skipped
    assert rd.metrics_rows() == [{"seed": 0}, {"seed": 1}]


def test_stop_file_and_bench_row(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    assert not rd.stop_requested() and rd.read_row() is None
    rd.request_stop()
    assert rd.stop_requested()
    rd.clear_stop()
    rd.clear_stop()  # already gone: no error
    assert not rd.stop_requested()
    rd.row_path.write_text("[1, 2]", encoding="utf-8")
    assert rd.read_row() is None  # not an object
    rd.write_row({"format": "dtx-bench-row", "task": "A"})
    assert rd.read_row() == {"format": "dtx-bench-row", "task": "A"}


def test_clear_keeps_only_the_lock_file(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    rd.write_config(_doc())
    rd.write_restart(0, b"w", {"seed": 0})
    rd.lock_path.write_text("{}", encoding="utf-8")
    assert sorted(p.name for p in rd.contents()) == ["config.json", "restarts"]
    rd.clear()
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_FILE]


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string in `path`'s code: docstrings and other bare string
    statements are prose, not code, and are left out (comments are not in the tree at all)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
    ]


def test_only_rundir_names_the_run_directory_files() -> None:
    """Every other module reaches a run directory's files through RunDir (or its constants)."""
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path == PACKAGE_DIR / "rundir.py":
            continue
        for line, text in _code_strings(path):
            offenders += [f"{path.relative_to(PACKAGE_DIR)}:{line}: {name}" for name in RUN_FILE_NAMES if name in text]
    assert not offenders, "run-directory file names outside rundir.py:\n" + "\n".join(offenders)
