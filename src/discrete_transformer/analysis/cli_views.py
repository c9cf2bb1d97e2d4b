"""The terminal side of `dtx analyze` and `dtx report`: check the path, run, print a table.

Kept out of cli.py so the command functions there stay two lines each. `fail` is cli_common.fail
(one red line, exit 2).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..api import RunDirError, is_run_dir
from ..extraction.pipeline import ExtractionError
from ..rundir import ANALYSIS_DIR, DYNAMICS_FILE, NOT_A_RUN
from ..training.checkpoint import CheckpointError
from .analyze import analyze_run, analyze_tree
from .dynamics import MetricsError
from .report import write_report

Fail = Callable[[str], NoReturn]


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "—" if v is None else format(v, spec)


def analyze_directory(directory: Path, console: Console, fail: Fail) -> None:
    if not directory.is_dir():
        fail(f"{directory}: directory not found")
    try:
        if is_run_dir(directory):
            runs, skipped, fig, csv = [analyze_run(directory)], [], None, None
        else:
            with _progress(console) as bar:
                task = bar.add_task("analysing runs", total=None)

                def step(i: int, n: int, d: Path) -> None:
                    bar.update(task, completed=i, total=n, description=f"analysing {escape(d.name)}")

                runs, skipped, fig, csv = analyze_tree(directory, on_run=step)
    except (MetricsError, RunDirError) as e:  # RunDirError: another process is writing the run
        fail(str(e))
    except OSError as e:
        fail(f"{directory}: cannot write the analysis: {e.strerror or e}")
    except KeyboardInterrupt:  # every file is written atomically: nothing half-written is left
        _interrupted()
    table = Table(title="annealing transition (best seed): steepest fall of selector entropy H per log τ")
    for col in ("run", "step", "τ", "loss", "H start→at→end", "width", "½-drop"):
        table.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
    notes: list[str] = []
    for a in runs:
        t = a.best
        if not t.detected:
            table.add_row(escape(a.label), "none", "", "", "", "", "")
            notes.append(f"{escape(a.label)}: no transition: {escape(t.reason)}")
            continue
        h = f"{t.entropy_before:.2f}→{t.selector_entropy:.2f}→{t.entropy_after:.2f}"
        table.add_row(
            escape(a.label),
            str(t.step),
            _fmt(t.tau),
            _fmt(t.loss),
            h,
            _fmt(t.width_log_tau, ".2f"),
            _fmt(t.extra.get("midpoint_step"), ".0f"),
        )
    table.caption = "width: log-τ span of the 25→75 % fall of H; ½-drop: step where H has fallen half way"
    console.print(table)
    for line in notes:
        console.print(line)
    for p, why in skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(str(p))}: {escape(why)}")
    written = (
        [str(a.png) for a in runs if a.png]
        if len(runs) == 1
        else [f"{len(runs)} × <run>/{ANALYSIS_DIR}/{DYNAMICS_FILE}"]
    )
    if fig is not None:
        written += [str(fig), str(csv)]
    console.print("written: " + escape(", ".join(written)))


def report_directory(run_dir: Path, console: Console, fail: Fail) -> None:
    if not run_dir.is_dir():
        fail(f"{run_dir}: run directory not found")
    if not is_run_dir(run_dir):
        fail(f"{run_dir}: {NOT_A_RUN}")
    try:
        with console.status("building the report: extraction, figures ...") if console.is_terminal else _null():
            path, summary = write_report(run_dir)
    except (RunDirError, CheckpointError, ExtractionError, MetricsError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"{run_dir}: cannot write the report: {e.strerror or e}")
    except KeyboardInterrupt:
        _interrupted()
    console.print(f"{escape(summary)}\nwritten: {escape(str(path))}")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(console: Console) -> Any:
    """A Rich progress bar on a terminal; a silent stand-in otherwise."""
    if console.is_terminal:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
    return _Silent()


class _Silent:
    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _interrupted() -> NoReturn:
    Console(stderr=True).print("[yellow]interrupted[/yellow]")
    raise typer.Exit(130)
