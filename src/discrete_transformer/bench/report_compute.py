"""The bench reports' compute: per task, each method's training sequences seen and training seconds
(issue "A fair comparison": a reader must be able to tell a fair race from an unfair one).

Everything is read from the rows, as the units that trained recorded it (bench/runner.py:
``dt_seqs`` from training/evaluation.Seen, ``gru_seqs`` / ``transformer_seqs`` from
bench/baselines.py or bench/mips_rnn.py, kept with a cached result by bench/baseline_cache.py);
nothing is reconstructed here from step counts or configurations. A row from before a field shows
"–" and is left out of the totals, never counted as zero. Used by :mod:`.report` (the section)
and :mod:`.generalization` (the summary line).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from .report_baselines import CACHED_MARK
from .runner import as_float

METHODS = (("dt", "DT"), ("gru", "GRU"), ("transformer", "Transformer"))
SECONDS = {"dt": "dt_train_s", "gru": "gru_s", "transformer": "transformer_s"}  # each method's training seconds
_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
HEADING = "## Training compute per task"  # the section's title: what follows the bench report's results table


def known(v: Any) -> float | None:
    """A row's number, or None when it is missing or not a finite number (rows may predate a field)."""
    x = as_float(v)
    return x if math.isfinite(x) else None


def human(n: Any) -> str:
    """A count as a short cell, three significant digits: 950, 1.2k, 12.8k, 128k, 3.4M; – when unknown."""
    x = known(n)
    if x is None:
        return "–"
    x = float(f"{x:.3g}")  # round first, so that 999,999 reads 1M, not 1e+03k
    for scale, unit in _UNITS:
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}"


def seconds(v: Any) -> str:
    """Seconds as a cell: one decimal below 10 s, whole seconds above; – when unknown."""
    x = known(v)
    if x is None:
        return "–"
    return f"{x:.1f}" if abs(x) < 10 else f"{x:,.0f}"


def cells(row: dict[str, Any], method: str) -> tuple[str, str]:
    """A method's (sequences, seconds) cells in a row; a baseline read from the cache is marked."""
    mark = f" {CACHED_MARK}" if method != "dt" and row.get(f"{method}_cached") else ""
    return human(row.get(f"{method}_seqs")) + mark, seconds(row.get(SECONDS[method])) + mark


def _label(row: dict[str, Any]) -> str:
    seed = int(known(row.get("seed")) or 0)
    return str(row.get("task", "?")).replace("|", "/") + (f" (seed {seed})" if seed else "")


def compute_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per row that did not fail: each method's sequences and seconds."""
    out = [
        "| task | DT sequences | DT s | GRU sequences | GRU s | Transformer sequences | Transformer s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r.get("error"):
            out.append(f"| {_label(r)} | " + " | ".join(c for m, _ in METHODS for c in cells(r, m)) + " |")
    return out


def _total(rows: Sequence[dict[str, Any]], key: str) -> tuple[float, int]:
    """Sum of a field over the rows that have it, and how many do."""
    xs = [x for x in (known(r.get(key)) for r in rows) if x is not None]
    return sum(xs), len(xs)


def dt_gru_ratios(rows: Sequence[dict[str, Any]]) -> list[float]:
    """DT's sequences over the GRU's, per row where both are known (and the GRU's is > 0)."""
    out = []
    for r in rows:
        dt, gru = known(r.get("dt_seqs")), known(r.get("gru_seqs"))
        if dt is not None and gru is not None and gru > 0:
            out.append(dt / gru)
    return out


def _ratio(x: float) -> str:
    return f"{x:.2g}×" if x < 10 else f"{x:,.0f}×"


def compute_summary(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The reports' line on compute: each method's sequences and seconds summed over the rows, the
    DT restarts' own seconds, and the median DT/GRU sequences ratio. None without a row."""
    ok = [r for r in rows if not r.get("error")]
    if not ok:
        return []
    n = len(ok)
    parts = []
    for method, name in METHODS:
        seqs, k = _total(ok, f"{method}_seqs")
        secs, j = _total(ok, SECONDS[method])
        text = f"{name} {human(seqs) if k else '–'} sequences" + (f" (over {k} of {n} rows)" if 0 < k < n else "")
        text += f", {seconds(secs) if j else '–'} s" + (f" (over {j} of {n} rows)" if 0 < j < n else "")
        if method == "dt":
            own, m = _total(ok, "dt_restarts_s")
            if m:
                text += f" of wall time ({seconds(own)} s of its restarts' own, one thread each)"
        parts.append(text)
    ratios = dt_gru_ratios(ok)
    unit = "task" if len({str(r.get("task")) for r in ok}) == n else "(task, seed) row"
    ratio = (
        f"DT/GRU sequences: median {_ratio(statistics.median(ratios))} over {len(ratios)} {unit}"
        f"{'s' if len(ratios) != 1 else ''} (from {_ratio(min(ratios))} to {_ratio(max(ratios))})"
        if ratios
        else "DT/GRU sequences: no row with both counts"
    )
    cached = any(r.get(f"{m}_cached") for r in ok for m in ("gru", "transformer"))
    return [
        "- training compute, summed over tasks (sequences seen; seconds): "
        + "; ".join(parts)
        + f"; {ratio}"
        + (f"; a baseline read from the cache ({CACHED_MARK}) counts what its one training took" if cached else "")
    ]


def compute_section(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The bench report's compute section: what is counted, the summary line and the table."""
    ok = [r for r in rows if not r.get("error")]
    if not ok:
        return []
    cached = any(r.get(f"{m}_cached") for r in ok for m in ("gru", "transformer"))
    return [
        HEADING,
        "",
        "*sequences*: training sequences seen, one per sequence per model trained on it — a baseline's "
        "batch once per step; a DT search step's batch once per population member (all members run it), a "
        "hardening step's once per kept member, and each loss evaluation of an L-BFGS polish (trial or final) "
        "its whole batch, summed over the restarts that ran. Validation and test evaluations count for no "
        "method. *DT s*: wall seconds from the task's first restart to the end of its last, plus "
        "loading and scoring the run (restarts may run side by side; extraction not included); *GRU s*, "
        "*Transformer s*: each baseline's own training seconds on one thread. –: not recorded (a row or "
        "cache entry from before the count); failed rows are not listed."
        + (
            f" {CACHED_MARK}: read from the baseline cache: the sequences and seconds of the training that "
            "filled it (`dtx baselines` or an earlier `dtx bench`, as the conditions above say)."
            if cached
            else ""
        ),
        "",
        *compute_summary(ok),
        "",
        *compute_table(ok),
        "",
    ]


__all__ = [
    "HEADING",
    "METHODS",
    "cells",
    "compute_section",
    "compute_summary",
    "compute_table",
    "dt_gru_ratios",
    "human",
    "known",
    "seconds",
]
