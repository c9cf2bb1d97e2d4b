"""Rebuild a public bench's verdicts from docs/benchmarks.md's per-task table, as a results.json
that `dtx bench --public-results` reads, for when the bench directory itself is gone.

    python experiments/public_verdicts.py docs/benchmarks.md OUT.json

Only the fields `--public-results` reads are written (`task`, `family`, `program_verified`), and
the file says where they came from. Research code: the package never imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from discrete_transformer.bench.generalization import GENERATED
from discrete_transformer.tasks import TASKS
from discrete_transformer.verdict import KINDS


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit(__doc__)
    src, out = Path(args[0]), Path(args[1])
    if not src.is_file():
        raise SystemExit(f"error: {src}: file not found (give a benchmark report such as docs/benchmarks.md)")
    families = {t.family for t in TASKS} - {GENERATED}
    rows = []
    for line in src.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # the per-task table: task | family | kind | seed | DT model | verified | ...
        if len(cells) > 5 and cells[1] in families and cells[2] in KINDS:
            rows.append({"task": cells[0], "family": cells[1], "program_verified": cells[5] == "**yes**"})
    if not rows:
        raise SystemExit(f"error: no per-task table in {src}")
    doc = {"format": "dtx-bench", "source": f"the per-task table of {src}", "rows": rows}
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {sum(r['program_verified'] for r in rows)}/{len(rows)} public tasks verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
