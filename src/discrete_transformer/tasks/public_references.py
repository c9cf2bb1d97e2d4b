"""Reference programs of the 47 public tasks: the simplest program known for each rule, written in
the style of the generated suite's references (:mod:`.family_kit`) and counted the same way (one
per routing step, the expression-tree size of each element-wise line, a state loop its expression
plus one per lag), so that a verified program's size can be compared with it (``program_ops /
reference_ops``) on both suites alike.

Where a public rule is a family's rule at fixed parameters (:mod:`.families` says which public
task each family generalises), the reference is that family's, built with the public parameters:
one rule, one program. The rest are written here; where a family's program at the public
parameters is not the simplest known (``u != v`` is an XOR of bits in 3 operations, the family's
``(u + v) % 2`` in 5), the simpler one is the reference.
"""

from __future__ import annotations

from .families import PUBLIC as FAMILIES
from .family_kit import Line, Program, expr_size, map_ln, mean_ln, prefix_ln, shift_ln

ONE, TWO = ("x",), ("a", "b")  # the public tasks' input names: one channel, or two


def family_program(family: str, **params: object) -> Program:
    """The reference program of generated family ``family`` at ``params`` (the public task's)."""
    for fam in FAMILIES:
        if fam.name == family:
            return fam.build(dict(params)).program
    raise KeyError(f"no task family {family!r}")


def program(inputs: tuple[str, ...], *lines: Line) -> Program:
    """A one-output reference (``y``) written here."""
    return Program(inputs, ("y",), lines)


def state_ln(dst: str, expr: str, src: str = "x") -> Line:
    """``dst[i] = expr(y1 = dst[i-1], u = src[i])`` as a small loop, from 0: the state families'
    recurrence (:func:`.family_kit.recurrence`) with one lag, into any list; counted the same way
    (the expression plus one routing step for the lag)."""
    code = f"{dst}, y1 = [], 0\nfor u in {src}:\n    y1 = {expr}\n    {dst}.append(y1)"
    return Line(code, expr_size(expr) + 1)


def _base_addition(m: int) -> Program:
    return family_program("base_addition", m=m, outputs=1, x=(0, m - 1))


def _window(k: int, x: tuple[int, int] = (0, 99)) -> Program:
    return family_program("window_sum", shift=k, x=x)


def _xor_last2() -> Program:
    return program(ONE, shift_ln("prev_x", "x", 1), map_ln("y", "u != v", "x", "prev_x"))


def _majority_0_2() -> Program:
    """Counts of each value, then the first value whose count is the largest (ties to the smaller)."""
    hits = [map_ln(f"is{v}", f"u == {v}", "x") for v in (0, 1, 2)]
    counts = [prefix_ln(f"n{v}", f"is{v}") for v in (0, 1, 2)]
    return program(ONE, *hits, *counts, map_ln("y", "(u < max(v, w)) * (2 - (v >= w))", "n0", "n1", "n2"))


REFERENCES: dict[str, Program] = {
    # ---- algorithmic tasks
    "Abs_Current": family_program("abs_current", center=0, x=(-100, 99)),
    "Abs_Diff": family_program("abs_diff_lag", shift=1, x=(-100, 99)),
    "Add_Mod_3": family_program("add_mod", m=3, x=(0, 2)),
    "Add_Mod_4": family_program("add_mod", m=4, x=(0, 3)),
    "Add_Mod_6": family_program("add_mod", m=6, x=(0, 5)),
    # 010 or 101: the middle bit differs from the current one, which equals the one two back
    "Alternating_Last3": program(
        ONE,
        shift_ln("prev_x", "x", 1),
        shift_ln("prev2_x", "x", 2),
        map_ln("y", "v != u == w", "x", "prev_x", "prev2_x"),
    ),
    # balanced: half of the prefix are ')' (x = 1), and no earlier prefix had more than half
    "Balanced_Parenthesis": program(
        ONE, mean_ln("closed", "x"), prefix_ln("most", "closed", "max"), map_ln("y", "u == v == 0.5", "closed", "most")
    ),
    "Base_3_Addition": _base_addition(3),
    "Base_4_Addition": _base_addition(4),
    "Binary_Addition": _base_addition(2),
    "Bit_Dot_Prod_Mod2": family_program("dot_mod", m=2, channels=2, x=(0, 1)),
    # one routing step (the prefix and its mirror), as the content-routing families count one
    "Bit_Palindrome": program(ONE, Line("y = [x[:i + 1] == x[i::-1] for i in range(len(x))]", 1)),
    "Bit_Shift_Right": family_program("prev_k", shift=1, x=(0, 1)),
    "Bitwise_And": family_program("bitwise_op", op="and"),
    "Bitwise_Not": program(ONE, map_ln("y", "1 - u", "x")),
    "Bitwise_Xor": program(TWO, map_ln("y", "u != v", "a", "b")),
    "Current_Number": family_program("affine_current", scale=1, offset=0, x=(0, 99)),
    "Diff_Last2": family_program("diff_lag", shift=1, x=(-100, 99)),
    # the prefix sum's multiples of 15, and how many were crossed at this step
    "Dithering": program(
        ONE,
        prefix_ln("s", "x"),
        map_ln("q", "u // 15", "s"),
        shift_ln("prev_q", "q", 1),
        map_ln("y", "u - v", "q", "prev_q"),
    ),
    # long division: s = 2 * remainder + bit, the remainder being s % 3 of the step before
    "Div_3": program(ONE, state_ln("s", "2 * (y1 % 3) + u"), map_ln("y", "u // 3", "s")),
    "Evens_Counter": family_program("count_value", m=0, div=2, r=0, x=(0, 9)),
    "Majority_0_1": family_program("majority", ties=0),
    "Majority_0_2": _majority_0_2(),
    "Max_Seen": family_program("running_max", x=(0, 99)),
    "Newton_Freebody": program(ONE, prefix_ln("v", "x"), prefix_ln("y", "v")),
    # p[i] = p[i-1] + v[i] and v[i] = v[i-1] + x[i] - p[i-1] give p[i] = p[i-1] - p[i-2] + x[i]
    "Newton_Spring": family_program("linear_recurrence", c=(1, -1), x=(-10, 10)),
    "Parity_All": family_program("parity_all", channels=1),
    "Parity_Bits_Mod2": family_program("position_mod", m=2, phase=0, x=(0, 1)),
    "Parity_Last2": _xor_last2(),
    "Parity_Last3": family_program("window_parity", shift=3),
    "Parity_Zeros": family_program("count_value", m=2, div=0, r=0, x=(0, 1)),
    "Prev1": family_program("prev_k", shift=1, x=(0, 99)),
    "Prev2": family_program("prev_k", shift=2, x=(0, 99)),
    "Prev3": family_program("prev_k", shift=3, x=(0, 99)),
    "Previous_Equals_Current": family_program("equals_lag", shift=1, x=(0, 7)),
    "Sum_All": family_program("prefix_sum", x=(0, 99)),
    "Sum_Last2": _window(2),
    "Sum_Last3": _window(3),
    "Sum_Last4": _window(4),
    # ---- continuous tasks
    "Real_Sum_Last2": _window(2),
    "Real_Running_Mean": family_program("running_mean", channels=1, x=(-1.0, 1.0)),
    "Real_Max_Seen": family_program("running_max", x=(-1, 1)),
    # v = sum of x * 0.1, p = sum of v * 0.1: the double prefix sum times 0.01
    "Kinematics_1D": program(ONE, prefix_ln("v", "x"), prefix_ln("p", "v"), map_ln("y", "0.01 * u", "p")),
    "Kinetic_Energy": family_program("product_law", coef=0.5, power=2, a=(0.5, 2.0), b=(-3.0, 3.0)),
    "Spring_Force": family_program("weighted_window", coef=-2.5, coef_lag=2.5, shift=1, x=(-1.0, 1.0)),
    "Total_Momentum": family_program("prefix_dot", channels=2, a=(0.5, 2.0), b=(-3.0, 3.0)),
    "Path_Length": program(TWO, map_ln("step", "(u * u + v * v) ** 0.5", "a", "b"), prefix_ln("y", "step")),
}


def reference(name: str) -> Program:
    """The reference program of public task ``name`` (its registry spelling)."""
    return REFERENCES[name]


__all__ = ["REFERENCES", "family_program", "program", "reference", "state_ln"]
