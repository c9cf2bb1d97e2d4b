"""Repair: the fallback search over alternatives when the first program does not verify.

Swaps only when the model itself is exact or nearly so; a model far from the targets gets one
readout refit per output, then step 5. In order, within ``search_budget`` nominal seconds
of *work* (:class:`~.budget.Budget`: a regression charges the work it did, a candidate check
``CHECK_COST``), so a loaded machine gives the same program as an idle one (docs/design.md,
Extraction fallback search):

1. (exact model) hill-climbing over single swaps of one module's characterisation — the next
   Pareto candidates of an MLP, the next accepted hypotheses of a head, then the best rejected
   ones — on the exact-match rate / normalised MSE on *training* sequences;
2. (swaps) intermediate MLPs replaced by their cores, the readout MLPs refitted over them;
3. the readout MLPs refitted against the true targets over what the program computes;
4. (swaps) one more round of swaps;
5. each output refitted against the true targets over what its readout reads together with the
   input channels and `pos` (:meth:`~.refit.Refits.widened_fit`), a line the program gains.

A candidate that is perfect on the training sequences is verified on the test split; one that is
not is also tried with its outputs read from earlier variables that equal the targets. The first
that verifies wins.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from ..verdict import CONTINUOUS_NMSE, Kind, solved
from .budget import CHECK_COST, Budget
from .build import Builder, with_readout
from .codegen import render
from .config import ExtractionError
from .graph import ProgramIR
from .program import Attempt, Verifier, load_module
from .record import ModelScore
from .refit import Refits
from .simplify import earlier_outputs
from .verify import run_split

__all__ = ["SEARCH_MIN_GAIN", "Search", "better", "repair"]

# A swap must lower the training nMSE by more than this fraction to count as an improvement:
# equivalent programs (a prefix sum and a window as long as the sequence) score alike up to
# float rounding, and a move on rounding noise traded a generalising pattern for one that is
# not (Total_Momentum's window_mean(9) instead of the prefix sum: verified at T, not at 2×T).
SEARCH_MIN_GAIN = 1e-6

Score = tuple[float, float]  # (higher is better) exact-match rate or pass, -nMSE


def better(a: Score, b: Score) -> bool:
    """Search score `a` is an improvement on `b` (beyond float noise)."""
    if a[0] != b[0]:
        return a[0] > b[0]
    return -a[1] < -b[1] * (1.0 - SEARCH_MIN_GAIN)


def repair(
    first: Attempt,
    model: ModelScore,
    builder: Builder,
    refits: Refits,
    verifier: Verifier,
    budget: float,
    log: Callable[[str], None],
) -> Attempt:
    """The first program of the search that verifies, or `first` when none does. A model far
    from the targets still gets the readout refit (its heads may be right and only the MLP
    behind them imprecise: Add_Mod_k), but swaps only when it is nearly exact."""
    found = Search(builder, refits, verifier, budget, log).run(first, swaps=model.near, climb_first=model.exact)
    return first if found is None else found


class Search:
    """One fallback search (its budget opens here)."""

    def __init__(
        self, builder: Builder, refits: Refits, verifier: Verifier, budget: float, log: Callable[[str], None]
    ) -> None:
        self.builder, self.refits, self.verifier, self.log = builder, refits, verifier, log
        self.rows = refits.rows
        self.budget = Budget(budget)
        self.tried: set[tuple] = set()
        self.cur: dict[str, int] = {}
        self.cur_score: Score = (-1.0, -math.inf)

    def budget_left(self) -> bool:
        return self.budget.left() > 0

    def score(self, mod: Any) -> Score:
        """(higher is better) on the training sequences: (exact-match rate, -nMSE)."""
        s = run_split(mod.run_batch, self.rows.x, self.rows.y, self.rows.kind)
        if s.error is not None:
            return (-1.0, -math.inf)
        if self.rows.kind == Kind.DISCRETE:
            return (s.exact, -s.nmse)
        return (float(s.passed), -s.nmse)

    def passes(self, sc: Score) -> bool:
        return solved(self.rows.kind, {"exact": sc[0], "nmse": -sc[1]}, CONTINUOUS_NMSE)

    def run(self, first: Attempt, swaps: bool, climb_first: bool) -> Attempt | None:
        """Climb (when `climb_first`), replace intermediate MLPs by their cores (`swaps`), refit
        the readout MLPs to the true targets, climb again (`swaps`). `swaps=False` (a model far
        from the targets): one readout refit per output, over the composed inputs when there
        are any."""
        self.cur = dict(first.choice)
        self.cur_score = self.score(first.module)
        self.tried = {tuple(sorted(self.cur.items()))}
        if climb_first:  # the model's own modules are right: their alternatives come first
            found = self.climb()
            if found is not None:
                return found
        if swaps:  # intermediate MLPs replaced by their cores, the readout refitted (cheap: try first)
            found = self.core_refits()
            if found is not None:
                return found
        found = self.readout_refits(first_only=not swaps)
        if found is not None:
            return found
        found = self.climb() if swaps else None
        return found if found is not None else self.widened_readouts()

    def evaluate(self, ch: dict[str, int], why: str) -> tuple[Score | None, Attempt | None]:
        """Score choice `ch` on the training sequences (None if tried before or unbuildable)
        and, when it passes there, verify it: (score, the verified attempt or None)."""
        key = tuple(sorted(ch.items()))
        if key in self.tried:
            return None, None
        self.tried.add(key)
        self.budget.charge(CHECK_COST)
        try:
            ir = self.builder.build(ch)
        except ExtractionError as e:  # e.g. a swap brought an MLP of too high an arity to life
            self.verifier.search_log.append({"try": why, "error": str(e)})
            return None, None
        return self.check(ir, ch, why, shortcut=True)

    def check(self, ir: ProgramIR, ch: dict[str, int], why: str, shortcut: bool) -> tuple[Score | None, Attempt | None]:
        """Score candidate `ir` (built from `ch`) on the training sequences, log it and, when it
        passes there, verify it; with `shortcut`, a candidate that fails is also tried with its
        outputs read from earlier variables. (score or None if it does not load, the verified
        attempt or None)."""
        try:
            mod = load_module(render(ir))
        except ExtractionError as e:
            self.verifier.search_log.append({"try": why, "error": str(e)})
            return None, None
        sc = self.score(mod)
        self.verifier.search_log.append(
            {"try": why, "train_exact": sc[0] if self.rows.kind == Kind.DISCRETE else None, "train_nmse": -sc[1]}
        )
        if self.passes(sc):
            res = self.verifier.attempt(ir, ch, why)
            if res.verified:
                return sc, res
        elif shortcut:  # a swap that makes an early head right can leave later modules that only worked around it
            short = earlier_outputs(self.rows, ir)
            if short is not None:
                res = self.verifier.attempt(short, ch, f"{why}, outputs read from earlier variables")
                if res.verified:
                    return sc, res
        return sc, None

    def climb(self) -> Attempt | None:
        """Hill-climb over single-module swaps, best improvement first, until nothing improves."""
        while self.budget_left():
            best = None
            for _idx, (m, _alt) in sorted(self.builder.live(self.cur).items(), reverse=True):
                alts = self.builder.alternatives(m, full=True)
                for j in range(len(alts)):
                    if j == self.cur.get(m.key, 0) or not self.budget_left():
                        continue
                    ch = {**self.cur, m.key: j}
                    sc, res = self.evaluate(ch, f"{m.key} alternative {j}")
                    if res is not None:
                        return res
                    if sc is not None and better(sc, self.cur_score) and (best is None or better(sc, best[0])):
                        best = (sc, ch)
            if best is None:
                return None
            self.cur_score, self.cur = best
        return None

    def core_refits(self) -> Attempt | None:
        """Intermediate MLPs replaced by their cores (:meth:`~.refit.Refits.core`) — all of them,
        then each alone — with the readout MLPs refitted against the true targets over what the
        program then computes."""
        graph, mlps = self.builder.graph, self.builder.mlps
        readout = set(graph.readout)
        cores: dict[str, int] = {}
        for idx, (m, _alt) in self.builder.live(self.cur).items():
            if m.kind != "mlp" or idx in readout or not self.budget_left():
                continue
            core = self.refits.core(m)
            if core is not None:
                alts = mlps.append_alternative(m, core)
                cores[m.key] = len(alts) - 1
                self.log(f"{m.key}: core {core.source}")
        if not cores:
            return None
        subsets = [cores] + ([{k: v} for k, v in cores.items()] if len(cores) > 1 else [])
        for sub in subsets:
            ch = {**self.cur, **sub}
            ir = self.builder.build(ch)
            for c, idx in enumerate(graph.readout):
                m = graph.module_at(idx)
                if m is None or m.kind != "mlp" or not self.budget_left():
                    continue
                for alt in self.refits.truth_fit(m, ir, c, self.budget):
                    alts = mlps.append_alternative(m, alt)
                    why = f"{', '.join(sorted(sub))} replaced by core(s), {m.key} fitted to the true targets ({alt.sr_key})"
                    _sc, res = self.evaluate({**ch, m.key: len(alts) - 1}, why)
                    if res is not None:
                        return res
        return None

    def readout_refits(self, first_only: bool) -> Attempt | None:
        """Readout MLPs against the task's true targets, inputs computed by the program so far;
        a fit that scores better becomes the current choice."""
        graph = self.builder.graph
        ir = self.builder.build(self.cur)
        for c, idx in enumerate(graph.readout):
            if not self.budget_left():
                break
            m = graph.module_at(idx)
            if m is None or m.kind != "mlp":
                continue
            for alt in self.refits.truth_fit(m, ir, c, self.budget, first_only=first_only):
                alts = self.builder.mlps.append_alternative(m, alt)
                ch = {**self.cur, m.key: len(alts) - 1}
                sc, res = self.evaluate(ch, f"{m.key} fitted to the true targets ({alt.sr_key})")
                if res is not None:
                    return res
                if sc is not None and better(sc, self.cur_score):
                    self.cur_score, self.cur = sc, ch
        return None

    def widened_readouts(self) -> Attempt | None:
        """Each output regressed against the true targets over its readout's inputs together
        with the input channels and `pos` (:meth:`~.refit.Refits.widened_fit`), as a new line of
        the current program; a fit that scores better is kept for the next output."""
        ir = self.builder.build(self.cur)
        for c in range(len(ir.outputs)):
            alt = self.refits.widened_fit(ir, c, self.budget)
            if alt is None:
                continue
            cand = with_readout(ir, c, alt)
            why = f"output {c} fitted to the true targets over {', '.join(v.name for v in cand.nodes[-1].reads) or 'constants'}"
            self.budget.charge(CHECK_COST)
            sc, res = self.check(cand, dict(self.cur), why, shortcut=False)
            if res is not None:
                return dataclasses.replace(res, edited=True)
            if sc is not None and better(sc, self.cur_score):
                self.cur_score, ir = sc, cand
        return None
