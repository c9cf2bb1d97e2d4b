"""Property-based tests (Hypothesis): loaders never fail with anything but DataFileError on
corrupted files, and random small programs (IR) render to code whose `program()`, `run_batch()`
and a direct evaluation of the IR all agree."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from discrete_transformer.extraction import codegen
from discrete_transformer.extraction.graph import (
    AttentionNode,
    MLPNode,
    OutputNode,
    ProgramIR,
    Provenance,
    Variable,
    eliminate_dead_code,
    hypothesis_reads,
)
from discrete_transformer.extraction.hypotheses import make_hypothesis
from discrete_transformer.extraction.pipeline import load_module
from discrete_transformer.tasks import (
    DataFileError,
    Dataset,
    load_file,
    save_csv,
    save_jsonl,
    save_npz,
)

# ============================================================================ loaders

SAVE = {"csv": save_csv, "jsonl": save_jsonl, "npz": save_npz}


def _dataset(seed: int, n_in: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x_tr, x_te = rng.integers(-3, 4, (4, 3, n_in)).astype(float), rng.integers(-3, 4, (2, 3, n_in)).astype(float)
    return Dataset(
        "d",
        "discrete",
        x_tr,
        x_tr.sum(-1, keepdims=True),
        x_te,
        x_te.sum(-1, keepdims=True),
        tuple(f"c{i}" for i in range(n_in)),
        ("y",),
        "mem",
    )


corruption = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.floats(0.0, 1.0), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.floats(0.0, 1.0), st.integers(1, 20)),
    st.tuples(
        st.just("text"),
        st.floats(0.0, 1.0),
        st.sampled_from(["nan", "inf", "-1e400", "1e12", '"', ",", "\n", "{", "]", "abc", "", "0x1F", "9" * 30]),
    ),
)


def _corrupt(data: bytes, how: tuple) -> bytes:
    at = int(how[1] * len(data))
    if how[0] == "truncate":
        return data[:at]
    if how[0] == "flip":
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ how[2]]) + data[at + 1 :]
    if how[0] == "insert":
        return data[:at] + how[2] + data[at:]
    if how[0] == "delete":
        return data[:at] + data[at + how[2] :]
    return data[:at] + how[2].encode() + data[at:]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["csv", "jsonl", "npz"]), n_in=st.integers(1, 2), seed=st.integers(0, 5), how=corruption)
def test_corrupted_files_raise_only_data_file_error(
    tmp_path_factory, fmt: str, n_in: int, seed: int, how: tuple
) -> None:
    d = tmp_path_factory.mktemp("corrupt")
    path = d / f"data.{fmt}"
    SAVE[fmt](_dataset(seed, n_in), path)
    path.write_bytes(_corrupt(path.read_bytes(), how))
    try:
        ds = load_file(path)
    except DataFileError as e:
        msg = str(e)
        assert "\n" not in msg and msg.startswith(f"{path}: ")
        return
    # Whatever still loads is a well-formed dataset.
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert a.dtype == np.float64 and a.ndim == 3 and np.isfinite(a).all() and a.shape[1] >= 2


# ============================================================================ codegen round trips

HYPOTHESES = [
    make_hypothesis("self"),
    make_hypothesis("shift", c=1),
    make_hypothesis("shift", c=2),
    make_hypothesis("first"),
    make_hypothesis("prefix_mean", include_bos=False),
    make_hypothesis("prefix_mean", include_bos=True),
    make_hypothesis("window_mean", c=2, include_bos=False),
    make_hypothesis("window_mean", c=1, include_bos=True),
    make_hypothesis("prefix_argmax", tie="earliest", include_bos=False),
    make_hypothesis("prefix_argmin", tie="latest", include_bos=True),
    make_hypothesis("match", tie="latest"),
    make_hypothesis("match_all"),
]
# (python source, numpy source) templates over one or two variables {a}, {b}.
EXPRESSIONS = [
    ("{a} + {b}", "{a} + {b}"),
    ("{a} * {b}", "{a} * {b}"),
    ("{a} - 2 * {b}", "{a} - 2 * {b}"),
    ("max({a}, {b})", "np.maximum({a}, {b})"),
    ("min({a}, {b}) + 1", "np.minimum({a}, {b}) + 1"),
    ("abs({a} - 1)", "np.abs({a} - 1)"),
    # an irrational threshold: means of small integers (fractions) never sit on it, so a 1-ulp
    # difference between two exact ways of computing a mean cannot flip the branch
    ("({a} if {b} >= 1.4142135623730951 else -{a})", "np.where({b} >= 1.4142135623730951, {a}, -{a})"),
    ("3", "np.full(np.shape({x0}), 3)"),  # a constant: shaped like the first input, as the pipeline writes it
]


@st.composite
def programs(draw):
    n_in = draw(st.integers(1, 2))
    inputs = [Variable(f"in{c}", c, "input", "ab"[c]) for c in range(n_in)]
    pos = Variable("pos", n_in, "pos", "pos", -1.0)
    avail = [*inputs, pos] if draw(st.booleans()) else list(inputs)
    nodes = []
    for k in range(draw(st.integers(1, 4))):
        index = n_in + 2 + k
        pick = lambda: draw(st.sampled_from(avail))  # noqa: E731
        if draw(st.booleans()):
            h = draw(st.sampled_from(HYPOTHESES))
            out = Variable(f"L{k}.H0", index, "attn", f"h{k}")
            nodes.append(AttentionNode(f"L{k}.H0", out, pick(), pick(), pick(), h, 1.0, 1.0, 100, 1.0, True))
        else:
            py, npy = draw(st.sampled_from(EXPRESSIONS))
            a, b = pick(), pick()
            out = Variable(f"L{k}.M0", index, "mlp", f"m{k}")
            src, nsrc = py.format(a=a.name, b=b.name), npy.format(a=a.name, b=b.name, x0=inputs[0].name)
            ins = tuple(dict.fromkeys([a, b]))
            nodes.append(MLPNode(f"L{k}.M0", out, ins, src, nsrc, src, 3, 0.0, 0.0, True, 1e-6, False, "mlp", 10))
        avail.append(out)
    outs = [nodes[-1].out] + ([draw(st.sampled_from(avail))] if draw(st.booleans()) else [])
    live = eliminate_dead_code(nodes, outs)
    reads = {v.index for n in live for v in n.reads} | {v.index for v in outs}
    pv = Provenance(
        "task:random", "random", "continuous", 0, 0, 5, tuple(v.name for v in inputs), ("y", "z")[: len(outs)]
    )
    ir = ProgramIR(
        tuple(inputs),
        live,
        tuple(OutputNode(i, f"o{i}", v) for i, v in enumerate(outs)),
        pv,
        uses_pos=pos.index in reads,
    )
    return ir


def _evaluate_ir(ir: ProgramIR, X: np.ndarray) -> np.ndarray:
    """The IR's meaning, computed directly: stream arrays (n, T+1) with the BOS slot first."""
    n, T = X.shape[:2]
    stream: dict[int, np.ndarray] = {}
    names: dict[str, int] = {v.name: v.index for v in ir.inputs}
    for v in ir.inputs:
        stream[v.index] = np.concatenate([np.full((n, 1), v.bos), X[:, :, v.index]], axis=1)
    pos_index = len(ir.inputs)
    stream[pos_index] = np.broadcast_to(np.arange(-1, T, dtype=float), (n, T + 1))
    names["pos"] = pos_index
    for node in ir.nodes:
        if isinstance(node, AttentionNode):
            used = hypothesis_reads(node.hypothesis)
            if node.hypothesis.name == "self":
                val = stream[node.v.index].copy()
            else:
                q = stream[node.q.index] if "q" in used else None
                k = stream[node.k.index] if "k" in used else None
                P = node.hypothesis.pattern(q, k, T + 1)
                val = np.einsum("nij,nj->ni", np.broadcast_to(P, (n, T + 1, T + 1)), stream[node.v.index])
            val[:, 0] = node.out.bos  # as in the model: every head and MLP writes 0 at BOS
        else:
            env = {name: stream[i][:, 1:] for name, i in names.items()}
            body = np.asarray(eval(node.numpy_source, {"np": np}, env), dtype=float)  # noqa: S307 - our own templates
            val = np.concatenate([np.full((n, 1), node.out.bos), np.broadcast_to(body, (n, T))], axis=1)
        stream[node.out.index] = val
        names[node.out.name] = node.out.index
    return np.stack([stream[o.var.index][:, 1:] for o in ir.outputs], axis=-1)


@settings(max_examples=60, deadline=None)
@given(ir=programs(), seed=st.integers(0, 10), T=st.integers(2, 7))
def test_random_programs_render_compile_and_agree(ir: ProgramIR, seed: int, T: int) -> None:
    src = codegen.render(ir)
    compile(src, "program.py", "exec")
    mod = load_module(src)
    X = np.random.default_rng(seed).integers(0, 4, (8, T, len(ir.inputs))).astype(float)
    want = _evaluate_ir(ir, X)
    assume(np.isfinite(want).all())
    got = mod.run_batch(X)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    for i in range(X.shape[0]):
        res = mod.program(*[list(X[i, :, c]) for c in range(X.shape[2])])
        per = [res] if len(ir.outputs) == 1 else list(res)
        np.testing.assert_allclose(np.array(per, dtype=float).T, want[i], rtol=1e-9, atol=1e-9)
    assert codegen.render(ir) == src  # deterministic
