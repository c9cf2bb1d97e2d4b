"""The ``dtx`` command line.

Commands: ``dtx tasks`` (the built-in task suite; ``--suite generated:SEED`` a generated sample),
``dtx export`` (tasks as data files), ``dtx train SOURCE --out DIR`` (train,
evaluate on the test split, write a run directory), ``dtx extract DIR`` (turn a run's model into
``DIR/program.py`` and verify it: ``DIR/verification.json``) and ``dtx run SOURCE --out DIR``
(train + extract + verify); ``dtx train --resume DIR`` continues an interrupted run;
``dtx bench`` (the task suite with baselines, see :mod:`.bench`) and ``dtx speed``
(micro-benchmarks), both in :mod:`.cli_bench`; ``dtx analyze`` and ``dtx report`` (annealing
dynamics, HTML run report).

Expected failures (unknown task, bad data file, bad option value, unusable ``--out``) print one
red line ``error: ...`` on stderr and exit with code 2, before anything is written (every case:
docs/errors.md). An unexpected exception is one line too, with exit code 1 (``DTX_DEBUG=1``
shows its traceback); Ctrl-C / SIGTERM exit with code 130 and say how to resume. A command that
writes a run (or bench) directory owns it until it ends: a second one is refused with exit code 2
while the first runs (see :mod:`.rundir_lock`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import api
from .cli_bench import baselines_cmd, bench_cmd, speed_cmd
from .cli_common import EXIT_INTERRUPTED, SET_HELP, fail, unexpected
from .rundir import NOT_A_RUN, RESULT_FILE, RunDir
from .tasks import TASKS, suite_specs
from .tasks.export import export_tasks
from .tasks.generated import SUITE_NAMES
from .tasks.registry import DEFAULT_N_TEST
from .training.checkpoint import CheckpointError
from .verdict import rule_text
from .version import __version__

# Imported inside the commands that use them, so that `dtx --help` and `dtx tasks` start fast
# (they pay only for the package itself, torch included; measured on the 2-core machine):
# - .extraction loads sympy, about +0.3 s, and so do .overrides and .bench, which import it
#   (`dtx train` / `run` / `extract`; `bench` / `speed` live in :mod:`.cli_bench`);
# - .analysis loads matplotlib, about +0.45 s (`dtx analyze` / `report`);
# - rich.syntax loads pygments (the program listing of `dtx extract` / `run`).
# Calls into the API go through the module (api.prepare, ...) so that tests can replace them.

app = typer.Typer(
    name="dtx",
    help="Discrete Transformer: learn an algorithm from examples and extract it as a verified Python program.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback(invoke_without_command=True)
def main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    """Discrete Transformer command line."""
    if version:  # runs without a command (invoke_without_command); `dtx` alone still prints the help
        typer.echo(f"dtx {__version__}")
        raise typer.Exit(0)


SUITE_HELP = "all (the 47 public tasks, default) | mips | continuous | generated | generated:SEED (a generated sample)."


@app.command("tasks")
def tasks_cmd(
    suite: str | None = typer.Option(None, "--suite", help=SUITE_HELP),
) -> None:
    """List the built-in tasks: name, family, kind, input channels, T and the rule."""
    specs, title = TASKS, f"{len(TASKS)} built-in tasks"
    if suite is not None:
        try:
            found = suite_specs(suite)
        except ValueError as e:  # generated:x, generated:-1
            fail(str(e))
        if found is None:
            fail(f"unknown suite {suite!r}; expected one of: {', '.join(SUITE_NAMES)}")
        specs, title = found, f"{len(found)} tasks of suite {suite.strip()}"
    generated = any(t.family == "generated" for t in specs)
    table = Table(title=title, show_lines=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("family", no_wrap=True)
    if generated:
        table.add_column("generalises", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("channels", no_wrap=True)
    table.add_column("T", justify="right", no_wrap=True)
    if generated:
        table.add_column("params", overflow="fold")
        table.add_column("ref ops", justify="right", no_wrap=True)
    table.add_column("rule", overflow="fold")
    for t in specs:
        cells = [t.name, t.generator or t.family]
        if generated:
            cells.append(t.generalises or "-")
        cells += [
            t.kind,
            ", ".join(t.input_names) + (" -> " + ", ".join(t.output_names) if t.n_out > 1 else ""),
            str(t.T),
        ]
        if generated:
            cells += [", ".join(f"{k}={v}" for k, v in t.params), str(t.reference_ops or "")]
        table.add_row(*(escape(c) for c in cells), escape(t.description))
    Console().print(table)


@app.command("export")
def export_cmd(
    sources: list[str] = typer.Argument(
        ..., help="Task names and/or suites: mips, continuous, all, generated, generated:SEED."
    ),
    out: Path = typer.Option(
        ..., "--out", help="A .npz/.csv/.jsonl file (one task), else a directory: one DIR/<name>.npz per task."
    ),
    n_test: int | None = typer.Option(
        None, "--n-test", help="Test sequences per sampled task (default: make_dataset's 10000)."
    ),
) -> None:
    """Write tasks as data files: the same make_dataset(seed=0) arrays the bench trains on."""
    try:
        written = export_tasks(sources, out, n_test=DEFAULT_N_TEST if n_test is None else n_test)
    except ValueError as e:  # unknown task or suite, bad --out, bad --n-test
        fail(str(e))
    except OSError as e:
        fail(f"{getattr(e, 'filename', None) or out}: cannot write: {e.strerror or e}")
    where = written[0] if len(written) == 1 else out
    Console().print(f"wrote {len(written)} task(s) to {escape(str(where))}", highlight=False)


def _configs_from_sets(sets: list[str] | None):
    """(ModelConfig, TrainConfig, ExtractConfig) from `--set` overrides; errors end the command."""
    from .overrides import OverrideError, configs_from_overrides

    try:  # None for a section without overrides: the API's own defaults apply
        return configs_from_overrides(sets, train_base=api.TrainConfig())
    except OverrideError as e:
        fail(str(e))


def _own(owned: ExitStack, lock: AbstractContextManager, where: Path) -> None:
    """Enter a run-directory lock (:mod:`.rundir_lock`) until `owned` closes, at the command's
    end; another process using the directory (or a change since it was checked) ends the command."""
    try:
        owned.enter_context(lock)
    except ValueError as e:  # RunDirError: in use, or no longer what the checks saw
        fail(str(e))
    except OSError as e:
        fail(f"{getattr(e, 'filename', None) or where}: cannot lock the directory: {e.strerror or e}")


def _train_from_options(
    source: str,
    out: Path,
    seed: int,
    restarts: int | None,
    steps: int | None,
    kind: str | None,
    force: bool,
    sets: list[str] | None,
    owned: ExitStack,
    command: str = "dtx train",
):
    """The training half shared by `train` and `run`: validate options, check data and --out
    before anything is written, own --out until `owned` closes, train with a progress display;
    errors end the command."""
    if steps is not None and steps < 1:
        fail(f"--steps must be a positive integer, got {steps}")
    if restarts is not None and restarts < 1:
        fail(f"--restarts must be a positive integer, got {restarts}")
    if kind is not None:
        kind = kind.strip().lower()
        if kind not in ("discrete", "continuous"):
            fail(f"--kind must be 'discrete' or 'continuous', got {kind!r}")

    model_cfg, train_cfg, _ = _configs_from_sets(sets)
    try:  # options, data and --out are all checked before anything is written
        plan = api.prepare(source, out, seed, model_cfg, train_cfg, restarts, steps, kind, force, 0)
    except ValueError as e:  # UnknownTaskError, DataFileError, RunDirError, bad config values
        fail(str(e))
    except Exception as e:  # noqa: BLE001 - anything else from bad input: one line, not a traceback
        unexpected(e)
    _own(owned, api.owning(plan, f"{command} {source}", force), out)
    return _execute_plan(plan)


@app.command("train")
def train_cmd(
    source: str | None = typer.Argument(
        None, help="Built-in task name (e.g. sum_last2, Sum_Last2) or a .npz/.csv/.jsonl file."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run directory to write (new, empty, or a previous run with --force)."
    ),
    seed: int = typer.Option(0, "--seed", help="First training seed; restarts use seed, seed+1, ..."),
    restarts: int | None = typer.Option(None, "--restarts", help="Number of restarts (parallel seeds)."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps per restart."),
    kind: str | None = typer.Option(None, "--kind", help="discrete or continuous (default: from the task or data)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out when it holds a previous run."),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue an interrupted run directory (no SOURCE or other options)."
    ),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Train on SOURCE, report test metrics and write the run directory."""
    if resume is not None:
        if source is not None or out is not None or sets:
            fail("--resume DIR takes no SOURCE, --out or --set: the run directory holds them")
        with ExitStack() as owned:
            result = _resume_run(resume, owned)
        Console().print(_train_table(result, "dtx train --resume"))
        return
    if source is None:
        fail("missing argument SOURCE (a task name or a data file), or --resume DIR")
    if out is None:
        fail("missing option --out DIR (the run directory to write)")
    with ExitStack() as owned:
        result = _train_from_options(source, out, seed, restarts, steps, kind, force, sets, owned)
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
    pf = result.train_config.portfolio
    variant = f", {pf[(result.best.seed - result.seed) % len(pf)]} search" if len(pf) > 1 else ""
    table.add_row("best seed", f"{result.best.seed} (of {len(result.restarts)} restart(s) run{variant})")
    table.add_row("steps", f"{result.best.steps_run} of {result.train_config.total_steps}")
    table.add_row("wall time", f"{result.seconds:.1f} s")
    table.add_row("run dir", escape(str(result.run_dir)))
    return table


# ----------------------------------------------------------------------------- extract / run


def _extract_quietly(target, console: Console, config=None):
    """extract() with a spinner on a terminal; expected failures become one red line."""
    from .extraction import ExtractionError

    try:
        if console.is_terminal:
            with console.status("extracting: hypothesis tests, symbolic regression, verification ..."):
                return api.extract(target, config=config)
        return api.extract(target, config=config)
    except (api.RunDirError, CheckpointError, ExtractionError) as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001
        unexpected(e)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _show_program(program, run_dir: Path, console: Console) -> None:
    from rich.syntax import Syntax

    console.print(Syntax(program.source, "python", theme="ansi_dark", word_wrap=False), soft_wrap=True)
    v = program.verification
    table = Table(title="verdict", show_header=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("")
    verdict = "[bold green]VERIFIED[/bold green]" if v.verified else "[bold red]NOT VERIFIED[/bold red]"
    table.add_row("program", verdict)
    table.add_row("rule", f"{v.kind}: {rule_text(v.kind)}")
    table.add_row("test", escape(v.test.describe()))
    checks = (  # reported beside the verdict, not part of it
        (f"sequences {v.longer_factor}× as long", v.longer, v.longer_note),
        ("inputs off the trained range", v.wider, v.wider_note),
    )
    for name, split, note in checks:
        if split is not None:
            tag = "[green]passes[/green]" if split.passed else "[red]fails[/red]"
            table.add_row(name, f"{escape(split.describe())} {tag}")
        else:
            table.add_row(name, f"not available ({escape(note)})")
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
    rd = RunDir(run_dir)
    table.add_row("written", escape(f"{rd.program_path}, {rd.verification_path}"))
    console.print(table)


def _save(program, run_dir: Path) -> None:
    try:
        program.save(run_dir)
    except OSError as e:
        fail(f"{run_dir}: cannot write the program: {e.strerror or e}")


@app.command("extract")
def extract_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `dtx train` (or `dtx run`)."),
    sets: list[str] | None = typer.Option(
        None, "--set", help="Override an extraction field: extract.field=value; repeatable."
    ),
) -> None:
    """Extract RUN_DIR's model as a Python program, verify it, write program.py and verification.json."""
    if run_dir.exists() and not run_dir.is_dir():
        fail(f"{run_dir}: is a file, expected a run directory written by `dtx train`")
    if any(not s.strip().startswith("extract.") for s in sets or ()):
        fail("dtx extract: only extract.* fields can be set here (the model is already trained)")
    _, _, extract_cfg = _configs_from_sets(sets)
    if not run_dir.is_dir():
        fail(f"{run_dir}: run directory not found")
    if not api.is_run_dir(run_dir):
        fail(f"{run_dir}: {NOT_A_RUN}")
    console = Console()
    with ExitStack() as owned:
        _own(owned, RunDir(run_dir).hold("dtx extract"), run_dir)  # api.extract's own hold is then a no-op
        if not RunDir(run_dir).has_result():
            fail(
                f"{run_dir}: the run has not finished (no {RESULT_FILE}); continue it with: dtx train --resume {run_dir}"
            )
        program = _extract_quietly(run_dir, console, extract_cfg)
        _save(program, run_dir)
    _show_program(program, run_dir, console)


@app.command("run")
def run_cmd(
    source: str = typer.Argument(..., help="Built-in task name (e.g. sum_last2) or a .npz/.csv/.jsonl file."),
    out: Path = typer.Option(..., "--out", help="Run directory to write (new, empty, or a previous run with --force)."),
    seed: int = typer.Option(0, "--seed", help="First training seed; restarts use seed, seed+1, ..."),
    restarts: int | None = typer.Option(None, "--restarts", help="Number of restarts (parallel seeds)."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps per restart."),
    kind: str | None = typer.Option(None, "--kind", help="discrete or continuous (default: from the task or data)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out when it holds a previous run."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Train on SOURCE, extract the program, verify it; print the program and the verdict."""
    _, _, extract_cfg = _configs_from_sets(sets)
    console = Console()
    with ExitStack() as owned:  # --out stays ours from its check to the program's save
        result = _train_from_options(source, out, seed, restarts, steps, kind, force, sets, owned, "dtx run")
        console.print(_train_table(result, "dtx run: training"))
        program = _extract_quietly(result, console, extract_cfg)
        _save(program, Path(result.run_dir))
    _show_program(program, Path(result.run_dir), console)


# ----------------------------------------------------------------------------- running a plan


def _execute_plan(plan):
    """Run a prepared plan; Ctrl-C / SIGTERM keep the finished restarts and say how to resume."""
    try:
        return api.execute(plan, progress=True)
    except (CheckpointError, api.RunDirError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        where = f"; resume with: dtx train --resume {plan.run_dir}" if plan.run_dir is not None else ""
        Console(stderr=True, soft_wrap=True, highlight=False).print(f"[yellow]interrupted{escape(where)}[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as e:
        fail(f"{getattr(e, 'filename', None) or plan.run_dir}: cannot write the run: {e.strerror or e}")
    except Exception as e:  # noqa: BLE001
        unexpected(e)


def _resume_run(run_dir: Path, owned: ExitStack):
    """`dtx train --resume DIR`: rebuild the plan from DIR/config.json, own DIR until `owned`
    closes, and continue."""
    try:
        plan = api.resume_plan(run_dir)
    except ValueError as e:  # RunDirError, UnknownTaskError, DataFileError
        fail(str(e))
    except Exception as e:  # noqa: BLE001
        unexpected(e)
    _own(owned, api.owning(plan, "dtx train --resume"), run_dir)
    return _execute_plan(plan)


# ----------------------------------------------------------------------------- analyze / report / bench / speed


@app.command("analyze")
def analyze_cmd(
    directory: Path = typer.Argument(
        ..., help="A run directory, or a directory holding run directories (e.g. a bench output)."
    ),
) -> None:
    """Annealing dynamics: detect the exploration -> exploitation transition and plot it."""
    from .analysis.cli_views import analyze_directory

    analyze_directory(directory, Console(), fail)


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `dtx train` (or `dtx run`)."),
) -> None:
    """Write RUN_DIR/report.html: config, curves, attention maps, MLP surfaces, program, verification."""
    from .analysis.cli_views import report_directory

    report_directory(run_dir, Console(), fail)


app.command("bench")(bench_cmd)
app.command("baselines")(baselines_cmd)
app.command("speed")(speed_cmd)


if __name__ == "__main__":  # pragma: no cover
    app()
