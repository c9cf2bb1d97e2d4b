"""Safe artifacts and reproducibility: loading never unpickles (a booby-trapped pickle is refused
and never runs), checkpoints carry a version, writes are atomic, the same seed and config give
byte-identical program text, and run directories record the versions they were made with."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_model, tiny_train

import discrete_transformer as dtx
from discrete_transformer import api, fileio
from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.model import DataSpec, DiscreteTransformer
from discrete_transformer.tasks import DataFileError, load_file
from discrete_transformer.training.checkpoint import CheckpointError, load_checkpoint, save_run_checkpoint
from discrete_transformer.training.loop import RestartResult
from discrete_transformer.training.resume import load_restarts, restart_paths, save_restart

SRC = Path(__file__).resolve().parents[1] / "src" / "discrete_transformer"


class Trap:
    """Unpickling this creates the marker file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _checkpoint(d: Path) -> Path:
    mc = ModelConfig(n_layers=1, n_heads=1, n_mlps=1)
    spec = DataSpec(("x",), ("y",), (1.0,), 1.0, 4)
    save_run_checkpoint(d, DiscreteTransformer(mc, spec, population=1, seed=0), mc, TrainConfig(), spec)
    return d


def test_no_unpickling_calls_in_the_package() -> None:
    """No torch.load, pickle.load(s), np.load(allow_pickle=True) or dill/joblib anywhere in src."""
    bad = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
                call = f"{owner}.{node.func.attr}"
                if call in (
                    "torch.load",
                    "pickle.load",
                    "pickle.loads",
                    "pickle.Unpickler",
                    "joblib.load",
                    "dill.load",
                ):
                    bad.append(f"{path.name}:{node.lineno} {call}")
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        bad.append(f"{path.name}:{node.lineno} allow_pickle")
                    if kw.arg == "weights_only" and not (isinstance(kw.value, ast.Constant) and kw.value.value is True):
                        bad.append(f"{path.name}:{node.lineno} weights_only")
    assert not bad, bad


def test_booby_trapped_pickle_as_weights_is_refused_and_never_runs(tmp_path: Path) -> None:
    d = _checkpoint(tmp_path / "ckpt")
    marker = tmp_path / "PWNED"
    blob = pickle.dumps(Trap(marker))
    (d / "model.safetensors").write_bytes(blob)
    meta = json.loads((d / "model.json").read_text())
    meta["weights"]["sha256"] = hashlib.sha256(blob).hexdigest()  # as a careful attacker would
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(d)
    assert "model.safetensors" in str(info.value) and "safetensors" in str(info.value)
    assert not marker.exists()
    # A torch.save'd file (a zip of pickles) is refused the same way.
    torch.save({"w": Trap(marker)}, d / "model.safetensors")
    blob = (d / "model.safetensors").read_bytes()
    meta["weights"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        load_checkpoint(d)
    assert not marker.exists()


def test_booby_trapped_restart_file_is_refused(tmp_path: Path) -> None:
    r = RestartResult(0, 0, {"nmse": 1.0, "exact": 0.0, "score": 1.0}, 1, 0.0, False, {"w": torch.zeros(2)}, [])
    save_restart(tmp_path, r)
    w, j = restart_paths(tmp_path, 0)
    marker = tmp_path / "PWNED"
    blob = pickle.dumps(Trap(marker))
    w.write_bytes(blob)
    doc = json.loads(j.read_text())
    doc["weights"]["sha256"] = hashlib.sha256(blob).hexdigest()
    j.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError):
        load_restarts(tmp_path)
    assert not marker.exists()


def test_booby_trapped_npz_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    obj = np.empty((2, 3), dtype=object)
    obj[:] = Trap(marker)
    np.savez(
        tmp_path / "d.npz", x_train=obj, y_train=np.zeros((2, 3)), x_test=np.zeros((1, 3)), y_test=np.zeros((1, 3))
    )
    with pytest.raises(DataFileError) as info:
        load_file(tmp_path / "d.npz")
    assert "pickle" in str(info.value)
    (tmp_path / "p.npz").write_bytes(pickle.dumps(Trap(marker)))  # a bare pickle named .npz
    with pytest.raises(DataFileError):
        load_file(tmp_path / "p.npz")
    assert not marker.exists()


def test_checkpoint_version_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    d = _checkpoint(tmp_path / "ckpt")
    meta = json.loads((d / "model.json").read_text())
    meta["version"] = 2
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"model\.json: unsupported checkpoint version 2 .* reads version 1"):
        load_checkpoint(d)


@pytest.mark.parametrize("where", [0, 100, -1])
def test_any_flipped_byte_is_detected(tmp_path: Path, where: int) -> None:
    d = _checkpoint(tmp_path / "ckpt")
    p = d / "model.safetensors"
    b = bytearray(p.read_bytes())
    b[where] ^= 0x01
    p.write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(d)


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "f.json"
    fileio.atomic_write_json(target, {"a": 1})

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left behind


def test_same_seed_and_config_give_byte_identical_program_and_run_records_versions(tmp_path: Path) -> None:
    cfg = tiny_train(steps=20, restarts=1)
    a = api.train("Sum_Last2", out=tmp_path / "a", seed=5, model=tiny_model(), training=cfg, progress=False)
    b = api.train("Sum_Last2", out=tmp_path / "b", seed=5, model=tiny_model(), training=cfg, progress=False)
    # Same tensors (the safetensors header's metadata order is not fixed, so compare tensors, not bytes).
    sa, sb = load_checkpoint(tmp_path / "a")[0].state_dict(), load_checkpoint(tmp_path / "b")[0].state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    pa, pb = dtx.extract(a), dtx.extract(b)
    assert pa.source.encode() == pb.source.encode()
    versions = json.loads((tmp_path / "a" / "config.json").read_text())["versions"]
    assert set(versions) >= {"python", "torch", "numpy", "discrete_transformer"}
    assert versions["torch"] == torch.__version__ and versions["numpy"] == np.__version__
    assert versions["discrete_transformer"] == dtx.__version__
