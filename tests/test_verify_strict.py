"""Verification's stricter checks (issue #32): sequences LONGER_FACTOR times as long, and integer
inputs a little outside the training range (TaskSpec.sample_wider), reported beside *verified*
and never part of it; which tasks allow the off-range check; the bench's columns for both."""

from __future__ import annotations

import numpy as np
import pytest
from report_helpers import bench_meta

from discrete_transformer.bench.live import LiveView, row_cells
from discrete_transformer.bench.report import markdown, summarise
from discrete_transformer.bench.report_strict import headline_part, legend, longer_cell, longer_header
from discrete_transformer.extraction.program import Attempt, longer_split, wider_split
from discrete_transformer.extraction.simplify_base import no_worse
from discrete_transformer.extraction.verify import LONGER_FACTOR, SplitScore, Verification, verify_program
from discrete_transformer.tasks import TASKS, Dataset, get_task, make_dataset
from discrete_transformer.tasks.algorithmic import off_range_margin, wider_ints
from discrete_transformer.tasks.generated import family, make_spec
from discrete_transformer.tasks.public import IN_RANGE_ONLY

# ============================================================================ the off-range sampler


def test_the_wider_sampler_draws_integers_just_outside_the_range() -> None:
    lo, hi = 0, 99
    m = off_range_margin(lo, hi)
    assert m == 25 and off_range_margin(-100, 99) == 50 and off_range_margin(0, 2) == 1
    x = wider_ints([(lo, hi)])(np.random.default_rng(0), 2000, 10)
    assert x.shape == (2000, 10, 1) and np.array_equal(x, np.round(x))
    assert x.min() >= lo - m and x.max() <= hi + m
    off = (x < lo) | (x > hi)
    assert off.any(axis=(1, 2)).all()  # every sequence holds at least one off-range value
    assert 0.25 < off.mean() < 0.45  # about OFF_RANGE_SHARE of the positions, plus the forced one
    assert (x < lo).any() and (x > hi).any() and (~off).any()  # both margins, and the range itself


def test_only_widened_channels_leave_their_range_and_bits_never_do() -> None:
    assert wider_ints([(0, 1)]) is None and wider_ints([(0, 1), (0, 1)]) is None
    assert wider_ints([(0, 9)], widen=[False]) is None
    x = wider_ints([(0, 9), (0, 3)], widen=[True, False])(np.random.default_rng(1), 500, 8)
    assert (x[:, :, 1] >= 0).all() and (x[:, :, 1] <= 3).all()
    assert ((x[:, :, 0] < 0) | (x[:, :, 0] > 9)).any(axis=1).all()


def test_which_public_tasks_allow_the_off_range_check() -> None:
    excluded = {n for group in IN_RANGE_ONLY.values() for n in group}
    for t in TASKS:
        bits = t.domain is not None and len(t.domain) == 2
        want = t.kind == "discrete" and not bits and t.name not in excluded and t.name != "Bit_Palindrome"
        assert (t.sample_wider is not None) == want, t.name
    assert get_task("Bitwise_Xor").sample_wider is None and get_task("Real_Sum_Last2").sample_wider is None
    assert get_task("Sum_All").sample_wider is not None


def test_generated_families_opt_out_where_the_rule_is_defined_in_range_only() -> None:
    def spec(name: str, **p: object):
        return make_spec(family(name), {"T": 12, **p}, "check")

    assert spec("base_addition", m=5, outputs=1, x=(0, 4)).sample_wider is None  # digits
    assert spec("add_mod", m=5, x=(0, 4)).sample_wider is None  # residues
    assert spec("add_mod", m=5, x=(-50, 50)).sample_wider is not None  # integers, reduced by the rule
    assert spec("prefix_sum", x=(0, 1)).sample_wider is None  # bits
    assert spec("last_nonzero", zeros=0.5, x=(-9, 9)).sample_wider is None  # a sampler of its own
    look = spec("index_lookup", shift=5, a=(-20, 20))
    x = look.sample_wider(np.random.default_rng(0), 300, 12)
    assert (x[:, :, 1] >= 0).all() and (x[:, :, 1] <= 5).all()  # the index channel stays in 0..K
    assert ((x[:, :, 0] < -20) | (x[:, :, 0] > 20)).any()


# ============================================================================ the splits and the verdict


@pytest.fixture(scope="module")
def identity() -> Dataset:
    return make_dataset("Current_Number", seed=0, n_test=300)  # y = x on 0..99


def test_the_longer_split_is_longer_factor_times_the_trained_T(identity: Dataset) -> None:
    (x, y), note = longer_split(identity, 0)
    assert note == "" and x.shape[1] == y.shape[1] == LONGER_FACTOR * identity.T == 40


def test_a_program_that_hard_codes_the_range_verifies_but_fails_off_range(identity: Dataset) -> None:
    ds = identity
    wider, note = wider_split(ds, 0)
    assert note == "" and wider[0].shape[1] == ds.T

    def clipped(xs):  # the identity only where it was trained: 0..99
        return [min(max(v, 0.0), 99.0) for v in xs]

    def clipped_batch(X):
        return np.clip(X, 0.0, 99.0)

    v = verify_program(clipped, clipped_batch, ds.x_test, ds.y_test, ds.kind, longer_split(ds, 0)[0], wider=wider)
    assert v.verified and v.generalises is True  # the test split and the longer one never leave 0..99
    assert v.holds_off_range is False and v.wider.exact == 0.0  # every off-range sequence is wrong
    assert "values outside the training range" in v.lines()[2] and v.lines()[2].endswith("-- fails")
    assert v.to_dict()["wider"]["available"] is True and v.to_dict()["wider"]["passed"] is False
    right = verify_program(lambda xs: list(xs), lambda X: X, ds.x_test, ds.y_test, ds.kind, wider=wider)
    assert right.verified and right.holds_off_range is True


def test_tasks_without_the_check_say_why() -> None:
    bits = make_dataset("Bitwise_Not", seed=0)
    none, note = wider_split(bits, 0)
    assert none is None and "allows no off-range check" in note
    real = make_dataset("Real_Sum_Last2", seed=0, n_test=50)
    assert wider_split(real, 0)[0] is None and "real-valued" in wider_split(real, 0)[1]
    file_ds = Dataset("f", "discrete", bits.x_train, bits.y_train, bits.x_test, bits.y_test, ("x",), ("y",), "f.csv")
    none, note = wider_split(file_ds, 0)
    assert none is None and note == "data file: no rule to generate inputs"
    v = verify_program(lambda xs: xs, lambda X: X, bits.x_test, bits.y_test, "discrete", wider_note=note)
    assert v.holds_off_range is None and v.to_dict()["wider"] == {"available": False, "note": note}


def _attempt(longer: bool | None, wider: bool | None) -> Attempt:
    def split(passed: bool | None) -> SplitScore | None:
        return None if passed is None else SplitScore(10, 10, "discrete", float(passed), 0.0, passed)

    test = SplitScore(10, 10, "discrete", 1.0, 0.0, True)
    ver = Verification("discrete", True, test, split(longer), "", 10, True, wider=split(wider), wider_note="")
    return Attempt(None, "", ver, None, {})  # type: ignore[arg-type]


def test_simplification_keeps_a_program_that_held_off_range_holding() -> None:
    best = _attempt(True, True)
    assert no_worse(_attempt(True, True), best)
    assert not no_worse(_attempt(True, False), best)  # smaller, but only on the seen range
    assert not no_worse(_attempt(False, True), best)
    assert no_worse(_attempt(True, False), _attempt(True, False))  # best did not hold: no demand
    assert no_worse(_attempt(None, None), _attempt(None, None))


# ============================================================================ the bench's columns


def _row(task: str, factor: int | None, longer: bool | None, wider: bool | None) -> dict:
    row = {
        "task": task, "family": "mips", "kind": "discrete", "seed": 0, "error": None, "program_verified": True,
        "length_gen": longer, "wider_gen": wider, "program_modules": 1, "program_ops": 1, "reference_ops": 1,
        "dt_test_exact": 1.0, "gru_test_exact": 1.0, "transformer_test_exact": 1.0, "wall_s": 1.0,
    }  # fmt: skip
    if factor is not None:
        row["longer_factor"] = factor
    return row


def test_bench_columns_name_the_rows_factor_and_note_a_mix() -> None:
    new = [_row("Sum_All", LONGER_FACTOR, True, False), _row("Prev1", LONGER_FACTOR, True, None)]
    old = [_row("Max_Seen", None, True, None)]  # a row from before longer_factor: 2×T
    assert longer_header(new) == "4×T" and longer_header(old) == "2×T" and longer_header(old + new) == "2×T/4×T"
    assert "mix" not in legend(new) and "mix" in legend(old + new)
    assert longer_cell(old[0], mixed=True) == "yes (2×T)" and longer_cell(new[0], mixed=False) == "yes"
    s = summarise(new, 10.0)
    assert headline_part(s) == "2 of them also at 4×T; 0 of the 1 with an off-range check hold off-range"
    md = markdown(new, bench_meta(), s)
    head = next(line for line in md.splitlines() if line.startswith("| task |"))
    sep = next(line for line in md.splitlines() if line.startswith("|---"))
    assert "| 4×T | off-range |" in head and head.count("|") == sep.count("|")
    row = next(line for line in md.splitlines() if line.startswith("| Sum_All |"))
    assert "| yes | no |" in row and row.count("|") == head.count("|")


def test_live_view_cells_match_its_columns() -> None:
    new, old = _row("Sum_All", LONGER_FACTOR, True, False), _row("Max_Seen", None, True, None)
    failed = {"task": "Prev1", "kind": "discrete", "seed": 0, "error": "boom", "wall_s": 2.0}
    assert LiveView.HEAD[4:6] == ("4×T", "off-range")
    assert all(len(row_cells(r)) == len(LiveView.HEAD) for r in (new, old, failed))
    assert row_cells(new)[4:6] == ["yes", "no"] and row_cells(old)[4:6] == ["yes (2×T)", "–"]
