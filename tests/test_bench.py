"""`dtx bench` and `dtx speed`: suite resolution, baselines, an end-to-end bench of two tiny
tasks (reports, resume), executors (local pool, Ray when installed) and the throughput check.

Everything runs the default model with a step cap (`--max-steps`, a testing option) so that each
bench job takes seconds."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from discrete_transformer.bench.baselines import BaselineConfig, train_baseline
from discrete_transformer.bench.bench import plan_jobs, run_bench
from discrete_transformer.bench.executors import RAY_HINT, ExecutorError, check_executor
from discrete_transformer.bench.report import headline, markdown, size_ratio, size_text, summarise, write_reports
from discrete_transformer.bench.report_compute import HEADING
from discrete_transformer.bench.runner import ROW_FILE, BenchConfig, read_row, row_verified
from discrete_transformer.bench.suite import resolve_suite
from discrete_transformer.cli import app
from discrete_transformer.extraction.verify import LONGER_FACTOR
from discrete_transformer.tasks import TASKS, UnknownTaskError, get_task, load_source, make_dataset, save_npz
from discrete_transformer.training.loop import Split, data_spec

TINY = ["--budget", "30", "--max-steps", "40", "--baseline-steps", "30"]
TASKS2 = ["current_number", "bitwise_not"]


def _cfg() -> BenchConfig:
    return BenchConfig(budget=30, baseline=BaselineConfig(gru_steps=30, tf_steps=30, eval_every=30), max_steps=40)


# ----------------------------------------------------------------------------- suite


def test_suites_resolve_to_the_task_families():
    assert len(resolve_suite(["mips"])) == sum(t.family == "mips" for t in TASKS) == 39
    assert len(resolve_suite(["continuous"])) == 8
    everything = resolve_suite(["all"])
    assert [t.label for t in everything] == [t.name for t in TASKS]
    assert len(resolve_suite(["all", "mips", "sum_last2"])) == 47  # no duplicates


def test_suite_accepts_task_spellings_and_data_files(tmp_path):
    f = tmp_path / "my data.npz"
    save_npz(make_dataset(get_task("bitwise_not")), f)
    tasks = resolve_suite(["SUM_LAST2", str(f)])
    assert [(t.label, t.family) for t in tasks] == [("Sum_Last2", "mips"), ("my_data", "file")]
    assert tasks[1].source == str(f.resolve())


def test_suite_rejects_unknown_names_and_bad_files(tmp_path):
    with pytest.raises(UnknownTaskError, match="sum_last2|Sum_Last2"):
        resolve_suite(["sum_lats2"])
    with pytest.raises(ValueError, match="missing.npz"):
        resolve_suite([str(tmp_path / "missing.npz")])


# ----------------------------------------------------------------------------- baselines


def _baseline_data(task: str):
    """A task's dataset, split (200 validation sequences) and data spec, on one torch thread."""
    torch.set_num_threads(1)
    ds = load_source(task)
    split = Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 200, 0)
    return ds, split, data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)


@pytest.mark.parametrize("name", ["gru", "transformer"])
def test_baselines_train_and_are_scored_like_the_model(name):
    ds, split, spec = _baseline_data("current_number")
    cfg = BaselineConfig(gru_steps=150, tf_steps=150, eval_every=50, stop_on_solved=False)
    r = train_baseline(name, spec, split, ds.x_test, ds.y_test, cfg)
    assert r.steps_run == 150 and r.parameters > 0
    assert r.test["n"] == ds.n_test and 0.0 <= r.test["exact"] <= 1.0
    # y = x is easy: after 150 steps the error is far below the variance of the targets.
    assert r.test["nmse"] < 0.2
    # A wall-time cap stops training early.
    capped = train_baseline(
        name, spec, split, ds.x_test, ds.y_test, BaselineConfig(gru_steps=10**6, tf_steps=10**6, time_limit=0.5)
    )
    assert capped.steps_run < 10**6 and capped.seconds < 30


@pytest.mark.parametrize("bad", [{"gru_steps": 0}, {"batch_size": 0}, {"eval_every": 0}, {"tf_dim": 30, "tf_heads": 4}])
def test_a_baseline_config_that_cannot_be_built_is_refused_when_made(bad):
    with pytest.raises(ValueError, match="BaselineConfig"):
        BaselineConfig(**bad)


@pytest.mark.parametrize("name", ["gru", "transformer"])
def test_a_baseline_stops_at_the_first_evaluation_where_validation_is_solved(name):
    ds, split, spec = _baseline_data("bitwise_not")
    r = train_baseline(
        name, spec, split, ds.x_test, ds.y_test, BaselineConfig(gru_steps=3000, tf_steps=3000, eval_every=50)
    )
    assert r.val["exact"] == 1.0 and r.steps_run < 3000 and r.steps_run % 50 == 0


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out"
    docs = out.parent / "docs" / "benchmarks.md"
    res = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["bench", *TASKS2, *TINY, "--out", str(out), "--docs", str(docs)]
    )
    assert res.exit_code == 0, res.output
    return out


def test_bench_writes_rows_and_reports(bench_dir):
    rows = list(csv.DictReader((bench_dir / "results.csv").open()))
    assert [r["task"] for r in rows] == ["Current_Number", "Bitwise_Not"]
    assert [r["reference_ops"] for r in rows] == ["1", "3"]  # `y = [u for u in x]`, `y = [1 - u for u in x]`
    doc = json.loads((bench_dir / "results.json").read_text())
    assert doc["format"] == "dtx-bench" and len(doc["rows"]) == 2
    for r in doc["rows"]:
        assert r["error"] is None
        for key in (
            "dt_test_exact",
            "program_verified",
            "program_ops",
            "length_gen",
            "gru_test_exact",
            "transformer_test_nmse",
            "dt_ge_gru",
            "wall_s",
            "commit",
        ):
            assert key in r
        assert r["commit"] == doc["meta"]["commit"]  # one code version ran every row
        assert r["longer_factor"] == LONGER_FACTOR
        d = Path(r["run_dir"])
        assert (d / "program.py").is_file() and (d / "model.safetensors").is_file() and (d / ROW_FILE).is_file()
    cur, bits = doc["rows"]
    assert isinstance(cur["wider_gen"], bool) and bits["wider_gen"] is None  # bits allow no off-range check
    md = (bench_dir / "summary.md").read_text()
    assert f"| {LONGER_FACTOR}×T | off-range |" in md
    assert "DT verified programs" in md and "dtx bench" in md and "commit:" in md and "machine:" in md
    assert "testing caps in force" in md  # --max-steps is never hidden in a report
    assert (bench_dir.parent / "docs" / "benchmarks.md").read_text() == md
    assert doc["headline"] in md
    # where the compute went: the rows' phase seconds add up to the summary's, which the report prints
    phases = [r["dt_phase_s"] for r in doc["rows"]]
    assert all(p and set(p) <= {"search", "trial", "harden", "polish"} for p in phases)
    total = sum(sum(p.values()) for p in phases)
    assert (
        total > 0
        and abs(sum(doc["summary"]["seconds"][k] for k in ("search", "trial", "harden", "polish")) - total) < 0.5
    )
    assert "compute, summed over tasks" in md


def test_phase_seconds_attributes_each_span_to_the_phase_of_the_row_that_ends_it():
    from discrete_transformer.bench.report import _seconds_line, summarise
    from discrete_transformer.bench.runner import phase_seconds

    a = [
        {"phase": "search", "seconds": 1.0},
        {"phase": "search", "seconds": 4.0},
        {"phase": "trial", "seconds": 6.5},
        {"phase": "harden", "seconds": 9.0},
        {"phase": "polish", "seconds": 10.0},
    ]
    b = [{"phase": "search", "seconds": 2.0}, {"phase": "trial", "seconds": 3.0}, {"seconds": None}]
    assert phase_seconds([a]) == {"search": 4.0, "trial": 2.5, "harden": 2.5, "polish": 1.0}
    assert phase_seconds([a, b]) == {"search": 6.0, "trial": 3.5, "harden": 2.5, "polish": 1.0}  # restarts add up
    assert phase_seconds([]) == {}
    row = {
        "task": "t",
        "family": "mips",
        "dt_phase_s": phase_seconds([a, b]),
        "extract_s": 2.0,
        "gru_s": 3.0,
        "transformer_s": None,
    }
    s = summarise([row, {**row, "task": "u"}], 60.0)
    assert s["seconds"] == {
        "search": 12.0,
        "trial": 7.0,
        "harden": 5.0,
        "polish": 2.0,
        "extract": 4.0,
        "gru": 6.0,
        "transformer": 0.0,
    }
    assert _seconds_line(s) == [
        "- compute, summed over tasks (process seconds; side-by-side units add up): DT training "
        "search 12, trial polishes 7, hardening 5, final polish 2; extraction 4; GRU 6; "
        "Transformer 0"
    ]
    old = summarise([{k: v for k, v in row.items() if k != "dt_phase_s"}], 60.0)  # rows from before the field
    assert _seconds_line(old) == []


def _sized(task: str, verified: bool, ops: int, ref: int | None, **extra) -> dict:
    return {
        "task": task, "family": "mips", "kind": "discrete", "seed": 0, "program_verified": verified,
        "length_gen": verified, "program_modules": 2, "program_ops": ops, "reference_ops": ref,
        "dt_test_exact": 1.0, "gru_test_exact": 0.5, "transformer_test_exact": 0.5, "wall_s": 10.0, **extra,
    }  # fmt: skip


def test_a_row_is_verified_only_when_its_program_verified_without_an_error():
    assert row_verified({"program_verified": True, "error": None})
    assert not row_verified({"program_verified": False, "error": None})
    assert not row_verified({"program_verified": True, "error": "RuntimeError: boom"})  # a failed row never counts
    assert not row_verified({"task": "A"})  # a row from before the column
    rows = [{"task": "A", "family": "mips", "seed": 0, "program_verified": True, "error": "RuntimeError: boom"}]
    assert summarise(rows, 1.0)["verified"] == 0


def test_size_ratio_summary_known_answer(tmp_path):
    rows = [
        _sized("A", True, 6, 4),  # 1.5: within 1.5×
        _sized("A", True, 4, 4, seed=1),  # a second seed: the task's ratio is its first verified seed's
        _sized("B", False, 30, 5),  # unverified: no ratio
        _sized("C", True, 10, 4),  # 2.5
        _sized("D", True, 0, 1),  # y = x: 0 operations, ratio 0
        _sized("E", True, 7, None, family="file"),  # a data file: its size alone
        {"task": "F", "family": "mips", "seed": 0, "error": "RuntimeError: boom", "reference_ops": 3},
    ]
    assert [size_ratio(r) for r in rows] == [1.5, 1.0, None, 2.5, 0.0, None, None]
    s = summarise(rows, 60.0)
    assert (s["size_ratio_median"], round(s["size_near_pct"]), s["size_ratio_n"]) == (1.5, 67, 3)
    assert "; median size ratio 1.50× over 3 verified programs with a reference, 67 % within 1.5×; " in headline(s)
    assert size_text(None, None, 0) == "no verified program with a reference size"
    meta = {
        "command": "dtx bench A", "date": "d", "commit": "c", "executor": "local", "jobs": 1, "seeds": 2,
        "budget": 1.0, "wall_s": 60.0, "machine": {"cpu": "x", "cores": 2, "platform": "p", "python": "3"},
        "baseline": {"gru_steps": 1, "tf_steps": 1, "batch_size": 1, "lr": 0.1},
    }  # fmt: skip
    md = markdown(rows, meta, s).split(HEADING)[0].splitlines()  # the results table
    line = {ln.split(" |")[0][2:]: ln for ln in md if ln.startswith("| ")}
    assert "| 2 / 10 | 4 | 2.50× |" in line["C"] and "| 2 / 30 | 5 | – |" in line["B"]
    assert "| 2 / 7 | – | – |" in line["E"]  # no reference: the size alone
    assert line["F"].count("|") == line["task"].count("|")  # a failed row has every column
    write_reports(tmp_path, rows, meta)
    got = [(r["task"], r["reference_ops"], r["size_ratio"]) for r in csv.DictReader((tmp_path / "results.csv").open())]
    assert got[:6] == [
        ("A", "4", "1.5"),
        ("A", "4", "1.0"),
        ("B", "5", ""),
        ("C", "4", "2.5"),
        ("D", "1", "0.0"),
        ("E", "", ""),
    ]


def test_bench_job_dir_is_a_run_dir(bench_dir):
    from discrete_transformer.api import load_run

    run = load_run(bench_dir / "tasks" / "Bitwise_Not")
    assert run.kind == "discrete"


def test_bench_resumes_without_redoing_finished_tasks(bench_dir):
    first = bench_dir / "tasks" / "Current_Number" / ROW_FILE
    second = bench_dir / "tasks" / "Bitwise_Not" / ROW_FILE
    before = (first.stat().st_mtime_ns, first.read_bytes())
    second.unlink()  # as if the bench had been interrupted during Bitwise_Not
    (second.parent / "stale_partial_file").write_text("x")
    jobs = plan_jobs(TASKS2, 1, bench_dir, _cfg())
    seen = []
    run_bench(jobs, bench_dir, on_row=lambda row, done, total: seen.append((row["task"], bool(row.get("resumed")))))
    assert (first.stat().st_mtime_ns, first.read_bytes()) == before
    assert ("Current_Number", True) in seen and ("Bitwise_Not", False) in seen
    # A row run by other code is named with its commit in the report, never passed off as this one's.
    row = json.loads(first.read_text())
    first.write_text(json.dumps({**row, "commit": "0123456789ab"}))
    run_bench(plan_jobs(TASKS2, 1, bench_dir, _cfg()), bench_dir)
    md = (bench_dir / "summary.md").read_text()
    commits = md.split("rows by the commit that ran them: ", 1)[1].splitlines()[0]
    assert "0123456789ab (1)" in commits.split(", ")  # listed in sorted order, whatever HEAD's hash
    first.write_text(json.dumps(row))
    assert read_row(second.parent) is not None
    assert not (second.parent / "stale_partial_file").exists()  # the interrupted job restarted clean


def test_speed_program_is_faster_than_the_model(bench_dir):
    from discrete_transformer.bench.speed import program_vs_model, train_speed

    p = program_vs_model(bench_dir / "tasks" / "Bitwise_Not", n=2000, repeats=1)
    assert p["agreement"] == 1.0 and p["ratio"] > 1.0
    s = train_speed("bitwise_not", steps=6)
    assert s["steps"] == 5 and s["steps_per_s"] > 0 and s["variant"] == "defaults"
    a = train_speed("bitwise_not", steps=7, variant="arithmetic", block=3)
    assert a["variant"] == "arithmetic" and a["blocks"] == 2 and a["steps"] == 6
    assert a["steps_per_s"] >= a["median_steps_per_s"] > 0


# ----------------------------------------------------------------------------- CLI errors


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--suite", "nope_task"], "unknown task"),
        (["current_number", "--jobs", "0"], "--jobs must be >= 1"),
        (["current_number", "--executor", "dask"], "unknown executor"),
        (["current_number", "--budget", "0"], "--budget must be > 0"),
        (["current_number", "--seeds", "0"], "--seeds must be >= 1"),
        (["current_number", "--set", "train.no_such_field=1"], "no_such_field"),
    ],
)
def test_bench_cli_errors_are_one_line(tmp_path, args, needle):
    res = CliRunner().invoke(app, ["bench", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0].lower(), res.stderr
    assert not (tmp_path / "o").exists()


def test_bench_refuses_a_non_empty_directory_that_is_not_a_bench(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    res = CliRunner().invoke(app, ["bench", "current_number", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not a bench directory" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_bench_set_applies_one_configuration_to_every_task_and_records_it(tmp_path):
    out = tmp_path / "o"
    sets = ["--set", "train.estimator=reinforce", "--set", "model.mlp_hidden=8"]
    res = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["bench", "current_number", *TINY, *sets, "--out", str(out)])
    assert res.exit_code == 0, res.output
    run = json.loads((out / "tasks" / "Current_Number" / "config.json").read_text())
    assert run["train"]["estimator"] == "reinforce" and run["model"]["mlp_hidden"] == 8
    doc = json.loads((out / "results.json").read_text())
    assert doc["rows"][0]["overrides"] == ["train.estimator=reinforce", "model.mlp_hidden=8"]
    assert "`train.estimator=reinforce`" in (out / "summary.md").read_text()
    # Resuming with another configuration would mix rows of two configurations: refused.
    res = CliRunner().invoke(app, ["bench", "current_number", *TINY, "--out", str(out)])
    assert res.exit_code == 2 and "mix" in res.stderr


def test_ray_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ExecutorError, match=r'pip install "\.\[ray\]"'):
        check_executor("ray", 1)
    assert "pip install" in RAY_HINT


# ----------------------------------------------------------------------------- executors


def test_local_pool_runs_jobs_in_parallel_processes(tmp_path):
    jobs = plan_jobs(TASKS2, 1, tmp_path / "pool", _cfg())
    s = run_bench(jobs, tmp_path / "pool", executor="local", n_jobs=2)
    assert s["tasks"] == 2 and s["failed_rows"] == 0
    assert all(read_row(j.run_dir) is not None for j in jobs)


def test_ray_executor_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        jobs = plan_jobs(["current_number"], 1, tmp_path / "ray", _cfg())
        s = run_bench(jobs, tmp_path / "ray", executor="ray", n_jobs=1)
    finally:
        ray.shutdown()
    assert s["tasks"] == 1 and s["failed_rows"] == 0
    row = read_row(jobs[0].run_dir)
    assert row is not None and row["program_verified"] is True  # y = x: solved at step 0
    assert np.isfinite(row["gru_test_nmse"])


def test_speed_cli_prints_the_ratio_and_fails_cleanly(bench_dir, tmp_path):
    runner = CliRunner(env={"COLUMNS": "200"})
    res = runner.invoke(app, ["speed", "--skip-train", "--run", str(bench_dir / "tasks" / "Bitwise_Not"), "--n", "500"])
    assert res.exit_code == 0, res.output
    assert "program run_batch" in res.output and "ratio" in res.output
    bad = runner.invoke(app, ["speed", "--skip-train", "--run", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "error:" in bad.stderr
    bad = runner.invoke(app, ["speed", "--variant", "fastest"])
    assert bad.exit_code == 2 and "unknown --variant 'fastest'" in bad.stderr
    res = runner.invoke(app, ["speed", "--task", "bitwise_not", "--steps", "4", "--variant", "plain"])
    assert res.exit_code == 0, res.output
    assert "training (plain search):" in res.output and "arithmetic" not in res.output


def test_a_unit_reports_its_failure_but_not_an_interrupt():
    """A task's error becomes the row's ``error``; an interrupt propagates, even when Python
    wraps it in another exception (one landing in a class body's ``__set_name__`` during an
    import arrives as a RuntimeError whose context is the KeyboardInterrupt)."""
    from discrete_transformer.bench.runner import guarded

    @guarded
    def fails() -> dict:
        raise ValueError("bad data")

    @guarded
    def wrapped_interrupt() -> dict:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Error calling __set_name__") from e

    @guarded
    def interrupt_in_handler() -> dict:
        try:
            raise ValueError("x")
        except ValueError:
            raise KeyboardInterrupt from None

    assert fails()["error"] == "ValueError: bad data"
    with pytest.raises(KeyboardInterrupt):
        wrapped_interrupt()
    with pytest.raises(KeyboardInterrupt):
        interrupt_in_handler()


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_stops_a_bench_like_ctrl_c(tmp_path, jobs):
    """SIGTERM (what `kill` and schedulers send; a background job's SIGINT is ignored by the
    shell) ends the bench with exit code 130 and the reports written in DIR (not --docs, which
    only a finished bench writes), so a rerun resumes. With
    a worker pool too: a worker in training takes SIGTERM as Ctrl-C and would go on to
    extraction, so the bench must not wait for it."""
    import os
    import signal
    import subprocess
    import time

    import discrete_transformer

    src = str(Path(discrete_transformer.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "o"
    cmd = [
        sys.executable,
        "-c",
        "from discrete_transformer.cli import app; app()",
        "bench",
        "sum_all",
        # more jobs than workers: the pool has queued some that cancel() cannot take back
        *(["kinetic_energy", "sum_last3", "spring_force", "total_momentum"] if jobs > 1 else []),
        "--jobs",
        str(jobs),
        "--budget",
        "60",
        "--baseline-steps",
        "30",
        "--out",
        str(out),
        "--docs",
        str(tmp_path / "benchmarks.md"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (out / "tasks" / "Sum_All").is_dir():  # the job has started
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "bench did not start"
            time.sleep(0.1)
        time.sleep(0.5 if jobs == 1 else 5.0)  # pool workers: well into training
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (stdout, stderr)
    assert stopped_in < 15, stopped_in
    assert "rerun the same command to resume" in stderr.replace("\n", " ")
    assert (out / "bench.json").is_file() and (out / "results.json").is_file()
    assert not (tmp_path / "benchmarks.md").exists()  # --docs only gets a finished bench's table


def test_the_cli_budget_default_is_the_bench_config_default():
    import inspect

    from discrete_transformer import cli

    option = inspect.signature(cli.bench_cmd).parameters["budget"].default
    assert option.default == BenchConfig().budget


def test_the_probe_extraction_finishes_the_run_from_its_first_restarts_only(tmp_path):
    # the scheduler's probe before a fallback restart: extract_unit(..., restarts=n) reads only the
    # first n kept restarts; the final extract unit then reads all of them
    import time

    from discrete_transformer.bench.runner import Job, extract_unit, prepare_dir, restart_unit

    cfg = BenchConfig(
        budget=60,
        baseline=BaselineConfig(gru_steps=30, tf_steps=30, eval_every=30),
        max_steps=20,
        restarts=2,
        overrides=("train.stop_on_exact=false",),
    )
    job = Job(resolve_suite(["bitwise_not"])[0], 0, str(tmp_path), cfg)
    prepare_dir(job.run_dir)
    deadline = time.time() + 60
    for i in range(2):
        assert "error" not in restart_unit(job, i, deadline)
    probe = extract_unit(job, deadline, 1)
    assert probe.get("error") is None and probe["dt_restarts_run"] == 1
    assert [r["seed"] for r in json.loads((job.run_dir / "result.json").read_text())["restarts"]] == [0]
    final = extract_unit(job, deadline)
    assert final["dt_restarts_run"] == 2
