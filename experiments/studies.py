"""Entry point of the two research studies (see README.md here); not part of ``dtx``.

    python experiments/studies.py bias-study --out DIR [--doc docs/inductive_bias.md] [--seed N] [--steps N]
    python experiments/studies.py estimator-study --out DIR [--doc docs/estimators.md] [--tasks A,B] [--seed N] [--steps N]

Errors end the command the way ``dtx`` does (one red line, exit code 2; Ctrl-C exits with 130).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from study_runs import ESTIMATOR_TASKS, Log, bias_study, estimator_study

from discrete_transformer.cli_common import EXIT_INTERRUPTED, fail
from discrete_transformer.tasks import TASKS

ENTRY = "python experiments/studies.py"

app = typer.Typer(
    name="studies",
    help="Research studies of the Discrete Transformer: each writes a Markdown doc from its own runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _study_log(console: Console) -> Log:
    return lambda msg: console.print(escape(msg), highlight=False)


def _check_study_options(out: Path, doc: Path, steps: int | None) -> None:
    if steps is not None and steps < 1:
        fail(f"--steps must be a positive integer, got {steps}")
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a directory")
    if doc.exists() and doc.is_dir():
        fail(f"--doc {doc}: is a directory")


def study_command(name: str, out: Path, doc: Path, seed: int, steps: int | None, extra: str = "") -> str:
    """The command line that reproduces a study, written at the top of its doc."""
    parts = [f"{ENTRY} {name} --out {out} --doc {doc}"]
    if seed:
        parts.append(f"--seed {seed}")
    if steps is not None:
        parts.append(f"--steps {steps}")
    if extra:
        parts.append(extra)
    return " ".join(parts)


@app.command("bias-study")
def bias_study_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for the study's runs (finished runs are reused on rerun)."),
    doc: Path = typer.Option(Path("docs/inductive_bias.md"), "--doc", help="Markdown file to write."),
    seed: int = typer.Option(0, "--seed", help="Training seed of every run."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps per run (default: TrainConfig.steps)."),
) -> None:
    """Train tasks under two inductive-bias settings each, extract both programs, write DOC."""
    _check_study_options(out, doc, steps)
    console = Console()
    try:
        rows = bias_study(
            out,
            doc,
            seed=seed,
            steps=steps,
            log=_study_log(console),
            command=study_command("bias-study", out, doc, seed, steps),
        )
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow] (finished runs are kept; rerun to resume)")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as e:
        fail(str(e))
    n = sum(r["counts"] for r in rows)
    console.print(f"{n} of {len(rows)} cases give two different verified programs; wrote {escape(str(doc))}")


@app.command("estimator-study")
def estimator_study_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for the study's runs (finished runs are reused on rerun)."),
    doc: Path = typer.Option(Path("docs/estimators.md"), "--doc", help="Markdown file to write."),
    tasks: str | None = typer.Option(None, "--tasks", help="Comma-separated task names (default: six quick tasks)."),
    seed: int = typer.Option(0, "--seed", help="Training seed of every run."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps per run (default: TrainConfig.steps)."),
) -> None:
    """Gumbel-softmax vs REINFORCE on the same tasks, seed and budget; write DOC."""
    _check_study_options(out, doc, steps)
    names = {t.name.lower(): t.name for t in TASKS}
    chosen = ESTIMATOR_TASKS
    if tasks is not None:
        wanted = [t.strip() for t in tasks.split(",") if t.strip()]
        unknown = [t for t in wanted if t.lower() not in names]
        if unknown or not wanted:
            fail(f"--tasks: unknown task(s) {', '.join(unknown) or '(none given)'}; see `dtx tasks`")
        chosen = tuple(names[t.lower()] for t in wanted)
    console = Console()
    extra = f"--tasks {','.join(chosen)}" if tasks is not None else ""
    try:
        rows = estimator_study(
            out,
            doc,
            tasks=chosen,
            seed=seed,
            steps=steps,
            log=_study_log(console),
            command=study_command("estimator-study", out, doc, seed, steps, extra),
        )
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow] (finished runs are kept; rerun to resume)")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as e:
        fail(str(e))
    solved = {e: sum(r["verified"] for r in rows if r["estimator"] == e) for e in ("gumbel", "reinforce")}
    console.print(
        f"solved: gumbel {solved['gumbel']}, reinforce {solved['reinforce']} of {len(chosen)}; wrote {escape(str(doc))}"
    )


if __name__ == "__main__":
    app()
