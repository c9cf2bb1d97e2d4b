"""Matplotlib figures of the annealing dynamics (Agg backend, PNG bytes; callers write them).

Figures are returned as PNG bytes so they can be written atomically or inlined in a report.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .dynamics import Transition, seed_rows  # noqa: E402

__all__ = ["dynamics_figure", "cross_task_figure", "png_bytes"]


def png_bytes(fig: Any, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [
        (int(r["step"]), float(r[key]))
        for r in rows
        if r.get(key) is not None and r.get("phase") not in ("polish", "trial")
    ]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.array(pts, dtype=float)
    return a[:, 0], a[:, 1]


def dynamics_figure(
    rows: Sequence[dict[str, Any]], transitions: dict[int, Transition], best_seed: int | None, title: str
) -> bytes:
    """Loss (log), τ (log), selector entropy and attention entropy against step, one line per
    seed (the best seed bold), the best seed's transition marked and annotated."""
    groups = seed_rows(rows)
    if best_seed not in groups:
        best_seed = min(groups)
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    panels = [
        ("loss", "training loss", True),
        ("tau", "temperature τ", True),
        ("selector_entropy", "selector entropy\n(mean, normalised)", False),
        ("attention_entropy", "attention entropy\n(mean, normalised)", False),
    ]
    for seed, rs in sorted(groups.items()):
        bold = seed == best_seed
        kw = dict(
            lw=2.0 if bold else 0.9, alpha=1.0 if bold else 0.5, label=f"seed {seed}" + (" (best)" if bold else "")
        )
        for ax, (key, _, logy) in zip(axes, panels):
            sx, sy = _series(rs, key)
            if key == "tau":  # τ is 0 once the selectors are frozen: show the search only
                keep = sy > 0
                sx, sy = sx[keep], sy[keep]
                ax.plot(sx, sy, **kw)
                ax2x, ax2y = _series([r for r in rs if r.get("phase") == "search"], "tau_attn")
                if bold and ax2x.size:
                    ax.plot(ax2x, ax2y, ls="--", color="grey", lw=1, label="attention τ")
                continue
            if logy:
                keep = sy > 0
                sx, sy = sx[keep], sy[keep]
            ax.plot(sx, sy, marker="." if len(sx) < 40 else None, **kw)
        harden = [int(r["step"]) for r in rs if r.get("phase") == "harden"]
        if bold and harden:
            for ax in axes:
                ax.axvline(min(harden), color="grey", ls=":", lw=1)
            axes[0].text(
                min(harden),
                1.0,
                " hardening",
                transform=axes[0].get_xaxis_transform(),
                va="top",
                ha="left",
                fontsize=8,
                color="grey",
            )
    for ax, (_, label, logy) in zip(axes, panels):
        ax.set_ylabel(label)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    tr = transitions.get(best_seed)
    if tr is not None and tr.detected:
        for ax in axes:
            ax.axvline(tr.step, color="crimson", lw=1.5)
        axes[2].plot([tr.step], [tr.selector_entropy], "o", color="crimson", ms=6)
        mid = tr.extra.get("midpoint_step")
        if mid is not None:  # where the smoothed entropy has fallen half way
            for ax in axes:
                ax.axvline(mid, color="crimson", lw=1, ls="--", alpha=0.6)
        half = "" if mid is None else f"; half of the fall by step {mid:.0f} (dashed)"
        axes[2].text(
            0.98,
            0.95,
            f"transition (steepest fall): step {tr.step}, τ={tr.tau:.3g}, loss {tr.loss:.3g}\n"
            f"selector entropy {tr.entropy_before:.2f} → {tr.entropy_after:.2f} over the search{half}",
            transform=axes[2].transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="crimson",
            bbox=dict(boxstyle="round", fc="white", ec="crimson", alpha=0.85),
        )
    elif tr is not None:
        axes[2].text(0.02, 0.05, f"no transition: {tr.reason}", transform=axes[2].transAxes, fontsize=8)
    axes[1].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("step")
    fig.suptitle(title)
    return png_bytes(fig)


def cross_task_figure(entries: Sequence[tuple[str, list[dict[str, Any]], Transition | None]]) -> bytes:
    """Selector entropy and loss against τ (cooling to the right), one line per run (its best
    seed's search phase), each transition marked with a dot."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    cmap = plt.get_cmap("tab10" if len(entries) <= 10 else "tab20")
    for i, (name, rows, tr) in enumerate(entries):
        c = cmap(i % cmap.N)
        s = [r for r in rows if r.get("phase") == "search" and float(r.get("tau") or 0) > 0]
        if not s:
            continue
        tau = np.array([float(r["tau"]) for r in s])
        h = np.array([float(r["selector_entropy"]) for r in s])
        loss = np.array([float(r["loss"]) for r in s])
        a1.plot(tau, h, color=c, lw=1.4, label=name)
        a2.plot(tau, loss, color=c, lw=1.4, label=name)
        if tr is not None and tr.detected:
            a1.plot([tr.tau], [tr.selector_entropy], "o", color=c, ms=7, mec="black")
            mid = tr.extra.get("midpoint_tau")
            if mid:  # where the smoothed entropy has fallen half way
                hm = float(np.interp(-np.log(mid), -np.log(tau), h))
                a1.plot([mid], [hm], "^", color=c, ms=7, mec="black")
            if tr.loss is not None and tr.loss > 0:
                a2.plot([tr.tau], [tr.loss], "o", color=c, ms=7, mec="black")
    for ax, lab in ((a1, "selector entropy (mean, normalised)"), (a2, "training loss")):
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("temperature τ (log; cooling →)")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    a2.set_yscale("log")
    a1.legend(fontsize=7, loc="lower left")
    fig.suptitle("search phase per run (best seed); ● transition (steepest fall), ▲ half of the fall")
    return png_bytes(fig)
