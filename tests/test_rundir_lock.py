"""A run directory belongs to one process at a time (see discrete_transformer.rundir_lock): a second
writer is refused with one line while the first runs, nothing of the first run is touched, two
owners started together cannot both win, and a killed owner leaves no stale lock behind."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bad_inputs import snapshot
from conftest import tiny_model, tiny_train
from typer.testing import CliRunner

import discrete_transformer as dtx
from discrete_transformer import api
from discrete_transformer.bench.bench import MARKER, plan_jobs
from discrete_transformer.bench.runner import BenchConfig
from discrete_transformer.cli import app
from discrete_transformer.rundir import RunDir
from discrete_transformer.rundir_lock import LOCK_FILE, hold

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "DTX_DEBUG": ""}
CLI = [sys.executable, "-c", "from discrete_transformer.cli import app; app()"]
CLI_ENV = {"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb", "DTX_DEBUG": ""}

HOLDER = """
import sys, time
from contextlib import ExitStack
from discrete_transformer.rundir_lock import hold
with ExitStack() as owned:
    for d in sys.argv[1:]:
        owned.enter_context(hold(d, "dtx train sum_last2"))
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run directory (tiny training), copied by the tests that change it."""
    out = tmp_path_factory.mktemp("lock") / "finished"
    dtx.train("prev1", out=out, model=tiny_model(), training=tiny_train(steps=5), progress=False)
    return out


def _copy(run: Path, dst: Path, finished: bool = True) -> Path:
    shutil.copytree(run, dst)
    if not finished:
        (dst / "result.json").unlink()
    return dst


def _cli(*argv: object):
    return CliRunner().invoke(app, [str(a) for a in argv], env=CLI_ENV)


def _read_line(proc: subprocess.Popen, expect: str) -> str:
    """The child's next line, which must start with `expect` (EOF: it died, show why)."""
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.startswith(expect), (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
    return line


@contextmanager
def _holder(*dirs: Path) -> Iterator[subprocess.Popen]:
    """Another process holding `dirs` until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *map(str, dirs)],
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _read_line(proc, "held")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _refused(res, where: Path, pid: int, command: str) -> None:
    """Exit 2 with one line naming the directory, 'in use', the holder's pid and command."""
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert f"{where}: " in lines[0] and "is in use by another dtx process" in lines[0], lines[0]
    assert f"(pid {pid}, {command}, since " in lines[0], lines[0]


def test_a_second_writer_is_refused_while_the_first_runs(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path / "run")
    unfinished = _copy(finished, tmp_path / "unfinished", finished=False)
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / MARKER).write_text(json.dumps({"format": "dtx-bench-dir", "version": 1, "overrides": []}))
    with _holder(run, unfinished, bench) as holder:
        before = snapshot(tmp_path)
        for argv in (
            ("train", "prev1", "--out", run, "--force", "--steps", "5", "--restarts", "1"),
            ("run", "prev1", "--out", run, "--force", "--steps", "5", "--restarts", "1"),
            ("extract", run),
            ("report", run),
            ("analyze", run),
        ):
            _refused(_cli(*argv), run, holder.pid, "dtx train sum_last2")
        _refused(_cli("train", "--resume", unfinished), unfinished, holder.pid, "dtx train sum_last2")
        res = _cli("bench", "prev1", "--out", bench, "--max-steps", "1", "--baseline-steps", "1")
        assert res.exit_code == 2 and f"{bench}: bench directory is in use" in res.stderr, res.stderr
        # the Python API is protected the same way
        with pytest.raises(api.RunDirError, match="run directory is in use"):
            dtx.train("prev1", out=run, force=True, training=tiny_train(steps=5), progress=False)
        with pytest.raises(api.RunDirError, match="run directory is in use"):
            dtx.extract(run)
        with pytest.raises(api.RunDirError, match="run directory is in use"):
            api.resume(unfinished, progress=False)
        assert snapshot(tmp_path) == before, "a refused command changed the directory"


def test_a_killed_training_leaves_no_stale_lock(tmp_path: Path) -> None:
    """The issue's case: `dtx train --out D` running, `dtx train OTHER --out D --force` must not
    empty D under it. After the first is killed (SIGKILL: no clean-up), D is usable at once."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, (120, 4))
    np.savez(tmp_path / "d.npz", x_train=x[:100], y_train=x[:100], x_test=x[100:], y_test=x[100:])
    run = tmp_path / "run"
    first = subprocess.Popen(
        CLI + ["train", "d.npz", "--out", "run", "--steps", "100000", "--restarts", "1"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (run / "config.json").is_file():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "training did not start within 60 s"
            time.sleep(0.05)
        config = (run / "config.json").read_bytes()
        _refused(_cli("train", "prev1", "--out", run, "--force", "--steps", "5"), run, first.pid, "dtx train d.npz")
        _refused(_cli("extract", run), run, first.pid, "dtx train d.npz")
        assert (run / "config.json").read_bytes() == config  # still the first run's
        assert first.poll() is None  # and the first run goes on
    finally:
        first.kill()
        first.communicate(timeout=30)
    assert (run / LOCK_FILE).is_file()  # SIGKILL: the file stays, the lock went with the process
    r = dtx.train("prev1", out=run, force=True, model=tiny_model(), training=tiny_train(steps=5), progress=False)
    assert "prev1" in r.source.lower()
    assert json.loads((run / "result.json").read_text())["source"] == r.source
    assert _cli("extract", run).exit_code == 0
    assert not (run / LOCK_FILE).exists()  # a command that ends normally removes it


def _race(out: str, go: Any, said: Any) -> None:
    """One racer (a forked process, so that it starts at once): own `out` as a new --out, the way
    `dtx train` does after its checks, and say whether it won."""
    plan = api.RunPlan(None, None, None, Path(out), 0, 0, 0.0)  # type: ignore[arg-type]  # data unused
    go.wait(30)
    try:
        with api.owning(plan, "racer"):
            said.put("won")
            time.sleep(1.0)
    except api.RunDirError as e:
        said.put(f"refused {e}")


def test_two_owners_of_one_new_directory_started_together_exactly_one_wins(tmp_path: Path) -> None:
    out = tmp_path / "new"
    ctx = mp.get_context("fork")
    go, said = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(out), go, said)) for _ in range(3)]
    for p in procs:
        p.start()
    go.set()
    try:
        outs = [said.get(timeout=30) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
    assert sum(s == "won" for s in outs) == 1, outs
    assert all(s == "won" or (s.startswith(f"refused {out}: ") and "in use" in s and "racer" in s) for s in outs), outs
    assert out.is_dir() and not (out / LOCK_FILE).exists()


def test_a_leftover_lock_file_is_not_content(finished: Path, tmp_path: Path) -> None:
    """A `.dtx.lock` without a holder (its process was killed) changes nothing: an otherwise empty
    --out is still new, a run is still a run for --force, extract and resume."""
    stale = json.dumps({"pid": 2**22 + 1, "command": "dtx train gone", "since": 0})
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / LOCK_FILE).write_text(stale)
    assert api.check_out_dir(empty) == empty
    assert len(plan_jobs(["prev1"], 1, empty, BenchConfig())) == 1

    run = _copy(finished, tmp_path / "run")
    (run / LOCK_FILE).write_text(stale)
    assert api.check_out_dir(run, force=True) == run
    res = _cli("extract", run)
    assert res.exit_code == 0, res.stderr
    assert (run / "program.py").is_file() and not (run / LOCK_FILE).exists()

    unfinished = _copy(finished, tmp_path / "unfinished", finished=False)
    (unfinished / LOCK_FILE).write_text(stale)
    resumed = api.resume(unfinished, progress=False)  # the kept restart: nothing to train again
    assert (unfinished / "result.json").is_file() and resumed.best.seed == 0
    assert not (unfinished / LOCK_FILE).exists()


def test_force_keeps_the_lock_file_and_holds_are_reentrant(tmp_path: Path) -> None:
    """The --force wipe must not delete the lock (another process could then lock a new file);
    a nested hold in the owning process (`dtx extract` → api.extract) is a no-op."""
    d = tmp_path / "d"
    (d / "restarts").mkdir(parents=True)
    (d / "config.json").write_text("{}")
    with hold(d, "outer"):
        with hold(d, "inner"):
            RunDir(d).clear()
            assert [p.name for p in d.iterdir()] == [LOCK_FILE]
        assert json.loads((d / LOCK_FILE).read_text())["command"] == "outer"
    assert list(d.iterdir()) == []
    with hold(d, "again"):  # released: the next owner gets it
        pass


def test_a_lock_file_that_is_a_link_is_refused_not_truncated(tmp_path: Path) -> None:
    """A run directory from elsewhere whose `.dtx.lock` links to another file: the holder's
    details would overwrite that file, so the directory is refused instead."""
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    for i, link in enumerate((os.symlink, os.link)):
        d = tmp_path / f"d{i}"
        d.mkdir()
        link(precious, d / LOCK_FILE)
        with pytest.raises(api.RunDirError, match="not a plain lock file"), hold(d, "x"):
            pass
    assert precious.read_text() == "keep me\n"
