"""The generated task suite: deterministic samples of task families, their parameter ranges, the
reference programs held against the numpy rules, name resolution, export and the CLI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from reference_helpers import run_reference
from typer.testing import CliRunner

from discrete_transformer.bench.suite import resolve_suite
from discrete_transformer.cli import app
from discrete_transformer.extraction.verify import LONGER_FACTOR
from discrete_transformer.tasks import (
    UnknownTaskError,
    get_task,
    load_file,
    make_dataset,
)
from discrete_transformer.tasks.export import export_tasks
from discrete_transformer.tasks.family_kit import expr_size
from discrete_transformer.tasks.generated import (
    FAMILIES,
    SUITE_SIZE,
    _suite,
    generated_suite,
    make_spec,
    parse_generated_suite,
    suite_specs,
)
from discrete_transformer.tasks.registry import TASKS

DRAWS = 200


@pytest.fixture(scope="module")
def suite0():
    return generated_suite(0)


@pytest.fixture(scope="module")
def draws() -> dict[str, list[dict]]:
    """200 parameter draws of every family (one seeded stream per family)."""
    return {f.name: [f.draw(np.random.default_rng([7, i, k])) for k in range(DRAWS)] for i, f in enumerate(FAMILIES)}


def test_families_are_well_formed() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names)) >= 40
    public = {t.name for t in TASKS}
    assert all(f.generalises in public for f in FAMILIES if f.generalises)
    assert sum(not f.generalises for f in FAMILIES) >= 10
    for mirror in (
        ("running_max", "running_min"),
        ("max_channels", "min_channels"),
        ("latest_match", "earliest_match"),
        ("first_value", "last_nonzero"),
    ):
        assert set(mirror) <= set(names)
    covered = {f.generalises for f in FAMILIES}
    for public_task in (
        "Prev1",
        "Sum_Last2",
        "Sum_All",
        "Add_Mod_3",
        "Abs_Current",
        "Diff_Last2",
        "Abs_Diff",
        "Max_Seen",
        "Parity_Last3",
        "Parity_All",
        "Parity_Bits_Mod2",
        "Bitwise_And",
        "Previous_Equals_Current",
        "Majority_0_1",
        "Bit_Dot_Prod_Mod2",
        "Parity_Zeros",
        "Kinematics_1D",
        "Spring_Force",
        "Real_Running_Mean",
        "Kinetic_Energy",
        "Total_Momentum",
        "Base_3_Addition",
        "Newton_Spring",
    ):
        assert public_task in covered, public_task


def test_sample_is_deterministic_and_covers_every_family(suite0) -> None:
    assert len(suite0) >= 80 == SUITE_SIZE
    again = _suite.__wrapped__(0, SUITE_SIZE)  # recomputed, not the cached tuple
    assert [(t.name, t.params, t.reference) for t in again] == [(t.name, t.params, t.reference) for t in suite0]
    x = suite0[5].sample(np.random.default_rng(0), 3, suite0[5].T)
    assert np.array_equal(again[5].rule(x), suite0[5].rule(x))
    counts = Counter(t.generator for t in suite0)
    assert set(counts) == {f.name for f in FAMILIES} and min(counts.values()) >= 2
    assert all(t.name == f"gen0_{i:03d}_{t.generator}" for i, t in enumerate(suite0))
    other = generated_suite(1)
    assert [t.name for t in other] != [t.name for t in suite0]

    def key(ts):
        return [(t.name, t.params, t.reference) for t in ts]

    assert key(generated_suite(0, 90)[:80]) == key(suite0)  # prefix-stable: a name means one task
    assert any(t.n_out == 2 for t in suite0) and any(t.n_in == 3 for t in suite0)
    assert {"discrete", "continuous"} == {t.kind for t in suite0}


def test_parameters_span_the_stated_ranges(draws) -> None:
    for f in FAMILIES:
        ps = draws[f.name]
        Ts = [p["T"] for p in ps]
        assert min(Ts) <= 10 and max(Ts) >= 30 and min(Ts) >= 8 and max(Ts) <= 40, f.name
        if "m" in f.keys:
            ms = [p["m"] for p in ps if p["m"]]
            assert min(ms) == 2 and max(ms) >= 12 and max(ms) <= 16, f.name
        if "shift" in f.keys:
            ks = [p["shift"] for p in ps]
            assert max(ks) >= 8 and all(1 <= p["shift"] <= p["T"] - 1 for p in ps), f.name
        if "coef" in f.keys:
            cs = [abs(p["coef"]) for p in ps]
            assert min(cs) < 0.1 and max(cs) > 10, f.name
            assert any(p["coef"] < 0 for p in ps) and any(p["coef"] > 0 for p in ps), f.name
        if f.values == "wide":
            top = [max(abs(v) for key in ("x", "a", "b", "c") if key in p for v in p[key]) for p in ps]
            assert max(top) >= 500 and min(top) <= 1, f.name
        if "channels" in f.keys:
            assert len({p["channels"] for p in ps}) >= 2, f.name


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_reference_program_reproduces_the_rule(fam) -> None:
    """The test that keeps reference code honest: 20 sequences at T, at LONGER_FACTOR×T and, where
    the task has the check, off the trained range (so that verification's checks are fair), for 3 draws."""
    for k in range(3):
        spec = make_spec(fam, fam.draw(np.random.default_rng([11, k])), "check")
        assert isinstance(spec.reference_ops, int) and spec.reference_ops > 0
        assert spec.reference.startswith(f"def program({', '.join(spec.input_names)}):")
        rng = np.random.default_rng(k)
        draws = [(spec.sample, spec.T), (spec.sample, LONGER_FACTOR * spec.T)]
        if spec.sample_wider is not None:
            draws.append((spec.sample_wider, spec.T))
        for sample, T in draws:
            x = sample(rng, 20, T)
            want, got = spec.rule(x), run_reference(spec.reference, x)
            assert got.shape == want.shape == (20, T, spec.n_out), spec.reference
            if spec.kind == "discrete":
                assert np.array_equal(got, want), f"{fam.name} {spec.params}\n{spec.reference}"
            else:
                scale = 1.0 + np.abs(want).max()
                assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * scale), f"{fam.name}\n{spec.reference}"


def test_expression_size_counts_nodes() -> None:
    assert expr_size("(a + b) % 7") == 5
    assert expr_size("abs(u - v)") == 4
    assert expr_size("-2.5 * u") == 3
    assert expr_size("max(u, v, w)") == 4


def test_names_round_trip_and_misspellings_fail(suite0) -> None:
    for t in suite0:
        assert get_task(t.name) is t
        assert t.family == "generated" and t.generator and t.bands[0][0] == "T" and t.reference_ops > 0
    t = suite0[17]
    assert get_task(t.name.upper()) is t
    assert get_task(t.name.replace("_017_", "_17_")) is t
    other = next(f.name for f in FAMILIES if f.name != t.generator)
    with pytest.raises(UnknownTaskError, match=f"is {t.name} "):  # a real family, not the one at 017
        get_task(f"gen0_017_{other}")
    with pytest.raises(UnknownTaskError, match="no generated task family"):  # a misspelt family
        get_task(t.name[:-1] + "x")
    with pytest.raises(UnknownTaskError, match="family"):
        get_task("gen0_017_")
    with pytest.raises(UnknownTaskError, match="no generated task family 'gone'"):
        get_task("gen9_999_gone")
    with pytest.raises(UnknownTaskError, match="beyond"):
        get_task("gen0_5000_add_mod")
    assert get_task("gen0_085_" + generated_suite(0, 86)[85].generator).name.startswith("gen0_085_")


def test_suite_strings() -> None:
    assert parse_generated_suite("generated") == 0 and parse_generated_suite("Generated:3") == 3
    assert parse_generated_suite("mips") is None
    for bad in ("generated:x", "generated:-1", "generated:"):
        with pytest.raises(ValueError, match="non-negative integer"):
            parse_generated_suite(bad)
    assert suite_specs("all") == TASKS and len(suite_specs("mips")) == 39
    assert suite_specs("generated:2") == generated_suite(2) and suite_specs("sum_last2") is None
    tasks = resolve_suite(["generated:1"])
    assert len(tasks) == SUITE_SIZE and {t.family for t in tasks} == {"generated"}
    assert len(resolve_suite(["all"])) == 47
    with pytest.raises(ValueError, match="generated:x"):
        resolve_suite(["generated:x"])


def test_public_tasks_are_unchanged() -> None:
    assert len(TASKS) == 47 and all(t.generator == "" and t.reference_ops is not None for t in TASKS)


def _pick(suite, kind: str):
    return min((t for t in suite if t.kind == kind), key=lambda t: t.T * t.n_in)


@pytest.mark.parametrize("kind,ext", [("discrete", ".csv"), ("continuous", ".jsonl")])
def test_export_round_trip(suite0, tmp_path: Path, kind: str, ext: str) -> None:
    t = _pick(suite0, kind)
    written = export_tasks([t.name], tmp_path / f"one{ext}", n_test=50)
    assert written == [tmp_path / f"one{ext}"]
    back, ds = load_file(written[0]), make_dataset(t, seed=0, n_test=50)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(back, key), getattr(ds, key)), key
    assert back.kind == ds.kind and back.input_names == ds.input_names and back.output_names == ds.output_names


def test_export_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="directory"):
        export_tasks(["generated"], tmp_path / "many.npz", n_test=5)
    with pytest.raises(UnknownTaskError):
        export_tasks(["no_such_task"], tmp_path / "d", n_test=5)
    assert not (tmp_path / "d").exists()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})


def test_cli_tasks_suite(runner: CliRunner) -> None:
    result = runner.invoke(app, ["tasks", "--suite", "generated:1"])
    assert result.exit_code == 0, result.output
    for t in generated_suite(1):
        assert t.name in result.stdout
    assert "generalises" in result.stdout and "Sum_Last2" in result.stdout
    bad = runner.invoke(app, ["tasks", "--suite", "generated:x"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and "generated:x" in bad.stderr
    assert runner.invoke(app, ["tasks", "--suite", "nonsense"]).exit_code == 2


def test_cli_export(runner: CliRunner, tmp_path: Path, suite0) -> None:
    names = [suite0[0].name, "bitwise_not"]
    result = runner.invoke(app, ["export", *names, "--out", str(tmp_path / "data"), "--n-test", "20"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted([f"{suite0[0].name}.npz", "Bitwise_Not.npz"])
    back = load_file(tmp_path / "data" / "Bitwise_Not.npz")
    assert np.array_equal(back.x_test, make_dataset("bitwise_not", seed=0).x_test)
    bad = runner.invoke(app, ["export", "gen0_000_nope", "--out", str(tmp_path / "x.npz")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.npz").exists()
