"""The baseline cache: a baseline's result, trained once per (data, baseline, configuration, seed,
code version), read back by every later bench instead of being trained again.

Why: the baselines cost about a fifth of a bench's compute and their numbers do not change from one
bench to the next unless their inputs do; converged baselines (a long recipe) would not fit a
bench's per-task budget at all. A cached number counts once (issue "Unseen tasks"' bench-time limit).

The key (:func:`cache_key`) is a SHA-256 of everything the result is a pure function of:

- the data, as the baseline sees it (:func:`data_digest`): the exact float32 train, validation and
  test arrays, the task's kind and its channel names;
- the baseline's name and its configuration (:meth:`.BaselineConfig.settings`: every field that
  affects that baseline);
- the seed;
- the code: :data:`.BASELINE_VERSION` and the torch version.

An entry keeps the result's numbers with the compute they took (seconds, steps, training sequences
seen), so that a report can state a cached baseline's compute as it states a trained one's; entries
from before the sequence count read back with ``sequences`` None (reported as unknown, not zero).

The time cap. ``BaselineConfig.time_limit`` (the bench's per-task budget) is left out of the key,
and a result that the cap cut short (``ended == "time"``) is never stored: such a result depends on
the machine's load, not only on the key. Every stored result ended by running all its steps or by
solving its validation split, which is what the same training gives under any cap (training is
deterministic given the seed, on one torch thread). So a cached number may have taken longer than
a bench's budget (its row keeps the seconds it took); it is the number the recipe gives.

Entries are JSON files (``<key>.json``, written atomically), never pickle; one that cannot be read
is ignored with a warning and trained again. The default directory is
``$XDG_CACHE_HOME/discrete_transformer/baselines`` (``~/.cache/...`` when the variable is unset);
clearing it is deleting it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fileio import atomic_write_json
from .baselines import BASELINE_VERSION, BaselineConfig, BaselineResult

ENTRY_FORMAT = "dtx-baseline-cache"
ENTRY_VERSION = 1
CACHEABLE_ENDS = ("steps", "solved")  # not "time": see the module docstring


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/discrete_transformer/baselines``, or ``~/.cache/...`` when it is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "discrete_transformer" / "baselines"


def data_digest(
    arrays: Sequence[np.ndarray | torch.Tensor], kind: str, input_names: Sequence[str], output_names: Sequence[str]
) -> str:
    """SHA-256 of the arrays as float32 (dtype, shape and bytes of each, in order), the task's kind
    and channel names: the data a baseline trains and is scored on."""
    h = hashlib.sha256()
    h.update(json.dumps({"kind": kind, "in": list(input_names), "out": list(output_names)}).encode())
    for a in arrays:
        x = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        x = np.ascontiguousarray(x, dtype=np.float32)
        h.update(f"{x.shape}".encode())
        h.update(x.tobytes())
    return h.hexdigest()


def key_material(name: str, cfg: BaselineConfig, seed: int, digest: str) -> dict[str, Any]:
    """What the key hashes (also stored in the entry, so that a reader can see what it is of)."""
    return {
        "baseline": name,
        "settings": cfg.settings(name),
        "seed": int(seed),
        "data": digest,
        "baseline_version": BASELINE_VERSION,
        "torch": torch.__version__,
    }


def cache_key(name: str, cfg: BaselineConfig, seed: int, digest: str) -> str:
    text = json.dumps(key_material(name, cfg, seed, digest), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cacheable(result: BaselineResult) -> bool:
    """Whether a result may be stored: it ended by its steps or by solving, not by the time cap."""
    return result.ended in CACHEABLE_ENDS


def result_doc(result: BaselineResult) -> dict[str, Any]:
    """A result as JSON (non-finite floats as text, as bench rows write them)."""
    return {
        "name": result.name,
        "val": {k: _finite(v) for k, v in result.val.items()},
        "test": {k: _finite(v) for k, v in result.test.items()},
        "steps_run": int(result.steps_run),
        "seconds": float(result.seconds),
        "parameters": int(result.parameters),
        "ended": result.ended,
        "sequences": None if result.sequences is None else int(result.sequences),
    }


def result_from_doc(doc: dict[str, Any]) -> BaselineResult:
    """The inverse of :func:`result_doc`; raises KeyError/TypeError/ValueError on a malformed one."""
    return BaselineResult(
        name=str(doc["name"]),
        val={str(k): float(v) for k, v in dict(doc["val"]).items()},
        test={str(k): float(v) for k, v in dict(doc["test"]).items()},
        steps_run=int(doc["steps_run"]),
        seconds=float(doc["seconds"]),
        parameters=int(doc["parameters"]),
        ended=str(doc["ended"]),
        sequences=None if doc.get("sequences") is None else int(doc["sequences"]),  # None: stored before the count
    )


def _finite(v: Any) -> Any:
    return str(v) if isinstance(v, float) and not np.isfinite(v) else v


class BaselineCache:
    """The entries of one cache directory (created on the first write)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str) -> tuple[BaselineResult, dict[str, Any]] | None:
        """The cached result and its source (``date``, ``commit``, ``by``), or None when there
        is none. An unreadable or malformed entry is ignored with a warning (and overwritten by
        the next :meth:`put` of the same key)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            if doc.get("format") != ENTRY_FORMAT or doc.get("key") != key:
                raise ValueError("not an entry of this key")
            result = result_from_doc(doc["result"])
            if result.ended not in CACHEABLE_ENDS:
                raise ValueError(f"ended by {result.ended!r}")
            source = {str(k): v for k, v in dict(doc.get("source") or {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            warnings.warn(f"baseline cache: ignoring {p} ({type(e).__name__}: {e}); training again", stacklevel=2)
            return None
        return result, source

    def put(self, key: str, result: BaselineResult, material: dict[str, Any], source: dict[str, Any]) -> bool:
        """Store a result (atomically); False, storing nothing, when it is not :func:`cacheable`."""
        if not cacheable(result):
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": ENTRY_FORMAT,
            "version": ENTRY_VERSION,
            "key": key,
            "inputs": material,
            "result": result_doc(result),
            "source": source,
        }
        atomic_write_json(self.path(key), doc)
        return True


def source_now(commit: str, by: str) -> dict[str, str]:
    """Where a number comes from: when (UTC), by which code (commit) and which command (``by``)."""
    return {"date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit, "by": by}


__all__ = [
    "CACHEABLE_ENDS",
    "BaselineCache",
    "cache_key",
    "cacheable",
    "data_digest",
    "default_cache_dir",
    "key_material",
    "result_doc",
    "result_from_doc",
    "source_now",
]
