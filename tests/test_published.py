"""Published per-task results on MIPS's 62 tasks (bench/published.py) and their columns and summary
line in the bench report. Fast: synthetic rows, no training."""

from __future__ import annotations

from report_helpers import bench_meta

from discrete_transformer.bench import published as P
from discrete_transformer.bench.report import markdown, summarise
from discrete_transformer.bench.report_compute import HEADING
from discrete_transformer.tasks import TASKS

META = bench_meta()


def test_the_table_reproduces_the_papers_counts():
    table = P.MIPS_TASKS
    assert len(table) == 62
    assert sum(p.mips for p in table.values()) == P.PAPER_MIPS_SOLVED == 32
    assert sum(p.gpt4 for p in table.values()) == P.PAPER_GPT4_SOLVED == 30
    assert sum(p.mips and not p.gpt4 for p in table.values()) == 13  # "including 13 that are not solved by GPT-4"
    assert P.published("Sum_Last2") == P.Published(gpt4=False, mips=True)
    assert P.published("Real_Sum_Last2") is None and P.cells("Real_Sum_Last2") == ("–", "–")
    assert P.cells("Max_Seen") == ("no", "yes")  # (MIPS, GPT-4)


def test_every_public_mips_task_of_the_library_is_one_of_the_62():
    ours = [t.name for t in TASKS if t.family == "mips"]
    assert sorted(P.shipped()) == sorted(ours) and len(ours) == 39


def _row(task: str, verified: bool, family: str = "mips", kind: str = "discrete", **extra) -> dict:
    return {
        "task": task, "family": family, "kind": kind, "seed": 0, "error": None, "program_verified": verified,
        "length_gen": verified, "program_modules": 1, "program_ops": 1, "reference_ops": 1,
        "dt_test_exact": 1.0, "dt_test_nmse": 0.0, "gru_test_exact": 0.5, "gru_test_nmse": 0.1,
        "transformer_test_exact": 0.5, "transformer_test_nmse": 0.1, "wall_s": 10.0, **extra,
    }  # fmt: skip


def test_the_report_shows_mips_and_gpt4_per_task_and_the_counts_on_the_same_tasks():
    rows = [
        _row("Binary_Addition", True),  # MIPS yes, GPT-4 no
        _row("Base_3_Addition", False),  # neither
        _row("Bitwise_Not", True, seed=1),  # both; a second seed of ...
        _row("Bitwise_Not", False),  # ... the same task counts once
        _row("Real_Sum_Last2", True, family="continuous", kind="continuous"),  # not one of MIPS's
        {"task": "Max_Seen", "family": "mips", "seed": 0, "error": "RuntimeError: boom", "wall_s": 1.0},
    ]
    s = summarise(rows, 60.0)
    assert s["published"] == {
        "tasks": 3, "dt_verified": 2, "mips": 2, "gpt4": 1, "mips_all": 32, "gpt4_all": 30, "all": 62, "shipped": 39,
    }  # fmt: skip
    md = markdown(rows, META, s)
    assert "MIPS 32/62, GPT-4 30/62" in md and "This library ships 39 of them (not: Base_5_Addition," in md
    assert "On the 3 of them in this bench: DT verified 2/3, MIPS 2/3, GPT-4 1/3." in md
    assert "gpt4/task_results.csv" in md and P.SOURCE_COMMIT[:7] in md
    lines = [ln for ln in md.split(HEADING)[0].splitlines() if ln.startswith("| ")]  # the results table
    header = lines[0]
    assert "| MIPS | GPT-4 | task s |" in header
    body = lines[1:]  # one line per row, in order
    assert [ln.split(" |")[0][2:] for ln in body] == [r["task"] for r in rows]
    assert all(ln.count("|") == header.count("|") for ln in body)  # every row has every column
    ends = ["| yes | no | 10 |", "| no | no | 10 |", "| yes | yes | 10 |", "| yes | yes | 10 |", "| – | – | 10 |"]
    assert [ln.endswith(end) for ln, end in zip(body, ends, strict=False)] == [True] * 5
    assert body[5].endswith("| no | yes | 1 |")  # a failed row still shows the published verdicts


def test_no_summary_line_without_a_mips_task():
    rows = [_row("Real_Sum_Last2", True, family="continuous", kind="continuous")]
    md = markdown(rows, META, summarise(rows, 60.0))
    assert "Published results" not in md and "| – | – |" in md
