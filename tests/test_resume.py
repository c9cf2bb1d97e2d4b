"""Nothing lost: finished restarts are kept, `dtx train --resume DIR` continues an interrupted run
(tested with real signals), and corrupted restart files are reported, never used."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from discrete_transformer import api
from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.model import DataSpec
from discrete_transformer.tasks import Dataset
from discrete_transformer.training.checkpoint import CheckpointError
from discrete_transformer.training.loop import RestartResult, Split
from discrete_transformer.training.restarts import run_restarts
from discrete_transformer.training.resume import (
    load_restarts,
    restart_paths,
    save_restart,
)

SRC = Path(__file__).resolve().parents[1] / "src"
SPEC = DataSpec(("x",), ("y",), (1.0,), 1.0, 3)


def _split() -> Split:
    x = np.zeros((10, 3, 1))
    return Split.from_arrays(x, x, "discrete", 2, 0)


def _fake(calls: list[int], interrupt_at: int | None = None):
    """A train_restart stand-in: seed s scores 1/(s+1); raises KeyboardInterrupt at `interrupt_at`."""

    def fn(
        model_cfg, train_cfg, split, spec, seed, log_path=None, progress=None, continuous_tol=1e-7, should_stop=None
    ):
        calls.append(seed)
        if seed == interrupt_at:
            raise KeyboardInterrupt
        row = {"step": 0, "tau": 1.0, "val_exact": 0.0, "val_nmse": 1.0, "seed": seed}
        if log_path:
            with open(log_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        val = {"nmse": 1.0 / (seed + 1), "exact": 0.0, "score": 1.0 / (seed + 1)}
        return RestartResult(seed, 0, val, 5, 0.1, False, {"w": torch.tensor([float(seed), 2.0])}, [row])

    return fn


def _sigint_default() -> None:
    """Run the child with SIGINT at its default, as in a terminal: a test runner started in the
    background of a non-interactive shell has SIGINT ignored, children inherit that, and Python
    then never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_finished_restarts_are_kept_and_reused(tmp_path: Path) -> None:
    cfg = TrainConfig(restarts=3, stop_on_exact=False)
    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        run_restarts(
            ModelConfig(),
            cfg,
            _split(),
            SPEC,
            0,
            out_dir=tmp_path,
            progress=False,
            parallel=False,
            train_fn=_fake(calls, interrupt_at=1),
            on_finished=lambda r: save_restart(tmp_path, r),
        )
    assert calls == [0, 1]
    kept = load_restarts(tmp_path)
    assert [r.seed for r in kept] == [0]
    assert torch.equal(kept[0].state["w"], torch.tensor([0.0, 2.0]))

    calls.clear()
    best, results = run_restarts(
        ModelConfig(),
        cfg,
        _split(),
        SPEC,
        0,
        out_dir=tmp_path,
        progress=False,
        parallel=False,
        train_fn=_fake(calls),
        finished=kept,
    )
    assert calls == [1, 2]  # seed 0 is not trained again
    assert [r.seed for r in results] == [0, 1, 2] and best.seed == 2
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sorted({r["seed"] for r in rows}) == [0, 1, 2]


def test_a_solved_finished_restart_ends_the_run(tmp_path: Path) -> None:
    calls: list[int] = []
    solved = RestartResult(0, 0, {"nmse": 0.0, "exact": 1.0, "score": 0.0}, 5, 0.1, True, {"w": torch.zeros(1)}, [])
    best, results = run_restarts(
        ModelConfig(),
        TrainConfig(restarts=3),
        _split(),
        SPEC,
        0,
        out_dir=tmp_path,
        progress=False,
        parallel=False,
        train_fn=_fake(calls),
        finished=[solved],
    )
    assert calls == [] and best.seed == 0 and len(results) == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "version", "missing"])
def test_corrupted_restart_file_is_reported(tmp_path: Path, damage: str) -> None:
    r = RestartResult(4, 0, {"nmse": 1.0, "exact": 0.0, "score": 1.0}, 5, 0.1, False, {"w": torch.arange(8.0)}, [])
    save_restart(tmp_path, r)
    w, j = restart_paths(tmp_path, 4)
    if damage == "flip":
        b = bytearray(w.read_bytes())
        b[-3] ^= 1
        w.write_bytes(bytes(b))
    elif damage == "truncate":
        w.write_bytes(w.read_bytes()[:-8])
    elif damage == "version":
        doc = json.loads(j.read_text())
        doc["version"] = 7
        j.write_text(json.dumps(doc))
    else:
        w.unlink()
    with pytest.raises(CheckpointError) as info:
        load_restarts(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "seed4" in msg
    assert {"flip": "SHA-256", "truncate": "SHA-256", "version": "version 7", "missing": "not found"}[damage] in msg


def _tiny_dataset() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (60, 3, 1)).astype(float)
    y = x.copy()
    y[:, 1:] += x[:, :-1]
    return Dataset("tiny", "discrete", x[:50], y[:50], x[50:], y[50:], ("x",), ("y",), "mem")


def test_resume_after_losing_a_restart_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    """Restarts are seeded: re-running the unfinished one reproduces the uninterrupted result."""
    cfg = TrainConfig(
        steps=12, population=2, restarts=1, polish_iters=0, val_size=10, eval_every=5, stop_on_exact=False, harden_top=1
    )
    mc = ModelConfig(n_layers=1, n_heads=1, n_mlps=1, mlp_hidden=4, mlp_bilinear=1)
    ds = _tiny_dataset()
    out = tmp_path / "run"
    full = api.train(ds, out=out, model=mc, training=cfg, progress=False)
    # As if interrupted while seed 0 trained: no final files, seed 0 not kept.
    for name in ("result.json", "model.json", "model.safetensors"):
        (out / name).unlink()
    for p in restart_paths(out, 0):
        p.unlink()
    # (the CLI's --resume reloads the data from config.json; this dataset lives in memory)
    resumed = api.execute(api.RunPlan(ds, mc, cfg, out, 0, 0, time.perf_counter(), resume=True), progress=False)
    assert [r.seed for r in resumed.restarts] == [0]
    assert resumed.best.seed == full.best.seed and resumed.best.val == full.best.val
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert api.load_run(out).best.val == full.best.val


def _write_npz(path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, (120, 4))
    y = x.copy()
    y[:, 1:] += x[:, :-1]
    np.savez(path, x_train=x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])


ENV = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "DTX_DEBUG": ""}
CLI = [sys.executable, "-c", "from discrete_transformer.cli import app; app()"]


def _interrupt(tmp_path: Path, sig: int, restarts: int) -> tuple[str, str]:
    """Start `dtx train` on a small file, wait for the first metrics row, send `sig`."""
    _write_npz(tmp_path / "d.npz")
    log = tmp_path / "run" / "metrics_seed0.jsonl"
    proc = subprocess.Popen(
        CLI + ["train", "d.npz", "--out", "run", "--steps", "400", "--restarts", str(restarts)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    try:
        deadline = time.monotonic() + 60
        while not (log.is_file() and log.stat().st_size > 0):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no training progress within 60 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    assert "interrupted; resume with: dtx train --resume run" in err
    assert api.is_run_dir(tmp_path / "run") and not (tmp_path / "run" / "result.json").exists()
    return out, err


def test_sigint_then_resume(tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT) mid-training: clean exit 130 with the resume command; then
    `dtx train --resume DIR` finishes a run that loads."""
    _interrupt(tmp_path, signal.SIGINT, restarts=1)
    done = subprocess.run(
        CLI + ["train", "--resume", "run"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    run = api.load_run(tmp_path / "run")
    assert run.best.steps_run >= 1 and run.test["n"] == 20
    assert (tmp_path / "run" / "restarts" / "seed0.json").is_file()  # the finished restart is kept
    assert not list((tmp_path / "run").glob("metrics_seed*.jsonl"))  # merged into metrics.jsonl


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path) -> None:
    _interrupt(tmp_path, signal.SIGTERM, restarts=1)


def test_the_best_restarts_variant_is_the_model_that_is_saved(tmp_path: Path) -> None:
    """With a portfolio, the winning restart's own configs (here the "arithmetic" variant, whose
    model has summing heads and a readout gain) build the saved model, and result.json names
    each restart's variant."""
    from discrete_transformer.model import DiscreteTransformer

    def fake(model_cfg, train_cfg, split, spec, seed, **kw):
        state = DiscreteTransformer(model_cfg, spec, population=1, seed=seed).state_dict()
        score = 0.1 if model_cfg.attention_sum else 0.9
        return RestartResult(seed, 0, {"nmse": score, "exact": 0.0, "score": score}, 1, 0.0, False, state, [])

    cfg = TrainConfig(
        steps=12,
        population=2,
        restarts=2,
        polish_iters=0,
        val_size=10,
        eval_every=5,
        stop_on_exact=False,
        harden_top=1,
        portfolio=("plain", "arithmetic"),
    )
    mc = ModelConfig(n_layers=1, n_heads=1, n_mlps=1, mlp_hidden=4, mlp_bilinear=1)
    out = tmp_path / "run"
    res = api.execute(
        api.RunPlan(_tiny_dataset(), mc, cfg, out, 0, 0, time.perf_counter()),
        progress=False,
        parallel=False,
        train_fn=fake,
    )
    assert res.best.seed == 1 and res.model_config.attention_sum and res.model_config.readout_gain
    assert res.train_config.attention_st_from == 0.2
    back = api.load_run(out)
    assert back.model_config == res.model_config and back.model.readout_gamma is not None
    doc = json.loads((out / "result.json").read_text())
    assert [r["variant"] for r in doc["restarts"]] == ["plain", "arithmetic"]
