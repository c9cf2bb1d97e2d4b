"""The simplification stage's bookkeeping (:class:`Session`): the current program and its cost,
the budget, and the one rule by which a candidate is kept (:meth:`Session.offer_ir`): it costs
less (:func:`~.simplify_fits.program_cost`), it is exact on the training sequences, and it
verifies no worse (:func:`no_worse`: on longer sequences and off-range inputs too if the program
did). The moves that make the candidates are :class:`~.simplify_stage.Simplifier`'s.

The budget counts *work*, not wall time (:class:`~.budget.Budget`): a regression charges its
nominal budget, a candidate check CHECK_COST.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..verdict import Kind
from .budget import CHECK_COST, Budget
from .build import Builder
from .codegen import render
from .config import ExtractionError
from .graph import Module, ProgramIR
from .mlps import MLPAlt
from .program import Attempt, Verifier, load_module
from .refit import Refits
from .simplify_fits import Fit, determined, fit_config, fit_to_targets, program_cost
from .verify import run_split

__all__ = ["FIT_BUDGET", "Session", "head_reads", "no_worse"]

# Nominal seconds of work per fresh regression: with a maximum size below the line's, the small
# answers the stage looks for (`u0 + u1`, `round(u0 * (u1 + 1)) % 2`) are found well within it.
FIT_BUDGET = 1.0


def no_worse(cand: Attempt, best: Attempt) -> bool:
    """`cand` verifies, generalises to longer sequences if `best` did, and holds off-range if
    `best` did: a smaller program that only fits the seen inputs is not simpler, it is worse."""
    was, now = best.verification, cand.verification
    return (
        cand.verified
        and (was.generalises is not True or now.generalises is True)
        and (was.holds_off_range is not True or now.holds_off_range is True)
    )


class Session:
    """One run of the stage on the verified program `best` (its clock starts here): the current
    program, the budget, and how a candidate is judged (:meth:`offer`); the moves are
    :class:`~.simplify_stage.Simplifier`'s."""

    def __init__(
        self,
        best: Attempt,
        builder: Builder,
        refits: Refits,
        verifier: Verifier,
        budget: float,
        log: Callable[[str], None],
    ) -> None:
        self.builder, self.refits, self.verifier, self.log = builder, refits, verifier, log
        self.graph, self.mlps, self.cfg = builder.graph, builder.mlps, builder.cfg
        self.rows = refits.rows
        self.kind = self.rows.kind
        self.best, self.cost = best, program_cost(best.ir, self.kind)
        self.budget = Budget(budget)
        self.kept: list[str] = []
        self.tried: set[tuple] = {tuple(sorted(best.choice.items()))}
        self.checks = self.fits = 0

    # ---------------------------------------------------------------- acceptance
    def offer(self, choice: dict[str, int], why: str, fits: Sequence[Fit] = ()) -> bool:
        """Build `choice` and keep it if it is cheaper and right (see :meth:`offer_ir`)."""
        key = tuple(sorted(choice.items()))
        if key in self.tried or self.budget.left() <= 0:
            return False
        self.tried.add(key)
        try:
            ir = self.builder.build(choice)
        except ExtractionError as e:  # e.g. an MLP brought to life beyond regression's arity
            self.verifier.search_log.append({"try": why, "error": str(e)})
            return False
        return self.offer_ir(ir, choice, why, fits)

    def offer_ir(
        self, ir: ProgramIR, choice: dict[str, int], why: str, fits: Sequence[Fit] = (), anyway: bool = False
    ) -> bool:
        """Keep `ir` when it costs less than the current program, is exact on the training rows
        and verifies no worse; its regressions are then kept as the lines' evidence. `anyway`:
        even when the budget is spent (a move that costs one check)."""
        cost = program_cost(ir, self.kind)
        if cost >= self.cost or (self.budget.left() <= 0 and not anyway):
            return False
        self.budget.charge(CHECK_COST)
        self.checks += 1
        s = run_split(load_module(render(ir)).run_batch, self.rows.x, self.rows.y, self.kind)
        if not s.passed:
            exact = s.exact if self.kind == Kind.DISCRETE else None
            self.verifier.search_log.append({"try": why, "train_exact": exact, "train_nmse": s.nmse})
            return False
        cand = self.verifier.attempt(ir, choice, why)
        if not no_worse(cand, self.best):
            return False
        for _alt, key, res, inputs in fits:
            self.mlps.keep(key, res, inputs)
        self.log(f"simplify: {why} (cost {self.cost} -> {cost})")
        self.best, self.cost = cand, cost
        self.kept.append(why)
        return True

    # ---------------------------------------------------------------- helpers
    def live_mlps(self) -> list[tuple[Module, MLPAlt]]:
        """The current program's MLP modules and their alternatives, from the readout back."""
        live = self.builder.live(self.best.choice)
        return [(m, a) for _i, (m, a) in sorted(live.items(), reverse=True) if isinstance(a, MLPAlt)]

    def current(self, m: Module) -> MLPAlt | None:
        alt = self.builder.live(self.best.choice).get(m.out, (None, None))[1]
        return alt if isinstance(alt, MLPAlt) else None

    def known(self, i: int) -> bool:
        """A variable a new alternative may read without characterising anything new: a base
        variable or a module characterised already."""
        if i < self.graph.n_base:
            return True
        m = self.graph.module_at(i)
        return m is not None and (m.key in self.builder.heads.alts or m.key in self.mlps.alts)

    def with_alt(self, choice: dict[str, int], m: Module, alt: MLPAlt) -> dict[str, int]:
        alts = self.mlps.append_alternative(m, alt)
        return {**choice, m.key: len(alts) - 1}

    def readouts(self) -> dict[int, Module]:
        """Output channel -> its MLP when refitting that MLP to the channel's targets changes
        nothing else: the output reads it (no earlier variable), no other channel or module does."""
        out: dict[int, Module] = {}
        readout, live = self.graph.readout, self.graph.live()
        for c, idx in enumerate(readout):
            m = self.graph.module_at(idx)
            if m is None or m.kind != "mlp" or readout.count(idx) != 1 or any(idx in o.reads for o in live):
                continue
            if self.best.ir.outputs[c].var.index == idx:
                out[c] = m
        return out

    def fit_budget(self) -> float:
        """The next regression's nominal budget (0: the stage's budget is spent)."""
        left = self.budget.left()
        return min(FIT_BUDGET, left) if left >= 0.25 * FIT_BUDGET else 0.0

    def fit_targets(
        self, env: dict[int, np.ndarray], m: Module, c: int, inputs: tuple[int, ...], max_size: int, tag: str
    ) -> Fit | None:
        """A fresh regression of readout `m` against channel `c`'s targets (see
        :func:`~.simplify_fits.fit_to_targets`), charged to the budget; None when none is left."""
        budget = self.fit_budget()
        max_size = min(max_size, self.cfg.sr_max_size)
        if budget <= 0 or max_size < 1 or not inputs:
            return None
        if self.kind == Kind.DISCRETE and not determined(env, self.rows.y[..., c], inputs):
            return None  # (discrete only: continuous targets differ by float noise where inputs repeat)
        self.budget.charge(budget)
        self.fits += 1
        conf = fit_config(self.cfg, max_size, budget, self.kind)
        return fit_to_targets(self.mlps, self.rows, env, m, c, inputs, conf, self.cfg.seed, tag)

    def input_sets(self, m: Module, env: dict[int, np.ndarray], drop_one: bool) -> list[tuple[str, tuple[int, ...]]]:
        """The variables readout `m` may be refitted over: its own inputs, the inputs composed
        through the MLPs feeding it, its own inputs and `pos`, and (`drop_one`) its own inputs
        but one."""
        own = tuple(i for i in self.mlps.inputs_of(m.reads) if i in env)
        sets = [("own", own)]
        fused = self.mlps.fused_inputs(m)
        if fused is not None:
            sets.append(("composed", tuple(i for i in self.mlps.inputs_of(fused) if i in env)))
        npos = self.graph.n_inputs
        if npos not in own:  # a window's count at the start, a position-dependent rule
            sets.append(("own and pos", (*own, npos)))
        if drop_one and len(own) > 1:
            names = self.graph.variable_names
            sets += [(f"without {names[i]}", tuple(j for j in own if j != i)) for i in own]
        seen: set[tuple[int, ...]] = set()
        out = []
        for tag, s in sets:
            if s and s not in seen and all(self.known(i) for i in s):
                seen.add(s)
                out.append((tag, s))
        return out


def head_reads(ir: ProgramIR, index: int) -> bool:
    """Some head of `ir` reads stream variable `index`."""
    return any(index in (v.index for v in n.reads) for n in ir.heads)
