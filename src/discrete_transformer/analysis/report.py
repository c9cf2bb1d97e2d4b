"""`dtx report DIR`: one self-contained HTML page per run.

Sections (each an element id, so tests and readers can find them): ``task`` (what was learned,
scores), ``config`` (model and training configuration), ``dynamics`` (loss, τ and entropies with
the annealing transition), ``attention`` (query × key map of every head the program uses, on one
test sequence), ``mlps`` (each surviving MLP's function against its extracted expression),
``equations`` (the symbolic-regression Pareto fronts, picked row marked), ``program`` (the
generated source with its evidence comments) and ``verification``.

Self-contained on purpose: images are inline base64 PNG, CSS is inline, there is no script and no
external URL, so the file can be mailed or archived and still open. Everything that comes from
data (task, file and channel names, expressions) goes through :func:`html.escape`.

Building a report can write the run (the program when it was not extracted yet, and the report),
so it holds the run's lock (:mod:`..rundir_lock`) throughout.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from ..api import extract, load_run
from ..extraction.graph import read_graph
from ..extraction.pipeline import mlp_function
from ..extraction.symbolic import evaluate_source
from ..rundir import REPORT_FILE, RunDir
from ..training.evaluation import HARD
from .analyze import analyze_run
from .dynamics import MetricsError
from .plots import dynamics_figure, plt, png_bytes  # Agg backend is selected there

__all__ = ["REPORT_FILE", "SECTIONS", "build_report", "write_report"]  # REPORT_FILE: re-exported

SECTIONS = ("task", "config", "dynamics", "attention", "mlps", "equations", "program", "verification")
SAMPLE_SEQUENCES = 256  # test sequences whose stream values give the MLP input ranges


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _kv_table(rows: Sequence[tuple[str, Any]], cls: str = "kv") -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


# ----------------------------------------------------------------------------- figures


def _position_labels(x_seq: np.ndarray, names: Sequence[str]) -> list[str]:
    """Axis labels: BOS, then `t: value` of the first input channel (all channels if ≤ 2)."""
    labels = ["BOS"]
    for t in range(x_seq.shape[0]):
        vals = x_seq[t]
        shown = ",".join(f"{v:.3g}" for v in vals[:2]) + ("…" if vals.size > 2 else "")
        labels.append(f"{t}: {shown}")
    return labels


def attention_figure(pattern: np.ndarray, labels: Sequence[str], title: str) -> bytes:
    """Query × key heatmap of one head's attention weights on one sequence."""
    n = pattern.shape[0]
    size = max(3.5, min(9.0, 0.45 * n + 1.5))
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(pattern, cmap="viridis", vmin=0.0, vmax=1.0, aspect="equal")
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("key position: value")
    ax.set_ylabel("query position: value")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return png_bytes(fig, dpi=90)


def _eval_expr(numpy_source: str, names: Sequence[str], cols: Sequence[np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        y = evaluate_source(numpy_source, list(names), list(cols), numpy=True)
    return np.broadcast_to(np.asarray(y, dtype=np.float64), cols[0].shape).copy()


def _axis_values(seen: np.ndarray, n: int) -> np.ndarray:
    vals = np.unique(seen)
    if vals.size <= n:
        return vals.astype(np.float64)
    return np.linspace(vals.min(), vals.max(), n)


def mlp_figure(model: Any, module: Any, node: Any, resid: np.ndarray, one_index: int) -> tuple[bytes, str]:
    """The MLP's function against its extracted expression. Returns (PNG, what is shown).

    Direct case (the expression reads the MLP's own inputs): 1 input → curve of the MLP over its
    input range with the expression overlaid; 2 → heatmaps of MLP, expression and difference;
    more → the same on a slice through the first two inputs, the others at their median. When
    the expression was fused over upstream variables, MLP output against expression value on the
    sampled test positions (a parity plot)."""
    names = [v.name for v in node.inputs]
    idx = tuple(v.index for v in node.inputs)
    seen = resid[:, 1:, :].reshape(-1, resid.shape[-1])
    direct = all(r in idx or r == one_index for r in module.reads)
    if not direct or not idx:
        X = seen[:, list(idx)] if idx else np.zeros((seen.shape[0], 0))
        Xu, first = np.unique(X, axis=0, return_index=True) if idx else (X[:1], np.array([0]))
        y_mlp = seen[first, module.out]
        y_ex = _eval_expr(node.numpy_source, names, [Xu[:, i] for i in range(len(idx))] or [np.ones(len(Xu))])
        if len(idx) == 1:  # one upstream input: the model's outputs over it, the expression's curve
            xs = np.linspace(Xu[:, 0].min(), Xu[:, 0].max(), 400)
            fig, ax = plt.subplots(figsize=(6.5, 4))
            ax.plot(Xu[:, 0], y_mlp, "o", ms=4, alpha=0.6, label=f"{module.key} output (model, seen inputs)")
            ax.plot(
                xs,
                _eval_expr(node.numpy_source, names, [xs]),
                "--",
                lw=1.5,
                color="crimson",
                label=f"expression: {node.source}"[:80],
            )
            ax.set_xlabel(f"{names[0]} (upstream input of the fused expression)")
            ax.set_ylabel(node.out.name)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
            ax.set_title(
                f"{module.key}: max |model − expression| = {np.nanmax(np.abs(y_mlp - y_ex)):.3g} "
                f"on {len(Xu)} seen inputs",
                fontsize=9,
            )
            return png_bytes(fig, dpi=90), (
                "the model's output at every seen value of the fused expression's input, expression overlaid"
            )
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.plot(y_ex, y_mlp, ".", ms=4, alpha=0.6)
        lo, hi = float(np.nanmin([y_ex.min(), y_mlp.min()])), float(np.nanmax([y_ex.max(), y_mlp.max()]))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
        ax.set_xlabel("expression")
        ax.set_ylabel(f"{module.key} output (model)")
        ax.legend(fontsize=8)
        ax.set_title(f"{module.key}: model vs expression on {len(Xu)} seen inputs", fontsize=9)
        return png_bytes(
            fig, dpi=90
        ), "parity plot on the sampled test positions (expression fused over upstream variables)"
    X_seen = seen[:, list(idx)]
    if len(idx) == 1:
        xs = np.union1d(_axis_values(X_seen[:, 0], 400), np.unique(X_seen[:, 0])[:400])
        y_mlp = mlp_function(model, module, idx, xs[:, None])
        y_ex = _eval_expr(node.numpy_source, names, [xs])
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ax.plot(xs, y_mlp, lw=2.5, alpha=0.6, label=f"MLP {module.key}")
        ax.plot(xs, y_ex, "--", lw=1.5, color="crimson", label=f"expression: {node.source}"[:80])
        ax.set_xlabel(f"{names[0]} (over its range on {SAMPLE_SEQUENCES} test sequences)")
        ax.set_ylabel(node.out.name)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_title(f"{module.key}: max |MLP − expression| = {np.nanmax(np.abs(y_mlp - y_ex)):.3g}", fontsize=9)
        return png_bytes(fig, dpi=90), "1 input: the MLP's curve over its input range, expression overlaid"
    a = _axis_values(X_seen[:, 0], 60)
    b = _axis_values(X_seen[:, 1], 60)
    A, B = np.meshgrid(a, b, indexing="xy")
    cols = [A.ravel(), B.ravel()]
    fixed = []
    for i in range(2, len(idx)):
        med = float(np.median(X_seen[:, i]))
        cols.append(np.full(A.size, med))
        fixed.append(f"{names[i]} = {med:.3g}")
    X = np.stack(cols, axis=1)
    y_mlp = mlp_function(model, module, idx, X).reshape(A.shape)
    y_ex = _eval_expr(node.numpy_source, names, cols).reshape(A.shape)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    ext = [a.min(), a.max(), b.min(), b.max()]
    vmin, vmax = float(np.nanmin(y_mlp)), float(np.nanmax(y_mlp))
    dmax = max(float(np.nanmax(np.abs(y_mlp - y_ex))), 1e-12)  # difference map centred on 0
    for ax, z, t, kw in (
        (axes[0], y_mlp, f"MLP {module.key}", dict(vmin=vmin, vmax=vmax)),
        (axes[1], y_ex, "expression", dict(vmin=vmin, vmax=vmax)),
        (axes[2], y_mlp - y_ex, "MLP − expression", dict(cmap="coolwarm", vmin=-dmax, vmax=dmax)),
    ):
        im = ax.imshow(z, origin="lower", extent=ext, aspect="auto", **kw)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title(t, fontsize=9)
        fig.colorbar(im, ax=ax)
    what = "2 inputs: heatmaps" if not fixed else f"slice through ({names[0]}, {names[1]}) with " + ", ".join(fixed)
    fig.suptitle(f"{module.key}: {what}", fontsize=9)
    return png_bytes(fig, dpi=90), what


# ----------------------------------------------------------------------------- sections


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>\n{body}\n</section>'


def _task_section(cfg: dict, result: dict, program: Any) -> str:
    test, val = result.get("test", {}), result.get("val", {})
    v = program.verification
    rows = [
        ("source", cfg.get("source", "")),
        ("dataset", cfg.get("dataset", "")),
        ("kind", cfg.get("kind", "")),
        ("inputs", ", ".join(program.ir.provenance.input_names)),
        ("outputs", ", ".join(program.ir.provenance.output_names)),
        ("T", program.ir.provenance.T),
        ("model test exact match", test.get("exact")),
        ("model test nMSE", test.get("nmse")),
        ("model validation exact match", val.get("exact")),
        ("test sequences", test.get("n")),
        ("best seed", result.get("best_seed")),
        ("steps", result.get("steps")),
        ("training time (s)", result.get("seconds")),
        ("program", "VERIFIED" if v.verified else "NOT VERIFIED"),
    ]
    badge = '<p class="ok">program verified</p>' if v.verified else '<p class="bad">program not verified</p>'
    return badge + _kv_table(rows)


def _config_section(cfg: dict) -> str:
    parts = []
    for key, title in (("model", "model configuration"), ("train", "training configuration")):
        d = cfg.get(key) or {}
        parts.append(f"<h3>{_e(title)}</h3>" + _kv_table(sorted(d.items())))
    meta = [(k, cfg[k]) for k in ("seed", "data_seed", "created") if k in cfg]
    meta += [(f"version: {k}", v) for k, v in sorted((cfg.get("versions") or {}).items())]
    parts.append("<h3>run</h3>" + _kv_table(meta))
    return '<div class="cols">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>"


def _dynamics_section(run_dir: Path) -> str:
    try:
        a = analyze_run(run_dir, write=False)
    except MetricsError as e:
        return f"<p>no training curves: {_e(e)}</p>"
    png = dynamics_figure(a.rows, a.transitions, a.best_seed, f"{a.label}: annealing dynamics")
    t = a.best
    if t.detected:
        text = (
            f"Transition (steepest fall of the mean selector entropy per unit log τ, best seed {t.seed}): "
            f"step {t.step}, τ = {t.tau:.3g}, loss {t.loss:.3g}; selector entropy {t.entropy_before:.2f} → "
            f"{t.entropy_after:.2f} over the search, half of the fall by step "
            f"{t.extra.get('midpoint_step', float('nan')):.0f}; 25→75 % of the fall within "
            f"{_fmt(t.width_log_tau)} units of log τ. Definition: docs/analysis.md."
        )
    else:
        text = f"No transition detected: {t.reason}."
    return f"<p>{_e(text)}</p>{_img(png, 'training curves')}"


def _attention_section(program: Any, model: Any, x_seq: np.ndarray, cache: dict) -> str:
    heads = program.ir.heads
    if not heads:
        return "<p>The program uses no attention head.</p>"
    names = program.ir.provenance.input_names
    labels = _position_labels(x_seq, names)
    parts = [
        f"<p>Attention weights of every head the program uses, on test sequence 0 "
        f"(inputs {_e(', '.join(names))}; axis labels: position: value). Row = query, column = key.</p>",
        '<div class="grid">',
    ]
    for n in heads:
        pat = cache[f"{n.key}.pattern"][0, 0].numpy()
        title = f"{n.key} → {n.out.name}: {n.hypothesis.name} (agreement {100 * n.agreement:.2f}%)"
        ev = (
            f"pattern {n.hypothesis.name} {json.dumps(n.hypothesis.params)}: {n.hypothesis.description}; "
            f"agreement {100 * n.agreement:.3f}% on {n.n_queries} queries, lower bound {100 * n.lower_bound:.3f}% "
            f"({'accepted' if n.accepted else 'not accepted'}); q={n.q.name}, k={n.k.name}, v={n.v.name}"
        )
        parts.append(
            f'<figure id="head-{_e(n.key)}">{_img(attention_figure(pat, labels, title), n.key)}'
            f"<figcaption>{_e(ev)}</figcaption></figure>"
        )
    parts.append("</div>")
    return "".join(parts)


def _mlp_section(program: Any, model: Any, graph: Any, resid: np.ndarray) -> str:
    mlps = program.ir.mlps
    if not mlps:
        return "<p>The program uses no MLP.</p>"
    one_index = graph.n_inputs + 1
    parts = []
    for n in mlps:
        m = next(mm for mm in graph.modules if mm.key == n.key)
        try:
            png, what = mlp_figure(model, m, n, resid, one_index)
            fig = _img(png, n.key)
        except Exception as e:  # a figure must not sink the whole report; say why it is missing
            fig, what = f'<p class="bad">figure unavailable: {_e(type(e).__name__)}: {_e(e)}</p>', "—"
        ev = (
            f"{n.out.name} = {n.source}   (inputs {', '.join(v.name for v in n.inputs)}; fitted to {n.fitted_to}, "
            f"{n.n_samples} samples; max error {n.max_error:.3g}; {'exact' if n.exact else 'not exact'}"
            f"{', rounded' if n.rounded else ''}). Shown: {what}."
        )
        parts.append(f'<figure id="mlp-{_e(n.key)}">{fig}<figcaption>{_e(ev)}</figcaption></figure>')
    return "".join(parts)


def _equations_section(program: Any) -> str:
    if not program.sr_results:
        return "<p>No symbolic regression was needed (the program has no MLP).</p>"
    parts = []
    for key, res in program.sr_results.items():
        rows = []
        for i, c in enumerate(res.front):
            picked = i == res.picked
            rows.append(
                f"<tr{' class=picked' if picked else ''}><td>{'▶' if picked else ''}</td><td>{c.size}</td>"
                f"<td>{c.mse:.3g}</td><td>{c.max_error:.3g}</td><td>{'✓' if c.exact else ''}</td>"
                f"<td><code>{_e(c.source)}</code></td></tr>"
            )
        parts.append(
            f"<h3>{_e(key)}: symbolic regression over ({_e(', '.join(res.names))})</h3>"
            '<table class="eq"><tr><th>picked</th><th>size</th><th>mse</th><th>max error</th>'
            f"<th>exact</th><th>expression</th></tr>{''.join(rows)}</table>"
        )
    return "".join(parts)


def _program_section(source: str) -> str:
    return highlight(source, PythonLexer(), HtmlFormatter(noclasses=True, style="default", nowrap=False))


def _longer_name(test: dict, longer: dict) -> str:
    """The longer split's row name, from its T over the test's (2× in older files, 4× now)."""
    t, t_long = test.get("T"), longer.get("T")
    if isinstance(t, int) and isinstance(t_long, int) and t > 0:
        return f"sequences {round(t_long / t)}× as long"
    return "longer sequences"


def _verification_section(doc: dict) -> str:
    test = doc.get("test", {})
    longer = doc.get("longer", {})
    # files from before the off-range check have no "wider"
    wider = doc.get("wider", {"available": False, "note": "not recorded (a verification from before the check)"})
    model = doc.get("model", {})
    prog = doc.get("program", {})

    def split(s: dict) -> str:
        if s.get("available") is False:
            return f"not available ({s.get('note', '')})"
        if s.get("error"):
            return f"the program failed: {s['error']}"
        return (
            f"exact {100 * s.get('exact', 0):.2f}%, nMSE {s.get('nmse', float('nan')):.3g}, n={s.get('n')}, "
            f"T={s.get('T')}: {'passes' if s.get('passed') else 'fails'}"
        )

    rows = [
        ("verified", "yes" if doc.get("verified") else "NO"),
        ("rule", doc.get("rule", "")),
        ("test split", split(test)),
        (_longer_name(test, longer), split(longer)),
        ("inputs a little outside the training range", split(wider)),
        ("program() and run_batch() agree", f"{doc.get('python_agrees')} on {doc.get('python_checked')} sequences"),
        ("model (test)", ", ".join(f"{k} {_fmt(v)}" for k, v in model.items())),
        ("program size", f"{prog.get('modules')} module line(s), {prog.get('lines')} lines"),
        ("extraction time (s)", doc.get("seconds")),
    ]
    search = doc.get("search") or []
    table = _kv_table(rows)
    if search:
        body = "".join(
            f"<tr><td>{_e(s.get('try'))}</td><td>{_e(s.get('verified'))}</td>"
            f"<td>{_e(_fmt(s.get('test_exact')))}</td><td>{_e(_fmt(s.get('test_nmse')))}</td></tr>"
            for s in search
        )
        table += (
            "<h3>extraction attempts</h3><table class=eq><tr><th>try</th><th>verified</th>"
            f"<th>test exact</th><th>test nMSE</th></tr>{body}</table>"
        )
    return table


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;
vertical-align:top;font-size:.9em}table.kv th{background:#f6f6f6;white-space:nowrap}
table.eq tr.picked{background:#fff4c2;font-weight:bold}code{font-size:.95em}
.ok{color:#0a7d28;font-weight:bold}.bad{color:#b00020;font-weight:bold}
.cols{display:flex;gap:2em;flex-wrap:wrap}.grid{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:.5em 0;max-width:100%}figcaption{font-size:.85em;color:#444;max-width:60em}img{max-width:100%}
.highlight pre,pre{background:#f8f8f8;padding:.8em;overflow-x:auto;font-size:.85em;border:1px solid #eee}
nav a{margin-right:1em}
"""


def build_report(run_dir: str | os.PathLike) -> tuple[str, Any]:
    """The report's HTML text and the extracted program (extracting if needed). Raises
    :class:`~..api.RunDirError` while another process writes the run."""
    d = Path(run_dir)
    with RunDir(d).hold("dtx report"):
        return _build_report(d)


def _build_report(d: Path) -> tuple[str, Any]:
    rd = RunDir(d)
    cfg, result = rd.config_dict(), rd.result_dict()
    program = extract(d)
    if not rd.has_program():
        program.save(d)  # as `dtx extract` would
    run = load_run(d)
    model = copy.deepcopy(run.model).double().eval()
    graph = read_graph(model)
    tau = float(run.train_config.tau_attn_end)
    x = np.array(program.dataset.x_test[:SAMPLE_SEQUENCES], dtype=np.float64)  # a writable copy
    cache: dict[str, Any] = {}
    with torch.no_grad():
        model(torch.from_numpy(x), HARD, tau, cache)
    resid = cache["resid"][0].numpy()
    title = str(cfg.get("dataset") or cfg.get("source") or d.name)
    sections = [
        ("task", "Task and result", _task_section(cfg, result, program)),
        ("config", "Configuration", _config_section(cfg)),
        ("dynamics", "Annealing dynamics", _dynamics_section(d)),
        ("attention", "Attention heads the program uses", _attention_section(program, model, x[0], cache)),
        ("mlps", "MLPs the program uses: model vs extracted expression", _mlp_section(program, model, graph, resid)),
        ("equations", "Symbolic regression (Pareto fronts)", _equations_section(program)),
        ("program", "Program (with its evidence)", _program_section(program.source)),
        ("verification", "Verification", _verification_section(program.verification_doc())),
    ]
    nav = "<nav>" + "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t, _ in sections) + "</nav>"
    body = "\n".join(_section(sid, t, b) for sid, t, b in sections)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>dtx report: {_e(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<h1>dtx report: {_e(title)}</h1><p>run directory: <code>{_e(d)}</code></p>{nav}\n{body}\n</body></html>\n"
    )
    return page, program


def write_report(run_dir: str | os.PathLike) -> tuple[Path, str]:
    """Write the run's report page atomically. Returns (path, one-line summary)."""
    d = Path(run_dir)
    rd = RunDir(d)
    with rd.hold("dtx report"):  # build_report's own hold is then a no-op
        page, program = build_report(d)
        path = rd.write_report(page)
    v = program.verification
    verdict = "VERIFIED" if v.verified else "NOT VERIFIED"
    summary = (
        f"program {verdict}; {len(program.ir.heads)} head(s), {len(program.ir.mlps)} MLP(s); {len(page) / 1024:.0f} KiB"
    )
    return path, summary
