"""Extraction's readability passes (window sums, smaller refits of the readout, outputs read from
earlier variables, fixed-pattern heads) and the cores of intermediate MLPs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from extract_helpers import as_train_result, hand_made_result, stages, sum_last2_ir

import discrete_transformer as dtx
from discrete_transformer.api import TrainResult
from discrete_transformer.config import ModelConfig
from discrete_transformer.extraction import build, codegen, heads, mlps, record, refit, simplify
from discrete_transformer.extraction.graph import read_graph
from discrete_transformer.extraction.hypotheses import TestResult, make_hypothesis
from discrete_transformer.extraction.pipeline import Program, load_module
from discrete_transformer.model import DiscreteTransformer
from discrete_transformer.tasks import make_dataset
from discrete_transformer.training.loop import data_spec


@pytest.fixture(scope="module")
def hand_result() -> TrainResult:
    return hand_made_result()


@pytest.fixture(scope="module")
def hand_program(hand_result: TrainResult) -> Program:
    return dtx.extract(hand_result)


# ============================================================================ readability passes


def _planted_extractor(head_h, mlp_source: str, mlp_reads: str = "x") -> build.Builder:
    """A 2-layer model whose L1.H0 averages v = L0.M0 and L0.M0 reads `mlp_reads`, readout L1.H0;
    the characterisations are planted (head: `head_h`; MLP: `mlp_source` over u0)."""
    ds = make_dataset("Sum_Last2", seed=0, n_test=200)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    cfg = ModelConfig(n_layers=2, n_heads=1, n_mlps=1, mlp_arity=1)
    m = DiscreteTransformer(cfg, spec, population=1, seed=0).eval()
    ix = {n: i for i, n in enumerate(m.variable_names)}
    with torch.no_grad():
        for layer in m.layers:
            layer["attn"].selector.theta.zero_()
            layer["mlp"].selector.theta.zero_()
        m.layers[0]["mlp"].selector.theta[0, 0, 0, ix[mlp_reads]] = 10.0
        for role, var in enumerate(("pos", "pos", "L0.M0")):
            m.layers[1]["attn"].selector.theta[0, 0, role, ix[var]] = 10.0
        m.readout.theta.zero_()
        m.readout.theta[0, 0, ix["L1.H0"]] = 10.0
    res = as_train_result(ds, m, cfg, spec)
    ex = stages(res, ds, model_doc={}).builder
    head = heads.HeadAlt(TestResult(head_h, 5000, 1.0, 1.0, 0.999, True))
    mlp = mlps.MLPAlt(
        (ix[mlp_reads],), mlp_source, mlp_source, mlp_source, 3, 0.0, 0.0, True, 0.5, True, "mlp", 100, "planted"
    )
    ex.alternatives = lambda mod, full=False: [head] if mod.kind == "attn" else [mlp]  # type: ignore[method-assign]
    return ex


def test_a_padded_pair_mean_of_a_doubled_value_is_written_as_a_window_sum() -> None:
    """Sum_Last2's models compute `window_mean(2·x, 1, include_bos=True)`: the program says
    `sum_last2_x = window_mean(x, 1, agg="sum")`, without the doubling line, and computes the
    same values."""
    padded = make_hypothesis("window_mean", c=1, include_bos=True)
    ex = _planted_extractor(padded, "2 * u0")
    ir = ex.build({})
    assert [n.key for n in ir.nodes] == ["L1.H0"]
    head = ir.nodes[0]
    assert head.out.name == "sum_last2_x" and head.v.name == "x" and head.hypothesis.params["agg"] == "sum"
    src = codegen.render(ir)
    assert 'sum_last2_x = window_mean(x, 1, agg="sum")' in src
    assert "window_mean(1, with BOS) of 2 * x (MLP L0.M0) = sum of the last 2 x" in src
    mod = load_module(src)
    assert mod.program([5, 7, 1]) == [5, 12, 8]
    np.testing.assert_array_equal(mod.run_batch(np.array([[[5.0], [7.0], [1.0]]])).ravel(), [5, 12, 8])


@pytest.mark.parametrize(
    "h, source, reads",
    [
        (make_hypothesis("window_mean", c=1, include_bos=False), "2 * u0", "x"),  # 1 slot at i = 0
        (make_hypothesis("window_mean", c=2, include_bos=True), "2 * u0", "x"),  # 2 or 3 slots
        (make_hypothesis("window_mean", c=1, include_bos=True), "3 * u0", "x"),  # not the count
        (make_hypothesis("window_mean", c=1, include_bos=True), "2 * u0", "pos"),  # pos is -1 at BOS
    ],
)
def test_other_means_of_scaled_values_are_left_as_they_are(h, source: str, reads: str) -> None:
    ir = _planted_extractor(h, source, reads).build({})
    assert [n.key for n in ir.nodes] == ["L0.M0", "L1.H0"] and ir.nodes[1].note == ""
    assert "agg=" not in codegen.render(ir).split("def program")[1].split("\n\n")[0]


def test_a_verified_but_large_readout_is_simplified_against_the_targets(hand_result: TrainResult, monkeypatch) -> None:
    """The first candidate of the readout MLP is right (the program verifies) but needlessly
    large: the refit against the true targets, smaller and verified too, replaces it."""
    original = mlps.MLPCharacteriser.alternatives

    def bloated(self, m, full=False):
        alts = original(self, m, full)
        if not getattr(self, "_bloated", False):
            self._bloated = True
            a = alts[0]
            big = "u0 + u1 + 0 * (u0 * u1 - u1)"
            alts.insert(0, dataclasses.replace(a, source=big, numpy_source=big, expression=big, size=9))
        return alts

    monkeypatch.setattr(mlps.MLPCharacteriser, "alternatives", bloated)
    p = dtx.extract(hand_result)
    assert p.verified and p.search_log[0]["verified"]
    assert any("simplified: size 9 -> 3" in row["try"] and row["verified"] for row in p.search_log)
    assert "y = [a + b for a, b in zip(x, prev1_x)]" in p.source and "refitted to the task targets" in p.source
    assert "0 * (" not in p.source


def test_a_small_verified_readout_is_not_refitted(hand_program: Program) -> None:
    assert not any("simplified" in row["try"] for row in hand_program.search_log)
    assert "refitted" not in hand_program.source


def test_an_output_is_read_from_the_earliest_variable_that_equals_the_targets() -> None:
    """The targets are prev(x): the program's `y = x + prev1_x` is not needed, `prev1_x` already
    is the answer; on Sum_Last2's targets nothing moves."""
    from types import SimpleNamespace

    ir = sum_last2_ir()
    X = np.random.default_rng(0).integers(0, 100, (50, 10, 1)).astype(float)
    prev = np.concatenate([np.zeros((50, 1, 1)), X[:, :-1]], axis=1)
    ex = SimpleNamespace(x=X, y=prev, kind="discrete")
    short = simplify.earlier_outputs(ex, ir)
    assert short is not None and [n.key for n in short.nodes] == ["L0.H0"]
    assert short.outputs[0].var.name == "prev1_x" and short.outputs[0].name == "y"
    mod = load_module(codegen.render(short))
    assert mod.program([5, 7, 1]) == [0, 5, 7]
    ex.y = X + prev
    assert simplify.earlier_outputs(ex, ir) is None
    ex.y, ex.kind = prev + 1e-4, "continuous"  # within 1e-6 normalised MSE
    assert simplify.earlier_outputs(ex, ir) is not None
    ex.y = prev + 1.0
    assert simplify.earlier_outputs(ex, ir) is None


def test_the_search_reads_the_output_from_an_early_variable_a_swap_made_right(
    hand_result: TrainResult, monkeypatch
) -> None:
    """Prev1's targets on the hand-built x + prev(x) model, whose head is first read as shift(2):
    the swap to shift(1) alone does not fix the MLP after it, but prev1_x then equals the
    targets, and the search verifies the program that returns it."""
    original = heads.HeadCharacteriser.alternatives

    def wrong_first(self, m, full=False):
        alts = original(self, m, full)
        right = alts[0]
        wrong = heads.HeadAlt(dataclasses.replace(right.result, hypothesis=make_hypothesis("shift", c=2)))
        return [wrong, right] if full or m.key in self.full else [wrong]

    monkeypatch.setattr(heads.HeadCharacteriser, "alternatives", wrong_first)
    monkeypatch.setattr(refit.Refits, "truth_fit", lambda self, *a, **k: [])
    monkeypatch.setattr(record, "NEAR_NMSE", math.inf)
    prev1 = make_dataset("Prev1", seed=0, n_test=1000)
    p = dtx.extract(hand_result, dataset=prev1)
    assert p.verified, "\n".join(map(str, p.search_log))
    assert any("outputs read from earlier variables" in row["try"] and row.get("verified") for row in p.search_log)
    body = p.source[p.source.index("def program") :].split("return")[0]
    assert "prev1_x = shift(x, 1)" in body and "zip(" not in body


def test_a_fixed_pattern_head_extracts_to_its_routing_line() -> None:
    """attention_patterns: a head that chose the fixed shift1 pattern (its q/k selectors point
    anywhere) is read as reading `pos` only, tested like any head, and the program verifies."""
    ds = make_dataset("Sum_Last2", seed=0, n_test=1000)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    cfg = ModelConfig(
        n_layers=1, n_heads=1, n_mlps=1, mlp_hidden=4, mlp_bilinear=1, attention_patterns=("shift1", "prefix")
    )
    m = DiscreteTransformer(cfg, spec, population=1, seed=0)
    ix = {n: i for i, n in enumerate(m.variable_names)}  # x, pos, one, L0.H0, L0.M0
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        attn, mlp = m.layers[0]["attn"], m.layers[0]["mlp"]
        for role, var in enumerate(("x", "one", "x")):  # q and k: irrelevant to a fixed pattern
            attn.selector.theta[0, 0, role, ix[var]] = 10.0
        attn.pattern_choice.theta[0, 0, 1] = 10.0  # shift1
        for role, var in enumerate(("x", "L0.H0")):
            mlp.selector.theta[0, 0, role, ix[var]] = 10.0
        mlp.d[0, 0] = torch.stack([m.ms[0, ix["x"]].sqrt(), m.ms[0, ix["L0.H0"]].sqrt()])
        m.readout.theta[0, 0, ix["L0.M0"]] = 10.0
    m.eval()
    g = read_graph(m)
    assert g.modules[0].fixed == "shift1" and g.modules[0].reads == (ix["pos"], ix["pos"], ix["x"])
    res = as_train_result(ds, m, cfg, spec)
    p = dtx.extract(res)
    assert p.verified, p.verification.lines()
    assert "prev1_x = shift(x, 1)" in p.source
    assert p.run([5, 7, 1]) == [5, 12, 8]


# ============================================================================ cores of intermediate MLPs


def test_monotone_dependence_and_simple_ratios() -> None:
    e = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    assert refit.monotone_function(e, e**2 + 1, 1e-9)
    assert refit.monotone_function(e, -np.exp(e), 1e-9)
    assert not refit.monotone_function(e, np.array([9.0, 1.0, 4.0, 5.0, 25.0]), 1e-3)  # e = 2 twice, y differs
    assert not refit.monotone_function(e, (e - 2.5) ** 2, 1e-3)  # turns back
    assert refit.monotone_function(e, (e - 2.5) ** 2, 10.0)  # ... within the tolerance
    assert [refit.simple_ratio(v) for v in (1.0004, -0.49996, 0.33331, 2.7182818)] == [1.0, -0.5, 1 / 3, 2.718]


def _core_model(product: bool):
    """Sum_Last2 data; L0.H0 = fixed shift1 of x; L0.M0 reads (x, L0.H0) and computes
    s + s²/400 with s = x + prev1_x (monotone, not affine), or x·prev1_x (`product`)."""
    ds = make_dataset("Sum_Last2", seed=0, n_test=300)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    cfg = ModelConfig(n_layers=1, n_heads=1, n_mlps=1, mlp_hidden=2, mlp_bilinear=1)
    m = DiscreteTransformer(cfg, spec, population=1, seed=0)
    ix = {n: i for i, n in enumerate(m.variable_names)}
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        attn, mlp = m.layers[0]["attn"], m.layers[0]["mlp"]
        attn.pattern_choice.theta[0, 0, 1 + cfg.attention_patterns.index("shift1")] = 10.0
        attn.selector.theta[0, 0, 2, ix["x"]] = 10.0
        for role, var in enumerate(("x", "L0.H0")):
            mlp.selector.theta[0, 0, role, ix[var]] = 10.0
        rx, rh = float(m.ms[0, ix["x"]].sqrt()), float(m.ms[0, ix["L0.H0"]].sqrt())
        mlp.A[0, 0, :, 0] = torch.tensor([rx, rh])  # normalised inputs back to raw
        mlp.B[0, 0, :, 0] = torch.tensor([rx, 0.0] if product else [rx, rh])
        mlp.c_b[0, 0, 0] = 1.0 if product else 1 / 400
        if not product:
            mlp.d[0, 0] = torch.tensor([rx, rh])
        m.readout.theta[0, 0, ix["L0.M0"]] = 10.0
    m.eval()
    res = as_train_result(ds, m, cfg, spec)
    st = stages(res, ds)
    return st, st.graph.module_at(ix["L0.M0"])


def test_the_core_of_an_mlp_is_the_expression_its_output_is_a_monotone_function_of() -> None:
    ex, m = _core_model(product=False)
    out = ex.rec.out[m.key][:, 1:]
    s = ex.rec.resid[:, 1:, 0] + ex.rec.resid[:, 1:, 3]  # x + prev1_x
    np.testing.assert_allclose(out, s + s**2 / 400, rtol=1e-6)  # the planted function (float32 weights)
    core = ex.refits.core(m)
    assert core is not None and core.fitted_to == "core" and core.exact
    assert core.source in ("u0 + u1", "u1 + u0") and set(core.inputs) == {0, 3}
    ex_p, m_p = _core_model(product=True)
    assert ex_p.refits.core(m_p) is None  # x·prev1_x is a function of no single linear combination
