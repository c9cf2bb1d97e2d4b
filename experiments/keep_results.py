"""Keep a finished bench's verdicts beside the journal entry that cites them.

    python experiments/keep_results.py BENCH_DIR OUT.json

A bench's ``runs/`` directory does not outlive the machine it ran on, and the next session's
comparison (``experiments/compare_benches.py``) or per-family report needs the other arm's rows.
This writes its ``results.json`` reduced to the fields those read (verdicts, sizes, times, the
task's family and bands) and its meta, in the same ``dtx-bench`` format, so that either script
accepts the kept file in place of the directory.

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from discrete_transformer.bench.report import read_results

FIELDS = (
    "task", "family", "generator", "generalises", "bands", "kind", "T", "seed", "commit", "error",
    "program_verified", "length_gen", "wider_gen", "program_ops", "reference_ops",
    "dt_model_solved", "dt_test_exact", "dt_test_nmse", "dt_restarts_run", "dt_train_s", "extract_s", "wall_s",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", help="a `dtx bench --out` directory or its results.json")
    ap.add_argument("out", help="the JSON file to write")
    a = ap.parse_args(argv)
    p = Path(a.bench)
    try:
        doc = read_results(p / "results.json" if p.is_dir() else p)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    rows = [{k: r[k] for k in FIELDS if k in r} for r in doc["rows"]]
    kept = {"format": doc["format"], "meta": doc.get("meta", {}), "rows": rows}
    Path(a.out).write_text(json.dumps(kept, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{a.out}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
