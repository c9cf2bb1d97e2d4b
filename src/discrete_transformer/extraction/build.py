"""IR assembly: a choice of characterisation per module -> a :class:`~.graph.ProgramIR`.

:class:`Builder` walks the graph from the readout backwards (:meth:`Builder.live`), asking the
head and MLP characterisers only for modules something live reads — and a node reads only what
its pattern or expression uses, so dead code never costs a test or a regression. It then names
the variables in dataflow order (:class:`_Assembly`), removes the nodes no output reaches, and
refits the output gains against the training targets (:meth:`Builder.refit_gains`).

A *choice* maps a module key to the index of its alternative (absent: 0, the first).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..config import to_dict
from ..tasks import Dataset
from ..version import __version__
from .codegen import pattern_label
from .config import ExtractConfig
from .graph import (
    RESERVED_NAMES,
    AttentionNode,
    Graph,
    MLPNode,
    Module,
    OutputNode,
    ProgramIR,
    Provenance,
    Variable,
    eliminate_dead_code,
    hypothesis_reads,
    readout_key,
    rename_names,
    sanitize,
    source_names,
    unique_name,
)
from .heads import HeadAlt, HeadCharacteriser
from .hypotheses import describe, make_hypothesis, with_aggregate
from .load import RunData
from .mlps import GAIN_REL_TOL, PLACEHOLDERS, MLPAlt, MLPCharacteriser, simple_gain
from .naming import expression_name, is_python, sums_a_doubled_pair
from .record import SearchRows
from .trace import trace

__all__ = ["Alternative", "Builder", "Chosen", "provenance", "with_readout"]

Alternative = HeadAlt | MLPAlt
Chosen = dict[int, tuple[Module, Alternative]]  # live stream index -> (module, its alternative)


def provenance(src: RunData, model_doc: dict[str, Any]) -> Provenance:
    """Where the programs come from: the data, the run's configs, the model's test score."""
    run, ds = src.run, src.dataset
    return Provenance(
        source=ds.source,
        dataset=ds.name,
        kind=ds.kind,
        seed=int(getattr(run, "seed", 0)),
        data_seed=src.data_seed,
        T=ds.T,
        input_names=ds.input_names,
        output_names=ds.output_names,
        model_config=to_dict(run.model_config),
        train_config=to_dict(run.train_config),
        version=__version__,
        model_test=dict(model_doc),
    )


def _reads(m: Module, alt: Alternative) -> set[int]:
    """The stream variables module `m` reads under `alt`: what its pattern or expression uses."""
    if isinstance(alt, HeadAlt):
        used = hypothesis_reads(alt.result.hypothesis)
        return {i for role, i in zip("qkv", m.reads) if role in used}
    names = source_names(alt.source)
    return {i for i, ph in zip(alt.inputs, PLACEHOLDERS) if ph in names}


class Builder:
    """Programs from choices of the characterisers' alternatives."""

    def __init__(
        self,
        graph: Graph,
        heads: HeadCharacteriser,
        mlps: MLPCharacteriser,
        ds: Dataset,
        cfg: ExtractConfig,
        rows: SearchRows,
        provenance: Provenance,
    ) -> None:
        self.graph, self.heads, self.mlps, self.ds, self.cfg = graph, heads, mlps, ds, cfg
        self.rows, self.provenance = rows, provenance

    def alternatives(self, m: Module, full: bool = False) -> list:
        """Module `m`'s alternatives (characterising it now if it was not yet)."""
        return self.heads.alternatives(m, full) if m.kind == "attn" else self.mlps.alternatives(m, full)

    def live(self, choice: dict[str, int]) -> Chosen:
        """Characterise (lazily) and return the modules the readout reaches: out index ->
        (module, chosen alternative)."""
        need = set(self.graph.readout)
        chosen: Chosen = {}
        for m in reversed(self.graph.modules):
            if m.out not in need:
                continue
            alts = self.alternatives(m)
            alt = alts[min(choice.get(m.key, 0), len(alts) - 1)]
            chosen[m.out] = (m, alt)
            need.update(_reads(m, alt))
        return dict(sorted(chosen.items()))

    def build(self, choice: dict[str, int]) -> ProgramIR:
        """The program of `choice`: live nodes named in dataflow order, dead code removed,
        output gains refitted."""
        chosen = self.live(choice)
        affines = [self.output_affine(c, chosen) for c in range(len(self.graph.readout))]
        return self.refit_gains(_Assembly(self, chosen, affines).ir())

    def output_affine(self, channel: int, chosen: Chosen) -> tuple[float, float, float]:
        """(gain, offset, slope): output `channel` is gain · v + offset + slope · pos of the
        variable v it reads. The gain is the readout's learned one (ModelConfig.readout_gain)
        simplified, 1 when an MLP folded it in; offset and slope are the data's trend the model
        adds (ModelConfig.readout_trend). All plain when the readout MLP was refitted to the true
        targets: its expression then is the output."""
        idx = self.graph.readout[channel]
        alt = chosen.get(idx, (None, None))[1]
        if isinstance(alt, MLPAlt) and alt.fitted_to == "targets":
            return 1.0, 0.0, 0.0
        a, b = self.graph.trend(channel)
        if isinstance(alt, MLPAlt) and self.mlps.fold(chosen[idx][0]) != 1.0:
            return 1.0, a, b
        return simple_gain(self.graph.gain(channel)), a, b

    def refit_gains(self, ir: ProgramIR) -> ProgramIR:
        """Least-squares refit of every output's gain (and trend, where the model adds one)
        against the true training targets, with the variable the *program* computes: the model
        learned its gain for its own, possibly imprecise, value (a soft window where the program
        has the prefix sum), so the program's value deserves its own factor, `g = <v, y> / <v,
        v>` (with the trend: y ≈ g·v + a + b·pos), each coefficient then simplified. A few
        scalars per output, fitted on training sequences; verification on the test split judges
        them."""
        if all(o.plain for o in ir.outputs):
            return ir
        env = trace(ir, self.rows.x)
        outs = []
        for o in ir.outputs:
            v = env.get(o.var.index)
            if not o.plain and v is not None:
                o = _refit_output(o, np.asarray(v, dtype=np.float64), self.rows.y[..., o.channel])
            outs.append(o)
        return dataclasses.replace(ir, outputs=tuple(outs))


def _refit_output(o: OutputNode, v: np.ndarray, y: np.ndarray) -> OutputNode:
    """`o` with its gain (and trend, when it has one) least-squares fitted to the targets y (n,
    T) from its variable's values v (n, T); `o` itself when the fit is degenerate."""
    n, T = v.shape
    trend = o.offset != 0.0 or o.slope != 0.0
    cols = [v] + ([np.ones((n, T)), np.broadcast_to(np.arange(T, dtype=np.float64), (n, T))] if trend else [])
    A = np.stack([c.reshape(-1) for c in cols], axis=-1)  # (n·T, 1 or 3)
    yy = y.reshape(-1)
    ok = np.isfinite(A).all(axis=1)
    if not ok.any() or not np.any(A[ok, 0]):
        return o
    coef = np.linalg.lstsq(A[ok], yy[ok], rcond=None)[0]
    if not np.isfinite(coef).all() or coef[0] == 0.0:
        return o
    g = simple_gain(float(coef[0]))
    a, b = 0.0, 0.0
    if trend:  # a term whose largest contribution is within the gains' precision of the targets' RMS goes
        small = GAIN_REL_TOL * float(np.sqrt(np.mean(np.square(yy[ok]))))
        a = simple_gain(float(coef[1])) if abs(coef[1]) > small else 0.0
        b = simple_gain(float(coef[2])) if abs(coef[2]) * max(T - 1, 1) > small else 0.0
    plain = g == 1.0 and a == 0.0 and b == 0.0
    return dataclasses.replace(o, gain=g, offset=a, slope=b, out_name="" if plain else o.out_name)


class _Assembly:
    """One :meth:`Builder.build`: the names taken so far and the variables made, in the order
    names are given (inputs, outputs' MLPs, pos/one, nodes in dataflow order, scaled outputs)."""

    def __init__(self, b: Builder, chosen: Chosen, affines: list[tuple[float, float, float]]) -> None:
        self.b, self.chosen, self.affines = b, chosen, affines
        self.names = b.graph.variable_names
        self.taken = set(RESERVED_NAMES)
        self.var: dict[int, Variable] = {}
        self.made: dict[int, MLPNode] = {}  # MLP nodes by stream index
        self.long_mlps = 0  # MLPs named m0_…, m1_… (expressions too long to spell)

    def ir(self) -> ProgramIR:
        b, ds, readout, taken = self.b, self.b.ds, self.b.graph.readout, self.taken
        n_in = b.graph.n_inputs
        inputs = []
        for c in range(n_in):
            v = Variable(self.names[c], c, "input", unique_name(sanitize(ds.input_names[c], "x"), taken), 0.0)
            self.var[c] = v
            inputs.append(v)
        # Output channels name the MLP that produces them.
        self.out_mlp_names: dict[int, str] = {}
        for c, idx in enumerate(readout):
            if (
                idx in self.chosen
                and self.chosen[idx][0].kind == "mlp"
                and idx not in self.out_mlp_names
                and self.affines[c] == (1.0, 0.0, 0.0)
            ):
                self.out_mlp_names[idx] = unique_name(sanitize(ds.output_names[c], "y"), taken)
        used = set(readout)
        self.consumers: dict[int, int] = {i: 2 for i in readout}  # an output is never folded away
        for m, alt in self.chosen.values():
            reads = _reads(m, alt)
            used.update(reads)
            for i in reads:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        pos_i, one_i = n_in, n_in + 1
        uses_pos, uses_one = pos_i in used, one_i in used
        self.var[pos_i] = Variable("pos", pos_i, "pos", unique_name("pos", taken) if uses_pos else "pos", -1.0)
        self.var[one_i] = Variable("one", one_i, "one", unique_name("one", taken) if uses_one else "one", 0.0)
        nodes: list[AttentionNode | MLPNode] = []
        for idx, (m, alt) in self.chosen.items():
            node = self.head(idx, m, alt) if isinstance(alt, HeadAlt) else self.mlp(idx, m, alt)
            nodes.append(node)
            self.var[idx] = node.out
        outputs = tuple(
            OutputNode(
                c,
                sanitize(ds.output_names[c], "y"),
                self.var[idx],
                self.affines[c][0],
                unique_name(sanitize(ds.output_names[c], "y"), taken) if self.affines[c] != (1.0, 0.0, 0.0) else "",
                self.affines[c][1],
                self.affines[c][2],
            )
            for c, idx in enumerate(readout)
        )
        nodes_t = eliminate_dead_code(nodes, [o.var for o in outputs])
        return ProgramIR(tuple(inputs), nodes_t, outputs, b.provenance, uses_pos, uses_one)

    def ref(self, i: int) -> Variable:
        if i in self.var:
            return self.var[i]
        name = self.names[i]
        return Variable(name, i, "attn" if ".H" in name else "mlp", sanitize(name), 0.0)

    def head(self, idx: int, m: Module, alt: HeadAlt) -> AttentionNode:
        r, cfg = alt.result, self.b.cfg
        q, k, v = (self.ref(i) for i in m.reads)
        h, note = r.hypothesis, ""
        scaled = self.made.get(m.reads[2])
        if sums_a_doubled_pair(h, scaled) and self.consumers.get(m.reads[2], 0) == 1:
            # mean(2·u over {i-1, i} or {BOS, 0}) = u[i-1] + u[i]: read u, sum the window.
            h = with_aggregate(make_hypothesis("window_mean", c=1, include_bos=False), "sum")
            note = (
                f"{pattern_label(r.hypothesis, q.name, k.name)} of {scaled.source} "
                f"(MLP {scaled.key}) = sum of the last 2 {scaled.reads[0].name}"
            )
            v = scaled.reads[0]
        if h.name == "self":
            name = v.name  # an alias: the program reads v directly
        else:
            name = unique_name(sanitize(describe(h, q.name, k.name, v.name), "h"), self.taken)
        out = Variable(m.key, idx, "attn", name, 0.0)
        return AttentionNode(
            m.key,
            out,
            q,
            k,
            v,
            h,
            float(r.agreement),
            float(r.lower_bound),
            int(r.n_queries),
            float(r.pattern_agreement),
            bool(r.accepted),
            cfg.threshold,
            cfg.confidence,
            note,
        )

    def mlp(self, idx: int, m: Module, alt: MLPAlt) -> MLPNode:
        in_vars = tuple(self.ref(i) for i in alt.inputs)
        sources = alt_sources(alt, in_vars)
        src = sources[0]
        if any(src.strip() == v.name for v in in_vars):
            name = src.strip()  # an identity: an alias of its input, no line of its own
        elif idx in self.out_mlp_names:
            name = self.out_mlp_names[idx]
        else:
            base = expression_name(src)
            if base is None:
                self.long_mlps += 1
                in_src = source_names(src)
                args = "_".join(v.name for v in in_vars if v.name in in_src)
                base = sanitize(f"m{self.long_mlps - 1}_{args}", "m")
            name = unique_name(base, self.taken)
        self.made[idx] = mlp_line(m.key, Variable(m.key, idx, "mlp", name, 0.0), in_vars, alt, sources)
        return self.made[idx]


def alt_sources(alt: MLPAlt, in_vars: tuple[Variable, ...]) -> tuple[str, str, str]:
    """`alt`'s Python source, NumPy source and expression with its placeholders named after
    `in_vars`."""
    mapping = {ph: v.name for ph, v in zip(PLACEHOLDERS, in_vars)}
    expr = rename_names(alt.expression, mapping) if is_python(alt.expression) else alt.expression
    return rename_names(alt.source, mapping), rename_names(alt.numpy_source, mapping), expr


def mlp_line(
    key: str, out: Variable, in_vars: tuple[Variable, ...], alt: MLPAlt, sources: tuple[str, str, str]
) -> MLPNode:
    """The MLP node computing `alt` on `in_vars` into `out`; `sources` from :func:`alt_sources`."""
    src, npsrc, expr = sources
    return MLPNode(
        key,
        out,
        in_vars,
        src,
        npsrc,
        expr,
        alt.size,
        alt.mse,
        alt.max_error,
        alt.exact,
        alt.tolerance,
        alt.integer_target,
        alt.fitted_to,  # type: ignore[arg-type]
        alt.n_samples,
        alt.rounded,
        alt.where,
    )


def with_nodes(ir: ProgramIR, nodes: list[AttentionNode | MLPNode], outputs: tuple[OutputNode, ...]) -> ProgramIR:
    """`ir` with these nodes and outputs: the nodes no output reaches go, and whether the program
    reads `pos` / `one` follows from what is left."""
    kept = eliminate_dead_code(nodes, [o.var for o in outputs])
    reads = [v for n in kept for v in n.reads]
    return dataclasses.replace(
        ir,
        nodes=kept,
        outputs=outputs,
        uses_pos=any(v.role == "pos" for v in reads),
        uses_one=any(v.role == "one" for v in reads),
    )


def with_readout(ir: ProgramIR, channel: int, alt: MLPAlt) -> ProgramIR:
    """`ir` with output `channel` computed by a new line, `alt` (fitted to the targets) over the
    stream variables `alt.inputs` — input channels, `pos` or variables `ir` computes — read
    without a gain; what no output reads any more goes."""
    variables = {v.index: v for v in ir.inputs} | {v.index: v for n in ir.nodes for v in (*n.reads, n.out)}
    pos = len(ir.inputs)  # the stream index of `pos` (inputs, then pos, then one)
    old = ir.outputs[channel]
    others = [o.var for c, o in enumerate(ir.outputs) if c != channel]
    in_idx = set(alt.inputs)
    kept = eliminate_dead_code(ir.nodes, others + [v for i, v in variables.items() if i in in_idx])
    taken = {v.name for v in ir.inputs} | {n.out.name for n in kept} | {o.result for o in ir.outputs if o is not old}
    if pos not in variables:
        variables[pos] = Variable("pos", pos, "pos", unique_name("pos", taken), -1.0)
    taken |= {variables[i].name for i in alt.inputs}
    in_vars = tuple(variables[i] for i in alt.inputs)
    sources = alt_sources(alt, in_vars)
    index = 1 + max([pos + 1, *(n.out.index for n in ir.nodes)])  # a stream index no module writes
    name = unique_name(old.name, taken)
    key = readout_key(old.name)
    line = mlp_line(key, Variable(key, index, "mlp", name, 0.0), in_vars, alt, sources)
    outputs = tuple(OutputNode(c, o.name, line.out) if c == channel else o for c, o in enumerate(ir.outputs))
    return with_nodes(ir, [*ir.nodes, line], outputs)
