"""Resolve ``dtx bench --suite`` arguments into the list of tasks to run.

A suite item is ``mips``, ``continuous`` or ``all`` (the 47 public tasks), ``generated`` or
``generated:SEED`` (the generated suite's sample for that seed, :mod:`..tasks.generated`), a
built-in or generated task name (any spelling :func:`~..tasks.get_task` accepts) or a data file
path. Everything is checked here, before the bench writes anything, so a typo fails in one line
instead of an hour in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..tasks import DATA_EXTENSIONS, TASKS, get_task, load_file
from ..tasks.generated import generated_suite, parse_generated_suite

PUBLIC_SUITES = ("mips", "continuous", "all")
SUITES = (*PUBLIC_SUITES, "generated")  # and generated:SEED


@dataclass(frozen=True)
class BenchTask:
    """One task of a bench: ``label`` names its directory, ``source`` is what ``load_source``
    takes (a task name or a file path), ``family`` is mips | continuous | generated | file."""

    label: str
    source: str
    family: str


def _file_label(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "data"


def resolve_suite(items: Sequence[str]) -> list[BenchTask]:
    """Suite names, task names and data files -> tasks, in order, without duplicates.

    Raises ``ValueError`` (``UnknownTaskError``, ``DataFileError``, a bad ``generated:SEED``)
    naming the bad item."""
    if not items:
        items = ["all"]
    out: dict[str, BenchTask] = {}
    for raw in items:
        item = str(raw).strip()
        low = item.lower()
        if low in PUBLIC_SUITES:
            for t in TASKS:
                if low == "all" or t.family == low:
                    out.setdefault(t.name, BenchTask(t.name, t.name, t.family))
            continue
        seed = parse_generated_suite(item)  # ValueError for generated:x, generated:-1
        if seed is not None:
            for t in generated_suite(seed):
                out.setdefault(t.name, BenchTask(t.name, t.name, t.family))
            continue
        if Path(item).suffix.lower() in DATA_EXTENSIONS or (os.path.exists(item) and not _is_task(item)):
            path = Path(item).resolve()  # job directories record it: keep it valid from any cwd
            load_file(path)  # validates shapes, dtypes, finiteness; raises DataFileError
            label = _file_label(path)
            base, k = label, 2
            while label in out and out[label].source != str(path):
                label, k = f"{base}_{k}", k + 1
            out.setdefault(label, BenchTask(label, str(path), "file"))
            continue
        spec = get_task(item)  # UnknownTaskError with the nearest names
        out.setdefault(spec.name, BenchTask(spec.name, spec.name, spec.family))
    return list(out.values())


def _is_task(name: str) -> bool:
    try:
        get_task(name)
        return True
    except ValueError:
        return False


__all__ = ["SUITES", "BenchTask", "resolve_suite"]
