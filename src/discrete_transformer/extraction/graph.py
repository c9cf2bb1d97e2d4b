"""The extraction IR: what a trained Discrete Transformer computes, as typed, frozen data.

Two levels (DESIGN §4.1):

* :class:`Graph` — the *structure* read from the selectors' argmax: every module (attention head
  or MLP), the stream variables it reads and the one it writes, and the readout. Dead code is
  what no path from the readout reaches (:meth:`Graph.live`).
* :class:`ProgramIR` — the *program*: input variables, one node per surviving module in
  dataflow order (an :class:`AttentionNode` with the routing pattern that passed hypothesis
  testing, or an :class:`MLPNode` with the expression symbolic regression found), and the
  outputs. A node reads only what its pattern or expression actually uses (a head that is a
  `shift` does not read its query and key), so a second dead-code pass
  (:func:`eliminate_dead_code`) works on these finer dependencies.

Program text is rendered from a :class:`ProgramIR` by :mod:`.codegen`; nothing downstream builds
code from ad-hoc strings. Every identifier in a ProgramIR went through :func:`sanitize`.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .patterns import HELPER_NAMES, Hypothesis, hypothesis_reads

__all__ = [
    "AttentionNode",
    "Graph",
    "MLPNode",
    "Module",
    "Node",
    "OutputNode",
    "ProgramIR",
    "Provenance",
    "READOUT_LINE",
    "RESERVED_NAMES",
    "Variable",
    "eliminate_dead_code",
    "hypothesis_reads",
    "readout_key",
    "read_graph",
    "rename_names",
    "sanitize",
    "source_names",
    "unique_name",
]

Role = Literal["input", "pos", "one", "attn", "mlp"]

# Names a generated module uses itself: helpers (every routing pattern's, from the pattern
# registry), its two entry points, modules and builtins its code calls. No program variable may
# take them. (Comprehension variables of MLP lines are chosen by codegen among names the program
# does not use.)
RESERVED_NAMES = HELPER_NAMES | frozenset(
    {
        "program",
        "run_batch",
        "X",
        "np",
        "math",
        "numpy",
        "abs",
        "min",
        "max",
        "round",
        "len",
        "range",
        "list",
        "zip",
        "sum",
        "float",
        "int",
        "tuple",
        "enumerate",
        "print",
        "map",
        "bool",
        "str",
        "object",
        "type",
        "id",
        "input",
    }
)


# ============================================================================ names


# The key of a line that computes an output from what the model reads at the same position,
# fitted to the targets by the repair (build.with_readout): "readout y". Its regression is kept
# under "readout y (...)", so the program's equations table finds it as any MLP's.
READOUT_LINE = "readout"


def readout_key(output_name: str) -> str:
    """The key of the repair's line computing output `output_name` (:data:`READOUT_LINE`)."""
    return f"{READOUT_LINE} {output_name}"


def sanitize(raw: Any, fallback: str = "v") -> str:
    """An ASCII identifier `[A-Za-z_][A-Za-z0-9_]*` derived from arbitrary (possibly hostile)
    text: every other character becomes `_`, runs of `_` collapse, leading/trailing `_` go, a
    leading digit gets `fallback` + `_` in front; keywords and reserved names get a trailing
    `_`. Never returns an empty string."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", str(raw))
    text = re.sub(r"_+", "_", text).strip("_")
    if not text:
        text = fallback
    if text[0].isdigit():
        text = f"{fallback}_{text}"
    if len(text) > 40:
        text = text[:40].rstrip("_")
    if keyword.iskeyword(text) or keyword.issoftkeyword(text) or text in RESERVED_NAMES:
        text += "_"
    return text


def unique_name(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`, … — the first not in `taken` (which is updated)."""
    name, k = base, 2
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name


def source_names(source: str) -> set[str]:
    """The free identifiers of a Python expression (attribute names after `.` excluded)."""
    out: set[str] = set()
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        attribute = prev is not None and prev.type == tokenize.OP and prev.string == "."
        if tok.type == tokenize.NAME and not attribute and not keyword.iskeyword(tok.string):
            out.add(tok.string)
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            prev = tok
    return out


def rename_names(source: str, mapping: dict[str, str]) -> str:
    """Rename the free identifiers of a one-line Python expression token by token (attributes
    such as `math.floor` are left alone); spacing is kept."""
    toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    out = []
    prev = None
    for tok in toks:
        s = tok.string
        if (
            tok.type == tokenize.NAME
            and s in mapping
            and not (prev is not None and prev.type == tokenize.OP and prev.string == ".")
        ):
            tok = tok._replace(string=mapping[s])
        out.append(tok)
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            prev = tok
    # Re-assemble a one-line expression from the original column offsets (widths change).
    text, col = [], 0
    for orig, new in zip(toks, out):
        if orig.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        start = orig.start[1]
        text.append(" " * (start - col))
        text.append(new.string)
        col = orig.end[1]
    return "".join(text)


# ============================================================================ structure


@dataclass(frozen=True)
class Module:
    """One module of the trained model: `attn` (reads q, k, v) or `mlp` (reads `arity`
    variables), writing stream variable `out`. Indices are positions in the stream."""

    key: str  # "L0.H1", "L1.M0"
    kind: Literal["attn", "mlp"]
    layer: int
    slot: int  # head or MLP number within the layer
    out: int
    reads: tuple[int, ...]
    aggregate: Literal["mean", "sum"] = "mean"  # heads only: how the selected values combine
    # heads only: the fixed routing pattern chosen instead of learned scores (ModelConfig.
    # attention_patterns), or None; q and k then read `pos`, what a fixed pattern depends on
    fixed: str | None = None


@dataclass(frozen=True)
class Graph:
    """Selector argmaxes of one model (population member)."""

    variable_names: tuple[str, ...]
    n_inputs: int
    modules: tuple[Module, ...]  # in stream order
    readout: tuple[int, ...]  # stream index per output channel
    # The readout's factor per output channel (ModelConfig.readout_gain; 1.0 without it).
    gains: tuple[float, ...] = ()
    # The data's trend (a, b) per output channel that the model adds to its readout, a + b·pos
    # (ModelConfig.readout_trend); () without it.
    trends: tuple[tuple[float, float], ...] = ()

    def gain(self, channel: int) -> float:
        return self.gains[channel] if self.gains else 1.0

    def trend(self, channel: int) -> tuple[float, float]:
        return self.trends[channel] if self.trends else (0.0, 0.0)

    @property
    def n_base(self) -> int:
        return self.n_inputs + 2

    def module_at(self, index: int) -> Module | None:
        """The module writing stream variable `index` (None for a base variable)."""
        for m in self.modules:
            if m.out == index:
                return m
        return None

    def live(self) -> tuple[Module, ...]:
        """Modules some path from the readout reaches, through every selected input."""
        need = set(self.readout)
        keep = []
        for m in reversed(self.modules):
            if m.out in need:
                keep.append(m)
                need.update(m.reads)
        return tuple(reversed(keep))

    def describe(self) -> str:
        names = self.variable_names
        lines = []
        for m in self.modules:
            args = ", ".join(names[i] for i in m.reads)
            agg = ", sum" if m.aggregate == "sum" else ""
            if m.kind == "attn" and m.fixed:
                what = f"attend({m.fixed}, v = {names[m.reads[2]]}{agg})"
            else:
                what = f"attend(q, k, v = {args}{agg})" if m.kind == "attn" else f"mlp({args})"
            lines.append(f"{m.key} = {what}")
        lines.append("readout -> " + ", ".join(self.readout_text(c, names[i]) for c, i in enumerate(self.readout)))
        return "\n".join(lines)

    def readout_text(self, channel: int, name: str) -> str:
        """Output `channel` over the variable `name` it reads: gain and trend, where present."""
        text = name if self.gain(channel) == 1.0 else f"{self.gain(channel):.6g} * {name}"
        a, b = self.trend(channel)
        if a or b:
            text += f" + {a:.6g} + {b:.6g} * pos"
        return text


def read_graph(model: Any, member: int = 0) -> Graph:
    """Read every selector's argmax of population member `member` into a :class:`Graph`."""
    names = tuple(model.variable_names)
    ch = model.choices()
    n_in = int(model.data.n_in)
    modules: list[Module] = []
    idx = {n: i for i, n in enumerate(names)}
    for li in range(len(model.layers)):
        attn = ch[f"L{li}.attn"][member].tolist()  # (H, 3)
        agg = ch[f"L{li}.agg"][member].tolist() if f"L{li}.agg" in ch else [0] * len(attn)  # (H,)
        pat = ch[f"L{li}.pat"][member].tolist() if f"L{li}.pat" in ch else [0] * len(attn)  # (H,)
        off = ch[f"L{li}.off"][member].tolist() if f"L{li}.off" in ch else [0] * len(attn)  # (H,)
        for h, (q, k, v) in enumerate(attn):
            key = f"L{li}.H{h}"
            how = "sum" if agg[h] == 1 else "mean"
            fixed = model.layers[li]["attn"].pattern_name(pat[h], off[h])
            if fixed:
                q = k = idx["pos"]
            modules.append(Module(key, "attn", li, h, idx[key], (int(q), int(k), int(v)), how, fixed))
        mlp = ch[f"L{li}.mlp"][member].tolist()  # (M, arity)
        for m, reads in enumerate(mlp):
            key = f"L{li}.M{m}"
            modules.append(Module(key, "mlp", li, m, idx[key], tuple(int(r) for r in reads)))
    readout = tuple(int(r) for r in ch["readout"][member].tolist())
    gains: tuple[float, ...] = ()
    if getattr(model, "readout_gamma", None) is not None:
        g = model.readout_gains().detach()[member]  # (C_out, V)
        gains = tuple(float(g[c, r]) for c, r in enumerate(readout))
    trends: tuple[tuple[float, float], ...] = ()
    if getattr(model, "trend", None) is not None:
        t = model.trend.detach()  # (2, C_out): a, b
        trends = tuple((float(t[0, c]), float(t[1, c])) for c in range(t.shape[1]))
    return Graph(names, n_in, tuple(sorted(modules, key=lambda m: m.out)), readout, gains, trends)


# ============================================================================ program IR


@dataclass(frozen=True)
class Variable:
    """A stream variable as the program sees it."""

    key: str  # name in the model: "x", "pos", "one", "L0.H1", "L1.M0"
    index: int  # position in the model's stream
    role: Role
    name: str  # identifier in the program (sanitised, unique)
    bos: float = 0.0  # value at the BOS slot: 0, except -1 for `pos`


@dataclass(frozen=True)
class AttentionNode:
    """A head, characterised by the routing pattern that passed hypothesis testing."""

    key: str
    out: Variable
    q: Variable
    k: Variable
    v: Variable
    hypothesis: Hypothesis
    agreement: float  # fraction of tested query positions whose routed value matches the model
    lower_bound: float  # one-sided Clopper-Pearson lower bound on it
    n_queries: int
    pattern_agreement: float
    accepted: bool  # lower_bound >= threshold
    threshold: float = 0.995
    confidence: float = 0.95
    # How the program's pattern differs from the tested one (e.g. a window mean of 2·x written as
    # a window sum of x); "" when it is the tested pattern itself.
    note: str = ""

    @property
    def kind(self) -> str:
        return "attn"

    @property
    def reads(self) -> tuple[Variable, ...]:
        """The variables the pattern actually uses, in (q, k, v) order, without repeats."""
        used = hypothesis_reads(self.hypothesis)
        out: list[Variable] = []
        for role, var in (("q", self.q), ("k", self.k), ("v", self.v)):
            if role in used and all(var.index != o.index for o in out):
                out.append(var)
        return tuple(out)

    @property
    def is_alias(self) -> bool:
        """A `self` head named like its value variable: the program uses that variable
        directly (a `self` head with a name of its own is rendered as `identity(v)`)."""
        return self.hypothesis.name == "self" and self.out.name == self.v.name


@dataclass(frozen=True)
class MLPNode:
    """An MLP, characterised by a closed-form expression from symbolic regression."""

    key: str
    out: Variable
    inputs: tuple[Variable, ...]  # the distinct selected input variables, in selector order
    source: str  # Python expression over the inputs' program names (builtins + math)
    numpy_source: str  # the same over NumPy arrays (`np`)
    expression: str  # SymPy's (lightly simplified) printing, for people
    size: int
    mse: float
    max_error: float
    exact: bool  # within `tolerance` (or equal after rounding) on every fitted sample
    tolerance: float
    integer_target: bool
    # the MLP's own outputs, the task's true targets, or "core": the expression the MLP's output
    # is a monotone function of (the MLPs reading it are refitted to the targets)
    fitted_to: Literal["mlp", "targets", "core"]
    n_samples: int
    rounded: bool = False  # integer-valued but not computed exactly: the program rounds it
    where: str = ""  # fitted only at the keys these heads read ("": at every position)

    @property
    def kind(self) -> str:
        return "mlp"

    @property
    def reads(self) -> tuple[Variable, ...]:
        used = source_names(self.source)
        return tuple(v for v in self.inputs if v.name in used)

    @property
    def is_alias(self) -> bool:
        """An identity expression (`prev2_x`): the program uses that variable directly."""
        return self.source.strip() == self.out.name and any(v.name == self.out.name for v in self.inputs)


Node = AttentionNode | MLPNode


@dataclass(frozen=True)
class OutputNode:
    channel: int
    name: str  # sanitised output channel name
    var: Variable
    # The readout's learned gain (ModelConfig.readout_gain), simplified: the output is
    # gain · var + offset + slope · pos, held in the program variable `out_name`; offset and slope
    # are the data's trend (ModelConfig.readout_trend) refitted. Plain (out_name == "") otherwise.
    gain: float = 1.0
    out_name: str = ""
    offset: float = 0.0
    slope: float = 0.0

    @property
    def plain(self) -> bool:
        """The output is its variable itself (no gain, no trend)."""
        return self.gain == 1.0 and self.offset == 0.0 and self.slope == 0.0

    @property
    def result(self) -> str:
        """The program variable that holds this output."""
        return self.out_name or self.var.name


@dataclass(frozen=True)
class Provenance:
    """Where a program came from. Strings here may come from user data: codegen escapes them."""

    source: str
    dataset: str
    kind: str
    seed: int
    data_seed: int
    T: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    model_config: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    version: str = ""
    model_test: dict = field(default_factory=dict)  # the model's own test metrics


@dataclass(frozen=True)
class ProgramIR:
    inputs: tuple[Variable, ...]  # one per input channel: the program's parameters
    nodes: tuple[Node, ...]  # surviving modules, dataflow order
    outputs: tuple[OutputNode, ...]
    provenance: Provenance
    uses_pos: bool = False
    uses_one: bool = False

    @property
    def heads(self) -> tuple[AttentionNode, ...]:
        return tuple(n for n in self.nodes if isinstance(n, AttentionNode))

    @property
    def mlps(self) -> tuple[MLPNode, ...]:
        return tuple(n for n in self.nodes if isinstance(n, MLPNode))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (for verification.json)."""
        nodes = []
        for n in self.nodes:
            if isinstance(n, AttentionNode):
                used = hypothesis_reads(n.hypothesis)
                nodes.append(
                    {
                        "module": n.key,
                        "kind": "attention",
                        "name": n.out.name,
                        "q": n.q.name if "q" in used else None,
                        "k": n.k.name if "k" in used else None,
                        "v": n.v.name,
                        "pattern": n.hypothesis.name,
                        "params": n.hypothesis.params,
                        "description": n.hypothesis.description,
                        "agreement": n.agreement,
                        "lower_bound": n.lower_bound,
                        "n_queries": n.n_queries,
                        "pattern_agreement": n.pattern_agreement,
                        "accepted": n.accepted,
                    }
                )
            else:
                nodes.append(
                    {
                        "module": n.key,
                        "kind": "mlp",
                        "name": n.out.name,
                        "inputs": [v.name for v in n.reads],
                        "expression": n.source,
                        "size": n.size,
                        "mse": n.mse,
                        "max_error": n.max_error,
                        "exact": n.exact,
                        "tolerance": n.tolerance,
                        "integer_target": n.integer_target,
                        "fitted_to": n.fitted_to,
                        "n_samples": n.n_samples,
                        "rounded": n.rounded,
                        "where": n.where,
                    }
                )
        return {
            "inputs": [v.name for v in self.inputs],
            "nodes": nodes,
            "outputs": [
                {
                    "channel": o.channel,
                    "name": o.name,
                    "variable": o.var.name,
                    "module": o.var.key,
                    "gain": o.gain,
                    "offset": o.offset,
                    "slope": o.slope,
                }
                for o in self.outputs
            ],
        }


def eliminate_dead_code(nodes: Iterable[Node], outputs: Iterable[Variable]) -> tuple[Node, ...]:
    """Keep the nodes the outputs reach through what each node actually reads (dataflow order
    preserved)."""
    nodes = list(nodes)
    need = {v.index for v in outputs}
    keep = []
    for n in reversed(nodes):
        if n.out.index in need:
            keep.append(n)
            need.update(v.index for v in n.reads)
    return tuple(reversed(keep))
