"""The ``dtx`` command line.

Commands: ``dtx tasks`` (the built-in task suite), ``dtx train SOURCE --out DIR`` (train,
evaluate on the test split, write a run directory), ``dtx extract DIR`` (turn a run's model into
``DIR/program.py`` and verify it: ``DIR/verification.json``) and ``dtx run SOURCE --out DIR``
(train + extract + verify). ``bench`` and ``report`` are later work.

Expected failures (unknown task, bad data file, bad option value, unusable ``--out``) print one
red line ``error: ...`` on stderr and exit with code 2, before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="dtx",
    help="Discrete Transformer: learn an algorithm from examples and extract it as a verified Python program.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _fail(message: str) -> NoReturn:
    """One red line on stderr, exit code 2."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    first = str(message).strip().splitlines()[0] if str(message).strip() else "unknown error"
    err.print(f"[bold red]error:[/bold red] {escape(first)}")
    raise typer.Exit(EXIT_USAGE)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    """Discrete Transformer command line."""
    if version:
        from . import __version__

        typer.echo(f"dtx {__version__}")
        raise typer.Exit(0)


@app.command("tasks")
def tasks_cmd() -> None:
    """List the built-in tasks: name, family, kind, input channels, T and the rule."""
    from .tasks import TASKS

    table = Table(title=f"{len(TASKS)} built-in tasks", show_lines=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("family", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("channels", no_wrap=True)
    table.add_column("T", justify="right", no_wrap=True)
    table.add_column("rule", overflow="fold")
    for t in TASKS:
        table.add_row(t.name, t.family, t.kind, ", ".join(t.input_names), str(t.T), escape(t.description))
    Console().print(table)


SET_HELP = "Override a config field: section.field=value (sections model, train, extract); repeatable."


def _configs_from_sets(sets: Optional[list[str]]):
    """(ModelConfig, TrainConfig, ExtractConfig) from `--set` overrides; errors end the command."""
    from . import api
    from .overrides import OverrideError, configs_from_overrides

    try:  # None for a section without overrides: the API's own defaults apply
        return configs_from_overrides(sets, train_base=api.TrainConfig())
    except OverrideError as e:
        _fail(str(e))


def _train_from_options(
    source: str, out: Path, seed: int, restarts: Optional[int], steps: Optional[int], kind: Optional[str], force: bool,
    sets: Optional[list[str]] = None,
):
    """The training half shared by `train` and `run`: validate options, check data and --out
    before anything is written, train with a progress display; errors end the command."""
    if steps is not None and steps < 1:
        _fail(f"--steps must be a positive integer, got {steps}")
    if restarts is not None and restarts < 1:
        _fail(f"--restarts must be a positive integer, got {restarts}")
    if kind is not None:
        kind = kind.strip().lower()
        if kind not in ("discrete", "continuous"):
            _fail(f"--kind must be 'discrete' or 'continuous', got {kind!r}")

    from .api import RunDirError, _execute, _prepare
    from .training.checkpoint import CheckpointError

    model_cfg, train_cfg, _ = _configs_from_sets(sets)
    try:  # options, data and --out are all checked before anything is written
        plan = _prepare(source, out, seed, model_cfg, train_cfg, restarts, steps, kind, force, 0)
    except ValueError as e:  # UnknownTaskError, DataFileError, RunDirError, bad config values
        _fail(str(e))
    try:
        result = _execute(plan, progress=True)
    except (CheckpointError, RunDirError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED)

    return result


@app.command("train")
def train_cmd(
    source: str = typer.Argument(..., help="Built-in task name (e.g. sum_last2, Sum_Last2) or a .npz/.csv/.jsonl file."),
    out: Path = typer.Option(..., "--out", help="Run directory to write (new, empty, or a previous run with --force)."),
    seed: int = typer.Option(0, "--seed", help="First training seed; restarts use seed, seed+1, ..."),
    restarts: Optional[int] = typer.Option(None, "--restarts", help="Number of restarts (parallel seeds)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per restart."),
    kind: Optional[str] = typer.Option(None, "--kind", help="discrete or continuous (default: from the task or data)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out when it holds a previous run."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Train on SOURCE, report test metrics and write the run directory."""
    result = _train_from_options(source, out, seed, restarts, steps, kind, force, sets)
    Console().print(_train_table(result, "dtx train"))


def _train_table(result, title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("")
    t, v = result.test, result.best.val
    if result.kind == "discrete":
        test_line = f"{100 * t['exact']:.2f}% exact match (nMSE {t['nmse']:.3g})"
        val_line = f"{100 * v['exact']:.2f}% exact match (nMSE {v['nmse']:.3g})"
    else:
        test_line = f"normalised MSE {t['nmse']:.3g}"
        val_line = f"normalised MSE {v['nmse']:.3g}"
    table.add_row("source", escape(result.source))
    table.add_row("kind", result.kind)
    table.add_row("test", test_line)
    table.add_row("n test", str(t["n"]))
    table.add_row("val", val_line)
    table.add_row("best seed", f"{result.best.seed} (of {len(result.restarts)} restart(s) run)")
    table.add_row("steps", f"{result.best.steps_run} of {result.train_config.steps}")
    table.add_row("wall time", f"{result.seconds:.1f} s")
    table.add_row("run dir", escape(str(result.run_dir)))
    return table


# ----------------------------------------------------------------------------- extract / run


def _extract_quietly(target, console: Console, config=None):
    """extract() with a spinner on a terminal; expected failures become one red line."""
    from .api import RunDirError, extract
    from .extract.pipeline import ExtractionError
    from .training.checkpoint import CheckpointError

    try:
        if console.is_terminal:
            with console.status("extracting: hypothesis tests, symbolic regression, verification ..."):
                return extract(target, config=config)
        return extract(target, config=config)
    except (RunDirError, CheckpointError, ExtractionError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED)


def _show_program(program, run_dir: Path, console: Console) -> None:
    from rich.syntax import Syntax

    console.print(Syntax(program.source, "python", theme="ansi_dark", word_wrap=False), soft_wrap=True)
    v = program.verification
    table = Table(title="verdict", show_header=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("")
    verdict = "[bold green]VERIFIED[/bold green]" if v.verified else "[bold red]NOT VERIFIED[/bold red]"
    table.add_row("program", verdict)
    rule = "100% exact match after rounding" if v.kind == "discrete" else "normalised MSE <= 1e-6"
    table.add_row("rule", f"{v.kind}: {rule}")
    table.add_row("test", escape(v.test.describe()))
    if v.longer is not None:
        tag = "[green]passes[/green]" if v.longer.passed else "[red]fails[/red]"
        table.add_row("longer sequences", f"{escape(v.longer.describe())} {tag}")
    else:
        table.add_row("longer sequences", f"not available ({escape(v.longer_note)})")
    agree = "agree" if v.python_agrees else "[red]DISAGREE[/red]"
    table.add_row("program / run_batch", f"{agree} on {v.python_checked} test sequences")
    m = program.model_score
    if v.kind == "discrete" and "exact" in m:
        table.add_row("model (test)", f"{100 * m['exact']:.2f}% exact match (n={m['n']})")
    else:
        table.add_row("model (test)", f"normalised MSE {m.get('nmse', float('nan')):.3g} (n={m.get('n')})")
    n_mod = len([n for n in program.ir.nodes if not n.is_alias])
    table.add_row("size", f"{n_mod} module line(s), {len(program.source.splitlines())} lines in all")
    table.add_row("extraction time", f"{program.seconds:.1f} s")
    table.add_row("written", escape(f"{run_dir / 'program.py'}, {run_dir / 'verification.json'}"))
    console.print(table)


def _save(program, run_dir: Path) -> None:
    try:
        program.save(run_dir)
    except OSError as e:
        _fail(f"{run_dir}: cannot write the program: {e.strerror or e}")


@app.command("extract")
def extract_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `dtx train` (or `dtx run`)."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="Override an extraction field: extract.field=value; repeatable."),
) -> None:
    """Extract RUN_DIR's model as a Python program, verify it, write program.py and verification.json."""
    from .api import is_run_dir

    if any(not s.strip().startswith("extract.") for s in sets or ()):
        _fail("dtx extract: only extract.* fields can be set here (the model is already trained)")
    _, _, extract_cfg = _configs_from_sets(sets)
    if not run_dir.is_dir():
        _fail(f"{run_dir}: run directory not found")
    if not is_run_dir(run_dir):
        _fail(f"{run_dir}: not a run directory (no config.json written by `dtx train`)")
    console = Console()
    program = _extract_quietly(run_dir, console, extract_cfg)
    _save(program, run_dir)
    _show_program(program, run_dir, console)


@app.command("run")
def run_cmd(
    source: str = typer.Argument(..., help="Built-in task name (e.g. sum_last2) or a .npz/.csv/.jsonl file."),
    out: Path = typer.Option(..., "--out", help="Run directory to write (new, empty, or a previous run with --force)."),
    seed: int = typer.Option(0, "--seed", help="First training seed; restarts use seed, seed+1, ..."),
    restarts: Optional[int] = typer.Option(None, "--restarts", help="Number of restarts (parallel seeds)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per restart."),
    kind: Optional[str] = typer.Option(None, "--kind", help="discrete or continuous (default: from the task or data)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out when it holds a previous run."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Train on SOURCE, extract the program, verify it; print the program and the verdict."""
    _, _, extract_cfg = _configs_from_sets(sets)
    result = _train_from_options(source, out, seed, restarts, steps, kind, force, sets)
    console = Console()
    console.print(_train_table(result, "dtx run: training"))
    program = _extract_quietly(result, console, extract_cfg)
    _save(program, Path(result.run_dir))
    _show_program(program, Path(result.run_dir), console)


# ----------------------------------------------------------------------------- studies


def _study_log(console: Console):
    return lambda msg: console.print(escape(msg), highlight=False)


def _check_study_options(out: Path, doc: Path, steps: Optional[int]) -> None:
    if steps is not None and steps < 1:
        _fail(f"--steps must be a positive integer, got {steps}")
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: exists and is not a directory")
    if doc.exists() and doc.is_dir():
        _fail(f"--doc {doc}: is a directory")


def _study_command(name: str, out: Path, doc: Path, seed: int, steps: Optional[int], extra: str = "") -> str:
    parts = [f"dtx {name} --out {out} --doc {doc}"]
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
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per run (default: TrainConfig.steps)."),
) -> None:
    """Train tasks under two inductive-bias settings each, extract both programs, write DOC."""
    from .studies import bias_study

    _check_study_options(out, doc, steps)
    console = Console()
    try:
        rows = bias_study(out, doc, seed=seed, steps=steps, log=_study_log(console),
                          command=_study_command("bias-study", out, doc, seed, steps))
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow] (finished runs are kept; rerun to resume)")
        raise typer.Exit(EXIT_INTERRUPTED)
    except ValueError as e:
        _fail(str(e))
    n = sum(r["counts"] for r in rows)
    console.print(f"{n} of {len(rows)} cases give two different verified programs; wrote {escape(str(doc))}")


@app.command("estimator-study")
def estimator_study_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for the study's runs (finished runs are reused on rerun)."),
    doc: Path = typer.Option(Path("docs/estimators.md"), "--doc", help="Markdown file to write."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task names (default: six quick tasks)."),
    seed: int = typer.Option(0, "--seed", help="Training seed of every run."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per run (default: TrainConfig.steps)."),
) -> None:
    """Gumbel-softmax vs REINFORCE on the same tasks, seed and budget; write DOC."""
    from .studies import ESTIMATOR_TASKS, estimator_study
    from .tasks import TASKS

    _check_study_options(out, doc, steps)
    names = {t.name.lower(): t.name for t in TASKS}
    chosen = ESTIMATOR_TASKS
    if tasks is not None:
        wanted = [t.strip() for t in tasks.split(",") if t.strip()]
        unknown = [t for t in wanted if t.lower() not in names]
        if unknown or not wanted:
            _fail(f"--tasks: unknown task(s) {', '.join(unknown) or '(none given)'}; see `dtx tasks`")
        chosen = tuple(names[t.lower()] for t in wanted)
    console = Console()
    extra = f"--tasks {','.join(chosen)}" if tasks is not None else ""
    try:
        rows = estimator_study(out, doc, tasks=chosen, seed=seed, steps=steps, log=_study_log(console),
                               command=_study_command("estimator-study", out, doc, seed, steps, extra))
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow] (finished runs are kept; rerun to resume)")
        raise typer.Exit(EXIT_INTERRUPTED)
    except ValueError as e:
        _fail(str(e))
    solved = {e: sum(r["verified"] for r in rows if r["estimator"] == e) for e in ("gumbel", "reinforce")}
    console.print(f"solved: gumbel {solved['gumbel']}, reinforce {solved['reinforce']} of {len(chosen)}; wrote {escape(str(doc))}")


if __name__ == "__main__":  # pragma: no cover
    app()
