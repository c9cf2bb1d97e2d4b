"""Shared by the bench report tests (test_generalization_report, test_baseline_cache,
test_published): the run metadata a report is written with, as `dtx bench` records it."""

from __future__ import annotations

from typing import Any


def bench_meta(**changes: Any) -> dict[str, Any]:
    """A bench's metadata (date, machine, commit, command, executor, budget, baselines, ...),
    with `changes` applied."""
    return {
        "date": "2026-12-06 10:00 UTC",
        "machine": {"cpu": "CPU", "cores": 2, "platform": "Linux", "python": "3.11"},
        "commit": "abc123",
        "command": "dtx bench",
        "executor": "local",
        "jobs": 2,
        "seeds": 1,
        "budget": 150.0,
        "baseline": {"gru_steps": 2000, "tf_steps": 1000, "batch_size": 64, "lr": 0.01, "stop_on_solved": True},
        "max_steps": None,
        "overrides": [],
        "wall_s": 60.0,
        **changes,
    }
