"""Running the model: what the extraction observes of it.

* :func:`hardened` — a float64 copy of the trained model (argmax selectors, hard attention).
* :func:`record` — that model on held-out sequences with every intermediate cached: the raw
  stream, each head's attention pattern and output, each MLP's output (:class:`Recording`).
* :func:`score_model` — the trained model's own test score, and whether it is close enough to
  the targets for the fallback search to swap modules (:class:`ModelScore`).
* :func:`search_rows` — the training sequences the search and the refits score on.
* :func:`mlp_function` — one MLP evaluated on arbitrary raw inputs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..tasks import Dataset
from ..training.evaluation import HARD
from .config import ExtractConfig
from .graph import Graph, Module
from .verify import score

__all__ = [
    "NEAR_NMSE",
    "PATTERN_BUDGET",
    "ModelScore",
    "Recording",
    "SearchRows",
    "hardened",
    "mlp_function",
    "record",
    "score_model",
    "search_rows",
]

# A model whose test nMSE is at most this (but not exact) still gets the fallback search.
NEAR_NMSE = 1e-2
PATTERN_BUDGET = 4_000_000  # max recorded attention weights per head (B * T1 * T1)


def hardened(run: Any) -> torch.nn.Module:
    """A float64 copy of `run`'s model in eval mode (the original is left as it is)."""
    return copy.deepcopy(run.model).double().eval()


@dataclass(frozen=True)
class Recording:
    """The hardened model run on held-out sequences `x` (B, T, C_in)."""

    model: Any  # the float64 model that was run
    tau: float  # attention temperature it was run at
    x: np.ndarray
    note: str  # where the sequences came from ("4000 test sequences ...")
    resid: np.ndarray  # (B, T+1, V) the raw stream, BOS first
    pattern: dict[str, np.ndarray]  # head key -> (B, T+1, T+1) attention weights
    out: dict[str, np.ndarray]  # module key -> (B, T+1) its output


def record(model: Any, graph: Graph, tau: float, ds: Dataset, cfg: ExtractConfig) -> Recording:
    """Run `model` on the test split — topped up from the training split when it has fewer than
    ``cfg.min_queries`` query positions — caching the stream and every module's output."""
    T, T1 = ds.T, ds.T + 1
    need = math.ceil(cfg.min_queries / T)
    cap = max(need, min(cfg.max_record, PATTERN_BUDGET // (T1 * T1)))
    x = ds.x_test[:cap]
    note = f"{x.shape[0]} test sequences"
    if x.shape[0] < need and ds.n_train:
        extra = ds.x_train[: need - x.shape[0]]
        x = np.concatenate([x, extra])
        note += f" + {extra.shape[0]} training sequences (the test split is small)"
    heads = [m for m in graph.modules if m.kind == "attn"]
    mlps = [m for m in graph.modules if m.kind == "mlp"]
    resid, pat, hout, mout = [], {m.key: [] for m in heads}, {m.key: [] for m in heads}, {m.key: [] for m in mlps}
    with torch.no_grad():
        for s in range(0, x.shape[0], 512):
            cache: dict[str, torch.Tensor] = {}
            model(torch.from_numpy(np.array(x[s : s + 512])), HARD, tau, cache)
            resid.append(cache["resid"][0].numpy())
            for m in heads:
                pat[m.key].append(cache[f"{m.key}.pattern"][0].numpy())
                hout[m.key].append(cache[f"{m.key}.out"][0].numpy())
            for m in mlps:
                mout[m.key].append(cache[f"{m.key}.out"][0].numpy())
    return Recording(
        model,
        tau,
        x,
        note,
        np.concatenate(resid),
        {k: np.concatenate(v) for k, v in pat.items()},
        {k: np.concatenate(v) for k, v in {**hout, **mout}.items()},
    )


@dataclass(frozen=True)
class ModelScore:
    """The trained model's own score on the test split."""

    exact: bool  # it passes the verification rule: its modules are right
    # Close enough that its structure is probably right and only an MLP is imprecise (e.g.
    # Sum_All at 99.7 % exact): worth the fallback search's swaps, whose readout refit against
    # the true targets does not depend on the model's small errors.
    near: bool
    doc: dict[str, Any]  # for verification.json and the program's provenance


def score_model(run: Any, ds: Dataset, tau: float) -> ModelScore:
    """Score `run`'s model (as trained, in its own dtype) on `ds`'s test split."""
    x = torch.from_numpy(np.array(ds.x_test, dtype=np.float64))
    dtype = next(run.model.parameters()).dtype
    preds = []
    with torch.no_grad():
        for s in range(0, x.shape[0], 1024):
            preds.append(run.model(x[s : s + 1024].to(dtype), HARD, tau)[0].double().numpy())
    pred = np.concatenate(preds) if preds else np.zeros_like(ds.y_test)
    sc = score(pred, ds.y_test, ds.kind)
    near = sc.passed or (sc.error is None and sc.nmse <= NEAR_NMSE)
    doc = {"n": sc.n, "exact": round(sc.exact, 6)} if ds.kind == "discrete" else {"n": sc.n}
    doc["nmse"] = float(f"{sc.nmse:.4g}")
    doc["passes"] = sc.passed
    return ModelScore(sc.passed, near, doc)


@dataclass(frozen=True)
class SearchRows:
    """Training sequences (x: (n, T, C_in), y: (n, T, C_out)) that candidate programs are
    scored on and readout MLPs are refitted against, and the task kind."""

    x: np.ndarray
    y: np.ndarray
    kind: str


def search_rows(ds: Dataset, cfg: ExtractConfig) -> SearchRows:
    """``cfg.search_rows`` training sequences, drawn with the config's seed (in order)."""
    rng = np.random.default_rng(cfg.seed + 104729)
    n_tr = ds.n_train
    rows = np.sort(rng.permutation(n_tr)[: min(cfg.search_rows, n_tr)])
    return SearchRows(ds.x_train[rows], ds.y_train[rows], ds.kind)


def mlp_function(model: Any, m: Module, uniq: tuple[int, ...], X: np.ndarray) -> np.ndarray:
    """MLP `m` of a float64 `model` (before the BOS mask) on raw input rows X (N, len(uniq));
    a read of `one` not among `uniq` is 1. Shared with the run report's MLP surfaces."""
    layer = model.layers[m.layer]["mlp"]
    cols = [X[:, uniq.index(r)] if r in uniq else np.ones(X.shape[0]) for r in m.reads]
    raw = torch.from_numpy(np.ascontiguousarray(np.stack(cols, axis=-1), dtype=np.float64))
    rms = (model.ms[0, list(m.reads)] + 1e-12).sqrt()
    u = (raw / rms).unsqueeze(0).unsqueeze(2).expand(1, raw.shape[0], layer.n_mlps, len(m.reads))
    r = (
        (raw * layer.periodic_keep[list(m.reads)].double())
        .unsqueeze(0)
        .unsqueeze(2)
        .expand(1, raw.shape[0], layer.n_mlps, len(m.reads))
    )
    with torch.no_grad():
        return layer.function(u.contiguous(), r.contiguous())[0, :, m.slot].numpy().copy()
