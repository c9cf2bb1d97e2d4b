"""Bench reports: ``results.csv``, ``results.json`` and ``summary.md`` under OUT.

The Markdown summary carries everything needed to rerun it (date, machine, commit, the exact
command) and is what ``dtx bench --docs docs/benchmarks.md`` copies into the docs: that file is
produced by the command, never by hand.

Counting rule with ``--seeds N``: every (task, seed) is one row; a task counts as *solved* (its
program verified) — and a model as *exact* — when any of its seeds is; "DT ≥ GRU" is the share of
(task, seed) rows where the Discrete Transformer's model is at least as accurate on the test split.

Size against a reference: a built-in task's row carries its reference program's size
(``reference_ops``, tasks/spec.py); :func:`size_ratio` is the one rule for "how many times the
reference's size is this program", used by this report and the generated suite's
(:mod:`.generalization`) alike.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_json, atomic_write_text
from . import published
from .report_baselines import CACHED_MARK, baselines_line, cache_line, cached_counts
from .report_compute import compute_section
from .report_strict import (
    OFF_RANGE,
    factors,
    headline_part,
    legend,
    longer_cell,
    longer_header,
    task_counts,
    wider_cell,
)
from .runner import as_float, row_verified

COLUMNS = (
    "task",
    "family",
    "kind",
    "seed",
    "T",
    "dt_test_exact",
    "dt_test_nmse",
    "dt_model_solved",
    "program_verified",
    "length_gen",
    "longer_factor",
    "wider_gen",
    "program_lines",
    "program_modules",
    "program_ops",
    "reference_ops",
    "size_ratio",
    "gru_test_exact",
    "gru_test_nmse",
    "gru_solved",
    "transformer_test_exact",
    "transformer_test_nmse",
    "transformer_solved",
    "dt_ge_gru",
    "dt_ge_transformer",
    "dt_train_s",
    "extract_s",
    "gru_s",
    "transformer_s",
    "gru_cached",
    "transformer_cached",
    "wall_s",
    "dt_restarts_run",
    "dt_steps",
    "error",
)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def git_commit() -> str:
    """The commit of the code that ran (``-dirty`` with uncommitted changes), or "unknown"."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def _row_commits(rows: Sequence[dict[str, Any]], commit: str) -> str:
    """A resumed bench holds rows of earlier sessions, possibly of other code: say which, so a
    report never presents them as this commit's ("unknown" for rows from before the field)."""
    counts: dict[str, int] = {}
    for r in rows:
        c = str(r.get("commit", "unknown"))
        counts[c] = counts.get(c, 0) + 1
    if set(counts) <= {commit}:
        return ""
    return " — rows by the commit that ran them: " + ", ".join(f"{c} ({n})" for c, n in sorted(counts.items()))


NEAR_REFERENCE = 1.5  # a verified program "near the reference" is at most this many times its size


def size_ratio(row: dict[str, Any]) -> float | None:
    """``program_ops / reference_ops`` of a row's program when it verified; None when it did not
    (an unverified program's size says nothing about the rule), failed, or either size is
    unknown (a data file has no reference). A program of 0 operations (``y = x``) has ratio 0."""
    if not row_verified(row):
        return None
    ops, ref = as_float(row.get("program_ops")), as_float(row.get("reference_ops"))
    if not (math.isfinite(ops) and ops >= 0 and math.isfinite(ref) and ref > 0):
        return None
    return ops / ref


def task_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row a task's columns are read from, over its seeds: the first verified seed, else the first."""
    ordered = sorted(rows, key=lambda r: int(r.get("seed", 0)))
    return next((r for r in ordered if row_verified(r)), ordered[0])


def size_summary(ratios: Iterable[float | None]) -> tuple[float | None, float | None, int]:
    """Median of the known ratios, the percentage of them within :data:`NEAR_REFERENCE`, and
    how many there are (None, None, 0 when there is none)."""
    xs = [r for r in ratios if r is not None]
    if not xs:
        return None, None, 0
    return statistics.median(xs), 100.0 * sum(r <= NEAR_REFERENCE for r in xs) / len(xs), len(xs)


def size_text(median: float | None, near: float | None, n: int) -> str:
    """The headline's words for :func:`size_summary`'s figures (both bench reports)."""
    if not n or median is None or near is None:
        return "no verified program with a reference size"
    return (
        f"median size ratio {ratio_cell(median)} over {n} verified program{'s' if n != 1 else ''} "
        f"with a reference, {near:.0f} % within {NEAR_REFERENCE:g}×"
    )


def ratio_cell(v: float | None) -> str:
    """A size ratio as a table cell: ``1.25×``, or – when there is none."""
    return "–" if v is None else f"{v:.2f}×"


def summarise(rows: Sequence[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    ok = [r for r in rows if not r.get("error")]
    tasks: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        tasks.setdefault(r["task"], []).append(r)
    fam = {t: rs[0]["family"] for t, rs in tasks.items()}

    def any_of(key: str) -> set[str]:
        return {t for t, rs in tasks.items() if any(r.get(key) for r in rs)}

    verified = {t for t, rs in tasks.items() if any(row_verified(r) for r in rs)}
    by_family: dict[str, dict[str, int]] = {}
    for t, f in fam.items():
        d = by_family.setdefault(f, {"verified": 0, "tasks": 0})
        d["tasks"] += 1
        d["verified"] += t in verified
        for key, n in task_counts(tasks[t]).items():  # the stricter checks (report_strict)
            d[key] = d.get(key, 0) + n
    times = [as_float(r.get("wall_s")) for r in ok]
    # the method's own time per task (training + extraction), without the baselines' training
    dt_times = [as_float(r.get("dt_train_s")) + as_float(r.get("extract_s")) for r in ok]
    ge = [bool(r.get("dt_ge_gru")) for r in ok]
    ratio_median, ratio_near, ratio_n = size_summary(size_ratio(task_row(rs)) for rs in tasks.values())
    return {
        "tasks": len(tasks),
        "rows": len(ok),
        "failed_rows": len(rows) - len(ok),
        "by_family": by_family,
        "verified": len(verified),
        "dt_model_exact": len(any_of("dt_model_solved")),
        "gru_exact": len(any_of("gru_solved")),
        "transformer_exact": len(any_of("transformer_solved")),
        "dt_ge_gru_pct": 100.0 * sum(ge) / len(ge) if ge else 0.0,
        "dt_ge_transformer_pct": 100.0 * sum(bool(r.get("dt_ge_transformer")) for r in ok) / len(ok) if ok else 0.0,
        "median_task_s": statistics.median(times) if times else 0.0,
        "median_dt_s": statistics.median(dt_times) if dt_times else 0.0,
        "wall_min": wall_s / 60.0,
        "seconds": _seconds(ok),
        "baselines_cached": cached_counts(ok),
        "published": published.compare(tasks, verified),  # MIPS's and GPT-4's verdicts on the same tasks
        # per task (its first verified seed): program size over the reference program's
        "size_ratio_median": ratio_median,
        "size_near_pct": ratio_near,
        "size_ratio_n": ratio_n,
        "longer_factors": factors(ok),  # the longer check's T multiples (report_strict)
    }


# The phases of a restart's history (training/loop.py) in the order they run, as the report names them.
PHASES = {"search": "search", "trial": "trial polishes", "harden": "hardening", "polish": "final polish"}
OTHER_WORK = ("extract", "gru", "transformer")


def _seconds(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Where the bench's compute went, summed over rows (process seconds, so side-by-side units add
    up): DT training by phase, extraction, each baseline. Rows from before `dt_phase_s` add
    nothing to the phases."""
    out: dict[str, float] = {p: 0.0 for p in PHASES}
    for r in rows:
        for phase, sec in (r.get("dt_phase_s") or {}).items():
            out[phase] = out.get(phase, 0.0) + as_float(sec)
    for key in OTHER_WORK:  # a cached baseline cost nothing in this run (its row keeps what it took once)
        secs = (as_float(r.get(f"{key}_s")) for r in rows if not r.get(f"{key}_cached"))
        out[key] = sum(v for v in secs if math.isfinite(v))
    return {k: round(v, 1) for k, v in out.items()}


def _seconds_line(s: dict[str, Any]) -> list[str]:
    sec = s.get("seconds")
    if not sec or not any(sec.get(p) for p in PHASES):
        return []  # rows from before the breakdown: say nothing rather than zeros
    phases = ", ".join(f"{PHASES.get(p, p)} {v:,.0f}" for p, v in sec.items() if p not in OTHER_WORK)
    return [
        f"- compute, summed over tasks (process seconds; side-by-side units add up): DT training {phases}; "
        f"extraction {sec.get('extract', 0.0):,.0f}; GRU {sec.get('gru', 0.0):,.0f}; "
        f"Transformer {sec.get('transformer', 0.0):,.0f}"
        + (" (baselines read from the cache not counted)" if any((s.get("baselines_cached") or {}).values()) else "")
    ]


def headline(s: dict[str, Any]) -> str:
    names = {"mips": "MIPS", "continuous": "continuous", "file": "data files"}
    fams = ", ".join(
        f"{d['verified']}/{d['tasks']} {names.get(f, f)}"
        for f, d in sorted(
            s["by_family"].items(), key=lambda kv: ("mips", "continuous", "file").index(kv[0]) if kv[0] in names else 9
        )
    )
    size = (
        f"{size_text(s['size_ratio_median'], s['size_near_pct'], s['size_ratio_n'])}; " if "size_ratio_n" in s else ""
    )
    return (
        f"DT verified programs {fams or '0/0'} ({headline_part(s)}); {size}"
        f"DT model exact/solved {s['dt_model_exact']}/{s['tasks']}; "
        f"GRU exact {s['gru_exact']}/{s['tasks']}; Transformer exact {s['transformer_exact']}/{s['tasks']}; "
        f"DT ≥ RNN accuracy on {s['dt_ge_gru_pct']:.0f} % of tasks; median task time {s['median_task_s']:.0f} s "
        f"(DT training + extraction {s.get('median_dt_s', 0.0):.0f} s, the rest baselines); "
        f"total wall {s['wall_min']:.1f} min"
    )


def fmt_cell(v: Any, kind: str = "") -> str:
    """A table cell: – for missing, yes/no, 3 significant digits."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def score_cell(r: dict[str, Any], prefix: str) -> str:
    """A model's test score cell (`prefix` dt, gru or transformer): exact % or nMSE."""
    if r.get("kind") == "discrete":
        return f"{100 * as_float(r.get(prefix + '_test_exact')):.1f} %"
    return f"{as_float(r.get(prefix + '_test_nmse')):.1e}"


def baseline_cell(r: dict[str, Any], name: str) -> str:
    """A baseline's score cell, marked when the number was read from the baseline cache."""
    return score_cell(r, name) + (f" {CACHED_MARK}" if r.get(f"{name}_cached") else "")


def conditions(rows: Sequence[dict[str, Any]], meta: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """The exact command and what it ran under (date, machine, commit, executor, budget,
    baselines, compute, testing caps): every bench report starts with them, so that it can be
    rerun and its numbers questioned."""
    m = meta["machine"]
    return [
        "```bash",
        meta["command"],
        "```",
        "",
        f"- date: {meta['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}",
        f"- commit: {meta['commit']}" + _row_commits(rows, meta["commit"]),
        f"- executor: {meta['executor']}, jobs {meta['jobs']}, seeds {meta['seeds']}, "
        f"per-task DT training budget {meta['budget']:g} s (a task's restarts, side by side on free workers "
        "or in sequence, all end within it), "
        + (
            "default configuration"
            if not meta.get("overrides")
            else "one configuration for every task: the defaults with " + ", ".join(f"`{o}`" for o in meta["overrides"])
        ),
        *baselines_line(meta["baseline"]),
        *cache_line(rows),
        *_seconds_line(s),
        *(
            [
                f"- **testing caps in force**: DT steps per restart ≤ {meta['max_steps']} (not the default "
                "configuration's step count)"
            ]
            if meta.get("max_steps")
            else []
        ),
    ]


def markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any], s: dict[str, Any]) -> str:
    cached = s.get("baselines_cached") or {}
    out = [
        "# Benchmark",
        "",
        "Produced by `dtx bench`; do not edit by hand — rerun the command below to regenerate it.",
        "",
        f"**{headline(s)}**",
        "",
        *([line, ""] if (line := published.summary_line(s.get("published") or {})) else []),
        *conditions(rows, meta, s),
        "",
        "Scores are on the test split: discrete tasks by exact match after rounding (whole sequence), "
        "continuous tasks by MSE normalised by the target variance (solved: ≤ 1e-6). *verified*: the "
        f"extracted program reproduces the test split; {legend(rows)} "
        "With several seeds a task counts as solved when any seed is. *ops*: one per routing head plus "
        "the expression size of each MLP line and of each output's gain and trend; *ref ops*: the same count for the task's reference program "
        "(the simplest known; none for a data file); *ops / ref*: their ratio, for verified programs. "
        "*MIPS*, *GPT-4*: whether the task was solved in the MIPS paper, by MIPS and by GPT-4 (– when "
        "it is not one of MIPS's tasks)."
        + (f" {CACHED_MARK}: a baseline number read from the baseline cache." if any(cached.values()) else ""),
        "",
        f"| task | family | kind | seed | DT model | verified | {longer_header(rows)} | {OFF_RANGE} "
        "| module lines / ops | ref ops | ops / ref "
        "| GRU | Transformer | DT ≥ GRU | MIPS | GPT-4 | task s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    mixed = len(factors(rows)) > 1
    for r in rows:
        if r.get("error"):
            out.append(
                f"| {r['task']} | {r.get('family', '')} | {r.get('kind', '')} | {r.get('seed', 0)} "
                f"| failed: {str(r['error']).replace('|', '/')} | | | | | | | | | | {' | '.join(published.cells(r['task']))} "
                f"| {fmt_cell(r.get('wall_s'))} |"
            )
            continue
        out.append(
            f"| {r['task']} | {r['family']} | {r['kind']} | {r['seed']} | {score_cell(r, 'dt')} "
            f"| {'**yes**' if r['program_verified'] else 'no'} | {longer_cell(r, mixed)} | {wider_cell(r)} "
            f"| {r['program_modules']} / {r['program_ops']} | {fmt_cell(r.get('reference_ops'))} "
            f"| {ratio_cell(size_ratio(r))} | {baseline_cell(r, 'gru')} | {baseline_cell(r, 'transformer')} "
            f"| {fmt_cell(r.get('dt_ge_gru'))} | {' | '.join(published.cells(r['task']))} | {as_float(r.get('wall_s')):.0f} |"
        )
    out += ["", *compute_section(rows)]
    return "\n".join(out)


def write_reports(
    out: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any], docs: Path | None = None
) -> dict[str, Any]:
    """Write the three files (atomically) and, with ``docs``, the Markdown there too."""
    s = summarise(rows, meta["wall_s"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        ratio = size_ratio(r)
        w.writerow({k: r.get(k) for k in COLUMNS} | {"size_ratio": None if ratio is None else round(ratio, 4)})
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_json(
        out / "results.json",
        {"format": "dtx-bench", "version": 1, "meta": meta, "summary": s, "headline": headline(s), "rows": list(rows)},
    )
    md = markdown(rows, meta, s)
    atomic_write_text(out / "summary.md", md)
    if docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(docs, md)
    return s


def now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def read_results(path: str | Path) -> dict[str, Any]:
    """A bench's ``results.json`` (the document :func:`write_reports` writes), checked to be one.
    Raises ``ValueError`` (one line naming the file) when it is missing, is not JSON, or is not a
    bench's results (format ``dtx-bench`` with a list of rows)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: file not found (expected the results.json a `dtx bench --out` directory holds)")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{p} is not a bench results.json ({type(e).__name__})") from None
    if not (isinstance(doc, dict) and doc.get("format") == "dtx-bench" and isinstance(doc.get("rows"), list)):
        raise ValueError(f"{p} is not a bench results.json (the file dtx bench writes in its --out directory)")
    return doc


def previous_wall(out: Path) -> float:
    """Wall seconds recorded by earlier (interrupted) sessions of the same bench."""
    try:
        doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
        return float(doc["meta"]["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


__all__ = [
    "COLUMNS",
    "NEAR_REFERENCE",
    "baseline_cell",
    "conditions",
    "fmt_cell",
    "git_commit",
    "headline",
    "machine",
    "markdown",
    "now_utc",
    "previous_wall",
    "read_results",
    "ratio_cell",
    "score_cell",
    "size_ratio",
    "size_summary",
    "size_text",
    "summarise",
    "task_row",
    "write_reports",
]
