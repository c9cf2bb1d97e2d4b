"""Evaluating a :class:`~.graph.ProgramIR` on data, variable by variable (:func:`trace`).

The refits and the search read the values a candidate program computes through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .codegen import head_call, numpy_mlp_line
from .graph import AttentionNode, ProgramIR
from .hypotheses import helper_sources

__all__ = ["trace"]


def trace(ir: ProgramIR, X: np.ndarray) -> dict[int, np.ndarray]:
    """Evaluate the IR's NumPy forms on X (n, T, C_in): stream index -> (n, T) array, for the
    inputs, pos, one and every node (the same calls codegen renders into run_batch)."""
    X = np.asarray(X, dtype=np.float64)
    env: dict[str, Any] = {"np": np, "X": X}
    for src in helper_sources((n.hypothesis for n in ir.heads if not n.is_alias), numpy=True):
        exec(src, env)  # noqa: S102 - the package's own helper sources
    out: dict[int, np.ndarray] = {}
    for c, v in enumerate(ir.inputs):
        env[v.name] = X[:, :, c]
        out[v.index] = env[v.name]
    n, T = X.shape[:2]
    pos = np.tile(np.arange(T, dtype=np.float64), (n, 1))
    one = np.ones((n, T))
    npos = ir.inputs[-1].index + 1 if ir.inputs else 0
    out[npos], out[npos + 1] = pos, one
    for node in ir.nodes:
        for v in node.reads:
            if v.role == "pos":
                env[v.name] = pos
            elif v.role == "one":
                env[v.name] = one
    with np.errstate(all="ignore"):
        for node in ir.nodes:
            if node.is_alias:
                val = env[node.out.name]  # the variable it aliases is already computed
            elif isinstance(node, AttentionNode):
                val = eval(head_call(node, numpy=True), env)
            else:
                val = eval(numpy_mlp_line(node), env)
            env[node.out.name] = val
            out[node.out.index] = np.asarray(val, dtype=np.float64)
    return out
