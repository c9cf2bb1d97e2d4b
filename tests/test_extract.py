"""Extraction (DESIGN §4) without training: the IR and its names, rendering, verification rules,
and the whole pipeline on a hand-built model whose program is known (Sum_Last2 = x + shift(x, 1))."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import keyword
import math
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import discrete_transformer as dtx
from discrete_transformer.api import RunDirError, TrainResult
from discrete_transformer.config import ModelConfig, TrainConfig
from discrete_transformer.extraction import (
    build,
    codegen,
    heads,
    mlps,
    record,
    refit,
    search,
    simplify,
)
from discrete_transformer.extraction.graph import (
    RESERVED_NAMES,
    AttentionNode,
    MLPNode,
    OutputNode,
    ProgramIR,
    Provenance,
    Variable,
    eliminate_dead_code,
    read_graph,
    rename_names,
    sanitize,
    source_names,
    unique_name,
)
from discrete_transformer.extraction.hypotheses import TestResult, make_hypothesis
from discrete_transformer.extraction.load import RunData
from discrete_transformer.extraction.pipeline import (
    ExtractConfig,
    Program,
    load_module,
    trace,
)
from discrete_transformer.extraction.verify import (
    CONTINUOUS_NMSE,
    score,
    verify_program,
)
from discrete_transformer.model import DiscreteTransformer
from discrete_transformer.tasks import Dataset, make_dataset
from discrete_transformer.training import loop, polish
from discrete_transformer.training.loop import RestartResult, data_spec

HOSTILE = ['x"""; import os #', "class", "0day", "é\u2028名", "", "__import__", "pos", "a b\nc", "np", "shift"]


# ============================================================================ names


@pytest.mark.parametrize("raw", HOSTILE + ["x", "prev1_x", "ΔT", "'quoted'", "\\x00"])
def test_sanitize_gives_safe_identifiers(raw: str) -> None:
    name = sanitize(raw)
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), name
    assert not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
    assert name not in RESERVED_NAMES


def test_unique_names_and_renaming() -> None:
    taken: set[str] = {"x"}
    assert [unique_name("x", taken), unique_name("x", taken), unique_name("y", taken)] == ["x_2", "x_3", "y"]
    src = "math.floor(u0 / 2) + (u1 if u0 >= 1 else max(u0, 2))"
    assert source_names(src) == {"math", "u0", "u1", "max"}
    assert rename_names(src, {"u0": "prev1_x", "u1": "x", "floor": "no"}) == (
        "math.floor(prev1_x / 2) + (x if prev1_x >= 1 else max(prev1_x, 2))"
    )


def test_escape_text_cannot_break_out_of_a_docstring() -> None:
    for raw in HOSTILE:
        esc = codegen.escape_text(raw)
        assert '"' not in esc[1:-1] and "'" not in esc[1:-1] and "\n" not in esc
        assert all(32 <= ord(ch) < 127 for ch in esc)
        assert ast.literal_eval(esc) == raw  # repr-like: it reads back as the original text


# ============================================================================ a hand-written IR


def _ir(input_name: str = "x", output_name: str = "y", source: str = "task:Sum_Last2") -> ProgramIR:
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


def _imports(source: str) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mods.add((node.module or "").split(".")[0])
    return mods


def test_dead_code_elimination_follows_what_nodes_read() -> None:
    ir = _ir()
    assert [n.key for n in ir.nodes] == ["L0.H0", "L0.M0"]
    head = ir.nodes[0]
    assert [v.name for v in head.reads] == ["x"]  # a shift reads neither its query nor its key


def test_render_runs_and_matches_run_batch() -> None:
    src = codegen.render(_ir(), ["verified: yes -- test: 100.00%"])
    compile(src, "program.py", "exec")
    assert _imports(src) <= {"math", "numpy"}
    assert "discrete_transformer" not in src.split('"""', 2)[2]  # only the docstring names the package
    mod = load_module(src)
    assert mod.program([3, 1, 4, 1, 5]) == [3, 4, 5, 5, 6]
    X = np.random.default_rng(0).integers(0, 100, (50, 12, 1)).astype(float)
    want = X[:, :, 0] + np.concatenate([np.zeros((50, 1)), X[:, :-1, 0]], axis=1)
    np.testing.assert_array_equal(mod.run_batch(X)[:, :, 0], want)
    assert [mod.program(list(r)) for r in X[:3, :, 0]] == [list(w) for w in want[:3]]
    body = src[src.index("def program") :]
    assert "prev1_x = shift(x, 1)" in body and "# attention L0.H0: shift(1), agreement 100.0%" in body
    assert "y = [a + b for a, b in zip(x, prev1_x)]" in body and "# MLP L0.M0: x + prev1_x" in body
    assert "def shift(" in src and "def np_shift(" in src
    assert "def match(" not in src and "unused" not in src  # only the helpers and lines it uses
    assert codegen.render(_ir(), ["verified: yes -- test: 100.00%"]) == src  # deterministic


def test_hostile_names_are_sanitised_in_code_and_escaped_in_the_docstring() -> None:
    bad_in, bad_out, bad_src = 'x"""\nimport os', "class\u2028", 'data/"""evil\n.npz'
    src = codegen.render(_ir(bad_in, bad_out, bad_src))
    mod = load_module(src)
    assert mod.program([1, 2]) == [1, 3]
    tree = ast.parse(src)
    assert ast.get_docstring(tree, clean=False) == mod.__doc__
    assert codegen.escape_text(bad_src) in mod.__doc__ and codegen.escape_text(bad_in) in mod.__doc__
    assert mod.__doc__.count("\n") == src.split('"""')[1].count("\n")  # no line was injected
    assert _imports(src) <= {"math", "numpy"}
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "program")
    assert [a.arg for a in fn.args.args] == ["x_import_os"]
    code = src.split('"""', 2)[2]  # everything after the module docstring
    assert "import os" not in code.replace("x_import_os", "") and not re.search(r"\bclass\b", code)


# ============================================================================ verification rules


def test_score_rules() -> None:
    y = np.arange(24, dtype=float).reshape(2, 4, 3)
    s = score(y + 0.4, y, "discrete")
    assert s.passed and s.exact == 1.0
    bad = y.copy()
    bad[1, 2, 0] += 1
    s = score(bad, y, "discrete")
    assert not s.passed and s.exact == 0.5
    noise = np.sqrt(CONTINUOUS_NMSE) * 0.5 * y.reshape(-1, 3).std(axis=0)
    assert score(y + noise, y, "continuous").passed
    assert not score(y + 10 * noise, y, "continuous").passed
    assert not score(np.full_like(y, np.nan), y, "continuous").passed
    assert score(y[:, :2], y, "discrete").error is not None


def test_verify_program_reports_failures_without_raising() -> None:
    x = np.zeros((5, 4, 1))
    y = np.zeros((5, 4, 1))

    def boom(X):
        raise ZeroDivisionError("float division by zero")

    v = verify_program(lambda xs: list(xs), boom, x, y, "discrete")
    assert not v.verified and "ZeroDivisionError" in v.test.error
    v = verify_program(
        lambda xs: [1.0] * len(xs), lambda X: np.zeros_like(X), x, y, "discrete", longer_note="data file"
    )
    assert v.test.passed and not v.python_agrees and not v.verified
    assert v.to_dict()["longer"] == {"available": False, "note": "data file"}


# ============================================================================ the pipeline on a hand-built model


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


def test_the_polish_also_starts_from_the_mlps_without_their_relu_units() -> None:
    """An exact linear MLP bent by ReLU units: one L-BFGS iteration does not straighten it,
    but the lean polish (ReLU outputs zeroed, then polished) is exact, so only a polish that
    tries the lean model returns an exact one."""
    ds = make_dataset("Sum_Last2", seed=0, n_test=200)
    m, _cfg, _spec = sum_last2_model(ds)
    with torch.no_grad():
        mlp = m.layers[0]["mlp"]
        mlp.W[0, 0] = torch.tensor([[1.0, -0.5, 0.3, 0.8], [0.7, 1.0, -0.4, 0.2]])
        mlp.c_r[0, 0] = torch.tensor([0.4, -0.3, 0.5, 0.2])
    split = loop.Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 500, 0)
    tau = TrainConfig().tau_attn_end
    before = loop.evaluate(m, split.x_val, split.y_val, ds.kind, split.var_y, tau)
    assert before["exact"][0] < 0.5 and before["nmse"][0] <= polish.POLISH_MAX_NMSE
    out = polish.final_polish(
        m, TrainConfig(polish_iters=1), split, torch.Generator().manual_seed(0), lambda row: None, 1e-7, 0
    )
    after = loop.evaluate(out, split.x_val, split.y_val, ds.kind, split.var_y, tau)
    assert after["exact"][0] == 1.0


def test_a_trial_polish_that_solves_replaces_its_member_and_one_that_fails_changes_nothing() -> None:
    """The search's trial polish (TrainConfig.trial_polish_nmse): a member with the right structure
    but inexact weights is polished to a solution and written back; a member with the wrong
    structure (readout of x itself) is not solved, and the population is left as it was."""
    ds = make_dataset("Sum_Last2", seed=0, n_test=200)
    split = loop.Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 500, 0)
    cfg, rows = TrainConfig(trial_polish_iters=50), []
    m, _cfg, _spec = sum_last2_model(ds)
    with torch.no_grad():
        m.layers[0]["mlp"].d[0, 0] *= 1.05  # the right structure, 5 % off
    assert loop.evaluate(m, split.x_val, split.y_val, ds.kind, split.var_y, cfg.tau_attn_end)["exact"][0] < 0.5
    assert polish.trial_polish(m, 0, cfg, split, rows.append, 1e-7, step=300)
    assert loop.evaluate(m, split.x_val, split.y_val, ds.kind, split.var_y, cfg.tau_attn_end)["exact"][0] == 1.0
    assert rows[-1]["phase"] == "trial" and rows[-1]["val_solved"] == 1 and rows[-1]["step"] == 300

    wrong, _cfg, _spec = sum_last2_model(ds)
    with torch.no_grad():
        wrong.readout.theta.zero_()
        wrong.readout.theta[0, 0, wrong.variable_names.index("x")] = 10.0
    before = {k: v.clone() for k, v in wrong.state_dict().items()}
    assert not polish.trial_polish(wrong, 0, cfg, split, rows.append, 1e-7, step=400)
    assert all(torch.equal(before[k], v) for k, v in wrong.state_dict().items())
    assert rows[-1]["val_solved"] == 0


def test_the_polish_stops_at_the_first_chunk_after_which_the_validation_is_solved() -> None:
    """L-BFGS with `until` runs POLISH_CHUNK iterations at a time and asks after each chunk: a
    right-structure member 5 % off is solved after the first, so it is asked once. With a
    predicate that never holds, the chunks end where one long run converges (they do not start
    it again and again: that made a 3 s polish take 25 s) and reach the same loss."""
    ds = make_dataset("Sum_Last2", seed=0, n_test=200)
    split = loop.Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 500, 0)
    cfg = TrainConfig()
    xb, yb, var = polish.polish_batch(split, cfg, torch.Generator().manual_seed(0))
    done, asked = polish.solves(split, cfg, 1e-7), []

    def until(member) -> bool:
        asked.append(1)
        return done(member)

    m, _cfg, _spec = sum_last2_model(ds)
    with torch.no_grad():
        m.layers[0]["mlp"].d[0, 0] *= 1.05
    assert not done(m)
    out, _end = polish.lbfgs(m, xb, yb, var, cfg, 300, until=until)
    assert done(out) and len(asked) == 1

    def off() -> DiscreteTransformer:
        m, _cfg, _spec = sum_last2_model(ds)
        with torch.no_grad():
            m.layers[0]["mlp"].d[0, 0] *= 1.05
        return m

    asked.clear()
    _m, chunked = polish.lbfgs(off(), xb, yb, var, cfg, 300, until=lambda member: bool(asked.append(1)))
    _m, whole = polish.lbfgs(off(), xb, yb, var, cfg, 300)
    assert 1 <= len(asked) < 300 // polish.POLISH_CHUNK - 1
    assert chunked <= whole + 1e-12


def test_trials_come_only_below_the_threshold_each_at_half_the_last_and_at_most_max_times() -> None:
    t = polish.Trials(TrainConfig(trial_polish_nmse=1e-3, trial_polish_max=2))
    assert [t.due(v) for v in (5e-3, float("nan"), 8e-4, 6e-4, 4e-4, 1e-5, 1e-9)] == [
        False,
        False,
        True,
        False,
        True,
        False,
        False,
    ]
    off = polish.Trials(TrainConfig(trial_polish_nmse=0.0))  # 0 = off, even for a perfect member
    assert not off.due(1e-3) and not off.due(0.0)


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


@pytest.fixture(scope="module")
def hand_result() -> TrainResult:
    ds = make_dataset("Sum_Last2", seed=0, n_test=1000)
    model, cfg, spec = sum_last2_model(ds)
    return as_train_result(ds, model, cfg, spec)


@pytest.fixture(scope="module")
def hand_program(hand_result: TrainResult) -> Program:
    return dtx.extract(hand_result)


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


def test_graph_reads_the_selectors(hand_result: TrainResult) -> None:
    g = read_graph(hand_result.model)
    assert g.variable_names == ("x", "pos", "one", "L0.H0", "L0.M0", "L0.M1")
    assert [(m.key, m.reads) for m in g.modules] == [("L0.H0", (1, 1, 0)), ("L0.M0", (0, 3)), ("L0.M1", (2, 2))]
    assert g.readout == (4,)
    assert [m.key for m in g.live()] == ["L0.H0", "L0.M0"]


def test_hand_built_model_extracts_to_the_known_program(hand_program: Program, hand_result: TrainResult) -> None:
    p = hand_program
    assert p.verified, p.verification.lines()
    body = p.source[p.source.index("def program") :]
    assert "prev1_x = shift(x, 1)" in body
    assert "y = [a + b for a, b in zip(x, prev1_x)]" in body
    assert [n.key for n in p.ir.nodes] == ["L0.H0", "L0.M0"]
    head, mlp = p.ir.nodes
    assert head.hypothesis == make_hypothesis("shift", c=1) and head.accepted and head.n_queries >= 5000
    assert mlp.source == "x + prev1_x" and mlp.exact and mlp.max_error < 1e-4
    assert p.verification.test.n == 1000 and p.verification.longer.T == 20 and p.verification.longer.passed
    assert p.run([5, 7, 1]) == [5, 12, 8]
    x = hand_result.dataset.x_test[:64]
    np.testing.assert_allclose(p.run_batch(x), hand_result.predict(x), atol=1e-3)
    assert "L0.M0 (grid)" in p.sr_tables
    assert p.verify().verified
    # A different dataset: its test split, and (a file) no longer sequences.
    ds = hand_result.dataset
    other = Dataset(
        "mine", "discrete", ds.x_train[:5], ds.y_train[:5], ds.x_test[:50], ds.y_test[:50], ("x",), ("y",), "f.npz"
    )
    v = p.verify(other)
    assert v.verified and v.test.n == 50 and v.longer is None and "data file" in v.longer_note


def test_extraction_is_deterministic(hand_result: TrainResult, hand_program: Program) -> None:
    assert dtx.extract(hand_result).source == hand_program.source


def test_program_runs_standalone_without_the_package(hand_program: Program, tmp_path: Path) -> None:
    path, vpath = hand_program.save(tmp_path)
    doc = json.loads(vpath.read_text())
    assert doc["verified"] is True and doc["kind"] == "discrete" and doc["test"]["n"] == 1000
    assert doc["longer"]["available"] and doc["longer"]["T"] == 20
    code = (
        "import runpy, sys\n"
        f"m = runpy.run_path({str(path)!r})\n"
        "print(m['program']([1, 2, 3]))\n"
        "assert not any(k.startswith('discrete_transformer') for k in sys.modules)\n"
        "assert 'numpy' not in sys.modules\n"
        "import numpy as np\n"
        "print(m['run_batch'](np.array([[[1.0], [2.0], [3.0]]])).ravel().tolist())\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[1, 3, 5]", "[1.0, 3.0, 5.0]"]


def test_trace_gives_every_live_variable(hand_program: Program) -> None:
    X = np.array([[[1.0], [2.0], [4.0]]])
    env = trace(hand_program.ir, X)
    np.testing.assert_array_equal(env[3], [[0.0, 1.0, 2.0]])  # prev1_x
    np.testing.assert_array_equal(env[4], [[1.0, 3.0, 6.0]])  # y


def _sabotage_first_mlp(monkeypatch, on_first=lambda: None) -> None:
    """Put a wrong candidate (`u0`) first in the first MLP's alternatives, calling `on_first` then."""
    original = mlps.MLPCharacteriser.alternatives

    def sabotaged(self, m, full=False):
        alts = original(self, m, full)
        if not getattr(self, "_sabotaged", False):
            self._sabotaged = True
            on_first()
            a = alts[0]
            alts.insert(
                0,
                mlps.MLPAlt(
                    a.inputs,
                    "u0",
                    "u0",
                    "u0",
                    1,
                    1.0,
                    99.0,
                    True,
                    a.tolerance,
                    a.integer_target,
                    "mlp",
                    a.n_samples,
                    "sabotage",
                ),
            )
        return alts

    monkeypatch.setattr(mlps.MLPCharacteriser, "alternatives", sabotaged)


def test_search_recovers_from_a_wrong_first_candidate(hand_result: TrainResult, monkeypatch) -> None:
    """The first MLP candidate is wrong while the model is exact: the search swaps in the next
    one (scored on training sequences) and the program verifies."""
    _sabotage_first_mlp(monkeypatch)
    p = dtx.extract(hand_result, config=ExtractConfig(search_budget=30))
    assert p.verified, p.search_log
    assert p.search_log[0]["try"] == "first candidates" and not p.search_log[0]["verified"]
    assert any("L0.M0 alternative" in row["try"] for row in p.search_log[1:])
    assert "x + prev1_x" in p.source


def test_a_slow_first_build_leaves_the_search_its_whole_budget(hand_result: TrainResult, monkeypatch) -> None:
    """The search's clock starts with the search: on a loaded machine the graph's symbolic
    regressions (bounded by work, not time) take longer, and must not use up the search's time
    (bench35's Add_Mod_3). The first build is made to look 1,000 s long on the search's clock."""
    offset = [0.0]
    _sabotage_first_mlp(monkeypatch, on_first=lambda: offset.__setitem__(0, offset[0] + 1000.0))
    monkeypatch.setattr(search, "time", types.SimpleNamespace(perf_counter=lambda: time.perf_counter() + offset[0]))
    p = dtx.extract(hand_result, config=ExtractConfig(search_budget=30))
    assert offset[0] == 1000.0
    assert p.verified and len(p.search_log) > 1, p.search_log


def test_truth_fit_regresses_the_readout_against_the_targets(hand_result: TrainResult) -> None:
    st = stages(hand_result, hand_result.dataset)
    ir = st.builder.build({})
    mlp = st.graph.module_at(4)
    alts = st.refits.truth_fit(mlp, ir, 0)
    assert alts and alts[-1].fitted_to == "targets" and alts[-1].exact and alts[-1].source == "u0 + u1"


def test_a_model_far_from_the_targets_still_gets_the_readout_refit(hand_result: TrainResult) -> None:
    """The head is right but the MLP computes x + 0.3·prev (test nMSE far above NEAR_NMSE): no
    swaps are tried, but the readout MLP refitted to the true targets over the inputs the
    program computes gives x + prev1_x, and that program verifies."""
    model = copy.deepcopy(hand_result.model)
    mlp = model.layers[0]["mlp"]
    with torch.no_grad():
        mlp.d[0, 0, 1] *= 0.3
    far = dataclasses.replace(hand_result, model=model)
    p = dtx.extract(far)
    assert p.model_score["nmse"] > record.NEAR_NMSE and not p.model_score["passes"]
    assert p.verified, p.search_log
    assert not p.search_log[0]["verified"]
    assert not any("alternative" in row["try"] for row in p.search_log)
    assert any("true targets" in row["try"] for row in p.search_log)
    assert "refitted to the task targets" in p.source and "x + prev1_x" in p.source


def test_extract_rejects_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="run directory not found"):
        dtx.extract(tmp_path / "missing")
    with pytest.raises(RunDirError, match="not a run directory"):
        dtx.extract(tmp_path)
    with pytest.raises(TypeError):
        dtx.extract(42)


# ============================================================================ helpers vs hypothesis semantics


def _one_head_ir(h, q: Variable, k: Variable, v: Variable) -> ProgramIR:
    x = Variable("x", 0, "input", "x")
    out = Variable("L0.H0", 3, "attn", "routed")
    head = AttentionNode("L0.H0", out, q, k, v, h, 1.0, 0.999, 1000, 1.0, True)
    pv = Provenance("task:test", "test", "discrete", 0, 0, 6, ("x",), ("y",))
    return ProgramIR((x,), (head,), (OutputNode(0, "y", out),), pv)


@pytest.mark.parametrize(
    "h",
    [
        make_hypothesis("self"),
        make_hypothesis("shift", c=2),
        make_hypothesis("first"),
        make_hypothesis("prefix_mean", include_bos=False),
        make_hypothesis("prefix_mean", include_bos=True),
        make_hypothesis("window_mean", c=2, include_bos=True),
        make_hypothesis("window_mean", c=1),
        make_hypothesis("prefix_argmax", tie="average", include_bos=True),
        make_hypothesis("prefix_argmin", tie="latest", include_bos=False),
        make_hypothesis("prefix_argmax", tie="earliest", include_bos=True),
        make_hypothesis("match", tie="latest"),
        make_hypothesis("match", tie="earliest"),
        make_hypothesis("match_all"),
        make_hypothesis("lookup", table=[[0.0, 1, 1], [1.0, 2, "bos"], [2.0, 4, 3]], default=0),
    ],
    ids=str,
)
@pytest.mark.parametrize("value", ["x", "pos"])
@pytest.mark.parametrize("key", ["x", "pos"])
def test_rendered_helpers_route_like_the_hypothesis(h, value: str, key: str) -> None:
    """program() and run_batch() compute Σ_j P[i, j]·v[j] with the hypothesis's own pattern P over
    the stream (BOS slot: x = 0, pos = -1), for values and keys with either BOS value."""
    x = Variable("x", 0, "input", "x")
    pos = Variable("pos", 1, "pos", "pos", -1.0)
    var = {"x": x, "pos": pos}
    src = codegen.render(_one_head_ir(h, x, var[key], var[value]))
    mod = load_module(src)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, (40, 6, 1)).astype(float)
    n, T = X.shape[:2]
    xs = np.concatenate([np.zeros((n, 1)), X[:, :, 0]], axis=1)  # stream rows, BOS first
    ps = np.broadcast_to(np.arange(-1, T, dtype=float), (n, T + 1))
    stream = {"x": xs, "pos": ps}
    if h.name == "self":
        want = stream[value][:, 1:]
    else:
        P = h.pattern(xs, stream[key], T + 1)
        want = np.einsum("nij,nj->ni", P, stream[value])[:, 1:]
    got = mod.run_batch(X)[:, :, 0]
    np.testing.assert_allclose(got, want, atol=1e-12)
    py = np.array([mod.program(list(r)) for r in X[:, :, 0]], dtype=float)
    np.testing.assert_allclose(py, want, atol=1e-12)


def test_constant_and_position_expressions_render() -> None:
    x = Variable("x", 0, "input", "x")
    pos = Variable("pos", 1, "pos", "pos", -1.0)
    c = Variable("L0.M0", 3, "mlp", "three")
    y = Variable("L0.M1", 4, "mlp", "y")
    k = MLPNode("L0.M0", c, (x,), "3", "np.full(np.shape(x), 3)", "3", 1, 0.0, 0.0, True, 1e-6, True, "mlp", 5)
    m = MLPNode(
        "L0.M1", y, (pos, c), "pos % 2 + three", "np.mod(pos, 2) + three", "", 5, 0.0, 0.0, True, 1e-6, True, "mlp", 5
    )
    pv = Provenance("task:test", "test", "discrete", 0, 0, 6, ("x",), ("y",))
    ir = ProgramIR((x,), (k, m), (OutputNode(0, "y", y),), pv, uses_pos=True)
    mod = load_module(codegen.render(ir))
    assert mod.program([7, 7, 7, 7]) == [3, 4, 3, 4]
    np.testing.assert_array_equal(mod.run_batch(np.zeros((2, 4, 1)))[:, :, 0], [[3, 4, 3, 4]] * 2)


# ============================================================================ a data-file run, through the CLI


def test_cli_extract_on_a_data_file_run(tmp_path: Path) -> None:
    """Hostile channel names survive into a program that runs; longer sequences are "not
    available" for a file; a run whose file has gone fails with one line and writes nothing."""
    from conftest import tiny_train
    from typer.testing import CliRunner

    from discrete_transformer.cli import app
    from discrete_transformer.tasks import save_npz

    base = make_dataset("Current_Number", seed=0, n_test=300)
    evil_in, evil_out = 'x"""\nimport os #', "y\u2028out"
    ds = Dataset(
        "evil",
        "discrete",
        base.x_train[:600],
        base.y_train[:600],
        base.x_test,
        base.y_test,
        (evil_in,),
        (evil_out,),
        "unused",
    )
    data = tmp_path / "evil data.npz"
    save_npz(ds, data)
    run = tmp_path / "run"
    dtx.train(str(data), out=run, training=tiny_train(restarts=1), progress=False)
    runner = CliRunner(env={"COLUMNS": "200"})
    res = runner.invoke(app, ["extract", str(run)])
    assert res.exit_code == 0, res.output
    src = (run / "program.py").read_text()
    doc = json.loads((run / "verification.json").read_text())
    assert doc["longer"]["available"] is False and "data file" in doc["longer"]["note"]
    mod = load_module(src)
    assert _imports(src) <= {"math", "numpy"}
    fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "program")
    assert [a.arg for a in fn.args.args] == ["x_import_os"]
    assert codegen.escape_text(evil_in) in mod.__doc__
    out = mod.program([1.0, 2.0, 3.0])
    assert isinstance(out, list) and len(out) == 3
    if doc["verified"]:
        assert out == [1.0, 2.0, 3.0]
    # The data file has moved: one red line, exit 2, nothing rewritten.
    data.rename(tmp_path / "moved.npz")
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    res = runner.invoke(app, ["extract", str(run)])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cannot reload" in lines[0], res.stderr
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    # With the data given explicitly, extraction works again.
    from discrete_transformer.tasks import load_file

    p = dtx.extract(run, dataset=load_file(tmp_path / "moved.npz"))
    assert p.source.split("def program")[1] == src.split("def program")[1]


def test_integer_valued_expressions_with_float_noise_are_rounded() -> None:
    x = Variable("x", 0, "input", "x")
    mean = Variable("L0.H0", 3, "attn", "prefix_mean_x")
    pos = Variable("pos", 1, "pos", "pos", -1.0)
    y = Variable("L0.M0", 4, "mlp", "y")
    head = AttentionNode("L0.H0", mean, pos, pos, x, make_hypothesis("prefix_mean"), 1.0, 0.999, 1000, 1.0, True)
    mlp = MLPNode(
        "L0.M0",
        y,
        (mean, pos),
        "prefix_mean_x * (pos + 1)",
        "prefix_mean_x * (pos + 1)",
        "",
        5,
        0.0,
        0.4,
        True,
        1e-6,
        True,
        "mlp",
        100,
        rounded=True,
    )
    pv = Provenance("task:Sum_All", "Sum_All", "discrete", 0, 0, 10, ("x",), ("y",))
    src = codegen.render(ProgramIR((x,), (head, mlp), (OutputNode(0, "y", y),), pv, uses_pos=True))
    assert "y = [round(a * (b + 1)) for a, b in zip(prefix_mean_x, pos)]" in src
    mod = load_module(src)
    xs = [0.1 * 3, 7, 0.1 * 7, 11, 5]
    assert mod.program([float(v) for v in [3, 7, 9, 11, 5]]) == [3, 10, 19, 30, 35]
    assert all(isinstance(v, int) for v in mod.program(xs))
    np.testing.assert_array_equal(mod.run_batch(np.array([[[3.0], [7.0], [9.0]]]))[0, :, 0], [3, 10, 19])


# ============================================================================ a summing head


def test_a_summing_head_extracts_to_a_prefix_sum_program() -> None:
    """attention_sum: a hand-set head keyed on `one` that sums x is Sum_All; extraction reads
    its aggregate choice, accepts prefix_mean in its summing form and the program verifies."""
    ds = make_dataset("Sum_All", seed=0, n_test=1000)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    cfg = ModelConfig(n_layers=1, n_heads=1, n_mlps=1, attention_sum=True)
    m = DiscreteTransformer(cfg, spec, population=1, seed=0)
    ix = {n: i for i, n in enumerate(m.variable_names)}
    with torch.no_grad():
        attn = m.layers[0]["attn"]
        attn.selector.theta.zero_()
        for role, var in enumerate(("one", "one", "x")):
            attn.selector.theta[0, 0, role, ix[var]] = 10.0
        attn.w_score[0, 0] = torch.tensor([0.0, 1.0, 0.0])
        attn.aggregate.theta[0, 0] = torch.tensor([0.0, 10.0])
        m.readout.theta.zero_()
        m.readout.theta[0, 0, ix["L0.H0"]] = 10.0
    m.eval()
    assert read_graph(m).modules[0].aggregate == "sum"
    res = as_train_result(ds, m, cfg, spec)
    p = dtx.extract(res)
    assert p.verified, p.verification.lines()
    assert 'prefix_sum_x = prefix_mean(x, agg="sum")' in p.source
    assert p.run([1, 0, 1, 1]) == [1, 1, 2, 3]


# ============================================================================ readout gain


@pytest.mark.parametrize(
    "g, want",
    [
        (0.0099998535, 0.01),
        (1.00003, 1.0),
        (2.5, 2.5),
        (-0.33333, -0.3333),
        (0.19378103, 0.1938),
        (0.1937, 0.1937),
        (0.0, 0.0),
    ],
)
def test_a_learned_readout_gain_is_written_with_the_fewest_digits(g: float, want: float) -> None:
    assert mlps.simple_gain(g) == want


def test_a_readout_gain_becomes_an_output_line_and_the_program_verifies(hand_result: TrainResult) -> None:
    """Readout = 2.9 · shift(x, 1) (a hand-set, slightly wrong gain on the head) on data whose
    targets are 3·prev(x): the program refits the gain against the training targets (3.0),
    scales the routed value in one output line and verifies."""
    base = hand_result.dataset
    prev = lambda x: np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)  # noqa: E731
    ds = dataclasses.replace(
        base, y_train=3 * prev(base.x_train), y_test=3 * prev(base.x_test), name="three_prev", source="task:three_prev"
    )
    cfg = dataclasses.replace(hand_result.model_config, readout_gain=True)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    model = DiscreteTransformer(cfg, spec, population=1, seed=0)
    state = {k: v for k, v in hand_result.model.state_dict().items()}
    state["readout_gamma"] = torch.zeros_like(model.readout_gamma)
    model.load_state_dict(state)
    ix = model.variable_names.index("L0.H0")
    with torch.no_grad():
        model.ms.copy_(hand_result.model.ms)
        model.readout.theta.zero_()
        model.readout.theta[0, 0, ix] = 10.0
        rms = float(model.ms[0, ix].sqrt())
        model.readout_gamma[0, 0, ix] = math.log(2.9 * rms / spec.target_rms)  # gain 2.9
    run = dataclasses.replace(
        hand_result, dataset=ds, model=model.eval(), model_config=cfg, spec=spec, source=ds.source
    )
    assert read_graph(model).gain(0) == pytest.approx(2.9)
    p = dtx.extract(run, dataset=ds)
    assert p.verified, p.verification.lines()
    body = p.source[p.source.index("def program") :]
    assert "y = [3.0 * a for a in prev1_x]" in body, body
    assert "y = 3.0 * prev1_x" in body
    assert p.ir.outputs[0].gain == 3.0 and p.ir.to_dict()["outputs"][0]["gain"] == 3.0
    X = ds.x_test[:50]
    np.testing.assert_allclose(p.run_batch(X), 3 * prev(X))


def test_the_search_moves_only_on_a_real_improvement() -> None:
    """Equivalent programs score alike up to float rounding: that is not an improvement."""
    base = (0.0, -6.476512478323215e-06)
    assert not search.better((0.0, -6.476512478323192e-06), base)
    assert search.better((0.0, -6.0e-06), base)
    assert search.better((1.0, -1.0), (0.9, -1e-9))  # a higher pass rate wins whatever the nMSE
    assert not search.better((0.9, -1e-12), (1.0, -1.0))


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

    ir = _ir()
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
