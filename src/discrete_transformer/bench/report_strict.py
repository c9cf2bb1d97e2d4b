"""The stricter verification checks in the bench reports (both :mod:`.report` and
:mod:`.generalization`): a verified program also exact on longer sequences (row key
``length_gen``, at ``longer_factor`` times the trained T) and on integer inputs a little outside the
training range (``wider_gen``; None where the task allows no such check). Both are reported
beside *verified*, never counted in it (extraction/verify.py).

Rows store their own factor because it changed: rows written before ``longer_factor`` existed
ran at 2×T (:data:`OLD_FACTOR`), so a resumed bench can hold both; the column header names the
factors of its rows and a note says when they are mixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..extraction.verify import LONGER_FACTOR, longer_label
from .runner import row_verified

OLD_FACTOR = 2  # the longer check's factor in rows from before the ``longer_factor`` field
OFF_RANGE = "off-range"  # the off-range column's header


def row_factor(row: dict[str, Any]) -> int:
    """The T multiple of a row's longer-sequence check."""
    f = row.get("longer_factor")
    return int(f) if isinstance(f, (int, float)) and f > 0 else OLD_FACTOR


def factors(rows: Iterable[dict[str, Any]]) -> list[int]:
    """The longer-check factors of the finished rows, ascending ([LONGER_FACTOR] when none)."""
    return sorted({row_factor(r) for r in rows if not r.get("error")}) or [LONGER_FACTOR]


def longer_header(rows: Sequence[dict[str, Any]]) -> str:
    """The longer check's column header: ``4×T``, or ``2×T/4×T`` when the rows mix factors."""
    return "/".join(longer_label(f) for f in factors(rows))


def longer_cell(row: dict[str, Any], mixed: bool) -> str:
    """A row's longer-check cell (yes/no/–), with its factor when the rows mix factors."""
    v = row.get("length_gen")
    text = "–" if v is None else ("yes" if v else "no")
    return f"{text} ({longer_label(row_factor(row))})" if mixed and v is not None else text


def wider_cell(row: dict[str, Any]) -> str:
    """A row's off-range cell: yes/no, – when the task allows no such check (or the row is older)."""
    v = row.get("wider_gen")
    return "–" if v is None else ("yes" if v else "no")


def legend(rows: Sequence[dict[str, Any]]) -> str:
    """The words for the two columns, for a report's legend paragraph."""
    fs = factors(rows)
    times = " or ".join(str(f) for f in fs)
    mixed = (
        f" (these rows mix factors: rows from before the factor was recorded ran at {longer_label(OLD_FACTOR)})"
        if len(fs) > 1
        else ""
    )
    return (
        f"*{longer_header(rows)}*: the program is also exact on sequences {times} times as long{mixed}; "
        f"*{OFF_RANGE}*: also on integer inputs a little outside the training range (– where the task's rule "
        "is defined on its trained values only: bits, digits, residues, symbols, reals; or a row from before "
        "the check). Neither is part of *verified*."
    )


def task_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """One task's contribution (over its seeds) to its family's counts: verified and exact on the
    longer sequences; verified with an off-range check; verified and holding off-range."""
    ver = [r for r in rows if row_verified(r)]
    return {
        "verified_longer": int(any(r.get("length_gen") for r in ver)),
        "off_range_checked": int(any(r.get("wider_gen") is not None for r in ver)),
        "verified_off_range": int(any(r.get("wider_gen") for r in ver)),
    }


def headline_part(s: dict[str, Any]) -> str:
    """The headline's words on the stricter checks, from a summary's ``by_family`` counts."""
    fams = s["by_family"].values()
    longer = sum(d.get("verified_longer", 0) for d in fams)
    label = "/".join(longer_label(f) for f in s.get("longer_factors") or [LONGER_FACTOR])
    checked = sum(d.get("off_range_checked", 0) for d in fams)
    held = sum(d.get("verified_off_range", 0) for d in fams)
    wider = f"; {held} of the {checked} with an off-range check hold off-range" if checked else ""
    return f"{longer} of them also at {label}{wider}"


__all__ = [
    "OFF_RANGE",
    "OLD_FACTOR",
    "factors",
    "headline_part",
    "legend",
    "longer_cell",
    "longer_header",
    "row_factor",
    "task_counts",
    "wider_cell",
]
