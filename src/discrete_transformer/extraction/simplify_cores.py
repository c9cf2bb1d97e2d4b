"""Stand-ins for an intermediate MLP, and a head that sums, for the simplification stage.

What an intermediate MLP contributes downstream is all the readout needs of it; when the readout
MLPs are refitted against the task's targets, the MLP may be replaced by anything that keeps
that information (:meth:`~.refit.Refits.core` finds a linear combination its output is a
monotone function of). Here:

* :func:`class_rankings` / :func:`class_core` — the MLP's output, as a function of one
  integer-valued input, takes a few values only (for every value of its other inputs): the
  input's classes, found by regressing their rank (Evens_Counter's model computes
  `-2.93·(x mod 2) + h(pos)`: `(x + 1) % 2` with pos; a count-above model `-5·[x ≥ -1] + 4.4`:
  `x >= -1`);
* :func:`input_alternative` — one of its inputs as it is (the MLP line goes);
* :func:`composed_heads` / :func:`replaced_head` — a head routing another head's output as one
  head on that head's input (`shift(shift(x, 3), 1)` is `shift(x, 4)`, `first(prefix_mean(x))`
  is `first(x)`);
* :func:`summing` / :func:`summed_program` — an averaging head whose reader multiplies it back by its
  count (`prefix_mean_x * (pos + 1)`) written as the summing head it is, its reader refitted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from .build import alt_sources, mlp_line, with_nodes
from .graph import (
    AttentionNode,
    MLPNode,
    Module,
    ProgramIR,
    Variable,
    rename_names,
    sanitize,
    unique_name,
)
from .hypotheses import describe, hypothesis_reads, make_hypothesis, with_aggregate
from .mlps import INT_TOL, MLPAlt, MLPCharacteriser
from .naming import is_python
from .patterns import pattern_label
from .record import mlp_function
from .simplify_fits import Fit
from .symbolic import SRConfig, symbolic_regression

__all__ = [
    "CLASS_SIZE",
    "MAX_CLASSES",
    "MAX_SIDES",
    "Ranking",
    "class_core",
    "class_rankings",
    "composed_heads",
    "input_alternative",
    "mlp_node",
    "replaced_head",
    "summed_program",
    "summing",
]

MAX_CLASSES = 8  # at most this many classes of an input make a class core
MAX_SIDES = 64  # value combinations of the other inputs the classes must hold for (evenly picked)
CLASS_SIZE = 7  # the largest expression of the classes' ranks looked for (`1 - x % 2` is 5)


def _classes(M: np.ndarray, tol: float) -> np.ndarray | None:
    """Rows of `M` (an input's values × the other inputs' combinations) grouped: a row joins the
    first class whose representative it is within `tol` of everywhere; None past MAX_CLASSES."""
    reps: list[np.ndarray] = []
    labels = np.empty(M.shape[0], dtype=np.int64)
    for i, row in enumerate(M):
        for c, rep in enumerate(reps):
            if float(np.max(np.abs(row - rep))) <= tol:
                labels[i] = c
                break
        else:
            if len(reps) == MAX_CLASSES:
                return None
            reps.append(row)
            labels[i] = len(reps) - 1
    return labels


@dataclasses.dataclass(frozen=True)
class Ranking:
    """The classes of integer-valued input `u` of an MLP: its values, the rank of each value's
    class by the MLP's mean output, and whether the MLP has other inputs (then the classes are
    what it adds to a function of them, not its output)."""

    u: int
    vals: np.ndarray  # (V,) the input's distinct values, ascending
    rank: np.ndarray  # (V,) class rank per value: 0 for the smallest mean output
    others: bool
    groups: str  # "classes" (every class) or "two groups" (the classes either side of the widest gap)


def class_rankings(mlps: MLPCharacteriser, m: Module) -> Iterator[Ranking]:
    """Per integer-valued input of MLP `m` with 2 to MAX_CLASSES classes (inputs whose outputs
    agree within the MLP tolerance for every combination of the other inputs) and at most half as
    many classes as values: with more than two classes, first the two groups of classes either
    side of the widest gap between their mean outputs (noise in the model's output at one value
    splits a class: gen0_055_count_above's `x = 1` sat 0.06 from the rest of its class, 6.4 from
    the other), then every class. No regression: cheap."""
    uniq = mlps.inputs_of(m.reads)
    Xs, ys = mlps.seen(m, uniq)
    if Xs.shape[0] < 4:
        return
    tol = mlps.rel_tol * max(float(np.std(ys)), 1e-9)
    for j, u in enumerate(uniq):
        vals = np.unique(Xs[:, j])
        if not 4 <= vals.size <= 1024 or not np.all(vals == np.rint(vals)):
            continue
        others = [c for c in range(len(uniq)) if c != j]
        sides = np.unique(Xs[:, others], axis=0) if others else np.zeros((1, 0))
        if sides.shape[0] > MAX_SIDES:
            sides = sides[np.linspace(0, sides.shape[0] - 1, MAX_SIDES).round().astype(int)]
        V, S = vals.size, sides.shape[0]
        X = np.empty((V * S, len(uniq)))
        X[:, j] = np.repeat(vals, S)
        if others:
            X[:, others] = np.tile(sides, (V, 1))
        M = mlp_function(mlps.rec.model, m, uniq, X).reshape(V, S)
        labels = _classes(M, tol)
        if labels is None:
            continue
        k = int(labels.max()) + 1
        if k < 2 or 2 * k > V:
            continue
        means = np.array([M[labels == c].mean() for c in range(k)])
        rank = np.argsort(np.argsort(means, kind="stable"), kind="stable")
        if k > 2:
            ordered = np.sort(means)
            cut = ordered[int(np.argmax(np.diff(ordered)))]
            yield Ranking(u, vals, (means[labels] > cut).astype(np.int64), bool(others), "two groups")
        yield Ranking(u, vals, rank[labels], bool(others), "classes")


def class_core(mlps: MLPCharacteriser, m: Module, cur: MLPAlt, r: Ranking, conf: SRConfig, seed: int) -> Fit | None:
    """An expression `e` of input `r.u` of MLP `m` that takes one value per class of ranking `r`
    (its rank), found by one regression of `conf`; None when none is exact. With no other input
    the output is a monotone function of `e` (a core); with others it is a function of `e` and
    them, and the alternative says it is not the MLP's output."""
    res = symbolic_regression(
        r.vals[:, None], r.rank.astype(np.float64), ("u0",), INT_TOL, config=conf, integer_target=True, seed=seed
    )
    if not res.best.exact:
        return None
    Xr, yr = mlps.seen(m, (r.u,))
    ref = {"tag": r.groups, "inputs": (r.u,), "X": r.vals[:, None], "tol": cur.tolerance, "Xref": Xr, "yref": yr}
    alt = mlps.make_alternative(res.best, ref, "core" if not r.others else "mlp", cur.integer_target)
    if not r.others and r.groups == "classes":  # a function of the classes, increasing with their rank: a core
        alt = dataclasses.replace(alt, exact=True, mse=0.0, max_error=0.0, n_samples=int(r.vals.size))
    else:
        alt = dataclasses.replace(alt, exact=False)
    return alt, f"{m.key} (simplify: {r.groups})", res, (r.u,)


def input_alternative(mlps: MLPCharacteriser, m: Module, cur: MLPAlt, u: int) -> MLPAlt:
    """MLP `m` replaced by its input `u` as it is: the program reads `u` (no line), and what the
    MLP read is measured against its output."""
    Xr, yr = mlps.seen(m, (u,))
    err = np.abs(Xr[:, 0] - yr)
    return MLPAlt(
        (u,),
        "u0",
        "u0",
        "u0",
        1,
        float(np.mean(err**2)) if err.size else 0.0,
        float(np.max(err, initial=0.0)),
        False,
        cur.tolerance,
        cur.integer_target,
        "mlp",
        int(Xr.shape[0]),
        "an input as it is",
    )


def summing(ir: ProgramIR, head: AttentionNode) -> tuple[AttentionNode, list[MLPNode | AttentionNode]] | None:
    """`head` summing what it averages, and `ir`'s nodes without its (single) MLP reader (which
    the caller refits); None when the head does not average or something else reads it."""
    h2 = with_aggregate(head.hypothesis, "sum")
    if h2 == head.hypothesis:
        return None
    readers = [n for n in ir.nodes if any(v.index == head.out.index for v in n.reads)]
    if (
        len(readers) != 1
        or not isinstance(readers[0], MLPNode)
        or any(o.var.index == head.out.index for o in ir.outputs)
    ):
        return None
    taken = {v.name for v in ir.inputs} | {n.out.name for n in ir.nodes} | {"pos", "one"}
    q, k, v = head.q.name, head.k.name, head.v.name
    name = unique_name(sanitize(describe(h2, q, k, v), "h"), taken)
    label = pattern_label(head.hypothesis, q, k)
    note = head.note or f"{label} times the number of values it averages: their sum"
    new = dataclasses.replace(head, hypothesis=h2, out=dataclasses.replace(head.out, name=name), note=note)
    nodes = [new if n is head else n for n in ir.nodes if n is not readers[0]]
    return new, nodes


def mlp_node(old: MLPNode, alt: MLPAlt, variables: dict[int, Variable]) -> MLPNode:
    """The line of `alt` (over placeholders for the stream variables `alt.inputs`) in place of
    `old`, writing `old`'s variable, or aliasing its input when it is an identity."""
    in_vars = tuple(variables[i] for i in alt.inputs)
    sources = alt_sources(alt, in_vars)
    out = old.out
    if any(sources[0].strip() == v.name for v in in_vars):
        out = dataclasses.replace(old.out, name=sources[0].strip())
    return mlp_line(old.key, out, in_vars, alt, sources)


def summed_program(ir: ProgramIR, head: AttentionNode, reader: MLPNode, alt: MLPAlt) -> ProgramIR:
    """`ir` with `head` (the summing form :func:`summing` made of one of its heads) in place of
    the head it replaces, and `reader` (the head's one MLP reader) computing `alt` instead;
    outputs that read the reader read its new line, dead code goes."""
    nodes = [head if n.key == head.key else n for n in ir.nodes]
    others = [n for n in nodes if n is not reader]
    variables = {v.index: v for v in reader.reads} | {v.index: v for n in others for v in (*n.reads, n.out)}
    line = mlp_node(reader, alt, variables)
    nodes = [line if n is reader else n for n in nodes]
    outputs = tuple(dataclasses.replace(o, var=line.out) if o.var.index == line.out.index else o for o in ir.outputs)
    return with_nodes(ir, nodes, outputs)


def composed_heads(ir: ProgramIR, outer: AttentionNode) -> list[AttentionNode]:
    """Heads on the value the head `outer`'s input head routes that may compute what `outer`
    computes: `outer`'s own pattern (idempotent routings: `first(prefix_mean(x))` and
    `first(prefix_argmax(x, x))` are `first(x)`), and for two shifts one shift by their sum.
    `outer` must read its value alone (no query or key), the inner head may read anything: the
    candidate keeps only its value. Whether a candidate is right is for the caller to check."""
    inner = next((n for n in ir.heads if n.out.index == outer.v.index), None)
    if inner is None or hypothesis_reads(outer.hypothesis) != {"v"}:
        return []
    hyps = [outer.hypothesis]
    pure = hypothesis_reads(inner.hypothesis) == {"v"}
    if pure and outer.hypothesis.name == inner.hypothesis.name == "shift":
        hyps.append(make_hypothesis("shift", c=outer.hypothesis.params["c"] + inner.hypothesis.params["c"]))
    taken = {v.name for v in ir.inputs} | {n.out.name for n in ir.nodes} | {"pos", "one"}
    q, k, v = outer.q.name, outer.k.name, inner.v.name
    out = []
    for h in hyps:
        name = unique_name(sanitize(describe(h, q, k, v), "h"), set(taken))
        note = f"{pattern_label(outer.hypothesis, q, k)} of {pattern_label(inner.hypothesis, inner.q.name, inner.k.name)} of {v}"
        out.append(
            dataclasses.replace(
                outer, hypothesis=h, v=inner.v, out=dataclasses.replace(outer.out, name=name), note=note
            )
        )
    return out


def replaced_head(ir: ProgramIR, old: AttentionNode, new: AttentionNode) -> ProgramIR:
    """`ir` with head `new` in place of `old` (the same stream variable, possibly another name):
    what read `old` reads `new`, dead code goes."""
    idx, was, now = old.out.index, old.out.name, new.out
    ren = {was: now.name}

    def swap(v: Variable) -> Variable:
        return now if v.index == idx else v

    nodes: list[MLPNode | AttentionNode] = []
    for n in ir.nodes:
        if n is old:
            nodes.append(new)
        elif isinstance(n, AttentionNode):
            nodes.append(dataclasses.replace(n, q=swap(n.q), k=swap(n.k), v=swap(n.v)))
        elif any(v.index == idx for v in n.inputs):
            alias = n.is_alias
            nodes.append(
                dataclasses.replace(
                    n,
                    inputs=tuple(swap(v) for v in n.inputs),
                    source=rename_names(n.source, ren),
                    numpy_source=rename_names(n.numpy_source, ren),
                    expression=rename_names(n.expression, ren) if is_python(n.expression) else n.expression,
                    out=dataclasses.replace(n.out, name=now.name) if alias else n.out,
                )
            )
        else:
            nodes.append(n)
    outs = {n.out.index: n.out for n in nodes}
    outputs = tuple(dataclasses.replace(o, var=outs.get(o.var.index, o.var)) for o in ir.outputs)
    return with_nodes(ir, nodes, outputs)
