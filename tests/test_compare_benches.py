"""experiments/compare_benches.py and public_verdicts.py on hand-made bench results (imported
through pyproject's pytest ``pythonpath``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compare_benches import main


def _bench(path: Path, verified: dict[str, bool], wall: float) -> Path:
    rows = [
        {
            "task": t,
            "family": "generated",
            "generalises": "Sum_Last2" if t == "a" else "",
            "program_verified": v,
            "dt_model_solved": v,
            "wall_s": 10.0 * (i + 1),
            "seed": 0,
        }
        for i, (t, v) in enumerate(verified.items())
    ]
    path.mkdir()
    (path / "results.json").write_text(json.dumps({"format": "dtx-bench", "rows": rows, "meta": {"wall_s": wall}}))
    return path


def test_won_lost_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _bench(tmp_path / "base", {"a": True, "b": False, "c": True}, 600.0)
    cand = _bench(tmp_path / "cand", {"a": True, "b": True, "c": False, "d": True}, 1200.0)
    public = tmp_path / "public.json"
    public.write_text(
        json.dumps({"format": "dtx-bench", "rows": [{"task": "Sum_Last2", "family": "mips", "program_verified": True}]})
    )
    assert main([str(base), str(cand), "--public-results", str(public)]) == 0
    out = capsys.readouterr().out
    assert "tasks compared: 3 (1 in one only: d)" in out
    assert "verified: base 2, candidate 2" in out
    assert "of 1 tasks generalising a verified public task: base 1, candidate 1" in out
    assert "won (1): b" in out and "lost (1): c" in out
    assert "total wall min: base 10.0, candidate 20.0" in out


def test_not_a_bench(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit, match="not a bench results.json"):
        main([str(bad), str(bad)])
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="x.json is not a bench results.json"):
        main([str(bad), str(bad)])
    with pytest.raises(SystemExit, match="missing.*file not found"):
        main([str(tmp_path / "missing"), str(bad)])


def test_public_verdicts_from_the_report(tmp_path: Path) -> None:
    """experiments/public_verdicts.py: the per-task table of a benchmark report becomes a
    results.json that --public-results accepts."""
    from public_verdicts import main as verdicts

    from discrete_transformer.bench.generalization import load_public_results

    md = tmp_path / "benchmarks.md"
    md.write_text(
        "| task | family | kind | seed | DT model | verified | 4×T |\n|---|---|---|---|---|---|---|\n"
        "| Sum_Last2 | mips | discrete | 0 | 100.0 % | **yes** | yes |\n"
        "| Div_3 | mips | discrete | 0 | 3.0 % | no | no |\n"
        "| Kinetic_Energy | continuous | continuous | 0 | 1e-9 | **yes** | yes |\n"
    )
    out = tmp_path / "public.json"
    assert verdicts([str(md), str(out)]) == 0
    got = load_public_results(out)
    assert got["verified"] == ["Kinetic_Energy", "Sum_Last2"] and got["tasks"] == 3
