"""Shared by the extraction tests (test_extract*.py): a hand-written IR of Sum_Last2, the Sum_Last2
model set by hand, and extract()'s stage objects for a result."""

from __future__ import annotations

import ast
import types

import torch

from discrete_transformer.api import TrainResult
from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.extraction import build, heads, mlps, record, refit
from discrete_transformer.extraction.graph import (
    AttentionNode,
    MLPNode,
    OutputNode,
    ProgramIR,
    Provenance,
    Variable,
    eliminate_dead_code,
    read_graph,
    sanitize,
)
from discrete_transformer.extraction.hypotheses import make_hypothesis
from discrete_transformer.extraction.load import RunData
from discrete_transformer.extraction.pipeline import ExtractConfig
from discrete_transformer.model import DiscreteTransformer
from discrete_transformer.tasks import Dataset, make_dataset
from discrete_transformer.training.loop import RestartResult, data_spec


def sum_last2_ir(input_name: str = "x", output_name: str = "y", source: str = "task:Sum_Last2") -> ProgramIR:
    """x -> prev1_x = shift(x, 1) -> y = x + prev1_x, plus a dead MLP."""
    x = Variable("x", 0, "input", sanitize(input_name, "x"))
    prev = Variable("L0.H0", 3, "attn", "prev1_x")
    pos = Variable("pos", 1, "pos", "pos", -1.0)
    y = Variable("L0.M0", 5, "mlp", sanitize(output_name, "y"))
    dead = Variable("L0.M1", 6, "mlp", "unused")
    head = AttentionNode("L0.H0", prev, pos, pos, x, make_hypothesis("shift", c=1), 1.0, 0.9994, 5000, 1.0, True)
    mlp = MLPNode(
        "L0.M0",
        y,
        (x, prev),
        f"{x.name} + prev1_x",
        f"{x.name} + prev1_x",
        "x + prev1_x",
        3,
        0.0,
        1e-7,
        True,
        1e-6,
        True,
        "mlp",
        100,
    )
    junk = MLPNode(
        "L0.M1", dead, (x,), f"{x.name} * 2", f"{x.name} * 2", "2*x", 3, 0.0, 0.0, True, 1e-6, False, "mlp", 10
    )
    nodes = eliminate_dead_code([head, mlp, junk], [y])
    pv = Provenance(
        source,
        "Sum_Last2",
        "discrete",
        0,
        0,
        10,
        (input_name,),
        (output_name,),
        {"n_layers": 1},
        {"steps": 5, "estimator": "gumbel"},
        "0.1.0",
        {"exact": 1.0},
    )
    return ProgramIR((x,), nodes, (OutputNode(0, y.name, y),), pv)


def imported_modules(source: str) -> set[str]:
    """The top-level modules `source` imports."""
    mods = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mods.add((node.module or "").split(".")[0])
    return mods


def sum_last2_model(ds: Dataset) -> tuple[DiscreteTransformer, ModelConfig, object]:
    """A 1-layer model set by hand: L0.H0 = shift(x, 1) (q = k = pos), L0.M0 = x + L0.H0
    (linear part of the MLP only), readout L0.M0."""
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    cfg = ModelConfig(n_layers=1, n_heads=1, n_mlps=2, mlp_arity=2, mlp_hidden=4, mlp_bilinear=1)
    m = DiscreteTransformer(cfg, spec, population=1, seed=0)
    ix = {n: i for i, n in enumerate(m.variable_names)}  # x, pos, one, L0.H0, L0.M0, L0.M1
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        attn, mlp = m.layers[0]["attn"], m.layers[0]["mlp"]
        for role, var in enumerate(("pos", "pos", "x")):
            attn.selector.theta[0, 0, role, ix[var]] = 10.0
        r, s = float(m.ms[0, ix["pos"]].sqrt()), 10.0
        attn.w_score[0, 0] = torch.tensor([2 * s, -2 * s / r, -s])  # -s (k - q + 1)^2, normalised
        for role, var in enumerate(("x", "L0.H0")):
            mlp.selector.theta[0, 0, role, ix[var]] = 10.0
            mlp.selector.theta[0, 1, role, ix["one"]] = 10.0  # L0.M1: dead code
        mlp.d[0, 0] = torch.stack([m.ms[0, ix["x"]].sqrt(), m.ms[0, ix["L0.H0"]].sqrt()])
        m.readout.theta[0, 0, ix["L0.M0"]] = 10.0
    return m.eval(), cfg, spec


def as_train_result(ds, model, cfg, spec) -> TrainResult:
    """A hand-set model wrapped as a one-restart training result, for extract()."""
    best = RestartResult(seed=0, best_member=0, val={}, steps_run=0, seconds=0.0, stopped_early=False, state={})
    return TrainResult(
        dataset=ds,
        model=model,
        model_config=cfg,
        train_config=TrainConfig(steps=1, restarts=1),
        spec=spec,
        best=best,
        restarts=[best],
        test={},
        seconds=0.0,
        run_dir=None,
        source=ds.source,
        kind=ds.kind,
        seed=0,
    )


def hand_made_result() -> TrainResult:
    """The Sum_Last2 model set by hand (:func:`sum_last2_model`) as a training result; the test
    modules that use it make it a module-scoped fixture ``hand_result``."""
    ds = make_dataset("Sum_Last2", seed=0, n_test=1000)
    model, cfg, spec = sum_last2_model(ds)
    return as_train_result(ds, model, cfg, spec)


def stages(res: TrainResult, ds: Dataset, model_doc: dict | None = None) -> types.SimpleNamespace:
    """extract()'s stage objects for `res` on `ds`, made as it makes them (`model_doc`: the
    model score recorded in the provenance instead of the measured one)."""
    cfg, log = ExtractConfig(), lambda _m: None
    tau = float(res.train_config.tau_attn_end)
    model = record.hardened(res)
    graph = read_graph(model)
    rec = record.record(model, graph, tau, ds, cfg)
    rows = record.search_rows(ds, cfg)
    sc = record.score_model(res, ds, tau)
    hc = heads.HeadCharacteriser(rec, cfg, log)
    mc = mlps.MLPCharacteriser(rec, graph, ds.kind, cfg, mlps.relative_tolerance(res), sc.near, log)
    doc = sc.doc if model_doc is None else model_doc
    builder = build.Builder(graph, hc, mc, ds, cfg, rows, build.provenance(RunData(res, ds, 0), doc))
    return types.SimpleNamespace(
        graph=graph, rec=rec, builder=builder, mlps=mc, refits=refit.Refits(mc, rows, cfg, log)
    )
