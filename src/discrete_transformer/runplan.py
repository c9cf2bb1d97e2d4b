"""A validated run before it runs (:class:`RunPlan`) and the checks on its run directory.

``api.prepare`` / ``api.resume_plan`` build a plan, writing nothing; :func:`owning` then holds
the plan's run directory (:mod:`.rundir_lock`) and repeats the checks, since another command may
have changed the directory in between; ``api.execute`` runs it. ``cli.py`` (whose train / run
commands hold the directory across training and extraction) and ``bench/runner.py``'s workers
use these steps directly.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ModelConfig, TrainConfig, to_dict
from .rundir import NOT_A_RUN, RESULT_FILE, RUN_FORMAT, RUN_VERSION, RunDir, RunDirError
from .tasks import Dataset
from .version import __version__

__all__ = ["RunPlan", "check_out_dir", "check_resumable", "owning", "versions", "write_run_config"]


@dataclass
class RunPlan:
    """A validated run, nothing written yet: what ``api.prepare`` hands to ``api.execute``."""

    ds: Dataset
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    run_dir: Path | None
    seed: int
    data_seed: int
    t0: float
    resume: bool = False  # continue an interrupted run in run_dir (keep its finished restarts)


def versions() -> dict[str, str]:
    """What a run was made with (recorded in its configuration, for reproducing it)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "discrete_transformer": __version__,
    }


def check_out_dir(out: str | os.PathLike, force: bool = False) -> Path:
    """Refuse an output path that would clobber something; writes nothing. (A leftover lock
    file is not content.) Repeated by :func:`owning` once the directory is locked."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise RunDirError(f"--out {p}: exists and is not a directory")
    rd = RunDir(p)
    if p.is_dir() and any(rd.contents()):
        if not rd.is_run():
            raise RunDirError(f"--out {p}: directory is not empty and is not a run directory; choose a new directory")
        if not force:
            raise RunDirError(f"--out {p}: already holds a run; choose a new directory or pass --force to overwrite it")
    return p


def check_resumable(d: Path) -> dict[str, Any]:
    """An unfinished run's configuration; :class:`RunDirError` otherwise. Writes nothing."""
    rd = RunDir(d)
    if not d.is_dir():
        raise RunDirError(f"--resume {d}: run directory not found")
    if not rd.is_run():
        raise RunDirError(f"--resume {d}: {NOT_A_RUN}")
    cfg = rd.read_config()
    if rd.has_result():
        raise RunDirError(f"--resume {d}: the run already finished ({RESULT_FILE} exists); nothing to resume")
    return cfg


@contextmanager
def owning(plan: RunPlan, what: str, force: bool = False) -> Iterator[None]:
    """Own the plan's run directory (creating a new one) for the whole block, and repeat the
    checks ``api.prepare`` / ``api.resume_plan`` made before: another command may have changed
    the directory in between. `what` names the command for the message others get."""
    d = plan.run_dir
    if d is None:
        yield
        return
    if not plan.resume:
        d.mkdir(parents=True, exist_ok=True)
    with RunDir(d).hold(what):
        if plan.resume:
            check_resumable(d)
        else:
            check_out_dir(d, force)
        yield


def write_run_config(plan: RunPlan) -> None:
    """The run's configuration: what makes the directory a run (the data source, seed and configs)."""
    assert plan.run_dir is not None
    ds = plan.ds
    RunDir(plan.run_dir).write_config(
        {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "source": ds.source,
            "dataset": ds.name,
            "kind": ds.kind,
            "seed": plan.seed,
            "data_seed": plan.data_seed,
            "model": to_dict(plan.model_cfg),
            "train": to_dict(plan.train_cfg),
            "versions": versions(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
    )
