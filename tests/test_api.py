"""The public Python API: the README's three lines, run directories, and load_run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model, tiny_train

import discrete_transformer as dtx
from discrete_transformer.api import RunDirError, TrainResult, load_run
from discrete_transformer.tasks import load_source


def test_readme_three_lines(tmp_path: Path) -> None:
    from discrete_transformer import train

    result = train("sum_last2", out=tmp_path / "runs" / "sum_last2", seed=0, training=tiny_train(), progress=False)
    assert set(result.test) == {"exact", "nmse", "n"}
    assert result.test["n"] == 10000
    assert 0.0 <= result.test["exact"] <= 1.0 and np.isfinite(result.test["nmse"])
    assert isinstance(result, TrainResult)
    assert result.run_dir == tmp_path / "runs" / "sum_last2"
    assert result.kind == "discrete" and result.source == "task:Sum_Last2"
    assert result.model.population == 1 and not result.model.training
    for name in ("config.json", "metrics.jsonl", "model.json", "model.safetensors", "result.json"):
        assert (result.run_dir / name).is_file(), name


def test_public_names() -> None:
    for name in ("train", "load_run", "ModelConfig", "TrainConfig", "TrainResult", "__version__"):
        assert hasattr(dtx, name), name
    assert callable(dtx.train)
    assert dtx.ModelConfig is dtx.config.ModelConfig


def test_load_run_reopens_the_same_model(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = dtx.train("prev1", out=out, seed=2, model=tiny_model(), training=tiny_train(restarts=2), progress=False)
    assert [x.seed for x in r.restarts] == [2, 3] or len(r.restarts) == 1  # 1 when seed 2 solved at once
    back = load_run(out)
    assert back.test == r.test
    assert back.best.seed == r.best.seed and back.best.val == r.best.val
    assert back.model_config == r.model_config and back.train_config == r.train_config
    assert back.spec == r.spec
    assert back.source == "task:Prev1" and back.seed == 2
    assert back.dataset is None
    assert back.best.history and all(row["seed"] == r.best.seed for row in back.best.history)
    x = r.dataset.x_test[:64]
    np.testing.assert_array_equal(r.predict(x), back.predict(x))
    for k, v in r.model.state_dict().items():
        assert torch.equal(v, back.model.state_dict()[k]), k
    doc = json.loads((out / "result.json").read_text())
    assert doc["best_seed"] == r.best.seed and doc["steps"] == r.best.steps_run
    assert len(doc["restarts"]) == len(r.restarts)


def test_dataset_source_and_no_out_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    ds = load_source("bit_shift_right")
    r = dtx.train(ds, training=tiny_train(), steps=8, progress=False)
    assert r.run_dir is None
    assert r.train_config.steps == 8
    assert r.test["n"] == ds.n_test
    assert list(tmp_path.iterdir()) == []
    assert r.predict(ds.x_test[:3]).shape == (3, ds.T, ds.n_out)


def test_test_set_is_not_used_for_selection(tmp_path: Path, monkeypatch) -> None:
    """Selection sees only the Split carved from x_train/y_train."""
    from discrete_transformer import api

    seen = {}
    real = api.run_restarts

    def spy(model_cfg, train_cfg, split, spec, seed, **kw):
        seen["n"] = split.x_train.shape[0] + split.x_val.shape[0]
        return real(model_cfg, train_cfg, split, spec, seed, **kw)

    monkeypatch.setattr(api, "run_restarts", spy)
    ds = load_source("prev2")
    dtx.train(ds, training=tiny_train(steps=5), progress=False)
    assert seen["n"] == ds.n_train


def test_overrides_are_validated() -> None:
    with pytest.raises(ValueError, match="steps"):
        dtx.train("prev1", steps=0, progress=False)
    with pytest.raises(ValueError, match="restarts"):
        dtx.train("prev1", restarts=0, progress=False)
    with pytest.raises(ValueError, match="kind"):
        dtx.train("prev1", kind="fuzzy", progress=False)


def test_out_rules(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("1")
    with pytest.raises(RunDirError, match="not a run directory"):
        dtx.train("prev1", out=tmp_path / "busy", training=tiny_train(), progress=False)
    out = tmp_path / "run"
    dtx.train("prev1", out=out, training=tiny_train(steps=5), progress=False)
    with pytest.raises(RunDirError, match="--force"):
        dtx.train("prev1", out=out, training=tiny_train(steps=5), progress=False)
    r = dtx.train("prev1", out=out, training=tiny_train(steps=5), progress=False, force=True, seed=9)
    assert load_run(out).best.seed == r.best.seed


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not found"):
        load_run(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(RunDirError, match="corrupt JSON"):
        load_run(tmp_path)
