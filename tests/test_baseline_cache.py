"""The baseline cache (bench/baseline_cache.py): its key, its entries, the bench's use of it (a
cached baseline is no unit and its row says where the number comes from) and the reports' lines.

The bench runs are tiny (one task, `max_steps`, a shrunk BaselineConfig), in process (one job)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from report_helpers import bench_meta
from typer.testing import CliRunner

from discrete_transformer.bench import generalization as G
from discrete_transformer.bench import runner
from discrete_transformer.bench.baseline_cache import (
    BaselineCache,
    cache_key,
    cacheable,
    data_digest,
    default_cache_dir,
    key_material,
    source_now,
)
from discrete_transformer.bench.baselines import BaselineConfig, BaselineResult, train_baseline
from discrete_transformer.bench.bench import plan_jobs, run_bench
from discrete_transformer.bench.mips_rnn import MipsRecipe, MipsRNN, log_loss
from discrete_transformer.bench.report import markdown, summarise
from discrete_transformer.bench.report_baselines import CACHED_MARK
from discrete_transformer.bench.report_compute import HEADING
from discrete_transformer.bench.runner import BenchConfig, Job
from discrete_transformer.bench.suite import BenchTask
from discrete_transformer.cli import app
from discrete_transformer.tasks import load_source
from discrete_transformer.training.loop import Split, data_spec

TINY_BASE = BaselineConfig(gru_steps=30, tf_steps=30, eval_every=30)


def _result(ended: str = "steps", exact: float = 0.5) -> BaselineResult:
    return BaselineResult(
        "gru", {"exact": exact, "nmse": 0.1}, {"exact": exact, "nmse": 0.2, "n": 10}, 30, 1.5, 99, ended
    )


def _arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2, (8, 5, 1)).astype(np.float32) for _ in range(6)]


# ----------------------------------------------------------------------------- key


def test_the_key_changes_with_the_data_the_configuration_and_the_seed():
    d = data_digest(_arrays(), "discrete", ["x"], ["y"])
    assert d == data_digest([torch.as_tensor(a) for a in _arrays()], "discrete", ["x"], ["y"])  # tensors alike
    changed = _arrays()
    changed[4][0, 0, 0] = 1.0 - changed[4][0, 0, 0]  # one test value
    assert data_digest(changed, "discrete", ["x"], ["y"]) != d
    assert data_digest(_arrays(), "continuous", ["x"], ["y"]) != d
    assert data_digest(_arrays(), "discrete", ["u"], ["y"]) != d
    assert data_digest([a.reshape(8, 1, 5) for a in _arrays()], "discrete", ["x"], ["y"]) != d  # shape counts
    cfg = BaselineConfig()
    k = cache_key("gru", cfg, 0, d)
    assert k == cache_key("gru", BaselineConfig(), 0, d)
    assert cache_key("gru", cfg, 1, d) != k
    assert cache_key("transformer", cfg, 0, d) != k
    assert cache_key("gru", cfg, 0, data_digest(changed, "discrete", ["x"], ["y"])) != k
    for change in ({"gru_steps": 2001}, {"lr": 3e-3}, {"batch_size": 32}, {"stop_on_solved": False}):
        assert cache_key("gru", dataclasses.replace(cfg, **change), 0, d) != k, change
    # what does not change the GRU's result does not change its key: the Transformer's fields, the cap
    assert cache_key("gru", dataclasses.replace(cfg, tf_steps=5, time_limit=3.0), 0, d) == k
    assert cache_key("transformer", dataclasses.replace(cfg, gru_hidden=8), 0, d) == cache_key("transformer", cfg, 0, d)
    assert key_material("gru", cfg, 0, d)["settings"]["gru_steps"] == cfg.gru_steps


def test_the_default_directory_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "discrete_transformer" / "baselines"
    assert BenchConfig().baseline_cache == str(tmp_path / "discrete_transformer" / "baselines")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "discrete_transformer" / "baselines"


# ----------------------------------------------------------------------------- entries


def test_a_stored_result_is_read_back_and_a_missing_one_is_a_miss(tmp_path):
    cache = BaselineCache(tmp_path / "c")
    assert cache.get("ab" * 32) is None  # no directory yet
    src = source_now("abc123", "dtx bench")
    assert cache.put("ab" * 32, _result(), {"x": 1}, src)
    got, source = cache.get("ab" * 32)
    assert got == _result() and source == src
    assert cache.get("cd" * 32) is None
    doc = json.loads(cache.path("ab" * 32).read_text())
    assert doc["inputs"] == {"x": 1} and doc["result"]["ended"] == "steps"


def test_a_result_cut_short_by_the_time_cap_is_not_stored(tmp_path):
    cache = BaselineCache(tmp_path)
    assert not cacheable(_result("time")) and cacheable(_result("solved"))
    assert not cache.put("ab" * 32, _result("time"), {}, {})
    assert cache.get("ab" * 32) is None and not cache.path("ab" * 32).exists()


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"format": "dtx-baseline-cache", "key": "other", "result": {}}),
        json.dumps({"format": "dtx-baseline-cache", "key": "ab" * 32, "result": {"name": "gru"}}),
    ],
)
def test_a_corrupted_entry_is_ignored_with_a_warning(tmp_path, text):
    cache = BaselineCache(tmp_path)
    cache.path("ab" * 32).write_text(text)
    with pytest.warns(UserWarning, match="baseline cache: ignoring"):
        assert cache.get("ab" * 32) is None
    assert cache.put("ab" * 32, _result(), {}, {})  # the next training overwrites it
    assert cache.get("ab" * 32)[0] == _result()


def test_a_baseline_says_why_its_training_ended():
    torch.set_num_threads(1)
    ds = load_source("bitwise_not")
    split = Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 200, 0)
    spec = data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    run = lambda **kw: train_baseline("gru", spec, split, ds.x_test, ds.y_test, BaselineConfig(**kw))  # noqa: E731
    assert run(gru_steps=20, eval_every=10, stop_on_solved=False).ended == "steps"
    assert run(gru_steps=10**6, eval_every=10, time_limit=0.3, stop_on_solved=False).ended == "time"
    solved = run(gru_steps=3000, eval_every=50)  # Bitwise_Not: solved within a few hundred steps
    assert solved.ended == "solved" and solved.steps_run < 3000


# ----------------------------------------------------------------------------- in a bench


def test_a_bench_run_twice_trains_its_baselines_only_the_first_time(tmp_path, monkeypatch):
    calls: list[str] = []

    def counting(name, *args, **kw):
        calls.append(name)
        return train_baseline(name, *args, **kw)

    monkeypatch.setattr(runner, "train_baseline", counting)  # one job: units run in this process
    cfg = BenchConfig(budget=30, baseline=TINY_BASE, max_steps=40, baseline_cache=str(tmp_path / "cache"))
    first = run_bench(plan_jobs(["current_number"], 1, tmp_path / "b1", cfg), tmp_path / "b1")
    assert sorted(calls) == ["gru", "transformer"] and len(list((tmp_path / "cache").glob("*.json"))) == 2
    r1 = json.loads((tmp_path / "b1" / "results.json").read_text())["rows"][0]
    assert r1["gru_cached"] is False and r1["transformer_cached"] is False
    calls.clear()
    second = run_bench(plan_jobs(["current_number"], 1, tmp_path / "b2", cfg), tmp_path / "b2")
    assert calls == []  # both baselines read from the cache: no unit trained them
    r2 = json.loads((tmp_path / "b2" / "results.json").read_text())["rows"][0]
    for name in ("gru", "transformer"):
        assert r2[f"{name}_cached"] is True and r2[f"{name}_cache_source"]["by"] == "dtx bench"
        for field in ("test_exact", "test_nmse", "solved", "s", "steps", "params"):
            assert r2[f"{name}_{field}"] == r1[f"{name}_{field}"], field
    assert first["baselines_cached"] == {"gru": 0, "transformer": 0}
    assert second["baselines_cached"] == {"gru": 1, "transformer": 1}
    md = (tmp_path / "b2" / "summary.md").read_text()
    assert "baselines read from the baseline cache" in md and "GRU 1/1, Transformer 1/1 rows" in md
    assert next(ln for ln in md.splitlines() if ln.startswith("| Current_Number |")).count(CACHED_MARK) == 2
    assert second["seconds"]["gru"] == 0.0 and second["seconds"]["transformer"] == 0.0  # spent nothing here


def test_without_a_cache_nothing_is_looked_up(tmp_path):
    job = Job(BenchTask("Current_Number", "current_number", "mips"), 0, str(tmp_path), BenchConfig(baseline_cache=None))
    assert runner.cached_baselines(job) == {}
    missing = dataclasses.replace(job, config=BenchConfig(baseline_cache=str(tmp_path / "none")))
    assert runner.cached_baselines(missing) == {} and not (tmp_path / "none").exists()


def test_the_cli_cache_options(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "current_number",
            "--out",
            str(tmp_path / "o"),
            "--baseline-cache",
            str(tmp_path),
            "--no-baseline-cache",
        ],
    )
    assert res.exit_code != 0 and "exclude each other" in res.output
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- reports


META = bench_meta()


def _row(task: str, cached: bool, family: str = "mips") -> dict:
    src = {"date": "2026-12-05 09:00 UTC", "commit": "0ld0ld", "by": "dtx baselines"}
    return {
        "task": task, "family": family, "kind": "discrete", "seed": 0, "error": None, "program_verified": True,
        "length_gen": True, "program_modules": 1, "program_ops": 1, "reference_ops": 1, "dt_test_exact": 1.0,
        "dt_model_solved": True, "wall_s": 10.0, "dt_train_s": 5.0, "extract_s": 1.0,
        "dt_phase_s": {"search": 4.0}, "gru_test_exact": 0.25, "gru_s": 7.0, "gru_cached": cached,
        "transformer_test_exact": 0.5, "transformer_s": 3.0, "transformer_cached": False,
        **({"gru_cache_source": src} if cached else {}),
    }  # fmt: skip


def test_the_reports_say_which_baseline_numbers_came_from_the_cache():
    rows = [_row("A", True), _row("B", False)]
    s = summarise(rows, 60.0)
    assert s["baselines_cached"] == {"gru": 1, "transformer": 0}
    assert s["seconds"]["gru"] == 7.0 and s["seconds"]["transformer"] == 6.0  # A's cached GRU cost nothing here
    md = markdown(rows, META, s)
    line = {ln.split(" |")[0][2:]: ln for ln in md.split(HEADING)[0].splitlines() if ln.startswith("| ")}
    assert f"| 25.0 % {CACHED_MARK} | 50.0 % |" in line["A"] and "| 25.0 % | 50.0 % |" in line["B"]
    assert (
        "GRU 1/2, Transformer 0/2 rows; trained by `dtx baselines` at commit 0ld0ld (2026-12-05)" in md
        and "(baselines read from the cache not counted)" in md
    )
    plain = markdown([_row("B", False)], META, summarise([_row("B", False)], 60.0))
    assert "baseline cache" not in plain and CACHED_MARK not in plain and "not counted" not in plain
    gen = G.markdown([_row("G", True, "generated")], META)  # the per-family report states it as well
    assert "baselines read from the baseline cache" in gen and "GRU 1/1" in gen


# ----------------------------------------------------------------------------- the MIPS recipe


def test_mips_log_loss_and_network():
    assert float(log_loss(torch.ones(3), torch.zeros(3))) == pytest.approx(0.5 * np.log(2.0))
    linear = MipsRNN(2, 1, hidden=4, depth=1, width=1)
    assert linear(torch.zeros(5, 7, 2)).shape == (1, 5, 7, 1)
    assert sum(p.numel() for p in linear.parameters()) == (6 * 4 + 4) + (4 + 1)  # f: [h, x] -> h; g: h -> y
    assert len(MipsRNN(1, 1, hidden=4, depth=2, width=8).f) == 3  # Linear, ReLU, Linear
    with pytest.raises(ValueError, match="MipsRecipe"):
        MipsRecipe(architectures=((4, 0, 1),))
    with pytest.raises(ValueError, match="gru_recipe"):
        BaselineConfig(gru_recipe="lstm")


def test_the_recipe_is_part_of_the_recurrent_baselines_key_only():
    d = data_digest(_arrays(), "discrete", ["x"], ["y"])
    bench, mips = BaselineConfig(), BaselineConfig(gru_recipe="mips")
    assert cache_key("gru", mips, 0, d) != cache_key("gru", bench, 0, d)
    assert cache_key("transformer", mips, 0, d) == cache_key("transformer", bench, 0, d)
    longer = dataclasses.replace(mips, gru_mips=MipsRecipe(steps=10))
    assert cache_key("gru", longer, 0, d) != cache_key("gru", mips, 0, d)
    assert cache_key("gru", dataclasses.replace(bench, gru_mips=MipsRecipe(steps=10)), 0, d) == cache_key(
        "gru", bench, 0, d
    )  # the MIPS recipe's fields do not touch the bench recipe's key, nor the GRU's fields MIPS's
    assert cache_key("gru", dataclasses.replace(mips, gru_steps=7, gru_hidden=3), 0, d) == cache_key("gru", mips, 0, d)


def test_dtx_baselines_fills_the_cache_that_dtx_bench_reads(tmp_path):
    cache = str(tmp_path / "cache")
    fill = ["baselines", "bitwise_not", "--recipe", "mips", "--baseline-steps", "200", "--baseline-cache", cache]
    res = CliRunner(env={"COLUMNS": "200"}).invoke(app, fill)
    assert res.exit_code == 0, res.output
    assert "Bitwise_Not gru: test exact 100.0 %" in res.output and "(trained)" in res.output
    assert "1 trained, 0 already cached, 0 failed" in res.output
    res = CliRunner(env={"COLUMNS": "200"}).invoke(app, fill)
    assert res.exit_code == 0 and "0 trained, 1 already cached" in res.output, res.output
    bench = ["bench", "bitwise_not", "--out", str(tmp_path / "b"), "--budget", "30", "--max-steps", "40"]
    res = CliRunner().invoke(
        app, [*bench, "--baseline-recipe", "mips", "--baseline-steps", "200", "--baseline-cache", cache]
    )
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / "b" / "results.json").read_text())["rows"][0]
    assert (
        row["gru_cached"] is True and row["gru_cache_source"]["by"] == "dtx baselines" and row["gru_test_exact"] == 1.0
    )
    assert row["transformer_cached"] is False  # not filled: the bench trained it
    md = (tmp_path / "b" / "summary.md").read_text()
    assert "MIPS's RNN trained by MIPS's recipe" in md and "trained by `dtx baselines` at commit" in md
