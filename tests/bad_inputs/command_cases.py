"""The bad-input cases about options, run directories and checkpoints."""

from __future__ import annotations

from .builders import (
    OUT,
    T,
    both,
    checkpoint_version,
    config_json_only,
    directory,
    fake_run,
    flip_byte,
    pickle_weights,
    text_file,
    truncate,
    unfinished,
)
from .case import Case


def command_cases() -> list[Case]:
    """Bad options, unusable --out / --resume directories, damaged or unfinished runs."""
    c = Case
    return [
        # --- options
        c(
            "unknown-task",
            "a misspelt task name",
            T + ("sum_lst2",) + OUT,
            lambda d: None,
            ("sum_lst2", "did you mean", "Sum_Last2"),
        ),
        c(
            "steps-zero",
            "--steps 0",
            T + ("sum_last2", "--steps", "0") + OUT,
            lambda d: None,
            ("--steps", "positive", "0"),
        ),
        c(
            "steps-negative",
            "--steps -5",
            T + ("sum_last2", "--steps", "-5") + OUT,
            lambda d: None,
            ("--steps", "positive", "-5"),
        ),
        c(
            "restarts-zero",
            "--restarts 0",
            T + ("sum_last2", "--restarts", "0") + OUT,
            lambda d: None,
            ("--restarts", "positive", "0"),
        ),
        c(
            "kind-unknown",
            "--kind banana",
            T + ("sum_last2", "--kind", "banana") + OUT,
            lambda d: None,
            ("--kind", "banana"),
        ),
        c(
            "out-not-a-run",
            "--out an existing directory holding other files",
            T + ("sum_last2", "--out", "mine"),
            directory("mine", "notes.txt"),
            ("--out mine", "not a run directory"),
        ),
        c(
            "out-run-no-force",
            "--out a previous run, without --force",
            T + ("sum_last2", "--out", "run"),
            fake_run(),
            ("--out run", "--force"),
        ),
        c(
            "out-is-file",
            "--out an existing file",
            T + ("sum_last2", "--out", "notes.txt"),
            text_file("notes.txt", "keep me\n"),
            ("--out notes.txt", "not a directory"),
        ),
        c("no-source", "`dtx train` with neither SOURCE nor --resume", T + OUT, lambda d: None, ("SOURCE", "--resume")),
        c(
            "resume-not-a-run",
            "--resume on a directory that is not a run",
            T + ("--resume", "mine"),
            directory("mine", "notes.txt"),
            ("--resume mine", "not a run directory"),
        ),
        c(
            "resume-finished",
            "--resume on a run that already finished",
            T + ("--resume", "run"),
            fake_run(),
            ("--resume run", "already finished"),
        ),
        c(
            "resume-missing",
            "--resume on a path that does not exist",
            T + ("--resume", "nowhere"),
            lambda d: None,
            ("--resume nowhere", "not found"),
        ),
        # --- extract / checkpoints
        c(
            "extract-not-a-run",
            "`extract` on a directory that is not a run",
            ("extract", "mine"),
            directory("mine", "notes.txt"),
            ("mine", "not a run directory"),
        ),
        c(
            "extract-missing",
            "`extract` on a path that does not exist",
            ("extract", "nowhere"),
            lambda d: None,
            ("nowhere", "not found"),
        ),
        c(
            "extract-file",
            "`extract` on a file",
            ("extract", "notes.txt"),
            text_file("notes.txt", "keep me\n"),
            ("notes.txt", "is a file"),
        ),
        c(
            "run-unknown-task",
            "`dtx run` with a misspelt task name",
            ("run", "max_sen") + OUT,
            lambda d: None,
            ("max_sen", "did you mean", "Max_Seen"),
        ),
        c(
            "run-steps-zero",
            "`dtx run --steps 0`",
            ("run", "sum_last2", "--steps", "0") + OUT,
            lambda d: None,
            ("--steps", "positive"),
        ),
        c(
            "run-bad-file",
            "`dtx run` on a .jsonl without a test split",
            ("run", "data.jsonl") + OUT,
            text_file("data.jsonl", '{"split": "train", "x": [1, 2], "y": [1, 3]}\n'),
            ("data.jsonl", "test"),
        ),
        c(
            "resume-with-source",
            "--resume together with SOURCE",
            T + ("sum_last2", "--resume", "run"),
            fake_run(),
            ("--resume", "SOURCE"),
        ),
        c(
            "extract-bad-config",
            "`extract` on a directory whose config.json is not a run's",
            ("extract", "mine"),
            both(directory("mine"), config_json_only("mine/config.json")),
            ("mine", "not a run directory"),
        ),
        c(
            "checkpoint-byte-flipped",
            "run whose model.safetensors has one byte flipped",
            ("extract", "run"),
            fake_run(edit=flip_byte),
            ("run/model.safetensors", "SHA-256"),
        ),
        c(
            "checkpoint-truncated",
            "run whose model.safetensors is truncated",
            ("extract", "run"),
            fake_run(edit=truncate),
            ("run/model.safetensors", "SHA-256"),
        ),
        c(
            "checkpoint-pickle",
            "run whose weights were replaced by a pickle (hash updated)",
            ("extract", "run"),
            fake_run(edit=pickle_weights),
            ("run/model.safetensors", "not a readable safetensors file"),
            library_detail=True,
        ),
        c(
            "checkpoint-version",
            "run whose model.json has version 99",
            ("extract", "run"),
            fake_run(edit=checkpoint_version),
            ("run/model.json", "version 99"),
        ),
        c(
            "extract-unfinished",
            "`extract` on an interrupted run (no result.json)",
            ("extract", "run"),
            fake_run(edit=unfinished),
            ("run", "not finished", "--resume"),
        ),
    ]
