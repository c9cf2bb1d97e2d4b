"""Compare two finished benches of the same tasks, task by task: the decision table of a change
to a default (docs/workflow.md).

    python experiments/compare_benches.py BASE_DIR CANDIDATE_DIR [--public-results FILE]

Each directory is one `dtx bench --out` directory (its ``results.json``); a results.json file is
accepted too. Printed: verified programs in each (and on the tasks of families that generalise a
public task the library verifies, when ``--public-results`` names a public bench's
results.json), the tasks won and lost, model-exact counts, the median task time and the total
wall time. Only tasks present in both are compared; the others are listed.

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from discrete_transformer.bench.report import read_results
from discrete_transformer.bench.runner import row_verified as _verified


def _rows(path: str) -> tuple[dict[str, dict], dict]:
    p = Path(path)
    try:
        doc = read_results(p / "results.json" if p.is_dir() else p)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    rows = {r["task"]: r for r in doc["rows"] if int(r.get("seed", 0)) == 0}
    return rows, doc.get("meta", {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("candidate")
    ap.add_argument("--public-results", help="a public-suite bench's results.json (which public tasks verify)")
    a = ap.parse_args(argv)
    base, base_meta = _rows(a.base)
    cand, cand_meta = _rows(a.candidate)
    common = [t for t in base if t in cand]
    only = sorted(set(base) ^ set(cand))
    public: set[str] | None = None
    if a.public_results:
        from discrete_transformer.bench.generalization import load_public_results

        public = set(load_public_results(a.public_results)["verified"])

    def count(rows: dict[str, dict], tasks: list[str]) -> int:
        return sum(_verified(rows[t]) for t in tasks)

    names = ", ".join(only) if len(only) <= 10 else f"{', '.join(only[:10])}, ..."
    print(f"tasks compared: {len(common)}" + (f" ({len(only)} in one only: {names})" if only else ""))
    print(f"verified: base {count(base, common)}, candidate {count(cand, common)}")
    if public is not None:
        gen = [t for t in common if base[t].get("generalises") in public]
        print(
            f"  of {len(gen)} tasks generalising a verified public task: base {count(base, gen)}, "
            f"candidate {count(cand, gen)}"
        )
    exact = lambda rows: sum(bool(rows[t].get("dt_model_solved")) for t in common)  # noqa: E731
    print(f"model exact/solved: base {exact(base)}, candidate {exact(cand)}")
    won = [t for t in common if _verified(cand[t]) and not _verified(base[t])]
    lost = [t for t in common if _verified(base[t]) and not _verified(cand[t])]
    print(f"won ({len(won)}): {', '.join(won) or '-'}")
    print(f"lost ({len(lost)}): {', '.join(lost) or '-'}")
    med = lambda rows: statistics.median(float(rows[t].get("wall_s") or 0.0) for t in common)  # noqa: E731
    print(f"median task s: base {med(base):.0f}, candidate {med(cand):.0f}")
    wall = lambda m: float(m.get("wall_s") or 0.0) / 60  # noqa: E731
    print(f"total wall min: base {wall(base_meta):.1f}, candidate {wall(cand_meta):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
