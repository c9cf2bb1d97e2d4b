"""Built-in task suite: every rule checked against examples worked out by hand from tasks.md."""

from __future__ import annotations

import numpy as np
import pytest

from discrete_transformer.tasks import (
    TASKS,
    TaskSpec,
    UnknownTaskError,
    get_task,
    infer_kind,
    load_source,
    make_dataset,
)

# The 47 names, in tasks.md order.
MIPS_NAMES = [
    "Abs_Current",
    "Abs_Diff",
    "Add_Mod_3",
    "Add_Mod_4",
    "Add_Mod_6",
    "Alternating_Last3",
    "Balanced_Parenthesis",
    "Base_3_Addition",
    "Base_4_Addition",
    "Binary_Addition",
    "Bit_Dot_Prod_Mod2",
    "Bit_Palindrome",
    "Bit_Shift_Right",
    "Bitwise_And",
    "Bitwise_Not",
    "Bitwise_Xor",
    "Current_Number",
    "Diff_Last2",
    "Dithering",
    "Div_3",
    "Evens_Counter",
    "Majority_0_1",
    "Majority_0_2",
    "Max_Seen",
    "Newton_Freebody",
    "Newton_Spring",
    "Parity_All",
    "Parity_Bits_Mod2",
    "Parity_Last2",
    "Parity_Last3",
    "Parity_Zeros",
    "Prev1",
    "Prev2",
    "Prev3",
    "Previous_Equals_Current",
    "Sum_All",
    "Sum_Last2",
    "Sum_Last3",
    "Sum_Last4",
]
CONTINUOUS_NAMES = [
    "Real_Sum_Last2",
    "Real_Running_Mean",
    "Real_Max_Seen",
    "Kinematics_1D",
    "Kinetic_Energy",
    "Spring_Force",
    "Total_Momentum",
    "Path_Length",
]
TWO_CHANNEL = {
    "Base_3_Addition",
    "Base_4_Addition",
    "Binary_Addition",
    "Bit_Dot_Prod_Mod2",
    "Bitwise_And",
    "Bitwise_Xor",
    "Kinetic_Energy",
    "Total_Momentum",
    "Path_Length",
}
SPLIT_08 = {"Add_Mod_3", "Add_Mod_4", "Add_Mod_6", "Dithering", "Div_3", "Newton_Freebody", "Newton_Spring"}
ALL_SPECS = pytest.mark.parametrize("spec", TASKS, ids=[t.name for t in TASKS])


def run(name: str, x: list[float]) -> list[float]:
    """Apply a 1-channel task's rule to one hand-written sequence."""
    arr = np.asarray(x, dtype=np.float64)[None, :, None]
    return get_task(name).rule(arr)[0, :, 0].tolist()


def run2(name: str, a: list[float], b: list[float]) -> list[float]:
    """Apply a 2-channel task's rule to one hand-written pair of sequences."""
    arr = np.stack([a, b], axis=-1).astype(np.float64)[None]
    return get_task(name).rule(arr)[0, :, 0].tolist()


# ----------------------------------------------------------------------------- hand-worked rules


def test_prev_and_shift_family() -> None:
    assert run("Prev1", [5, 7, 9, 11]) == [0, 5, 7, 9]
    assert run("Prev2", [5, 7, 9, 11]) == [0, 0, 5, 7]
    assert run("Prev3", [5, 7, 9, 11]) == [0, 0, 0, 5]
    assert run("Bit_Shift_Right", [1, 0, 1, 1]) == [0, 1, 0, 1]
    assert run("Current_Number", [3, 1, 4]) == [3, 1, 4]


def test_sums() -> None:
    assert run("Sum_All", [1, 2, 3, 4]) == [1, 3, 6, 10]
    assert run("Sum_Last2", [1, 2, 3, 4]) == [1, 3, 5, 7]
    assert run("Sum_Last3", [1, 2, 3, 4, 5]) == [1, 3, 6, 9, 12]
    assert run("Sum_Last4", [1, 2, 3, 4, 5, 6]) == [1, 3, 6, 10, 14, 18]
    assert run("Sum_All", [99] * 10)[-1] == 990


def test_abs_and_diff() -> None:
    assert run("Abs_Current", [-5, 3, 0, -100]) == [5, 3, 0, 100]
    # x[-1] = 0, so y[0] = |x[0]|
    assert run("Abs_Diff", [-5, 3, 3, -100, 99]) == [5, 8, 0, 103, 199]
    assert run("Diff_Last2", [-5, 3, 3, -100, 99]) == [-5, 8, 0, -103, 199]


def test_mod_k_prefix_sums_and_parity() -> None:
    assert run("Add_Mod_3", [2, 2, 1, 0, 2]) == [2, 1, 2, 2, 1]  # prefix sums 2 4 5 5 7
    assert run("Add_Mod_4", [3, 3, 2, 1]) == [3, 2, 0, 1]  # 3 6 8 9
    assert run("Add_Mod_6", [5, 4, 3, 0, 1]) == [5, 3, 0, 0, 1]  # 5 9 12 12 13
    assert run("Parity_All", [1, 1, 0, 1]) == [1, 0, 0, 1]
    assert run("Parity_Bits_Mod2", [1, 1, 1, 1, 1]) == [0, 1, 0, 1, 0]
    assert run("Parity_Bits_Mod2", [0, 0, 0]) == [0, 1, 0]
    assert run("Parity_Last2", [1, 1, 0, 1, 0]) == [1, 0, 1, 1, 1]
    assert run("Parity_Last3", [1, 1, 0, 1, 0, 0]) == [1, 0, 0, 0, 1, 1]
    assert run("Parity_Zeros", [0, 1, 0, 0, 1]) == [1, 1, 0, 1, 1]  # zero counts 1 1 2 3 3
    assert run2("Bit_Dot_Prod_Mod2", [1, 1, 0, 1], [1, 1, 1, 1]) == [1, 0, 0, 1]


def test_counters() -> None:
    assert run("Evens_Counter", [0, 3, 4, 7, 8]) == [1, 1, 2, 2, 3]  # 0 counts as even
    assert run("Parity_Zeros", [1, 1]) == [0, 0]


def test_majority_with_ties_to_smaller_value() -> None:
    # counts (0s, 1s): (0,1) (1,1)tie (2,1) (2,2)tie (2,3)
    assert run("Majority_0_1", [1, 0, 0, 1, 1]) == [1, 0, 0, 0, 1]
    # counts (0,1,2): (0,0,1) (0,1,1)tie->1 (0,1,2) (0,2,2)tie->1 (1,2,2)->1 (2,2,2)tie->0
    assert run("Majority_0_2", [2, 1, 2, 1, 0, 0]) == [2, 1, 2, 1, 1, 0]


def test_bitwise() -> None:
    assert run2("Bitwise_And", [0, 1, 0, 1], [0, 0, 1, 1]) == [0, 0, 0, 1]
    assert run2("Bitwise_Xor", [0, 1, 0, 1], [0, 0, 1, 1]) == [0, 1, 1, 0]
    assert run("Bitwise_Not", [0, 1, 1]) == [1, 0, 0]


def test_alternating_last3() -> None:
    # windows (x[i-2], x[i-1], x[i]): 001 010 101 011 110 101 010
    assert run("Alternating_Last3", [1, 0, 1, 1, 0, 1, 0]) == [0, 1, 1, 0, 0, 1, 1]
    # x[-2] = x[-1] = 0: windows 000 001 010
    assert run("Alternating_Last3", [0, 1, 0]) == [0, 0, 1]
    assert run("Alternating_Last3", [1, 0]) == [0, 1]  # y[1] = 1 iff x[0]=1 and x[1]=0


def test_balanced_parenthesis() -> None:
    # "()(())": depth 1 0 1 2 1 0
    assert run("Balanced_Parenthesis", [0, 1, 0, 0, 1, 1]) == [0, 1, 0, 0, 0, 1]
    # ")(())(": depth -1 0 1 0 -1 0 -> went negative at once, so never balanced afterwards
    assert run("Balanced_Parenthesis", [1, 0, 0, 1, 1, 0]) == [0, 0, 0, 0, 0, 0]
    # "())(()": depth 1 0 -1 0 1 0 -> balanced at i=1 only
    assert run("Balanced_Parenthesis", [0, 1, 1, 0, 0, 1]) == [0, 1, 0, 0, 0, 0]


def test_base_k_addition_with_carry_and_dropped_final_carry() -> None:
    # 11 + 13 = 24 = 11000b; LSB first and mod 2^4: 0 0 0 1 (the carry out of bit 3 is dropped)
    assert run2("Binary_Addition", [1, 1, 0, 1], [1, 0, 1, 1]) == [0, 0, 0, 1]
    assert run2("Binary_Addition", [1, 0, 0], [0, 1, 0]) == [1, 1, 0]  # no carry
    # base 3: 23 + 8 = 31 = 27 + 4 -> digits of 4 LSD first: 1 1 0, final carry dropped
    assert run2("Base_3_Addition", [2, 1, 2], [2, 2, 0]) == [1, 1, 0]
    # base 4: 35 + 29 = 64 -> 0 0 0 with the carry out of the last digit dropped
    assert run2("Base_4_Addition", [3, 0, 2], [1, 3, 1]) == [0, 0, 0]
    assert run2("Base_4_Addition", [1, 2, 0], [1, 0, 3]) == [2, 2, 3]


def test_div_3_msb_first_long_division() -> None:
    # 1101b = 13; 13 // 3 = 4 = 0100b. Remainders 1 0 0 1.
    assert run("Div_3", [1, 1, 0, 1]) == [0, 1, 0, 0]
    # 10111b = 23; 23 // 3 = 7 = 00111b
    assert run("Div_3", [1, 0, 1, 1, 1]) == [0, 0, 1, 1, 1]


def test_dithering() -> None:
    # S = 10 20 35 35 40; floor(S/15) = 0 1 2 2 2
    assert run("Dithering", [10, 10, 15, 0, 5]) == [0, 1, 1, 0, 0]
    assert run("Dithering", [15, 15, 14, 1]) == [1, 1, 0, 1]  # S = 15 30 44 45


def test_max_seen() -> None:
    assert run("Max_Seen", [3, 1, 4, 1, 5, 9, 2]) == [3, 3, 4, 4, 5, 9, 9]


def test_previous_equals_current() -> None:
    # x[-1] = 0, so y[0] = 1 iff x[0] == 0
    assert run("Previous_Equals_Current", [0, 0, 3, 3, 5, 3]) == [1, 1, 0, 1, 0, 0]
    assert run("Previous_Equals_Current", [4, 4]) == [0, 1]


def test_previous_equals_current_split_has_no_shared_or_repeated_sequence() -> None:
    ds = make_dataset("Previous_Equals_Current", seed=3, n_test=2000)
    tr = {row.tobytes() for row in ds.x_train}
    te = {row.tobytes() for row in ds.x_test}
    assert len(tr) == ds.n_train and len(te) == ds.n_test
    assert not tr & te
    assert ds.n_test == 2000 and ds.n_train == 18000


def test_bit_palindrome_rule() -> None:
    # prefixes 1 | 10 | 101 | 1011 | 10110 | 101101
    assert run("Bit_Palindrome", [1, 0, 1, 1, 0, 1]) == [1, 0, 1, 0, 0, 1]
    assert run("Bit_Palindrome", [0, 0, 0, 1]) == [1, 1, 1, 0]


def test_bit_palindrome_sampler_produces_palindromic_prefixes() -> None:
    spec = get_task("Bit_Palindrome")
    rng = np.random.default_rng(0)
    x = spec.sample(rng, 4000, 10)
    assert x.shape == (4000, 10, 1) and set(np.unique(x)) <= {0.0, 1.0}
    y = spec.rule(x)[:, :, 0]
    # Each sequence starts with a palindrome of length L >= 2, so some y[i] with i >= 1 is 1.
    assert y[:, 1:].any(axis=1).all()
    # L ranges over 2..10: every longest palindromic prefix length occurs, including 10.
    longest = 10 - np.argmax(y[:, ::-1], axis=1)
    assert set(longest.tolist()) == set(range(2, 11))
    # Far more full-length palindromes than the 2^-5 of i.i.d. coins.
    assert y[:, -1].mean() > 0.1


def test_bit_palindrome_dataset_is_deduplicated_sampler_support() -> None:
    ds = make_dataset("Bit_Palindrome", seed=0)
    x = np.concatenate([ds.x_train, ds.x_test])[:, :, 0]
    assert len({r.tobytes() for r in x}) == x.shape[0] <= 1024
    y = np.concatenate([ds.y_train, ds.y_test])[:, :, 0]
    assert y[:, 1:].any(axis=1).all()  # only sequences the sampler can produce
    assert ds.n_train == round(x.shape[0] * 0.9)


def test_newton_freebody() -> None:
    # v: 1 3 0 0; p: 1 4 4 4
    assert run("Newton_Freebody", [1, 2, -3, 0]) == [1, 4, 4, 4]


def test_newton_spring_both_forms_agree() -> None:
    # recurrence y[i] = y[i-1] - y[i-2] + x[i]: 1, 1-0+0, 1-1, 0-1, -1+0-0... worked by hand
    assert run("Newton_Spring", [1, 0, 0, 0, 0, 0, 2]) == [1, 1, 0, -1, -1, 0, 3]
    x = make_dataset("Newton_Spring", seed=1, n_test=300).x_test[:, :, 0]
    y = get_task("Newton_Spring").rule(x[:, :, None])[:, :, 0]
    rec = np.zeros_like(x)
    for i in range(x.shape[1]):
        y1 = rec[:, i - 1] if i >= 1 else 0.0
        y2 = rec[:, i - 2] if i >= 2 else 0.0
        rec[:, i] = y1 - y2 + x[:, i]
    np.testing.assert_array_equal(y, rec)


def test_continuous_tasks() -> None:
    assert run("Real_Sum_Last2", [0.5, -0.25, 0.125]) == [0.5, 0.25, -0.125]
    assert run("Real_Running_Mean", [1.0, 0.0, -0.4, 0.6]) == pytest.approx([1.0, 0.5, 0.2, 0.3])
    assert run("Real_Max_Seen", [-0.5, -0.75, 0.25, 0.0]) == [-0.5, -0.5, 0.25, 0.25]
    # dt = 0.1: v = 0.1 0.1 0.0 0.05; p = 0.01 0.02 0.02 0.025
    assert run("Kinematics_1D", [1.0, 0.0, -1.0, 0.5]) == pytest.approx([0.01, 0.02, 0.02, 0.025])
    assert run2("Kinetic_Energy", [2.0, 0.5], [3.0, -2.0]) == [9.0, 1.0]
    # k = 2.5, x[-1] = 0: differences 0.4 -0.2 0 -0.4
    assert run("Spring_Force", [0.4, 0.2, 0.2, -0.2]) == pytest.approx([-1.0, 0.5, 0.0, 1.0])
    assert run2("Total_Momentum", [2.0, 0.5, 1.0], [1.0, -2.0, 3.0]) == [2.0, 1.0, 4.0]
    assert run2("Path_Length", [3.0, 0.0, -0.6], [4.0, 1.0, 0.8]) == pytest.approx([5, 6, 7])


# ----------------------------------------------------------------------------- registry


def test_all_47_tasks_registered_in_tasks_md_order() -> None:
    assert [t.name for t in TASKS] == MIPS_NAMES + CONTINUOUS_NAMES
    assert len(TASKS) == 47
    for t in TASKS:
        mips = t.name in MIPS_NAMES
        assert t.family == ("mips" if mips else "continuous")
        assert t.kind == ("discrete" if mips else "continuous")
        assert t.T == 10
        assert t.input_names == (("a", "b") if t.name in TWO_CHANNEL else ("x",))
        assert t.output_names == ("y",)
        assert t.train_fraction == (0.8 if t.name in SPLIT_08 else 0.9)


def test_enumerable_sizes() -> None:
    sizes = {t.name: t.enumerable for t in TASKS}
    assert sizes["Parity_All"] == 2**10 and sizes["Div_3"] == 2**10
    assert sizes["Bit_Palindrome"] == 2**10
    assert sizes["Add_Mod_3"] == 3**10 and sizes["Majority_0_2"] == 3**10
    assert sizes["Bitwise_And"] is None  # 4^10 > 100,000
    assert sizes["Add_Mod_4"] is None and sizes["Prev1"] is None and sizes["Real_Max_Seen"] is None


@pytest.mark.parametrize(
    "name,lo,hi",
    [
        ("Abs_Current", -100, 99),
        ("Current_Number", 0, 99),
        ("Dithering", 0, 15),
        ("Evens_Counter", 0, 9),
        ("Previous_Equals_Current", 0, 7),
        ("Newton_Spring", -10, 10),
        ("Base_4_Addition", 0, 3),
        ("Add_Mod_6", 0, 5),
    ],
)
def test_integer_input_domains(name: str, lo: int, hi: int) -> None:
    x = get_task(name).sample(np.random.default_rng(0), 5000, 10)
    assert x.dtype == np.float64
    assert np.all(x == np.round(x))
    assert x.min() == lo and x.max() == hi


def test_real_input_domains() -> None:
    rng = np.random.default_rng(0)
    x = get_task("Kinetic_Energy").sample(rng, 2000, 10)
    assert 0.5 <= x[..., 0].min() and x[..., 0].max() <= 2.0
    assert -3.0 <= x[..., 1].min() and x[..., 1].max() <= 3.0 and x[..., 1].min() < -2.9
    x = get_task("Real_Max_Seen").sample(rng, 2000, 10)
    assert -1.0 <= x.min() and x.max() <= 1.0 and infer_kind(x) == "continuous"


@pytest.mark.parametrize("variant", ["Sum_Last2", "sum_last2", "SUM_LAST2", "sum-last2", " Sum_Last2 ", "sumlast2"])
def test_name_lookup_variants(variant: str) -> None:
    assert get_task(variant).name == "Sum_Last2"


def test_unknown_name_suggests_nearest() -> None:
    with pytest.raises(UnknownTaskError) as info:
        get_task("sum_lst2")
    msg = str(info.value)
    assert msg.startswith("unknown task 'sum_lst2'; did you mean: Sum_Last2")
    assert "Sum_Last3" in msg
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownTaskError, match="no close match"):
        get_task("qqqqqq")


def test_load_source_task_name_and_unknown() -> None:
    ds = load_source("parity_all", seed=0)
    assert ds.name == "Parity_All" and ds.source == "task:Parity_All"
    with pytest.raises(UnknownTaskError, match="did you mean: Parity_All"):
        load_source("parity_al")
    assert load_source("prev1", kind="continuous").kind == "continuous"
    with pytest.raises(ValueError, match="real-valued"):
        load_source("Real_Max_Seen", kind="discrete")


# ----------------------------------------------------------------------------- datasets


def test_same_seed_same_data_different_seed_different_data() -> None:
    for name in ("Sum_Last2", "Parity_All", "Kinetic_Energy", "Bit_Palindrome"):
        a = make_dataset(name, seed=7, n_test=200)
        b = make_dataset(name, seed=7, n_test=200)
        c = make_dataset(name, seed=8, n_test=200)
        for k in ("x_train", "y_train", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        assert not np.array_equal(a.x_test, c.x_test)


@ALL_SPECS
def test_shapes_kinds_and_targets(spec: TaskSpec) -> None:
    ds = make_dataset(spec, seed=0, n_test=100)
    c_in = 2 if spec.name in TWO_CHANNEL else 1
    assert ds.x_train.shape[1:] == (10, c_in) and ds.x_test.shape[1:] == (10, c_in)
    assert ds.y_train.shape == (ds.n_train, 10, 1) and ds.y_test.shape == (ds.n_test, 10, 1)
    assert ds.x_train.dtype == np.float64 and ds.y_test.dtype == np.float64
    assert ds.kind == spec.kind and ds.name == spec.name and ds.source == f"task:{spec.name}"
    assert (ds.T, ds.n_in, ds.n_out) == (10, c_in, 1)
    np.testing.assert_array_equal(ds.y_test, spec.rule(ds.x_test))
    if spec.kind == "discrete":
        assert infer_kind(ds.y_train) == "discrete" and infer_kind(ds.x_train) == "discrete"
    if spec.enumerable is None:
        assert ds.n_test == 100
        assert ds.n_train == round(100 * spec.train_fraction / (1 - spec.train_fraction))


def test_enumerable_split_sizes() -> None:
    ds = make_dataset("Parity_All", seed=0)
    assert (ds.n_train, ds.n_test) == (922, 102)
    allx = np.concatenate([ds.x_train, ds.x_test])[:, :, 0]
    assert len({r.tobytes() for r in allx}) == 1024  # the whole space, each sequence once
    ds = make_dataset("Div_3", seed=0)
    assert (ds.n_train, ds.n_test) == (819, 205)
    ds = make_dataset("Add_Mod_3", seed=0)
    assert (ds.n_train, ds.n_test) == (47239, 11810)


def test_default_split_sizes_for_large_spaces() -> None:
    ds = make_dataset("Prev1", seed=0)
    assert (ds.n_train, ds.n_test) == (90_000, 10_000)
    ds = make_dataset("Newton_Freebody", seed=0, n_test=1000)
    assert (ds.n_train, ds.n_test) == (4000, 1000)


@ALL_SPECS
def test_longer_T_works(spec: TaskSpec) -> None:
    ds = make_dataset(spec, seed=0, T=20, n_test=64)
    assert ds.T == 20 and ds.n_test == 64 and 1 <= ds.n_train <= 1000
    np.testing.assert_array_equal(ds.y_test, spec.rule(ds.x_test))
    # the rule on the first 10 positions equals the rule on the truncated sequence
    np.testing.assert_array_equal(spec.rule(ds.x_test)[:, :10], spec.rule(ds.x_test[:, :10]))


@ALL_SPECS
def test_outputs_are_causal(spec: TaskSpec) -> None:
    rng = np.random.default_rng(11)
    n, T = 256, 10
    x = spec.sample(rng, n, T)
    fresh = spec.sample(rng, n, T)
    j = rng.integers(0, T, size=n)
    x2 = x.copy()
    rows = np.arange(n)
    x2[rows, j] = fresh[rows, j]  # perturb one position per sequence, all channels
    y, y2 = spec.rule(x), spec.rule(x2)
    before = np.arange(T)[None, :] < j[:, None]  # positions i < j must be unchanged
    np.testing.assert_array_equal(y[..., 0][before], y2[..., 0][before])


def test_dataset_arrays_are_read_only() -> None:
    ds = make_dataset("Prev1", seed=0, n_test=10)
    with pytest.raises(ValueError):
        ds.x_train[0, 0, 0] = 1.0


def test_infer_kind() -> None:
    assert infer_kind(np.array([[0.0, 1.0, -3.0]])) == "discrete"
    assert infer_kind(np.array([[0.0, 1.5]])) == "continuous"
