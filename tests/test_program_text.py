"""The generated program as a reader sees it (issue #32): the provenance header lists the
non-default configuration and a hash of the whole; an evidence comment says what was compared
with what and why the difference is harmless; in a notebook a Program shows its highlighted
source and the verdict table."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re

from discrete_transformer.config import ModelConfig, TrainConfig, to_dict
from discrete_transformer.extraction import codegen
from discrete_transformer.extraction.graph import (
    AttentionNode,
    MLPNode,
    OutputNode,
    ProgramIR,
    Provenance,
    Variable,
)
from discrete_transformer.extraction.hypotheses import make_hypothesis
from discrete_transformer.extraction.program import Program, load_module
from discrete_transformer.extraction.verify import SplitScore, Verification

X = Variable("x", 0, "input", "x")
PREV = Variable("L0.H0", 3, "attn", "prev1_x")
POS = Variable("pos", 1, "pos", "pos", -1.0)
Y = Variable("L0.M0", 5, "mlp", "y")


def _mlp(source: str = "x + prev1_x", **kw) -> MLPNode:
    """An MLP node y = source(x, prev1_x); fields as keywords (max_error, exact, ...)."""
    d = dict(
        key="L0.M0",
        out=Y,
        inputs=(X, PREV),
        source=source,
        numpy_source=source,
        expression=source,
        size=3,
        mse=0.0,
        max_error=0.3,
        exact=True,
        tolerance=1e-6,
        integer_target=True,
        fitted_to="mlp",
        n_samples=99345,
    )
    d.update(kw)
    return MLPNode(**d)


def _ir(mlp: MLPNode | None = None, model: dict | None = None, train: dict | None = None, source: str = "task:t"):
    head = AttentionNode("L0.H0", PREV, POS, POS, X, make_hypothesis("shift", c=1), 1.0, 0.9994, 5000, 1.0, True)
    model = to_dict(ModelConfig()) if model is None else model
    train = to_dict(TrainConfig()) if train is None else train
    pv = Provenance(source, "t", "discrete", 0, 0, 10, ("x",), ("y",), model, train, "0.1.0", {"exact": 1.0})
    return ProgramIR((X,), (head, mlp or _mlp()), (OutputNode(0, "y", Y),), pv)


def _header(src: str) -> list[str]:
    return src.split('"""')[1].splitlines()


# ============================================================================ the header


def test_header_lists_only_non_default_fields_and_a_hash() -> None:
    model = to_dict(dataclasses.replace(ModelConfig(), attention_patterns=("shifts", "prefix")))
    head = _header(codegen.render(_ir(model=model)))
    assert "model: defaults except attention_patterns=('shifts', 'prefix')" in head
    assert "training: defaults" in head
    h = codegen.config_hash(model, to_dict(TrainConfig()))
    assert re.fullmatch(r"[0-9a-f]{12}", h)
    doc = {"model_config": model, "train_config": to_dict(TrainConfig())}  # as model.json holds them
    assert h == hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
    assert f"full configuration: the run directory's model.json (sha256 {h} of its configs)" in head
    # another configuration, another hash; the same one, the same hash (JSON: tuples are lists)
    assert codegen.config_hash(to_dict(ModelConfig()), to_dict(TrainConfig())) != h
    assert codegen.config_hash({"a": [1, 2]}, {}) == codegen.config_hash({"a": (1, 2)}, {})


def test_header_names_unknown_fields_and_escapes_strings() -> None:
    head = "\n".join(_header(codegen.render(_ir(model={"n_layers": 1}, train={"estimator": 'a"b', "new": 3}))))
    assert "model: defaults except n_layers=1" in head
    assert "training: defaults except estimator='a\\x22b', new=3" in head


# ============================================================================ evidence comments


def test_evidence_says_why_an_error_is_harmless() -> None:
    ev = codegen.evidence
    assert ev(_mlp()) == (
        "MLP L0.M0: x + prev1_x, within 0.3 of the MLP's output, exact after rounding to integers "
        "on all n=99345 samples"
    )
    assert ev(_mlp(max_error=0.0)) == "MLP L0.M0: x + prev1_x, equal to the MLP's output on all n=99345 samples"
    cont = _mlp(integer_target=False, max_error=0.003, tolerance=0.02, n_samples=100)
    assert ev(cont) == (
        "MLP L0.M0: x + prev1_x, within 0.003 of the MLP's output (tolerance 0.02, set by the model's own "
        "error) on all n=100 samples"
    )
    bad = _mlp(integer_target=False, exact=False, max_error=0.5, tolerance=0.02, n_samples=100)
    assert "NOT within tolerance 0.02" in ev(bad)
    assert "NOT exact after rounding to integers" in ev(_mlp(exact=False, max_error=0.6))
    t = ev(_mlp(fitted_to="targets", max_error=0.4))
    assert t.startswith("MLP L0.M0, refitted to the task targets: x + prev1_x, within 0.4 of the targets")
    assert "max error" not in ev(_mlp()) + ev(cont) + t
    # fitted only where a head reads the MLP (mlps.read_rows): the comment says where it holds
    assert ev(_mlp(max_error=0.0, where="L1.H0")) == (
        "MLP L0.M0: x + prev1_x, equal to the MLP's output at the keys L1.H0 read on all n=99345 samples"
    )


def test_rendered_comment_is_one_line() -> None:
    src = codegen.render(_ir())
    line = next(ln for ln in src.splitlines() if ln.lstrip().startswith("y = "))
    assert line.endswith(
        "# MLP L0.M0: x + prev1_x, within 0.3 of the MLP's output, exact after rounding to "
        "integers on all n=99345 samples"
    )


# ============================================================================ the notebook view


def _program(source_name: str = "task:<b>t</b>") -> Program:
    ir = _ir(_mlp("(1 if x < prev1_x else 0)"), source=source_name)
    src = codegen.render(ir, ["verified: yes"])
    test = SplitScore(10000, 10, "discrete", 0.99996, 0.0, True)
    ver = Verification("discrete", True, test, None, "data file: no rule", 200, True)
    return Program(src, ir, ver, {}, {}, None, [], {}, 0.0)  # type: ignore[arg-type]


def test_repr_html_shows_the_highlighted_source_and_the_verdict() -> None:
    p = _program()
    assert load_module(p.source).program([3, 1, 2]) == [0, 1, 0]
    out = p._repr_html_()
    assert "program(x)" in out and "verified" in out and "NOT verified" not in out
    assert "style=" in out  # inline-styled highlighting (no stylesheet needed)
    assert "<b>t</b>" not in out and "&lt;b&gt;t&lt;/b&gt;" in out  # user text is escaped
    text = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert "(1 if a < b else 0)" in text  # the source, with its `<`, reads back
    for cell in ("split", "exact", "passes", "test", "10000", "99.99%", "not available: data file: no rule"):
        assert cell in text, cell
    assert "100.00%" not in text  # 99.996% does not round up to all
    assert repr(p).startswith("Program(verified=True")
