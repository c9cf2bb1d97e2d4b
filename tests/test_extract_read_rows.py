"""An MLP read only as the value of heads is fitted where those heads read it (mlps.read_rows):
a recording set by hand, where the MLP is x plus an arbitrary table of the position that is 0 at
the first position, and a head reads the first position only."""

from __future__ import annotations

import numpy as np
import pytest

from discrete_transformer.extraction import mlps
from discrete_transformer.extraction.config import ExtractConfig
from discrete_transformer.extraction.graph import Graph, Module
from discrete_transformer.extraction.record import Recording

B, T = 60, 8
TABLE = np.array([0.0, 7.0, -3.0, 11.0, 5.0, -8.0, 2.0, 13.0])  # the MLP's offset per position


def _mlp(pos: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x + TABLE[np.clip(np.rint(pos).astype(int), 0, T - 1)]


def _setup(value_read: int = 3, readout: int = 4, q_read: int = 1) -> mlps.MLPCharacteriser:
    """Stream x, pos, one, L0.M0 = MLP(pos, x), L1.H0 = first(v = `value_read`); readout `readout`."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, size=(B, T)).astype(float)
    pos = np.broadcast_to(np.arange(T, dtype=float), (B, T))
    resid = np.zeros((B, T + 1, 5))  # (B, T+1, V), BOS first and 0 everywhere
    resid[:, 1:, 0], resid[:, 1:, 1], resid[:, 1:, 2] = x, pos, 1.0
    m_out = np.zeros((B, T + 1))
    m_out[:, 1:] = _mlp(pos, x)
    resid[:, 1:, 3] = m_out[:, 1:]
    pattern = np.zeros((B, T + 1, T + 1))
    pattern[:, 1:, 1] = 1.0  # every query reads the first position
    h_out = np.zeros((B, T + 1))
    h_out[:, 1:] = m_out[:, 1:2]
    resid[:, 1:, 4] = h_out[:, 1:]
    rec = Recording(None, 0.01, x[..., None], "hand-made", resid, {"L1.H0": pattern}, {"L0.M0": m_out, "L1.H0": h_out})
    modules = (
        Module("L0.M0", "mlp", 0, 0, 3, (1, 0)),
        Module("L1.H0", "attn", 1, 0, 4, (q_read, 1, value_read)),
    )
    graph = Graph(("x", "pos", "one", "L0.M0", "L1.H0"), 1, modules, (readout,))
    cfg = ExtractConfig(sr_budget=0.5, sr_max_size=6, grid_points=64)  # small regressions: a fast test
    return mlps.MLPCharacteriser(rec, graph, "discrete", cfg, 1e-3, True, lambda _m: None)


@pytest.fixture
def grid_is_the_mlp(monkeypatch):
    """The grid run evaluates the (hand-made) MLP on inputs it was not recorded on."""
    monkeypatch.setattr(mlps, "mlp_function", lambda _model, _m, _uniq, X: _mlp(X[:, 0], X[:, 1]))


def test_read_rows_are_the_keys_the_head_attends_to() -> None:
    mc = _setup()
    rows, who = mc.read_rows(mc.graph.modules[0])
    assert who == "L1.H0"
    assert rows.shape == (B, T) and rows[:, 0].all() and not rows[:, 1:].any()


@pytest.mark.parametrize(
    "kw",
    [
        {"readout": 3},  # the readout reads the MLP at every position
        {"q_read": 3},  # a query read: every position matters
    ],
)
def test_no_read_rows_when_something_reads_every_position(kw) -> None:
    mc = _setup(**kw)
    assert mc.read_rows(mc.graph.modules[0]) is None


def test_an_mlp_exact_only_where_it_is_read_gets_that_expression(grid_is_the_mlp) -> None:
    """No run over every position is exact (the table of positions is arbitrary); the run over the
    first positions alone finds the MLP equal to x there, and says where it holds."""
    mc = _setup()
    alts = mc.alternatives(mc.graph.modules[0])
    assert not any(a.exact for a in alts if not a.where)
    best = alts[0]
    assert best.exact and best.where == "L1.H0" and best.source == "u1" and best.inputs == (1, 0)
    assert best.sr_key == "read by L1.H0"
