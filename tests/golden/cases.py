"""The golden cases (issue #31, behaviour unchanged): three built-in tasks trained with a fixed
seed and a small configuration, their model tensors hashed and their program's code lines kept.

Shared by tests/test_golden.py (compares) and make_golden.py (writes the fixtures). Uses only the
public API that the pre-refactor commit b424169 also has, so the fixtures can be made there::

    PYTHONPATH=/work/golden_wt/src OMP_NUM_THREADS=1 .venv/bin/python tests/golden/make_golden.py
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tokenize
from pathlib import Path
from typing import Any

import torch

import discrete_transformer as dtx

HERE = Path(__file__).resolve().parent

# One routing task (the plain search), one arithmetic task (the arithmetic search: summing heads,
# readout gain, periodic MLP units, early hard attention), one continuous task (the default
# portfolio's first restart). Small enough for a few seconds each on one core; the final polish
# and the trial polish run with few iterations so that their code paths are covered too.
SMALL: dict[str, Any] = dict(
    steps=400,
    population=4,
    restarts=1,
    batch_size=16,
    eval_every=40,
    val_size=200,
    harden_top=2,
    polish_iters=60,
    polish_size=128,
    trial_polish_iters=10,
)
CASES: dict[str, dict[str, Any]] = {
    "routing": dict(task="Prev1", seed=1, portfolio=("plain",)),
    "arithmetic": dict(task="Sum_Last2", seed=0, portfolio=("arithmetic",)),
    "continuous": dict(task="Real_Sum_Last2", seed=1, portfolio=("arithmetic", "plain")),
}
# The fixtures ran without the learned BOS offset (on by default since 2026-12-06, session 4): pinned,
# so that the cases keep checking the code paths they were made on.
MODEL: dict[str, Any] = dict(n_layers=2, n_heads=2, n_mlps=1, mlp_hidden=8, mlp_bilinear=2, attention_bos_bias=False)


def state_sha256(model: torch.nn.Module) -> str:
    """sha256 over the model's state tensors: names sorted, values as float64 bytes."""
    h = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        t = state[name].detach().to(torch.float64).contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def machine_key() -> str:
    """The CPU vendor and the kernel set PyTorch dispatches to ("GenuineIntel/AVX512"): trained
    tensors are bit-for-bit the same only where both are. A fixture holds its first machine's
    tensors at the top level (with that machine's key, "machine") and other machines' under
    "machines", each made from the same commit's code on that machine
    (tests/golden/make_golden.py --machine)."""
    vendor = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{vendor}/{torch.backends.cpu.get_cpu_capability()}"


def expected_tensors(golden: dict[str, Any]) -> dict[str, Any] | None:
    """The fixture's state hash and test scores for this machine (:func:`machine_key`), or None
    when none were made on this kind of machine. The top level holds the machine the fixture was
    written on ("machine"; a fixture without the field was written on AuthenticAMD/AVX2)."""
    key = machine_key()
    if golden.get("machine", "AuthenticAMD/AVX2") == key:
        return golden
    return golden.get("machines", {}).get(key)


def program_text(source: str) -> str:
    """The program's code lines: the source without its module docstring (the provenance header),
    without comments (the evidence, and the padding that aligns it) and without blank lines.
    What is left is the program's computation, helpers and all, compared exactly; the header and
    the evidence wording may change without the program changing. Idempotent, so it also reads
    fixtures that stored more of the text."""
    lines = source.splitlines()
    cut: dict[int, int] = {}  # line (0-based) -> column where a comment starts
    drop: set[int] = set()
    first = True
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            cut[tok.start[0] - 1] = tok.start[1]
        elif first and tok.type == tokenize.STRING:  # the module docstring
            drop.update(range(tok.start[0] - 1, tok.end[0]))
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
            first = False
    out = []
    for i, line in enumerate(lines):
        if i in drop:
            continue
        line = line[: cut.get(i, len(line))].rstrip()
        if line:
            out.append(line)
    return "\n".join(out) + "\n"


def run_case(name: str) -> dict[str, Any]:
    """Train and extract one case; what the fixture stores."""
    case = CASES[name]
    torch.set_num_threads(1)
    train_cfg = dtx.TrainConfig(**SMALL, portfolio=case["portfolio"])
    result = dtx.train(
        case["task"], seed=case["seed"], model=dtx.ModelConfig(**MODEL), training=train_cfg, progress=False
    )
    program = dtx.extract(result)
    return {
        "machine": machine_key(),
        "task": case["task"],
        "seed": case["seed"],
        "state_sha256": state_sha256(result.model),
        "state_names": sorted(result.model.state_dict()),
        "test": {k: float(v) for k, v in sorted(result.test.items())},
        "model_config": dataclasses.asdict(result.model_config),
        "train_config": dataclasses.asdict(result.train_config),
        "program": program_text(program.source),
    }
