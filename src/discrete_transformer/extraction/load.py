"""The extraction's input: a trained run and the data it is extracted on (:func:`load`).

A run is a :class:`~discrete_transformer.api.TrainResult`; its data is the
``dataset`` given, the result's own, or the run's source reloaded (:func:`reload_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..rundir import RunDir
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
    """The run's data, reloaded from the source its configuration (`cfg`) names."""
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


def load(run: Any, dataset: Dataset | None) -> RunData:
    """The trained run (a ``TrainResult``; ``api.extract`` loads a run directory into one) and the
    data to extract it on."""
    run_data = _from_result(run, dataset)
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
    cfg = RunDir(Path(run.run_dir)).config_dict() if run.run_dir is not None else {}
    try:
        data_seed = int(cfg.get("data_seed", 0))
    except (TypeError, ValueError):
        data_seed = 0
    ds = dataset if dataset is not None else run.dataset
    if ds is None:
        if not cfg:
            raise ExtractionError("the result carries no dataset; pass dataset=")
        ds = reload_dataset(Path(run.run_dir), cfg)
    return RunData(run, ds, data_seed)
