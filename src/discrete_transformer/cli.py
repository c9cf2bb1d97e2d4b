"""The ``dtx`` command line.

Commands: ``dtx tasks`` (the built-in task suite; ``--suite generated:SEED`` a generated sample),
``dtx export`` (tasks as data files), ``dtx train SOURCE --out DIR`` (train,
evaluate on the test split, write a run directory), ``dtx extract DIR`` (turn a run's model into
``DIR/program.py`` and verify it: ``DIR/verification.json``) and ``dtx run SOURCE --out DIR``
(train + extract + verify); ``dtx train --resume DIR`` continues an interrupted run;
``dtx bench`` (the task suite with baselines, see :mod:`.bench`) and ``dtx speed``
(micro-benchmarks); ``dtx analyze`` and ``dtx report`` (annealing dynamics, HTML run report).

Expected failures (unknown task, bad data file, bad option value, unusable ``--out``) print one
red line ``error: ...`` on stderr and exit with code 2, before anything is written (every case:
docs/errors.md). An unexpected exception is one line too, with exit code 1 (``DTX_DEBUG=1``
shows its traceback); Ctrl-C / SIGTERM exit with code 130 and say how to resume. A command that
writes a run (or bench) directory owns it until it ends: a second one is refused with exit code 2
while the first runs (see :mod:`.rundir_lock`).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import api
from .config import SEARCH_VARIANTS, TrainConfig
from .rundir_lock import hold
from .tasks import TASKS, suite_specs
from .tasks.export import export_tasks
from .tasks.generated import SUITE_NAMES
from .tasks.registry import DEFAULT_N_TEST
from .training.checkpoint import CheckpointError
from .version import __version__

# Imported inside the commands that use them, so that `dtx --help` and `dtx tasks` start fast
# (they pay only for the package itself, torch included; measured on the 2-core machine):
# - .extraction loads sympy, about +0.3 s, and so do .overrides, .studies and .bench, which
#   import it (`dtx train` / `run` / `extract` / `bench` / `speed` / the studies);
# - .analysis loads matplotlib, about +0.45 s (`dtx analyze` / `report`);
# - rich.syntax loads pygments (the program listing of `dtx extract` / `run`).
# Calls into the API go through the module (api.prepare, ...) so that tests can replace them.

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
            _fail(str(e))
        if found is None:
            _fail(f"unknown suite {suite!r}; expected one of: {', '.join(SUITE_NAMES)}")
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
        _fail(str(e))
    except OSError as e:
        _fail(f"{getattr(e, 'filename', None) or out}: cannot write: {e.strerror or e}")
    where = written[0] if len(written) == 1 else out
    Console().print(f"wrote {len(written)} task(s) to {escape(str(where))}", highlight=False)


SET_HELP = "Override a config field: section.field=value (sections model, train, extract); repeatable."


def _configs_from_sets(sets: list[str] | None):
    """(ModelConfig, TrainConfig, ExtractConfig) from `--set` overrides; errors end the command."""
    from .overrides import OverrideError, configs_from_overrides

    try:  # None for a section without overrides: the API's own defaults apply
        return configs_from_overrides(sets, train_base=api.TrainConfig())
    except OverrideError as e:
        _fail(str(e))


def _own(owned: ExitStack, lock: AbstractContextManager, where: Path) -> None:
    """Enter a run-directory lock (:mod:`.rundir_lock`) until `owned` closes, at the command's
    end; another process using the directory (or a change since it was checked) ends the command."""
    try:
        owned.enter_context(lock)
    except ValueError as e:  # RunDirError: in use, or no longer what the checks saw
        _fail(str(e))
    except OSError as e:
        _fail(f"{getattr(e, 'filename', None) or where}: cannot lock the directory: {e.strerror or e}")


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
        _fail(f"--steps must be a positive integer, got {steps}")
    if restarts is not None and restarts < 1:
        _fail(f"--restarts must be a positive integer, got {restarts}")
    if kind is not None:
        kind = kind.strip().lower()
        if kind not in ("discrete", "continuous"):
            _fail(f"--kind must be 'discrete' or 'continuous', got {kind!r}")

    model_cfg, train_cfg, _ = _configs_from_sets(sets)
    try:  # options, data and --out are all checked before anything is written
        plan = api.prepare(source, out, seed, model_cfg, train_cfg, restarts, steps, kind, force, 0)
    except ValueError as e:  # UnknownTaskError, DataFileError, RunDirError, bad config values
        _fail(str(e))
    except Exception as e:  # noqa: BLE001 - anything else from bad input: one line, not a traceback
        _unexpected(e)
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
            _fail("--resume DIR takes no SOURCE, --out or --set: the run directory holds them")
        with ExitStack() as owned:
            result = _resume_run(resume, owned)
        Console().print(_train_table(result, "dtx train --resume"))
        return
    if source is None:
        _fail("missing argument SOURCE (a task name or a data file), or --resume DIR")
    if out is None:
        _fail("missing option --out DIR (the run directory to write)")
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
        _fail(str(e))
    except Exception as e:  # noqa: BLE001
        _unexpected(e)
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
    sets: list[str] | None = typer.Option(
        None, "--set", help="Override an extraction field: extract.field=value; repeatable."
    ),
) -> None:
    """Extract RUN_DIR's model as a Python program, verify it, write program.py and verification.json."""
    if run_dir.exists() and not run_dir.is_dir():
        _fail(f"{run_dir}: is a file, expected a run directory written by `dtx train`")
    if any(not s.strip().startswith("extract.") for s in sets or ()):
        _fail("dtx extract: only extract.* fields can be set here (the model is already trained)")
    _, _, extract_cfg = _configs_from_sets(sets)
    if not run_dir.is_dir():
        _fail(f"{run_dir}: run directory not found")
    if not api.is_run_dir(run_dir):
        _fail(f"{run_dir}: not a run directory (no config.json written by `dtx train`)")
    console = Console()
    with ExitStack() as owned:
        _own(owned, hold(run_dir, "dtx extract"), run_dir)  # api.extract's own hold is then a no-op
        if not (run_dir / "result.json").is_file():
            _fail(
                f"{run_dir}: the run has not finished (no result.json); continue it with: dtx train --resume {run_dir}"
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


# ----------------------------------------------------------------------------- robustness

DEBUG_ENV = "DTX_DEBUG"
EXIT_INTERNAL = 1


def _unexpected(e: Exception) -> NoReturn:
    """An exception no check anticipated: one red line (type and message) and exit code 1, or the
    full traceback when ``DTX_DEBUG=1`` — reported, never swallowed."""
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        raise e
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    text = str(e).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    err.print(
        f"[bold red]error:[/bold red] unexpected {type(e).__name__}{escape(detail)} "
        f"(set {DEBUG_ENV}=1 for the traceback; please report it)"
    )
    raise typer.Exit(EXIT_INTERNAL)


def _execute_plan(plan):
    """Run a prepared plan; Ctrl-C / SIGTERM keep the finished restarts and say how to resume."""
    try:
        return api.execute(plan, progress=True)
    except (CheckpointError, api.RunDirError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        where = f"; resume with: dtx train --resume {plan.run_dir}" if plan.run_dir is not None else ""
        Console(stderr=True, soft_wrap=True, highlight=False).print(f"[yellow]interrupted{escape(where)}[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as e:
        _fail(f"{getattr(e, 'filename', None) or plan.run_dir}: cannot write the run: {e.strerror or e}")
    except Exception as e:  # noqa: BLE001
        _unexpected(e)


def _resume_run(run_dir: Path, owned: ExitStack):
    """`dtx train --resume DIR`: rebuild the plan from DIR/config.json, own DIR until `owned`
    closes, and continue."""
    try:
        plan = api.resume_plan(run_dir)
    except ValueError as e:  # RunDirError, UnknownTaskError, DataFileError
        _fail(str(e))
    except Exception as e:  # noqa: BLE001
        _unexpected(e)
    _own(owned, api.owning(plan, "dtx train --resume"), run_dir)
    return _execute_plan(plan)


# ----------------------------------------------------------------------------- analyze / report


@app.command("analyze")
def analyze_cmd(
    directory: Path = typer.Argument(
        ..., help="A run directory, or a directory holding run directories (e.g. a bench output)."
    ),
) -> None:
    """Annealing dynamics: detect the exploration -> exploitation transition and plot it."""
    from .analysis.cli_views import analyze_directory

    analyze_directory(directory, Console(), _fail)


@app.command("report")
def report_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory written by `dtx train` (or `dtx run`)."),
) -> None:
    """Write RUN_DIR/report.html: config, curves, attention maps, MLP surfaces, program, verification."""
    from .analysis.cli_views import report_directory

    report_directory(run_dir, Console(), _fail)


# ----------------------------------------------------------------------------- bench / speed


@app.command("bench")
def bench_cmd(
    suite: list[str] | None = typer.Option(
        None, "--suite", help="mips | continuous | all (default), task names or data files; repeatable."
    ),
    files: list[str] | None = typer.Argument(None, help="More tasks or data files (same as --suite)."),
    seeds: int = typer.Option(1, "--seeds", help="Seeds per task (0..N-1); a task is solved when any seed is."),
    jobs: int = typer.Option(
        1, "--jobs", help="Worker processes; a task's restarts, baselines and extraction are units they share."
    ),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or ray."),
    budget: float = typer.Option(
        150.0,
        "--budget",
        help="Seconds from a task's start within which all its DT restarts end; a fallback restart starts only if it fits (BenchConfig.budget).",
    ),
    out: Path = typer.Option(..., "--out", help="Bench directory; rerunning resumes, skipping finished tasks."),
    docs: Path | None = typer.Option(
        None, "--docs", help="Also write the Markdown summary here (docs/benchmarks.md) once every task has a row."
    ),
    public_results: Path | None = typer.Option(
        None,
        "--public-results",
        help="results.json of a public-suite bench: which public tasks the library verifies, for the generated suite's per-family report.",
    ),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (default: a local Ray instance)."),
    max_steps: int | None = typer.Option(None, "--max-steps", hidden=True, help="Testing: cap DT steps per restart."),
    baseline_steps: int | None = typer.Option(None, "--baseline-steps", hidden=True, help="Testing: baseline steps."),
    sets: list[str] | None = typer.Option(
        None, "--set", help=SET_HELP + " Applies to every task (a candidate default)."
    ),
) -> None:
    """Benchmark the default configuration on a task suite, with GRU and Transformer baselines."""
    from .bench.baselines import BaselineConfig
    from .bench.bench import plan_jobs, run_bench
    from .bench.executors import check_executor
    from .bench.generalization import load_public_results
    from .bench.live import LiveView
    from .bench.runner import BenchConfig

    executor = executor.strip().lower()
    try:
        check_executor(executor, jobs)
        if not budget > 0:
            raise ValueError(f"--budget must be > 0 seconds, got {budget}")
        if baseline_steps is not None and baseline_steps < 1:
            raise ValueError(f"--baseline-steps must be >= 1, got {baseline_steps}")
        base = BaselineConfig()
        if baseline_steps is not None:
            base = dataclasses.replace(
                base, gru_steps=baseline_steps, tf_steps=baseline_steps, eval_every=min(base.eval_every, baseline_steps)
            )
        config = BenchConfig(budget=budget, baseline=base, max_steps=max_steps, overrides=tuple(sets or ()))
        public = None if public_results is None else load_public_results(public_results)
        planned = plan_jobs([*(suite or []), *(files or [])] or ["all"], seeds, out, config)
    except ValueError as e:  # unknown suite/task, bad data file, bad option, Ray missing
        _fail(str(e))
    command = "dtx " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    console = Console()
    try:
        with LiveView(len(planned), console) as view:
            summary = run_bench(
                planned,
                out,
                executor,
                jobs,
                command=command,
                docs=docs,
                address=address,
                on_row=view,
                public_results=public,
            )
    except api.RunDirError as e:  # OUT is in use by another process (run_bench owns it while it runs)
        _fail(str(e))
    except KeyboardInterrupt:
        Console(stderr=True).print(
            f"[yellow]interrupted[/yellow]: finished tasks are kept; rerun the same command to resume ({out})"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    console.print(f"[bold]{escape(summary['headline'])}[/bold]")
    written = f"{out / 'results.csv'}, {out / 'results.json'}, {out / 'summary.md'}" + (f", {docs}" if docs else "")
    console.print(f"written: {escape(written)}")
    if summary.get("failed_rows"):
        console.print(f"[red]{summary['failed_rows']} job(s) failed[/red] (see results.json); rerun to retry them")


@app.command("speed")
def speed_cmd(
    task: str = typer.Option("sum_last2", "--task", help="Task for the training-speed measurement."),
    steps: int = typer.Option(200, "--steps", help="Training steps to time."),
    run_dir: Path | None = typer.Option(
        None, "--run", help="A run directory with program.py: program vs. model throughput."
    ),
    n: int = typer.Option(10_000, "--n", help="Sequences in the throughput batch."),
    skip_train: bool = typer.Option(False, "--skip-train", help="Only the program vs. model measurement."),
    variant: list[str] | None = typer.Option(
        None, "--variant", help="Search variant to time (repeatable; default: each of the default portfolio)."
    ),
) -> None:
    """Micro-benchmarks: training steps/s; program run_batch vs. model forward throughput."""
    from .bench.speed import program_vs_model, train_speed

    console = Console()
    variants = list(variant) if variant else list(dict.fromkeys(TrainConfig().portfolio))
    unknown = [v for v in variants if v not in SEARCH_VARIANTS]
    if unknown:
        _fail(f"unknown --variant {unknown[0]!r}; known: {', '.join(SEARCH_VARIANTS)}")
    try:
        if not skip_train:
            for v in variants:
                r = train_speed(task, steps, variant=v)
                console.print(
                    f"training ({escape(v)} search): {r['steps_per_s']:.1f} steps/s in the best of {r['blocks']} blocks, "
                    f"median {r['median_steps_per_s']:.1f} ({r['steps']} search steps in {r['seconds']:.2f} s, evaluations excluded; "
                    f"{escape(r['task'])}, population {r['population']}, batch {r['batch_size']}, "
                    f"{r['torch_threads']} torch thread)",
                    highlight=False,
                )
        if run_dir is not None:
            p = program_vs_model(run_dir, n)
            console.print(
                f"throughput on the same {p['n']} sequences (T={p['T']}): program run_batch "
                f"{p['program_seq_per_s']:,.0f} seq/s, model forward {p['model_seq_per_s']:,.0f} seq/s, "
                f"ratio {p['ratio']:.1f}x (agreement {100 * p['agreement']:.2f}%)"
            )
    except ValueError as e:  # unknown task, bad run directory, bad option
        _fail(str(e))


# ----------------------------------------------------------------------------- studies


def _study_log(console: Console):
    return lambda msg: console.print(escape(msg), highlight=False)


def _check_study_options(out: Path, doc: Path, steps: int | None) -> None:
    if steps is not None and steps < 1:
        _fail(f"--steps must be a positive integer, got {steps}")
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: exists and is not a directory")
    if doc.exists() and doc.is_dir():
        _fail(f"--doc {doc}: is a directory")


def _study_command(name: str, out: Path, doc: Path, seed: int, steps: int | None, extra: str = "") -> str:
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
    steps: int | None = typer.Option(None, "--steps", help="Training steps per run (default: TrainConfig.steps)."),
) -> None:
    """Train tasks under two inductive-bias settings each, extract both programs, write DOC."""
    from .studies import bias_study

    _check_study_options(out, doc, steps)
    console = Console()
    try:
        rows = bias_study(
            out,
            doc,
            seed=seed,
            steps=steps,
            log=_study_log(console),
            command=_study_command("bias-study", out, doc, seed, steps),
        )
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow] (finished runs are kept; rerun to resume)")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as e:
        _fail(str(e))
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
    from .studies import ESTIMATOR_TASKS, estimator_study

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
        rows = estimator_study(
            out,
            doc,
            tasks=chosen,
            seed=seed,
            steps=steps,
            log=_study_log(console),
            command=_study_command("estimator-study", out, doc, seed, steps, extra),
        )
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow] (finished runs are kept; rerun to resume)")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ValueError as e:
        _fail(str(e))
    solved = {e: sum(r["verified"] for r in rows if r["estimator"] == e) for e in ("gumbel", "reinforce")}
    console.print(
        f"solved: gumbel {solved['gumbel']}, reinforce {solved['reinforce']} of {len(chosen)}; wrote {escape(str(doc))}"
    )


if __name__ == "__main__":  # pragma: no cover
    app()
