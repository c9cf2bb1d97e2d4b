"""A bad-input case, and how one is run: in an empty working directory, through the real CLI."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from discrete_transformer.cli import app

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    input: str  # what is wrong, in words (the docs table's "input" column)
    argv: tuple[str, ...]  # the dtx command line, without "dtx"
    setup: Setup  # writes the case's files into the working directory
    expect: tuple[str, ...]  # fragments the message must contain (file/option, field, problem)
    # The message ends with a dependency's own wording in parentheses (safetensors, numpy), which
    # may change between versions: the docs drift check compares only the text before it.
    library_detail: bool = False


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]

    @property
    def message(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[0] if len(lines) == 1 else "\n".join(lines)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` → SHA-256 of its bytes ("dir" for directories)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_case(case: Case, workdir: Path) -> Outcome:
    """Build the case in the empty `workdir` and run its command there (through the real CLI)."""
    workdir.mkdir(parents=True, exist_ok=True)
    case.setup(workdir)
    before = snapshot(workdir)
    env = {"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb", "DTX_DEBUG": ""}
    with contextlib.chdir(workdir):
        res = CliRunner().invoke(app, list(case.argv), env=env)
    after = snapshot(workdir)
    stderr = res.stderr
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        stderr += f"\nTraceback (escaped exception): {type(res.exception).__name__}: {res.exception}"
    return Outcome(res.exit_code, res.stdout, stderr, before, after)
