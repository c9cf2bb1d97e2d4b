"""``dtx export``: built-in and generated tasks written as data files (.npz, .csv, .jsonl).

Why: a generated task is then an ordinary data file that any tool (or another library) can train
on, with exactly the arrays ``make_dataset(seed=0)`` gives the bench; :func:`.files.load_file`
reads each file back to the same arrays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .files import DATA_EXTENSIONS, save_csv, save_jsonl, save_npz
from .generated import SUITE_NAMES, suite_specs
from .registry import DEFAULT_N_TEST, get_task, make_dataset
from .spec import TaskSpec

WRITERS = {".npz": save_npz, ".csv": save_csv, ".jsonl": save_jsonl}


def resolve_sources(sources: Sequence[str]) -> list[TaskSpec]:
    """Task names and suite names (``mips``, ``generated:3``, ...) -> tasks, in order, once each.

    Raises ``ValueError`` (an ``UnknownTaskError`` naming the nearest tasks) for a bad item."""
    if not sources:
        raise ValueError(f"no task given: name tasks or suites ({', '.join(SUITE_NAMES)})")
    out: dict[str, TaskSpec] = {}
    for item in sources:
        specs = suite_specs(item)
        for spec in specs if specs is not None else (get_task(item),):
            out.setdefault(spec.name, spec)
    return list(out.values())


def export_tasks(
    sources: Sequence[str], out: str | os.PathLike, n_test: int = DEFAULT_N_TEST, seed: int = 0
) -> list[Path]:
    """Write each task's ``make_dataset(seed=seed, n_test=n_test)`` and return the paths written.

    With one task and ``out`` ending in .npz/.csv/.jsonl, that file; otherwise ``out`` is a
    directory (created if needed) and task ``name`` becomes ``out/name.npz``. Everything is checked
    before anything is written; raises ``ValueError`` with a one-line message."""
    specs = resolve_sources(sources)
    path = Path(out)
    ext = path.suffix.lower()
    as_file = ext in DATA_EXTENSIONS and not path.is_dir()
    if as_file and len(specs) > 1:
        raise ValueError(f"--out {path}: {len(specs)} tasks need a directory, not a {ext} file")
    if not as_file and path.exists() and not path.is_dir():
        raise ValueError(f"--out {path}: exists and is not a directory")
    if n_test < 1:
        raise ValueError(f"n_test must be positive, got {n_test}")
    if as_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        WRITERS[ext](make_dataset(specs[0], seed=seed, n_test=n_test), path)
        return [path]
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in specs:
        target = path / f"{spec.name}.npz"
        save_npz(make_dataset(spec, seed=seed, n_test=n_test), target)
        written.append(target)
    return written


__all__ = ["WRITERS", "export_tasks", "resolve_sources"]
