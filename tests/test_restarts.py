"""Restarts: the best restart is returned, seeds are reproducible, the pool matches in-process
runs, one solved restart stops the others, and metrics land in one JSONL file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model, tiny_train

from discrete_transformer.training import restarts as R
from discrete_transformer.training.loop import RestartResult, Split, data_spec
from discrete_transformer.training.policy import ends_portfolio
from discrete_transformer.training.restarts import run_restarts
from discrete_transformer.verdict import RESTART_NMSE, solved


def _data(rule: str, n: int = 600, T: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, size=(n, T, 1)).astype(np.float64)
    if rule == "identity":
        y = x.copy()
    elif rule == "sum_last2":
        y = x + np.concatenate([np.zeros((n, 1, 1)), x[:, :-1]], axis=1)
    else:
        raise ValueError(rule)
    split = Split.from_arrays(x, y, "discrete", 100, seed)
    spec = data_spec(x, y, ("x",), ("y",))
    return split, spec


def _states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _sigint_default() -> None:
    """Run the child with SIGINT at its default, as in a terminal: a test runner started in the
    background of a non-interactive shell has SIGINT ignored, children inherit that, and Python
    then never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_pool_returns_the_best_and_merges_metrics(tmp_path: Path) -> None:
    split, spec = _data("sum_last2")
    cfg = tiny_train(restarts=2, stop_on_exact=False)
    best, results = run_restarts(tiny_model(), cfg, split, spec, seed=5, out_dir=tmp_path, progress=False)
    assert [r.seed for r in results] == [5, 6]
    scores = [r.val["score"] for r in results]
    assert best.val["score"] == min(scores)
    assert best.seed == min(results, key=lambda r: (r.val["score"], r.seed)).seed
    assert best in results
    assert all(isinstance(v, torch.Tensor) for v in best.state.values())

    # One metrics.jsonl, every row tagged with its seed, per-seed files merged and removed.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["seed"] for r in rows} == {5, 6}
    assert [r["seed"] for r in rows] == sorted(r["seed"] for r in rows)  # grouped by seed
    for key in ("step", "tau", "loss", "val_nmse", "val_exact", "selector_entropy", "attention_entropy"):
        assert all(key in r for r in rows), key

    # The pool (spawn, one thread per worker) computes exactly what an in-process run does.
    # (seed 6 is restart 1 of the pooled run: the solo run uses that restart's search variant)
    variant = (cfg.portfolio[1 % len(cfg.portfolio)],)
    solo, _ = run_restarts(
        tiny_model(),
        tiny_train(restarts=1, stop_on_exact=False, portfolio=variant),
        split,
        spec,
        seed=6,
        progress=False,
    )
    pooled = next(r for r in results if r.seed == 6)
    assert pooled.val == solo.val
    assert _states_equal(pooled.state, solo.state)


def test_same_seed_gives_identical_model() -> None:
    split, spec = _data("sum_last2")
    cfg = tiny_train(restarts=1)
    a, _ = run_restarts(tiny_model(), cfg, split, spec, seed=11, progress=False)
    b, _ = run_restarts(tiny_model(), cfg, split, spec, seed=11, progress=False)
    c, _ = run_restarts(tiny_model(), cfg, split, spec, seed=12, progress=False)
    assert a.val == b.val
    assert _states_equal(a.state, b.state)
    assert not _states_equal(a.state, c.state)


def _fake(scores: dict[int, float], solved: set[int] = frozenset()):
    calls: list[int] = []

    def train_restart(model_cfg, train_cfg, split, spec, seed, log_path=None, progress=None, **kw):
        calls.append(seed)
        row = {
            "step": 0,
            "tau": 1.0,
            "val_exact": 1.0 if seed in solved else 0.0,
            "val_nmse": scores[seed],
            "seed": seed,
        }
        if progress:
            progress(0, row)
        if log_path:
            with open(log_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        val = {"nmse": scores[seed], "exact": 1.0 if seed in solved else 0.0, "score": scores[seed]}
        return RestartResult(seed, 0, val, 1, 0.0, seed in solved, {"w": torch.tensor([float(seed)])}, [row])

    return train_restart, calls


def test_selection_lowest_score_ties_to_lower_seed(monkeypatch, tmp_path: Path) -> None:
    fake, calls = _fake({0: 0.5, 1: 0.2, 2: 0.2, 3: 0.9})
    monkeypatch.setattr(R, "train_restart", fake)
    split, spec = _data("sum_last2", n=50)
    best, results = run_restarts(
        tiny_model(), tiny_train(restarts=4), split, spec, seed=0, out_dir=tmp_path, progress=False, parallel=False
    )
    assert calls == [0, 1, 2, 3]
    assert best.seed == 1
    assert [r.seed for r in results] == [0, 1, 2, 3]
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4


def test_in_process_stops_after_a_solved_restart(monkeypatch) -> None:
    fake, calls = _fake({10: 0.5, 11: 0.0, 12: 0.0, 13: 0.1}, solved={11, 12})
    monkeypatch.setattr(R, "train_restart", fake)
    split, spec = _data("sum_last2", n=50)
    best, results = run_restarts(
        tiny_model(), tiny_train(restarts=4), split, spec, seed=10, progress=False, parallel=False
    )
    assert calls == [10, 11]
    assert best.seed == 11


def test_pool_early_stop_skips_queued_restarts(tmp_path: Path) -> None:
    """With one worker, the first restart solves the identity task at its first evaluation and
    sets the shared event: the queued restarts never train."""
    split, spec = _data("identity")
    cfg = tiny_train(restarts=3, steps=400)
    best, results = run_restarts(
        tiny_model(), cfg, split, spec, seed=0, out_dir=tmp_path, progress=False, max_workers=1
    )
    assert best.seed == 0 and best.val["exact"] == 1.0 and best.stopped_early
    assert [r.seed for r in results] == [0]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["seed"] for r in rows} == {0}


def test_plain_progress_lines_when_not_a_terminal(capsys) -> None:
    split, spec = _data("identity")
    # the arithmetic search solves identity within the tiny budget (the line says "solved")
    run_restarts(tiny_model(), tiny_train(restarts=1, portfolio=("arithmetic",)), split, spec, seed=0, progress=True)
    out = capsys.readouterr().out
    assert "restart seed 0" in out and "solved" in out
    run_restarts(tiny_model(), tiny_train(restarts=1), split, spec, seed=0, progress=False)
    assert capsys.readouterr().out == ""


def test_solved_criteria() -> None:
    assert solved("discrete", {"exact": 1.0, "nmse": 0.3}, RESTART_NMSE)
    assert not solved("discrete", {"exact": 0.999, "nmse": 0.0}, RESTART_NMSE)
    assert solved("continuous", {"exact": 0.0, "nmse": 1e-8}, RESTART_NMSE)
    assert not solved("continuous", {"exact": 1.0, "nmse": 1e-3}, RESTART_NMSE)


def test_a_continuous_restart_within_the_verification_tolerance_ends_the_portfolio(monkeypatch) -> None:
    """A restart's own target is RESTART_NMSE (1e-7); no further restart starts once one is
    within CONTINUOUS_NMSE (1e-6, the verification rule), but one at 2e-6 does not end it."""
    fake, calls = _fake({0: 5e-7, 1: 1e-9})
    monkeypatch.setattr(R, "train_restart", fake)
    x = np.random.default_rng(0).uniform(-1, 1, size=(50, 6, 1))
    split, spec = Split.from_arrays(x, x, "continuous", 10, 0), data_spec(x, x, ("x",), ("y",))
    best, _ = run_restarts(tiny_model(), tiny_train(restarts=2), split, spec, seed=0, progress=False, parallel=False)
    assert calls == [0] and best.seed == 0 and not solved("continuous", best.val, RESTART_NMSE)
    fake, calls = _fake({0: 2e-6, 1: 1e-9})
    monkeypatch.setattr(R, "train_restart", fake)
    best, _ = run_restarts(tiny_model(), tiny_train(restarts=2), split, spec, seed=0, progress=False, parallel=False)
    assert calls == [0, 1] and best.seed == 1
    assert ends_portfolio("continuous", {"exact": 0.0, "nmse": 1e-6})
    assert not ends_portfolio("discrete", {"exact": 0.999, "nmse": 1e-12})


@pytest.mark.parametrize("K", [1, 2])
def test_every_restart_has_its_own_seed(K: int) -> None:
    split, spec = _data("sum_last2", n=200)
    best, results = run_restarts(
        tiny_model(),
        tiny_train(restarts=K, steps=5, stop_on_exact=False),
        split,
        spec,
        seed=3,
        progress=False,
        parallel=False,
    )
    assert [r.seed for r in results] == list(range(3, 3 + K))


def test_pool_solved_restart_stops_a_running_one(tmp_path: Path) -> None:
    """Seed 0 solves at once; seed 1, running in the other worker, must stop at its next poll of
    the shared event instead of running for its full 60 s."""
    from restart_fakes import even_seeds_solve

    split, spec = _data("sum_last2", n=50)
    t0 = __import__("time").perf_counter()
    best, results = run_restarts(
        tiny_model(),
        tiny_train(restarts=2),
        split,
        spec,
        seed=0,
        out_dir=tmp_path,
        progress=False,
        max_workers=2,
        train_fn=even_seeds_solve,
    )
    elapsed = __import__("time").perf_counter() - t0
    assert best.seed == 0 and best.val["exact"] == 1.0
    assert elapsed < 40
    for r in results:
        if r.seed == 1:  # it may also have been skipped before it started
            assert r.stopped_early and r.seconds < 30


SIGINT_SCRIPT = r"""
import sys
sys.path.insert(0, {tests!r})
import numpy as np
from conftest import tiny_model, tiny_train
from restart_fakes import never_finishes
from discrete_transformer.training.loop import Split, data_spec
from discrete_transformer.training.restarts import run_restarts

if __name__ == "__main__":
    x = np.zeros((40, 4, 1)); y = x.copy()
    split = Split.from_arrays(x, y, "discrete", 8, 0)
    spec = data_spec(x, y, ("x",), ("y",))
    try:
        run_restarts(tiny_model(), tiny_train(restarts=2), split, spec, 0, out_dir={out!r},
                     progress=False, train_fn=never_finishes)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        sys.exit(130)
    print("FINISHED", flush=True)
"""


def _group_alive(pgid: int) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(p.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to watch the process group")
def test_ctrl_c_stops_workers_without_tracebacks(tmp_path: Path) -> None:
    """SIGINT to the whole process group (what a terminal's Ctrl-C does): the parent re-raises
    KeyboardInterrupt promptly, the children print nothing and are all gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tests = str(Path(__file__).resolve().parent)
    script = tmp_path / "run.py"
    script.write_text(SIGINT_SCRIPT.format(tests=tests, out=str(tmp_path / "out")))
    import discrete_transformer

    src = str(Path(discrete_transformer.__file__).resolve().parents[1])  # works installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
        env=env,
        preexec_fn=_sigint_default,
    )
    try:
        deadline = time.monotonic() + 60
        logs = [tmp_path / "out" / f"metrics_seed{s}.jsonl" for s in (0, 1)]
        while not all(p.exists() and p.stat().st_size > 0 for p in logs):  # both workers running
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.1)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 15
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert "INTERRUPTED" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    time.sleep(0.5)
    assert _group_alive(proc.pid) == []
    assert (tmp_path / "out" / "metrics.jsonl").exists()  # logs merged on the way out


def test_restarts_cycle_through_the_portfolio_variants(monkeypatch) -> None:
    """Restart i runs TrainConfig.portfolio[i % len]: its model and training configs carry that
    variant's overrides, and the others are untouched."""
    seen: list[tuple[int, bool, bool, float]] = []
    fake, _ = _fake({0: 0.5, 1: 0.4, 2: 0.3})

    def recording(model_cfg, train_cfg, split, spec, seed, **kw):
        seen.append((seed, model_cfg.attention_sum, model_cfg.readout_gain, train_cfg.attention_st_from))
        return fake(model_cfg, train_cfg, split, spec, seed, **kw)

    monkeypatch.setattr(R, "train_restart", recording)
    split, spec = _data("sum_last2", n=50)
    cfg = tiny_train(restarts=3, portfolio=("plain", "arithmetic"))
    run_restarts(tiny_model(), cfg, split, spec, seed=0, progress=False, parallel=False)
    st = cfg.attention_st_from
    assert seen == [(0, False, False, st), (1, True, True, 0.2), (2, False, False, st)]


def _timed_fake(seconds: float):
    """Every restart takes `seconds` and reports it; the calls record each restart's time limit."""
    calls: list[tuple[int, float | None]] = []

    def train_restart(model_cfg, train_cfg, split, spec, seed, log_path=None, progress=None, **kw):
        import time

        calls.append((seed, train_cfg.time_limit))
        time.sleep(seconds)
        val = {"nmse": 0.5, "exact": 0.0, "score": 0.5}
        return RestartResult(seed, 0, val, 1, seconds, False, {"w": torch.tensor([float(seed)])}, [])

    return train_restart, calls


def test_a_budget_skips_the_restarts_that_would_not_end_within_it(monkeypatch) -> None:
    # 0.3 s restarts, a 0.7 s budget: restart 0 starts at 0 s, restart 1 at 0.3 s (0.6 <= 0.7),
    # restart 2 would end at 0.9 s: it and restart 3 are skipped; each runs under what is left
    fake, calls = _timed_fake(0.3)
    monkeypatch.setattr(R, "train_restart", fake)
    split, spec = _data("sum_last2", n=50)
    best, results = run_restarts(
        tiny_model(), tiny_train(restarts=4, budget=0.7), split, spec, seed=0, progress=False, parallel=False
    )
    assert [s for s, _ in calls] == [0, 1] and [r.seed for r in results] == [0, 1]
    assert 0.6 < calls[0][1] <= 0.7 and 0.3 < calls[1][1] <= 0.4
    fake, calls = _timed_fake(0.01)
    monkeypatch.setattr(R, "train_restart", fake)
    run_restarts(tiny_model(), tiny_train(restarts=4), split, spec, seed=0, progress=False, parallel=False)
    assert calls == [(0, None), (1, None), (2, None), (3, None)]  # no budget: every restart, no limit


def test_the_pool_skips_restarts_that_would_not_end_within_the_budget(tmp_path: Path) -> None:
    from restart_fakes import takes_two_seconds

    # restarts 0 and 1 start at once and end 2 s (plus the workers' start-up) into a 3 s budget:
    # 2 s more would end past it, so the workers skip restarts 2 and 3
    split, spec = _data("sum_last2", n=50)
    best, results = run_restarts(
        tiny_model(),
        tiny_train(restarts=4, budget=3.0),
        split,
        spec,
        seed=0,
        out_dir=tmp_path,
        progress=False,
        max_workers=2,
        train_fn=takes_two_seconds,
    )
    assert [r.seed for r in results] == [0, 1]


def test_a_budget_must_be_positive() -> None:
    from discrete_transformer.config import TrainConfig

    with pytest.raises(ValueError, match="budget"):
        TrainConfig(budget=0)
