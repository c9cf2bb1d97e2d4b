"""Extract the restarts a bench did not extract: would a runner-up restart's program verify?

    python experiments/other_restarts.py BENCH_DIR [--jobs 2] [--out FILE.json]

The bench extracts one model per task, the restart with the best validation score. When that
program does not verify, another restart's model may still give one that does (a restart whose
model is less accurate can be the one whose modules are exact). For every task of the bench
whose program did not verify, each other finished restart (``restarts/seed*``) is rebuilt with
its own portfolio variant's configs and extracted with the default ExtractConfig, ``--jobs`` at
a time (one thread each). Printed: per task, each restart's variant, validation score and
verdict; then how many failed tasks some other restart would have verified. The bench directory
is never written to.

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _extract_restart(run_dir: str, seed: int) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from discrete_transformer.api import extract as dtx_extract
    from discrete_transformer.api import load_run, restart_model
    from discrete_transformer.config import ModelConfig, TrainConfig, from_dict, restart_configs
    from discrete_transformer.rundir import RunDir
    from discrete_transformer.training.resume import load_restarts

    d = Path(run_dir)
    run = load_run(d)  # the run as the bench left it: its spec, seed and source
    cfg = RunDir(d).read_config()  # the run's own configs, before any restart's variant
    base_model, base_train = from_dict(ModelConfig, cfg["model"]), from_dict(TrainConfig, cfg["train"])
    (r,) = load_restarts(d, [seed])
    variant = restart_configs(base_model, base_train, seed - run.seed)[2]
    net, model_cfg, train_cfg = restart_model(base_model, base_train, run.spec, r, run.seed)
    result = dataclasses.replace(
        run,
        model=net,
        model_config=model_cfg,
        train_config=train_cfg,
        best=r,
        restarts=[r],
        test={"exact": float("nan"), "nmse": float("nan"), "n": 0},  # not scored here; the program is
    )
    t0 = time.perf_counter()
    p = dtx_extract(result)  # the data reloaded from the run's source
    return {
        "task": d.name,
        "seed": seed,
        "variant": variant,
        "val_score": float(r.val.get("score", float("nan"))),
        "verified": bool(p.verified),
        "test_exact": p.verification.test.exact,
        "test_nmse": p.verification.test.nmse,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write every extraction's figures here as JSON")
    args = ap.parse_args(argv)
    work = []
    for row_path in sorted((args.bench / "tasks").glob("*/bench_row.json")):
        row = json.loads(row_path.read_text())
        if row.get("program_verified"):
            continue
        d = row_path.parent
        best = int(json.loads((d / "result.json").read_text())["best_seed"])
        seeds = sorted(int(p.stem.removeprefix("seed")) for p in (d / "restarts").glob("seed*.json"))
        work += [(str(d), s) for s in seeds if s != best]
    print(f"{len(work)} restarts to extract", flush=True)
    done: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_extract_restart, d, s): (d, s) for d, s in work}
        for f in futures:
            d, s = futures[f]
            try:
                rec = f.result()
            except Exception as e:  # noqa: BLE001 - report and go on
                rec = {"task": Path(d).name, "seed": s, "error": f"{type(e).__name__}: {e}"}
            done.append(rec)
            print(json.dumps(rec), flush=True)
    won = sorted({r["task"] for r in done if r.get("verified")})
    print(f"failed tasks: {len({Path(d).name for d, _ in work})}; verified by another restart: {len(won)}")
    for t in won:
        print("  ", t)
    if args.out:
        args.out.write_text(json.dumps(done, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
