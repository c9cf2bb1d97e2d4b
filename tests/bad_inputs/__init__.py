"""The bad-input cases: every way a user can hand `dtx` something unusable, and what it says.

Each :class:`Case` builds its inputs in an empty working directory, then runs one ``dtx``
command line there (relative paths, so the messages are the same on every machine).
``tests/test_bad_inputs.py`` runs every case and checks: a non-zero exit code, one line
``error: ...`` naming the file or option and the problem, no traceback, and nothing written or
overwritten. ``tests/errors_doc.py`` runs the same cases to write ``docs/errors.md``, so the
documented messages are the real ones. Test fixtures, not part of the package.
"""

from __future__ import annotations

from .case import Case, Outcome, run_case, snapshot
from .command_cases import command_cases
from .data_cases import data_cases

# The order is the docs table's: data files, then options, then extract / checkpoints.
CASES: tuple[Case, ...] = (*data_cases(), *command_cases())

__all__ = ["CASES", "Case", "Outcome", "run_case", "snapshot"]
