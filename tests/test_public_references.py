"""The public tasks' reference programs (tasks/public_references.py): each one run on sequences
from its task's sampler, at T and LONGER_FACTOR×T (and off the trained range where the task has
that check), reproduces the task's rule; sizes are counted as the generated suite's are, and a
rule shared with a family has that family's program."""

from __future__ import annotations

import numpy as np
import pytest
from reference_helpers import run_reference

from discrete_transformer.extraction.verify import LONGER_FACTOR
from discrete_transformer.tasks import TASKS, TaskSpec, get_task
from discrete_transformer.tasks.family_kit import Program, map_ln, prefix_ln, recurrence, shift_ln
from discrete_transformer.tasks.public_references import REFERENCES, family_program, state_ln


def test_every_public_task_has_a_reference() -> None:
    assert [t.name for t in TASKS] == list(REFERENCES)
    for t in TASKS:
        program = REFERENCES[t.name]
        assert t.reference == program.source and t.reference_ops == program.ops > 0, t.name
        assert t.reference.startswith(f"def program({', '.join(t.input_names)}):"), t.name
        assert program.outputs == t.output_names == ("y",)


@pytest.mark.parametrize("spec", TASKS, ids=lambda t: t.name)
def test_reference_program_reproduces_the_rule(spec: TaskSpec) -> None:
    """100 sequences from the task's own sampler at T and at LONGER_FACTOR×T, and from its off-range
    sampler (verification's checks are fair): exact (discrete), 1e-9 (continuous)."""
    rng = np.random.default_rng(3)
    draws = [(spec.sample, spec.T), (spec.sample, LONGER_FACTOR * spec.T)]
    if spec.sample_wider is not None:
        draws.append((spec.sample_wider, spec.T))
    for sample, T in draws:
        x = sample(rng, 100, T)
        want, got = spec.rule(x), run_reference(spec.reference, x)
        assert got.shape == want.shape == (100, T, 1), spec.reference
        if spec.kind == "discrete":
            assert np.array_equal(got, want), spec.reference
        else:
            scale = 1.0 + np.abs(want).max()
            assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * scale), spec.reference


def test_a_rule_shared_with_a_family_has_the_familys_program() -> None:
    assert get_task("Sum_Last3").reference == family_program("window_sum", shift=3, x=(0, 99)).source
    assert get_task("Add_Mod_4").reference_ops == 4  # prefix sum (1) + `u % 4` (3)
    assert get_task("Base_3_Addition").reference == family_program("base_addition", m=3, outputs=1, x=(0, 2)).source
    assert get_task("Newton_Spring").reference_ops == 7  # `y1 - y2 + u` (5) + two lags
    with pytest.raises(KeyError, match="no task family"):
        family_program("nope")


def test_sizes_are_counted_as_the_generated_references_are() -> None:
    # routing steps count 1, element-wise lines their expression size
    assert get_task("Prev3").reference_ops == 1 and get_task("Abs_Diff").reference_ops == 5
    # a state loop: its expression plus one per lag, as family_kit.recurrence counts it
    assert state_ln("s", "2 * (y1 % 3) + u").ops == recurrence("2 * (y1 % 3) + u", 1).ops == 8
    assert get_task("Div_3").reference_ops == 8 + 3
    p = Program(("x",), ("y",), (prefix_ln("s", "x"), shift_ln("b", "s", 4), map_ln("y", "u - v", "s", "b")))
    assert get_task("Sum_Last4").reference_ops == p.ops == 5
