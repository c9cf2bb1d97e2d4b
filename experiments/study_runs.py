"""The two studies of ``experiments/studies.py``, written as Markdown docs.

* bias study — inductive bias as an independent variable: each case trains one task under two
  settings of a knob (``--set``-style overrides of ModelConfig / ExtractConfig), with the same
  seed and the default everything-else, extracts and verifies both programs, and writes
  ``docs/inductive_bias.md`` with both programs in full. The settings are what the study varies;
  the default pipeline never sees them.
* estimator study — Gumbel-softmax vs REINFORCE for the selectors on a list of tasks, same seed
  and step budget: solved (verified program), steps to exact, time; written to
  ``docs/estimators.md``.

Every (case, setting) writes a run directory plus ``study.json`` under ``--out``; a rerun skips
the ones already finished, so an interrupted study loses at most the run in progress. Research
code: it uses the public package and the package never imports it.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from discrete_transformer.api import extract, load_run, train
from discrete_transformer.config import TrainConfig
from discrete_transformer.fileio import atomic_write_json, atomic_write_text
from discrete_transformer.overrides import configs_from_overrides
from discrete_transformer.verdict import RESTART_NMSE, solved

STUDY_FILE = "study.json"


@dataclass(frozen=True)
class Setting:
    label: str
    sets: tuple[str, ...]  # `--set` overrides (model.*, train.*, extract.*)


@dataclass(frozen=True)
class BiasCase:
    task: str
    knob: str  # what the two settings vary, in words
    a: Setting
    b: Setting


# The study's independent variable is the setting; the same two settings are applied to the task
# named in each case and to nothing else. Cases were chosen because the two settings plausibly
# change the program (docs/inductive_bias.md reports whatever came out, failures included).
BIAS_CASES: tuple[BiasCase, ...] = (
    BiasCase(
        "Sum_Last2",
        "attention averaging (model.attention_averaging)",
        Setting("averaging allowed (default)", ()),
        Setting("averaging forbidden", ("model.attention_averaging=false",)),
    ),
    BiasCase(
        "Sum_Last2",
        "forbidden reads (model.forbid_reads)",
        Setting("unrestricted (default)", ()),
        Setting("heads may not average MLP outputs", ("model.forbid_reads=L*.H*.v:L*.M*",)),
    ),
    BiasCase(
        "Sum_Last3",
        "MLP arity (model.mlp_arity)",
        Setting("arity 2 (default)", ()),
        Setting("arity 3", ("model.mlp_arity=3",)),
    ),
    BiasCase(
        "Max_Seen",
        "attention routing (model.attention_routing)",
        Setting("content routing (default)", ()),
        Setting("positional-only routing", ("model.attention_routing=positional",)),
    ),
    BiasCase(
        "Abs_Current",
        "symbolic-regression grammar (extract.sr_operators)",
        Setting("full grammar (default)", ()),
        Setting(
            "grammar without abs",
            ("extract.sr_operators=add,sub,mul,div,mod,floor,round,min,max,square,sqrt,neg,ge,gt,eq,where",),
        ),
    ),
    BiasCase(
        "Bitwise_Xor",
        "symbolic-regression grammar (extract.sr_operators)",
        Setting("full grammar (default)", ()),
        Setting("arithmetic grammar", ("extract.sr_operators=add,sub,mul",)),
    ),
    BiasCase(
        "Bitwise_Not",
        "symbolic-regression grammar (extract.sr_operators)",
        Setting("full grammar (default)", ()),
        Setting(
            "grammar without sub and neg",
            ("extract.sr_operators=add,mul,div,mod,floor,round,abs,min,max,square,sqrt,ge,gt,eq,where",),
        ),
    ),
)

ESTIMATOR_TASKS: tuple[str, ...] = ("Current_Number", "Prev1", "Bitwise_Not", "Sum_Last2", "Max_Seen", "Abs_Current")

Log = Callable[[str], None]


# ----------------------------------------------------------------------------- one run


def _train_sets(sets: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s for s in sets if not s.startswith("extract."))


def run_one(
    task: str, sets: tuple[str, ...], run_dir: Path, seed: int, steps: int | None, trained: Path | None = None
) -> dict[str, Any]:
    """Train `task` with the overrides, extract, verify; write the run + study.json; return it.
    A finished run (study.json present) is read back instead of rerun. `trained`: a run
    directory already trained with the same model/train settings (only extraction differs),
    whose training is reused and whose figures are reported."""
    done = run_dir / STUDY_FILE
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    model_cfg, train_cfg, extract_cfg = configs_from_overrides(list(sets))
    t0 = time.perf_counter()
    if trained is not None:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(trained, run_dir, dirs_exist_ok=True)
        for name in (STUDY_FILE, "program.py", "verification.json"):
            (run_dir / name).unlink(missing_ok=True)
        result = load_run(run_dir)
        train_s = json.loads((trained / STUDY_FILE).read_text(encoding="utf-8"))["train_seconds"]
    else:
        result = train(
            task,
            out=run_dir,
            seed=seed,
            model=model_cfg,
            training=train_cfg,
            restarts=1,
            steps=steps,
            progress=False,
            force=True,
        )
        train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    program = extract(result, config=extract_cfg)
    program.save(run_dir)
    extract_s = time.perf_counter() - t1
    kind = result.kind
    steps_to_exact, phase = first_exact(result.best.history, kind)
    doc = {
        "task": task,
        "sets": list(sets),
        "seed": seed,
        "kind": kind,
        "model_val": dict(result.best.val),
        "model_test": dict(result.test),
        "steps_run": result.best.steps_run,
        "steps_budget": result.train_config.total_steps,
        "steps_to_exact": steps_to_exact,
        "exact_phase": phase,
        "train_seconds": round(train_s, 1),
        "extract_seconds": round(extract_s, 1),
        "verified": bool(program.verification.verified),
        "program": program.source,
    }
    atomic_write_json(done, doc)
    return doc


def first_exact(history: list[dict[str, Any]], kind: str) -> tuple[int | None, str | None]:
    """(step, phase) of the first evaluation row whose best member is exact on validation
    (continuous: nMSE <= 1e-7, the training loop's own criterion), or (None, None)."""
    for row in history:
        if solved(kind, {"exact": row.get("val_exact", 0.0), "nmse": row.get("val_nmse", 1.0)}, RESTART_NMSE):
            return int(row["step"]), str(row.get("phase", ""))
    return None, None


def _history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def standalone_program(source: str) -> str:
    """The standard-library half of an extracted module (helpers + ``program``), without the
    NumPy batch path, which repeats the same computation."""
    cut = source.find("# NumPy fast path")
    return (source[:cut] if cut >= 0 else source).rstrip() + "\n"


def program_body(source: str) -> str:
    """The ``def program`` function with comments and blank lines stripped: what 'the same
    program' means when two runs are compared."""
    m = re.search(r"^def program\(.*?(?=^\S|\Z)", source, flags=re.S | re.M)
    text = m.group(0) if m else source
    lines = [re.sub(r"#.*$", "", ln).rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() and not ln.strip().startswith(('"""', "'''"))]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- bias study


def bias_study(
    out: Path,
    doc: Path,
    seed: int = 0,
    steps: int | None = None,
    log: Log = print,
    cases: tuple[BiasCase, ...] = BIAS_CASES,
    command: str = "",
) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        res: list[tuple[Setting, dict[str, Any], Path]] = []
        for s in (case.a, case.b):
            slug = re.sub(r"[^A-Za-z0-9]+", "_", s.label).strip("_").lower()
            run_dir = out / case.task / slug
            same = [d for (o, _, d) in res if _train_sets(o.sets) == _train_sets(s.sets)]
            log(f"{case.task} / {s.label}: {'extraction' if same else 'training + extraction'} ...")
            r = run_one(case.task, s.sets, run_dir, seed, steps, trained=same[0] if same else None)
            log(
                f"{case.task} / {s.label}: verified={r['verified']} ({r['train_seconds']} s + {r['extract_seconds']} s)"
            )
            res.append((s, r, run_dir))
        differ = program_body(res[0][1]["program"]) != program_body(res[1][1]["program"])
        rows.append(
            {
                "case": case,
                "results": res,
                "different": differ,
                "counts": res[0][1]["verified"] and res[1][1]["verified"] and differ,
            }
        )
    atomic_write_text(doc, render_bias_doc(rows, command, seed, steps))
    return rows


def render_bias_doc(rows: list[dict[str, Any]], command: str, seed: int, steps: int | None) -> str:
    n_ok = sum(r["counts"] for r in rows)
    out = [
        "# Inductive bias: the same task, two settings, two programs",
        "",
        "Generated by",
        "",
        "```",
        command,
        "```",
        "",
        "(every number and program below is written by that command; rerun it to reproduce). Each case",
        f"trains one task twice with seed {seed} and the default configuration except for one knob —",
        "the *setting*, which is this study's independent variable and never part of the default",
        "pipeline — then extracts and verifies both programs. Training: one restart,",
        f"{'default' if steps is None else steps} steps. A case counts when both programs verify and differ",
        "(their `program()` functions differ after removing comments). Cases where a setting leaves",
        "the task unsolved, or changes nothing, are reported too: they show what the knob removes.",
        "When two settings differ only in `extract.*`, the second reuses the first's trained model",
        "(same training, different extraction), and its train time is the shared one.",
        "",
        "## Knobs",
        "",
        "| knob | `--set` | effect |",
        "|---|---|---|",
        "| MLP arity | `model.mlp_arity=3` | inputs per MLP (default 2) |",
        "| layers / heads / MLPs | `model.n_layers=1`, `model.n_heads=1`, `model.n_mlps=1` | module budget |",
        "| positional-only routing | `model.attention_routing=positional` | q and k selectors may read only `pos` and `one` |",
        "| no averaging | `model.attention_averaging=false` | every head attends to one key, the most recent of its near-ties (search: straight-through; hardened: exactly) |",
        "| forbidden reads | `model.forbid_reads=L0.*:x,readout:pos` | (module pattern, variable pattern) pairs masked out of the selectors |",
        "| SR grammar | `extract.sr_operators=add,sub,mul` | operators symbolic regression may use |",
        "",
        "Selector masks set the logit of a forbidden option to −∞, so it is never sampled, never the",
        "argmax and never hardened. `dtx train`, `dtx run` (all sections) and `dtx extract`",
        "(`extract.*`) accept `--set`; the settings are saved in `config.json` / `model.json`.",
        "",
        "## Summary",
        "",
        f"{n_ok} of {len(rows)} cases give two different verified programs.",
        "",
        "| task | knob | setting A | verified | setting B | verified | programs differ |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        (sa, ra, _), (sb, rb, _) = r["results"]
        yn = lambda b: "**yes**" if b else "no"  # noqa: E731
        out.append(
            f"| {r['case'].task} | {r['case'].knob} | {sa.label} | {yn(ra['verified'])} | "
            f"{sb.label} | {yn(rb['verified'])} | {'yes' if r['different'] else 'no'} |"
        )
    for r in rows:
        case = r["case"]
        out += ["", f"## {case.task}: {case.knob}", ""]
        for s, res, run_dir in r["results"]:
            sets = " ".join(f"--set {x}" for x in s.sets) or "(defaults)"
            mv = res["model_test"]
            score = f"{100 * mv['exact']:.2f} % exact" if res["kind"] == "discrete" else f"nMSE {mv['nmse']:.3g}"
            out += [
                f"### {s.label}: `{sets}`",
                "",
                f"Model on test: {score}; program verified: **{'yes' if res['verified'] else 'no'}**; "
                f"train {res['train_seconds']} s, extract {res['extract_seconds']} s; run directory `{run_dir}`.",
                "",
                "```python",
                standalone_program(res["program"]).rstrip(),
                "```",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- estimator study


def estimator_study(
    out: Path,
    doc: Path,
    tasks: tuple[str, ...] = ESTIMATOR_TASKS,
    seed: int = 0,
    steps: int | None = None,
    log: Log = print,
    command: str = "",
) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        for est in ("gumbel", "reinforce"):
            log(f"{task} / {est}: training + extraction ...")
            r = run_one(task, (f"train.estimator={est}",), out / task / est, seed, steps)
            if "exact_phase" not in r:  # a study.json written before the phase was recorded
                r = {**r, "exact_phase": first_exact(_history(out / task / est), r["kind"])[1]}
            log(
                f"{task} / {est}: verified={r['verified']} steps_to_exact={r['steps_to_exact']} ({r['train_seconds']} s)"
            )
            rows.append({"task": task, "estimator": est, **r})
    atomic_write_text(doc, render_estimator_doc(rows, command, seed, steps))
    return rows


def render_estimator_doc(rows: list[dict[str, Any]], command: str, seed: int, steps: int | None) -> str:
    cfg = TrainConfig()
    budget = rows[0]["steps_budget"] if rows else cfg.steps
    solved = {e: sum(r["verified"] for r in rows if r["estimator"] == e) for e in ("gumbel", "reinforce")}
    n_tasks = len({r["task"] for r in rows})
    out = [
        "# Selector estimators: Gumbel-softmax vs REINFORCE",
        "",
        "Generated by",
        "",
        "```",
        command,
        "```",
        "",
        f"Same seed ({seed}), same data, one restart, {budget} steps per run (search + hardening),",
        "default configuration otherwise; only `train.estimator` differs. *Solved* = the extracted",
        "program verifies on the test split. *Steps to exact* = the first evaluation step (every",
        f"{cfg.eval_every} steps, `metrics.jsonl`) at which the best discretised member is exact on",
        "validation (continuous tasks: nMSE ≤ 1e-7); runs stop there. Step 0 means the initial model",
        "already solves the task (equal logits: every argmax is the first variable, the input).",
        "*Time* = training wall time",
        "(extraction excluded), on a shared 2-core CPU, so it is noisy.",
        "",
        "REINFORCE (`training/reinforce.py`): every selector samples a one-hot choice from",
        "softmax(θ/τ) per sequence (the same τ schedule as Gumbel), the model runs with those hard",
        "choices (continuous weights learn by backprop), and θ follows the score-function gradient",
        f"(loss − baseline)·∇log p(choice) with a moving-average baseline (decay {cfg.reinforce_baseline_decay})"
        f" and entropy bonus {cfg.reinforce_entropy_bonus}.",
        "",
        "*Phase* says where exactness first appeared: `search` (the estimator itself found the",
        "program), `harden` (argmax selectors + weight fine-tuning) or `polish` (float64 L-BFGS).",
        "",
        "| estimator | solved | exact during search | total steps run | total train time s |",
        "|---|---|---|---|---|",
    ]
    for e in ("gumbel", "reinforce"):
        mine = [r for r in rows if r["estimator"] == e]
        n_search = sum(r.get("exact_phase") == "search" for r in mine)
        out.append(
            f"| {e} | {solved[e]}/{n_tasks} | {n_search}/{n_tasks} | {sum(r['steps_run'] for r in mine)} | "
            f"{sum(r['train_seconds'] for r in mine):.1f} |"
        )
    out += [
        "",
        "| task | estimator | solved | model test | steps to exact | phase | steps run | train time s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mv = r["model_test"]
        score = f"{100 * mv['exact']:.2f} % exact" if r["kind"] == "discrete" else f"nMSE {mv['nmse']:.3g}"
        ste = "—" if r["steps_to_exact"] is None else str(r["steps_to_exact"])
        out.append(
            f"| {r['task']} | {r['estimator']} | {'**yes**' if r['verified'] else 'no'} | {score} | {ste} | "
            f"{r.get('exact_phase') or '—'} | {r['steps_run']} | {r['train_seconds']} |"
        )
    return "\n".join(out) + "\n"
