"""The toolkit of the generated suite's task families (:mod:`.families`): reference programs,
parameter drawing, samplers.

Each :class:`Family` draws a parameter dict from a numpy Generator and builds, from those
parameters alone, the input sampler, the vectorised numpy rule (any T: verification runs on longer sequences)
and a *reference program*: the rule written in the library's program style, whose size in the
library's operation count (one per routing step, the expression-tree size of each element-wise
line) says how small an extracted program could be. Rule and reference are written side by side
so that tests can hold one against the other.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .algorithmic import Rule, Sampler, uniform_ints, wider_ints
from .continuous import uniform_reals

Params = dict[str, object]
LOOP = ("u", "v", "w")  # loop variables of element-wise lines, in the order of their sources


# ----------------------------------------------------------------------------- reference programs


def expr_size(expr: str) -> int:
    """Expression-tree nodes: variables, constants and operators (a call's function) count 1 each;
    a negative literal is one constant. ``(a + b) % 7`` -> 5."""

    def size(node: ast.AST) -> int:
        if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            return 1
        if isinstance(node, (ast.Name, ast.Constant)):
            return 1
        if isinstance(node, ast.BinOp):
            return 1 + size(node.left) + size(node.right)
        if isinstance(node, ast.UnaryOp):
            return 1 + size(node.operand)
        if isinstance(node, ast.Compare):
            return len(node.ops) + size(node.left) + sum(size(c) for c in node.comparators)
        if isinstance(node, ast.Call):
            return 1 + sum(size(a) for a in node.args)
        if isinstance(node, ast.IfExp):
            return 1 + size(node.test) + size(node.body) + size(node.orelse)
        raise ValueError(f"unsupported expression node {type(node).__name__}")

    return size(ast.parse(expr, mode="eval").body)


@dataclass(frozen=True)
class Line:
    """One statement (possibly a small loop) of a reference program and its operation count."""

    code: str
    ops: int


def shift_ln(dst: str, src: str, k: int) -> Line:
    code = f"{dst} = [0] + {src}[:-1]" if k == 1 else f"{dst} = ([0] * {k} + {src})[:len({src})]"
    return Line(code, 1)


def prefix_ln(dst: str, src: str, fn: str = "sum") -> Line:
    return Line(f"{dst} = [{fn}({src}[:i + 1]) for i in range(len({src}))]", 1)


def mean_ln(dst: str, src: str) -> Line:
    return Line(f"{dst} = [sum({src}[:i + 1]) / (i + 1) for i in range(len({src}))]", 1)


def map_ln(dst: str, expr: str, *srcs: str, pos: bool = False) -> Line:
    """An element-wise line over ``srcs`` (loop variables u, v, w; ``i`` = position if ``pos``)."""
    names = ", ".join(LOOP[: len(srcs)])
    it = srcs[0] if len(srcs) == 1 else f"zip({', '.join(srcs)})"
    if pos:
        names, it = (f"i, {names}" if len(srcs) == 1 else f"i, ({names})"), f"enumerate({it})"
    return Line(f"{dst} = [{expr} for {names} in {it}]", expr_size(expr))


def pos_ln(dst: str, expr: str, like: str) -> Line:
    """An element-wise line over the position ``i`` alone."""
    return Line(f"{dst} = [{expr} for i in range(len({like}))]", expr_size(expr))


def recurrence(expr: str, lags: int) -> Line:
    """``y[i] = expr(y1 = y[i-1], y2 = y[i-2], u = x[i])`` as a small loop: a recurrence has no
    straight-line form. Its size: the expression, plus one routing step per lag of the state."""
    state = "y1, y2 = " + expr + ", y1" if lags == 2 else "y1 = " + expr
    init = "y, y1, y2 = [], 0, 0" if lags == 2 else "y, y1 = [], 0"
    code = f"{init}\nfor u in x:\n    {state}\n    y.append(y1)"
    return Line(code, expr_size(expr) + lags)


@dataclass(frozen=True)
class Program:
    """A reference program: ``def program(<inputs>)``, straight-line lines (list comprehensions,
    no helpers; a recurrence is the one small loop), ``return <outputs>`` (a tuple for two)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    lines: tuple[Line, ...]

    @property
    def source(self) -> str:
        body = [f"    {ln}" for line in self.lines for ln in line.code.splitlines()]
        head = f"def program({', '.join(self.inputs)}):"
        return "\n".join([head, *body, f"    return {', '.join(self.outputs)}"]) + "\n"

    @property
    def ops(self) -> int:
        return sum(line.ops for line in self.lines)


# ----------------------------------------------------------------------------- families


@dataclass(frozen=True)
class Built:
    """What one parameter draw of a family is: sampler, rule, words and reference program.
    ``domain`` is the common finite value set of every input position (None when real-valued or
    when channels differ), which lets small input spaces be enumerated like the public tasks;
    ``sample_wider`` draws inputs a little outside the ranges (TaskSpec.sample_wider)."""

    sample: Sampler
    rule: Rule
    description: str
    program: Program
    domain: tuple[float, ...] | None
    sample_wider: Sampler | None = None


@dataclass(frozen=True)
class Family:
    """A rule with parameters. ``keys`` name the parameters whose bands the report shows;
    ``values`` says how wide its integer inputs range: "wide" (bits up to ±1000), "small"
    (equality-driven rules need repeats), "bits", or "real"."""

    name: str
    generalises: str
    kind: Literal["discrete", "continuous"]
    draw: Callable[[np.random.Generator], Params]
    build: Callable[[Params], Built]
    keys: tuple[str, ...] = ()
    values: str = "wide"

    def sampler(self, p: Params) -> Sampler:
        return self.build(p).sample

    def rule(self, p: Params) -> Rule:
        return self.build(p).rule

    def description(self, p: Params) -> str:
        return self.build(p).description

    def input_names(self, p: Params) -> tuple[str, ...]:
        return self.build(p).program.inputs

    def output_names(self, p: Params) -> tuple[str, ...]:
        return self.build(p).program.outputs

    def reference(self, p: Params) -> str:
        return self.build(p).program.source

    def reference_ops(self, p: Params) -> int:
        return self.build(p).program.ops


# ----------------------------------------------------------------------------- drawing helpers


def sig(v: float, digits: int) -> float:
    """``v`` rounded to ``digits`` significant digits (a constant a person would write)."""
    return float(f"{v:.{digits}g}")


def draw_T(rng: np.random.Generator) -> int:
    return int(rng.integers(8, 41))


def draw_shift(rng: np.random.Generator, T: int, lo: int = 1) -> int:
    """Lag or window in [lo, T-1], log-uniform so that short and long both occur."""
    return int(np.clip(round(math.exp(rng.uniform(math.log(lo), math.log(T - 0.5)))), lo, T - 1))


def draw_mod(rng: np.random.Generator) -> int:
    return int(rng.integers(2, 17))


def draw_range(rng: np.random.Generator, signed: bool | None = None, top: int = 1000) -> tuple[int, int]:
    """An integer range from bits to ±``top``: a band, then a log-uniform bound within it."""
    bands = [b for b in ((1, 1), (2, 16), (17, 100), (101, 1000)) if b[0] <= top]
    lo_m, hi_m = bands[int(rng.integers(len(bands)))]
    m = round(math.exp(rng.uniform(math.log(lo_m), math.log(min(hi_m, top) + 0.49))))
    if m == 1:
        return (0, 1)
    neg = bool(rng.integers(2)) if signed is None else signed
    return (-m, m) if neg else (0, m)


def draw_const(rng: np.random.Generator, lo: float = 0.01, hi: float = 100.0, signed: bool = True) -> float:
    """A real constant: log-uniform magnitude, random sign, 1-2 significant digits."""
    v = sig(math.exp(rng.uniform(math.log(lo), math.log(hi))), int(rng.integers(1, 3)))
    return -v if signed and rng.integers(2) else v


def draw_reals(rng: np.random.Generator, positive: bool = False, away: bool = False) -> tuple[float, float]:
    """A real range with scale 0.1-300: symmetric, from 0, or (``away``) bounded away from 0."""
    s = sig(math.exp(rng.uniform(math.log(0.1), math.log(300.0))), 1)
    if away:
        lo, hi = sig(s / 4, 2), s
        return (-hi, -lo) if not positive and rng.integers(2) else (lo, hi)
    return (0.0, s) if positive or rng.integers(2) else (-s, s)


def ints(*ranges: tuple[int, int]) -> Sampler:
    """i.i.d. integers, channel ``c`` uniform on ``ranges[c]``."""
    if len(set(ranges)) == 1:
        return uniform_ints(ranges[0][0], ranges[0][1], len(ranges))

    def sample(rng: np.random.Generator, n: int, T: int) -> np.ndarray:
        return np.stack([rng.integers(lo, hi + 1, size=(n, T)) for lo, hi in ranges], -1).astype(np.float64)

    return sample


def domain_of(*ranges: tuple[int, int]) -> tuple[float, ...] | None:
    return tuple(float(v) for v in range(ranges[0][0], ranges[0][1] + 1)) if len(set(ranges)) == 1 else None


def out(*ys: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(y, dtype=np.float64) for y in ys], axis=-1)


def fmt(v: object) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def lin(terms: list[tuple[object, str]], const: object = 0) -> str:
    """``c1 * u + c2 * v + c0`` written as a person would (no ``1 *``, ``+ -``, ``+ 0``)."""
    parts: list[str] = []
    for c, name in terms:
        if c == 0:
            continue
        mag = abs(c)  # type: ignore[arg-type]
        term = name if mag == 1 else f"{fmt(mag)} * {name}"
        neg = c < 0  # type: ignore[operator]
        parts.append(("- " if neg else "+ ") + term if parts else ("-" if neg else "") + term)
    if const != 0 or not parts:
        neg = const < 0  # type: ignore[operator]
        text = fmt(abs(const)) if parts else fmt(const)  # type: ignore[arg-type]
        parts.append(("- " if neg else "+ ") + text if parts else text)
    return " ".join(parts)


def channel_names(n: int) -> tuple[str, ...]:
    """``x`` for one input channel, ``a``, ``b``, ``c`` for more."""
    return ("x",) if n == 1 else ("a", "b", "c")[:n]


def discrete(
    ranges: tuple[tuple[int, int], ...],
    rule: Rule,
    description: str,
    lines: list[Line],
    outputs: tuple[str, ...] = ("y",),
    sample: Sampler | None = None,
    off_range: bool | tuple[bool, ...] = True,
) -> Built:
    """A family draw on integer inputs, channel ``c`` on ``ranges[c]``. Verification's off-range
    check widens every channel of more than two values; ``off_range`` False (or False for a
    channel) where the rule is defined in range only (digits, residues, keys, indices). A custom
    ``sample`` has no off-range sampler: widening ``ranges`` would not be its distribution."""
    program = Program(channel_names(len(ranges)), outputs, tuple(lines))
    widen = off_range if isinstance(off_range, tuple) else (off_range,) * len(ranges)
    wider = None if sample is not None else wider_ints(ranges, widen)
    return Built(sample or ints(*ranges), rule, description, program, domain_of(*ranges), wider)


def real(
    ranges: tuple[tuple[float, float], ...],
    rule: Rule,
    description: str,
    lines: list[Line],
    outputs: tuple[str, ...] = ("y",),
) -> Built:
    """A family draw on i.i.d. uniform real inputs."""
    program = Program(channel_names(len(ranges)), outputs, tuple(lines))
    return Built(uniform_reals(*ranges), rule, description, program, None)


CMP: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


__all__ = ["Built", "Family", "Line", "Program", "expr_size"]
