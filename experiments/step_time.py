"""The search step's time against the sequence length T (docs/journal/2026-12-07-target-scale-decision.md, §7).

    python experiments/step_time.py                 # ms per step of the first two restarts' variants, T = 12, 24, 36
    python experiments/step_time.py --profile 36    # torch.profiler's top operations, 60 arithmetic steps at T
    python experiments/step_time.py --compile 36    # one forward + backward, eager against torch.compile, at T
    python experiments/step_time.py --compare       # search steps, the fused attention head against the composed form

The data is a prefix sum of x in 0..9 (4,000 sequences), one thread. Timings include setup and
one evaluation: for comparing lengths and variants within one run, not for absolute figures.

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs
from discrete_transformer.model import DiscreteTransformer, SelectMode
from discrete_transformer.training import loop


def _data(T: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).integers(0, 10, size=(4000, T, 1)).astype(np.float64)
    return x, np.cumsum(x, axis=1)


def _restart(T: int, index: int, steps: int) -> tuple[str, float]:
    """Seconds of one restart of the portfolio's variant `index`: `steps` search steps, no
    hardening, polish or early stop."""
    x, y = _data(T)
    split = loop.Split.from_arrays(x, y, "discrete", 500, 0)
    spec = loop.data_spec(x, y, ("x",), ("y",))
    train = TrainConfig(steps=steps, harden_fraction=0.0, eval_every=1000, polish_iters=0, stop_on_exact=False)
    model, train, name = restart_configs(ModelConfig(), train, index)
    t0 = time.perf_counter()
    loop.train_restart(model, train, split, spec, seed=0)
    return name, time.perf_counter() - t0


def timings(lengths: list[int], steps: int = 150) -> None:
    for T in lengths:
        for index in (0, 1):
            name, s = _restart(T, index, steps)
            print(f"T={T} {name}: {1000 * s / steps:.1f} ms/step ({steps} steps, setup and one evaluation included)")


def profile(T: int, steps: int = 60) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        _restart(T, 0, steps)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=40))
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=14))


def compiled(T: int, population: int = 16, batch: int = 16, repeats: int = 20) -> None:
    """One search step's forward and backward (Gumbel sampling on), eager against torch.compile."""
    x, y = _data(T)
    spec = loop.data_spec(x, y, ("x",), ("y",))
    model_cfg, _, _ = restart_configs(ModelConfig(), TrainConfig(), 0)
    model = DiscreteTransformer(model_cfg, spec, population=population, seed=0)
    xb = torch.tensor(x[:batch], dtype=torch.float32)
    yb = torch.tensor(y[:batch], dtype=torch.float32)
    var = torch.tensor(float(y.var()))
    gen = torch.Generator().manual_seed(0)

    def step(forward) -> None:
        mode = SelectMode(
            tau=torch.full((population,), 1.0),
            per_example=True,
            generator=gen,
            batch=batch,
            attention_st=None,
            attention_hard_tau=0.02,
        )
        loop.per_member_loss(forward(xb, mode, torch.full((population,), 0.5)), yb, var).sum().backward()

    for name, forward in (("eager", model), ("compiled", torch.compile(model))):
        t0 = time.perf_counter()
        step(forward)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(repeats):
            step(forward)
        print(f"{name}: {1000 * (time.perf_counter() - t0) / repeats:.1f} ms/step (first step {first:.1f} s)")


def _search_ms(
    model_cfg: ModelConfig, T: int, fused: bool, st: bool, population: int, batch: int, repeats: int
) -> float:
    """ms per search step (forward, backward, Adam) of a new model with the fused head on or off."""
    x, y = _data(T)
    spec = loop.data_spec(x, y, ("x",), ("y",))
    xb = torch.tensor(x[:batch], dtype=torch.float32)
    yb = torch.tensor(y[:batch], dtype=torch.float32)
    var = torch.tensor(float(y.var()))
    model = DiscreteTransformer(model_cfg, spec, population=population, seed=0)
    for layer in model.layers:
        layer["attn"].fused = fused
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    gen = torch.Generator().manual_seed(0)
    tau_a = torch.full((population,), 0.5)
    t0 = 0.0
    for i in range(3 + repeats):
        if i == 3:  # three warm-up steps
            t0 = time.perf_counter()
        mode = SelectMode(
            tau=torch.full((population,), 1.0),
            per_example=True,
            generator=gen,
            batch=batch,
            attention_st=torch.ones(population) if st else None,
            attention_hard_tau=0.02,
        )
        opt.zero_grad(set_to_none=True)
        loop.per_member_loss(model(xb, mode, tau_a), yb, var).sum().backward()
        opt.step()
    return 1000 * (time.perf_counter() - t0) / repeats


def compare(lengths: list[int], population: int = 16, batch: int = 16, repeats: int = 40) -> None:
    """Search steps of the first two restarts' variants, soft and straight-through attention,
    with the attention layers' fused head (model/head.py) on and off, each timed twice,
    alternately, in this one process (the best of two); the ratio is composed / fused."""
    for T in lengths:
        for index in (0, 1):
            model_cfg, _, name = restart_configs(ModelConfig(), TrainConfig(), index)
            for st in (False, True):
                ms: dict[bool, list[float]] = {True: [], False: []}
                for fused in (True, False, True, False):  # alternated: drift hits both forms
                    ms[fused].append(_search_ms(model_cfg, T, fused, st, population, batch, repeats))
                f, c = min(ms[True]), min(ms[False])
                how = "straight-through" if st else "soft"
                print(f"T={T} {name} {how}: fused {f:.1f} ms/step, composed {c:.1f} ms/step, {c / f:.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[12, 24, 36], help="sequence lengths to time")
    ap.add_argument("--profile", type=int, metavar="T", help="profile the arithmetic variant at this length")
    ap.add_argument("--compile", type=int, metavar="T", help="eager against torch.compile at this length")
    ap.add_argument("--compare", action="store_true", help="the fused attention head against the composed form")
    args = ap.parse_args(argv)
    if any(T < 2 for T in args.lengths) or any(v is not None and v < 2 for v in (args.profile, args.compile)):
        ap.error("sequence lengths must be >= 2")
    torch.set_num_threads(1)
    if args.profile is not None:
        profile(args.profile)
    elif args.compile is not None:
        compiled(args.compile)
    elif args.compare:
        compare(args.lengths)
    else:
        timings(args.lengths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
