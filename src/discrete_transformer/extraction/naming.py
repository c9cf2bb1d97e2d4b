"""Readable names and lines for the IR's nodes: what :mod:`.build` calls a variable.

* :func:`expression_name` — an identifier spelling a short expression (`x_plus_prev1_x`).
* :func:`is_python` — whether an expression's text is Python (it is then renamed like source).
* :func:`sums_a_doubled_pair` — a head whose mean of a doubled value is a window sum.
"""

from __future__ import annotations

import io
import re
import tokenize

from .graph import MLPNode, sanitize
from .hypotheses import Hypothesis

__all__ = ["expression_name", "is_python", "sums_a_doubled_pair"]

_DOUBLED = re.compile(r"^\s*(?:2(?:\.0*)?\s*\*\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*\*\s*2(?:\.0*)?)\s*$")
_SMALL = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_OPS = {
    "+": "plus",
    "-": "minus",
    "*": "times",
    "/": "over",
    "//": "idiv",
    "%": "mod",
    "**": "pow",
    ">=": "ge",
    ">": "gt",
    "<=": "le",
    "<": "lt",
    "==": "eq",
    "!=": "ne",
}


def sums_a_doubled_pair(h: Hypothesis, node: MLPNode | None) -> bool:
    """Head `h` averages `node`'s output, `2 * u`, over exactly two slots at every position
    (window_mean(1) with BOS: {i-1, i}, or {BOS, 0} at the start), and u is 0 at BOS: the head
    computes u[i-1] + u[i] (u[-1] = 0), a window sum of u. Sum_Last2's model does it this way."""
    if node is None or h.name != "window_mean" or h.params.get("agg", "mean") != "mean":
        return False
    if h.params.get("c") != 1 or not h.params.get("include_bos"):
        return False
    mt = _DOUBLED.match(node.source)
    if mt is None or len(node.reads) != 1 or node.reads[0].bos != 0.0:
        return False
    return (mt.group(1) or mt.group(2)) == node.reads[0].name


def is_python(text: str) -> bool:
    try:
        list(tokenize.generate_tokens(io.StringIO(text).readline))
        compile(text, "<expr>", "eval")
        return True
    except (SyntaxError, tokenize.TokenError, ValueError):
        return False


def expression_name(src: str, limit: int = 24) -> str | None:
    """A readable identifier spelling the expression (`x_plus_prev1_x`), or None if too long."""
    words: list[str] = []
    prev = None
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    for tok in toks:
        s = tok.string
        if tok.type == tokenize.NAME:
            if s != "math":  # math.floor(x) -> floor_x
                words.append(s)
        elif tok.type == tokenize.NUMBER:
            v = float(s)
            if not v.is_integer():
                return None  # fitted constants make unreadable names
            if not words and v.is_integer() and 0 <= v <= 10:
                words.append(_SMALL[int(v)])
            else:
                words.append(s.replace(".", "p").replace("-", "neg").replace("+", ""))
        elif tok.type == tokenize.OP and s in _OPS:
            unary = s == "-" and (prev is None or (prev.type == tokenize.OP and prev.string not in (")", "]")))
            words.append("neg" if unary else _OPS[s])
        if tok.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            prev = tok
    text = "_".join(w for w in words if w)
    if not text or len(text) > limit:
        return None
    return sanitize(text, "m")
