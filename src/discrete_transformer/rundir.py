"""A run directory's layout and file I/O, in one place: :class:`RunDir`.

Every module that reads or writes inside a run directory goes through a :class:`RunDir`, so the
file names live here only and every write is atomic (:mod:`.fileio`). What the files *contain*
is decided by their producers (the api's config and result, :mod:`.training.checkpoint`,
:mod:`.training.resume`, the extraction's :class:`~.extraction.program.Program`, the bench's
rows); this module only names, writes and reads them. A run directory holds:

- ``config.json`` — ``{"format": "dtx-run", ...}``: source, kind, seed, model and train configs,
  versions of Python, torch, NumPy and this package. Written before training starts, so an
  interrupted run is still recognisable as a run directory.
- ``metrics_seed{N}.jsonl`` while restart N trains (one row per evaluation), then all of them
  merged in seed order into ``metrics.jsonl`` (each row has ``seed``).
- ``model.safetensors`` + ``model.json`` — the best model (see :mod:`.training.checkpoint`).
- ``result.json`` — validation and test metrics, wall time, steps, best seed, every restart.
- ``restarts/seed{N}.safetensors`` + ``.json`` — each restart as it finishes, so that an
  interrupted run can be resumed (see :mod:`.training.resume`).
- ``program.py`` + ``verification.json`` — the extracted program and its verification.
- ``analysis/dynamics.png`` + ``analysis/transition.json`` (``dtx analyze``), ``report.html``
  (``dtx report``).
- In a bench job's run directory: ``bench_row.json`` (the finished row) and, while the job runs,
  ``stop`` (its restarts end at their next evaluation).
- ``.dtx.lock`` — only while a command writes the directory: one process at a time (see
  :mod:`.rundir_lock`); a leftover one from a killed process is ignored.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fileio import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json_dict
from .rundir_lock import LOCK_FILE, RunDirError, contents, hold

RUN_FORMAT = "dtx-run"
RUN_VERSION = 1

CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
SEED_LOG_FILE = "metrics_seed{seed}.jsonl"
WEIGHTS_FILE = "model.safetensors"
MODEL_FILE = "model.json"
RESTARTS_DIR = "restarts"
RESTART_WEIGHTS_FILE = "seed{seed}.safetensors"
RESTART_FILE = "seed{seed}.json"
PROGRAM_FILE = "program.py"
VERIFICATION_FILE = "verification.json"
ROW_FILE = "bench_row.json"
STOP_FILE = "stop"
ANALYSIS_DIR = "analysis"
DYNAMICS_FILE = "dynamics.png"
TRANSITION_FILE = "transition.json"
REPORT_FILE = "report.html"

NOT_A_RUN = f"not a run directory (no {CONFIG_FILE} written by `dtx train`)"

__all__ = [
    "ANALYSIS_DIR",
    "CONFIG_FILE",
    "DYNAMICS_FILE",
    "LOCK_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "NOT_A_RUN",
    "PROGRAM_FILE",
    "REPORT_FILE",
    "RESTARTS_DIR",
    "RESULT_FILE",
    "ROW_FILE",
    "RUN_FORMAT",
    "RUN_VERSION",
    "STOP_FILE",
    "TRANSITION_FILE",
    "VERIFICATION_FILE",
    "WEIGHTS_FILE",
    "RunDir",
    "RunDirError",
]


@dataclass(frozen=True)
class RunDir:
    """One run directory (it need not exist yet): its files' paths and their reads and writes."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ---------------------------------------------------------------- layout
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def result_path(self) -> Path:
        return self.path / RESULT_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def model_path(self) -> Path:
        """The checkpoint's JSON half (configs, data spec, SHA-256 of the weights)."""
        return self.path / MODEL_FILE

    @property
    def restarts_dir(self) -> Path:
        return self.path / RESTARTS_DIR

    @property
    def program_path(self) -> Path:
        return self.path / PROGRAM_FILE

    @property
    def verification_path(self) -> Path:
        return self.path / VERIFICATION_FILE

    @property
    def row_path(self) -> Path:
        return self.path / ROW_FILE

    @property
    def stop_path(self) -> Path:
        return self.path / STOP_FILE

    @property
    def analysis_dir(self) -> Path:
        return self.path / ANALYSIS_DIR

    @property
    def dynamics_path(self) -> Path:
        return self.analysis_dir / DYNAMICS_FILE

    @property
    def transition_path(self) -> Path:
        return self.analysis_dir / TRANSITION_FILE

    @property
    def report_path(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def seed_log(self, seed: int) -> Path:
        """Restart `seed`'s metrics log while the run trains (merged into metrics.jsonl at its end)."""
        return self.path / SEED_LOG_FILE.format(seed=seed)

    def seed_logs(self) -> list[Path]:
        """The per-seed metrics logs present, by name."""
        return sorted(self.path.glob(SEED_LOG_FILE.format(seed="*")))

    def metrics_logs(self) -> list[Path]:
        """The merged metrics log or, for an interrupted run, the per-seed logs."""
        return [self.metrics_path] if self.metrics_path.is_file() else self.seed_logs()

    def restart_files(self, seed: int) -> tuple[Path, Path]:
        """A kept restart's (weights, summary) files."""
        d = self.restarts_dir
        return d / RESTART_WEIGHTS_FILE.format(seed=seed), d / RESTART_FILE.format(seed=seed)

    def restart_summaries(self) -> list[Path]:
        """The kept restarts' summary files, by name (none when no restart has finished)."""
        d = self.restarts_dir
        return sorted(d.glob(RESTART_FILE.format(seed="*"))) if d.is_dir() else []

    # ---------------------------------------------------------------- ownership
    def hold(self, what: str) -> AbstractContextManager[None]:
        """Own the directory for a block (:func:`.rundir_lock.hold`); `what` names the command."""
        return hold(self.path, what)

    def contents(self) -> Iterator[Path]:
        """The directory's entries except the lock file."""
        return contents(self.path)

    def is_run(self) -> bool:
        """True when the directory holds a config.json written by ``train``."""
        try:
            doc = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        return isinstance(doc, dict) and doc.get("format") == RUN_FORMAT

    def clear(self) -> None:
        """Empty the directory, keeping the lock file: removing it would let another process
        lock a new one. (Callers check :meth:`is_run` first.)"""
        for child in self.contents():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    # ---------------------------------------------------------------- config and result
    def read_config(self) -> dict[str, Any]:
        """The run's configuration; :class:`RunDirError` when missing, corrupt or not a run's."""
        return _read_run_json(self.config_path)

    def read_result(self) -> dict[str, Any]:
        """The finished run's result; :class:`RunDirError` when missing, corrupt or not a run's."""
        return _read_run_json(self.result_path)

    def config_dict(self) -> dict[str, Any]:
        """The configuration as far as it can be read ({} otherwise): for readers that degrade."""
        return read_json_dict(self.config_path)

    def result_dict(self) -> dict[str, Any]:
        """The result as far as it can be read ({} otherwise): for readers that degrade."""
        return read_json_dict(self.result_path)

    def has_result(self) -> bool:
        """Whether the run finished (its result is written last)."""
        return self.result_path.is_file()

    def write_config(self, doc: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, doc)

    def write_result(self, doc: dict[str, Any]) -> None:
        atomic_write_json(self.result_path, doc)

    # ---------------------------------------------------------------- metrics
    def metrics_rows(self) -> list[Any]:
        """The merged metrics log's rows ([] when there is none); lines that are not JSON are skipped."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    def merge_seed_logs(self, seeds: Iterable[int]) -> Path:
        """Concatenate the per-seed logs (seed order) into metrics.jsonl, atomically; remove them."""
        seeds = list(seeds)
        parts = []
        for s in sorted(seeds):
            p = self.seed_log(s)
            if p.exists():
                text = p.read_text(encoding="utf-8")
                if text and not text.endswith("\n"):
                    text += "\n"
                parts.append(text)
        atomic_write_text(self.metrics_path, "".join(parts))
        for s in seeds:
            p = self.seed_log(s)
            if p.exists():
                p.unlink()
        return self.metrics_path

    # ---------------------------------------------------------------- model and restarts
    def write_checkpoint(self, weights: bytes, model: dict[str, Any]) -> None:
        """The best model: its weights first, then the JSON that describes (and checksums) them."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.weights_path, weights)
        atomic_write_json(self.model_path, model)

    def write_restart(self, seed: int, weights: bytes, summary: dict[str, Any]) -> None:
        """A finished restart: weights first, then the summary that marks it complete."""
        w_path, j_path = self.restart_files(seed)
        w_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(w_path, weights)
        atomic_write_json(j_path, summary)

    # ---------------------------------------------------------------- program
    def has_program(self) -> bool:
        return self.program_path.is_file() and self.verification_path.is_file()

    def read_program(self) -> str:
        return self.program_path.read_text(encoding="utf-8")

    def write_program(self, source: str, verification: dict[str, Any]) -> tuple[Path, Path]:
        """The extracted program and its verification (both atomically); their paths."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.program_path, source)
        atomic_write_json(self.verification_path, verification)
        return self.program_path, self.verification_path

    # ---------------------------------------------------------------- analysis and report
    def write_analysis(self, figure: bytes, transition: dict[str, Any]) -> tuple[Path, Path]:
        """``dtx analyze``'s figure and transition document; their paths."""
        self.analysis_dir.mkdir(exist_ok=True)
        atomic_write_bytes(self.dynamics_path, figure)
        atomic_write_json(self.transition_path, transition)
        return self.dynamics_path, self.transition_path

    def write_report(self, page: str) -> Path:
        atomic_write_text(self.report_path, page)
        return self.report_path

    # ---------------------------------------------------------------- bench job
    def read_row(self) -> dict[str, Any] | None:
        """The bench job's finished row; None when it is missing or unreadable."""
        if not self.row_path.is_file():
            return None
        try:
            doc = json.loads(self.row_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def write_row(self, row: dict[str, Any]) -> None:
        atomic_write_json(self.row_path, row)

    def request_stop(self) -> None:
        """Ask the job's running restarts to end at their next evaluation."""
        self.stop_path.touch()

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def clear_stop(self) -> None:
        if self.stop_path.exists():
            self.stop_path.unlink()


def _read_run_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunDirError(f"{path}: file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunDirError(f"{path}: corrupt JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise RunDirError(f"{path}: not a discrete-transformer run file")
    if doc.get("version") != RUN_VERSION:
        raise RunDirError(f"{path}: unsupported run version {doc.get('version')!r} (this package reads {RUN_VERSION})")
    return doc
