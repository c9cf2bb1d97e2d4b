"""Before/after programs of the simplification stage (docs/extraction.md, "After a program
verifies: the simplification stage").

    python experiments/simplify_examples.py RUNDIR [RUNDIR ...] [--budget S] [--comments]

Each run directory's trained model is extracted twice through the public API: with the stage
off (``simplify_budget=0``: the program as it first verified, or as the repair search left it)
and with it on (``--budget`` nominal seconds, default: ExtractConfig's). For each, the code of
``program()`` (evidence comments dropped unless ``--comments``), its size in operations (one per
routing head, the expression size of each MLP line: the bench's ``program_ops``), the verdict on
the test split and on longer sequences, and the extraction time are printed; then one Markdown
table of all of them. Nothing is written into the run directories; extraction holds a run
directory's lock while it reads it, so copy one that another process may be using.

Research code: it uses the package's public API and the package never imports it.
"""

from __future__ import annotations

import argparse
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from discrete_transformer.api import extract
from discrete_transformer.extraction.config import ExtractConfig
from discrete_transformer.extraction.simplify_fits import program_ops
from discrete_transformer.extraction.verify import longer_label


@dataclass(frozen=True)
class Extracted:
    ops: int
    verified: bool
    longer: bool | None  # the longer-sequence check (None: not available)
    seconds: float  # the whole extraction
    stage: float | None  # the simplification stage's own seconds (None: it did not run)
    code: str  # program()'s lines


def program_code(source: str, comments: bool) -> str:
    """The lines of the generated ``program()`` (its docstring dropped; evidence comments too
    unless `comments`)."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def program("))
    out = [lines[start]]
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        stripped = line.strip()
        if not stripped or stripped.startswith('"""'):
            continue
        out.append(line if comments else _without_comment(line))
    return "\n".join(out)


def _without_comment(line: str) -> str:
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline):
            if tok.type == tokenize.COMMENT:
                indent = len(line) - len(line.lstrip())
                return (" " * indent + line.strip()[: tok.start[1]]).rstrip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return line.rstrip()


def run_once(run_dir: Path, budget: float, comments: bool) -> Extracted:
    p = extract(run_dir, config=ExtractConfig(simplify_budget=budget))
    stage = next((row.get("seconds") for row in p.search_log if row.get("stage") == "simplify"), None)
    return Extracted(
        program_ops(p.ir),
        p.verified,
        p.verification.generalises,
        p.seconds,
        stage,
        program_code(p.source, comments),
    )


def _verdict(e: Extracted) -> str:
    label = longer_label()
    longer = {True: f"{label} passes", False: f"{label} fails", None: f"{label} n/a"}[e.longer]
    return f"{'verified' if e.verified else 'NOT verified'}, {longer}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--budget", type=float, default=ExtractConfig().simplify_budget, help="the stage's nominal seconds")
    ap.add_argument("--comments", action="store_true", help="keep the evidence comments")
    args = ap.parse_args(argv)
    rows = []
    for d in args.run_dirs:
        before = run_once(d, 0.0, args.comments)
        after = run_once(d, args.budget, args.comments)
        rows.append((d.name, before, after))
        print(f"## {d.name}\n")
        print(f"before ({before.ops} operations, {_verdict(before)}, extraction {before.seconds:.1f} s):\n")
        print(f"```python\n{before.code}\n```\n")
        stage = f", of which the stage {after.stage:.1f} s" if after.stage is not None else ""
        print(f"after ({after.ops} operations, {_verdict(after)}, extraction {after.seconds:.1f} s{stage}):\n")
        print(f"```python\n{after.code}\n```\n", flush=True)
    print("| run | ops before | ops after | before | after | extraction s before / after | stage s |")
    print("|---|---:|---:|---|---|---:|---:|")
    for name, b, a in rows:
        stage = f"{a.stage:.1f}" if a.stage is not None else ""
        print(
            f"| {name} | {b.ops} | {a.ops} | {_verdict(b)} | {_verdict(a)} "
            f"| {b.seconds:.1f} / {a.seconds:.1f} | {stage} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
