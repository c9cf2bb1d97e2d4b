"""Published per-task results on MIPS's 62 tasks, for the bench report's "MIPS" and "GPT-4" columns.

Paper: Michaud, Liao, Lad, Liu, Mudide, Loughridge, Guo, Kheirkhah, Vukelić, Tegmark, "Opening the
AI black box: program synthesis via mechanistic interpretability" (arXiv:2402.05110, 2024). Its
abstract: "MIPS solves 32 of them, including 13 that are not solved by GPT-4 (which also solves 30)".

Source of the per-task verdicts: https://github.com/ejmichaud/neural-verification, file
``gpt4/task_results.csv`` (header ``Task Name, Result``):

- at commit d8d8708fa75ada080856b2183ce8f13a93f95c2b it has one column: GPT-4's verdict per task,
  written by ``gpt4/run_extracted_code.py`` (1 when one of GPT-4's extracted programs printed
  "success" on the task's data; three attempts per task). It sums to 30.
- at commit 3ddc2d944d58f837ce17b107b8c92a4889d76d9f a second column was added, with no header of
  its own. We read it as MIPS's verdict because it sums to 32 and is 1 on exactly 13 tasks where
  the GPT-4 column is 0: the abstract's three figures. The GPT-4 column is unchanged there.

Nothing here is inferred from the task's nature: a task absent from that file has no verdict
(``None``). Task names are MIPS's, which the library's public MIPS-family tasks use unchanged
(tasks/public.py), so a bench row's ``task`` is the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..tasks import TASKS

SOURCE_REPO = "https://github.com/ejmichaud/neural-verification"
SOURCE_PATH = "gpt4/task_results.csv"
SOURCE_COMMIT = "3ddc2d944d58f837ce17b107b8c92a4889d76d9f"  # the two-column version (see above)
PAPER = "arXiv:2402.05110"
PAPER_MIPS_SOLVED = 32  # the abstract's counts, which the table below must reproduce
PAPER_GPT4_SOLVED = 30


@dataclass(frozen=True)
class Published:
    """Whether GPT-4 and MIPS solved a task, as the source file says (1 -> True)."""

    gpt4: bool
    mips: bool


# (task, GPT-4, MIPS): the file's rows, in its order
_ROWS = (
    ("Binary_Addition", 0, 1), ("Base_3_Addition", 0, 0), ("Base_4_Addition", 0, 0),
    ("Base_5_Addition", 0, 0), ("Base_6_Addition", 1, 0), ("Base_7_Addition", 0, 0),
    ("Bitwise_Xor", 1, 1), ("Bitwise_Or", 1, 1), ("Bitwise_And", 1, 1), ("Bitwise_Not", 1, 1),
    ("Parity_Last2", 1, 1), ("Parity_Last3", 0, 1), ("Parity_Last4", 0, 0), ("Parity_All", 0, 1),
    ("Parity_Zeros", 0, 1), ("Evens_Counter", 0, 0), ("Sum_All", 1, 1), ("Sum_Last2", 0, 1),
    ("Sum_Last3", 0, 1), ("Sum_Last4", 1, 1), ("Sum_Last5", 1, 1), ("Sum_Last6", 1, 1),
    ("Sum_Last7", 1, 1), ("Current_Number", 1, 1), ("Prev1", 1, 1), ("Prev2", 1, 1), ("Prev3", 1, 1),
    ("Prev4", 1, 1), ("Prev5", 1, 1), ("Previous_Equals_Current", 0, 1), ("Diff_Last2", 0, 1),
    ("Abs_Diff", 0, 1), ("Abs_Current", 1, 1), ("Diff_Abs_Values", 1, 0), ("Min_Seen", 1, 0),
    ("Max_Seen", 1, 0), ("Majority_0_1", 1, 0), ("Majority_0_2", 0, 0), ("Majority_0_3", 0, 0),
    ("Evens_Detector", 1, 0), ("Perfect_Square_Detector", 0, 0), ("Bit_Palindrome", 1, 0),
    ("Balanced_Parenthesis", 0, 0), ("Parity_Bits_Mod2", 1, 0), ("Alternating_Last3", 0, 0),
    ("Alternating_Last4", 1, 0), ("Bit_Shift_Right", 1, 1), ("Bit_Dot_Prod_Mod2", 0, 1),
    ("Div_3", 1, 0), ("Div_5", 0, 0), ("Div_7", 0, 0), ("Add_Mod_3", 1, 1), ("Add_Mod_4", 0, 0),
    ("Add_Mod_5", 0, 0), ("Add_Mod_6", 0, 0), ("Add_Mod_7", 0, 0), ("Add_Mod_8", 0, 0),
    ("Dithering", 1, 0), ("Newton_Freebody", 0, 1), ("Newton_Gravity", 0, 1), ("Newton_Spring", 0, 1),
    ("Newton_Magnetic", 0, 0),
)  # fmt: skip

MIPS_TASKS: dict[str, Published] = {name: Published(bool(g), bool(m)) for name, g, m in _ROWS}


def published(task: str) -> Published | None:
    """The published verdicts of a task by its MIPS name, or None when MIPS's 62 do not include it."""
    return MIPS_TASKS.get(task)


def shipped() -> list[str]:
    """MIPS's tasks that this library ships (its public tasks of the same name), in MIPS's order."""
    ours = {t.name for t in TASKS}
    return [name for name in MIPS_TASKS if name in ours]


def cells(task: str) -> tuple[str, str]:
    """The report's (MIPS, GPT-4) cells of a task: yes / no, – when there is no published verdict."""
    p = published(task)
    return ("–", "–") if p is None else ("yes" if p.mips else "no", "yes" if p.gpt4 else "no")


def compare(tasks: Iterable[str], verified: Iterable[str]) -> dict[str, Any]:
    """A bench's MIPS tasks (``tasks``, of which ``verified`` verified) against the published
    verdicts on the same tasks: counts for the bench summary."""
    mine = [t for t in dict.fromkeys(tasks) if t in MIPS_TASKS]
    ok = set(verified)
    return {
        "tasks": len(mine),
        "dt_verified": sum(t in ok for t in mine),
        "mips": sum(MIPS_TASKS[t].mips for t in mine),
        "gpt4": sum(MIPS_TASKS[t].gpt4 for t in mine),
        "mips_all": sum(p.mips for p in MIPS_TASKS.values()),
        "gpt4_all": sum(p.gpt4 for p in MIPS_TASKS.values()),
        "all": len(MIPS_TASKS),
        "shipped": len(shipped()),
    }


def summary_line(c: dict[str, Any]) -> str:
    """The report's line: the published counts on the 62, which of them the library ships, and the
    library's count beside MIPS's and GPT-4's on the bench's tasks. Empty without a MIPS task."""
    if not c or not c.get("tasks"):
        return ""
    missing = [name for name in MIPS_TASKS if name not in set(shipped())]
    n = c["tasks"]
    return (
        f"Published results on MIPS's {c['all']} tasks ({PAPER}; per task from `{SOURCE_PATH}` of "
        f"{SOURCE_REPO} at {SOURCE_COMMIT[:7]}): MIPS {c['mips_all']}/{c['all']}, GPT-4 {c['gpt4_all']}/{c['all']}. "
        f"This library ships {c['shipped']} of them (not: {', '.join(missing)}). On the {n} of them in this bench: "
        f"DT verified {c['dt_verified']}/{n}, MIPS {c['mips']}/{n}, GPT-4 {c['gpt4']}/{n}."
    )


__all__ = [
    "MIPS_TASKS",
    "cells",
    "compare",
    "shipped",
    "summary_line",
    "PAPER",
    "PAPER_GPT4_SOLVED",
    "PAPER_MIPS_SOLVED",
    "SOURCE_COMMIT",
    "SOURCE_PATH",
    "SOURCE_REPO",
    "Published",
    "published",
]
