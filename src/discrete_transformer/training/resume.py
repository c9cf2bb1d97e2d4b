"""Finished restarts kept on disk, so an interrupted run can be resumed.

Granularity: one restart. While a run trains, every restart that finishes is written to the
run directory's ``restarts/`` (:meth:`~..rundir.RunDir.restart_files`): its best member's state
dict (safetensors) and its summary (JSON: metrics history and the SHA-256 of the tensor file;
written last, so a restart counts as finished only when both files are complete).
``dtx train --resume RUN`` reloads these, skips their seeds, and re-runs every other restart
from its start with its own seed (a restart interrupted half-way loses its partial progress,
never a finished one). Like checkpoints, these
files are safetensors + JSON: nothing is ever unpickled, and a corrupted file is reported, not used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load as st_load
from safetensors.torch import save

from ..fileio import atomic_write_text
from ..rundir import RunDir
from .checkpoint import CheckpointError, one_line
from .loop import RestartResult

FORMAT = "dtx-restart"
VERSION = 1


def restart_paths(run_dir: str | os.PathLike, seed: int) -> tuple[Path, Path]:
    """Restart `seed`'s (weights, summary) files in `run_dir`."""
    return RunDir(Path(run_dir)).restart_files(seed)


def save_restart(run_dir: str | os.PathLike, result: RestartResult) -> None:
    """Keep one finished restart (tensors first, then the JSON that marks it complete)."""
    rd = RunDir(Path(run_dir))
    w_path, _ = rd.restart_files(result.seed)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in result.state.items()}
    blob = save(state, metadata={"format": FORMAT, "version": str(VERSION)})
    rd.write_restart(
        result.seed,
        blob,
        {
            "format": FORMAT,
            "version": VERSION,
            "seed": int(result.seed),
            "best_member": int(result.best_member),
            "val": {k: float(v) for k, v in result.val.items()},
            "steps_run": int(result.steps_run),
            "seconds": float(result.seconds),
            "stopped_early": bool(result.stopped_early),
            "history": list(result.history),
            "sequences": None if result.sequences is None else int(result.sequences),
            "weights": {"file": w_path.name, "sha256": hashlib.sha256(blob).hexdigest()},
        },
    )


def _load_one(j_path: Path) -> RestartResult:
    try:
        doc = json.loads(j_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{j_path}: unreadable ({one_line(e)})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{j_path}: not a discrete-transformer restart file")
    if doc.get("version") != VERSION:
        raise CheckpointError(
            f"{j_path}: unsupported restart version {doc.get('version')!r} (this package reads {VERSION})"
        )
    try:
        w_path = j_path.parent / str(doc["weights"]["file"])
        expected = str(doc["weights"]["sha256"])
        seed = int(doc["seed"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{j_path}: field 'weights' or 'seed' is missing or invalid") from None
    if w_path.parent != j_path.parent or not w_path.is_file():
        raise CheckpointError(f"{w_path}: file not found")
    blob = w_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError(
            f"{w_path}: contents do not match the SHA-256 recorded in {j_path.name} (corrupted or truncated)"
        )
    try:
        state = st_load(blob)
    except Exception as e:  # safetensors' own error type, or anything on garbage
        raise CheckpointError(f"{w_path}: not a readable safetensors file ({one_line(e)})") from None
    try:
        return RestartResult(
            seed=seed,
            best_member=int(doc["best_member"]),
            val={k: float(v) for k, v in dict(doc["val"]).items()},
            steps_run=int(doc["steps_run"]),
            seconds=float(doc["seconds"]),
            stopped_early=bool(doc["stopped_early"]),
            state=state,
            history=[dict(r) for r in doc.get("history", [])],
            sequences=None if doc.get("sequences") is None else int(doc["sequences"]),  # None: kept before the count
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{j_path}: invalid restart summary ({one_line(e)})") from None


def load_restarts(run_dir: str | os.PathLike, seeds: list[int] | None = None) -> list[RestartResult]:
    """The finished restarts kept in `run_dir` (only `seeds`, when given), by seed."""
    out = []
    for j_path in RunDir(Path(run_dir)).restart_summaries():
        r = _load_one(j_path)
        if seeds is None or r.seed in seeds:
            out.append(r)
    return sorted(out, key=lambda r: r.seed)


def write_history(log_path: Path, history: list[dict[str, Any]]) -> None:
    """Restore a finished restart's metrics rows as its per-seed log (merged at the end)."""
    atomic_write_text(log_path, "".join(json.dumps(row) + "\n" for row in history))


__all__ = ["load_restarts", "restart_paths", "save_restart", "write_history"]
