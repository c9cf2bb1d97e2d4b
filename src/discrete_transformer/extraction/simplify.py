"""Simplifying a verified program, keeping it verified (and generalising if it did).

* Readout MLPs with a large expression are refitted against the true targets; a smaller exact
  fit replaces the model-faithful one when the program still verifies.
* Outputs are read from the earliest variable that already equals the targets
  (:func:`earlier_outputs`, also tried by the search on candidates that fail).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from .build import Builder
from .graph import ProgramIR, eliminate_dead_code
from .mlps import MLPAlt
from .program import Attempt, Verifier
from .record import SearchRows
from .refit import Refits
from .trace import trace
from .verify import CONTINUOUS_NMSE

__all__ = ["SIMPLIFY_MIN_SIZE", "earlier_outputs", "equals_targets", "no_worse", "simplify"]

# A verified program's readout MLP of at least this expression size is refitted against the true
# targets; the fit replaces it when smaller and the program still verifies, at 2×T too if it did.
# The model-faithful expression is right on every input the model sees but need not be the law:
# Parity_All's exact model gave `round(0.2868·(−√m mod 4) − 0.878·(m·p mod 2) + …)`, the task's
# targets give `round(m·(p + 1)) mod 2`.
SIMPLIFY_MIN_SIZE = 5


def no_worse(cand: Attempt, best: Attempt) -> bool:
    """`cand` verifies, and generalises to longer sequences if `best` did."""
    return cand.verified and (best.verification.generalises is not True or cand.verification.generalises is True)


def simplify(
    best: Attempt, builder: Builder, refits: Refits, verifier: Verifier, log: Callable[[str], None]
) -> Attempt:
    """The verified program `best` with smaller readout MLPs where they verify, then with its
    outputs read from earlier variables where those equal the targets."""
    best = _smaller_readouts(best, builder, refits, verifier, log)
    shorter = earlier_outputs(refits.rows, best.ir)
    if shorter is not None:
        cand = verifier.attempt(shorter, best.choice, "outputs read from earlier variables that equal the targets")
        if no_worse(cand, best):
            best = cand
    return best


def _smaller_readouts(
    best: Attempt, builder: Builder, refits: Refits, verifier: Verifier, log: Callable[[str], None]
) -> Attempt:
    """`best` with its readout MLPs replaced by smaller fits to the true targets wherever the
    program stays verified."""
    graph = builder.graph
    for c, idx in enumerate(graph.readout):
        m = graph.module_at(idx)
        cur = builder.live(best.choice).get(idx)
        if m is None or m.kind != "mlp" or cur is None or not isinstance(cur[1], MLPAlt):
            continue
        if best.ir.outputs[c].var.index != idx:  # the output reads an earlier variable already
            continue
        size = cur[1].size
        if size < SIMPLIFY_MIN_SIZE or cur[1].fitted_to == "targets":  # a refit already
            continue
        for alt in refits.truth_fit(m, best.ir, c):
            if not alt.exact or alt.size >= size:
                continue
            alts = builder.mlps.append_alternative(m, alt)
            choice = {**best.choice, m.key: len(alts) - 1}
            cand = verifier.attempt(
                builder.build(choice),
                choice,
                f"{m.key} simplified: size {size} -> {alt.size} against the true targets ({alt.sr_key})",
            )
            if no_worse(cand, best):
                log(f"{m.key} simplified against the true targets: {alt.source}")
                best = cand
                size = alt.size
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
        if o.gain != 1.0:
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
    nodes = eliminate_dead_code(ir.nodes, [o.var for o in outs])
    reads = [v for n in nodes for v in n.reads]
    return dataclasses.replace(
        ir,
        nodes=nodes,
        outputs=tuple(outs),
        uses_pos=any(v.role == "pos" for v in reads),
        uses_one=any(v.role == "one" for v in reads),
    )


def equals_targets(val: np.ndarray, y: np.ndarray, kind: str) -> bool:
    """`val` equals the targets `y` by the verification rule (rounded / normalised MSE)."""
    val = np.asarray(val, dtype=np.float64)
    if val.shape != y.shape or not np.isfinite(val).all():
        return False
    if kind == "discrete":
        return bool(np.all(np.rint(val) == y))
    return float(np.mean((val - y) ** 2)) <= CONTINUOUS_NMSE * max(float(np.var(y)), 1e-30)
