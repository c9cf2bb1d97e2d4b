"""What every ``dtx`` command shares: exit codes, the one-line error and the `--set` help.

Kept apart from :mod:`.cli` so that the command modules (:mod:`.cli_bench`, and the research
entry point in ``experiments/``) end a command the same way without importing the app itself.
"""

from __future__ import annotations

import os
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
DEBUG_ENV = "DTX_DEBUG"

SET_HELP = "Override a config field: section.field=value (sections model, train, extract); repeatable."


def fail(message: str) -> NoReturn:
    """One red line on stderr, exit code 2."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    first = str(message).strip().splitlines()[0] if str(message).strip() else "unknown error"
    err.print(f"[bold red]error:[/bold red] {escape(first)}")
    raise typer.Exit(EXIT_USAGE)


def unexpected(e: Exception) -> NoReturn:
    """An exception no check anticipated: one red line (type and message) and exit code 1, or the
    full traceback when ``DTX_DEBUG=1`` — reported, never swallowed."""
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        raise e
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    text = str(e).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    err.print(
        f"[bold red]error:[/bold red] unexpected {type(e).__name__}{escape(detail)} "
        f"(set {DEBUG_ENV}=1 for the traceback; please report it)"
    )
    raise typer.Exit(EXIT_INTERNAL)
