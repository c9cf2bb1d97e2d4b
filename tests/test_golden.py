"""Behaviour unchanged (issue #31): for a routing, an arithmetic and a continuous task, a fixed
seed gives the same configs, the same model tensors and test scores, and the same program code
(every line that is not a comment or the provenance docstring) as the pre-refactor code.

The fixtures tests/golden/<case>.json were written by tests/golden/make_golden.py (first from
commit b424169; written again when the fused attention head changed the float rounding of every
step, docs/journal/2026-12-07-fused-attention-head.md); the cases are in tests/golden/cases.py. A
difference here is a change of behaviour: find its cause rather than regenerating the fixtures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from discrete_transformer import config

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from cases import CASES, HERE, expected_tensors, machine_key, program_text, run_case  # noqa: E402

pytestmark = pytest.mark.slow


def _without_retired(stored: dict, section: str) -> dict:
    """A fixture's config without the options retired since (each at the value it had)."""
    retired = getattr(config, "RETIRED", {}).get(section, {})
    for name, value in retired.items():
        if name in stored and value is not None:
            assert stored[name] == value, (
                f"{section}.{name}: the fixture ran with {stored[name]!r}, retired at {value!r}"
            )
    return {k: v for k, v in stored.items() if k not in retired}


def _without_added(now: dict, golden: dict, cls: type) -> dict:
    """`now` without the options added since the fixture, each required at its default (a new
    option's default must leave the behaviour unchanged)."""
    defaults = json.loads(json.dumps(cls().__dict__))
    for name in set(now) - set(golden):
        assert now[name] == defaults[name], f"{cls.__name__}.{name}: {now[name]!r} is not its default"
    return {k: v for k, v in now.items() if k in golden}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[dict, dict]:
    golden = json.loads((HERE / f"{request.param}.json").read_text(encoding="utf-8"))
    return golden, run_case(request.param)


def test_same_configs(case: tuple[dict, dict]) -> None:
    golden, now = case
    for key, cls in (("model_config", config.ModelConfig), ("train_config", config.TrainConfig)):
        stored = _without_retired(golden[key], cls.__name__)
        assert _without_added(json.loads(json.dumps(now[key])), stored, cls) == stored


def test_same_model_tensors(case: tuple[dict, dict]) -> None:
    """Bit for bit, against the tensors made on this kind of machine (cases.machine_key): the
    float kernels PyTorch picks differ between CPUs (AVX2 / AVX-512), and 400 steps of training
    amplify a last-bit difference."""
    golden, now = case
    assert now["state_names"] == golden["state_names"]
    want = expected_tensors(golden)
    if want is None:
        pytest.skip(
            f"no tensors were made on {machine_key()} (bit-for-bit only on the kind of machine they were made on)"
        )
    assert now["test"] == want["test"]
    assert now["state_sha256"] == want["state_sha256"], f"{golden['task']}: the trained tensors differ"


def test_same_program_code(case: tuple[dict, dict]) -> None:
    """The code lines: the header docstring and the evidence comments are presentation (issue #32
    rewords them); a fixture that stored the whole text is reduced the same way."""
    golden, now = case
    assert now["program"] == program_text(golden["program"]), f"{golden['task']}: the extracted program differs"
