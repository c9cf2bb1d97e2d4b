"""Write tests/golden/<case>.json from the code on PYTHONPATH (the pre-refactor commit)::

git -C /work/main worktree add /work/golden_wt b424169
PYTHONPATH=/work/golden_wt/src OMP_NUM_THREADS=1 .venv/bin/python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import CASES, HERE, run_case  # noqa: E402

import discrete_transformer  # noqa: E402

if __name__ == "__main__":
    print(f"discrete_transformer from {Path(discrete_transformer.__file__).parent}", file=sys.stderr)
    for name in sys.argv[1:] or CASES:
        doc = run_case(name)
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{name}: {doc['task']} test={doc['test']} sha={doc['state_sha256'][:12]}", file=sys.stderr)
