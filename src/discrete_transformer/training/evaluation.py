"""Scoring a population: the data split, the normalised loss, the discretised model's validation
metrics and the logged evaluation row, and the population helpers (one member's state, a subset).

Shared by the phases of a restart: the search and the hardening (training/loop.py) and the
trial and final polish (training/polish.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..config import TrainConfig
from ..model import DataSpec, DiscreteTransformer, SelectMode
from ..verdict import solved_each
from .lag_screen import lag_scores

# The discretised model: argmax selectors and hard attention. What is evaluated and extracted.
HARD = SelectMode(hard=True, hard_attention=True)


@dataclass
class Split:
    """Training/validation tensors for one run (float32)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    kind: str
    var_y: torch.Tensor  # (C_out,) target variance, for the normalised loss

    @staticmethod
    def from_arrays(x: np.ndarray, y: np.ndarray, kind: str, val_size: int, seed: int) -> Split:
        """Carve a validation set out of the training split (the test set is never touched)."""
        n = x.shape[0]
        rng = np.random.default_rng(seed + 7919)
        perm = rng.permutation(n)
        n_val = min(val_size, max(1, n // 5)) if n > 1 else 0
        val, tr = perm[:n_val], perm[n_val:]
        to = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        y_tr = to(y[tr])
        var = y_tr.reshape(-1, y_tr.shape[-1]).var(dim=0, unbiased=False).clamp_min(1e-12)
        return Split(to(x[tr]), y_tr, to(x[val]), to(y[val]), kind, var)


def sequence_trend(y: np.ndarray) -> tuple[tuple[tuple[float, float], ...], float]:
    """Per output channel the least-squares (a, b) of y (n, T, C) against a + b·pos (pos = 0 ..
    T-1), and the RMS of the remainder: the fit of the per-position means, which is the same fit
    when every sequence has the same length."""
    T = y.shape[1]
    design = np.stack([np.ones(T), np.arange(T, dtype=np.float64)], axis=1)  # (T, 2)
    coef = np.linalg.lstsq(design, y.mean(axis=0), rcond=None)[0]  # (2, C)
    rest = y - (design @ coef)[None]
    return tuple((float(a), float(b)) for a, b in coef.T), float(np.sqrt(np.mean(np.square(rest))))


def data_spec(x: np.ndarray, y: np.ndarray, input_names: tuple[str, ...], output_names: tuple[str, ...]) -> DataSpec:
    trend, residual_rms = sequence_trend(np.asarray(y, dtype=np.float64))
    rms_in = tuple(float(np.sqrt(np.mean(np.square(x[..., c])))) for c in range(x.shape[-1]))
    return DataSpec(
        input_names=tuple(input_names),
        output_names=tuple(output_names),
        input_rms=rms_in,
        target_rms=float(np.sqrt(np.mean(np.square(y)))),
        T=int(x.shape[1]),
        target_levels=target_levels(y),
        trend=trend,
        trend_residual_rms=residual_rms,
        lag_scores=lag_scores(x, y),
    )


def target_levels(y: np.ndarray) -> int:
    """Distinct values of an all-integer target, 0 when any value is not an integer."""
    y = np.asarray(y, dtype=np.float64)
    return int(np.unique(y).size) if bool(np.all(y == np.rint(y))) else 0


def per_member_loss(pred: torch.Tensor, y: torch.Tensor, var_y: torch.Tensor) -> torch.Tensor:
    """pred (P, B, T, C), y (B, T, C) -> (P,) normalised MSE."""
    return ((pred - y.unsqueeze(0)).pow(2) / var_y).mean(dim=(1, 2, 3))


@torch.no_grad()
def evaluate(
    model: DiscreteTransformer, x: torch.Tensor, y: torch.Tensor, kind: str, var_y: torch.Tensor, tau_attn: float
) -> dict[str, np.ndarray]:
    """Evaluation of every member's discretised model (argmax selectors, hard attention):
    exact-match fraction per sequence and normalised MSE, each (P,)."""
    was = model.training
    model.eval()
    preds = []
    dtype = next(model.parameters()).dtype
    for i in range(0, x.shape[0], 1024):
        preds.append(model(x[i : i + 1024].to(dtype), HARD, tau_attn))
    model.train(was)
    pred = torch.cat(preds, dim=1).double()
    y, var_y = y.double(), var_y.double()
    nmse = ((pred - y.unsqueeze(0)).pow(2) / var_y).mean(dim=(1, 2, 3))
    exact = (pred.round() == y.round().unsqueeze(0)).all(dim=-1).all(dim=-1).float().mean(dim=1)
    return {"nmse": nmse.double().numpy(), "exact": exact.double().numpy()}


def member_score(kind: str, metrics: dict[str, np.ndarray]) -> np.ndarray:
    """Lower is better: discrete ranks by exact match then nMSE; continuous by nMSE."""
    if kind == "discrete":
        return (1.0 - metrics["exact"]) + np.minimum(metrics["nmse"], 1.0) * 1e-3
    return metrics["nmse"]


@torch.no_grad()
def attention_entropy(model: DiscreteTransformer, x: torch.Tensor, mode: SelectMode, tau_attn: float) -> float:
    """Mean normalised entropy of attention rows (rows with ≥ 2 visible keys)."""
    cache: dict[str, torch.Tensor] = {}
    was = model.training
    model.eval()  # do not let this probe move the running statistics
    # its own Gumbel noise: logging must not advance the training generator
    probe = dataclasses.replace(mode, batch=x.shape[0], attention_st=None, generator=torch.Generator().manual_seed(0))
    model(x, probe, tau_attn, cache)
    model.train(was)
    vals = []
    for name, a in cache.items():
        if not name.endswith(".pattern"):
            continue
        T1 = a.shape[-1]
        h = -(a.clamp_min(1e-12).log() * a).sum(-1)[..., 1:]  # rows 1..T, (P, B, T)
        norm = torch.log(torch.arange(2, T1 + 1, dtype=a.dtype))  # row i sees i+1 keys
        vals.append((h / norm).mean().item())
    return float(np.mean(vals)) if vals else 0.0


# Search-time evaluations score every member on this many validation sequences (a member that
# looks solved there is confirmed on the whole validation set): a full pass over 1,000 sequences
# for 16 members took ~0.55 s, about a quarter of the search's time at one evaluation per 100 steps.
SEARCH_PROBE = 256


def eval_row(
    model: DiscreteTransformer, split: Split, tol: float, cfg: TrainConfig, probe: int | None = None
) -> tuple[dict, dict[str, np.ndarray]]:
    """The logged row and the members' validation metrics. With `probe`, members are scored on the
    first `probe` validation sequences, and on all of them once any member is solved on those, so
    that "solved" always means solved on the whole validation set."""

    def full() -> dict[str, np.ndarray]:
        return evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)

    if probe is None or probe >= split.x_val.shape[0]:
        metrics = full()
    else:
        metrics = evaluate(model, split.x_val[:probe], split.y_val[:probe], split.kind, split.var_y, cfg.tau_attn_end)
        if solved_each(split.kind, metrics, tol).any():
            metrics = full()
    score = member_score(split.kind, metrics)
    i = int(np.argmin(score))
    row = {
        "val_nmse": float(metrics["nmse"][i]),
        "val_exact": float(metrics["exact"][i]),
        "val_solved": int(solved_each(split.kind, metrics, tol).sum()),
        "selector_entropy": float(model.selector_entropy().detach().mean()),
    }
    return row, metrics


def first_solved(kind: str, metrics: dict[str, np.ndarray], tol: float) -> int | None:
    ok = solved_each(kind, metrics, tol)
    if not ok.any():
        return None
    return int(np.argmin(np.where(ok, member_score(kind, metrics), np.inf)))


@torch.no_grad()
def write_member(model: DiscreteTransformer, i: int, member: DiscreteTransformer) -> None:
    """Copy a one-member model's weights into member `i` of `model` (population tensors only;
    the shared buffers stay the population's)."""
    theirs = member.state_dict()
    for name, t in model.state_dict().items():
        if _is_population(name):
            t[i] = theirs[name][0].to(t.dtype)


NON_POPULATION_BUFFERS = ("ms_seen", "stats_frozen")


def _is_population(name: str) -> bool:
    return name.split(".")[-1] not in NON_POPULATION_BUFFERS


def member_state(model: DiscreteTransformer, members: list[int]) -> dict[str, torch.Tensor]:
    """State dict of the given population members, as a population-len(members) model."""
    idx = torch.tensor(members)
    return {
        name: (t.index_select(0, idx) if _is_population(name) else t).detach().clone()
        for name, t in model.state_dict().items()
    }


def subset(model: DiscreteTransformer, members: list[int]) -> DiscreteTransformer:
    """A new model holding only `members` of `model`'s population (same config and data spec)."""
    out = DiscreteTransformer(model.config, model.data, population=len(members), seed=0)
    out.load_state_dict(member_state(model, members))
    out.train(model.training)
    return out


class Seen:
    """Training sequences a restart has seen, counted as one per sequence per population member
    whose loss and gradient it enters: a search step's batch counts once for each of the P members
    (they share it, but each runs it forward and backward), a hardening step's once for each kept
    member, and each loss evaluation of an L-BFGS polish (trial or final; one member) counts its
    whole batch. Validation evaluations are not training and are not counted. Why: the bench
    states each method's compute in one unit (docs/bench.md, Compute per method), a baseline's being
    steps × batch of its one model."""

    def __init__(self) -> None:
        self.n = 0

    def add(self, sequences: int, members: int = 1) -> None:
        self.n += int(sequences) * int(members)
