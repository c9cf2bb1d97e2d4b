"""The extraction's input: a trained run and the data it is extracted on (:func:`load`).

A run is a :class:`~discrete_transformer.api.TrainResult` or a run directory; its data is the
``dataset`` given, the result's own, or the run's source reloaded (:func:`reload_dataset`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tasks import Dataset, load_source
from .config import ExtractionError

__all__ = ["RunData", "load", "reload_dataset"]


@dataclass(frozen=True)
class RunData:
    """A trained run (a ``TrainResult``) with the dataset it is extracted on and that
    dataset's seed (for generating longer sequences of a built-in task)."""

    run: Any
    dataset: Dataset
    data_seed: int


def reload_dataset(run_dir: Path, cfg: dict) -> Dataset:
    """The run's data, reloaded from the source its ``config.json`` (`cfg`) names."""
    source = str(cfg.get("source", ""))
    kind = cfg.get("kind") or None
    seed = int(cfg.get("data_seed", 0))
    name = source.removeprefix("task:")
    try:
        return load_source(name, seed=seed, kind=kind)
    except (ValueError, OSError) as e:
        raise ExtractionError(
            f"{run_dir}: cannot reload the run's data from {source!r}: {str(e).splitlines()[0]}"
        ) from None


def load(obj: Any, dataset: Dataset | None) -> RunData:
    """The run `obj` (a TrainResult or a run directory) and the data to extract it on."""
    # A function-level import: api imports this package's pipeline (api.extract), so a top-level
    # import would be a cycle. It goes once api.extract passes a loaded TrainResult (see
    # pipeline.extract): only the TrainResult branch remains, and it needs nothing from api.
    from ..api import RunDirError, TrainResult, is_run_dir, load_run

    if isinstance(obj, TrainResult):
        run_data = _from_result(obj, dataset)
    elif isinstance(obj, (str, os.PathLike)):
        d = Path(obj)
        if not d.is_dir():
            raise RunDirError(f"{d}: run directory not found")
        if not is_run_dir(d):
            raise RunDirError(f"{d}: not a run directory (no config.json written by `dtx train`)")
        run = load_run(d)
        cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        ds = dataset if dataset is not None else reload_dataset(d, cfg)
        run_data = RunData(run, ds, int(cfg.get("data_seed", 0)))
    else:
        raise TypeError(f"extract() takes a TrainResult or a run directory, got {type(obj).__name__}")
    ds, run = run_data.dataset, run_data.run
    if ds.n_in != run.spec.n_in or ds.n_out != run.spec.n_out:
        raise ExtractionError(
            f"dataset {ds.name!r} has {ds.n_in} input / {ds.n_out} output channel(s), the model "
            f"{run.spec.n_in} / {run.spec.n_out}"
        )
    return run_data


def _from_result(run: Any, dataset: Dataset | None) -> RunData:
    """A TrainResult's data: `dataset`, else the result's own, else reloaded from its run
    directory's config (which also gives the data seed)."""
    data_seed = 0
    cfg: dict = {}
    if run.run_dir is not None and (Path(run.run_dir) / "config.json").is_file():
        try:
            cfg = json.loads((Path(run.run_dir) / "config.json").read_text(encoding="utf-8"))
            data_seed = int(cfg.get("data_seed", 0))
        except (OSError, ValueError):
            pass
    ds = dataset if dataset is not None else run.dataset
    if ds is None:
        if not cfg:
            raise ExtractionError("the result carries no dataset; pass dataset=")
        ds = reload_dataset(Path(run.run_dir), cfg)
    return RunData(run, ds, data_seed)
