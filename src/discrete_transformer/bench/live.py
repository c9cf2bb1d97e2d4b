"""The live view of a bench: a Rich table of finished tasks above a progress bar (terminal), or
one plain line per finished task (not a terminal)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..extraction.verify import LONGER_FACTOR, longer_label
from .report_strict import OFF_RANGE, longer_cell, row_factor, wider_cell
from .runner import as_float, row_verified

MAX_ROWS = 60  # the live table shows the most recent rows; the reports have them all


def _score(row: dict[str, Any], prefix: str) -> str:
    if row.get("kind") == "discrete":
        return f"{100 * as_float(row.get(prefix + '_test_exact')):.1f}%"
    return f"{as_float(row.get(prefix + '_test_nmse')):.1e}"


def row_cells(row: dict[str, Any]) -> list[str]:
    name = escape(str(row["task"])) + (f" s{row['seed']}" if int(row.get("seed", 0)) else "")
    if row.get("error"):
        return [
            name,
            str(row.get("kind", "")),
            f"[red]failed: {escape(str(row['error']))}[/red]",
            "",
            "",
            "",
            "",
            "",
            "",
            f"{as_float(row.get('wall_s')):.0f}",
        ]
    ver = "[green]yes[/green]" if row_verified(row) else "[red]no[/red]"
    lg = longer_cell(row, mixed=row_factor(row) != LONGER_FACTOR)  # a resumed older row names its factor
    return [
        name,
        str(row["kind"]),
        _score(row, "dt"),
        ver,
        lg,
        wider_cell(row),
        f"{row['program_modules']}/{row['program_ops']}",
        _score(row, "gru"),
        _score(row, "transformer"),
        f"{as_float(row.get('wall_s')):.0f}" + (" (resumed)" if row.get("resumed") else ""),
    ]


class LiveView:
    HEAD = ("task", "kind", "DT model", "verified", longer_label(), OFF_RANGE, "modules/ops", "GRU", "Transformer", "s")

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console()
        self.rich = self.console.is_terminal
        self.rows: list[list[str]] = []
        self.progress = Progress(
            TextColumn("bench"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self.console
        )
        self.task = self.progress.add_task("", total=total)
        self.live: Live | None = None

    def _render(self) -> Group:
        table = Table(title="dtx bench", show_lines=False)
        for h in self.HEAD:
            table.add_column(h, no_wrap=True)
        for cells in self.rows[-MAX_ROWS:]:
            table.add_row(*cells)
        return Group(table, self.progress)

    def __enter__(self) -> LiveView:
        if self.rich:
            self.live = Live(self._render(), console=self.console, refresh_per_second=2)
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()

    def __call__(self, row: dict[str, Any], done: int, total: int) -> None:
        cells = row_cells(row)
        self.rows.append(cells)
        self.progress.update(self.task, completed=done, total=total)
        if self.live is not None:
            self.live.update(self._render())
        else:
            text = "  ".join(f"{h}={c}" for h, c in zip(self.HEAD, cells))
            self.console.print(f"[{done}/{total}] {text}", markup=True, highlight=False)


__all__ = ["LiveView", "row_cells"]
