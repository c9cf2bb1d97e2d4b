"""Training loop for one restart: a population of P models searched, then hardened.

The loss of each member is MSE normalised by the target variance (per output channel), so that
tasks of any scale share one set of hyperparameters. Members are independent: the summed loss
gives each its own gradient, and Adam's per-parameter statistics keep them apart.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig
from ..model import DataSpec, DiscreteTransformer, SelectMode
from . import reinforce, schedules

Progress = Callable[[int, dict], None]

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


def data_spec(x: np.ndarray, y: np.ndarray, input_names: tuple[str, ...], output_names: tuple[str, ...]) -> DataSpec:
    rms_in = tuple(float(np.sqrt(np.mean(np.square(x[..., c])))) for c in range(x.shape[-1]))
    return DataSpec(
        input_names=tuple(input_names),
        output_names=tuple(output_names),
        input_rms=rms_in,
        target_rms=float(np.sqrt(np.mean(np.square(y)))),
        T=int(x.shape[1]),
        target_levels=target_levels(y),
    )


def target_levels(y: np.ndarray) -> int:
    """Distinct values of an all-integer target, 0 when any value is not an integer."""
    y = np.asarray(y, dtype=np.float64)
    return int(np.unique(y).size) if bool(np.all(y == np.rint(y))) else 0


def per_member_loss(pred: torch.Tensor, y: torch.Tensor, var_y: torch.Tensor) -> torch.Tensor:
    """pred (P, B, T, C), y (B, T, C) -> (P,) normalised MSE."""
    return ((pred - y.unsqueeze(0)).pow(2) / var_y).mean(dim=(1, 2, 3))


def expected_readout_loss(
    model: DiscreteTransformer,
    x: torch.Tensor,
    y: torch.Tensor,
    var_y: torch.Tensor,
    mode: SelectMode,
    tau_attn: float | torch.Tensor,
) -> torch.Tensor:
    """(P,) normalised MSE of each variable on its own, averaged with the readout's weights:
    the expected loss of the readout's choice (TrainConfig.readout_loss="expected"). Equal to
    per_member_loss once the readout is one-hot."""
    cache: dict[str, torch.Tensor] = {}
    model(x, mode, tau_attn, cache)
    stream = cache["resid"][:, :, 1:]  # (P, B, T, V)
    w = cache["readout.w"]  # (P, C, V) or (P, B, C, V)
    err = (stream.unsqueeze(-2) - y.unsqueeze(0).unsqueeze(-1)).pow(2) / var_y.unsqueeze(-1)  # (P, B, T, C, V)
    w = w.unsqueeze(1).unsqueeze(1) if w.dim() == 3 else w.unsqueeze(2)  # broadcast over B, T
    return (err * w).sum(-1).mean(dim=(1, 2, 3))


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


def solved(kind: str, metrics: dict[str, np.ndarray], tol: float) -> np.ndarray:
    if kind == "discrete":
        return metrics["exact"] >= 1.0
    return metrics["nmse"] <= tol


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


@dataclass
class RestartResult:
    seed: int
    best_member: int
    val: dict[str, float]
    steps_run: int
    seconds: float
    stopped_early: bool
    state: dict[str, torch.Tensor] = field(repr=False)  # population-1 state dict of the best
    history: list[dict] = field(default_factory=list, repr=False)


class _Logger:
    """Metrics rows → JSONL file, progress callback and in-memory history."""

    def __init__(self, path: Path | None, progress: Progress | None, seed: int, t0: float) -> None:
        self.file = open(path, "a") if path else None  # noqa: SIM115 (closed by close())
        self.progress, self.seed, self.t0 = progress, seed, t0
        self.history: list[dict] = []

    def __call__(self, row: dict) -> None:
        row = {**row, "seconds": round(time.perf_counter() - self.t0, 3), "seed": self.seed}
        self.history.append(row)
        if self.file:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        if self.progress:
            self.progress(int(row["step"]), row)

    def close(self) -> None:
        if self.file:
            self.file.close()


def train_restart(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    split: Split,
    spec: DataSpec,
    seed: int,
    log_path: Path | None = None,
    progress: Progress | None = None,
    continuous_tol: float = 1e-7,
    should_stop: Callable[[], bool] | None = None,
) -> RestartResult:
    """Search, hardening and polishing for one seed; returns the best population member.

    1. *Search*: P members with Gumbel-softmax selectors, annealed temperatures.
    2. *Hardening*: keep the `harden_top` members whose discretised model (argmax selectors,
       hard attention) validates best, freeze them, and fine-tune the continuous weights.
    3. *Polish*: float64 L-BFGS on each survivor's MLP and score weights, full batch, which is
       where continuous tasks reach 1e-9 normalised MSE.

    `progress(step, row)` is called at every evaluation; `should_stop()` is polled there too
    (another restart already solved the task, or the user interrupted) and ends the run early.
    """
    torch.manual_seed(seed)  # only for ops without an explicit generator; all sampling uses `gen`
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    log = _Logger(log_path, progress, seed, t0)
    out_of_time = lambda: train_cfg.time_limit is not None and time.perf_counter() - t0 > train_cfg.time_limit  # noqa: E731
    stop = lambda: (should_stop is not None and should_stop()) or out_of_time()  # noqa: E731
    model = DiscreteTransformer(model_cfg, spec, population=train_cfg.population, seed=seed)
    try:
        # Late in the search, softmaxes at tau 0.05 / tau_attn 0.02 produce denormal floats, and
        # x86 arithmetic on denormals is slow: the last third of the search ran 2x slower
        # (45 vs 20 ms/step). Flushing them to zero changes nothing a float32 weight can show.
        torch.set_flush_denormal(True)
        step, solved_idx = _search(model, train_cfg, split, gen, log, stop, continuous_tol)
        stopped_early = solved_idx is not None
        if solved_idx is None and not stop():
            model, step, solved_idx = _harden(model, train_cfg, split, gen, log, stop, continuous_tol, step)
        if solved_idx is None and not stop() and train_cfg.polish_iters > 0:
            model = _polish(model, train_cfg, split, gen, log, continuous_tol, step)
    finally:
        torch.set_flush_denormal(False)
        log.close()
    metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, train_cfg.tau_attn_end)
    score = member_score(split.kind, metrics)
    i = int(np.argmin(score)) if solved_idx is None else solved_idx
    return RestartResult(
        seed=seed,
        best_member=i,
        val={"nmse": float(metrics["nmse"][i]), "exact": float(metrics["exact"][i]), "score": float(score[i])},
        steps_run=step + 1,
        seconds=time.perf_counter() - t0,
        stopped_early=stopped_early,
        state=member_state(model, [i]),
        history=log.history,
    )


def _batch(split: Split, gen: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(0, split.x_train.shape[0], (min(size, split.x_train.shape[0]),), generator=gen)
    return split.x_train[idx], split.y_train[idx]


# Search-time evaluations score every member on this many validation sequences (a member that
# looks solved there is confirmed on the whole validation set): a full pass over 1,000 sequences
# for 16 members took ~0.55 s, about a quarter of the search's time at one evaluation per 100 steps.
SEARCH_PROBE = 256


def _eval_row(
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
        if solved(split.kind, metrics, tol).any():
            metrics = full()
    score = member_score(split.kind, metrics)
    i = int(np.argmin(score))
    row = {
        "val_nmse": float(metrics["nmse"][i]),
        "val_exact": float(metrics["exact"][i]),
        "val_solved": int(solved(split.kind, metrics, tol).sum()),
        "selector_entropy": float(model.selector_entropy().detach().mean()),
    }
    return row, metrics


def _first_solved(kind: str, metrics: dict[str, np.ndarray], tol: float) -> int | None:
    ok = solved(kind, metrics, tol)
    if not ok.any():
        return None
    return int(np.argmin(np.where(ok, member_score(kind, metrics), np.inf)))


def _search(model, cfg: TrainConfig, split: Split, gen, log, stop, tol) -> tuple[int, int | None]:
    """Phase 1. Returns (last step, index of a member already solved or None).

    Every member anneals over its own life (see `schedules.member_temperatures`). Every
    `rebirth_every` steps during the first `rebirth_until` of the search, the members with the
    worst smoothed training loss are re-initialised (`rebirth`): the population keeps its good
    basins and spends the rest of its compute on fresh tries.
    """
    model.train()
    P = model.population
    opt_w = torch.optim.Adam(model.weight_parameters(), lr=cfg.lr, fused=True)
    opt_s = torch.optim.Adam(model.selector_parameters(), lr=cfg.lr_selector, fused=True)
    birth = torch.zeros(P)
    # Late in the search these members run hard attention forward, soft backward, so the
    # structure they settle on is one that survives discretisation (docs/design.md, Straight-through
    # hard attention).
    st_start = (cfg.attention_st_from + cfg.attention_st_spread * torch.arange(P) / max(P - 1, 1)) * cfg.search_steps
    st_start[torch.arange(P) >= round(cfg.attention_st_share * P)] = float("inf")
    loss_ema: torch.Tensor | None = None
    n_reborn = 0
    step = 0
    trials = _Trials(cfg)
    score_fn = reinforce.ScoreFunction(cfg, P) if cfg.estimator == "reinforce" else None
    for step in range(cfg.search_steps):
        tau, tau_a = schedules.member_temperatures(cfg, step, birth)
        xb, yb = _batch(split, gen, cfg.batch_size)
        st_attn = (step >= st_start).float() if step >= float(st_start.min()) else None
        mode = SelectMode(
            tau=tau,
            straight_through=cfg.straight_through,
            per_example=cfg.sample_per_example,
            generator=gen,
            batch=xb.shape[0],
            attention_st=st_attn,
            attention_hard_tau=cfg.tau_attn_end,
            readout_scaled=cfg.readout_loss == "scaled",
        )
        opt_w.zero_grad(set_to_none=True)
        opt_s.zero_grad(set_to_none=True)
        if score_fn is not None:  # REINFORCE: sampled hard choices, score-function logits
            loss = score_fn.backward(model, xb, yb, split.var_y, mode, tau_a)
        elif cfg.readout_loss == "expected":
            loss = expected_readout_loss(model, xb, yb, split.var_y, mode, tau_a)
            loss.sum().backward()
        else:
            loss = per_member_loss(model(xb, mode, tau_a), yb, split.var_y)
            loss.sum().backward()
        opt_w.step()
        opt_s.step()
        with torch.no_grad():
            clipped = loss.detach().clamp_max(10.0)
            loss_ema = clipped if loss_ema is None else 0.95 * loss_ema + 0.05 * clipped
        if (
            cfg.rebirth_every > 0
            and P > 1
            and step > 0
            and step % cfg.rebirth_every == 0
            and step < cfg.rebirth_until * cfg.search_steps
        ):
            n = max(1, int(round(cfg.rebirth_fraction * P)))
            mature = (step - birth) >= cfg.rebirth_every
            ranked = torch.where(mature, loss_ema, torch.full_like(loss_ema, -1.0))
            worst = [int(i) for i in torch.argsort(ranked, descending=True)[:n] if mature[i]]
            if worst:
                rebirth(model, worst, (opt_w, opt_s), int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                birth[worst] = float(step)
                if score_fn is not None:
                    score_fn.reset(worst)
                loss_ema[worst] = loss_ema.median()
                n_reborn += len(worst)
        if step % cfg.eval_every == 0 or step == cfg.search_steps - 1:
            row, metrics = _eval_row(model, split, tol, cfg, probe=SEARCH_PROBE)
            row.update(
                step=step,
                phase="search",
                tau=float(tau.median()),
                tau_attn=float(tau_a.median()),
                loss=float(loss.detach().mean()),
                loss_min=float(loss.detach().min()),
                attention_entropy=attention_entropy(model, xb[:16], mode, tau_a),
                reborn=n_reborn,
            )
            log(row)
            done = _first_solved(split.kind, metrics, tol)
            if cfg.stop_on_exact and done is not None:
                return step, done
            best = int(np.argmin(member_score(split.kind, metrics)))
            if (
                cfg.stop_on_exact
                and trials.due(float(metrics["nmse"][best]))
                and _trial_polish(model, best, cfg, split, log, tol, step)
            ):
                return step, best
            if stop():
                break
    return step, None


class _Trials:
    """When the search tries a polish (TrainConfig.trial_polish_nmse): the best member within the
    threshold, at most `trial_polish_max` times, each at half the previous trial's nMSE or less
    (a member that did not polish to a solution at 1e-4 will not at 0.9e-4)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.left = cfg.trial_polish_max if cfg.trial_polish_nmse > 0 else 0
        self.below = cfg.trial_polish_nmse

    def due(self, nmse: float) -> bool:
        if self.left <= 0 or not nmse <= self.below:
            return False
        self.left -= 1
        self.below = nmse / 2
        return True


def _trial_polish(model, best: int, cfg: TrainConfig, split: Split, log, tol, step: int) -> bool:
    """Polish a discretised copy of member `best` now (phase 3 on a copy). If the copy solves the
    task on the whole validation set it replaces the member and True is returned; otherwise the
    population is untouched and the search goes on.

    Why: the search usually has the right structure long before the end of the anneal (Sum_Last2:
    discretised validation nMSE 2e-4 at step 600 of 1,300); what it lacks is the precision that
    hardening and the polish add. The trial's batch comes from its own generator, so the search
    after a failed trial is exactly the search without it."""
    xb, yb, var = _polish_batch(split, cfg, torch.Generator().manual_seed(step))

    def polish(member: DiscreteTransformer) -> tuple[DiscreteTransformer, float, dict[str, np.ndarray], bool]:
        out, end = _lbfgs(member, xb, yb, var, cfg, cfg.trial_polish_iters, until=_solves(split, cfg, tol))
        out = out.float()
        metrics = evaluate(out, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
        return out, end, metrics, bool(solved(split.kind, metrics, tol)[0])

    # The lean copy first: when it solves, its MLPs are the plain linear/bilinear maps that
    # symbolic regression reads exactly (Sum_Last4: 21 s of extraction with the ReLUs kept).
    member = subset(model, [best])
    lean = _lean(member, split, cfg)
    ok = False
    if lean is not None:
        polished, end, metrics, ok = polish(lean)
    if not ok:
        polished, end, metrics, ok = polish(member)
    log(
        {
            "step": step,
            "phase": "trial",
            "val_nmse": float(metrics["nmse"][0]),
            "val_exact": float(metrics["exact"][0]),
            "val_solved": int(ok),
            "tau": 0.0,
            "tau_attn": 0.0,
            "loss": end,
            "loss_min": end,
            "attention_entropy": 0.0,
        }
    )
    if ok:
        _write_member(model, best, polished)
    return ok


@torch.no_grad()
def rebirth(model: DiscreteTransformer, members: list[int], optimizers, seed: int) -> None:
    """Re-initialise the given population members in place (fresh weights from `seed`, uniform
    selector logits) and clear their Adam moments; the other members are untouched."""
    fresh = DiscreteTransformer(model.config, model.data, population=model.population, seed=seed)
    idx = torch.tensor(members)
    fresh_params = dict(fresh.named_parameters())
    for name, p in model.named_parameters():
        p[idx] = fresh_params[name][idx]
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                state = opt.state.get(p)
                if state:
                    state["exp_avg"][idx] = 0.0
                    state["exp_avg_sq"][idx] = 0.0


def _harden(model, cfg: TrainConfig, split: Split, gen, log, stop, tol, step0: int):
    """Phase 2: keep the best `harden_top` discretised members, freeze them, fine-tune."""
    metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
    keep = np.argsort(member_score(split.kind, metrics), kind="stable")[: cfg.harden_top].tolist()
    model = subset(model, keep)
    model.freeze_selectors()
    model.train()
    mode = dataclasses.replace(HARD, attention_grad=cfg.harden_attention_grad)
    opt = torch.optim.Adam(model.weight_parameters(), lr=cfg.lr, fused=True)
    n = max(cfg.total_steps - cfg.search_steps, 1)
    step = step0
    for k in range(n):
        step = step0 + 1 + k
        for g in opt.param_groups:
            g["lr"] = cfg.lr * schedules.cosine(k, n)
        if k == n // 2:
            model.stats_frozen.fill_(True)
        xb, yb = _batch(split, gen, cfg.harden_batch_size)
        loss = per_member_loss(model(xb, mode, cfg.tau_attn_end), yb, split.var_y)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if k % cfg.eval_every == 0 or k == n - 1:
            row, metrics = _eval_row(model, split, tol, cfg)
            row.update(
                step=step,
                phase="harden",
                tau=0.0,
                tau_attn=0.0,
                loss=float(loss.detach().mean()),
                loss_min=float(loss.detach().min()),
                attention_entropy=0.0,
            )
            log(row)
            done = _first_solved(split.kind, metrics, tol)
            if cfg.stop_on_exact and done is not None:
                return model, step, done
            if stop():
                break
    model.stats_frozen.fill_(True)
    return model, step, None


# The polish runs only for a best member within this validation nMSE of the targets. It is for
# precision (Kinematics_1D with the right structure: Adam 2e-5, polish 1.3e-7); a member further
# off has the wrong structure, and its ~300 float64 L-BFGS iterations (~9 s, a sixth of a restart)
# bought nothing.
POLISH_MAX_NMSE = 0.05


def _polish(model, cfg: TrainConfig, split: Split, gen, log, tol, step: int):
    """Phase 3: float64 full-batch L-BFGS of the best member's continuous weights (selectors and
    attention patterns are fixed by now, so this is a small smooth least-squares problem).

    The polished member is then polished once more with its MLPs' ReLU units switched off
    (their output weights zeroed; the polish may bring them back). This is an Occam restart:
    when the function is a product or a linear map, the bilinear and linear terms express it
    exactly, but the ReLU units Adam recruited leave the L-BFGS optimum at an approximation
    (Sum_All, readout MLP of (prefix_mean_x, pos): test exact 99.67 % after the first polish,
    99.99 % after the lean one). The lean model is polished only when it is itself within
    POLISH_MAX_NMSE on validation, so a member that needs its ReLUs pays one evaluation. The
    lower final training loss is kept."""
    metrics = evaluate(model, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
    best = int(np.argmin(member_score(split.kind, metrics)))
    if not float(metrics["nmse"][best]) <= POLISH_MAX_NMSE:
        return model  # the structure is wrong: precision cannot make it right
    xb, yb, var = _polish_batch(split, cfg, gen)
    polished, end = _polish_member(subset(model, [best]), xb, yb, var, split, cfg, tol)
    _write_member(model, best, polished)
    row, _ = _eval_row(model, split, tol, cfg)
    row.update(step=step, phase="polish", tau=0.0, tau_attn=0.0, loss=end, loss_min=end, attention_entropy=0.0)
    log(row)
    return model


def _polish_batch(
    split: Split, cfg: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`polish_size` training sequences drawn with `gen`, and the target variance, in float64."""
    idx = torch.randperm(split.x_train.shape[0], generator=gen)[: cfg.polish_size]
    return split.x_train[idx].double(), split.y_train[idx].double(), split.var_y.double()


@torch.no_grad()
def _write_member(model: DiscreteTransformer, i: int, member: DiscreteTransformer) -> None:
    """Copy a one-member model's weights into member `i` of `model` (population tensors only;
    the shared buffers stay the population's)."""
    theirs = member.state_dict()
    for name, t in model.state_dict().items():
        if _is_population(name):
            t[i] = theirs[name][0].to(t.dtype)


def _polish_member(
    member: DiscreteTransformer, xb, yb, var, split: Split, cfg: TrainConfig, tol: float
) -> tuple[DiscreteTransformer, float]:
    """L-BFGS of a one-member model, then of its lean copy (MLP ReLU outputs zeroed) when that is
    within POLISH_MAX_NMSE on validation, each stopping once it solves the validation set.
    Kept: the lean copy if it solves (its MLPs are the linear/bilinear maps symbolic regression
    reads exactly), else the member if it solves, else the lower training loss."""
    done = _solves(split, cfg, tol)
    polished, end = _lbfgs(member, xb, yb, var, cfg, cfg.polish_iters, until=done)
    polished_ok = done(polished)
    lean = _lean(polished, split, cfg)
    if lean is not None:
        lean, lean_end = _lbfgs(lean, xb, yb, var, cfg, cfg.polish_iters, until=done)
        if done(lean) or (not polished_ok and lean_end < end):
            polished, end = lean, lean_end
    return polished, end


def _solves(split: Split, cfg: TrainConfig, tol: float) -> Callable[[DiscreteTransformer], bool]:
    """Whether a one-member model (any dtype) solves the whole validation set, judged on its
    float32 copy: the precision it is stored and extracted at."""

    def done(member: DiscreteTransformer) -> bool:
        m = evaluate(copy.deepcopy(member).float(), split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)
        return bool(solved(split.kind, m, tol)[0])

    return done


def _lean(member: DiscreteTransformer, split: Split, cfg: TrainConfig) -> DiscreteTransformer | None:
    """A float32 copy of a one-member model with its MLPs' ReLU outputs zeroed, or None when that
    copy is further than POLISH_MAX_NMSE from the targets (the ReLUs carry the function)."""
    lean = copy.deepcopy(member).float()
    with torch.no_grad():
        for layer in lean.layers:
            layer["mlp"].c_r.zero_()
    lean_nmse = float(evaluate(lean, split.x_val, split.y_val, split.kind, split.var_y, cfg.tau_attn_end)["nmse"][0])
    return lean if lean_nmse <= POLISH_MAX_NMSE else None


# L-BFGS runs in chunks of this many iterations when it may stop at a solved validation: one
# evaluation of one member on the validation set (~10 ms) per chunk, against the ~0.1-0.2 s an
# iteration costs. The optimiser's state carries over between chunks.
POLISH_CHUNK = 25


def _lbfgs(
    member: DiscreteTransformer,
    xb,
    yb,
    var,
    cfg: TrainConfig,
    iters: int,
    until: Callable[[DiscreteTransformer], bool] | None = None,
) -> tuple[DiscreteTransformer, float]:
    """float64 L-BFGS (`iters` iterations) of a one-member model's continuous weights on one full
    batch; returns the model and its final loss (never worse than at the start: a failed run is
    undone). With `until`, the iterations run in chunks of POLISH_CHUNK and stop at the first
    chunk after which `until(member)` is true (the task is solved: more precision buys nothing
    the rounding rule or the tolerance can see, and Sum_All's polish ran 61 s for it)."""
    member = member.double()
    member.stats_frozen.fill_(True)
    params = member.weight_parameters()
    before = [p.detach().clone() for p in params]
    chunk = iters if until is None else min(iters, POLISH_CHUNK)
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=chunk,
        history_size=50,
        tolerance_grad=1e-14,
        tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = per_member_loss(member(xb, HARD, cfg.tau_attn_end), yb, var).sum()
        loss.backward()
        return loss

    start = float(closure().detach())
    state = opt.state[params[0]]
    left = iters
    while left > 0:
        n = min(chunk, left)
        # One evaluation budget for all chunks (LBFGS's default, 1.25 per iteration).
        opt.param_groups[0].update(max_iter=n, max_eval=max(1, iters * 5 // 4 - state.get("func_evals", 0)))
        ran = -state.get("n_iter", 0)
        opt.step(closure)
        ran += state.get("n_iter", 0)
        left -= n
        # A chunk that stopped short converged (or ran out of evaluations): one long run would
        # have ended there too, and the next chunk would only start it again.
        if ran < n or (until is not None and left > 0 and until(member)):
            break
    end = float(closure().detach())
    if not np.isfinite(end) or end > start:  # never let the polish make things worse
        with torch.no_grad():
            for p, b in zip(params, before):
                p.copy_(b)
        end = start
    return member, end


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
