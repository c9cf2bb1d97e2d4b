"""The simplification stage: a verified program made as small as it can be while it stays right.

A verified program is right, but it is the model's route to the answer, fitted as the model
computes it: curve fits of reparametrisations the model learned and undid later, a readout line
that reproduces the model's rounding rather than the rule. :func:`simplify` searches, within
``ExtractConfig.simplify_budget`` (nominal seconds of work), for a smaller program that stays
exact on the training sequences and still verifies (on the longer sequences and off-range inputs too if it did): the moves of
:class:`~.simplify_stage.Simplifier` (smaller Pareto candidates, duplicate variables read once,
intermediate MLPs replaced by an input, their core or an input's classes, fresh regressions with
a strong size preference and, on integer data, without transcendental operators, constants
folded, a head of a head as one head, a mean times its count as a sum), then every output read
from the earliest variable that already equals the targets (:func:`earlier_outputs`, also tried
by the repair search on candidates that fail). Sizes are :func:`~.simplify_fits.program_ops`;
what the stage did is one row of the search log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from .build import Builder, with_nodes
from .graph import ProgramIR
from .program import Attempt, Verifier
from .record import SearchRows
from .refit import Refits
from .simplify_base import no_worse
from .simplify_fits import program_cost, program_ops
from .simplify_stage import Simplifier
from .trace import trace
from .verify import CONTINUOUS_NMSE

__all__ = ["earlier_outputs", "equals_targets", "no_worse", "program_ops", "simplify"]


def simplify(
    best: Attempt,
    builder: Builder,
    refits: Refits,
    verifier: Verifier,
    budget: float,
    log: Callable[[str], None],
) -> Attempt:
    """The verified program `best` made smaller where it stays right, within `budget` nominal
    seconds (0: `best` as it is); one summary row goes into the search log."""
    if budget <= 0 or not best.verified or best.edited:
        return best
    stage = Simplifier(best, builder, refits, verifier, budget, log)
    ops0, cost0 = program_ops(best.ir), stage.cost
    best = stage.run()
    shorter = earlier_outputs(refits.rows, best.ir)
    if shorter is not None:
        why = "outputs read from earlier variables that equal the targets"
        if stage.offer_ir(shorter, best.choice, why, anyway=True):
            best = stage.best
    ops1, cost1 = program_ops(best.ir), program_cost(best.ir, refits.rows.kind)
    secs = stage.budget.seconds
    stopped = "budget" if stage.budget.left() <= 0 else "done"
    summary = (
        f"simplification: {ops0} -> {ops1} operations in {secs:.1f} s "
        f"({stage.budget.charged:.1f} of {budget:g} nominal s, {stage.fits} regressions, {stage.checks} checks, "
        f"stopped: {stopped})"
    )
    log(summary)
    verifier.search_log.append(
        {
            "try": summary,
            "verified": best.verified,
            "stage": "simplify",
            "ops_before": ops0,
            "ops_after": ops1,
            "cost_before": cost0,
            "cost_after": cost1,
            "kept": list(stage.kept),
            "seconds": round(secs, 3),
            "charged": round(stage.budget.charged, 3),
            "budget": budget,
            "stopped": stopped,
        }
    )
    return best


def earlier_outputs(rows: SearchRows, ir: ProgramIR) -> ProgramIR | None:
    """`ir` with each output read from the earliest variable (an input or a node before the
    output's own) that already equals the task's targets on the search sequences, by the
    verification rule; the nodes only the old outputs needed go. None when no output moves.
    Prev3's exact model passes shift(x, 3) through two more layers (an MLP adding a bump at
    pos 2 and a latest-position argmax) that change nothing the targets see."""
    env = trace(ir, rows.x)
    outs = list(ir.outputs)
    for c, o in enumerate(outs):
        if not o.plain:
            continue
        y = rows.y[..., o.channel]
        for var in (*ir.inputs, *(n.out for n in ir.nodes)):
            if var.index == o.var.index:
                break
            val = env.get(var.index)
            if val is not None and equals_targets(val, y, rows.kind):
                outs[c] = dataclasses.replace(o, var=var, name=o.name)
                break
    if outs == list(ir.outputs):
        return None
    return with_nodes(ir, list(ir.nodes), tuple(outs))


def equals_targets(val: np.ndarray, y: np.ndarray, kind: str) -> bool:
    """`val` equals the targets `y` by the verification rule (rounded / normalised MSE)."""
    val = np.asarray(val, dtype=np.float64)
    if val.shape != y.shape or not np.isfinite(val).all():
        return False
    if kind == "discrete":
        return bool(np.all(np.rint(val) == y))
    return float(np.mean((val - y) ** 2)) <= CONTINUOUS_NMSE * max(float(np.var(y)), 1e-30)
