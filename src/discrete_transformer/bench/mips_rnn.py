"""The recurrent baseline trained as MIPS trained its RNNs: the ``mips`` recipe of the ``gru``
baseline (``BaselineConfig(gru_recipe="mips")``).

Why: the bench's own GRU recipe (2,000 steps of batch 64) is a budget-sized baseline; MIPS
extracted programs from RNNs trained far longer, and a comparison against an under-trained
baseline says nothing. This recipe is long (minutes to half an hour per task on one core), so it
is meant to be trained once per task by ``dtx baselines`` into the baseline cache, which
``dtx bench --baseline-recipe mips`` then reads.

Source: https://github.com/ejmichaud/neural-verification — ``scripts/rnn_train.py`` (commit
5a656c2469b1e9b338b0289f1ac57a824f1e0061), ``scripts/rnn_architecture_search.py`` (7e6f0ee),
``first_paper_final_renamed.yaml`` (3ba9830). What it does there, and what is kept:

- the network (``GeneralRNN``): h_t = f([h_{t-1}, x_t]), y_t = g(h_t), h_0 = 0, f and g MLPs of
  ``depth`` linear layers with ReLU between them (``activation: ReLU``); raw inputs and targets
  (``vectorize_input: false``, no normalisation). Kept.
- the loss ``0.5 * log(1 + (pred - y)^2)`` (``loss_fn: log``), AdamW, lr 1e-3, weight decay 0,
  constant learning rate, batches of 4,096 drawn by epoch-wise shuffling, accuracy checked every
  100 steps, exact by rounding. Kept (exactness here is the bench's: every position of every
  validation sequence after rounding, checked every 100 steps; training stops at the first exact).
- steps: 10,000 or 20,000 per task in the yaml. One value for every task here: 20,000 (the larger).
- seeds: ``seeds_per_run: 5``, stopping at the first seed that is exact. Kept.
- hidden sizes: MIPS searched, per task, for the smallest network that reaches 100 % (hidden
  state 1-128, MLP depths 1-3, widths 1-256), starting from linear RNNs (depth 1) and growing. A
  search is a per-task setting and hours per task on a CPU; this recipe tries two fixed
  architectures in the search's order instead — a linear RNN (hidden 16), then one with ReLU
  MLPs (hidden 16, depth 2, width 32) — each with the 5 seeds. Not MIPS's search: a one-config
  stand-in for it.

The result keeps the first exact model, else the best by validation score over every run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..model import DataSpec
from ..training.loop import Split, evaluate, member_score
from ..verdict import RESTART_NMSE, solved


@dataclass(frozen=True)
class MipsRecipe:
    """MIPS's RNN training as one configuration for every task (see the module docstring)."""

    # (hidden state size, MLP depth, MLP width) of f and g, tried in order; depth 1 is linear
    architectures: tuple[tuple[int, int, int], ...] = ((16, 1, 1), (16, 2, 32))
    steps: int = 20_000
    batch_size: int = 4096
    lr: float = 1e-3
    weight_decay: float = 0.0
    seeds: int = 5
    eval_every: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "architectures", tuple(tuple(int(v) for v in a) for a in self.architectures))
        if not self.architectures or any(len(a) != 3 or min(a) < 1 for a in self.architectures):
            raise ValueError("MipsRecipe: architectures are (hidden, depth, width) triples of positive integers")
        if min(self.steps, self.batch_size, self.seeds, self.eval_every) < 1:
            raise ValueError("MipsRecipe: steps, batch_size, seeds and eval_every must be >= 1")


def _mlp(n_in: int, n_out: int, depth: int, width: int) -> nn.Sequential:
    sizes = [n_in] + [width] * (depth - 1) + [n_out]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MipsRNN(nn.Module):
    """MIPS's GeneralRNN on raw inputs and targets; ``forward`` returns (1, B, T, C_out), a
    population axis of one, so that the bench's ``evaluate`` scores it like every other model."""

    def __init__(self, n_in: int, n_out: int, hidden: int, depth: int, width: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.f = _mlp(hidden + n_in, hidden, depth, width)
        self.g = _mlp(hidden, n_out, depth, width)

    def forward(self, x: torch.Tensor, *_mode: Any, **_kw: Any) -> torch.Tensor:
        x = x.float()
        h = x.new_zeros(x.shape[0], self.hidden)
        outs = []
        for t in range(x.shape[1]):
            h = self.f(torch.cat((h, x[:, t]), dim=1))
            outs.append(self.g(h))
        return torch.stack(outs, dim=1).unsqueeze(0)


def log_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MIPS's ``log`` loss: mean of 0.5·log(1 + (pred − y)²) (robust to large integer targets)."""
    return (0.5 * torch.log1p((pred - y).pow(2))).mean()


def train_mips_rnn(
    spec: DataSpec,
    split: Split,
    x_test: np.ndarray,
    y_test: np.ndarray,
    recipe: MipsRecipe,
    seed: int,
    time_limit: float | None = None,
    stop_on_solved: bool = True,
) -> dict[str, Any]:
    """Train the recipe (architectures × seeds, in order, until one is exact on validation) and
    score the kept model on the test split: ``{val, test, steps_run, parameters, ended, sequences}``
    (``sequences``: training sequences seen, steps × batch summed over every run of the recipe)."""
    t0 = time.perf_counter()
    n_in, n_out = len(spec.input_names), len(spec.output_names)
    best: tuple[float, dict[str, float], MipsRNN] | None = None
    steps_run, ended = 0, "steps"
    batch = min(recipe.batch_size, split.x_train.shape[0])  # what _train_one draws per step
    for hidden, depth, width in recipe.architectures:
        for k in range(recipe.seeds):
            torch.manual_seed(seed * recipe.seeds + k)  # this job's seeds never overlap another seed's
            model = MipsRNN(n_in, n_out, hidden, depth, width)
            run_best, steps, ended = _train_one(
                model, split, recipe, seed * recipe.seeds + k, t0, time_limit, stop_on_solved
            )
            steps_run += steps
            if best is None or run_best[0] < best[0]:
                best = (run_best[0], run_best[1], model)
            if stop_on_solved and solved(split.kind, best[1], RESTART_NMSE):
                ended = "solved"
                break
            if ended == "time":
                break
        if ended in ("solved", "time"):
            break
    assert best is not None
    _, val, model = best
    xt = torch.as_tensor(np.array(x_test, dtype=np.float32))
    yt = torch.as_tensor(np.array(y_test, dtype=np.float32))
    m = evaluate(model, xt, yt, split.kind, split.var_y, 0.0)  # type: ignore[arg-type]
    return {
        "val": val,
        "test": {"exact": float(m["exact"][0]), "nmse": float(m["nmse"][0]), "n": int(xt.shape[0])},
        "steps_run": steps_run,
        "parameters": sum(p.numel() for p in model.parameters()),
        "ended": ended,
        "sequences": steps_run * batch,
    }


def _train_one(
    model: MipsRNN,
    split: Split,
    recipe: MipsRecipe,
    seed: int,
    t0: float,
    time_limit: float | None,
    stop_on_solved: bool,
) -> tuple[tuple[float, dict[str, float]], int, str]:
    """One (architecture, seed) run; the model is left holding its best validation state.
    Returns ((score, val metrics), steps run, why it ended: steps | solved | time)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    n = split.x_train.shape[0]
    batch = min(recipe.batch_size, n)
    order, pos = torch.randperm(n, generator=gen), 0
    best_score, best_val, best_state = math.inf, {"exact": 0.0, "nmse": math.inf}, None
    step = 0
    for step in range(recipe.steps):
        if pos + batch > n:  # a new epoch, shuffled (MIPS's FastTensorDataLoader)
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos : pos + batch]
        pos += batch
        model.train()
        loss = log_loss(model(split.x_train[idx])[0], split.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = step == recipe.steps - 1
        out_of_time = time_limit is not None and time.perf_counter() - t0 > time_limit
        if (step + 1) % recipe.eval_every == 0 or last or out_of_time:
            m = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, 0.0)  # type: ignore[arg-type]
            s = float(member_score(split.kind, m)[0])
            if s < best_score or best_state is None:
                best_score = s
                best_val = {"exact": float(m["exact"][0]), "nmse": float(m["nmse"][0]), "score": s}
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if stop_on_solved and solved(split.kind, best_val, RESTART_NMSE):
                break
            if out_of_time and not last:
                model.load_state_dict(best_state)
                return (best_score, best_val), step + 1, "time"
    assert best_state is not None
    model.load_state_dict(best_state)
    return (best_score, best_val), step + 1, "steps"


__all__ = ["MipsRNN", "MipsRecipe", "log_loss", "train_mips_rnn"]
