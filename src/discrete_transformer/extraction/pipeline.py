"""Extraction end to end (DESIGN §4): trained model -> IR -> program -> verification.

:func:`extract` is the list of stages, each in its own module, with typed values between them:

1. **Load** (:mod:`.load`) the run and its data -> :class:`~.load.RunData`.
2. **Graph** (:mod:`.graph`): the hardened model's selector argmaxes -> :class:`~.graph.Graph`.
3. **Record** (:mod:`.record`): the model (argmax selectors, hard attention, float64) run on
   held-out sequences with every intermediate cached -> :class:`~.record.Recording`; the model's
   own score -> :class:`~.record.ModelScore`.
4. **Heads** (:mod:`.heads`): hypothesis tests on the recorded patterns, simplest first.
5. **MLPs** (:mod:`.mlps`): symbolic regression on the raw inputs each MLP saw plus a grid.
   Both characterise lazily, from the readout backwards: a module is looked at only when
   something live reads it, so dead code never costs a test or a regression.
6. **Build** (:mod:`.build`): a choice of alternative per module -> :class:`~.graph.ProgramIR`,
   names in dataflow order.
7. **Render + verify** (:mod:`.program`, :mod:`.codegen`, :mod:`.verify`): on the test split and
   on longer sequences (``verify.LONGER_FACTOR``) and off-range inputs -> :class:`~.program.Attempt`.
8. **Repair** (:mod:`.search`, with :mod:`.refit`): only when the first program fails while the
   model is exact or nearly so (or, far from the targets, one readout refit per output); last,
   each output fitted to the targets over its readout's inputs, the input channels and `pos`.
9. **Simplify** (:mod:`.simplify`, moves in :mod:`.simplify_stage`): a verified program made
   smaller where it stays right, within ``ExtractConfig.simplify_budget``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..tasks import Dataset
from .build import Builder, provenance
from .codegen import render
from .config import ExtractConfig, ExtractionError
from .graph import read_graph
from .heads import HeadCharacteriser
from .load import load, reload_dataset
from .mlps import MLPCharacteriser, relative_tolerance
from .program import (
    PROGRAM_FILE,
    VERIFICATION_FILE,
    Program,
    Verifier,
    load_module,
    longer_split,
)
from .record import hardened, mlp_function, record, score_model, search_rows
from .refit import Refits
from .search import repair
from .simplify import simplify
from .trace import trace

__all__ = [
    "PROGRAM_FILE",
    "VERIFICATION_FILE",
    "ExtractConfig",
    "ExtractionError",
    "Program",
    "extract",
    "load_module",
    "longer_split",
    "mlp_function",
    "reload_dataset",
    "trace",
]


def extract(
    run: Any,
    dataset: Dataset | None = None,
    config: ExtractConfig | None = None,
    progress: Callable[[str], None] | bool | None = None,
) -> Program:
    """Extract, render and verify the program of a trained model (a :class:`TrainResult`;
    ``api.extract`` also takes a run directory and loads it). `dataset` overrides the run's data (needed when a data file has moved);
    `progress` is a callable receiving one line per step (or True: print them)."""
    t0 = time.perf_counter()
    cfg = config or ExtractConfig()
    log = progress if callable(progress) else (print if progress else (lambda _msg: None))
    src = load(run, dataset)  # load: run + data
    ds, tau = src.dataset, float(src.run.train_config.tau_attn_end)
    model = hardened(src.run)
    graph = read_graph(model)  # graph
    rec = record(model, graph, tau, ds, cfg)  # record
    rows = search_rows(ds, cfg)
    score = score_model(src.run, ds, tau)
    heads = HeadCharacteriser(rec, cfg, log)  # heads (lazy)
    mlps = MLPCharacteriser(rec, graph, ds.kind, cfg, relative_tolerance(src.run), score.near, log)  # MLPs (lazy)
    builder = Builder(graph, heads, mlps, ds, cfg, rows, provenance(src, score.doc))  # build
    refits = Refits(mlps, rows, cfg, log)
    search_log: list[dict] = []
    verifier = Verifier(ds, src.data_seed, cfg, search_log)  # render + verify
    best = verifier.attempt(builder.build({}), {}, "first candidates")
    if not best.verified:  # repair
        best = repair(best, score, builder, refits, verifier, cfg.search_budget, log)
    if best.verified:  # simplify
        best = simplify(best, builder, refits, verifier, cfg.simplify_budget, log)
    source = render(best.ir, best.verification.lines() + [f"hypotheses tested on: {rec.note}"])
    return Program(
        source,
        best.ir,
        best.verification,
        mlps.fronts(best.ir),
        dict(heads.results),
        ds,
        search_log,
        score.doc,
        time.perf_counter() - t0,
        dataclasses.asdict(cfg),
    )
