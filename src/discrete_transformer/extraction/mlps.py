"""Characterising MLPs: expressions of their inputs, by symbolic regression on what they compute.

An MLP is regressed (:func:`~.symbolic.symbolic_regression`) when something live first reads it,
in runs tried in order until one is exact: composed with the MLPs feeding it, on the raw input
values it saw plus a grid over their range, on the seen values alone, and (integer-valued MLPs)
with rounding allowed. The search later asks for the other Pareto candidates. Every regression
run is kept (:attr:`MLPCharacteriser.sr`) for the program's evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sympy

from .config import ExtractConfig, ExtractionError
from .graph import Graph, Module, ProgramIR, rename_names, sanitize
from .record import Recording, mlp_function
from .symbolic import Candidate, SRResult, evaluate_source, symbolic_regression

__all__ = [
    "GAIN_REL_TOL",
    "INT_TOL",
    "PLACEHOLDERS",
    "MLPAlt",
    "MLPCharacteriser",
    "relative_tolerance",
    "renamed",
    "simple_gain",
]

REL_TOL_MIN, REL_TOL_MAX = 1e-3, 0.05  # real-valued MLP tolerance, relative to the output's std
INT_TOL = 1e-6  # an integer-valued MLP's expression must give its rounded outputs this exactly
PLACEHOLDERS = ("u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7")
# A learned readout gain is written with the fewest significant digits that stay within this
# relative distance of it (1 when it is that close to 1): 0.0099998 -> 0.01.
GAIN_REL_TOL = 1e-4
# A key position counts as read by a head when some query gives it more than this weight.
READ_WEIGHT = 1e-6


@dataclass(frozen=True)
class MLPAlt:
    """An expression over placeholders u0, u1, … standing for `inputs` (stream indices)."""

    inputs: tuple[int, ...]
    source: str
    numpy_source: str
    expression: str
    size: int
    mse: float
    max_error: float
    exact: bool
    tolerance: float
    integer_target: bool
    fitted_to: str
    n_samples: int
    sr_key: str  # which regression produced it
    rounded: bool = False  # integer-valued, but the expression has float noise: round it
    where: str = ""  # fitted only where these heads read the MLP ("": at every position)


def simple_gain(g: float) -> float:
    """The shortest decimal within GAIN_REL_TOL (relative) of the gain `g`."""
    if not math.isfinite(g) or g == 0.0:
        return float(g)
    if abs(g - 1.0) <= GAIN_REL_TOL:
        return 1.0
    for digits in range(1, 17):
        c = float(f"{g:.{digits}g}")
        if abs(c - g) <= GAIN_REL_TOL * abs(g):
            return c
    return float(g)


def relative_tolerance(run: Any) -> float:
    """How closely a real-valued MLP's expression must follow it, relative to its output's
    spread: scaled to how precisely the model reproduces the task (max error ~ 30 × the model's
    RMS validation error), since an MLP is not expected to be more precise than its model."""
    val_nmse = float((getattr(run, "best", None) and run.best.val or {}).get("nmse", 0.0) or 0.0)
    return float(np.clip(30.0 * math.sqrt(max(val_nmse, 0.0)), REL_TOL_MIN, REL_TOL_MAX))


class MLPCharacteriser:
    """Each MLP's alternatives, regressed lazily on the recording and kept.

    `near`: whether the model is close to the targets (:class:`~.record.ModelScore`); a model
    far from them gets only the first regression runs of each MLP."""

    def __init__(
        self,
        rec: Recording,
        graph: Graph,
        kind: str,
        cfg: ExtractConfig,
        rel_tol: float,
        near: bool,
        log: Callable[[str], None],
    ) -> None:
        self.rec, self.graph, self.kind, self.cfg, self.log = rec, graph, kind, cfg, log
        self.rel_tol, self.near = rel_tol, near
        self.alts: dict[str, list[MLPAlt]] = {}
        self.full: set[str] = set()  # MLPs whose other Pareto candidates were added
        self.sr: dict[str, SRResult] = {}  # every regression run: "L0.M0 (grid)" -> its result
        self.sr_inputs: dict[str, tuple[int, ...]] = {}  # ... and the stream indices it was over
        self._samples: dict[str, dict[str, Any]] = {}
        self._runs_done: dict[str, int] = {}
        self._extra: dict[str, list] = {}

    # ---------------------------------------------------------------- inputs and data
    def inputs_of(self, reads: tuple[int, ...] | list[int]) -> tuple[int, ...]:
        """The distinct variables an expression is fitted over. `one` is 1 at every sequence
        position, so it is left out (the grammar has the constant 1) unless it is all there is."""
        uniq = tuple(dict.fromkeys(reads))
        one = self.graph.n_inputs + 1
        return tuple(i for i in uniq if i != one) or uniq

    def fold(self, m: Module) -> float:
        """The readout gain folded into MLP `m`'s expression (1.0: none). An MLP that only the
        readout reads is fitted as gain × its output, so the program computes the output in one
        line (`y = 2 * x`, not `m = 8.9 * x` then `y = 0.225 * m`)."""
        if m.kind != "mlp":
            return 1.0
        gains = {simple_gain(self.graph.gain(c)) for c, r in enumerate(self.graph.readout) if r == m.out}
        if len(gains) != 1 or any(m.out in other.reads for other in self.graph.live()):
            return 1.0
        return gains.pop()

    def fused_inputs(self, m: Module) -> tuple[int, ...] | None:
        """The inputs of `m` composed with the MLPs that produce its inputs (element-wise maps
        compose), as long as at most 3 variables remain; None when `m` reads no MLP."""
        cur = list(self.inputs_of(m.reads))
        changed = True
        fused = False
        while changed:
            changed = False
            for pos, i in enumerate(cur):
                src = self.graph.module_at(i)
                if src is None or src.kind != "mlp":
                    continue
                new = list(self.inputs_of(cur[:pos] + list(src.reads) + cur[pos + 1 :]))
                if len(new) <= 3:
                    cur, changed, fused = new, True, True
                    break
        return tuple(cur) if fused else None

    def seen(self, m: Module, inputs: tuple[int, ...], rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distinct rows of `inputs`' raw values at the recorded sequence positions (those where
        the (B, T) mask `rows` is set, if given), with the MLP's output there."""
        Xs = self.rec.resid[:, 1:, list(inputs)]  # (B, T, len(inputs))
        ys = self.rec.out[m.key][:, 1:] * self.fold(m)  # (B, T)
        if rows is None:
            Xs, ys = Xs.reshape(-1, len(inputs)), ys.reshape(-1)
        else:
            Xs, ys = Xs[rows], ys[rows]
        Xs, first = np.unique(Xs, axis=0, return_index=True)
        return Xs, ys[first]

    def read_rows(self, m: Module) -> tuple[np.ndarray, str] | None:
        """Where `m`'s output is read, when that is not everywhere: a (B, T) mask of the recorded
        positions and the heads reading it. An MLP read only as the value of heads matters only
        at the keys they attend to (a head taking the first position reads one position per
        sequence), so an expression that holds there is as good as one that holds everywhere.
        None when the readout, an MLP or a query/key read reads it, or the heads read every key."""
        if m.out in self.graph.readout:
            return None
        readers = [r for r in self.graph.live() if m.out in r.reads]
        if not readers or any(r.kind != "attn" or m.out in r.reads[:2] for r in readers):
            return None
        keys = np.zeros(self.rec.resid.shape[:2], dtype=bool)  # (B, T+1)
        for h in readers:
            keys |= self.rec.pattern[h.key][:, 1:, :].max(axis=1) > READ_WEIGHT  # (B, T+1)
        keys = keys[:, 1:]
        if keys.all() or not keys.any():
            return None
        return keys, ", ".join(h.key for h in readers)

    def _grid(self, Xs: np.ndarray) -> np.ndarray:
        m = Xs.shape[1]
        per = max(2, int(self.cfg.grid_points ** (1.0 / m)))
        axes = []
        for c in range(m):
            vals = np.unique(Xs[:, c])
            if vals.size > per:
                integral = bool(np.all(vals == np.rint(vals)))
                vals = np.linspace(vals.min(), vals.max(), per)
                if integral:  # an integer-valued input is sampled at integers
                    vals = np.unique(np.rint(vals))
            axes.append(vals)
        g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, m)
        if g.shape[0] > 4 * self.cfg.grid_points:
            rng = np.random.default_rng(self.cfg.seed)
            g = g[np.sort(rng.choice(g.shape[0], 4 * self.cfg.grid_points, replace=False))]
        return g

    def _runs(self, m: Module) -> dict[str, Any]:
        """The regression runs for one MLP, in the order they are tried. Each run: tag, inputs
        (stream indices), fitted X/target, tolerance, rounding allowed, and the reference X/y
        that errors are reported against (the MLP's own outputs on the seen inputs)."""
        if m.key in self._samples:
            return self._samples[m.key]
        uniq = self.inputs_of(m.reads)
        if len(uniq) > len(PLACEHOLDERS):
            raise ExtractionError(f"{m.key}: arity {len(uniq)} is beyond symbolic regression")
        Xs, ys = self.seen(m, uniq)
        Xg = np.unique(np.concatenate([Xs, self._grid(Xs)]), axis=0)
        yg = mlp_function(self.rec.model, m, uniq, Xg) * self.fold(m)
        readout = any(  # an output itself, so integer when the task is (not with the data's trend added)
            r == m.out
            and (simple_gain(self.graph.gain(c)) == 1.0 or self.fold(m) != 1.0)
            and self.graph.trend(c) == (0.0, 0.0)
            for c, r in enumerate(self.graph.readout)
        )
        near_int = bool(np.max(np.abs(ys - np.rint(ys)), initial=0.0) <= 0.1)
        integer = self.kind == "discrete" and (readout or near_int)
        scale = max(float(np.std(ys)), 1e-3 * float(np.max(np.abs(ys), initial=0.0)), 1e-9)
        tol = INT_TOL if integer else self.rel_tol * scale
        tgt = np.rint if integer else (lambda a: a)

        def run(tag, inputs, X, y, rounding=False, Xr=None, yr=None, where=""):
            return {
                "tag": tag,
                "inputs": inputs,
                "X": X,
                "y": tgt(y),
                "tol": 0.5 if rounding else tol,
                "rounding": rounding,
                "Xref": Xs if Xr is None else Xr,
                "yref": ys if yr is None else yr,
                "where": where,
            }

        runs = []
        fused = self.fused_inputs(m)
        if fused is not None:  # one line instead of a chain of element-wise lines
            Xf, yf = self.seen(m, fused)
            runs.append(run("composed", fused, Xf, yf, Xr=Xf, yr=yf))
        runs += [run("grid", uniq, Xg, yg), run("seen", uniq, Xs, ys)]
        if integer:  # an integer-valued MLP whose expression only rounds to its outputs
            runs.append(run("seen, rounding", uniq, Xs, ys, rounding=True))
        read = self.read_rows(m)
        if read is not None:  # last: an expression that holds only where the MLP is read
            Xr, yr = self.seen(m, uniq, read[0])
            runs.append(run(f"read by {read[1]}", uniq, Xr, yr, Xr=Xr, yr=yr, where=read[1]))
        self._samples[m.key] = {"runs": runs, "integer": integer}
        return self._samples[m.key]

    # ---------------------------------------------------------------- alternatives
    def make_alternative(self, c: Candidate, r: dict[str, Any], fitted_to: str, integer: bool) -> MLPAlt:
        """An alternative from a regression run `r`; errors are measured against the run's
        reference (the MLP's own outputs, or the true targets)."""
        X, y, inputs = r["Xref"], r["yref"], r["inputs"]
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(
                np.asarray(
                    evaluate_source(c.numpy_source, PLACEHOLDERS[: len(inputs)], list(X.T), numpy=True),
                    dtype=np.float64,
                ),
                y.shape,
            )
            err = np.abs(pred - y)
        mse = float(np.mean(err**2)) if err.size else 0.0
        max_error = float(np.max(err, initial=0.0))
        if not math.isfinite(max_error):
            mse = max_error = math.inf
        rounded = integer and not bool(np.all(pred == np.rint(pred)))
        return MLPAlt(
            inputs,
            c.source,
            c.numpy_source,
            str(c.expr),
            c.size,
            mse,
            max_error,
            bool(c.exact),
            float(r["tol"]),
            integer,
            fitted_to,
            int(r["X"].shape[0]),
            r["tag"],
            rounded,
            r.get("where", ""),  # runs made elsewhere (refits, simplification) fit every position
        )

    def keep(self, key: str, res: SRResult, inputs: tuple[int, ...]) -> None:
        """Keep regression `key`'s result (over stream variables `inputs`) as evidence."""
        self.sr[key], self.sr_inputs[key] = res, inputs

    def alternatives(self, m: Module, full: bool = False) -> list[MLPAlt]:
        """Symbolic regression runs, in order, until one finds an exact expression: composed
        with the MLPs feeding it, on the seen inputs plus a grid, on the seen inputs alone, and
        (integer-valued MLPs) with rounding allowed. `full` runs them all and adds the other
        Pareto candidates."""
        if m.key in self.alts and not full:
            return self.alts[m.key]
        smp = self._runs(m)
        runs = smp["runs"]
        first_look = m.key not in self.alts
        alts: list[MLPAlt] = self.alts.setdefault(m.key, [])
        seen = {(a.inputs, a.source) for a in alts}
        extra = self._extra.setdefault(m.key, [])
        i = self._runs_done.get(m.key, 0)
        # A model far from the targets gets the first runs only (up to the grid): its program is
        # a diagnosis, its refit against the targets (not these runs) is what can still verify,
        # and the rest cost ~2 x 3-14 s per MLP (bench15: 100-120 s extractions of such models).
        stop = len(runs)
        if not full and not self.near:
            stop = 1 + next((j for j, r in enumerate(runs) if r["tag"] == "grid"), len(runs) - 1)
        while i < stop:
            r = runs[i]
            res = symbolic_regression(
                r["X"],
                r["y"],
                PLACEHOLDERS[: len(r["inputs"])],
                r["tol"],
                config=self.cfg.sr_config(),
                integer_target=r["rounding"],
                seed=self.cfg.seed,
            )
            self.keep(f"{m.key} ({r['tag']})", res, r["inputs"])
            i += 1
            self._runs_done[m.key] = i
            if (r["inputs"], res.best.source) not in seen and (res.best.exact or r["tag"] != "composed"):
                seen.add((r["inputs"], res.best.source))
                alts.append(self.make_alternative(res.best, r, "mlp", smp["integer"]))
            extra += [(c, r) for j, c in enumerate(res.front) if j != res.picked]
            self.log(
                f"{m.key} [{r['tag']}]: {res.best.source} (size {res.best.size}, "
                f"{'exact' if res.best.exact else 'not exact'})"
            )
            if res.best.exact and not full:
                break
        if first_look:  # exact expressions first (stable); later calls only append
            alts.sort(key=lambda a: not a.exact)
        if full and m.key not in self.full:
            self.full.add(m.key)
            extra.sort(key=lambda t: (not t[0].exact, t[0].size if t[0].exact else 0, t[0].mse))
            for c, r in extra:
                if len(alts) >= self.cfg.max_alternatives:
                    break
                if (r["inputs"], c.source) not in seen:
                    seen.add((r["inputs"], c.source))
                    alts.append(self.make_alternative(c, r, "mlp", smp["integer"]))
        return alts

    def append_alternative(self, m: Module, alt: MLPAlt) -> list[MLPAlt]:
        """Add `alt` to MLP `m`'s alternatives (a choice index is its position in the list) without
        running the regressions not run yet; returns the list."""
        alts = self.alternatives(m)  # the first characterisation, if not made yet
        alts.append(alt)
        return alts

    # ---------------------------------------------------------------- evidence
    def fronts(self, ir: ProgramIR) -> dict[str, SRResult]:
        """The regressions of the MLPs in `ir`, their placeholders replaced by program names."""
        known: dict[int, str] = {v.index: v.name for v in ir.inputs}
        for node in ir.nodes:
            known.update({v.index: v.name for v in (*node.reads, node.out)})
        names = self.graph.variable_names
        out = {}
        for node in ir.mlps:
            for key in sorted(k for k in self.sr if k == node.key or k.startswith(node.key + " (")):
                mapping = {ph: known.get(i, sanitize(names[i])) for ph, i in zip(PLACEHOLDERS, self.sr_inputs[key])}
                out[key] = renamed(self.sr[key], mapping)
        return out


def renamed(res: SRResult, mapping: dict[str, str]) -> SRResult:
    """The same front with placeholders replaced by program names (for display)."""
    front = []
    subs = {sympy.Symbol(k): sympy.Symbol(v) for k, v in mapping.items()}
    for c in res.front:
        front.append(
            replace(
                c,
                expr=c.expr.xreplace(subs),
                source=rename_names(c.source, mapping),
                numpy_source=rename_names(c.numpy_source, mapping),
            )
        )
    names = tuple(mapping.get(n, n) for n in res.names)
    return SRResult(tuple(front), res.picked, names, res.work)
