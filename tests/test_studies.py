"""The research studies of experiments/ (imported through pyproject's pytest ``pythonpath``):
the bias study writes both programs and resumes, the estimator study writes its table, and the
entry point refuses bad options the way ``dtx`` does. Short trainings only."""

from __future__ import annotations

import json

import study_runs
from conftest import tiny_train
from studies import app, study_command
from typer.testing import CliRunner

from discrete_transformer import api
from discrete_transformer.cli import app as dtx_app


def test_bias_study_writes_both_programs_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "TrainConfig", lambda: tiny_train(restarts=1, steps=60))
    case = study_runs.BiasCase(
        "Bitwise_Not",
        "SR grammar",
        study_runs.Setting("full", ()),
        study_runs.Setting("no sub", ("extract.sr_operators=add,mul,eq,ge",)),
    )
    doc = tmp_path / "bias.md"
    rows = study_runs.bias_study(tmp_path / "runs", doc, cases=(case,), log=lambda _m: None, command="bias-study X")
    (sa, ra, da), (sb, rb, db) = rows[0]["results"]
    assert (da / "program.py").is_file() and (db / "program.py").is_file()
    assert rb["train_seconds"] == ra["train_seconds"]  # extract-only setting reuses the training
    ver = json.loads((db / "verification.json").read_text())
    assert ver["extract_config"]["sr_operators"] == ["add", "mul", "eq", "ge"]
    text = doc.read_text()
    assert "bias-study X" in text and text.count("def program(") == 2
    assert rows[0]["counts"] == (ra["verified"] and rb["verified"] and rows[0]["different"])
    calls = []
    monkeypatch.setattr(study_runs, "train", lambda *a, **k: calls.append(1))
    study_runs.bias_study(tmp_path / "runs", doc, cases=(case,), log=lambda _m: None)
    assert not calls  # finished runs are read back, not retrained


def test_estimator_study_table(tmp_path):
    doc = tmp_path / "est.md"
    rows = study_runs.estimator_study(
        tmp_path / "runs", doc, tasks=("Current_Number",), log=lambda _m: None, command="estimator-study Y"
    )
    assert [r["estimator"] for r in rows] == ["gumbel", "reinforce"]
    text = doc.read_text()
    assert "estimator-study Y" in text and "| Current_Number | reinforce |" in text
    assert (
        json.loads((tmp_path / "runs" / "Current_Number" / "reinforce" / "model.json").read_text())["train_config"][
            "estimator"
        ]
        == "reinforce"
    )


def test_study_cli_rejects_bad_options(tmp_path):
    res = CliRunner().invoke(app, ["estimator-study", "--out", str(tmp_path / "o"), "--tasks", "Nope"])
    assert res.exit_code == 2 and "unknown task" in res.stderr
    res = CliRunner().invoke(app, ["bias-study", "--out", str(tmp_path / "o"), "--steps", "0"])
    assert res.exit_code == 2 and "--steps" in res.stderr


def test_studies_are_not_dtx_commands():
    assert study_command("bias-study", "o", "d.md", 0, None).startswith("python experiments/studies.py bias-study")
    for name in ("bias-study", "estimator-study"):
        res = CliRunner().invoke(dtx_app, [name, "--help"])
        assert res.exit_code == 2 and "No such command" in res.stderr
