"""The generated suite's per-family report (bench/generalization.py), its row fields and wiring.

Fast: rows are synthetic dicts (no training), and the bench runs only resume finished rows."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from report_helpers import bench_meta
from typer.testing import CliRunner

from discrete_transformer.bench import generalization as G
from discrete_transformer.bench.bench import run_bench
from discrete_transformer.bench.report import markdown as bench_markdown
from discrete_transformer.bench.report import summarise
from discrete_transformer.bench.runner import (
    ROW_FILE,
    ROW_FORMAT,
    BenchConfig,
    Job,
    new_row,
)
from discrete_transformer.bench.suite import BenchTask
from discrete_transformer.cli import app

META = bench_meta(
    date="2026-12-03 10:00 UTC", command="dtx bench --suite generated:1 --jobs 2 --out runs/gen1", wall_s=600.0
)


def _row(
    task: str,
    gen: str,
    verified: bool,
    ops: int,
    ref: int | None,
    *,
    generalises: str = "",
    bands: dict[str, str] | None = None,
    kind: str = "discrete",
    wall: float = 10.0,
    **extra,
) -> dict:
    return {
        "format": ROW_FORMAT,
        "task": task,
        "source": task,
        "family": "generated",
        "seed": 0,
        "commit": "abc123",
        "generator": gen,
        "generalises": generalises,
        "params": {"m": 5, "T": 12},
        "bands": bands or {},
        "reference_ops": ref,
        "T": 12,
        "kind": kind,
        "dt_test_exact": 1.0 if verified else 0.25,
        "dt_test_nmse": 1e-9 if verified else 0.3,
        "dt_model_solved": verified,
        "program_verified": verified,
        "length_gen": verified,
        "longer_factor": 4,
        "program_modules": 2,
        "program_ops": ops,
        "gru_test_exact": 0.5,
        "gru_test_nmse": 0.1,
        "transformer_test_exact": 0.5,
        "transformer_test_nmse": 0.1,
        "dt_ge_gru": True,
        "wall_s": wall,
        "error": None,
        **extra,
    }


def _rows() -> list[dict]:
    """add_mod: 2/3 verified, ratios 1.5 and 2.0, one of the two holding off-range; sum_last: 1/1, no reference size; count_new: a new
    family (generalises nothing), 0/1; real_scale: continuous, 1/1; and one failed job."""
    return [
        _row(
            "gen1_000_add_mod",
            "add_mod",
            True,
            9,
            6,
            generalises="Add_Mod_3",
            bands={"T": "5-8", "m": "3-4"},
            wider_gen=True,
        ),
        _row(
            "gen1_001_add_mod",
            "add_mod",
            True,
            12,
            6,
            generalises="Add_Mod_3",
            bands={"T": "16-24", "m": "3-4"},
            wall=30.0,
            wider_gen=False,
        ),
        _row(
            "gen1_002_add_mod",
            "add_mod",
            False,
            30,
            6,
            generalises="Add_Mod_3",
            bands={"T": "16-24", "m": "5-8"},
            wall=50.0,
        ),
        _row("gen1_003_sum_last", "sum_last", True, 4, None, generalises="Sum_Last2", bands={"T": "5-8"}),
        _row("gen1_004_count_new", "count_new", False, 20, 5, bands={"T": "5-8"}),
        _row("gen1_005_real_scale", "real_scale", True, 3, 3, generalises="Real_Sum_Last2", kind="continuous"),
        {
            "format": ROW_FORMAT,
            "task": "gen1_006_add_mod",
            "source": "gen1_006_add_mod",
            "family": "generated",
            "seed": 0,
            "generator": "add_mod",
            "params": {"m": 7},
            "bands": {"T": "5-8"},
            "reference_ops": 6,
            "T": 6,
            "commit": "abc123",
            "error": "RuntimeError: boom",
        },
    ]


def _line(md: str, start: str) -> str:
    hits = [ln for ln in md.splitlines() if ln.startswith(start)]
    assert len(hits) == 1, (start, hits)
    return hits[0]


# ----------------------------------------------------------------------------- rendering


def test_family_table_counts_rates_and_medians():
    md = G.markdown(_rows(), META)
    # 2 of 3 verified -> 67 %; median ops of the verified (9, 12) = 10.5; reference 6; ratios 1.5, 2.0 -> 1.75
    # both verified ones also at 4×T; off-range: 1 held of the 2 with the check
    assert _line(md, "| add_mod |") == "| add_mod | Add_Mod_3 | 3 | 2 | 67 % | 2 | 1/2 | 2 | 10.5 | 6 | 1.75× | 30 |"
    assert _line(md, "| sum_last |") == "| sum_last | Sum_Last2 | 1 | 1 | 100 % | 1 | – | 1 | 4 | – | – | 10 |"
    assert _line(md, "| count_new |") == "| count_new | – | 1 | 0 | 0 % | 0 | – | 0 | – | 5 | – | 10 |"
    assert _line(md, "| real_scale |") == (
        "| real_scale | Real_Sum_Last2 | 1 | 1 | 100 % | 1 | – | 1 | 3 | 3 | 1.00× | 10 |"
    )
    # all families: 4/6 verified; verified ops 3, 4, 9, 12 -> 6.5; ratios 1.5, 2.0, 1.0 -> 1.5
    assert _line(md, "| **all** |") == "| **all** |  | 6 | 4 | 67 % | 4 | 1/2 | 4 | 6.5 | 6 | 1.50× | 10 |"
    assert _line(md, "| family |").startswith(
        "| family | generalises | tasks | verified | rate | also 4×T | holds off-range |"
    )


def test_band_table_per_key_in_numeric_order():
    md = G.markdown(_rows(), META)
    lines = [ln for ln in md.splitlines() if ln.startswith(("| T |", "| m |"))]
    assert lines == [
        "| T | 5-8 | 3 | 2 | 67 % |",  # gen1_000 (yes), sum_last (yes), count_new (no)
        "| T | 16-24 | 2 | 1 | 50 % |",
        "| m | 3-4 | 2 | 2 | 100 % |",
        "| m | 5-8 | 1 | 0 | 0 % |",
    ]


def test_task_table_scores_sizes_and_failures():
    md = G.markdown(_rows(), META)
    assert _line(md, "| gen1_000_add_mod |") == (
        "| gen1_000_add_mod | add_mod | m=5, T=12 | discrete | 12 | **yes** | yes | yes | 100.0 % | 9 | 6 | 1.50× "
        "| 10 |"
    )
    # no reference size: no ratio; a continuous task is scored by nMSE
    assert _line(md, "| gen1_003_sum_last |").endswith("| 4 | – | – | 10 |")
    assert "| continuous | 12 | **yes** | yes | – | 1.0e-09 |" in _line(md, "| gen1_005_real_scale |")
    # an unverified program has no ratio even with a reference
    assert _line(md, "| gen1_002_add_mod |").endswith("| 30 | 6 | – | 50 |")
    assert "failed: RuntimeError: boom" in _line(md, "| gen1_006_add_mod |")


def test_headline_without_public_results_counts_every_generalising_family():
    md = G.markdown(_rows(), META)
    head = _line(md, "**Generated suite:")
    assert "verified 4/6 (67 %)" in head
    # add_mod, sum_last, real_scale generalise a public task: 4/5
    assert "no `--public-results` given" in head and ": verified 4/5 (80 %)" in head
    # ratios 1.5, 2.0, 1.0: median 1.5, 2 of 3 within 1.5x (the benchmark report's words: report.size_text)
    assert "median size ratio 1.50× over 3 verified programs with a reference, 67 % within 1.5×" in head
    assert "median task time 10 s" in head and "total wall 10.0 min" in head
    assert "1 job(s) failed, not counted" in head
    for needed in (
        "```bash\ndtx bench --suite generated:1",
        "- date: 2026-12-03",
        "- machine: CPU, 2 cores",
        "- commit: abc123",
        "## Per family",
        "## Per parameter band",
        "## Per task",
    ):
        assert needed in md


def test_headline_with_public_results_keeps_only_families_of_verified_public_tasks():
    meta = {**META, "public_results": {"path": "runs/bench38/results.json", "verified": ["add_mod_3"], "tasks": 47}}
    md = G.markdown(_rows(), meta)
    head = _line(md, "**Generated suite:")
    # only add_mod generalises a verified public task (any spelling of its name): 2/3
    assert "verified in `runs/bench38/results.json` (1/47 public tasks verified): verified 2/3 (67 %)" in head
    assert _line(md, "| sum_last |").startswith("| sum_last | Sum_Last2 (not verified) |")
    assert _line(md, "| add_mod |").startswith("| add_mod | Add_Mod_3 |")


def test_seeds_count_a_task_once_and_verified_when_any_seed_is():
    a0 = _row("gen1_000_add_mod", "add_mod", False, 30, 6)
    a1 = {**_row("gen1_000_add_mod", "add_mod", True, 6, 6), "seed": 1}
    tasks = G.task_results([a0, a1])
    assert len(tasks) == 1 and tasks[0].verified and tasks[0].ratio == 1.0
    assert "| gen1_000_add_mod (seed 1) |" in G.markdown([a0, a1], META)


def test_old_rows_without_the_task_fields_still_render():
    old = {
        k: v
        for k, v in _row("Sum_Last2", "", True, 4, None).items()
        if k not in ("generator", "generalises", "params", "bands", "reference_ops")
    }
    old["family"] = "mips"
    md = G.markdown([old, {**old, "task": "Prev1", "program_verified": False}], META)
    assert _line(md, "| mips |") == "| mips | – | 2 | 1 | 50 % | 1 | – | 2 | 4 | – | – | 10 |"
    assert "No parameter bands" in md
    assert _line(md, "| Sum_Last2 |").startswith("| Sum_Last2 | mips | – | discrete | 12 | **yes** |")
    # and the benchmark summary of the public suite is unchanged by the new fields
    assert bench_markdown([old], META, summarise([old], 600.0)) == bench_markdown(
        [_row("Sum_Last2", "", True, 4, None, family="mips")], META, summarise([old], 600.0)
    )
    # rows from before the longer check's factor was recorded ran at 2×T, and say so
    older = {k: v for k, v in old.items() if k != "longer_factor"}
    md = G.markdown([older, {**old, "task": "Prev1"}], META)
    assert "| verified | 2×T/4×T | off-range |" in _line(md, "| task |")
    assert _line(md, "| Sum_Last2 |").startswith("| Sum_Last2 | mips | – | discrete | 12 | **yes** | yes (2×T) | – |")
    assert "rows from before the factor was recorded ran at 2×T" in md


def test_params_text_is_short():
    assert G.params_text({"k": 3, "w": [1.5, 2, 3, 4, 5, 6, 7], "name": "x"}) == "k=3, w=[1.5,2,3,4,5,6,…], name=x"
    assert len(G.params_text({f"p{i}": i for i in range(30)})) == G.PARAMS_WIDTH
    assert G.params_text(None) == "–" and G.params_text({"s": "a|b"}) == "s=a/b"


# ----------------------------------------------------------------------------- row fields


def _job(tmp_path: Path, task: BenchTask) -> Job:
    return Job(task, 0, str(tmp_path), BenchConfig())


def test_new_row_copies_the_task_fields_of_a_public_task(tmp_path):
    row = new_row(_job(tmp_path, BenchTask("Sum_Last2", "Sum_Last2", "mips")))
    # every built-in task has a reference size: Sum_Last2's is a shift (1) and `u + v` (3)
    assert row["T"] == 10 and row["reference_ops"] == 4 and row["bands"] == {} and row["generalises"] == ""
    json.dumps(row, allow_nan=False)


def test_new_row_copies_a_generated_tasks_fields_as_json(tmp_path, monkeypatch):
    from discrete_transformer.bench import runner

    spec = SimpleNamespace(
        T=18,
        generator="add_mod",
        generalises="Add_Mod_3",
        params=(("m", np.int64(5)), ("w", (1, 2)), ("x", float("inf"))),
        bands=(("T", "16-24"), ("values", "<=100")),
        reference_ops=np.int64(9),
    )
    monkeypatch.setattr(runner, "get_task", lambda name: spec)
    row = new_row(_job(tmp_path, BenchTask("gen0_017_add_mod", "gen0_017_add_mod", "generated")))
    assert row["generator"] == "add_mod" and row["generalises"] == "Add_Mod_3" and row["T"] == 18
    assert row["params"] == {"m": 5, "w": [1, 2], "x": "inf"} and row["reference_ops"] == 9
    assert row["bands"] == {"T": "16-24", "values": "<=100"}
    json.dumps(row, allow_nan=False)


def test_new_row_tolerates_files_and_unknown_tasks(tmp_path):
    for task in (BenchTask("data", str(tmp_path / "d.npz"), "file"), BenchTask("gone", "gen9_999_gone", "generated")):
        row = new_row(_job(tmp_path, task))
        assert "generator" not in row and "T" not in row and row["task"] == task.label


# ----------------------------------------------------------------------------- wiring


def _finished(tmp_path: Path, rows: list[dict]) -> list[Job]:
    """Jobs whose rows are already written: run_bench only resumes them and writes the reports."""
    jobs = []
    for r in rows:
        job = Job(BenchTask(r["task"], r["source"], r["family"]), 0, str(tmp_path / "out"), BenchConfig())
        job.run_dir.mkdir(parents=True)
        (job.run_dir / ROW_FILE).write_text(json.dumps({**r, "run_dir": str(job.run_dir)}))
        jobs.append(job)
    return jobs


def test_a_generated_bench_writes_the_per_family_report_to_docs(tmp_path):
    jobs = _finished(tmp_path, [r for r in _rows() if not r.get("error")])
    docs = tmp_path / "docs" / "generalization.md"
    s = run_bench(
        jobs,
        tmp_path / "out",
        command="dtx bench --suite generated:1",
        docs=docs,
        public_results={"path": "p.json", "verified": ["Add_Mod_3"], "tasks": 47},
    )
    md = (tmp_path / "out" / G.REPORT_FILE).read_text()
    assert docs.read_text() == md and md.startswith("# Generated-suite benchmark")
    assert "verified in `p.json`" in md and s["headline"].startswith("Generated suite: verified 4/6")
    assert (tmp_path / "out" / "summary.md").read_text().startswith("# Benchmark")
    assert json.loads((tmp_path / "out" / "results.json").read_text())["meta"]["public_results"]["tasks"] == 47


def test_a_mixed_bench_keeps_the_benchmark_table_in_docs(tmp_path):
    public = _row("Sum_Last2", "", True, 4, None, family="mips")
    jobs = _finished(tmp_path, [public, _rows()[0]])
    docs = tmp_path / "benchmarks.md"
    s = run_bench(jobs, tmp_path / "out", docs=docs)
    assert docs.read_text() == (tmp_path / "out" / "summary.md").read_text()
    assert docs.read_text().startswith("# Benchmark") and s["headline"].startswith("DT verified programs")
    assert "| add_mod |" in (tmp_path / "out" / G.REPORT_FILE).read_text()


def test_a_public_bench_writes_no_per_family_report(tmp_path):
    jobs = _finished(tmp_path, [_row("Sum_Last2", "", True, 4, None, family="mips")])
    run_bench(jobs, tmp_path / "out")
    assert not (tmp_path / "out" / G.REPORT_FILE).exists()


# ----------------------------------------------------------------------------- --public-results


def _results(path: Path, rows: list[dict], fmt: str = "dtx-bench") -> Path:
    path.write_text(json.dumps({"format": fmt, "version": 1, "rows": rows}))
    return path


def test_load_public_results_lists_the_verified_public_tasks(tmp_path):
    rows = [
        _row("Sum_Last2", "", True, 4, None, family="mips"),
        _row("Prev1", "", False, 4, None, family="mips"),
        _row("Kinetic_Energy", "", True, 4, None, family="continuous"),
        _row("gen0_001_x", "x", True, 1, 1),
    ]
    got = G.load_public_results(_results(tmp_path / "r.json", rows))
    assert got == {"path": str(tmp_path / "r.json"), "verified": ["Kinetic_Energy", "Sum_Last2"], "tasks": 3}


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "file not found"),
        ("{not json", "not a bench results.json"),
        (json.dumps({"format": "dtx-run", "rows": []}), "not a bench results.json"),
        (json.dumps({"format": "dtx-bench", "rows": [_row("gen0_001_x", "x", True, 1, 1)]}), "no public task"),
    ],
)
def test_bench_cli_rejects_a_bad_public_results_file_in_one_line(tmp_path, content, needle):
    f = tmp_path / "results.json"
    if content is not None:
        f.write_text(content)
    res = CliRunner().invoke(app, ["bench", "current_number", "--public-results", str(f), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.stderr
    assert "--public-results" in lines[0] and not (tmp_path / "o").exists()
