"""Checkpoints: safetensors for the tensors, JSON for everything else. Never pickle.

A checkpoint is two files in one directory (named by :class:`~..rundir.RunDir`):

- the weights — the model's state dict (safetensors format, via ``safetensors.torch.save``);
- the model document — ``{"format": "dtx-checkpoint", "version": 1, ...}``: package version,
  model and train configs, the :class:`DataSpec`, the population size, a SHA-256 of the weights
  file and free-form ``meta``.

The SHA-256 makes any corruption of the tensor bytes detectable (safetensors itself only checks
the header). Every write is atomic (:mod:`..fileio`), so a reader never sees a half-written
file. Loading never unpickles anything: ``torch.load`` is not used anywhere in this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save

from ..config import ModelConfig, TrainConfig, from_dict, to_dict
from ..model import DataSpec, DiscreteTransformer
from ..rundir import RunDir
from ..version import __version__

FORMAT = "dtx-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message is one line naming the file and the problem."""


# ----------------------------------------------------------------------------- DataSpec <-> dict


def spec_to_dict(spec: DataSpec) -> dict[str, Any]:
    return {
        "input_names": list(spec.input_names),
        "output_names": list(spec.output_names),
        "input_rms": [float(v) for v in spec.input_rms],
        "target_rms": float(spec.target_rms),
        "T": int(spec.T),
        "target_levels": int(spec.target_levels),
        "trend": [[float(a), float(b)] for a, b in spec.trend],
        "trend_residual_rms": float(spec.trend_residual_rms),
        "lag_scores": [float(v) for v in spec.lag_scores],
    }


def spec_from_dict(d: dict[str, Any]) -> DataSpec:
    return DataSpec(
        input_names=tuple(str(s) for s in d["input_names"]),
        output_names=tuple(str(s) for s in d["output_names"]),
        input_rms=tuple(float(v) for v in d["input_rms"]),
        target_rms=float(d["target_rms"]),
        T=int(d["T"]),
        target_levels=int(d.get("target_levels", 0)),  # absent from checkpoints written before it
        trend=tuple((float(a), float(b)) for a, b in d.get("trend", ())),  # likewise
        trend_residual_rms=float(d.get("trend_residual_rms", 0.0)),
        lag_scores=tuple(float(v) for v in d.get("lag_scores", ())),  # likewise
    )


# ----------------------------------------------------------------------------- save / load


def save_run_checkpoint(
    dir: str | os.PathLike,
    model: DiscreteTransformer,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    spec: DataSpec,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint's two files into `dir` (created if missing)."""
    rd = RunDir(Path(dir))
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    blob = save(state, metadata={"format": FORMAT, "version": str(VERSION)})
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "package_version": __version__,
        "model_config": to_dict(model_cfg),
        "train_config": to_dict(train_cfg),
        "data_spec": spec_to_dict(spec),
        "population": int(model.population),
        "weights": {"file": rd.weights_path.name, "sha256": hashlib.sha256(blob).hexdigest()},
        "dtype": _dtype_name(model),
        "tensors": {k: "x".join(str(n) for n in v.shape) or "scalar" for k, v in state.items()},
        "meta": meta or {},
    }
    rd.write_checkpoint(blob, doc)
    return rd.path


def _dtype_name(model: DiscreteTransformer) -> str:
    for p in model.parameters():
        return str(p.dtype).removeprefix("torch.")
    return "float32"


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not a text file (expected JSON)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupt JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a discrete-transformer checkpoint (format {doc.get('format')!r})")
    if doc.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint version {doc.get('version')!r} "
            f"(discrete-transformer {__version__} reads version {VERSION})"
        )
    for key in ("model_config", "train_config", "data_spec", "weights"):
        if not isinstance(doc.get(key), dict):
            raise CheckpointError(f"{path}: field {key!r} is missing or not an object")
    return doc


def load_checkpoint(
    dir: str | os.PathLike,
) -> tuple[DiscreteTransformer, ModelConfig, TrainConfig, DataSpec, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_run_checkpoint`.

    Returns ``(model in eval mode, model_cfg, train_cfg, spec, meta)``. Any problem raises
    :class:`CheckpointError`.
    """
    rd = RunDir(Path(dir))
    if not rd.path.is_dir():
        raise CheckpointError(f"{rd.path}: checkpoint directory not found")
    meta_path = rd.model_path
    doc = _read_meta(meta_path)
    try:
        model_cfg = from_dict(ModelConfig, doc["model_config"])
        train_cfg = from_dict(TrainConfig, doc["train_config"])
        spec = spec_from_dict(doc["data_spec"])
        population = int(doc.get("population", 1))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{meta_path}: invalid configuration ({one_line(e)})") from None

    w_path = rd.weights_path
    if not w_path.is_file():
        raise CheckpointError(f"{w_path}: file not found")
    blob = w_path.read_bytes()
    expected = doc["weights"].get("sha256")
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError(
            f"{w_path}: contents do not match the SHA-256 recorded in {meta_path.name} (corrupted or truncated)"
        )
    try:
        state = st_load(blob)
    except Exception as e:  # safetensors raises its own SafetensorError, or others on garbage
        raise CheckpointError(f"{w_path}: not a readable safetensors file ({one_line(e)})") from None

    try:
        model = DiscreteTransformer(model_cfg, spec, population=population, seed=0)
        dtype = doc.get("dtype", "float32")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"unsupported dtype {dtype!r}")
        model = model.to(getattr(torch, dtype))
    except (ValueError, RuntimeError) as e:
        raise CheckpointError(f"{meta_path}: cannot build the model ({one_line(e)})") from None
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing:
        raise CheckpointError(
            f"{w_path}: missing tensor(s) {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")
        )
    if extra:
        raise CheckpointError(
            f"{w_path}: unexpected tensor(s) {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else "")
        )
    for name, t in want.items():
        got = state[name]
        if tuple(got.shape) != tuple(t.shape):
            raise CheckpointError(
                f"{w_path}: tensor {name} has shape {tuple(got.shape)}, "
                f"the configuration in {meta_path.name} needs {tuple(t.shape)}"
            )
        if got.dtype != t.dtype:
            raise CheckpointError(f"{w_path}: tensor {name} has dtype {got.dtype}, expected {t.dtype}")
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, model_cfg, train_cfg, spec, dict(doc.get("meta") or {})


def one_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


__all__ = [
    "CheckpointError",
    "FORMAT",
    "VERSION",
    "load_checkpoint",
    "one_line",
    "save_run_checkpoint",
    "spec_from_dict",
    "spec_to_dict",
]
