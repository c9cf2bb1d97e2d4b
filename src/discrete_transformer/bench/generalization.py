"""The per-family report of a generated-suite bench: ``generalization.md`` in the bench directory.

Why a report of its own: the public suite's 47 tasks are the ones the method was developed on, so
its verified count says little about unseen tasks. The generated suite draws new tasks from task
families (generators), several of which generalise a public task; this report answers "does the
method solve tasks it was not tuned on, and which families and parameter ranges break it?".

It reads rows alone (the fields ``new_row`` copies from the task registry: ``generator``,
``generalises``, ``params``, ``bands``, ``reference_ops``, ``T``), so a bench directory keeps its
report whatever the generators become; rows without those fields (older benches) are grouped by
their ``family`` and show "–" where a field is missing.

Counting rule as in :mod:`.report`: with ``--seeds N`` a task is verified (its model exact) when
any of its seeds is; the task's other columns come from its first verified seed (else its first,
:func:`.report.task_row`). Size ratios are :func:`.report.size_ratio`'s, summed up by
:func:`.report.size_summary`, as in the benchmark report.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_text
from ..tasks import TASKS, get_task
from .report import (
    conditions,
    fmt_cell,
    ratio_cell,
    read_results,
    score_cell,
    size_ratio,
    size_summary,
    size_text,
    summarise,
    task_row,
)
from .report_compute import compute_summary
from .report_strict import OFF_RANGE, factors, legend, longer_cell, longer_header, task_counts, wider_cell
from .runner import as_float, row_verified

GENERATED = "generated"  # the ``family`` of a generated task's row
REPORT_FILE = "generalization.md"
PARAMS_WIDTH = 48  # characters of a task's parameter string in the per-task table


def is_generated(row: dict[str, Any]) -> bool:
    return row.get("family") == GENERATED


def load_public_results(path: str | Path) -> dict[str, Any]:
    """The public tasks a previous bench verified, from its ``results.json``: ``{"path",
    "verified", "tasks"}``. A generated bench does not run the public tasks, so which of them the
    library verifies is read from a public bench rather than assumed.

    Raises ``ValueError`` (one line) when the file is missing, is not a bench's results.json, or
    holds no public task."""
    p = Path(path)
    try:
        rows = read_results(p)["rows"]
    except ValueError as e:
        raise ValueError(f"--public-results {e}") from None
    families = {t.family for t in TASKS} - {GENERATED}
    public = [r for r in rows if isinstance(r, dict) and r.get("family") in families and "task" in r]
    if not public:
        raise ValueError(f"--public-results {p}: holds no public task; give a bench of the public suite (--suite all)")
    verified = sorted({str(r["task"]) for r in public if row_verified(r)})
    return {"path": str(p), "verified": verified, "tasks": len({str(r["task"]) for r in public})}


def _canonical(name: str) -> str:
    """A task name as the registry spells it (any spelling get_task accepts), else unchanged."""
    try:
        return get_task(name).name
    except ValueError:
        return name


@dataclass(frozen=True)
class TaskResult:
    """One generated task over its seeds: ``row`` is the row its columns are read from."""

    name: str
    family: str
    row: dict[str, Any]
    rows: tuple[dict[str, Any], ...] = field(repr=False)

    @property
    def verified(self) -> bool:
        return any(row_verified(r) for r in self.rows)

    @property
    def model_exact(self) -> bool:
        return any(r.get("dt_model_solved") for r in self.rows)

    @property
    def generalises(self) -> str:
        return str(self.row.get("generalises") or "")

    @property
    def ops(self) -> float | None:
        return _positive(self.row.get("program_ops"))

    @property
    def reference_ops(self) -> float | None:
        return _positive(self.row.get("reference_ops"))

    @property
    def ratio(self) -> float | None:
        """Program size over the reference program's, for a verified program only."""
        return size_ratio(self.row)


def _positive(v: Any) -> float | None:
    x = as_float(v)
    return x if math.isfinite(x) and x > 0 else None


def task_results(rows: Iterable[dict[str, Any]]) -> list[TaskResult]:
    """The finished rows grouped by task, in row order (failed rows are not tasks: see ``summarise``)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("error"):
            groups.setdefault(str(r["task"]), []).append(r)
    out = []
    for name, rs in groups.items():
        rs.sort(key=lambda r: int(r.get("seed", 0)))
        row = task_row(rs)
        out.append(TaskResult(name, str(row.get("generator") or row.get("family") or "?"), row, tuple(rs)))
    return out


def _median(values: Iterable[float | None]) -> float | None:
    xs = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(xs) if xs else None


def _rate(k: int, n: int) -> str:
    return f"{100 * k / n:.0f} %" if n else "–"


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:g}"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _public_subset(tasks: Sequence[TaskResult], public: dict[str, Any] | None) -> tuple[list[TaskResult], str]:
    """The tasks of families that generalise a public task the library verifies, and how that
    set was decided (without ``--public-results``: every family that generalises a public task)."""
    if public is None:
        chosen = [t for t in tasks if t.generalises]
        return chosen, (
            "families generalising a public task (no `--public-results` given: all of them, verified or not)"
        )
    verified = {_canonical(n) for n in public.get("verified", [])}
    chosen = [t for t in tasks if t.generalises and _canonical(t.generalises) in verified]
    return chosen, (
        f"families generalising a public task verified in `{public.get('path', '?')}` "
        f"({len(verified)}/{public.get('tasks', '?')} public tasks verified)"
    )


def headline(tasks: Sequence[TaskResult], s: dict[str, Any], public: dict[str, Any] | None) -> str:
    n_ver = sum(t.verified for t in tasks)
    subset, how = _public_subset(tasks, public)
    k_ver = sum(t.verified for t in subset)
    size = size_text(*size_summary(t.ratio for t in tasks))
    return (
        f"Generated suite: verified {n_ver}/{len(tasks)} ({_rate(n_ver, len(tasks))}); "
        f"{how}: verified {k_ver}/{len(subset)} ({_rate(k_ver, len(subset))}); {size}; "
        f"median task time {s['median_task_s']:.0f} s; total wall {s['wall_min']:.1f} min"
        + (f"; {s['failed_rows']} job(s) failed, not counted" if s.get("failed_rows") else "")
    )


def family_table(tasks: Sequence[TaskResult], public: dict[str, Any] | None) -> list[str]:
    """One line per family (generator), then all families together."""
    verified = None if public is None else {_canonical(n) for n in public.get("verified", [])}
    families: dict[str, list[TaskResult]] = {}
    for t in tasks:
        families.setdefault(t.family, []).append(t)
    out = [
        (
            f"| family | generalises | tasks | verified | rate | also {longer_header(_rows(tasks))} | holds {OFF_RANGE} "
            "| model exact | median ops (verified) | median reference ops | median ratio (verified) | median task s |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in sorted(families):
        ts = families[name]
        gen = ts[0].generalises
        if gen and verified is not None and _canonical(gen) not in verified:
            gen += " (not verified)"
        out.append(_family_line(name, gen or "–", ts))
    if len(families) > 1:
        out.append(_family_line("**all**", "", tasks))
    return out


def _rows(tasks: Sequence[TaskResult]) -> list[dict[str, Any]]:
    return [r for t in tasks for r in t.rows]


def _family_line(name: str, generalises: str, ts: Sequence[TaskResult]) -> str:
    """A family's counts; *holds off-range* is "held / verified with the check" (– when none had it)."""
    n_ver = sum(t.verified for t in ts)
    ver = [t for t in ts if t.verified]
    time = _median(as_float(r.get("wall_s")) for t in ts for r in t.rows)
    strict = [task_counts(t.rows) for t in ts]
    checked = sum(c["off_range_checked"] for c in strict)
    held = f"{sum(c['verified_off_range'] for c in strict)}/{checked}" if checked else "–"
    return (
        f"| {_cell(name)} | {_cell(generalises)} | {len(ts)} | {n_ver} | {_rate(n_ver, len(ts))} "
        f"| {sum(c['verified_longer'] for c in strict)} | {held} "
        f"| {sum(t.model_exact for t in ts)} | {_num(_median(t.ops for t in ver))} "
        f"| {_num(_median(t.reference_ops for t in ts))} | {ratio_cell(_median(t.ratio for t in ver))} "
        f"| {'–' if time is None else f'{time:.0f}'} |"
    )


def _band_key(value: str) -> tuple[float, str]:
    """Bands in numeric order ("5-8" before "16-24"), by their first number."""
    m = re.search(r"-?\d+(?:\.\d+)?", value)
    return (float(m.group()) if m else math.inf, value)


def band_table(tasks: Sequence[TaskResult]) -> list[str]:
    """Verified rate per parameter band, for each band key: where a family breaks."""
    bands: dict[str, dict[str, list[TaskResult]]] = {}
    for t in tasks:
        for key, value in (t.row.get("bands") or {}).items():
            bands.setdefault(str(key), {}).setdefault(str(value), []).append(t)
    if not bands:
        return ["No parameter bands in these rows (rows from before the field, or tasks without bands)."]
    out = ["| parameter | band | tasks | verified | rate |", "|---|---|---|---|---|"]
    for key in sorted(bands):
        for value in sorted(bands[key], key=_band_key):
            ts = bands[key][value]
            n_ver = sum(t.verified for t in ts)
            out.append(f"| {_cell(key)} | {_cell(value)} | {len(ts)} | {n_ver} | {_rate(n_ver, len(ts))} |")
    return out


def params_text(params: Any) -> str:
    """``k=v, ...`` cut to :data:`PARAMS_WIDTH` characters: enough to tell tasks of a family apart."""
    if not isinstance(params, dict) or not params:
        return "–"

    def value(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ",".join(value(x) for x in v[:6]) + (",…" if len(v) > 6 else "") + "]"
        return fmt_cell(v)

    text = ", ".join(f"{k}={value(v)}" for k, v in params.items())
    return _cell(text if len(text) <= PARAMS_WIDTH else text[: PARAMS_WIDTH - 1] + "…")


def task_table(tasks: Sequence[TaskResult], failed: Sequence[dict[str, Any]]) -> list[str]:
    out = [
        f"| task | family | params | kind | T | verified | {longer_header(_rows(tasks))} | {OFF_RANGE} | DT model "
        "| ops | reference ops | ratio | task s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    mixed = len(factors(_rows(tasks))) > 1
    for t in tasks:
        r = t.row
        name = t.name + (f" (seed {r['seed']})" if int(r.get("seed", 0)) else "")
        out.append(
            f"| {_cell(name)} | {_cell(t.family)} | {params_text(r.get('params'))} | {r.get('kind', '–')} "
            f"| {fmt_cell(r.get('T'))} | {'**yes**' if t.verified else 'no'} | {longer_cell(r, mixed)} | {wider_cell(r)} "
            f"| {score_cell(r, 'dt')} | {fmt_cell(r.get('program_ops'))} | {fmt_cell(r.get('reference_ops'))} "
            f"| {ratio_cell(t.ratio)} | {as_float(r.get('wall_s')):.0f} |"
        )
    for r in failed:
        out.append(
            f"| {_cell(str(r['task']))} | {_cell(str(r.get('generator') or r.get('family', '')))} "
            f"| {params_text(r.get('params'))} | {r.get('kind', '–')} | {fmt_cell(r.get('T'))} "
            f"| failed: {_cell(str(r['error']))} | | | | | | | {fmt_cell(r.get('wall_s'))} |"
        )
    return out


def markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The report of ``rows`` (all of them: callers pick the generated ones)."""
    s = summarise(rows, meta["wall_s"])
    tasks = task_results(rows)
    public = meta.get("public_results")
    return "\n".join(
        [
            "# Generated-suite benchmark: results per task family",
            "",
            "Produced by `dtx bench`; do not edit by hand — rerun the command below to regenerate it.",
            "",
            f"**{headline(tasks, s, public)}**",
            "",
            *conditions(rows, meta, s),
            *compute_summary(rows),
            "",
            (
                "A *family* is a task generator; the tasks are drawn from it with the parameters shown. "
                f"*verified*: the extracted program reproduces the test split; {legend(rows)} In the family "
                f"table, *also {longer_header(rows)}* counts verified tasks exact there too and *holds {OFF_RANGE}* "
                "verified tasks holding off-range over those with the check. "
                "With several seeds a task counts when any seed does. *ops*: one per routing head plus "
                "the expression size of each MLP line and of each output's gain and trend, counted the same way for the task's reference program; "
                "*ratio*: program ops / reference ops, for verified programs only. *generalises*: the public "
                "task the family generalises."
            ),
            "",
            "## Per family",
            "",
            *family_table(tasks, public),
            "",
            "## Per parameter band",
            "",
            *band_table(tasks),
            "",
            "## Per task",
            "",
            *task_table(tasks, [r for r in rows if r.get("error")]),
            "",
        ]
    )


def write_generalization(
    out: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any], docs: Path | None = None
) -> str | None:
    """Write ``OUT/generalization.md`` (and ``docs``) from the generated rows; returns the
    report's headline, or None when no row is of a generated task (nothing written)."""
    gen = [r for r in rows if is_generated(r)]
    if not gen:
        return None
    md = markdown(gen, meta)
    atomic_write_text(Path(out) / REPORT_FILE, md)
    if docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(docs, md)
    return headline(task_results(gen), summarise(gen, meta["wall_s"]), meta.get("public_results"))


__all__ = [
    "GENERATED",
    "REPORT_FILE",
    "TaskResult",
    "band_table",
    "family_table",
    "headline",
    "is_generated",
    "load_public_results",
    "markdown",
    "params_text",
    "task_results",
    "task_table",
    "write_generalization",
]
