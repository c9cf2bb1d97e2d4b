"""Tasks and data: the built-in suite (tasks.md), the generated suite of task families
(:mod:`.generated`) and user data files, all as a :class:`Dataset`.

:func:`load_source` is the single entry point the CLI and the benchmark use, so a task name and a
data file are interchangeable everywhere downstream.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .dataset import Dataset, infer_kind
from .export import export_tasks
from .files import (
    DATA_EXTENSIONS,
    DataFileError,
    load_file,
    save_csv,
    save_jsonl,
    save_npz,
)
from .generated import FAMILIES, generated_suite, suite_specs
from .public import TASKS
from .registry import get_task, make_dataset, task_names
from .spec import TaskSpec, UnknownTaskError

__all__ = [
    "DATA_EXTENSIONS",
    "FAMILIES",
    "TASKS",
    "DataFileError",
    "Dataset",
    "TaskSpec",
    "UnknownTaskError",
    "export_tasks",
    "generated_suite",
    "get_task",
    "infer_kind",
    "load_file",
    "load_source",
    "make_dataset",
    "save_csv",
    "save_jsonl",
    "save_npz",
    "suite_specs",
    "task_names",
]


def load_source(source: str | os.PathLike, seed: int = 0, kind: str | None = None) -> Dataset:
    """A built-in task name or a data file path, resolved to a :class:`Dataset`.

    Anything with a data-file extension is a file (so a missing file says "not found" rather
    than "unknown task"); otherwise a known task name wins, then an existing path; anything else
    is an unknown task, reported with the nearest task names. ``kind`` overrides the kind.
    """
    text = os.fspath(source)
    if Path(text).suffix.lower() in DATA_EXTENSIONS:
        return load_file(text, kind=kind)
    try:
        spec = get_task(text)
    except UnknownTaskError:
        if os.path.exists(text):
            return load_file(text, kind=kind)
        raise
    ds = make_dataset(spec, seed=seed)
    if kind is None or kind == ds.kind:
        return ds
    if kind not in ("discrete", "continuous"):
        raise ValueError(f"invalid kind {kind!r}; expected 'discrete' or 'continuous'")
    if kind == "discrete":  # a continuous task's targets are real: exact match is meaningless
        raise ValueError(f"task {spec.name} has real-valued targets; it cannot be 'discrete'")
    return replace(ds, kind="continuous")
