"""Extraction (DESIGN §4) without training: the IR and its names, rendering (a hand-written IR of
Sum_Last2 = x + shift(x, 1)), the verification rules, and the rendered helpers against the
hypotheses' own patterns. The pipeline on a hand-built model: test_extract_pipeline.py."""

from __future__ import annotations

import ast
import keyword
import re

import numpy as np
import pytest
from extract_helpers import imported_modules, sum_last2_ir

from discrete_transformer.extraction import codegen, mlps
from discrete_transformer.extraction.graph import (
    RESERVED_NAMES,
    AttentionNode,
    MLPNode,
    OutputNode,
    ProgramIR,
    Provenance,
    Variable,
    rename_names,
    sanitize,
    source_names,
    unique_name,
)
from discrete_transformer.extraction.hypotheses import make_hypothesis
from discrete_transformer.extraction.pipeline import load_module
from discrete_transformer.extraction.verify import CONTINUOUS_NMSE, score, verify_program

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


def test_dead_code_elimination_follows_what_nodes_read() -> None:
    ir = sum_last2_ir()
    assert [n.key for n in ir.nodes] == ["L0.H0", "L0.M0"]
    head = ir.nodes[0]
    assert [v.name for v in head.reads] == ["x"]  # a shift reads neither its query nor its key


def test_render_runs_and_matches_run_batch() -> None:
    src = codegen.render(sum_last2_ir(), ["verified: yes -- test: 100.00%"])
    compile(src, "program.py", "exec")
    assert imported_modules(src) <= {"math", "numpy"}
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
    assert codegen.render(sum_last2_ir(), ["verified: yes -- test: 100.00%"]) == src  # deterministic


def test_hostile_names_are_sanitised_in_code_and_escaped_in_the_docstring() -> None:
    bad_in, bad_out, bad_src = 'x"""\nimport os', "class\u2028", 'data/"""evil\n.npz'
    src = codegen.render(sum_last2_ir(bad_in, bad_out, bad_src))
    mod = load_module(src)
    assert mod.program([1, 2]) == [1, 3]
    tree = ast.parse(src)
    assert ast.get_docstring(tree, clean=False) == mod.__doc__
    assert codegen.escape_text(bad_src) in mod.__doc__ and codegen.escape_text(bad_in) in mod.__doc__
    assert mod.__doc__.count("\n") == src.split('"""')[1].count("\n")  # no line was injected
    assert imported_modules(src) <= {"math", "numpy"}
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
