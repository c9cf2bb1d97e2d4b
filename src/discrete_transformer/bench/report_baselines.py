"""The bench reports' words on the baselines: how they were trained (the bench's GRU recipe or
MIPS's, bench/mips_rnn.py) and which numbers were read from the baseline cache
(bench/baseline_cache.py). Used by :mod:`.report`, and through its ``conditions`` by the
generated suite's report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CACHED_MARK = "ᶜ"  # after a baseline's score cell: the number was read from the baseline cache


def cached_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Rows whose GRU / Transformer number came from the baseline cache."""
    ok = [r for r in rows if not r.get("error")]
    return {name: sum(bool(r.get(f"{name}_cached")) for r in ok) for name in ("gru", "transformer")}


def cache_line(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The conditions' line on cached baselines (none when no number came from the cache): how
    many, and which command, commit and dates trained them (bench/baseline_cache.py)."""
    counts = cached_counts(rows)
    if not any(counts.values()):
        return []
    n = sum(not r.get("error") for r in rows)
    sources: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        for name in counts:
            src = r.get(f"{name}_cache_source") if r.get(f"{name}_cached") else None
            if isinstance(src, dict):
                key = (str(src.get("by", "?")), str(src.get("commit", "unknown")))
                sources.setdefault(key, []).append(str(src.get("date", "?"))[:10])
    trained = "; ".join(
        f"`{by}` at commit {commit} ({min(dates)}" + (f" to {max(dates)})" if max(dates) != min(dates) else ")")
        for (by, commit), dates in sorted(sources.items())
    )
    return [
        f"- baselines read from the baseline cache (marked {CACHED_MARK}; trained once, same data, "
        f"configuration and seed): GRU {counts['gru']}/{n}, Transformer {counts['transformer']}/{n} rows"
        + (f"; trained by {trained}" if trained else "")
    ]


def baselines_line(b: dict[str, Any]) -> list[str]:
    """The conditions' line on how the baselines were trained (bench/baselines.py, bench/mips_rnn.py)."""
    stop = " and stopped once validation is solved" if b.get("stop_on_solved") else ""
    if b.get("gru_recipe") != "mips":
        return [
            f"- baselines: GRU and a small dense Transformer, same split, loss and scoring; "
            f"GRU {b['gru_steps']} steps, Transformer {b['tf_steps']} steps, batch {b['batch_size']}, "
            f"Adam lr {b['lr']:g} with cosine decay, each capped at the per-task budget{stop}"
        ]
    m = b.get("gru_mips") or {}
    archs = ", then ".join(
        f"linear (hidden {h})" if d == 1 else f"ReLU MLPs (hidden {h}, depth {d}, width {w})"
        for h, d, w in m.get("architectures", ())
    )
    return [
        f"- baselines, same split and scoring: the recurrent one (column *GRU*) is MIPS's RNN trained by "
        f"MIPS's recipe (bench/mips_rnn.py: log loss, AdamW lr {m.get('lr', 0):g}, batch {m.get('batch_size')}, "
        f"up to {m.get('steps')} steps × {m.get('seeds')} seeds per architecture — {archs}){stop}; "
        f"a small dense Transformer, {b['tf_steps']} steps, batch {b['batch_size']}, Adam lr {b['lr']:g} with "
        "cosine decay; each capped at the per-task budget unless read from the baseline cache"
    ]


__all__ = ["CACHED_MARK", "baselines_line", "cache_line", "cached_counts"]
