"""`dtx analyze`: the dynamics analysis of one run directory, or of every run under a directory.

One run: the dynamics figure and transition document in ``RUN/analysis/``
(:meth:`~..rundir.RunDir.write_analysis`). A tree of runs (e.g. a bench output, runs at
``OUT/tasks/<task>/``): the same for each run, plus ``DIR/analysis/cross_task.png``,
``transitions.csv`` and ``transitions.json``. A run's own
files are written while holding its lock (:mod:`..rundir_lock`): a run another process is
writing is refused (one run) or skipped (a tree).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import RunDirError, is_run_dir
from ..fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..rundir import ANALYSIS_DIR, RunDir
from .dynamics import (
    DynamicsConfig,
    MetricsError,
    Transition,
    load_metrics,
    run_transitions,
)
from .plots import cross_task_figure, dynamics_figure

__all__ = ["RunAnalysis", "analyze_run", "analyze_tree", "find_run_dirs", "run_label"]

CSV_FIELDS = (
    "run",
    "source",
    "seed",
    "detected",
    "step",
    "tau",
    "loss",
    "selector_entropy",
    "attention_entropy",
    "entropy_before",
    "entropy_after",
    "loss_before",
    "loss_after",
    "width_log_tau",
    "rate",
    "reason",
)


@dataclass(frozen=True)
class RunAnalysis:
    run_dir: Path
    label: str  # what the run learned (task or file name)
    rows: list[dict[str, Any]]
    transitions: dict[int, Transition]
    best_seed: int
    png: Path | None = None
    json: Path | None = None

    @property
    def best(self) -> Transition:
        return self.transitions.get(self.best_seed) or next(iter(self.transitions.values()))


def find_run_dirs(root: str | os.PathLike) -> list[Path]:
    """Every run directory at or below `root` (sorted; a run's own subfolders are not searched)."""
    root = Path(root)
    found: list[Path] = []

    def walk(d: Path) -> None:
        if is_run_dir(d):
            found.append(d)
            return
        try:
            subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return
        for p in subs:
            walk(p)

    walk(root)
    return found


def run_label(run_dir: Path) -> str:
    """A short name for the run: the dataset name from its configuration, else the directory name."""
    cfg = RunDir(run_dir).config_dict()
    return str(cfg.get("dataset") or cfg.get("source") or run_dir.name)


def analyze_run(run_dir: str | os.PathLike, cfg: DynamicsConfig = DynamicsConfig(), write: bool = True) -> RunAnalysis:
    """Detect every seed's transition and (with `write`) write the figure and transition.json.
    Raises :class:`~..api.RunDirError` (with `write`) while another process writes the run."""
    d = Path(run_dir)
    rd = RunDir(d)
    rows = load_metrics(d)
    transitions = run_transitions(rows, cfg)
    result = rd.result_dict()
    best = result.get("best_seed")
    best_seed = int(best) if best is not None and int(best) in transitions else min(transitions)
    label = run_label(d)
    ra = RunAnalysis(d, label, rows, transitions, best_seed)
    if not write:
        return ra
    with rd.hold("dtx analyze"):
        png, js = rd.write_analysis(
            dynamics_figure(rows, transitions, best_seed, f"{label}: annealing dynamics"),
            {
                "format": "dtx-transition",
                "version": 1,
                "run": label,
                "best_seed": best_seed,
                "definition": "argmax over search-phase rows of dH/dlog(tau), H = mean selector entropy "
                "Gaussian-smoothed in log(tau); see docs/analysis.md",
                "config": {"smooth": cfg.smooth, "min_rows": cfg.min_rows, "min_drop": cfg.min_drop},
                "transition": ra.best.to_dict(),
                "seeds": [t.to_dict() for _, t in sorted(transitions.items())],
            },
        )
    return RunAnalysis(d, label, rows, transitions, best_seed, png, js)


def analyze_tree(
    root: str | os.PathLike,
    cfg: DynamicsConfig = DynamicsConfig(),
    on_run: Callable[[int, int, Path], None] | None = None,
) -> tuple[list[RunAnalysis], list[tuple[Path, str]], Path, Path]:
    """Analyse every run below `root`; write the cross-task figure and table into root/analysis.
    Returns (analyses, skipped runs with the reason, figure path, csv path); a run another
    process is writing is skipped."""
    root = Path(root)
    runs = find_run_dirs(root)
    if not runs:
        raise MetricsError(f"{root}: no run directories found below it")
    done: list[RunAnalysis] = []
    skipped: list[tuple[Path, str]] = []
    for i, d in enumerate(runs):
        if on_run:  # progress: (index, number of runs, run directory)
            on_run(i, len(runs), d)
        try:
            done.append(analyze_run(d, cfg))
        except (MetricsError, RunDirError) as e:
            skipped.append((d, str(e)))
    if not done:
        raise MetricsError(f"{root}: none of the {len(runs)} run(s) has a usable metrics log")
    out = root / ANALYSIS_DIR
    out.mkdir(exist_ok=True)
    names = [_unique_label(a, done) for a in done]
    fig = out / "cross_task.png"
    atomic_write_bytes(
        fig,
        cross_task_figure(
            [(n, [r for r in a.rows if int(r.get("seed", 0)) == a.best_seed], a.best) for n, a in zip(names, done)]
        ),
    )
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    table = []
    for n, a in zip(names, done):
        t = a.best.to_dict()
        row = {k: t.get(k) for k in CSV_FIELDS if k in t}
        row.update(run=str(a.run_dir.relative_to(root)) if a.run_dir != root else ".", source=n)
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_FIELDS})
        table.append(row)
    path_csv = out / "transitions.csv"
    atomic_write_text(path_csv, buf.getvalue())
    atomic_write_json(
        out / "transitions.json",
        {"format": "dtx-transitions", "version": 1, "runs": table, "skipped": [[str(p), r] for p, r in skipped]},
    )
    return done, skipped, fig, path_csv


def _unique_label(a: RunAnalysis, all_: list[RunAnalysis]) -> str:
    """The run's label, with its directory name added when two runs share a label."""
    if sum(1 for b in all_ if b.label == a.label) > 1:
        return f"{a.label} ({a.run_dir.name})"
    return a.label
