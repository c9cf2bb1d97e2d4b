"""Training compute in the bench reports (bench/report_compute.py) and where its numbers come from:
the sequences a restart sees (training/evaluation.Seen), a baseline's (bench/baselines.py,
bench/mips_rnn.py), kept with a cached result (bench/baseline_cache.py) and written into the row
(bench/runner.py)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import torch
from extract_helpers import sum_last2_model
from report_helpers import bench_meta

from discrete_transformer.bench import generalization as G
from discrete_transformer.bench.baseline_cache import BaselineCache
from discrete_transformer.bench.baselines import BaselineConfig, BaselineResult, train_baseline
from discrete_transformer.bench.mips_rnn import MipsRecipe, train_mips_rnn
from discrete_transformer.bench.report import markdown, summarise
from discrete_transformer.bench.report_baselines import CACHED_MARK
from discrete_transformer.bench.report_compute import (
    HEADING,
    compute_section,
    compute_summary,
    compute_table,
    dt_gru_ratios,
    human,
    seconds,
)
from discrete_transformer.bench.runner import BenchConfig, Job, extract_unit, prepare_dir, restart_unit
from discrete_transformer.bench.suite import resolve_suite
from discrete_transformer.config import ModelConfig, TrainConfig, restart_configs
from discrete_transformer.tasks import load_source, make_dataset
from discrete_transformer.training import loop, polish
from discrete_transformer.training.evaluation import Seen
from discrete_transformer.training.resume import load_restarts

# ----------------------------------------------------------------------------- the report


def test_counts_and_seconds_are_humanised():
    assert [human(v) for v in (0, 950, 1234, 12_800, 128_000, 999_999, 3_400_000, 1.5e9)] == [
        "0", "950", "1.23k", "12.8k", "128k", "1M", "3.4M", "1.5G",
    ]  # fmt: skip
    assert human(None) == human("nan") == human("x") == "–"
    assert [seconds(v) for v in (7.04, 12.0, 1234.4, None, "inf")] == ["7.0", "12", "1,234", "–", "–"]


def _row(task: str, dt: int | None, gru: int | None, tf: int | None, **extra) -> dict:
    r = {
        "task": task, "family": "mips", "kind": "discrete", "seed": 0, "error": None, "program_verified": True,
        "length_gen": True, "program_modules": 1, "program_ops": 1, "reference_ops": 1, "dt_test_exact": 1.0,
        "dt_model_solved": True, "wall_s": 60.0, "dt_train_s": 40.0, "extract_s": 2.0, "dt_restarts_s": 70.0,
        "gru_test_exact": 0.5, "gru_s": 12.0, "gru_cached": False, "transformer_test_exact": 0.5,
        "transformer_s": 9.04, "transformer_cached": False,
        "dt_seqs": dt, "gru_seqs": gru, "transformer_seqs": tf,
    }  # fmt: skip
    return {**{k: v for k, v in r.items() if v is not None}, **extra}


ROWS = [
    _row("A", 512_000, 128_000, 64_000, gru_cached=True),  # DT/GRU 4
    _row("B", None, None, None, dt_restarts_s=None),  # a row from before the counts: – everywhere, not 0
    _row("C", 100_000, 50_000, 64_000, seed=1),  # 2
    _row("E", 300_000, 50_000, 64_000),  # 6
    {"task": "F", "family": "mips", "seed": 0, "error": "RuntimeError: boom", "wall_s": 1.0},
]


def test_the_table_marks_cached_baselines_and_shows_missing_counts_as_dashes():
    lines = compute_table(ROWS)
    assert lines[0] == "| task | DT sequences | DT s | GRU sequences | GRU s | Transformer sequences | Transformer s |"
    assert lines[2:] == [
        f"| A | 512k | 40 | 128k {CACHED_MARK} | 12 {CACHED_MARK} | 64k | 9.0 |",
        "| B | – | 40 | – | 12 | – | 9.0 |",
        "| C (seed 1) | 100k | 40 | 50k | 12 | 64k | 9.0 |",
        "| E | 300k | 40 | 50k | 12 | 64k | 9.0 |",
    ]  # the failed row F is not listed


def test_the_summary_totals_the_known_counts_and_takes_the_median_ratio():
    assert dt_gru_ratios(ROWS) == [4.0, 2.0, 6.0]
    (line,) = compute_summary(ROWS)
    assert "DT 912k sequences (over 3 of 4 rows), 160 s of wall time (210 s of its restarts' own" in line
    assert "GRU 228k sequences (over 3 of 4 rows), 48 s;" in line
    assert "Transformer 192k sequences (over 3 of 4 rows), 36 s;" in line
    assert "DT/GRU sequences: median 4× over 3 tasks (from 2× to 6×)" in line
    assert "counts what its one training took" in line  # A's GRU came from the cache
    old = compute_summary([ROWS[1]])[0]
    assert "DT – sequences, 40 s" in old and "no row with both counts" in old
    assert compute_summary([ROWS[4]]) == [] and compute_section([ROWS[4]]) == []


def test_the_bench_report_ends_with_the_section_and_the_generated_report_states_the_line():
    md = markdown(ROWS, bench_meta(), summarise(ROWS, 60.0))
    results, section = md.split(HEADING)
    assert "| A | 512k |" not in results and "| A | 512k | 40 |" in section
    assert f"{CACHED_MARK}: read from the baseline cache" in section and md.endswith("|\n")
    plain = compute_section([ROWS[3]])
    assert not any(CACHED_MARK in ln for ln in plain)  # no cached baseline: no mark, no footnote
    gen = G.markdown([{**r, "family": "generated"} for r in ROWS[:4]], bench_meta())
    assert "- training compute, summed over tasks" in gen and HEADING not in gen


# ----------------------------------------------------------------------------- the counts


def test_a_baselines_sequences_are_its_steps_times_its_batch():
    torch.set_num_threads(1)
    ds = load_source("bitwise_not")
    split = loop.Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 200, 0)
    spec = loop.data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    cfg = BaselineConfig(gru_steps=12, tf_steps=7, batch_size=32, eval_every=5, stop_on_solved=False)
    for name, steps in (("gru", 12), ("transformer", 7)):
        r = train_baseline(name, spec, split, ds.x_test, ds.y_test, cfg)
        assert (r.steps_run, r.sequences) == (steps, steps * 32)
    recipe = MipsRecipe(architectures=((4, 1, 1), (4, 2, 8)), steps=6, batch_size=10**6, seeds=2, eval_every=3)
    r = train_mips_rnn(spec, split, ds.x_test, ds.y_test, recipe, 0, stop_on_solved=False)
    # 2 architectures × 2 seeds × 6 steps, each a batch of the whole training split (smaller than 10**6)
    assert r["steps_run"] == 24 and r["sequences"] == 24 * split.x_train.shape[0]


def test_the_cache_keeps_a_baselines_sequences_and_an_older_entry_reads_none(tmp_path):
    cache = BaselineCache(tmp_path)
    r = BaselineResult("gru", {"exact": 1.0}, {"exact": 1.0, "n": 3}, 30, 1.5, 99, "steps", sequences=1920)
    assert cache.put("ab" * 32, r, {}, {})
    assert cache.get("ab" * 32)[0].sequences == 1920
    doc = json.loads(cache.path("ab" * 32).read_text())
    del doc["result"]["sequences"]  # an entry written before the count
    cache.path("ab" * 32).write_text(json.dumps(doc))
    got = cache.get("ab" * 32)[0]
    assert got.sequences is None and got.steps_run == 30


def test_a_polish_counts_its_batch_at_every_loss_evaluation():
    ds = make_dataset("Sum_Last2", seed=0, n_test=200)
    split = loop.Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 500, 0)
    cfg = TrainConfig()
    xb, yb, var = polish.polish_batch(split, cfg, torch.Generator().manual_seed(0))
    m, _cfg, _spec = sum_last2_model(ds)
    with torch.no_grad():
        m.layers[0]["mlp"].d[0, 0] *= 1.05
    forwards: list[int] = []
    m.register_forward_hook(lambda _mod, args, _out: forwards.append(args[0].shape[0]))
    seen = Seen()
    polish.lbfgs(m, xb, yb, var, cfg, 10, seen=seen)
    assert len(forwards) >= 3 and set(forwards) == {xb.shape[0]}  # start, iterations, end: all on the batch
    assert seen.n == sum(forwards)


def test_a_restarts_sequences_are_what_its_training_losses_saw(monkeypatch):
    """Every training loss of a restart (search, hardening, trial and final polish) goes through
    per_member_loss with predictions (P, B, T, C): its P × B summed must be the restart's count."""
    torch.set_num_threads(1)
    ds = load_source("sum_last2")
    split = loop.Split.from_arrays(ds.x_train, ds.y_train, ds.kind, 200, 0)
    spec = loop.data_spec(ds.x_train, ds.y_train, ds.input_names, ds.output_names)
    losses: list[int] = []
    loss = loop.per_member_loss

    def counting(pred, y, var):
        losses.append(pred.shape[0] * pred.shape[1])
        return loss(pred, y, var)

    monkeypatch.setattr(loop, "per_member_loss", counting)
    monkeypatch.setattr(polish, "per_member_loss", counting)
    cfg = TrainConfig(
        steps=30, population=4, eval_every=10, polish_iters=5, trial_polish_nmse=10.0, trial_polish_iters=3
    )
    r = loop.train_restart(ModelConfig(), cfg, split, spec, seed=0)
    assert r.sequences == sum(losses) and r.sequences >= cfg.search_steps * cfg.batch_size * cfg.population
    assert set(losses) > {cfg.batch_size * cfg.population}  # more than the search's batches were counted


def test_the_rows_dt_sequences_are_its_restarts_steps_times_batch_times_members(tmp_path):
    """One bench restart with nothing that ends it early and no polish: search steps × batch ×
    population plus hardening steps × hardening batch × kept members, in the kept restart and in
    the row the extract unit writes."""
    over = ("train.stop_on_exact=false", "train.trial_polish_nmse=0", "train.polish_iters=0")
    cfg = BenchConfig(
        budget=60, baseline=BaselineConfig(gru_steps=5, tf_steps=5), max_steps=20, restarts=1, overrides=over
    )
    job = Job(resolve_suite(["bitwise_not"])[0], 0, str(tmp_path), cfg)
    prepare_dir(job.run_dir)
    deadline = time.time() + 60
    assert "error" not in restart_unit(job, 0, deadline)
    part = extract_unit(job, deadline)
    assert part.get("error") is None, part
    _, t, _ = restart_configs(ModelConfig(), TrainConfig(), 0)
    t = dataclasses.replace(t, steps=20, steps_scale=1.0)
    expected = (
        t.search_steps * t.batch_size * t.population
        + (t.total_steps - t.search_steps) * t.harden_batch_size * t.harden_top
    )
    assert [r.sequences for r in load_restarts(job.run_dir)] == [expected]
    assert part["dt_seqs"] == expected and part["dt_restarts_run"] == 1 and part["dt_restarts_s"] > 0


@pytest.mark.parametrize("missing", [True, False])
def test_a_run_whose_kept_restart_predates_the_count_has_no_total(missing):
    a = loop.RestartResult(0, 0, {}, 1, 0.0, False, {}, [], sequences=100)
    b = loop.RestartResult(1, 0, {}, 1, 0.0, False, {}, [], sequences=None if missing else 50)
    assert loop.total_sequences([a, b]) == (None if missing else 150)
