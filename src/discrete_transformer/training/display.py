"""What a user sees while restarts run: one progress line per restart, or one line each at its end.

A Rich progress bar when stdout is a terminal (step/steps, τ, best validation so far, status), a
plain line per finished restart when it is not (a log file, CI), or nothing (``progress=False``).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..verdict import Kind
from .loop import RestartResult


class RestartDisplay:
    """Rich progress bar (terminal), plain end-of-restart lines (not a terminal), or nothing."""

    def __init__(self, steps: dict[int, int], kind: str, enabled: bool) -> None:
        """`steps`: each restart's (seed's) step count (its portfolio variant may scale them)."""
        self.console = Console()
        self.kind = kind
        self.steps = dict(steps)
        self.mode = "off" if not enabled else ("rich" if self.console.is_terminal else "plain")
        self.best: dict[int, float] = {}
        self.progress: Progress | None = None
        self.tasks: dict[int, Any] = {}
        if self.mode == "rich":
            self.progress = Progress(
                TextColumn("seed {task.fields[seed]:>3}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("τ {task.fields[tau]}"),
                TextColumn("best val {task.fields[best]}"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            for s in steps:
                self.tasks[s] = self.progress.add_task(
                    "", total=self.steps[s], seed=s, tau="  -  ", best="-", status=""
                )

    def _fmt_best(self, seed: int) -> str:
        v = self.best.get(seed)
        if v is None:
            return "-"
        return f"exact {100 * v:6.2f}%" if self.kind == Kind.DISCRETE else f"nMSE {v:.2e}"

    def __enter__(self) -> RestartDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def row(self, seed: int, row: dict) -> None:
        if self.kind == Kind.DISCRETE:
            v = float(row.get("val_exact", 0.0))
            self.best[seed] = max(self.best.get(seed, -1.0), v)
        else:
            v = float(row.get("val_nmse", float("inf")))
            self.best[seed] = min(self.best.get(seed, float("inf")), v)
        if self.progress is not None:
            self.progress.update(
                self.tasks[seed],
                completed=int(row["step"]) + 1,
                tau=f"{float(row['tau']):.3f}",
                best=self._fmt_best(seed),
            )

    def done(self, result: RestartResult, solved: bool) -> None:
        steps = self.steps[result.seed]
        status = "solved" if solved else ("stopped" if result.steps_run < steps else "done")
        if self.progress is not None:
            self.progress.update(
                self.tasks[result.seed],
                completed=steps if solved or status == "done" else result.steps_run,
                status=status,
            )
        elif self.mode == "plain":
            v = result.val
            score = (
                f"val exact {100 * v['exact']:.2f}% (nMSE {v['nmse']:.2e})"
                if self.kind == Kind.DISCRETE
                else f"val nMSE {v['nmse']:.2e}"
            )
            print(
                f"restart seed {result.seed}: {score}, {result.steps_run} steps, {result.seconds:.1f} s, {status}",
                flush=True,
            )

    def cancelled(self, seed: int) -> None:
        if self.progress is not None:
            self.progress.update(self.tasks[seed], status="skipped")


__all__ = ["RestartDisplay"]
