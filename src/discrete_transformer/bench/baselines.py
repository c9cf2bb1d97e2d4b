"""Baselines trained in the same bench run, on the same split, with the same loss and scoring.

- ``gru``: a MIPS-style recurrent network (MIPS trains small RNNs; a GRU is the stronger of the
  two standard cells), one layer, small hidden state, linear readout at every position.
- ``transformer``: a standard small causal Transformer (dense softmax attention + MLP, learned
  positional embeddings, pre-norm).

Both read inputs divided by the same per-channel RMS the Discrete Transformer uses, predict in
target units (``mean + std * head(h)``), minimise the same variance-normalised MSE
(:func:`~..training.loop.per_member_loss`), keep the checkpoint with the best validation score
(:func:`~..training.loop.member_score`) and are scored by the same
:func:`~..training.loop.evaluate` (exact match after rounding, normalised MSE). One default
configuration for every task: a fixed step budget and a wall-time cap, nothing per task.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..model import DataSpec
from ..training.loop import Split, evaluate, member_score, per_member_loss
from ..verdict import RESTART_NMSE, solved
from .mips_rnn import MipsRecipe, train_mips_rnn

BASELINES = ("gru", "transformer")
GRU_RECIPES = ("bench", "mips")  # the recurrent baseline's: this module's GRU, or MIPS's RNN (.mips_rnn)
# The version of how a baseline is trained and scored (this module, and the loss and evaluation it
# uses from training/): part of every baseline cache key (:mod:`.baseline_cache`). Bump it with any
# change that can alter a baseline's numbers, so that cached numbers of older code are not reused.
BASELINE_VERSION = 1
_OWN_FIELDS = {"gru": "gru_", "transformer": "tf_"}  # the per-baseline fields of BaselineConfig


@dataclass(frozen=True)
class BaselineConfig:
    """One configuration for every task (no per-task tuning)."""

    gru_steps: int = 2000  # a GRU step costs about half a Transformer step: similar wall time
    tf_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-2  # with a cosine decay to 0; 1e-2 beat 3e-3 for both at these step counts
    eval_every: int = 250
    gru_hidden: int = 64
    tf_dim: int = 32
    tf_heads: int = 4
    tf_layers: int = 2
    tf_ff: int = 64
    time_limit: float | None = None  # seconds; the bench sets it to its per-task budget
    # Stop at an evaluation where the validation split is solved, by the rule that stops the
    # Discrete Transformer's restarts (verdict.solved, RESTART_NMSE): the same early exit for all.
    stop_on_solved: bool = True
    # The recurrent baseline's recipe: "bench" (the GRU above: budget-sized) or "mips" (MIPS's RNN
    # trained as MIPS trained it, `gru_mips`: too long for a bench, filled into the baseline
    # cache by `dtx baselines`). A named configuration for every task, never a per-task one.
    gru_recipe: str = "bench"
    gru_mips: MipsRecipe = field(default_factory=MipsRecipe)

    def __post_init__(self) -> None:
        if self.gru_recipe not in GRU_RECIPES:
            raise ValueError(f"BaselineConfig: gru_recipe must be one of {', '.join(GRU_RECIPES)}")
        if min(self.gru_steps, self.tf_steps, self.batch_size, self.eval_every) < 1:
            raise ValueError("BaselineConfig: steps, batch_size and eval_every must be >= 1")
        if self.tf_dim % self.tf_heads:
            raise ValueError("BaselineConfig: tf_dim must be a multiple of tf_heads")

    def steps(self, name: str) -> int:
        return self.gru_steps if name == "gru" else self.tf_steps

    def settings(self, name: str) -> dict[str, Any]:
        """What decides baseline ``name``'s result: every field but the other baselines' own
        (``tf_*`` for the GRU…) and ``time_limit``, which changes a result only when it cuts the
        training short — and such results are never cached (:mod:`.baseline_cache`)."""
        if name not in _OWN_FIELDS:
            raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
        others = tuple(p for n, p in _OWN_FIELDS.items() if n != name)
        out = {k: v for k, v in asdict(self).items() if k != "time_limit" and not k.startswith(others)}
        if name == "gru" and self.gru_recipe == "mips":  # the recipe's own fields and the early stop alone
            return {"gru_recipe": "mips", "gru_mips": out["gru_mips"], "stop_on_solved": self.stop_on_solved}
        out.pop("gru_mips", None)
        return out


class _Scaled(nn.Module):
    """Shared input/output scaling; subclasses map normalised (B, T, C_in) -> (B, T, C_out)."""

    def __init__(self, spec: DataSpec, y_mean: torch.Tensor, y_std: torch.Tensor) -> None:
        super().__init__()
        rms = torch.tensor([max(r, 1e-8) for r in spec.input_rms], dtype=torch.float32)
        self.register_buffer("in_rms", rms)
        self.register_buffer("y_mean", y_mean.float())
        self.register_buffer("y_std", y_std.float())

    def core(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, *_mode: Any, **_kw: Any) -> torch.Tensor:
        """(B, T, C_in) -> (1, B, T, C_out): population axis of one, so that the Discrete
        Transformer's ``evaluate`` and ``per_member_loss`` apply unchanged."""
        h = self.core(x.float() / self.in_rms)
        return (self.y_mean + self.y_std * h).unsqueeze(0)


class GRUBaseline(_Scaled):
    def __init__(self, spec: DataSpec, cfg: BaselineConfig, y_mean: torch.Tensor, y_std: torch.Tensor) -> None:
        super().__init__(spec, y_mean, y_std)
        self.rnn = nn.GRU(len(spec.input_names), cfg.gru_hidden, batch_first=True)
        self.head = nn.Linear(cfg.gru_hidden, len(spec.output_names))

    def core(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])


class TransformerBaseline(_Scaled):
    def __init__(self, spec: DataSpec, cfg: BaselineConfig, y_mean: torch.Tensor, y_std: torch.Tensor) -> None:
        super().__init__(spec, y_mean, y_std)
        self.inp = nn.Linear(len(spec.input_names), cfg.tf_dim)
        self.max_len = 2 * spec.T  # room for the 2xT length-generalisation inputs
        self.pos = nn.Parameter(torch.randn(self.max_len, cfg.tf_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.tf_dim, cfg.tf_heads, cfg.tf_ff, dropout=0.0, batch_first=True, norm_first=True
        )
        self.enc = nn.TransformerEncoder(layer, cfg.tf_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.tf_dim)
        self.head = nn.Linear(cfg.tf_dim, len(spec.output_names))

    def core(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds the baseline's {self.max_len} positions")
        h = self.inp(x) + self.pos[:T]
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        return self.head(self.norm(self.enc(h, mask=mask, is_causal=True)))


def build_baseline(name: str, spec: DataSpec, split: Split, cfg: BaselineConfig) -> _Scaled:
    y = split.y_train.reshape(-1, split.y_train.shape[-1])
    mean, std = y.mean(dim=0), split.var_y.sqrt()
    if name == "gru":
        return GRUBaseline(spec, cfg, mean, std)
    if name == "transformer":
        return TransformerBaseline(spec, cfg, mean, std)
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")


@dataclass
class BaselineResult:
    name: str
    val: dict[str, float]
    test: dict[str, float]
    steps_run: int
    seconds: float
    parameters: int
    ended: str = "steps"  # why training ended: "steps" (all of them), "solved" (validation) or "time"
    # training sequences seen: steps run × batch (one model: each sequence of a batch is seen once);
    # None for a result cached before the count (bench/baseline_cache.py)
    sequences: int | None = None


def train_baseline(
    name: str,
    spec: DataSpec,
    split: Split,
    x_test: np.ndarray,
    y_test: np.ndarray,
    cfg: BaselineConfig = BaselineConfig(),
    seed: int = 0,
) -> BaselineResult:
    """Train one baseline on ``split`` (Adam, cosine learning rate, best validation checkpoint)
    and score it on the test split exactly as the Discrete Transformer is scored."""
    t0 = time.perf_counter()
    if name == "gru" and cfg.gru_recipe == "mips":
        r = train_mips_rnn(spec, split, x_test, y_test, cfg.gru_mips, seed, cfg.time_limit, cfg.stop_on_solved)
        return BaselineResult(name=name, seconds=time.perf_counter() - t0, **r)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_baseline(name, spec, split, cfg)
    steps = cfg.steps(name)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    best_score, best_state, best_val = math.inf, None, {"exact": 0.0, "nmse": math.inf}
    step, ended = 0, "steps"
    n = split.x_train.shape[0]

    def check() -> None:
        nonlocal best_score, best_state, best_val
        m = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, 0.0)  # type: ignore[arg-type]
        s = float(member_score(split.kind, m)[0])
        if s < best_score or best_state is None:
            best_score = s
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_val = {"exact": float(m["exact"][0]), "nmse": float(m["nmse"][0]), "score": s}

    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=gen)
        loss = per_member_loss(model(split.x_train[idx]), split.y_train[idx], split.var_y).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        last = step == steps - 1
        out_of_time = cfg.time_limit is not None and time.perf_counter() - t0 > cfg.time_limit
        if (step + 1) % cfg.eval_every == 0 or last or out_of_time:
            check()
            if cfg.stop_on_solved and solved(split.kind, best_val, RESTART_NMSE):
                ended = "solved"
                break
            if out_of_time and not last:
                ended = "time"
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    xt = torch.as_tensor(np.array(x_test, dtype=np.float32))
    yt = torch.as_tensor(np.array(y_test, dtype=np.float32))
    m = evaluate(model, xt, yt, split.kind, split.var_y, 0.0)  # type: ignore[arg-type]
    test = {"exact": float(m["exact"][0]), "nmse": float(m["nmse"][0]), "n": int(xt.shape[0])}
    return BaselineResult(
        name=name,
        val=best_val,
        test=test,
        steps_run=step + 1,
        seconds=time.perf_counter() - t0,
        parameters=sum(p.numel() for p in model.parameters()),
        ended=ended,
        sequences=(step + 1) * min(cfg.batch_size, n),
    )


__all__ = [
    "BASELINES",
    "BASELINE_VERSION",
    "BaselineConfig",
    "BaselineResult",
    "GRU_RECIPES",
    "GRUBaseline",
    "TransformerBaseline",
    "train_baseline",
]
