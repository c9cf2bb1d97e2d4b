"""Running a task's reference program (tasks.family_kit) the way verification runs a program."""

from __future__ import annotations

import numpy as np


def run_reference(source: str, x: np.ndarray) -> np.ndarray:
    """The reference program on each sequence of x (n, T, C_in), as verification runs a program
    (lists of floats, one per input channel): (n, T, C_out)."""
    scope: dict = {}
    exec(compile(source, "<reference>", "exec"), scope)  # noqa: S102 - the project's own reference source
    program = scope["program"]
    rows = []
    for seq in x:
        res = program(*[[float(v) for v in seq[:, c]] for c in range(seq.shape[1])])
        chans = res if isinstance(res, tuple) else (res,)
        rows.append(np.stack([np.asarray(c, dtype=np.float64) for c in chans], axis=-1))
    return np.stack(rows)
