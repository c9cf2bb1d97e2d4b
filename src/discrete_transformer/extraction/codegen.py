"""Program synthesis: render a :class:`~.graph.ProgramIR` as one self-contained Python module.

The module (DESIGN §4.4) has

* a provenance docstring: data source, seeds, the configuration (its non-default fields and a
  hash of the whole), the model's test score and the verification figures;
* the routing helpers its heads use — standard-library versions only;
* ``program(*channels)``: one list per input channel in, one list (one output channel) or a tuple
  of lists out; straight-line code in dataflow order, one line per surviving module, each with a
  comment naming the module and the evidence (agreement and its bound, or the regression error);
* ``run_batch(X)``: the same computation vectorised with NumPy, ``(n, T, C_in) -> (n, T, C_out)``,
  built from the NumPy helpers and the expressions' NumPy forms. NumPy is imported inside the
  functions that need it, so importing the module needs the standard library only.

The module never imports anything from ``discrete_transformer``. Text is rendered only from the
IR; identifiers in it were sanitised when the IR was built, and every string that may come from
user data (source paths, channel names) is escaped before it reaches the docstring.
"""

from __future__ import annotations

import hashlib
import json
import math
import textwrap
from collections.abc import Sequence
from typing import Any

from ..config import ModelConfig, TrainConfig, to_dict
from .graph import READOUT_LINE, AttentionNode, MLPNode, OutputNode, ProgramIR, rename_names
from .hypotheses import helper_sources, numpy_call, python_call, python_helper
from .patterns import pattern_label

__all__ = ["config_hash", "escape_text", "evidence", "non_default", "pattern_label", "render", "used_helpers"]

CONFIG_HASH_DIGITS = 12  # of the configuration's sha256, in the provenance header
COMMENT_COLUMN_MAX = 60  # evidence comments are aligned at most this far right
MLP_OUTPUT = "the MLP's output"  # what an MLP line's expression is compared with
LOOP_NAMES = ("a", "b", "c", "d", "e", "p", "q", "r", "s", "t", "u", "w", "z")


# ============================================================================ escaping


def escape_text(s: object) -> str:
    """A printable-ASCII, repr-like rendering of arbitrary text, safe inside a triple-quoted
    docstring or a comment: quotes, backslashes, control and non-ASCII characters become
    escapes, so user data can neither end the docstring nor start a new line."""
    out = []
    for ch in str(s):
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch in "'\"":
            out.append(f"\\x{o:02x}")
        elif 32 <= o < 127:
            out.append(ch)
        elif o < 256:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return "'" + "".join(out) + "'"


def _doc_safe(line: str) -> str:
    """One line of free text for the raw docstring: printable ASCII (other characters as
    escapes), double quotes as single quotes. Text that went through `escape_text` is unchanged."""
    out = []
    for ch in line:
        o = ord(ch)
        if ch == '"':
            out.append("'")
        elif 32 <= o < 127:
            out.append(ch)
        else:
            out.append(escape_text(ch)[1:-1])
    return "".join(out)


# ============================================================================ configuration


def _jsonable(v: object) -> object:
    """`v` as JSON reads it back (tuples become lists), so stored and default values compare."""
    return json.loads(json.dumps(v, default=str))


def non_default(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The fields of `config` that differ from `defaults` (or that `defaults` does not have)."""
    return {k: v for k, v in config.items() if k not in defaults or _jsonable(v) != _jsonable(defaults[k])}


def config_hash(model_config: dict[str, Any], train_config: dict[str, Any]) -> str:
    """sha256 (first 12 hex digits) of ``{"model_config": ..., "train_config": ...}`` as sorted
    JSON, as the run directory's model.json holds them (the best restart's configuration, which
    a portfolio variant may have changed from config.json's): programs of different
    configurations get different hashes."""
    doc = json.dumps({"model_config": model_config, "train_config": train_config}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:CONFIG_HASH_DIGITS]


# ============================================================================ evidence


def _pct(x: float, digits: int) -> str:
    """A percentage that never rounds up to a figure the data does not reach."""
    scale = 10**digits
    v = math.floor(100.0 * x * scale + 1e-9) / scale
    return f"{v:.{digits}f}%"


def _num(x: float) -> str:
    return f"{x:.1g}" if x != 0 else "0"


def evidence(node: AttentionNode | MLPNode) -> str:
    """The comment text for one node: what was compared with what, and why the difference is
    harmless (equal after rounding to integers) or what tolerance it is within."""
    if isinstance(node, AttentionNode):
        label = pattern_label(node.hypothesis, node.q.name, node.k.name)
        figures = f"lower bound {_pct(node.lower_bound, 2)}, n={node.n_queries}"
        if node.note:  # the program computes the tested pattern in another form
            label = node.note
        if node.accepted:
            return f"attention {node.key}: {label}, agreement {_pct(node.agreement, 1)} ({figures})"
        return (
            f"attention {node.key}: {label}, agreement {_pct(node.agreement, 2)} -- NOT accepted "
            f"({figures} < {_pct(node.threshold, 1)})"
        )
    if node.fitted_to == "core":
        return (
            f"MLP {node.key} is a monotone function of {node.source} (n={node.n_samples} samples); "
            f"what reads it is refitted to the task targets"
        )
    if node.fitted_to == "targets" and node.key.startswith(READOUT_LINE + " "):
        return (
            f"{node.key} fitted to the task targets at each position: {node.source}, {_agreement(node, 'the targets')}"
        )
    if node.fitted_to == "targets":
        return f"MLP {node.key}, refitted to the task targets: {node.source}, {_agreement(node, 'the targets')}"
    where = f" at the keys {node.where} read" if node.where else ""
    return f"MLP {node.key}: {node.source}, {_agreement(node, MLP_OUTPUT + where)}"


def _agreement(node: MLPNode, other: str) -> str:
    """How the expression compares with `other` (the MLP's raw output, or the task targets)."""
    err, n = _num(node.max_error), f"n={node.n_samples} samples"
    if node.exact and node.max_error == 0.0:
        return f"equal to {other} on all {n}"
    if node.integer_target:
        if node.exact:  # the verification rule for integers: equal after rounding
            return f"within {err} of {other}, exact after rounding to integers on all {n}"
        return f"up to {err} from {other}, NOT exact after rounding to integers ({n})"
    if node.exact:
        why = ", set by the model's own error" if node.fitted_to == "mlp" else ""
        return f"within {err} of {other} (tolerance {_num(node.tolerance)}{why}) on all {n}"
    return f"up to {err} from {other}, NOT within tolerance {_num(node.tolerance)} ({n})"


# ============================================================================ lines


def _name_order(src: str) -> list[str]:
    """Free names of an expression in order of first appearance."""
    import io
    import tokenize

    out: list[str] = []
    prev = None
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.NAME and tok.string not in out and not (prev is not None and prev.string == "."):
            out.append(tok.string)
        if tok.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            prev = tok
    return out


def loop_names(k: int, avoid: set[str]) -> list[str]:
    """`k` short comprehension variables that shadow no program variable."""
    pool = [n for n in LOOP_NAMES if n not in avoid]
    i = 0
    while len(pool) < k:
        if f"v{i}" not in avoid:
            pool.append(f"v{i}")
        i += 1
    return pool[:k]


def python_mlp_line(node: MLPNode, first_input: str, avoid: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """The list comprehension of an MLP line; `avoid`: the program's variable names."""
    reads = node.reads
    src = node.source
    if node.rounded:  # fitted to integers but computed with float noise: keep them integers
        src = f"round({src})"
    if not reads:
        return f"[{src} for _ in {first_input}]"
    if src.strip() == reads[0].name and len(reads) == 1:
        return f"list({reads[0].name})"
    order = {name: i for i, name in enumerate(_name_order(src))}
    reads = tuple(sorted(reads, key=lambda v: order.get(v.name, len(order))))  # as the expression reads them
    if any(v.name in LOOP_NAMES for v in reads):  # short names already: `for a, b in zip(a, b)`
        loops = [v.name for v in reads]
    else:
        loops = loop_names(len(reads), set(avoid) | {v.name for v in reads})
    body = rename_names(src, {v.name: lv for v, lv in zip(reads, loops)})
    if len(reads) == 1:
        return f"[{body} for {loops[0]} in {reads[0].name}]"
    return f"[{body} for {', '.join(loops)} in zip({', '.join(v.name for v in reads)})]"


def numpy_mlp_line(node: MLPNode) -> str:
    if not node.reads:
        value = f"round({node.source})" if node.rounded else node.source
        return f"np.full(X.shape[:2], {value}, dtype=float)"
    if node.source.strip() == node.reads[0].name and len(node.reads) == 1:
        return f"np.array({node.reads[0].name}, dtype=float)"
    if node.rounded:
        return f"np.round({node.numpy_source}).astype(float)"
    return f"np.asarray({node.numpy_source}, dtype=float)"


def head_call(node: AttentionNode, numpy: bool) -> str:
    call = numpy_call if numpy else python_call
    return call(node.hypothesis, node.q.name, node.k.name, node.v.name, bos=node.v.bos, k_bos=node.k.bos)


def _align(lines: Sequence[tuple[str, str]], indent: str = "    ") -> list[str]:
    """(code, comment) pairs -> indented lines with comments aligned in one column."""
    width = min(max((len(c) for c, m in lines if m), default=0), COMMENT_COLUMN_MAX)
    out = []
    for code, comment in lines:
        if comment:
            pad = " " * max(width - len(code), 0)
            out.append(f"{indent}{code}{pad}  # {comment}")
        else:
            out.append(f"{indent}{code}")
    return out


# ============================================================================ module


def _docstring(ir: ProgramIR, verification: Sequence[str] | None) -> str:
    pv = ir.provenance
    wrap = lambda text, head: textwrap.fill(  # noqa: E731
        text,
        width=96,
        initial_indent=head,
        subsequent_indent=" " * (len(head) or 4),
        break_long_words=True,
        break_on_hyphens=False,
    )

    def cfg(d: dict, defaults: dict) -> str:
        changed = non_default(d, defaults)
        if not changed:
            return "defaults"
        return "defaults except " + ", ".join(
            f"{k}={escape_text(v) if isinstance(v, str) else repr(v)}" for k, v in sorted(changed.items())
        )

    ins = ", ".join(f"{v.name} <- {escape_text(raw)}" for v, raw in zip(ir.inputs, pv.input_names))
    outs = ", ".join(f"{o.result} <- {escape_text(pv.output_names[o.channel])}" for o in ir.outputs)
    lines = [
        f"Program extracted from a Discrete Transformer trained on {escape_text(pv.source)}.",
        "",
        "Generated by discrete_transformer"
        + (f" {escape_text(pv.version)[1:-1]}" if pv.version else "")
        + ": attention heads characterised by hypothesis",
        "testing, MLPs by symbolic regression; each line's comment names the module it came from and",
        "the evidence. Standard library only; run_batch (NumPy) is an optional fast path.",
        "",
        wrap(
            f"data: {escape_text(pv.source)} ({escape_text(pv.dataset)}, {pv.kind}, T={pv.T}, "
            f"data seed {pv.data_seed})",
            "",
        ),
        wrap(f"inputs: {ins}", ""),
        wrap(f"outputs: {outs}", ""),
        f"training seed: {pv.seed}",
    ]
    if pv.model_config:
        lines.append(wrap(f"model: {cfg(pv.model_config, to_dict(ModelConfig()))}", ""))
    if pv.train_config:
        lines.append(wrap(f"training: {cfg(pv.train_config, to_dict(TrainConfig()))}", ""))
    if pv.model_config or pv.train_config:
        lines.append(
            wrap(
                "full configuration: the run directory's model.json "
                f"(sha256 {config_hash(pv.model_config, pv.train_config)} of its configs)",
                "",
            )
        )
    if pv.model_test:
        lines.append(wrap("model test: " + ", ".join(f"{k}={v!r}" for k, v in sorted(pv.model_test.items())), ""))
    if verification:
        lines.append("")
        lines.extend(wrap(line, "") for line in verification)
    n_in = len(ir.inputs)
    sig = ", ".join(v.name for v in ir.inputs)
    ret = "a list" if len(ir.outputs) == 1 else f"a tuple of {len(ir.outputs)} lists"
    lines += [
        "",
        f"program({sig}) takes one list per input channel and returns {ret};",
        f"run_batch(X) maps a NumPy array (n, T, {n_in}) to (n, T, {len(ir.outputs)}).",
    ]
    # Free text (e.g. an exception message among the verification lines) is made safe too.
    body = "\n".join(_doc_safe(line) for line in "\n".join(lines).split("\n"))
    assert '"' not in body
    # A raw docstring: the escapes user text was given stay visible in __doc__ as written.
    return 'r"""' + body + '\n"""'


def render(ir: ProgramIR, verification: Sequence[str] | None = None) -> str:
    """The module source for `ir`. `verification` lines (plain text) go into the docstring.
    Deterministic: the same IR and lines give byte-identical text."""
    live = [n for n in ir.nodes if not n.is_alias]
    heads = [n for n in live if isinstance(n, AttentionNode)]
    mlps = [n for n in live if isinstance(n, MLPNode)]
    uses_math = any("math." in n.source for n in mlps)
    input_names = {v.name for v in ir.inputs}
    first = ir.inputs[0].name
    names = input_names | {n.out.name for n in ir.nodes} | {v.name for n in ir.nodes for v in n.reads}

    parts: list[str] = [_docstring(ir, verification), ""]
    if uses_math:
        parts += ["import math", ""]
    py_helpers = helper_sources(n.hypothesis for n in heads)
    np_helpers = helper_sources((n.hypothesis for n in heads), numpy=True)
    parts.append("")
    for src in py_helpers:
        parts += [src.rstrip("\n"), "", ""]

    # ---- program
    code: list[tuple[str, str]] = []
    pos_name = one_name = None
    for n in ir.nodes:
        for v in (*n.reads, n.out):
            if v.role == "pos":
                pos_name = v.name
            elif v.role == "one":
                one_name = v.name
    for o in ir.outputs:
        if o.var.role == "pos":
            pos_name = o.var.name
        elif o.var.role == "one":
            one_name = o.var.name
    if pos_name:
        code.append((f"{pos_name} = list(range(len({first})))", "the position index 0, 1, ..., n-1"))
    if one_name:
        code.append((f"{one_name} = [1] * len({first})", "1 at every position"))
    for n in live:
        if isinstance(n, AttentionNode):
            code.append((f"{n.out.name} = {head_call(n, numpy=False)}", evidence(n)))
        else:
            code.append((f"{n.out.name} = {python_mlp_line(n, first, names)}", evidence(n)))

    for o in ir.outputs:
        if not o.plain:
            k, i = loop_names(2, names | {x.result for x in ir.outputs})
            term = affine_text(o, k, i)
            loop = f"for {i}, {k} in enumerate({o.var.name})" if o.slope else f"for {k} in {o.var.name}"
            what = "gain" if not (o.offset or o.slope) else "gain and the trend along the sequence"
            code.append(
                (f"{o.result} = [{term} {loop}]", f"readout: {what} (least squares against the training targets)")
            )

    def ret(name: str) -> str:
        return f"list({name})" if name in input_names else name

    outs = [ret(o.result) for o in ir.outputs]
    ret_line = f"return {outs[0]}" if len(outs) == 1 else f"return ({', '.join(outs)})"
    sig = ", ".join(v.name for v in ir.inputs)
    parts.append(f"def program({sig}):")
    parts.append('    """The extracted algorithm on one sequence (one list per input channel)."""')
    parts += _align(code)
    parts.append(f"    {ret_line}")
    parts += ["", ""]

    # ---- run_batch
    parts.append("# NumPy fast path: the same computation on a batch, arrays (n, T) along axis 1.")
    parts.append("")
    parts.append("")
    for src in np_helpers:
        parts += [src.rstrip("\n"), "", ""]
    bcode: list[tuple[str, str]] = [
        ("import numpy as np", ""),
        ("X = np.asarray(X, dtype=float)", ""),
    ]
    for c, v in enumerate(ir.inputs):
        bcode.append((f"{v.name} = X[:, :, {c}]", ""))
    if pos_name:
        bcode.append((f"{pos_name} = np.tile(np.arange(X.shape[1], dtype=float), (X.shape[0], 1))", ""))
    if one_name:
        bcode.append((f"{one_name} = np.ones(X.shape[:2])", ""))
    for n in live:
        if isinstance(n, AttentionNode):
            bcode.append((f"{n.out.name} = {head_call(n, numpy=True)}", n.key))
        else:
            bcode.append((f"{n.out.name} = {numpy_mlp_line(n)}", n.key))
    for o in ir.outputs:
        if not o.plain:
            bcode.append((f"{o.result} = {affine_text(o, o.var.name, 'np.arange(X.shape[1])')}", "readout"))
    stack = ", ".join(o.result for o in ir.outputs)
    parts.append("def run_batch(X):")
    parts.append(f'    """program() on a batch: X (n, T, {len(ir.inputs)}) -> (n, T, {len(ir.outputs)})."""')
    parts += _align(bcode)
    parts.append(f"    return np.stack([{stack}], axis=-1)")
    return "\n".join(parts).rstrip("\n") + "\n"


def affine_text(o: OutputNode, value: str, position: str) -> str:
    """Output `o` as an expression of its variable's value and the position:
    gain · value + offset + slope · position, each term only where it is not trivial."""
    text = value if o.gain == 1.0 else f"{o.gain!r} * {value}"
    if o.offset:
        text += f" {'-' if o.offset < 0 else '+'} {abs(o.offset)!r}"
    if o.slope:
        slope = abs(o.slope)
        text += f" {'-' if o.slope < 0 else '+'} " + (position if slope == 1.0 else f"{slope!r} * {position}")
    return text


def used_helpers(ir: ProgramIR) -> list[str]:
    """Names of the standard-library helpers the rendered program defines."""
    seen: dict[str, None] = {}
    for n in ir.nodes:
        if isinstance(n, AttentionNode) and not n.is_alias:
            seen.setdefault(python_helper(n.hypothesis)[0], None)
    return list(seen)
