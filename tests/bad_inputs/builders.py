"""Builders of the cases' inputs: data files (valid but for one change) and run directories
(small but real, optionally damaged). Each returns a :data:`~.case.Setup`, which writes into the
case's working directory."""

from __future__ import annotations

import hashlib
import json
import pickle  # only to *write* a hostile file that the loaders must refuse to unpickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from discrete_transformer.config import ModelConfig, TrainConfig, to_dict
from discrete_transformer.fileio import atomic_write_json
from discrete_transformer.model import DataSpec, DiscreteTransformer
from discrete_transformer.rundir import CONFIG_FILE, RESULT_FILE, RUN_FORMAT, RUN_VERSION
from discrete_transformer.training.checkpoint import save_run_checkpoint

from .case import Setup

T = ("train",)  # the command most cases run: dtx train SOURCE --out o
OUT = ("--out", "o")


def xy(n: int = 6, T: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).integers(0, 10, (n, T)).astype(np.int64)
    y = np.cumsum(x, axis=1)
    return x, y


def npz(name: str = "data.npz", **changes: object) -> Setup:
    """A valid .npz with `changes` applied (None drops a key)."""

    def make(d: Path) -> None:
        x, y = xy()
        xt, yt = xy(3, seed=1)
        arrays: dict[str, object] = {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}
        for k, v in changes.items():
            if v is None:
                arrays.pop(k, None)
            else:
                arrays[k] = v
        with open(d / name, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]

    return make


def text_file(name: str, text: str) -> Setup:
    def make(d: Path) -> None:
        (d / name).write_text(text, encoding="utf-8")

    return make


def bytes_file(name: str, data: bytes) -> Setup:
    def make(d: Path) -> None:
        (d / name).write_bytes(data)

    return make


def directory(name: str, with_file: str | None = None) -> Setup:
    def make(d: Path) -> None:
        (d / name).mkdir()
        if with_file:
            (d / name / with_file).write_text("keep me\n", encoding="utf-8")

    return make


def both(*setups: Setup) -> Setup:
    def make(d: Path) -> None:
        for s in setups:
            s(d)

    return make


def object_npz(d: Path) -> None:
    x, y = xy()
    obj = np.empty((6, 4), dtype=object)
    obj[:] = 1
    np.savez(d / "data.npz", x_train=obj, y_train=y, x_test=x[:3], y_test=y[:3])


CSV_OK = "split,seq,t,x,y\ntrain,0,0,1,1\ntrain,0,1,2,3\ntest,0,0,2,2\ntest,0,1,1,3\n"


def fake_run(name: str = "run", edit: Callable[[Path], None] | None = None) -> Setup:
    """A small but real run directory (untrained model), optionally damaged by `edit`."""

    def make(d: Path) -> None:
        run = d / name
        run.mkdir()
        mc, tc = ModelConfig(n_layers=1, n_heads=1, n_mlps=1), TrainConfig(steps=1, restarts=1)
        spec = DataSpec(("x",), ("y",), (1.0,), 1.0, 4)
        cfg = {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "source": "task:Sum_Last2",
            "dataset": "Sum_Last2",
            "kind": "discrete",
            "seed": 0,
            "data_seed": 0,
            "model": to_dict(mc),
            "train": to_dict(tc),
        }
        atomic_write_json(run / CONFIG_FILE, cfg)
        save_run_checkpoint(run, DiscreteTransformer(mc, spec, population=1, seed=0), mc, tc, spec)
        val = {"exact": 0.0, "nmse": 1.0, "score": 1.0}
        atomic_write_json(
            run / RESULT_FILE,
            {
                "format": RUN_FORMAT,
                "version": RUN_VERSION,
                "source": "task:Sum_Last2",
                "kind": "discrete",
                "seed": 0,
                "best_seed": 0,
                "val": val,
                "test": {"exact": 0.0, "nmse": 1.0, "n": 1},
                "solved_val": False,
                "steps": 1,
                "seconds": 0.0,
                "restarts": [
                    {"seed": 0, "best_member": 0, "val": val, "steps_run": 1, "seconds": 0.0, "stopped_early": False}
                ],
            },
        )
        if edit is not None:
            edit(run)

    return make


def flip_byte(run: Path) -> None:
    p = run / "model.safetensors"
    b = bytearray(p.read_bytes())
    b[-5] ^= 0xFF
    p.write_bytes(bytes(b))


def truncate(run: Path) -> None:
    p = run / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-40])


def pickle_weights(run: Path) -> None:
    """Replace the weights by a pickle (and fix up the recorded hash, as an attacker would)."""
    blob = pickle.dumps({"w": [1.0, 2.0]})
    (run / "model.safetensors").write_bytes(blob)
    meta = json.loads((run / "model.json").read_text(encoding="utf-8"))
    meta["weights"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (run / "model.json").write_text(json.dumps(meta), encoding="utf-8")


def checkpoint_version(run: Path) -> None:
    meta = json.loads((run / "model.json").read_text(encoding="utf-8"))
    meta["version"] = 99
    (run / "model.json").write_text(json.dumps(meta), encoding="utf-8")


def unfinished(run: Path) -> None:
    (run / "result.json").unlink()


def config_json_only(name: str) -> Setup:
    return text_file(name, "{}")
