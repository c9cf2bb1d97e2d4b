"""Rendering, loading and verifying a program; the :class:`Program` object extraction returns.

* :class:`Verifier` — one candidate IR rendered (:func:`~.codegen.render`), loaded, and verified
  on the test split, and checked on longer sequences and off-range inputs
  (:func:`~.verify.verify_program`): an :class:`Attempt`.
* :class:`Program` — the final program: source, IR, evidence, verification; ``save`` writes
  the program and its verification into a run directory (:meth:`~..rundir.RunDir.write_program`).
"""

from __future__ import annotations

import html
import math
import os
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:  # a dependency of Rich, so normally present; without it the notebook view is plain text
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
except ImportError:  # pragma: no cover
    highlight = None

from ..rundir import PROGRAM_FILE, VERIFICATION_FILE, RunDir
from ..tasks import Dataset, TaskSpec, get_task, load_source, make_dataset
from ..tasks.registry import make_wider_split
from ..verdict import Kind
from .codegen import render
from .config import ExtractConfig
from .graph import ProgramIR
from .hypotheses import TestResult
from .symbolic import SRResult
from .verify import LONGER_FACTOR, Verification, longer_label, verify_program

__all__ = [
    "PROGRAM_FILE",  # re-exported: the extraction's callers name the files it writes
    "VERIFICATION_FILE",
    "VERIFICATION_FORMAT",
    "Attempt",
    "Program",
    "Verifier",
    "load_module",
    "longer_split",
    "wider_split",
]

VERIFICATION_FORMAT = "dtx-verification"
# Sequences of the longer split: as many positions as the former 2×T split's 10,000 sequences, so
# that a helper whose cost grows with T² (np_match) costs per check about what it did.
LONGER_SEQUENCES = 5_000


def load_module(source: str, name: str = "dtx_program") -> types.ModuleType:
    """Execute generated source as a fresh module (never registered in sys.modules)."""
    mod = types.ModuleType(name)
    mod.__dict__["__file__"] = f"<{name}>"
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)  # noqa: S102 - our own generated text
    return mod


Split = tuple[tuple[np.ndarray, np.ndarray] | None, str]  # (x, y), or None and why not


def _builtin_task(ds: Dataset, if_file: str) -> tuple[TaskSpec | None, str]:
    """The built-in task `ds` was drawn from, or None and why not (`if_file` for a data file,
    which has no rule to generate data from)."""
    if not ds.source.startswith("task:"):
        return None, if_file
    try:
        return get_task(ds.source[len("task:") :]), ""
    except ValueError as e:
        return None, str(e).splitlines()[0]


def longer_split(ds: Dataset, data_seed: int) -> Split:
    """Sequences LONGER_FACTOR times as long as the trained ones: built-in tasks only."""
    spec, note = _builtin_task(ds, "data file: there is no rule to generate longer sequences")
    if spec is None:
        return None, note
    try:
        long = make_dataset(spec, seed=data_seed, T=LONGER_FACTOR * ds.T, n_test=LONGER_SEQUENCES)
    except ValueError as e:
        return None, str(e).splitlines()[0]
    return (long.x_test, long.y_test), ""


def wider_split(ds: Dataset, data_seed: int) -> Split:
    """Sequences of the trained length with integer inputs a little outside the training range
    (TaskSpec.sample_wider): built-in tasks whose rule is defined there only."""
    spec, note = _builtin_task(ds, "data file: no rule to generate inputs")
    if spec is None:
        return None, note
    if spec.sample_wider is None:
        if spec.kind == Kind.CONTINUOUS:
            return None, "real-valued inputs: the check is for integer inputs"
        return None, "the task allows no off-range check (bits, digits, residues, symbols, or a sampler of its own)"
    return make_wider_split(spec, data_seed, ds.T, ds.n_test), ""


# ============================================================================ render + verify


@dataclass(frozen=True)
class Attempt:
    """A candidate program, rendered, loaded and verified; `choice` is the alternative per
    module it was built from."""

    ir: ProgramIR
    source: str
    verification: Verification
    module: types.ModuleType
    choice: dict[str, int]
    # The repair changed the IR after building it from `choice` (a readout fitted over more
    # variables): simplification, whose moves rebuild programs from `choice`, leaves it as it is.
    edited: bool = False

    @property
    def verified(self) -> bool:
        return self.verification.verified


class Verifier:
    """Renders and verifies candidates on `ds`'s test split (and checks them on longer sequences
    and off-range inputs, both made once here), logging each to `search_log`."""

    def __init__(self, ds: Dataset, data_seed: int, cfg: ExtractConfig, search_log: list[dict]) -> None:
        self.ds, self.cfg, self.search_log = ds, cfg, search_log
        self.longer, self.longer_note = longer_split(ds, data_seed)
        self.wider, self.wider_note = wider_split(ds, data_seed)

    def attempt(self, ir: ProgramIR, choice: dict[str, int], why: str) -> Attempt:
        src = render(ir)
        mod = load_module(src)
        ds = self.ds
        ver = verify_program(
            mod.program,
            mod.run_batch,
            ds.x_test,
            ds.y_test,
            ds.kind,
            self.longer,
            self.longer_note,
            python_check=self.cfg.python_check,
            wider=self.wider,
            wider_note=self.wider_note,
        )
        self.search_log.append(
            {"try": why, "verified": ver.verified, "test_exact": ver.test.exact, "test_nmse": ver.test.nmse}
        )
        return Attempt(ir, src, ver, mod, dict(choice))


# ============================================================================ the Program object


class Program:
    """An extracted program: its source, IR, evidence and verification.

    ``run(*channels)`` calls the generated ``program`` (standard library), ``run_batch(X)`` the
    NumPy path; ``verify(dataset=None)`` re-verifies (by default on the extraction's data).
    """

    def __init__(
        self,
        source: str,
        ir: ProgramIR,
        verification: Verification,
        sr_results: dict[str, SRResult],
        head_results: dict[str, list[TestResult]],
        dataset: Dataset,
        search_log: list[dict],
        model_score: dict[str, Any],
        seconds: float,
        extract_config: dict[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.ir = ir
        self.verification = verification
        self.sr_results = sr_results
        self.head_results = head_results
        self.dataset = dataset
        self.search_log = search_log
        self.model_score = model_score
        self.seconds = seconds
        self.extract_config = extract_config  # recorded in the verification document (reproducibility)
        self._module: types.ModuleType | None = None

    # ---------------------------------------------------------------- running
    @property
    def module(self) -> types.ModuleType:
        if self._module is None:
            self._module = load_module(self.source)
        return self._module

    @property
    def verified(self) -> bool:
        return self.verification.verified

    @property
    def sr_tables(self) -> dict[str, Any]:
        """Module key -> rich Table of the symbolic-regression Pareto front (picked row ▶)."""
        return {k: r.table() for k, r in self.sr_results.items()}

    def run(self, *channels: Sequence[float]) -> Any:
        return self.module.program(*channels)

    def run_batch(self, X: np.ndarray) -> np.ndarray:
        a = np.asarray(X, dtype=np.float64)
        if a.ndim == 2:
            a = a[:, :, None]
        return self.module.run_batch(a)

    def verify(
        self, dataset: Dataset | str | os.PathLike | None = None, longer: bool = True, wider: bool = True
    ) -> Verification:
        """Verify on `dataset`'s test split (default: the data it was extracted from) and, for a
        built-in task, check on sequences LONGER_FACTOR times as long and on inputs a little
        outside the training range (where the task allows it)."""
        ds = self.dataset if dataset is None else (dataset if isinstance(dataset, Dataset) else load_source(dataset))
        seed = self.ir.provenance.data_seed
        long_xy, long_note = longer_split(ds, seed) if longer else (None, "not requested")
        wide_xy, wide_note = wider_split(ds, seed) if wider else (None, "not requested")
        return verify_program(
            self.module.program,
            self.module.run_batch,
            ds.x_test,
            ds.y_test,
            ds.kind,
            long_xy,
            long_note,
            python_check=200,
            wider=wide_xy,
            wider_note=wide_note,
        )

    # ---------------------------------------------------------------- files
    def verification_doc(self) -> dict[str, Any]:
        return {
            "format": VERIFICATION_FORMAT,
            "version": 1,
            **self.verification.to_dict(),
            "source": self.ir.provenance.source,
            "model": self.model_score,
            "program": {
                "file": PROGRAM_FILE,
                "lines": len(self.source.splitlines()),
                "modules": len([n for n in self.ir.nodes if not n.is_alias]),
                **self.ir.to_dict(),
            },
            "search": self.search_log,
            "seconds": round(self.seconds, 3),
            "extract_config": self.extract_config,
        }

    def save(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write the program and its verification into `directory` (atomically); their paths."""
        return RunDir(Path(directory)).write_program(self.source, self.verification_doc())

    # ---------------------------------------------------------------- notebook display
    def _repr_html_(self) -> str:
        """Jupyter's view: the highlighted source, then the verdict table (split, n, exact or
        normalised MSE, passes), as PySR's fitted model shows its equations."""
        v = self.verification
        sig = ", ".join(x.name for x in self.ir.inputs)
        verdict = "verified" if v.verified else "NOT verified"
        title = f"program({sig}) from {self.ir.provenance.source}: {verdict}"
        if highlight is not None:
            code = highlight(self.source, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
        else:  # pragma: no cover
            code = f"<pre>{html.escape(self.source)}</pre>"
        return (
            f'<div class="dtx-program"><p><b>{html.escape(title)}</b></p>'
            f"<details open><summary>source ({len(self.source.splitlines())} lines)</summary>{code}</details>"
            f"{_verdict_table(v)}</div>"
        )

    def __repr__(self) -> str:
        v = self.verification
        return (
            f"Program(verified={v.verified}, kind={v.kind!r}, modules={len(self.ir.nodes)}, "
            f"lines={len(self.source.splitlines())})"
        )


def _verdict_table(v: Verification) -> str:
    """The verification as an HTML table: one row per split (test, longer sequences, off-range
    inputs; the last two are reported beside the verdict, not part of it)."""
    metric = "exact" if v.kind == Kind.DISCRETE else "nMSE"
    splits = (
        ("test", v.test, ""),
        (longer_label(v.longer_factor), v.longer, v.longer_note),
        ("off-range", v.wider, v.wider_note),
    )
    cells = []
    for name, sc, why in splits:
        if sc is None:
            cells.append((name, "", "", f"not available: {why}", ""))
            continue
        if sc.error is not None:
            figure = f"failed: {sc.error}"
        elif v.kind == Kind.DISCRETE:
            figure = f"{math.floor(100.0 * sc.exact * 100 + 1e-9) / 100:.2f}%"  # never rounds up to 100%
        else:
            figure = f"{sc.nmse:.3g}"
        cells.append((name, str(sc.n), str(sc.T), figure, "\u2713" if sc.passed else "\u2717"))
    head = "".join(f"<th>{h}</th>" for h in ("split", "n", "T", metric, "passes"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    note = ""
    if not v.python_agrees:
        note = f"<p>program() and run_batch() disagree on {v.python_checked} test sequences</p>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
