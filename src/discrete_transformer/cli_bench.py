"""``dtx bench``, ``dtx baselines`` and ``dtx speed``: the benchmark commands, registered on the app by :mod:`.cli`.

Their :mod:`.bench` imports stay inside the functions: .bench loads sympy (about +0.3 s), which
`dtx --help` and `dtx tasks` should not pay for.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from . import api
from .cli_common import EXIT_INTERRUPTED, SET_HELP, fail
from .config import SEARCH_VARIANTS, TrainConfig
from .rundir import PROGRAM_FILE

if TYPE_CHECKING:
    from .bench.baselines import BaselineConfig

RECIPE_HELP = "The recurrent baseline's recipe: bench (a GRU, budget-sized) or mips (MIPS's RNN, bench/mips_rnn.py)."


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
    baseline_cache: Path | None = typer.Option(
        None,
        "--baseline-cache",
        help="Baseline cache directory (default: $XDG_CACHE_HOME/discrete_transformer/baselines); see docs/bench.md.",
    ),
    no_baseline_cache: bool = typer.Option(
        False, "--no-baseline-cache", help="Train every baseline, reading and writing no cache."
    ),
    baseline_recipe: str = typer.Option(
        "bench", "--baseline-recipe", help=RECIPE_HELP + " mips: fill the cache first with `dtx baselines`."
    ),
    sets: list[str] | None = typer.Option(
        None, "--set", help=SET_HELP + " Applies to every task (a candidate default)."
    ),
) -> None:
    """Benchmark the default configuration on a task suite, with GRU and Transformer baselines."""
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
        base = _baseline_config(baseline_recipe, baseline_steps)
        if no_baseline_cache and baseline_cache is not None:
            raise ValueError("--baseline-cache and --no-baseline-cache exclude each other")
        cache: dict[str, str | None] = {"baseline_cache": None} if no_baseline_cache else {}
        if baseline_cache is not None:
            cache = {"baseline_cache": str(baseline_cache.expanduser().resolve())}
        config = BenchConfig(budget=budget, baseline=base, max_steps=max_steps, overrides=tuple(sets or ()), **cache)
        public = None if public_results is None else load_public_results(public_results)
        planned = plan_jobs([*(suite or []), *(files or [])] or ["all"], seeds, out, config)
    except ValueError as e:  # unknown suite/task, bad data file, bad option, Ray missing
        fail(str(e))
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
        fail(str(e))
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


def _baseline_config(recipe: str, baseline_steps: int | None) -> BaselineConfig:
    """The baselines' configuration of ``dtx bench`` and ``dtx baselines`` alike (the same options
    give the same cache keys); ``baseline_steps`` shrinks every recipe, for tests only."""
    from .bench.baselines import GRU_RECIPES, BaselineConfig

    if recipe not in GRU_RECIPES:
        raise ValueError(f"unknown baseline recipe {recipe!r}; expected one of {', '.join(GRU_RECIPES)}")
    if baseline_steps is not None and baseline_steps < 1:
        raise ValueError(f"--baseline-steps must be >= 1, got {baseline_steps}")
    base = BaselineConfig(gru_recipe=recipe)
    if baseline_steps is None:
        return base
    mips = dataclasses.replace(
        base.gru_mips, steps=baseline_steps, eval_every=min(base.gru_mips.eval_every, baseline_steps)
    )
    return dataclasses.replace(
        base,
        gru_steps=baseline_steps,
        tf_steps=baseline_steps,
        eval_every=min(base.eval_every, baseline_steps),
        gru_mips=mips,
    )


def baselines_cmd(
    suite: list[str] | None = typer.Option(
        None, "--suite", help="mips | continuous | all (default), task names or data files; repeatable."
    ),
    files: list[str] | None = typer.Argument(None, help="More tasks or data files (same as --suite)."),
    seeds: int = typer.Option(1, "--seeds", help="Seeds per task (0..N-1), as dtx bench --seeds."),
    jobs: int = typer.Option(1, "--jobs", help="Worker processes, one baseline training each."),
    baseline: list[str] | None = typer.Option(
        None, "--baseline", help="Which baselines: gru (default; the recurrent one), transformer; repeatable."
    ),
    recipe: str = typer.Option("mips", "--recipe", help=RECIPE_HELP),
    baseline_cache: Path | None = typer.Option(
        None, "--baseline-cache", help="Cache directory (default: $XDG_CACHE_HOME/discrete_transformer/baselines)."
    ),
    baseline_steps: int | None = typer.Option(None, "--baseline-steps", hidden=True, help="Testing: baseline steps."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP + " Use the bench's, for the same data."),
) -> None:
    """Train baselines into the baseline cache (no time cap), for `dtx bench` to read; skips cached ones."""
    from .bench.baseline_fill import fill, plan_fill
    from .bench.baselines import BASELINES
    from .bench.runner import BenchConfig

    names = list(dict.fromkeys(baseline or ["gru"]))
    try:
        unknown = [n for n in names if n not in BASELINES]
        if unknown:
            raise ValueError(f"unknown --baseline {unknown[0]!r}; expected one of {', '.join(BASELINES)}")
        base = _baseline_config(recipe, baseline_steps)
        cache = {} if baseline_cache is None else {"baseline_cache": str(baseline_cache.expanduser().resolve())}
        config = BenchConfig(budget=float("inf"), baseline=base, overrides=tuple(sets or ()), **cache)
        planned = plan_fill([*(suite or []), *(files or [])] or ["all"], seeds, config)
    except ValueError as e:  # unknown suite/task/recipe, bad option
        fail(str(e))
    console = Console()
    console.print(f"baseline cache: {escape(str(config.baseline_cache))}", highlight=False)

    def show(job, name, rec) -> None:
        what = "cached" if rec["cached"] else "trained"
        if rec.get("error"):
            console.print(f"[red]{escape(job.key)} {name}: failed[/red] {escape(str(rec['error']))}")
            return
        console.print(
            f"{escape(job.key)} {name}: test exact {100 * rec[name + '_test_exact']:.1f} %, "
            f"nMSE {rec[name + '_test_nmse']:.2e}, {rec[name + '_steps']} steps, {rec[name + '_s']:.0f} s, "
            f"ended by {rec.get(name + '_ended', '?')} ({what})",
            highlight=False,
        )

    try:
        records = fill(planned, names, jobs, on_result=show)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/yellow]: finished baselines are cached; rerun to go on")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    failed = sum(bool(r.get("error")) for r in records)
    console.print(
        f"[bold]{sum(not r['cached'] and not r.get('error') for r in records)} trained, "
        f"{sum(r['cached'] for r in records)} already cached, {failed} failed[/bold]"
    )
    if failed:
        raise typer.Exit(1)


def speed_cmd(
    task: str = typer.Option("sum_last2", "--task", help="Task for the training-speed measurement."),
    steps: int = typer.Option(200, "--steps", help="Training steps to time."),
    run_dir: Path | None = typer.Option(
        None, "--run", help=f"A run directory with {PROGRAM_FILE}: program vs. model throughput."
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
        fail(f"unknown --variant {unknown[0]!r}; known: {', '.join(SEARCH_VARIANTS)}")
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
        fail(str(e))
