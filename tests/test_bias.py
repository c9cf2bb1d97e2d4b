"""Inductive-bias knobs, `--set` overrides and the REINFORCE estimator (all fast: no long training)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import tiny_model, tiny_train
from typer.testing import CliRunner

from discrete_transformer.cli import app
from discrete_transformer.config import ModelConfig, TrainConfig, from_dict, to_dict
from discrete_transformer.extraction.pipeline import ExtractConfig
from discrete_transformer.extraction.symbolic import SRConfig, symbolic_regression
from discrete_transformer.model import (
    DataSpec,
    DiscreteTransformer,
    SelectMode,
    Selector,
)
from discrete_transformer.model.attention import hard_pattern
from discrete_transformer.overrides import (
    OverrideError,
    configs_from_overrides,
    parse_overrides,
)
from discrete_transformer.training import reinforce
from discrete_transformer.training.loop import HARD

SPEC = DataSpec(("x",), ("y",), (3.0,), 5.0, 6)


def _x() -> torch.Tensor:
    return torch.arange(2 * 6, dtype=torch.float32).view(2, 6, 1) % 7 - 3


# ----------------------------------------------------------------------------- defaults unchanged


def test_default_forward_is_unchanged_by_the_knobs():
    """Fingerprint of a default model's soft and hard forward, measured on the commit before the
    knobs existed (bb89e54): the default path must stay bit-for-bit the same. (DESIGN's head
    without the fixed-pattern choice, which became a default later and adds a selector.)"""
    m = DiscreteTransformer(ModelConfig(attention_patterns=()), SPEC, population=3, seed=11)
    g = torch.Generator().manual_seed(5)
    soft = m(_x(), SelectMode(tau=0.7, per_example=True, generator=g, batch=2), 0.5).double()
    hard = m.eval()(_x(), HARD, 0.02).double()
    assert soft.sum().item() == pytest.approx(18.223969247192144, rel=1e-6)
    assert soft.abs().sum().item() == pytest.approx(50.23316362127662, rel=1e-6)
    assert hard.sum().item() == -15.0 and hard.abs().sum().item() == 57.0


def test_default_selectors_carry_no_mask():
    m = DiscreteTransformer(ModelConfig(), SPEC, population=1, seed=0)
    assert all(s.allowed is None for s in m.selectors().values())
    assert not any("allowed" in k for k in m.state_dict())  # masks are derived, never saved


# ----------------------------------------------------------------------------- routing / masks


def _push_towards(model: DiscreteTransformer, var: str) -> None:
    """Make every selector prefer `var` strongly: a mask must still win."""
    i = model.variable_names.index(var)
    with torch.no_grad():
        for s in model.selectors().values():
            s.theta[..., i] = 50.0


def test_positional_routing_restricts_query_and_key_to_position_variables():
    m = DiscreteTransformer(ModelConfig(attention_routing="positional"), SPEC, population=2, seed=0)
    _push_towards(m, "x")
    names = m.variable_names
    allowed = {names.index("pos"), names.index("one")}
    for li, layer in enumerate(m.layers):
        ch = m.choices()[f"L{li}.attn"]  # (P, H, 3)
        assert set(ch[..., :2].flatten().tolist()) <= allowed
        assert set(ch[..., 2].flatten().tolist()) == {names.index("x")}  # v is unrestricted
        w = layer["attn"].selector.weights(SelectMode(tau=1.0, per_example=True, batch=4))
        xi = names.index("x")
        assert torch.all(w[..., :2, xi] == 0) and torch.all(w[..., 2, xi] > 0.5)


def test_forbid_reads_masks_sampling_argmax_and_hardening():
    cfg = ModelConfig(forbid_reads=(("L*.M*", "x"), ("readout", "pos")))
    m = DiscreteTransformer(cfg, SPEC, population=2, seed=0)
    _push_towards(m, "x")
    xi = m.variable_names.index("x")
    for li, layer in enumerate(m.layers):
        sel = layer["mlp"].selector
        assert not torch.any(m.choices()[f"L{li}.mlp"] == xi)
        assert torch.all(sel.weights(SelectMode(tau=0.5, per_example=True, batch=3))[..., xi] == 0)
        sel.freeze()  # hardening freezes at the masked argmax
        assert torch.all(sel.weights(SelectMode(tau=0.5))[..., xi] == 0)
        assert torch.isfinite(sel.entropy()).all()
    _push_towards(m, "pos")
    assert m.choices()["readout"][0, 0] != m.variable_names.index("pos")
    assert "mlp(x" not in m.describe() and ", x)" not in m.describe()
    m(_x(), SelectMode(tau=0.5, per_example=True, batch=2), 0.5).sum().backward()  # finite gradients
    assert all(torch.isfinite(s.theta.grad).all() for s in m.selectors().values())


def test_forbid_reads_errors():
    with pytest.raises(ValueError, match="no variable left"):
        DiscreteTransformer(ModelConfig(forbid_reads=(("readout", "*"),)), SPEC)
    with pytest.raises(ValueError, match="matches no"):
        DiscreteTransformer(ModelConfig(forbid_reads=(("L9.M0", "x"),)), SPEC)
    with pytest.raises(ValueError, match="pairs"):
        ModelConfig(forbid_reads=(("L0.M0",),))
    with pytest.raises(ValueError, match="attention_routing"):
        ModelConfig(attention_routing="sideways")


def test_no_averaging_gives_one_hot_patterns_latest_tie():
    scores = torch.tensor([[0.0, 5.0, 5.0, 1.0], [2.0, float("-inf"), float("-inf"), float("-inf")]])
    avg = hard_pattern(scores)
    one = hard_pattern(scores, "latest")
    assert torch.allclose(avg[0], torch.tensor([0.0, 0.5, 0.5, 0.0]))
    assert torch.equal(one[0], torch.tensor([0.0, 0.0, 1.0, 0.0]))  # most recent of the tie
    assert torch.equal(one[1], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    m = DiscreteTransformer(ModelConfig(attention_averaging=False), SPEC, population=2, seed=3).eval()
    with torch.no_grad():
        for layer in m.layers:
            layer["attn"].w_score.zero_()  # every key ties: averaging would spread the weight
        cache: dict[str, torch.Tensor] = {}
        m(_x(), HARD, 0.02, cache)
    pats = [v for k, v in cache.items() if k.endswith(".pattern")]
    assert pats
    for p in pats:
        assert torch.all(p.amax(-1) == 1.0) and torch.allclose(p.sum(-1), torch.ones(()))
        assert torch.all(p[..., -1, -1] == 1.0)  # all tied: the latest key (itself)


# ----------------------------------------------------------------------------- SR grammar


def test_sr_operator_restriction_excludes_abs():
    X = np.arange(-6, 7, dtype=float).reshape(-1, 1)
    y = np.abs(X[:, 0])
    full = symbolic_regression(X, y, ("u0",), 1e-9, config=SRConfig(time_budget=2.0), integer_target=True)
    assert full.best.exact and "abs" in full.best.source
    ops = tuple(o for o in SRConfig().operators if o != "abs")
    no_abs = symbolic_regression(
        X, y, ("u0",), 1e-9, config=SRConfig(time_budget=2.0, operators=ops), integer_target=True
    )
    assert all("abs" not in c.source for c in no_abs.front)
    assert no_abs.best.exact  # max(u0, -u0) or an equivalent


def test_extract_config_rejects_unknown_operator():
    with pytest.raises(ValueError, match="unknown operator"):
        ExtractConfig(sr_operators=("add", "cosh"))
    assert ExtractConfig(sr_operators=["add"]).sr_operators == ("add",)


# ----------------------------------------------------------------------------- --set


def test_set_parsing():
    v = parse_overrides(
        [
            "model.mlp_arity=3",
            "model.forbid_reads=L0.*:x,readout:pos",
            "train.time_limit=none",
            "model.attention_averaging=false",
            "extract.sr_operators=add,sub",
            "train.estimator=reinforce",
        ]
    )
    assert v["model"] == {
        "mlp_arity": 3,
        "forbid_reads": (("L0.*", "x"), ("readout", "pos")),
        "attention_averaging": False,
    }
    assert v["train"] == {"time_limit": None, "estimator": "reinforce"}
    assert v["extract"] == {"sr_operators": ("add", "sub")}
    m, t, e = configs_from_overrides(["model.n_layers=1"])
    assert m == ModelConfig(n_layers=1) and t is None and e is None


@pytest.mark.parametrize(
    "item, msg",
    [
        ("model.mlp_arity", "section.field=value"),
        ("foo.x=1", "unknown section"),
        ("model.arity=3", "no field 'arity'"),
        ("model.mlp_arity=three", "invalid literal"),
        ("model.mlp_arity=0", "must be >= 1"),
        ("model.attention_averaging=maybe", "true or false"),
        ("model.attention_routing=sideways", "expected one of"),
        ("model.forbid_reads=L0.M0", "module:variable"),
        ("extract.sr_operators=add,cosh", "unknown operator"),
    ],
)
def test_set_errors(item, msg):
    with pytest.raises(OverrideError, match=msg):
        configs_from_overrides([item])


def test_cli_set_error_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "Prev1", "--out", str(out), "--set", "model.arity=3"])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "arity" in lines[0]
    assert not out.exists()
    res = CliRunner().invoke(app, ["extract", str(tmp_path), "--set", "model.mlp_arity=3"])
    assert res.exit_code == 2


def test_cli_train_with_set_saves_the_knobs(tmp_path, monkeypatch):
    from discrete_transformer import api

    monkeypatch.setattr(api, "TrainConfig", lambda: tiny_train(restarts=1))
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "Prev1",
            "--out",
            str(out),
            "--set",
            "model.attention_routing=positional",
            "--set",
            "model.forbid_reads=readout:pos",
            "--set",
            "train.estimator=reinforce",
        ],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "model.json").read_text())
    assert meta["model_config"]["attention_routing"] == "positional"
    assert meta["model_config"]["forbid_reads"] == [["readout", "pos"]]
    assert meta["train_config"]["estimator"] == "reinforce"
    run = api.load_run(out)  # reopened with the same masks
    assert run.model_config.forbid_reads == (("readout", "pos"),)
    assert run.model.readout.allowed is not None


# ----------------------------------------------------------------------------- REINFORCE


def test_reinforce_config_round_trip():
    cfg = TrainConfig(estimator="reinforce", reinforce_baseline_decay=0.8, reinforce_entropy_bonus=0.01)
    assert from_dict(TrainConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg
    mc = ModelConfig(attention_routing="positional", attention_averaging=False, forbid_reads=(("L0.H*", "x"),))
    assert from_dict(ModelConfig, json.loads(json.dumps(to_dict(mc)))) == mc
    with pytest.raises(ValueError):
        TrainConfig(reinforce_baseline_decay=1.0)
    with pytest.raises(ValueError):
        TrainConfig(reinforce_entropy_bonus=-1.0)


def test_score_function_gradient_is_unbiased():
    """3-way choice with fixed losses f: E[∇ surrogate] = ∇ E_p[f] = p ⊙ (f − p·f), whatever the
    baseline. 40 000 samples with a fixed seed; tolerance ≈ 5 standard errors."""
    sel = Selector(1, (), 3)
    with torch.no_grad():
        sel.theta.copy_(torch.tensor([[0.3, -0.2, 0.5]]))
    f = torch.tensor([1.0, 0.2, 2.0])
    p = torch.softmax(sel.theta.detach()[0], -1)
    exact = p * (f - (p * f).sum())
    n = 40_000
    gen = torch.Generator().manual_seed(0)
    onehots, logp = reinforce.sample_choices({"s": sel}, 1.0, n, True, gen)
    freq = onehots["s"][0].mean(0)
    assert torch.allclose(freq, p, atol=0.01)  # the sampler draws from softmax(theta)
    loss = (onehots["s"][0] * f).sum(-1).unsqueeze(0)  # (1, n)
    for b in (0.0, 1.1):
        sel.theta.grad = None
        reinforce.surrogate(loss, logp, torch.tensor([b])).backward(retain_graph=True)
        assert torch.allclose(sel.theta.grad[0], exact, atol=0.03), (b, sel.theta.grad, exact)


def test_score_function_converges_to_the_best_choice():
    sel = Selector(1, (), 3)
    f = torch.tensor([1.0, 0.2, 2.0])
    opt = torch.optim.Adam([sel.theta], lr=0.1)
    gen = torch.Generator().manual_seed(1)
    baseline = torch.tensor([f.mean().item()])
    for _ in range(200):
        onehots, logp = reinforce.sample_choices({"s": sel}, 1.0, 16, True, gen)
        loss = (onehots["s"][0] * f).sum(-1).unsqueeze(0)
        opt.zero_grad()
        reinforce.surrogate(loss, logp, baseline).backward()
        opt.step()
        baseline = 0.9 * baseline + 0.1 * loss.mean()
    assert sel.probs()[0].argmax() == 1 and sel.probs()[0, 1] > 0.9


def test_reinforce_respects_masks_and_trains_weights():
    cfg = ModelConfig(forbid_reads=(("L*.M*", "x"),))
    m = DiscreteTransformer(cfg, SPEC, population=2, seed=0)
    sf = reinforce.ScoreFunction(TrainConfig(estimator="reinforce", reinforce_entropy_bonus=0.01), 2)
    x = _x()
    y = x.roll(1, dims=1)
    mode = SelectMode(tau=torch.ones(2), per_example=True, generator=torch.Generator().manual_seed(0), batch=2)
    onehots, _ = reinforce.sample_choices(m.selectors(), torch.ones(2), 50, True, torch.Generator().manual_seed(0))
    xi = m.variable_names.index("x")
    assert all(torch.all(onehots[f"L{li}.mlp"][..., xi] == 0) for li in range(2))
    loss = sf.backward(m, x, y, torch.ones(1), mode, 0.5)
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    assert all(s.forced is None for s in m.selectors().values())  # sampling is scoped to one pass
    assert any(s.theta.grad is not None and s.theta.grad.abs().sum() > 0 for s in m.selectors().values())
    assert m.layers[0]["mlp"].W.grad is not None
    assert sf.baseline is not None and sf.baseline.shape == (2,)


def test_reinforce_training_runs_end_to_end():
    from discrete_transformer import api

    cfg = dataclasses.replace(tiny_train(restarts=1), estimator="reinforce")
    r = api.train("Prev1", model=tiny_model(), training=cfg, progress=False)
    assert r.train_config.estimator == "reinforce"
    assert any(row["phase"] == "search" for row in r.best.history)


def test_no_averaging_search_forward_is_one_hot_with_soft_gradient():
    m = DiscreteTransformer(ModelConfig(attention_averaging=False), SPEC, population=2, seed=3)
    cache: dict[str, torch.Tensor] = {}
    out = m(_x(), SelectMode(tau=1.0, per_example=True, batch=2), 1.0, cache)
    for k, p in cache.items():
        if k.endswith(".pattern"):
            assert torch.allclose(p.amax(-1), torch.ones(())) and torch.allclose(p.sum(-1), torch.ones(()))
    out.sum().backward()
    assert m.layers[0]["attn"].w_score.grad.abs().sum() > 0  # the soft row still carries gradient
