"""Watch a restart's search: every member's argmax choices, by variable name, as the search runs.

    python experiments/search_members.py SOURCE [--variant arithmetic] [--seed 0] [--every 200] [--steps 2000] [--members 4]

Runs the search phase of one restart (the variant's model and training configs, the default
otherwise) and prints, every ``--every`` steps, each member's training loss and what its
selectors currently pick: each head's query, key and value variable, its pattern and aggregate
options, each MLP's inputs and the readout. This is how a search that settles on a wrong
program shows *which* choice it committed to first (for a target that grows along the sequence,
every selector drifting to ``pos``; docs/journal/2026-12-07-pos-trap.md).

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse

import torch

from discrete_transformer.config import SEARCH_VARIANTS, ModelConfig, TrainConfig, restart_configs
from discrete_transformer.model.transformer import DiscreteTransformer
from discrete_transformer.tasks import load_source
from discrete_transformer.training.evaluation import Split, data_spec, per_member_loss
from discrete_transformer.training.loop import sample_batch, search_mode, straight_through_from


def describe(model: DiscreteTransformer, member: int) -> str:
    """One member's argmax choices, variables by name."""
    names = model.variable_names
    parts = []
    for key, choice in model.choices().items():
        c = choice[member]
        if key.endswith(".attn"):  # (H, 3): q, k, v
            layer = key.split(".")[0]
            parts += [f"{layer}.H{h}(q={names[q]},k={names[k]},v={names[v]})" for h, (q, k, v) in enumerate(c.tolist())]
        elif key.endswith(".mlp"):  # (M, arity)
            layer = key.split(".")[0]
            parts += [f"{layer}.M{m}({','.join(names[i] for i in ins)})" for m, ins in enumerate(c.tolist())]
        elif key == "readout":
            parts.append("readout=" + ",".join(names[i] for i in c.tolist()))
        else:  # pattern, aggregate, offset, tie choices: option indices per head
            parts.append(f"{key}={c.tolist()}")
    return " ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="built-in task name or data file")
    ap.add_argument("--variant", default="arithmetic", choices=sorted(SEARCH_VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=200, help="steps between printouts")
    ap.add_argument("--steps", type=int, default=TrainConfig().steps, help="the restart's steps (search + hardening)")
    ap.add_argument("--members", type=int, default=4, help="members printed (the population is trained whole)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = load_source(args.source)
    model_cfg, train_cfg, _ = restart_configs(
        ModelConfig(), TrainConfig(steps=args.steps, portfolio=(args.variant,)), 0
    )
    split = Split.from_arrays(ds.x_train, ds.y_train, ds.kind, train_cfg.val_size, args.seed)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    P = train_cfg.population
    model = DiscreteTransformer(model_cfg, spec, population=P, seed=args.seed)
    model.train()
    opt_w = torch.optim.Adam(model.weight_parameters(), lr=train_cfg.lr)
    opt_s = torch.optim.Adam(model.selector_parameters(), lr=train_cfg.lr_selector)
    st_start = straight_through_from(train_cfg)
    print(f"{args.source}: variant {args.variant}, T={spec.T}, {train_cfg.search_steps} search steps, {P} members")
    for step in range(train_cfg.search_steps):
        xb, yb = sample_batch(split, gen, train_cfg.batch_size)
        mode, tau_a = search_mode(train_cfg, step, P, gen, xb.shape[0], st_start)
        opt_w.zero_grad(set_to_none=True)
        opt_s.zero_grad(set_to_none=True)
        loss = per_member_loss(model(xb, mode, tau_a), yb, split.var_y)
        loss.sum().backward()
        opt_w.step()
        opt_s.step()
        if step % args.every == 0 or step == train_cfg.search_steps - 1:
            loss = loss.detach()
            print(f"step {step}: loss min {float(loss.min()):.4f}, median {float(loss.median()):.4f}")
            for p in range(min(args.members, P)):
                print(f"  member {p}: loss {float(loss[p]):.4f}  {describe(model, p)}")


if __name__ == "__main__":
    main()
