"""The polish (training/polish.py) on the Sum_Last2 model set by hand: the lean start, the trial
polish, its chunks and when trials are due."""

from __future__ import annotations

import torch
from extract_helpers import sum_last2_model

from discrete_transformer.config import TrainConfig
from discrete_transformer.model import DiscreteTransformer
from discrete_transformer.tasks import make_dataset
from discrete_transformer.training import loop, polish


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
