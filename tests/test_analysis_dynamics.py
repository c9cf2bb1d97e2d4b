"""Transition detection on synthetic logs with a known answer, edge cases, and `dtx analyze`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from discrete_transformer.analysis import MetricsError, detect_transition, load_metrics
from discrete_transformer.analysis.analyze import analyze_run, find_run_dirs
from discrete_transformer.cli import app

PNG = b"\x89PNG\r\n\x1a\n"


def synthetic_rows(
    center_log_tau: float,
    steps: int = 1300,
    every: int = 20,
    seed: int = 0,
    sharpness: float = 4.0,
    tau0: float = 2.0,
    tau1: float = 0.05,
    noise: float = 0.0,
    harden: int = 5,
) -> list[dict]:
    """An exponential τ schedule and a selector entropy that is a sigmoid in log τ, centred on
    `center_log_tau`; the loss falls with it. Followed by a few hardening rows (τ = 0)."""
    rng = np.random.default_rng(seed)
    rows = []
    for step in list(range(0, steps, every)) + [steps - 1]:
        tau = tau0 * (tau1 / tau0) ** (step / (steps - 1))
        h = 0.2 + 0.8 / (1.0 + math.exp(-sharpness * (math.log(tau) - center_log_tau)))
        h += noise * rng.normal()
        rows.append(
            {
                "step": step,
                "phase": "search",
                "tau": tau,
                "tau_attn": tau / 2,
                "loss": 0.01 + h,
                "selector_entropy": h,
                "attention_entropy": h * 0.9,
                "seed": seed,
            }
        )
    for k in range(harden):
        rows.append(
            {
                "step": steps + 100 * k,
                "phase": "harden",
                "tau": 0.0,
                "tau_attn": 0.0,
                "loss": 1e-3,
                "selector_entropy": 0.2,
                "attention_entropy": 0.0,
                "seed": seed,
            }
        )
    return rows


def step_of(log_tau: float, steps: int = 1300, tau0: float = 2.0, tau1: float = 0.05) -> float:
    return (log_tau - math.log(tau0)) / (math.log(tau1) - math.log(tau0)) * (steps - 1)


@pytest.mark.parametrize("center", [math.log(1.0), math.log(0.3), math.log(0.1)])
def test_planted_sigmoid_is_found(center: float) -> None:
    t = detect_transition(synthetic_rows(center), seed=0)
    assert t.detected
    assert abs(t.step - step_of(center)) <= 40, (t.step, step_of(center))  # two logging intervals
    assert abs(math.log(t.tau) - center) < 0.15
    assert t.entropy_before > 0.9 and t.entropy_after < 0.3
    assert abs(t.extra["midpoint_step"] - step_of(center)) <= 40


def test_planted_sigmoid_with_noise() -> None:
    t = detect_transition(synthetic_rows(math.log(0.4), noise=0.02, seed=3), seed=3)
    assert t.detected and abs(t.step - step_of(math.log(0.4))) <= 80


def test_sharper_collapse_has_smaller_width() -> None:
    sharp = detect_transition(synthetic_rows(math.log(0.3), sharpness=8.0))
    soft = detect_transition(synthetic_rows(math.log(0.3), sharpness=2.0))
    assert sharp.width_log_tau < soft.width_log_tau


def test_entropy_falling_fastest_at_the_start_is_reported_there() -> None:
    rows = synthetic_rows(math.log(0.3))
    for r in rows:
        if r["phase"] == "search":
            r["selector_entropy"] = 0.2 + 0.8 * math.exp(-r["step"] / 150)
    t = detect_transition(rows)
    assert t.detected and t.step <= 40


def test_too_short_log_is_no_transition() -> None:
    rows = synthetic_rows(math.log(0.3), steps=100, every=50)  # 3 search rows
    t = detect_transition(rows)
    assert not t.detected and "too few" in t.reason and t.step is None


def test_flat_entropy_is_no_transition() -> None:
    rows = synthetic_rows(math.log(0.3))
    for r in rows:
        r["selector_entropy"] = 0.7
    t = detect_transition(rows)
    assert not t.detected and "fell by" in t.reason


def test_only_hardening_rows() -> None:
    rows = [r for r in synthetic_rows(math.log(0.3)) if r["phase"] == "harden"]
    assert not detect_transition(rows).detected


def _write_run(d: Path, rows: list[dict], best_seed: int = 0, dataset: str = "Fake_Task") -> Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"format": "dtx-run", "dataset": dataset, "source": f"task:{dataset}"}))
    (d / "result.json").write_text(json.dumps({"best_seed": best_seed}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_restarts_and_early_stop(tmp_path: Path) -> None:
    rows = synthetic_rows(math.log(0.5), seed=0) + synthetic_rows(math.log(0.2), seed=1, steps=1300)[:30]
    d = _write_run(tmp_path / "run", rows, best_seed=1)
    a = analyze_run(d)
    assert set(a.transitions) == {0, 1} and a.best_seed == 1
    assert a.png.read_bytes().startswith(PNG)
    doc = json.loads(a.json.read_text())
    assert doc["best_seed"] == 1 and len(doc["seeds"]) == 2
    assert doc["transition"]["seed"] == 1


def test_torn_last_line_and_missing_log(tmp_path: Path) -> None:
    d = _write_run(tmp_path / "run", synthetic_rows(math.log(0.3)))
    with (d / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "tau"')
    assert len(load_metrics(d)) == len(synthetic_rows(math.log(0.3)))
    (d / "metrics.jsonl").unlink()
    with pytest.raises(MetricsError, match="no metrics.jsonl"):
        load_metrics(d)


def test_analyze_tree_and_cli(tmp_path: Path) -> None:
    root = tmp_path / "bench"
    for name, c in (("A_Task", 0.8), ("B_Task", 0.2)):
        _write_run(root / "tasks" / name, synthetic_rows(math.log(c)), dataset=name)
    (root / "tasks" / "not_a_run").mkdir()
    assert [p.name for p in find_run_dirs(root)] == ["A_Task", "B_Task"]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["analyze", str(root)])
    assert result.exit_code == 0, result.output
    assert "A_Task" in result.stdout and "B_Task" in result.stdout
    out = root / "analysis"
    assert (out / "cross_task.png").read_bytes().startswith(PNG)
    lines = (out / "transitions.csv").read_text().splitlines()
    assert lines[0].startswith("run,source,seed,detected,step,tau") and len(lines) == 3
    steps = {row["source"]: row["step"] for row in json.loads((out / "transitions.json").read_text())["runs"]}
    assert steps["A_Task"] < steps["B_Task"]  # A's entropy collapses at a higher τ, i.e. earlier
    for name in ("A_Task", "B_Task"):
        assert (root / "tasks" / name / "analysis" / "dynamics.png").is_file()


def test_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["analyze", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "error: " in r.stderr and "not found" in r.stderr
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["analyze", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no run directories" in r.stderr
