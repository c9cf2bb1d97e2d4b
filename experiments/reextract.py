"""Re-extract a finished bench's models with the current extraction and compare with its rows.

    python experiments/reextract.py BENCH_DIR [BENCH_DIR ...] [--jobs 2] [--verified-only | --failed-only] [--out DIR]

An extraction change (the simplification stage, the repair search) is checked without training
again: every task of each bench directory (``results.json`` and its ``tasks/``) is copied to a
scratch directory and extracted there with the default ExtractConfig, ``--jobs`` at a time (one
thread each). Printed: each task whose verdict, size (``program_ops``) or longer-sequence result
differs from the bench row; per bench, the verified count, the median size ratio to the
reference program and the share within 1.5× (the bench's own summary figures), and the verified
programs of discrete tasks that call ``sqrt``, ``exp`` or ``log``. The bench directories are
never written to.

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Redone:
    bench: str
    task: str
    verified: bool
    ops: int
    longer: bool | None
    seconds: float
    transcendental: int  # sqrt/exp/log calls in the program's MLP lines


def _extract(bench: str, task: str, run_dir: str, scratch: str) -> Redone:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from discrete_transformer.api import extract
    from discrete_transformer.extraction.graph import MLPNode
    from discrete_transformer.extraction.simplify_fits import program_ops, transcendentals

    dst = Path(scratch) / bench / task
    shutil.copytree(run_dir, dst, dirs_exist_ok=True)
    p = extract(dst)
    calls = sum(transcendentals(n.source) for n in p.ir.nodes if isinstance(n, MLPNode) and not n.is_alias)
    return Redone(bench, task, p.verified, program_ops(p.ir), p.verification.generalises, p.seconds, calls)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("benches", nargs="+", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--verified-only", action="store_true", help="only the tasks whose program verified in the bench")
    only.add_argument(
        "--failed-only",
        action="store_true",
        help="only the tasks whose program did not verify (a change to the repair's last step can move no other)",
    )
    ap.add_argument("--out", type=Path, help="write every re-extraction's figures here as JSON")
    args = ap.parse_args(argv)
    from discrete_transformer.bench.report import NEAR_REFERENCE, read_results
    from discrete_transformer.bench.runner import row_verified

    rows: dict[tuple[str, str], dict] = {}
    work = []
    for b in args.benches:
        try:
            doc = read_results(b / "results.json")
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        for r in doc["rows"]:
            if r.get("error") or (args.verified_only and not row_verified(r)) or (args.failed_only and row_verified(r)):
                continue
            run_dir = Path(r["run_dir"])  # as the bench wrote it (relative to where it ran) ...
            if not run_dir.is_dir():
                run_dir = b / "tasks" / r["task"]  # ... or where it sits now
            rows[(b.name, r["task"])] = r
            work.append((b.name, r["task"], str(run_dir)))
    done: list[Redone] = []
    with tempfile.TemporaryDirectory(prefix="reextract-") as scratch, ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(_extract, b, t, d, scratch) for b, t, d in work]
        for i, f in enumerate(futures, 1):
            x = f.result()
            done.append(x)
            r = rows[(x.bench, x.task)]
            was = (r.get("program_verified"), r.get("program_ops"), r.get("length_gen"))
            if was != (x.verified, x.ops, x.longer):
                print(
                    f"[{i}/{len(work)}] {x.bench}/{x.task}: bench verified={was[0]} ops={was[1]} longer={was[2]}"
                    f" -> verified={x.verified} ops={x.ops} longer={x.longer} ({x.seconds:.1f} s)",
                    flush=True,
                )
    for b in dict.fromkeys(x.bench for x in done):
        mine = [x for x in done if x.bench == b]
        ver = [x for x in mine if x.verified]
        ratios = [x.ops / rows[(b, x.task)]["reference_ops"] for x in ver if rows[(b, x.task)].get("reference_ops")]
        was = sum(row_verified(rows[(b, x.task)]) for x in mine)
        near = sum(q <= NEAR_REFERENCE for q in ratios)
        med = f"{statistics.median(ratios):.2f}" if ratios else "-"
        secs = [x.seconds for x in mine]
        bench_secs = [
            float(rows[(b, x.task)]["extract_s"]) for x in mine if rows[(b, x.task)].get("extract_s") is not None
        ]
        print(
            f"{b}: verified {len(ver)}/{len(mine)} (bench: {was}); median size ratio {med} over {len(ratios)}, "
            f"{near}/{len(ratios)} within {NEAR_REFERENCE}x; extraction median {statistics.median(secs):.1f} s, "
            f"total {sum(secs) / 60:.1f} min"
            + (f" (bench: {statistics.median(bench_secs):.1f} s, {sum(bench_secs) / 60:.1f} min)" if bench_secs else "")
        )
        for x in ver:
            q = x.ops / rows[(b, x.task)]["reference_ops"] if rows[(b, x.task)].get("reference_ops") else None
            if q is not None and q > NEAR_REFERENCE:
                print(
                    f"  above {NEAR_REFERENCE}x: {x.task} ({x.ops} ops, reference {rows[(b, x.task)]['reference_ops']})"
                )
            if x.transcendental and rows[(b, x.task)].get("kind") == "discrete":
                print(f"  sqrt/exp/log in a discrete task's program: {x.task} ({x.transcendental} calls)")
    if args.out is not None:
        args.out.write_text(json.dumps([asdict(x) for x in done], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
