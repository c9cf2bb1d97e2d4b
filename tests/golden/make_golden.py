"""Write tests/golden/<case>.json from the code on PYTHONPATH (first made from the pre-refactor
commit b424169, then again when the fused attention head changed the float rounding)::

OMP_NUM_THREADS=1 .venv/bin/python tests/golden/make_golden.py

With ``--machine``, only this machine's state hash and test scores are added to each existing
fixture, under "machines" (cases.machine_key): run it from a commit whose golden test passes on
the fixture's first machine, so that the new entry is that behaviour on other float kernels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import CASES, HERE, machine_key, run_case  # noqa: E402

import discrete_transformer  # noqa: E402

if __name__ == "__main__":
    print(f"discrete_transformer from {Path(discrete_transformer.__file__).parent}", file=sys.stderr)
    machine = "--machine" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--machine"]
    for name in args or CASES:
        doc = run_case(name)
        path = HERE / f"{name}.json"
        print(f"{name}: {doc['task']} test={doc['test']} sha={doc['state_sha256'][:12]}", file=sys.stderr)
        if machine:
            first = json.loads(path.read_text(encoding="utf-8"))
            first.setdefault("machines", {})[machine_key()] = {k: doc[k] for k in ("state_sha256", "test")}
            doc = first
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
