"""The public task suite (tasks.md): the 47 tasks, their samplers, exact rules and reference
programs (:mod:`.public_references`).

Looked up by name, with the generated tasks, in :mod:`.registry`.
"""

from __future__ import annotations

from . import algorithmic as A
from . import continuous as C
from .public_references import reference
from .spec import ENUMERATION_LIMIT, TaskSpec

# Integer tasks with more than two input values whose rule means nothing a little outside the
# trained values, so they get no off-range check (two-value tasks are bits and never get one):
IN_RANGE_ONLY = {
    # inputs are residues mod k: -1 or k is another name for a residue, not a new input
    "residues": ("Add_Mod_3", "Add_Mod_4", "Add_Mod_6"),
    # inputs are the digits of a base
    "digits": ("Base_3_Addition", "Base_4_Addition"),
    # intensities of a 1-bit quantiser: outside 0..15 the output is no longer a bit
    "intensities": ("Dithering",),
    # symbols whose counts are compared: a value outside 0..2 is none of the symbols
    "symbols": ("Majority_0_2",),
}
_NO_OFF_RANGE = frozenset(name for group in IN_RANGE_ONLY.values() for name in group)


def _ints(
    name: str,
    lo: int,
    hi: int,
    rule: A.Rule,
    description: str,
    channels: int = 1,
    split: float = 0.9,
    sample: A.Sampler | None = None,
    iid: bool = True,
) -> TaskSpec:
    """A MIPS task on integer inputs uniform on [lo, hi]; with an off-range check unless its
    sampler is its own (Bit_Palindrome) or its rule is defined in range only (IN_RANGE_ONLY)."""
    T = 10
    size = (hi - lo + 1) ** (channels * T)
    program = reference(name)
    return TaskSpec(
        name=name,
        family="mips",
        kind="discrete",
        input_names=("x",) if channels == 1 else ("a", "b"),
        output_names=("y",),
        T=T,
        train_fraction=split,
        sample=sample or A.uniform_ints(lo, hi, channels),
        rule=rule,
        enumerable=size if size <= ENUMERATION_LIMIT else None,
        domain=tuple(float(v) for v in range(lo, hi + 1)),
        description=description,
        iid=iid,
        reference=program.source,
        reference_ops=program.ops,
        sample_wider=None if sample or name in _NO_OFF_RANGE else A.wider_ints(((lo, hi),) * channels),
    )


def _reals(name: str, ranges: tuple[tuple[float, float], ...], rule: A.Rule, description: str) -> TaskSpec:
    """A continuous task on i.i.d. uniform real inputs."""
    program = reference(name)
    return TaskSpec(
        name=name,
        family="continuous",
        kind="continuous",
        input_names=("x",) if len(ranges) == 1 else ("a", "b"),
        output_names=("y",),
        T=10,
        train_fraction=0.9,
        sample=C.uniform_reals(*ranges),
        rule=rule,
        enumerable=None,
        domain=None,
        description=description,
        reference=program.source,
        reference_ops=program.ops,
    )


_U11 = (-1.0, 1.0)

TASKS: tuple[TaskSpec, ...] = (
    # ---- 1. algorithmic tasks (MIPS names), in tasks.md order
    _ints("Abs_Current", -100, 99, A.abs_current, "y[i] = |x[i]|"),
    _ints("Abs_Diff", -100, 99, A.abs_diff, "y[i] = |x[i] - x[i-1]|, x[-1] = 0"),
    _ints("Add_Mod_3", 0, 2, A.add_mod(3), "y[i] = (x[0] + ... + x[i]) mod 3", split=0.8),
    _ints("Add_Mod_4", 0, 3, A.add_mod(4), "y[i] = (x[0] + ... + x[i]) mod 4", split=0.8),
    _ints("Add_Mod_6", 0, 5, A.add_mod(6), "y[i] = (x[0] + ... + x[i]) mod 6", split=0.8),
    _ints("Alternating_Last3", 0, 1, A.alternating_last3,
          "y[i] = 1 iff (x[i-2], x[i-1], x[i]) is 010 or 101, x[<0] = 0"),
    _ints("Balanced_Parenthesis", 0, 1, A.balanced_parenthesis,
          "0 = '(', 1 = ')'; y[i] = 1 iff depth is 0 and never went negative"),
    _ints("Base_3_Addition", 0, 2, A.base_addition(3),
          "base-3 addition of a and b, least-significant digit first, final carry dropped",
          channels=2),
    _ints("Base_4_Addition", 0, 3, A.base_addition(4),
          "base-4 addition of a and b, least-significant digit first, final carry dropped",
          channels=2),
    _ints("Binary_Addition", 0, 1, A.base_addition(2),
          "binary addition of a and b, least-significant bit first, final carry dropped",
          channels=2),
    _ints("Bit_Dot_Prod_Mod2", 0, 1, A.bit_dot_prod_mod2,
          "y[i] = (sum_{j<=i} a[j]*b[j]) mod 2", channels=2),
    _ints("Bit_Palindrome", 0, 1, A.bit_palindrome,
          "y[i] = 1 iff x[0..i] is a palindrome (inputs: palindrome of random length + coins)",
          sample=A.palindrome_sampler, iid=False),
    _ints("Bit_Shift_Right", 0, 1, A.bit_shift_right, "y[0] = 0; y[i] = x[i-1]"),
    _ints("Bitwise_And", 0, 1, A.bitwise_and, "y[i] = a[i] AND b[i]", channels=2),
    _ints("Bitwise_Not", 0, 1, A.bitwise_not, "y[i] = 1 - x[i]"),
    _ints("Bitwise_Xor", 0, 1, A.bitwise_xor, "y[i] = a[i] XOR b[i]", channels=2),
    _ints("Current_Number", 0, 99, A.current_number, "y[i] = x[i]"),
    _ints("Diff_Last2", -100, 99, A.diff_last2, "y[i] = x[i] - x[i-1], x[-1] = 0"),
    _ints("Dithering", 0, 15, A.dithering,
          "S = prefix sum; y[i] = floor(S[i]/15) - floor(S[i-1]/15)", split=0.8),
    _ints("Div_3", 0, 1, A.div_3,
          "long division by 3 of the bits read most-significant first", split=0.8),
    _ints("Evens_Counter", 0, 9, A.evens_counter, "y[i] = #{j <= i : x[j] even}"),
    _ints("Majority_0_1", 0, 1, A.majority((0, 1)),
          "y[i] = mode of x[0..i], ties to the smaller value"),
    _ints("Majority_0_2", 0, 2, A.majority((0, 1, 2)),
          "y[i] = mode of x[0..i], ties to the smaller value"),
    _ints("Max_Seen", 0, 99, A.max_seen, "y[i] = max(x[0..i])"),
    _ints("Newton_Freebody", -10, 10, A.newton_freebody,
          "v += x[i]; p += v; y[i] = p (from rest)", split=0.8),
    _ints("Newton_Spring", -10, 10, A.newton_spring,
          "v += x[i] - p; p += v; y[i] = p (from rest)", split=0.8),
    _ints("Parity_All", 0, 1, A.parity_all, "y[i] = (x[0] + ... + x[i]) mod 2"),
    _ints("Parity_Bits_Mod2", 0, 1, A.parity_bits_mod2, "y[i] = i mod 2"),
    _ints("Parity_Last2", 0, 1, A.parity_last2, "y[i] = x[i] XOR x[i-1], x[-1] = 0"),
    _ints("Parity_Last3", 0, 1, A.parity_last3, "y[i] = (x[i-2] + x[i-1] + x[i]) mod 2, x[<0] = 0"),
    _ints("Parity_Zeros", 0, 1, A.parity_zeros, "y[i] = #{j <= i : x[j] == 0} mod 2"),
    _ints("Prev1", 0, 99, A.prev(1), "y[i] = x[i-1], y[0] = 0"),
    _ints("Prev2", 0, 99, A.prev(2), "y[i] = x[i-2], 0 for i < 2"),
    _ints("Prev3", 0, 99, A.prev(3), "y[i] = x[i-3], 0 for i < 3"),
    _ints("Previous_Equals_Current", 0, 7, A.previous_equals_current,
          "y[i] = 1 iff x[i] == x[i-1], x[-1] = 0"),
    _ints("Sum_All", 0, 99, A.sum_all, "y[i] = x[0] + ... + x[i]"),
    _ints("Sum_Last2", 0, 99, A.sum_last(2), "y[i] = x[i-1] + x[i], x[-1] = 0"),
    _ints("Sum_Last3", 0, 99, A.sum_last(3), "y[i] = x[i-2] + x[i-1] + x[i], x[<0] = 0"),
    _ints("Sum_Last4", 0, 99, A.sum_last(4), "y[i] = x[i-3] + ... + x[i], x[<0] = 0"),
    # ---- 2. continuous-valued tasks
    _reals("Real_Sum_Last2", (_U11,), C.real_sum_last2, "y[i] = x[i] + x[i-1], x[-1] = 0"),
    _reals("Real_Running_Mean", (_U11,), C.real_running_mean, "y[i] = mean(x[0..i])"),
    _reals("Real_Max_Seen", (_U11,), C.real_max_seen, "y[i] = max(x[0..i])"),
    _reals("Kinematics_1D", (_U11,), C.kinematics_1d,
           "v += x[i]*0.1; p += v*0.1; y[i] = p (from rest)"),
    _reals("Kinetic_Energy", ((0.5, 2.0), (-3.0, 3.0)), C.kinetic_energy,
           "y[i] = 0.5 * a[i] * b[i]^2"),
    _reals("Spring_Force", (_U11,), C.spring_force, "y[i] = -2.5 * (x[i] - x[i-1]), x[-1] = 0"),
    _reals("Total_Momentum", ((0.5, 2.0), (-3.0, 3.0)), C.total_momentum,
           "y[i] = sum_{j<=i} a[j] * b[j]"),
    _reals("Path_Length", (_U11, _U11), C.path_length,
           "y[i] = sum_{j<=i} sqrt(a[j]^2 + b[j]^2)"),
)  # fmt: skip


__all__ = ["IN_RANGE_ONLY", "TASKS"]
