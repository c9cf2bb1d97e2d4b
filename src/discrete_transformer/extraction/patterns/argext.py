"""Prefix extremes: `prefix_argmax` / `prefix_argmin(tie, include_bos, k_bos)` — the largest
(smallest) k over positions 1..i (with `include_bos`: 0..i, BOS competing with its own k value, or
with the key `k_bos` fitted on the data: a learned BOS offset can place BOS between key values);
ties "average" (uniform over all tied keys: the model's native semantics), "latest", "earliest"."""

from __future__ import annotations

import numpy as np

from .base import TIES, Hypothesis, Pattern, literal, need, simplest_between
from .routing import Observed, Routing, bos_row, causal, pack

__all__ = ["PREFIX_ARGMAX", "PREFIX_ARGMIN", "PrefixArgExtreme"]

_PY_ARGMAX = '''def prefix_argmax(ks, xs, tie="average", include_bos=False, k_bos=0, bos=0,
                  agg="mean"):
    """xs where ks[0..i] is largest. Ties: "average" (mean, or with agg="sum" sum, over the
    tied positions), "latest" or "earliest". With include_bos the start slot competes, with key
    `k_bos` and value `bos`."""
    out = []
    for i in range(len(xs)):
        keys = ([k_bos] if include_bos else []) + list(ks[: i + 1])
        vals = ([bos] if include_bos else []) + list(xs[: i + 1])
        best = max(keys)
        hits = [x for key, x in zip(keys, vals) if key == best]
        if tie == "average":
            out.append(sum(hits) if agg == "sum" else sum(hits) / len(hits))
        else:
            out.append(hits[-1] if tie == "latest" else hits[0])
    return out
'''
_NP_ARGMAX = '''def np_prefix_argmax(ks, xs, tie="average", include_bos=False, k_bos=0,
                     bos=0, agg="mean"):
    """xs where ks[:, 0..i] is largest. Ties: "average" (mean, or with agg="sum" sum, over the
    tied positions), "latest" or "earliest". With include_bos the start slot competes, with key
    `k_bos` and value `bos`."""
    import numpy as np
    ks = np.asarray(ks, dtype=float)
    xs = np.asarray(xs, dtype=float)
    n, T = xs.shape
    if include_bos:
        best = np.full(n, float(k_bos))
        total, count = np.full(n, float(bos)), np.ones(n)
        first, last = np.full(n, float(bos)), np.full(n, float(bos))
    else:
        best = np.full(n, -np.inf)
        total, count = np.zeros(n), np.zeros(n)
        first, last = np.zeros(n), np.zeros(n)
    out = np.empty((n, T))
    for i in range(T):
        k, x = ks[:, i], xs[:, i]
        new, tied = k > best, k == best
        total = np.where(new, x, np.where(tied, total + x, total))
        count = np.where(new, 1.0, np.where(tied, count + 1.0, count))
        first = np.where(new, x, first)
        last = np.where(new | tied, x, last)
        best = np.where(new, k, best)
        if tie == "average":
            out[:, i] = total if agg == "sum" else total / count
        else:
            out[:, i] = last if tie == "latest" else first
    return out
'''


class PrefixArgExtreme(Pattern):
    """`prefix_argmax` (largest=True) or `prefix_argmin`: v where k over the prefix is largest
    (smallest)."""

    reads = frozenset({"k", "v"})

    def __init__(self, largest: bool) -> None:
        self.largest = largest
        self.name = self.helper = "prefix_argmax" if largest else "prefix_argmin"
        self.word = "max" if largest else "min"
        if largest:
            self.python_source, self.numpy_source = _PY_ARGMAX, _NP_ARGMAX
        else:
            self.python_source = (
                _PY_ARGMAX.replace("prefix_argmax", "prefix_argmin")
                .replace("is largest", "is smallest")
                .replace("max(keys)", "min(keys)")
            )
            self.numpy_source = (
                _NP_ARGMAX.replace("prefix_argmax", "prefix_argmin")
                .replace("is largest", "is smallest")
                .replace("k > best", "k < best")
                .replace("-np.inf", "np.inf")
            )

    def canonical(self, params: dict) -> tuple[dict, str]:
        tie, ib = str(params.get("tie", "average")), bool(params.get("include_bos", False))
        if tie not in TIES:
            raise ValueError(f"{self.name} tie must be one of {TIES}, got {tie!r}")
        word = "largest" if self.largest else "smallest"
        if params.get("k_bos") is None:
            where = "k over BOS and k[0..i] (BOS reads 0)" if ib else "k[0..i]"
            return {"tie": tie, "include_bos": ib}, f"v at the {word} {where}, ties: {tie}"
        if not ib:
            raise ValueError(f"{self.name}: k_bos needs include_bos=True")
        kb = float(params["k_bos"])
        if not np.isfinite(kb):
            raise ValueError(f"{self.name}: k_bos must be finite, got {kb}")
        moves = "exceeds" if self.largest else "drops below"
        text = (
            f"v at the {word} k over BOS and k[0..i], ties: {tie}; BOS competes with key {literal(kb)} "
            f"and reads 0: 0 until k first {moves} {literal(kb)}"
        )
        return {"tie": tie, "include_bos": True, "k_bos": kb}, text

    def library(self, T1: int) -> list[tuple[str, dict]]:
        return [(self.name, {"tie": t, "include_bos": ib}) for ib in (False, True) for t in TIES]

    def fitted(self, obs: Observed, q: np.ndarray, k: np.ndarray, T1: int) -> list[dict]:
        """A BOS key between the running extremes of the rows that attend to BOS alone and of
        the rows that do not attend to it (for argmax: M_i = max k over 1..i; BOS-only rows need
        k_bos > M_i, BOS-free rows k_bos < M_i), when such a key exists and the BOS slot's own
        k does not already lie there; one parameter set per tie rule."""
        if k is None or T1 < 2:
            return []
        kk = k if self.largest else -k  # argmin is argmax of -k
        run = np.maximum.accumulate(kk[:, 1:], axis=1)  # rows 1..T
        bos_bit = pack(np.arange(T1) == 0)[0]
        touches = (obs.packed[:, 1:, 0] & bos_bit) != 0
        only = (obs.count[:, 1:] == 1) & (obs.top[:, 1:] == 0)
        if not only.any() or touches.all():
            return []
        lo, hi = float(run[only].max()), float(run[~touches].min())
        c = simplest_between(lo, hi)
        if c is None or bool(np.all((kk[:, 0] > lo) & (kk[:, 0] < hi))):
            return []  # no such key, or the plain include_bos entries already route so
        kb = c if self.largest else -c
        return [{"tie": t, "include_bos": True, "k_bos": kb + 0.0} for t in TIES]

    def averages(self, params: dict) -> bool:
        return params.get("tie") == "average"

    def route(self, h: Hypothesis, q: np.ndarray | None, k: np.ndarray | None, T1: int) -> Routing:
        k = need(k, "key", h)
        if h.params.get("k_bos") is not None:  # a fitted BOS key replaces k's own value there
            k = k.copy()
            k[:, 0] = h.params["k_bos"]
        kk = k if self.largest else -k
        lo = 0 if h.params["include_bos"] else 1
        tie = h.params["tie"]
        n = kk.shape[0]
        if tie == "average":
            cm = np.full((n, T1), np.inf)
            cm[:, lo:] = np.maximum.accumulate(kk[:, lo:], axis=1)
            sel = (kk[:, None, :] == cm[:, :, None]) & causal(T1)[None]
            sel[:, :, :lo] = False
            return Routing(sel=bos_row(sel))
        t = np.zeros((n, T1), dtype=np.int64)
        if lo < T1:
            best = kk[:, lo].copy()
            idx = np.full(n, lo, dtype=np.int64)
            t[:, lo] = lo
            for pos in range(lo + 1, T1):
                x = kk[:, pos]
                upd = x >= best if tie == "latest" else x > best
                best = np.where(upd, x, best)
                idx = np.where(upd, pos, idx)
                t[:, pos] = idx
        t[:, 0] = 0
        return Routing(target=t)

    def describe(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"{self.word}_{x}" if k_name == x else f"{x}_at_{self.word}_{k_name}"

    def describe_sum(self, params: dict, q_name: str, k_name: str, x: str) -> str:
        return f"sum_{x}_at_{self.word}_{k_name}"

    def label(self, params: dict, q: str, k: str) -> str:
        bos = ", with BOS" if params["include_bos"] else ""
        if params.get("k_bos") is not None:
            bos += f" key {literal(params['k_bos'])}"
        return f"{self.name}(k={k}, ties {params['tie']}{bos})"

    def call_args(self, params: dict, q: str, k: str, v: str, bos_kw: list[str], k_bos: float) -> list[str]:
        args = [k, v, f"tie={params['tie']!r}".replace("'", '"')]
        if params["include_bos"]:
            kb = params.get("k_bos", k_bos)  # a fitted BOS key wins over the variable's BOS value
            args += ["include_bos=True", *([] if kb == 0 else [f"k_bos={literal(kb)}"]), *bos_kw]
        return args


PREFIX_ARGMAX = PrefixArgExtreme(largest=True)
PREFIX_ARGMIN = PrefixArgExtreme(largest=False)
